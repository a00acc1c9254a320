import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Link, type Span, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOffSampler, AlwaysOnSampler, BatchSpanProcessor, BasicTracerProvider, ParentBasedSampler, TraceIdRatioBasedSampler, type Sampler } from '@opentelemetry/sdk-trace-base';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { CONFIG } from '../config/config.module.js';
import type { Config } from '../config/config.js';

type TracingConfig = NonNullable<Config['tracing']>;

/** The span a step runs in, or undefined when tracing is off (steps then pay nothing). */
export type StepSpan = Span | undefined;

const propagator = new W3CTraceContextPropagator();
const headerSetter = {
  set: (carrier: OutgoingHttpHeaders | IncomingHttpHeaders, key: string, value: string): void => {
    carrier[key] = value;
  },
};
const headerGetter = {
  keys: (carrier: IncomingHttpHeaders): string[] => Object.keys(carrier),
  get: (carrier: IncomingHttpHeaders, key: string): string | string[] | undefined => carrier[key],
};

/**
 * OpenTelemetry traces, configured from the parsed config only (the SDK is handed every setting, so
 * it reads no OTEL_* variable itself). Off: every method is a no-op that allocates nothing. The
 * provider is not registered globally: a process may hold several gateways (the tests do), each
 * with its own exporter. Attributes never carry a token, cookie, code, state, sid or claim value;
 * URLs come in already redacted.
 */
@Injectable()
export class Tracing implements OnApplicationShutdown {
  private readonly provider: BasicTracerProvider | undefined;
  private readonly tracer: Tracer | undefined;
  private readonly trustIncoming: boolean;

  constructor(@Inject(CONFIG) config: Config) {
    const settings = config.tracing;
    this.trustIncoming = settings?.trustIncoming ?? false;
    if (settings === undefined) return;
    // one per process, shared by every gateway in it: it only carries the active span through awaits
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    this.provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ ...settings.resourceAttributes, 'service.name': settings.serviceName }),
      sampler: samplerOf(settings),
      spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: settings.endpoint, headers: settings.headers }), { scheduledDelayMillis: 1000 })],
    });
    this.tracer = this.provider.getTracer('bff-gateway');
  }

  get enabled(): boolean {
    return this.tracer !== undefined;
  }

  /**
   * The span of one request, and the context its handling runs in. A browser's `traceparent` is
   * only a link unless TRACING_TRUST_INCOMING makes it the parent: anyone can send one.
   */
  startRequest(name: string, headers: IncomingHttpHeaders, attributes: Attributes): { span: Span; context: Context } | undefined {
    if (this.tracer === undefined) return undefined;
    const incoming = headers.traceparent === undefined ? undefined : trace.getSpanContext(propagator.extract(ROOT_CONTEXT, headers, headerGetter));
    const parent = incoming !== undefined && this.trustIncoming ? trace.setSpanContext(ROOT_CONTEXT, incoming) : ROOT_CONTEXT;
    const links: Link[] = incoming !== undefined && !this.trustIncoming ? [{ context: incoming, attributes: { 'bff.link': 'untrusted_incoming_parent' } }] : [];
    const span = this.tracer.startSpan(name, { kind: SpanKind.SERVER, attributes, links }, parent);
    return { span, context: trace.setSpan(parent, span) };
  }

  /** Ends a request span with its status (5xx: error). */
  endRequest(span: Span, status: number): void {
    span.setAttribute('http.response.status_code', status);
    if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  }

  /** Runs `step` in a child span of the active one; an error marks it (its type and code only, never its message). */
  async inSpan<T>(name: string, attributes: Attributes, step: (span: StepSpan) => Promise<T>): Promise<T> {
    if (this.tracer === undefined) return step(undefined);
    return this.tracer.startActiveSpan(name, { attributes }, async (span) => {
      try {
        return await step(span);
      } catch (error) {
        span.setStatus({ code: SpanStatusCode.ERROR });
        span.setAttribute('error.type', errorType(error));
        throw error;
      } finally {
        span.end();
      }
    });
  }

  /** A client span for a call whose end is an event (the upstream's answer), not a promise. */
  startClient(name: string, attributes: Attributes): StepSpan {
    return this.tracer?.startSpan(name, { kind: SpanKind.CLIENT, attributes });
  }

  /** Puts `span`'s W3C `traceparent` on the headers of an outgoing request. */
  inject(span: StepSpan, headers: OutgoingHttpHeaders | IncomingHttpHeaders): void {
    if (span === undefined) return;
    propagator.inject(trace.setSpan(context.active(), span), headers, headerSetter);
  }

  async onApplicationShutdown(): Promise<void> {
    // the last spans (the shutdown's own requests) reach the collector before the process ends
    await this.provider?.shutdown();
  }
}

/** Ends a client span with an outcome. */
export function endClientSpan(span: StepSpan, attributes: Attributes, failed: boolean): void {
  if (span === undefined) return;
  span.setAttributes(attributes);
  if (failed) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}

function errorType(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string') return error.code;
  return error instanceof Error ? error.name : 'unknown';
}

function samplerOf(settings: TracingConfig): Sampler {
  const ratio = new TraceIdRatioBasedSampler(settings.samplerRatio);
  switch (settings.sampler) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return ratio;
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: ratio });
  }
}
