import { Controller, Get, Header, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { LIVENESS, ReadinessService, type ReadinessBody } from './readiness.service.js';

@Controller()
export class HealthController {
  constructor(private readonly readiness: ReadinessService) {}

  /** Liveness: 200 as long as the process serves requests. */
  @Get('healthz')
  @Header('cache-control', 'no-store')
  healthz(): typeof LIVENESS {
    return LIVENESS;
  }

  /** Readiness: 200 when logins can be served; 503 naming what is missing (or `shutting_down`). */
  @Get('readyz')
  @Header('cache-control', 'no-store')
  async readyz(@Res({ passthrough: true }) reply: FastifyReply): Promise<ReadinessBody> {
    const { httpStatus, body } = await this.readiness.report();
    void reply.status(httpStatus);
    return body;
  }
}
