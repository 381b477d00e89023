import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';

/**
 * OpenTelemetry tracing, off unless OTEL_EXPORTER_OTLP_ENDPOINT is set (serve.ts loads this module
 * only then): a span for each GraphQL operation (graphql/tracing.ts) with the SQL statements it
 * sent as its children (db/client.ts), exported over OTLP/HTTP in batches.
 */
export interface Tracing {
  /** Export what is still buffered, and stop. */
  shutdown(): Promise<void>;
}

/** Send spans to an OTLP/HTTP collector at `endpoint` (its `/v1/traces`). */
export function startTracing(options: { endpoint: string; serviceName: string }): Tracing {
  const exporter = new OTLPTraceExporter({
    url: `${options.endpoint.replace(/\/+$/, '')}/v1/traces`,
  });
  return installTracing([new BatchSpanProcessor(exporter)], options.serviceName);
}

/**
 * Make these span processors the process's tracing (an in-memory exporter's, in tests), with
 * spans following async calls (AsyncLocalStorage) so a query's span is its operation's child.
 */
export function installTracing(processors: SpanProcessor[], serviceName = 'runstate'): Tracing {
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName }),
    spanProcessors: processors,
  });
  trace.setGlobalTracerProvider(provider);
  return {
    async shutdown() {
      await provider.shutdown();
      trace.disable();
      context.disable();
    },
  };
}
