import { randomUUID } from 'node:crypto';
import { createClient } from 'graphql-ws';
import postgres from 'postgres';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { WebSocket } from 'ws';
import { startProcess, type ServiceProcess } from '../support/process.js';
import { authHeader, TEST_ADMIN_TOKEN, uniqueProject } from '../support/server.js';

interface Attempt {
  kind: 'create' | 'transition';
  key: string;
  runId?: string;
  /** 'ok': answered with data; 'refused': a 503 SERVER_STOPPING; 'lost': no answer. */
  outcome: 'ok' | 'refused' | 'lost' | 'other';
  status?: number;
  body?: unknown;
  /** Sent before SIGTERM: the server had it, or will have it while draining. */
  sentBeforeSignal: boolean;
  /** Answered after SIGTERM. */
  answeredAfterSignal: boolean;
}

describe('graceful shutdown of a real process under load', () => {
  const processes: ServiceProcess[] = [];
  afterAll(() => {
    for (const p of processes) p.child.kill('SIGKILL');
  });

  it('SIGTERM: /ready turns 503, in-flight mutations (HTTP and WebSocket) finish, new ones are refused, sockets close with 1012; every acknowledged mutation is in the database', async () => {
    const proc = startProcess({
      DATABASE_URL: inject('databaseUrl'),
      RUNSTATE_ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'debug',
      MUTATION_RATE_LIMIT: '0',
    });
    processes.push(proc);
    const url = await proc.listening;
    const origin = new URL(url).origin;
    const project = uniqueProject('drain');

    // A live subscriber, to see how its socket is closed.
    const closeCodes: number[] = [];
    const ws = createClient({
      url: url.replace('http', 'ws'),
      webSocketImpl: WebSocket,
      connectionParams: { token: TEST_ADMIN_TOKEN },
      retryAttempts: 0,
      onNonLazyError: () => {}, // the 1012 close is expected; it is checked below
      lazy: false, // keeps the socket open after its subscription ends: how is it closed?
      on: { closed: (event) => closeCodes.push((event as { code: number }).code) },
    });
    // Its subscription ends with a last result (the error saying why), then `complete`.
    let last: unknown;
    const subscriptionEnd = new Promise<unknown>((resolve) => {
      ws.subscribe(
        {
          query: `subscription { statusChanged(filter: { projects: ["${project}"] }) { cursor } }`,
        },
        { next: (result) => (last = result), error: resolve, complete: () => resolve(last) },
      );
    });

    let signalled = false;
    const attempts: Attempt[] = [];
    const post = async (
      kind: Attempt['kind'],
      key: string,
      query: string,
      variables: object,
      runId?: string,
    ): Promise<Attempt> => {
      const attempt: Attempt = {
        kind,
        key,
        runId,
        outcome: 'lost',
        sentBeforeSignal: !signalled,
        answeredAfterSignal: false,
      };
      attempts.push(attempt);
      try {
        const response = await fetch(url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'x-request-id': key,
            ...authHeader(),
          },
          body: JSON.stringify({ query, variables }),
        });
        attempt.status = response.status;
        attempt.body = await response.json();
        const body = attempt.body as {
          data?: unknown;
          errors?: { extensions?: { code?: string } }[];
        };
        if (response.status === 200 && body.data && !body.errors) attempt.outcome = 'ok';
        else if (
          response.status === 503 &&
          body.errors?.[0]?.extensions?.code === 'SERVER_STOPPING'
        )
          attempt.outcome = 'refused';
        else attempt.outcome = 'other';
      } catch {
        attempt.outcome = 'lost'; // connection refused or closed: the server never answered
      }
      attempt.answeredAfterSignal = signalled;
      return attempt;
    };

    // Workers: create a run, move it to QUEUED, again, until the server stops answering.
    const worker = async () => {
      for (;;) {
        const key = randomUUID();
        const created = await post(
          'create',
          key,
          `mutation($input: CreateRunInput!) { createRun(input: $input) { id } }`,
          { input: { project, idempotencyKey: key } },
        );
        if (created.outcome !== 'ok') return;
        const id = (created.body as { data: { createRun: { id: string } } }).data.createRun.id;
        created.runId = id;
        const moved = await post(
          'transition',
          randomUUID(),
          `mutation($input: TransitionRunInput!) { transitionRun(input: $input) { __typename } }`,
          { input: { id, to: 'QUEUED' } },
          id,
        );
        if (moved.outcome !== 'ok') return;
      }
    };
    const workers = Array.from({ length: 12 }, worker);
    while (attempts.filter((a) => a.outcome === 'ok').length < 200)
      await new Promise((resolve) => setTimeout(resolve, 10));

    // A mutation certain to be in flight at the signal: its run's row is locked by the test.
    const sql = postgres(inject('databaseUrl'), { max: 2, onnotice: () => {} });
    const held = await post(
      'create',
      randomUUID(),
      `mutation($input: CreateRunInput!) { createRun(input: $input) { id } }`,
      { input: { project } },
    );
    const heldId = (held.body as { data: { createRun: { id: string } } }).data.createRun.id;
    let release!: () => void;
    const locker = await new Promise<number>((resolve) => {
      void sql.begin(async (tx) => {
        const [row] = await tx<{ pid: number }[]>`
          SELECT pg_backend_pid() AS pid FROM runs WHERE id = ${heldId} FOR UPDATE`;
        resolve(row!.pid);
        await new Promise<void>((r) => (release = r));
      });
    });
    const inFlight = post(
      'transition',
      randomUUID(),
      `mutation($input: TransitionRunInput!) { transitionRun(input: $input) { __typename } }`,
      { input: { id: heldId, to: 'QUEUED' } },
      heldId,
    );
    // And one over the WebSocket, waiting for the same row.
    const inFlightOverWs = new Promise<unknown>((resolve) => {
      ws.subscribe(
        {
          query: `mutation($id: ID!) { reportProgress(input: { id: $id, progress: 0.5 }) { progress } }`,
          variables: { id: heldId },
        },
        { next: resolve, error: resolve, complete: () => {} },
      );
    });
    // Both are waiting for the test's lock when the signal goes (the second one queues behind
    // the first, which is then what blocks it).
    await expect
      .poll(async () => {
        const [row] = await sql<{ n: number }[]>`
          WITH RECURSIVE waiting (pid) AS (
            SELECT pid FROM pg_stat_activity WHERE ${locker} = ANY (pg_blocking_pids(pid))
            UNION
            SELECT a.pid FROM pg_stat_activity a JOIN waiting w ON w.pid = ANY (pg_blocking_pids(a.pid))
          )
          SELECT count(*)::int AS n FROM waiting`;
        return row!.n;
      })
      .toBe(2);

    signalled = true;
    proc.child.kill('SIGTERM');
    try {
      // While draining, the instance says it is not ready.
      await expect
        .poll(async () => {
          const ready = await fetch(`${origin}/ready`);
          return { status: ready.status, body: await ready.json() };
        })
        .toMatchObject({ status: 503, body: { checks: { accepting: 'draining' } } });
    } finally {
      release();
    }
    expect((await inFlight).outcome).toBe('ok');
    expect(await inFlightOverWs).toEqual({ data: { reportProgress: { progress: 0.5 } } });
    await Promise.all(workers);
    expect(await proc.exited).toBe(0);

    // Each answer was data, a 503 SERVER_STOPPING, or no answer at all; never a 500.
    expect(attempts.filter((a) => a.outcome === 'other')).toEqual([]);
    // Requests that were in flight when the signal came were finished, not cut off.
    expect(attempts.some((a) => a.answeredAfterSignal && a.outcome === 'ok')).toBe(true);
    // A request sent before the signal was served or refused, never cut off.
    expect(attempts.filter((a) => a.sentBeforeSignal && a.outcome === 'lost')).toEqual([]);
    expect(attempts.some((a) => a.outcome === 'refused' || a.outcome === 'lost')).toBe(true);
    expect(await subscriptionEnd).toMatchObject({
      errors: [{ extensions: { code: 'SERVER_STOPPING' } }],
    });
    expect(closeCodes).toEqual([1012]);

    // Every acknowledged mutation is in the database; no refused one is.
    try {
      const runs = await sql<{ id: string; idempotency_key: string; status: string }[]>`
        SELECT id, idempotency_key, status FROM runs WHERE project = ${project}`;
      const byKey = new Map(runs.map((r) => [r.idempotency_key, r]));
      for (const a of attempts.filter((a) => a.kind === 'create')) {
        if (a.outcome === 'ok') expect(byKey.get(a.key)?.id, a.key).toBe(a.runId);
        if (a.outcome === 'refused') expect(byKey.has(a.key), a.key).toBe(false);
      }
      const queued = new Set(runs.filter((r) => r.status === 'QUEUED').map((r) => r.id));
      const [heldRow] = await sql<
        { progress: number }[]
      >`SELECT progress FROM runs WHERE id = ${heldId}`;
      expect(heldRow!.progress).toBe(0.5);
      for (const a of attempts.filter((a) => a.kind === 'transition')) {
        if (a.outcome === 'ok') expect(queued.has(a.runId!), a.runId).toBe(true);
        if (a.outcome === 'refused') expect(queued.has(a.runId!), a.runId).toBe(false);
      }
    } finally {
      await sql.end();
    }

    // Logs are JSON lines; those written for a request carry its id.
    const firstKey = attempts[0]!.key;
    const requestLine = proc
      .output()
      .split('\n')
      .find(
        (line) => line.includes(`"requestId":"${firstKey}"`) && line.includes('"msg":"request"'),
      );
    expect(JSON.parse(requestLine!)).toMatchObject({
      msg: 'request',
      status: 200,
      path: '/graphql',
    });
    expect(proc.output()).toContain('draining, then stopping');
    await ws.dispose();
  }, 60_000);
});
