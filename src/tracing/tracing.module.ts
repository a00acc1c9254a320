import { Global, Module } from '@nestjs/common';
import { Tracing } from './tracing.js';

/** OpenTelemetry, injectable everywhere a step deserves a span. */
@Global()
@Module({ providers: [Tracing], exports: [Tracing] })
export class TracingModule {}
