import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildApp, type App } from '../../src/app.js';
import { createPostgresDatabase, type Database } from '../../src/db/client.js';
import { createLogger } from '../../src/logger.js';
import { installTracing, type Tracing } from '../../src/ops/tracing.js';
import { authHeader, TEST_ADMIN_TOKEN, uniqueProject } from '../support/server.js';

// With tracing on (OTEL_EXPORTER_OTLP_ENDPOINT, here an in-memory exporter instead), each GraphQL
// operation is a span carrying the request id, and the SQL statements it sends are spans in its
// trace, below it.

const exporter = new InMemorySpanExporter();
let tracing: Tracing;
let database: Database;
let app: App;
let url: string;

beforeAll(async () => {
  tracing = installTracing([new SimpleSpanProcessor(exporter)]);
  database = createPostgresDatabase({ url: inject('databaseUrl'), poolSize: 4, trace: true });
  app = buildApp({
    database,
    logger: createLogger('silent'),
    port: 0,
    host: '127.0.0.1',
    auth: { enabled: true, adminToken: TEST_ADMIN_TOKEN },
    tracing: true,
  });
  ({ url } = await app.start());
});
afterAll(async () => {
  await app?.stop();
  await database?.close();
  await tracing?.shutdown();
});

async function post(query: string, variables: Record<string, unknown>, requestId: string) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': requestId, ...authHeader() },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as { data?: Record<string, { id?: string; __typename?: string }> };
}

/** The span's ancestors, nearest first, among `spans`. */
function ancestors(span: ReadableSpan, spans: ReadableSpan[]): ReadableSpan[] {
  const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]));
  const chain: ReadableSpan[] = [];
  let parent = span.parentSpanContext?.spanId;
  while (parent && byId.has(parent)) {
    chain.push(byId.get(parent)!);
    parent = byId.get(parent)!.parentSpanContext?.spanId;
  }
  return chain;
}

describe('tracing', () => {
  it('one transitionRun is one trace: its operation span, with the request id, above its SQL spans', async () => {
    const created = await post(
      `mutation($p: String!) { createRun(input: { project: $p, name: "traced" }) { id } }`,
      { p: uniqueProject('trace') },
      'trace-create',
    );
    const id = created.data!['createRun']!.id!;
    exporter.reset();

    const answer = await post(
      `mutation Transition($id: ID!) { transitionRun(input: { id: $id, to: RUNNING }) { __typename } }`,
      { id },
      'trace-transition-1',
    );
    expect(answer.data?.['transitionRun']?.__typename).toBe('TransitionAccepted');

    const spans = exporter.getFinishedSpans();
    const operations = spans.filter((s) => s.name === 'mutation Transition');
    expect(operations).toHaveLength(1);
    const operation = operations[0]!;
    expect(operation.attributes).toMatchObject({
      'runstate.request_id': 'trace-transition-1',
      'graphql.operation.type': 'mutation',
      'graphql.operation.name': 'Transition',
    });
    const traceId = operation.spanContext().traceId;
    const inTrace = spans.filter((s) => s.spanContext().traceId === traceId);
    const sql = inTrace.filter((s) => s.attributes['db.system'] === 'postgresql');
    expect(sql.length).toBeGreaterThan(0);
    // The statement that moved the run is among them, below the operation.
    expect(sql.some((s) => /UPDATE runs/i.test(String(s.attributes['db.query.text'])))).toBe(true);
    for (const statement of sql) expect(ancestors(statement, inTrace)).toContain(operation);
    // Nothing of this operation was traced elsewhere: every SQL span that started while it ran
    // is in its trace.
    const during = spans.filter(
      (s) =>
        s.attributes['db.system'] === 'postgresql' &&
        s.startTime[0] * 1e9 + s.startTime[1] >=
          operation.startTime[0] * 1e9 + operation.startTime[1] &&
        s.endTime[0] * 1e9 + s.endTime[1] <= operation.endTime[0] * 1e9 + operation.endTime[1],
    );
    expect(during.every((s) => s.spanContext().traceId === traceId)).toBe(true);
  });
});
