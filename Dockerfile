# bff-gateway container image.
#
#   docker build -t bff-gateway .
#   docker run --rm -p 3000:3000 --env-file gateway.env bff-gateway
#   docker run --rm --env-file gateway.env bff-gateway --check-config
#
# Stages: `build` compiles TypeScript with the dev dependencies; `demo` (docker-compose.yml only)
# runs the demo OpenID provider and sample API with those dependencies; `runtime` (the default
# target, last) holds the compiled app and the production dependencies only. No configuration and
# no secret is baked in: every setting comes from the environment (or *_FILE secrets) at run time.

FROM node:24-bookworm-slim AS build
WORKDIR /app
# Dependencies first, so source edits reuse the cached layer. --ignore-scripts: nothing here needs
# an install script, and none of them runs with build secrets in reach.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:24-bookworm-slim AS demo
WORKDIR /app
# The demo services run from TypeScript with tsx and need the dev dependencies (oidc-provider, tsx).
COPY --from=build /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY demo ./demo
USER node
CMD ["node", "--import", "tsx", "demo/provider.ts"]

FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production
# /metrics (session counts, login failure codes) on its own port, which a deployment keeps internal;
# /healthz and /readyz answer there too, outside the public port's connection limits.
ENV METRICS_PORT=9464
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# The bundled sample SPA, served when SPA_DIR is unset (dist/spa finds it at ../../demo/spa).
COPY demo/spa ./demo/spa
# The files stay root-owned and read-only to the process: it writes nothing to disk.
USER node
EXPOSE 3000 9464
HEALTHCHECK --interval=10s --timeout=5s --retries=3 CMD ["node", "dist/cli/healthcheck.js"]
# Exec form: node is PID 1 and receives SIGTERM itself, which starts the graceful shutdown
# (SHUTDOWN_GRACE_S, default 10 s; give the orchestrator's stop timeout a few seconds more).
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/main.js"]
