#!/usr/bin/env bash
# The README's test command: installs what the tests need (system packages and npm dependencies)
# when missing, then runs the type check, the linter, the docs check and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
fail() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
# the Redis TLS test makes its certificates with openssl
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
if [ ${#need_apt[@]} -gt 0 ]; then
  step "installing system packages: ${need_apt[*]}"
  if [ "$(id -u)" -ne 0 ]; then fail "run as root (or install ${need_apt[*]} yourself): apt-get install -y ${need_apt[*]}"; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || fail "apt-get update"
  apt-get install -y -qq "${need_apt[@]}" >/dev/null || fail "apt-get install -y ${need_apt[*]}"
fi
command -v redis-server >/dev/null 2>&1 || fail "redis-server is missing after install"
[ -x /usr/bin/chromium ] || fail "/usr/bin/chromium is missing after install"
# The glewlwyd suite runs Debian's glewlwyd (a real OpenID provider) on a SQLite file it builds with
# sqlite3; without --no-install-recommends apt would add packages that suite never uses.
need_lean=()
command -v glewlwyd >/dev/null 2>&1 || need_lean+=(glewlwyd)
command -v sqlite3 >/dev/null 2>&1 || need_lean+=(sqlite3)
if [ ${#need_lean[@]} -gt 0 ]; then
  step "installing system packages: ${need_lean[*]}"
  if [ "$(id -u)" -ne 0 ]; then fail "run as root (or install ${need_lean[*]} yourself): apt-get install -y --no-install-recommends ${need_lean[*]}"; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || fail "apt-get update"
  apt-get install -y -qq --no-install-recommends "${need_lean[@]}" >/dev/null || fail "apt-get install -y --no-install-recommends ${need_lean[*]}"
fi
command -v glewlwyd >/dev/null 2>&1 || fail "glewlwyd is missing after install"
command -v sqlite3 >/dev/null 2>&1 || fail "sqlite3 is missing after install"

step "npm ci"
npm ci --no-audit --no-fund || fail "npm ci"

step "typecheck"
npm run typecheck || fail "typecheck (tsc --noEmit)"
step "lint"
npm run lint || fail "lint (eslint, zero warnings)"
step "dockerfilelint"
npx --no-install dockerfilelint Dockerfile || fail "dockerfilelint Dockerfile"
step "docs check"
npm run docs:check || fail "README configuration table is out of date (npm run docs:config)"
step "tests (build, unit, e2e)"
npm test || fail "tests"
step "bench smoke"; npm run bench:smoke || fail "bench smoke"
