import { Injectable } from '@nestjs/common';
import type { FastifyInstance } from 'fastify';
import { registerSecurityHeaders } from '../common/security-headers.js';
import { LIVENESS, ReadinessService } from './readiness.service.js';

/** /healthz and /readyz on the main port (the metrics port serves its own copies). */
@Injectable()
export class HealthRoutes {
  constructor(private readonly readiness: ReadinessService) {}

  register(scope: FastifyInstance): void {
    registerSecurityHeaders(scope);
    // Liveness: 200 as long as the process serves requests.
    scope.get('/healthz', async (_request, reply) => reply.header('cache-control', 'no-store').send(LIVENESS));
    // Readiness: 200 when logins can be served; 503 naming what is missing (or `shutting_down`).
    scope.get('/readyz', async (_request, reply) => {
      const { httpStatus, body } = await this.readiness.report();
      return reply.status(httpStatus).header('cache-control', 'no-store').send(body);
    });
  }
}
