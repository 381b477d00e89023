import { writeFileSync } from 'node:fs';
import postgres from 'postgres';
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createRunstateClient } from '../../src/client/index.js';
import { startProcess, type ServiceProcess } from '../support/process.js';
import { binariesInUse, initCluster, type Cluster } from '../support/throwaway-postgres.js';

// The fault model of ../shared/design/reliability.md, against real processes: two service
// instances on a PostgreSQL cluster of the test's own (with a synchronous standby), writers and
// resuming subscribers, while the test kills connections, restarts the server fast and
// immediately, holds a transaction open in another database, and fails over to the standby.

const TOKEN = 'rst_fault-suite-admin-token-0123456789';
const PROJECT = 'faults';
/** A request without an answer after this long is a hang. */
const HANG_MS = 10_000;
/** The fault-model's bound for an answer during an outage, with slack for a loaded machine. */
const OUTAGE_ANSWER_MS = 7_000;

let primary: Cluster;
let standby: Cluster;
let admin: postgres.Sql;
const services: ServiceProcess[] = [];
/** Closed in afterAll too, so a failed test leaves no client resubscribing for ever. */
const openSubscribers: { close(): Promise<void> }[] = [];
/** Instances that live through the whole test (the last one is killed). */
const SURVIVORS = 2;
const urls: string[] = [];

interface Answer {
  instance: number;
  at: number;
  ms: number;
  kind: 'data' | '503' | 'other' | 'hang';
  detail: string;
}
const answers: Answer[] = [];
/** Changes the service acknowledged: run id → statuses accepted, in order. */
const acknowledged = new Map<string, string[]>();
let stopWriting = false;
let lastWriteOk = 0;
/** The longest time without a single successful write, while writing. */
let longestOutage = 0;
function noteWrite(): void {
  const now = Date.now();
  if (lastWriteOk > 0) longestOutage = Math.max(longestOutage, now - lastWriteOk);
  lastWriteOk = now;
}

beforeAll(async () => {
  primary = await initCluster();
  standby = await primary.cloneAsStandby();
  await primary.start();
  await standby.start();
  admin = postgres(primary.url(), { max: 1, onnotice: () => {} });
  await admin`CREATE DATABASE runstate`;
  const databaseUrl =
    `postgres://postgres@127.0.0.1:${primary.port},127.0.0.1:${standby.port}/runstate` +
    '?target_session_attrs=read-write';
  // Instances 0 and 1 take the writers; 2 only serves a subscriber, and is killed (SIGKILL).
  for (let i = 0; i < 3; i++) {
    const service = startProcess({
      DATABASE_URL: databaseUrl,
      PORT: '0',
      HOST: '127.0.0.1',
      RUNSTATE_ADMIN_TOKEN: TOKEN,
      DATABASE_POOL_SIZE: '8',
      DATABASE_CONNECT_TIMEOUT: '3',
      DASHBOARD: 'false',
      LOG_LEVEL: 'info',
    });
    services.push(service);
    urls.push(await service.listening);
  }
  console.log(`fault suite: PostgreSQL from ${binariesInUse()}`);
}, 120_000);

afterAll(async () => {
  stopWriting = true;
  await Promise.all(openSubscribers.map((s) => s.close()));
  if (process.env['FAULTS_DEBUG']) {
    for (const [i, service] of services.entries())
      writeFileSync(`${process.env['FAULTS_DEBUG']}-${i}.log`, service.output());
    writeFileSync(`${process.env['FAULTS_DEBUG']}-answers.json`, JSON.stringify(answers, null, 1));
  }
  for (const service of services)
    if (service.child.exitCode === null) service.child.kill('SIGKILL');
  await admin?.end({ timeout: 1 }).catch(() => {});
  await standby?.remove();
  await primary?.remove();
});

/** One POST; every answer is classified (data, 503, anything else, or no answer in time). */
async function post(
  instance: number,
  query: string,
  variables: Record<string, unknown>,
): Promise<{ ok: boolean; data?: Record<string, unknown> }> {
  const started = Date.now();
  const record = (kind: Answer['kind'], detail: string) =>
    answers.push({ instance, at: started, ms: Date.now() - started, kind, detail });
  try {
    const response = await fetch(urls[instance]!, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ query, variables }),
      signal: AbortSignal.timeout(HANG_MS),
    });
    const body = (await response.json()) as {
      data?: Record<string, unknown>;
      errors?: { extensions?: { code?: string } }[];
    };
    const code = body.errors?.[0]?.extensions?.code;
    if (response.status === 200 && !body.errors && body.data) {
      record('data', '');
      return { ok: true, data: body.data };
    }
    if (response.status === 503 && code === 'SERVICE_UNAVAILABLE') {
      record('503', '');
      return { ok: false };
    }
    record('other', `${response.status} ${JSON.stringify(body)}`);
    return { ok: false };
  } catch (error) {
    const timedOut = (error as Error).name === 'TimeoutError';
    record(timedOut ? 'hang' : 'other', String(error));
    return { ok: false };
  }
}

/** Send until it is data, with the same body (and so the same idempotency key). */
async function untilDone(
  instance: number,
  query: string,
  variables: Record<string, unknown>,
): Promise<Record<string, unknown> | null> {
  while (!stopWriting) {
    const { ok, data } = await post(instance, query, variables);
    if (ok) {
      noteWrite();
      return data!;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return null;
}

const CREATE = `mutation($input: CreateRunInput!) { createRun(input: $input) { id } }`;
const TRANSITION = `mutation($input: TransitionRunInput!) {
  transitionRun(input: $input) { __typename ... on TransitionAccepted { run { status } } }
}`;

/** A writer over raw HTTP: create a run, RUNNING, SUCCEEDED; again, until told to stop. */
async function writer(name: string, instance: number): Promise<void> {
  for (let i = 0; !stopWriting; i++) {
    const key = `${name}-${i}`;
    const created = await untilDone(instance, CREATE, {
      input: { project: PROJECT, name: key, idempotencyKey: `create-${key}` },
    });
    if (!created) return;
    const id = (created['createRun'] as { id: string }).id;
    acknowledged.set(id, ['CREATED']);
    for (const to of ['RUNNING', 'SUCCEEDED']) {
      const result = await untilDone(instance, TRANSITION, {
        input: { id, to, idempotencyKey: `${to}-${key}` },
      });
      if (!result) return;
      const outcome = result['transitionRun'] as { __typename: string };
      expect(outcome.__typename, `${key} → ${to}`).toBe('TransitionAccepted');
      acknowledged.get(id)!.push(to);
    }
  }
}

/** A writer through the worker client, which retries SERVICE_UNAVAILABLE by itself. */
async function clientWriter(instance: number): Promise<void> {
  const client = createRunstateClient({
    url: urls[instance]!,
    token: TOKEN,
    retry: { attempts: 60, baseDelayMs: 100, maxDelayMs: 500, timeoutMs: HANG_MS },
  });
  try {
    for (let i = 0; !stopWriting; i++) {
      const run = await client.createRun({ project: PROJECT, name: `client-${i}` });
      acknowledged.set(run.id, ['CREATED']);
      await run.start();
      acknowledged.get(run.id)!.push('RUNNING');
      await run.succeed();
      acknowledged.get(run.id)!.push('SUCCEEDED');
      noteWrite();
    }
  } finally {
    await client.close();
  }
}

interface Delivered {
  runId: string;
  to: string;
  version: number;
  cursor: string;
}

/** A subscriber that resumes from its last cursor, on the other instance each time. */
function subscriber(firstInstance: number, from: string) {
  const delivered: Delivered[] = [];
  // From a cursor read before any write: a subscription registers asynchronously, and one
  // without `after` would start only at the log position it finds then.
  let cursor: string = from;
  let instance = firstInstance;
  let client: Client | null = null;
  let resumes = 0;
  let closed = false;
  const subscribe = () => {
    if (closed) return;
    client = createClient({
      url: urls[instance]!.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      connectionParams: { token: TOKEN },
      retryAttempts: 0,
      lazy: true,
    });
    const current = client;
    const again = () => {
      if (closed) return;
      resumes++;
      instance = (instance + 1) % SURVIVORS;
      void current.dispose();
      setTimeout(subscribe, 200);
    };
    current.subscribe<{ statusChanged: Delivered }>(
      {
        query: `subscription($after: String) {
          statusChanged(filter: { projects: ["${PROJECT}"] }, after: $after) { runId to version cursor }
        }`,
        variables: { after: cursor },
      },
      {
        next: (result) => {
          const change = result.data?.statusChanged;
          if (!change) return again();
          delivered.push(change);
          cursor = change.cursor;
        },
        error: again,
        complete: again,
      },
    );
  };
  subscribe();
  const handle = {
    delivered,
    resumes: () => resumes,
    async close() {
      closed = true;
      await client?.dispose();
    },
  };
  openSubscribers.push(handle);
  return handle;
}

/** /ready of instance 0, polled: when it answered what. */
const readiness: { at: number; status: number }[] = [];
async function pollReady(): Promise<void> {
  while (!stopWriting) {
    const at = Date.now();
    const status = await fetch(new URL('/ready', urls[0]), { signal: AbortSignal.timeout(5000) })
      .then((r) => r.status)
      .catch(() => 0);
    readiness.push({ at, status });
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Wait until a write succeeds after `since`; answers how long the outage lasted. */
async function recovered(since: number, what: string): Promise<number> {
  const deadline = Date.now() + 30_000;
  while (lastWriteOk <= since) {
    if (Date.now() > deadline) throw new Error(`no write succeeded within 30 s after ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return lastWriteOk - since;
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 1500));

it('two instances ride out killed connections, restarts, a foreign long transaction and a failover', async () => {
  const start = await post(
    0,
    `{ runs(first: 1, filter: { project: "${PROJECT}" }) { logCursor } }`,
    {},
  );
  const from = (start.data!['runs'] as { logCursor: string }).logCursor;
  const subscribers = [subscriber(0, from), subscriber(1, from), subscriber(2, from)];
  const readyPolling = pollReady();
  const writing = Promise.all([
    writer('a', 0),
    writer('b', 1),
    writer('c', 0),
    writer('d', 1),
    clientWriter(1),
  ]);
  const outages: Record<string, number> = {};
  const timeline: [string, number][] = [];
  const mark = (what: string) => timeline.push([what, Date.now()]);
  const readyAfterReturn: Record<string, number> = {};
  await settle();

  mark('start');
  // 1. The database kills runstate's connections, three times.
  for (let i = 0; i < 3; i++) {
    const at = Date.now();
    await admin`
      SELECT pg_terminate_backend(pid) FROM pg_stat_activity
      WHERE datname = 'runstate' AND pid <> pg_backend_pid()`;
    outages[`terminate ${i + 1}`] = await recovered(at, 'killed connections');
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  // An instance is killed: its subscriber resumes on another from its last cursor.
  services[2]!.child.kill('SIGKILL');
  await services[2]!.exited;
  await settle();

  mark('restarts');
  // 2-3. Restarts, fast and immediate.
  for (const mode of ['fast', 'immediate'] as const) {
    const at = Date.now();
    await admin.end({ timeout: 1 });
    await primary.stop(mode);
    await new Promise((resolve) => setTimeout(resolve, 1000)); // an outage long enough to see
    await primary.start();
    const back = Date.now();
    admin = postgres(primary.url(), { max: 1, onnotice: () => {} });
    outages[`restart -m ${mode}`] = await recovered(at, `a ${mode} restart`);
    const readyAgain = () => readiness.find((r) => r.at >= back && r.status === 200);
    await waitFor(() => readyAgain() !== undefined, '/ready 200');
    readyAfterReturn[mode] = readyAgain()!.at - back;
    await settle();
  }
  const sawNotReady = readiness.some((r) => r.status === 503);

  mark('foreign hold');
  // 4. A transaction held open in another database, plus a rolled-back change-log id.
  const foreign = await admin.reserve();
  await foreign`BEGIN`;
  await foreign`SELECT pg_current_xact_id()`;
  const runstateDb = postgres(primary.url('runstate'), { max: 1, onnotice: () => {} });
  await runstateDb
    .begin(async (tx) => {
      await tx`
        INSERT INTO status_changes (run_id, project, from_status, to_status, version, at)
        VALUES (gen_random_uuid(), 'rolled-back', 'CREATED', 'QUEUED', 2, now())`;
      throw new Error('roll back');
    })
    .catch(() => {});
  const deliveredBefore = subscribers.map((s) => s.delivered.length);
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const deliveredDuringHold = subscribers.map((s, i) => s.delivered.length - deliveredBefore[i]!);
  await foreign`ROLLBACK`;
  foreign.release();
  await runstateDb.end();

  mark('failover');
  // 5. Failover: the primary dies, the standby is promoted.
  const failoverAt = Date.now();
  await admin.end({ timeout: 1 });
  await primary.stop('immediate');
  await standby.promote();
  outages['failover'] = await recovered(failoverAt, 'the failover');
  await settle();

  mark('stop writing');
  stopWriting = true;
  await writing;
  await readyPolling;

  // Every acknowledged change is in the database (now the promoted standby).
  const db = postgres(standby.url('runstate'), { max: 1, onnotice: () => {} });
  const rows = await db<{ run_id: string; to_status: string; version: number }[]>`
    SELECT run_id, to_status, version FROM status_changes WHERE project = ${PROJECT} ORDER BY id`;
  await db.end();
  const stored = new Map<string, string[]>();
  for (const row of rows)
    stored.set(row.run_id, [...(stored.get(row.run_id) ?? []), row.to_status]);
  let acknowledgedCount = 0;
  const lost: string[] = [];
  for (const [id, statuses] of acknowledged) {
    acknowledgedCount += statuses.length;
    const have = stored.get(id) ?? [];
    for (const status of statuses) if (!have.includes(status)) lost.push(`${id} ${status}`);
  }

  // Subscribers complete (every stored change once), after the last resume.
  if (process.env['FAULTS_DEBUG']) {
    writeFileSync(
      `${process.env['FAULTS_DEBUG']}-subscribers.json`,
      JSON.stringify(
        { stored: rows.length, got: subscribers.map((s) => s.delivered.length), timeline },
        null,
        1,
      ),
    );
  }
  for (const s of subscribers) {
    await waitFor(() => s.delivered.length >= rows.length, 'subscribers to catch up', 20_000);
  }
  await new Promise((resolve) => setTimeout(resolve, 300));
  for (const s of subscribers) await s.close();
  const storedKeys = new Set(rows.map((r) => `${r.run_id}/${r.version}`));
  const figures = subscribers.map((s) => {
    const seen = new Set<string>();
    let duplicates = 0;
    for (const d of s.delivered) {
      const key = `${d.runId}/${d.version}`;
      if (seen.has(key)) duplicates++;
      seen.add(key);
    }
    const missing = [...storedKeys].filter((k) => !seen.has(k)).length;
    return { delivered: s.delivered.length, duplicates, missing, resumes: s.resumes() };
  });

  const count = (kind: Answer['kind']) => answers.filter((a) => a.kind === kind).length;
  const slowestOutageAnswer = Math.max(
    0,
    ...answers.filter((a) => a.kind === '503').map((a) => a.ms),
  );
  const exits = services.slice(0, SURVIVORS).map((s) => s.child.exitCode);
  console.log(
    'fault suite figures:\n' +
      JSON.stringify(
        {
          requests: answers.length,
          data: count('data'),
          answered503: count('503'),
          other: count('other'),
          hangs: count('hang'),
          slowest503Ms: slowestOutageAnswer,
          acknowledgedChanges: acknowledgedCount,
          storedChanges: rows.length,
          lost: lost.length,
          longestOutageMs: longestOutage,
          firstWriteAfterFaultMs: outages,
          readyAfterReturnMs: readyAfterReturn,
          deliveredDuringForeignHold: deliveredDuringHold,
          subscribers: figures,
          exits,
        },
        null,
        2,
      ),
  );

  expect(exits).toEqual([null, null]);
  expect(answers.filter((a) => a.kind === 'other' || a.kind === 'hang')).toEqual([]);
  expect(count('503')).toBeGreaterThan(0);
  expect(slowestOutageAnswer).toBeLessThan(OUTAGE_ANSWER_MS);
  expect(lost).toEqual([]);
  expect(acknowledgedCount).toBeGreaterThan(50);
  expect(sawNotReady).toBe(true);
  for (const mode of ['fast', 'immediate']) expect(readyAfterReturn[mode]).toBeLessThan(3000);
  for (const delivered of deliveredDuringHold) expect(delivered).toBeGreaterThan(0);
  for (const f of figures) expect(f).toMatchObject({ duplicates: 0, missing: 0 });
  expect(figures[2]!.resumes).toBeGreaterThan(0);

  // And they still drain and exit cleanly.
  const survivors = services.slice(0, SURVIVORS);
  for (const service of survivors) service.child.kill('SIGTERM');
  expect(await Promise.all(survivors.map((s) => s.exited))).toEqual([0, 0]);
}, 240_000);

async function waitFor(condition: () => boolean, what: string, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
