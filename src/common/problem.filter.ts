import { Catch, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { sendProblem } from './problem.js';

/**
 * The only exception filter: everything becomes application/problem+json (or an HTML page). Nest
 * also installs it as Fastify's error handler (for every route, the SPA's and /api's included), so
 * an error thrown while a reply is being written (an invalid header, a failing onSend hook) comes
 * here too; sendProblem drops the header that failed, so Fastify never falls back to its own body.
 */
@Catch()
export class ProblemFilter implements ExceptionFilter {
  catch(error: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    sendProblem(http.getRequest<FastifyRequest>(), http.getResponse<FastifyReply>(), error);
  }
}
