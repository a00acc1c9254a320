import { Controller, Get, Header, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { ReadinessService } from './readiness.service.js';

@Controller()
export class HealthController {
  constructor(private readonly readiness: ReadinessService) {}

  /** Liveness: 200 as long as the process serves requests. */
  @Get('healthz')
  @Header('cache-control', 'no-store')
  healthz(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /** Readiness: 200 when logins can be served; 503 naming what is missing (or `shutting_down`). */
  @Get('readyz')
  @Header('cache-control', 'no-store')
  async readyz(@Res({ passthrough: true }) reply: FastifyReply): Promise<{ status: 'ready' } | { status: 'not_ready'; missing: string[] }> {
    const missing = await this.readiness.missing();
    if (missing.length === 0) return { status: 'ready' };
    void reply.status(503);
    return { status: 'not_ready', missing };
  }
}
