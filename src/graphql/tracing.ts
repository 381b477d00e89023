import { SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import { getOperationAST } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { requestIdIn } from '../ops/request-context.js';

const tracer = trace.getTracer('runstate');

/**
 * A span for each GraphQL operation, over any transport (HTTP, SSE, graphql-sse, WebSocket: all
 * execute through yoga's envelop), around its execution (or a subscription's start), so the SQL
 * statements it sends are its children: named `<type> <name>` (`mutation Transition`), with the
 * request id (`runstate.request_id`, as in the logs), and in error when the answer has errors.
 */
export function useTracing(): Plugin {
  // The payload's context is the one the transport began with: it carries the request id.
  const wrap = (name: string) => (payload: { context: unknown }, wrapped: () => unknown) =>
    tracer.startActiveSpan(
      name,
      {
        kind: SpanKind.SERVER,
        attributes: { 'runstate.request_id': requestIdIn(payload.context) ?? '' },
      },
      (span) => {
        const end = () => span.end();
        try {
          const done = wrapped();
          if (done instanceof Promise) return done.then(end, (error: unknown) => fail(span, error));
          end();
          return done;
        } catch (error) {
          return fail(span, error);
        }
      },
    );
  return {
    instrumentation: {
      execute: wrap('graphql.execute') as never,
      subscribe: wrap('graphql.subscribe') as never,
    },
    // Inside the span: its name and attributes, from the document; errors in the answer.
    onExecute: ({ args }) => describe(args.document, args.operationName),
    onSubscribe: ({ args }) => void describe(args.document, args.operationName),
  };
}

function describe(
  document: Parameters<typeof getOperationAST>[0],
  operationName: string | null | undefined,
) {
  const span = trace.getActiveSpan();
  if (!span?.isRecording()) return;
  const operation = getOperationAST(document, operationName);
  const type = operation?.operation ?? 'unknown';
  const name = operation?.name?.value ?? operationName ?? '';
  span.updateName(name ? `${type} ${name}` : type);
  span.setAttribute('graphql.operation.type', type);
  if (name) span.setAttribute('graphql.operation.name', name);
  return {
    onExecuteDone: ({ result }: { result: unknown }) => {
      const errors = (result as { errors?: readonly { message: string }[] } | null)?.errors;
      if (errors?.length)
        span.setStatus({ code: SpanStatusCode.ERROR, message: errors[0]!.message });
    },
  };
}

function fail(span: Span, error: unknown): never {
  span.recordException(error as Error);
  span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
  throw error;
}
