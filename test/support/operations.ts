import type { FormattedExecutionResult } from 'graphql';
import type { Client } from 'graphql-ws';
import type { GqlResponse, TestServer } from './server.js';

/** The GraphQL operations most tests need, failing loudly on any error. */

export const RUN_FIELDS = `
  id project name tags meta status category color version attempt maxRetries isDone isFinal isRunning isPending
  isStoppable allowedTransitions progress phase stopMessage createdAt updatedAt startedAt
  finishedAt duration heartbeatAt`;

export const RESULT_FIELDS = `
  __typename
  ... on TransitionAccepted { run { id status version startedAt finishedAt stopMessage }
    change { cursor runId from to version reason message at } }
  ... on IllegalTransition { runId from to allowed message }
  ... on TransitionConflict { runId expectedStatus expectedVersion actualStatus actualVersion message }
  ... on RunNotFound { runId message }`;

export interface RunData {
  id: string;
  project: string;
  status: string;
  version: number;
  [field: string]: unknown;
}

export interface TransitionResultData {
  __typename: 'TransitionAccepted' | 'IllegalTransition' | 'TransitionConflict' | 'RunNotFound';
  run?: { id: string; status: string; version: number; [f: string]: unknown };
  change?: {
    cursor: string;
    from: string | null;
    to: string;
    version: number;
    [f: string]: unknown;
  } | null;
  [field: string]: unknown;
}

export function dataOf<T>(response: GqlResponse<T>): T {
  if (response.errors?.length || response.data == null) {
    throw new Error(`GraphQL errors: ${JSON.stringify(response.errors)}`);
  }
  return response.data;
}

export async function createRun(
  server: Pick<TestServer, 'gql'>,
  input: Record<string, unknown>,
): Promise<RunData> {
  const response = await server.gql<{ createRun: RunData }>(
    `mutation($input: CreateRunInput!) { createRun(input: $input) { ${RUN_FIELDS} } }`,
    { input },
  );
  return dataOf(response).createRun;
}

export async function transitionRun(
  server: Pick<TestServer, 'gql'>,
  input: Record<string, unknown>,
): Promise<TransitionResultData> {
  const response = await server.gql<{ transitionRun: TransitionResultData }>(
    `mutation($input: TransitionRunInput!) { transitionRun(input: $input) { ${RESULT_FIELDS} } }`,
    { input },
  );
  return dataOf(response).transitionRun;
}

export async function getHistory(
  server: Pick<TestServer, 'gql'>,
  id: string,
): Promise<
  {
    from: string | null;
    to: string;
    version: number;
    reason: string | null;
    message: string | null;
  }[]
> {
  const response = await server.gql<{
    run: {
      statusHistory: {
        edges: {
          node: {
            from: string | null;
            to: string;
            version: number;
            reason: string | null;
            message: string | null;
          };
        }[];
      };
    };
  }>(
    `query($id: ID!) { run(id: $id) { statusHistory(first: 500) { edges { node { from to version reason message } } } } }`,
    { id },
  );
  return dataOf(response).run.statusHistory.edges.map((e) => e.node);
}

/** A live subscription that records every result it receives. */
export interface Recorder<T> {
  readonly results: FormattedExecutionResult<T, unknown>[];
  readonly values: T[];
  /** Resolves once at least `count` results arrived (rejects after `timeoutMs`). */
  waitFor(count: number, timeoutMs?: number): Promise<T[]>;
  /** Resolves when the server completes or errors the subscription. */
  ended: Promise<unknown>;
  dispose(): void;
}

export function record<T = Record<string, unknown>>(
  client: Client,
  query: string,
  variables?: Record<string, unknown>,
): Recorder<T> {
  const results: FormattedExecutionResult<T, unknown>[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  let endResolve: (value: unknown) => void = () => {};
  const ended = new Promise((resolve) => (endResolve = resolve));
  const dispose = client.subscribe<T>(
    { query, variables },
    {
      next: (result) => {
        results.push(result);
        for (const w of [...waiters]) if (results.length >= w.count) w.resolve();
      },
      error: (error) => endResolve({ error }),
      complete: () => endResolve({ complete: true }),
    },
  );
  const recorder: Recorder<T> = {
    results,
    get values() {
      return results.map((r) => r.data as T);
    },
    waitFor(count, timeoutMs = 10_000) {
      if (results.length >= count) return Promise.resolve(recorder.values);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new Error(
                `expected ${count} results, got ${results.length}: ${JSON.stringify(results)}`,
              ),
            ),
          timeoutMs,
        );
        waiters.push({
          count,
          resolve: () => {
            clearTimeout(timer);
            resolve(recorder.values);
          },
        });
      });
    },
    ended,
    dispose,
  };
  return recorder;
}

/** The cursor of a run's latest status change: subscribe `after` it to miss nothing since. */
export async function latestCursorOf(server: Pick<TestServer, 'gql'>, id: string): Promise<string> {
  const response = await server.gql<{
    run: { statusHistory: { edges: { node: { cursor: string } }[] } };
  }>(
    `query($id: ID!) { run(id: $id) { statusHistory(first: 500) { edges { node { cursor } } } } }`,
    {
      id,
    },
  );
  return dataOf(response).run.statusHistory.edges.at(-1)!.node.cursor;
}

/** The change-log id a status-change cursor points at (its order in the log). */
export function changeIdOf(cursor: string): number {
  const [, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as [string, number];
  return id;
}

/** Wait until `server`'s change-log tail has read the change at `cursor` (and so published it). */
export async function untilTailPast(
  server: Pick<TestServer, 'app'>,
  cursor: string,
): Promise<void> {
  const id = changeIdOf(cursor);
  await waitUntil('the tail has read the change', () => server.app.services.tail.position() >= id);
}

/** Resolve after `ms` (only for letting a subscription settle, never for timing assertions). */
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Poll `condition` every 10 ms until it holds; fail naming `what` after `timeoutMs`. */
export async function waitUntil(
  what: string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** A run's current status, read over HTTP. */
export async function statusOf(server: Pick<TestServer, 'gql'>, id: string): Promise<string> {
  const response = await server.gql<{ run: { status: string } }>(
    `query($id: ID!) { run(id: $id) { status } }`,
    { id },
  );
  return dataOf(response).run.status;
}
