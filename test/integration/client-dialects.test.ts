import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createRunstateClient,
  RunstateError,
  TransitionRefusedError,
  type RunstateClient,
  type StatusChange,
} from '../../src/client/index.js';
import { startFlakyProxy } from '../support/flaky-proxy.js';
import { dataOf, getHistory, latestCursorOf } from '../support/operations.js';
import {
  startServer,
  TEST_ADMIN_TOKEN,
  uniqueProject,
  type TestServer,
} from '../support/server.js';

interface SentBody {
  query: string;
  variables?: {
    input?: { id?: string; native?: string; attempt?: number; idempotencyKey?: string };
  };
}

/** Dialects through the worker client: runs created, driven and read in a system's own names. */
describe('the worker client speaks dialects', () => {
  let server: TestServer;
  let proxy: Awaited<ReturnType<typeof startFlakyProxy>>;
  let client: RunstateClient;
  let flaky: RunstateClient;
  const sent: SentBody[] = [];
  beforeAll(async () => {
    server = await startServer();
    proxy = await startFlakyProxy(server.url);
    client = createRunstateClient({ url: server.url, token: TEST_ADMIN_TOKEN });
    flaky = createRunstateClient({
      url: proxy.url,
      token: TEST_ADMIN_TOKEN,
      retry: { baseDelayMs: 20 },
      // Every request body the flaky client sends, retries included.
      fetch: (url, init) => {
        sent.push(JSON.parse(String(init?.body)) as SentBody);
        return fetch(url, init);
      },
    });
  });
  afterAll(async () => {
    await client.close();
    await flaky.close();
    await proxy.close();
    await server.stop();
  });

  /** The run as the server has it, read apart from the client. */
  async function serverRun(id: string) {
    return dataOf(
      await server.gql<{
        run: { status: string; version: number; dialect: string; nativeStatus: string };
      }>(`query($id: ID!) { run(id: $id) { status version dialect nativeStatus } }`, { id }),
    ).run;
  }

  it('a Parsl run driven by transition("launched"), transition("exec_done") ends SUCCEEDED, read as exec_done', async () => {
    const run = await client.createRun({ project: uniqueProject('parsl'), dialect: 'PARSL' });
    expect(run.current).toMatchObject({
      dialect: 'PARSL',
      status: 'CREATED',
      nativeStatus: 'pending',
    });

    const launched = await run.transition('launched');
    expect(launched).toMatchObject({ status: 'SCHEDULED', nativeStatus: 'launched' });
    expect(run.current.nativeStatus).toBe('launched');

    const done = await run.transition('exec_done');
    expect(done).toMatchObject({ status: 'SUCCEEDED', isDone: true, nativeStatus: 'exec_done' });
    expect(run.current.nativeStatus).toBe('exec_done');

    expect(await serverRun(run.id)).toMatchObject({
      dialect: 'PARSL',
      status: 'SUCCEEDED',
      nativeStatus: 'exec_done',
    });
    expect((await getHistory(server, run.id)).map((c) => c.to)).toEqual([
      'CREATED',
      'SCHEDULED',
      'SUCCEEDED',
    ]);
  });

  it('an unknown native name is refused with BAD_USER_INPUT naming the field and the dialect’s names; nothing changes', async () => {
    const run = await client.createRun({ project: uniqueProject('parsl'), dialect: 'PARSL' });
    await run.transition('launched');
    const before = await serverRun(run.id);

    const refused = await run.transition('finished').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(RunstateError);
    const error = refused as RunstateError;
    expect(error.code).toBe('BAD_USER_INPUT');
    expect(error.field).toBe('input.native');
    expect(error.allowed).toEqual(expect.arrayContaining(['launched', 'exec_done', 'memo_done']));
    expect(error.extensions).toMatchObject({ field: 'input.native' });
    expect(error.message).toContain('finished');

    // A name of another dialect is unknown in this one, unless that dialect is named.
    const foreign = await run.transition('SUCCESS').catch((e: unknown) => e);
    expect(foreign).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.native' });

    expect(await serverRun(run.id)).toEqual(before);
    expect(run.current).toMatchObject({ status: 'SCHEDULED', nativeStatus: 'launched' });
    expect((await getHistory(server, run.id)).map((c) => c.to)).toEqual(['CREATED', 'SCHEDULED']);
  });

  it('a name of another dialect is taken with { dialect }; the run still answers in its own', async () => {
    const run = await client.createRun({ project: uniqueProject('parsl'), dialect: 'PARSL' });
    await run.transition('launched');
    // Perceval's server spelling, on a Parsl run.
    const done = await run.transition('completed', {
      dialect: 'PERCEVAL',
      message: 'via perceval',
    });
    expect(done).toMatchObject({ status: 'SUCCEEDED', nativeStatus: 'exec_done' });
    const history = await getHistory(server, run.id);
    expect(history.at(-1)).toMatchObject({ to: 'SUCCEEDED', message: 'via perceval' });
  });

  it('what the lifecycle refuses in native names throws TransitionRefusedError, as start()/succeed() do', async () => {
    const run = await client.createRun({ project: uniqueProject('parsl'), dialect: 'PARSL' });
    await run.transition('launched');
    await run.transition('exec_done');
    const refused = await run.transition('launched').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(TransitionRefusedError);
    expect(refused).toMatchObject({
      kind: 'IllegalTransition',
      details: { from: 'SUCCEEDED', to: 'SCHEDULED' },
    });
    expect(run.current.nativeStatus).toBe('exec_done');
  });

  it('start()/succeed() still send runstate statuses on a Parsl run, and it answers in Parsl names', async () => {
    const run = await client.createRun({ project: uniqueProject('parsl'), dialect: 'PARSL' });
    expect((await run.start()).nativeStatus).toBe('running');
    expect(await run.succeed()).toMatchObject({ status: 'SUCCEEDED', nativeStatus: 'exec_done' });
  });

  it('a native transition is fenced by the handle’s attempt: a stale worker cannot end the retried run', async () => {
    const run = await client.createRun({ project: uniqueProject('fence'), dialect: 'PARSL' });
    const stale = await client.run(run.id); // a worker of attempt 1
    await run.transition('launched');
    const retried = await run.transition('fail_retryable');
    expect(retried).toMatchObject({ status: 'RETRYING', attempt: 2 });

    const refused = await stale.transition('exec_done').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(TransitionRefusedError);
    expect(refused).toMatchObject({ kind: 'TransitionConflict', details: { actualAttempt: 2 } });
    expect((await serverRun(run.id)).status).toBe('RETRYING');

    // The current attempt's worker goes on in Parsl names.
    await run.transition('launched');
    expect((await run.transition('exec_done')).nativeStatus).toBe('exec_done');
  });

  it('a native transition whose answer was lost is retried with the same key and attempt: made once', async () => {
    const run = await flaky.createRun({ project: uniqueProject('lost'), dialect: 'PARSL' });
    proxy.loseNextAnswers(1);
    expect((await run.transition('launched')).nativeStatus).toBe('launched');
    proxy.loseNextAnswers(1);
    expect((await run.transition('exec_done')).nativeStatus).toBe('exec_done');
    expect(proxy.lost()).toBeGreaterThanOrEqual(2);
    expect((await getHistory(server, run.id)).map((c) => c.to)).toEqual([
      'CREATED',
      'SCHEDULED',
      'SUCCEEDED',
    ]);
    // What went over the wire: each try of a change carried the same key, and the attempt.
    const tries = sent
      .filter((body) => body.variables?.input?.id === run.id && body.variables.input.native)
      .map((body) => body.variables!.input!);
    expect(tries.map((input) => input.native)).toEqual([
      'launched',
      'launched',
      'exec_done',
      'exec_done',
    ]);
    expect(tries.every((input) => input.attempt === 1)).toBe(true);
    expect(new Set(tries.map((input) => input.idempotencyKey)).size).toBe(2);
    expect(tries[0]!.idempotencyKey).toBe(tries[1]!.idempotencyKey);
    expect(tries[2]!.idempotencyKey).toBe(tries[3]!.idempotencyKey);
  });

  it('listRuns filters by a dialect’s predicate and answers nativeStatus in the dialect asked for', async () => {
    const project = uniqueProject('pred');
    const waiting = await client.createRun({ project, name: 'waiting', dialect: 'PARSL' });
    const done = await client.createRun({ project, name: 'done', dialect: 'PARSL' });
    await done.transition('launched');
    await done.transition('exec_done');
    const memo = await client.createRun({ project, name: 'memo', dialect: 'PARSL' });
    await memo.transition('memo_done');

    const final = await client.listRuns({
      project,
      predicate: { dialect: 'PARSL', name: 'final' },
    });
    expect(final.runs.map((r) => [r.name, r.nativeStatus]).sort()).toEqual([
      ['done', 'exec_done'],
      ['memo', 'memo_done'],
    ]);

    const inPerceval = await client.listRuns({ project }, { dialect: 'PERCEVAL' });
    expect(Object.fromEntries(inPerceval.runs.map((r) => [r.name, r.nativeStatus]))).toEqual({
      waiting: 'WAITING',
      done: 'SUCCESS',
      memo: 'CANCELED',
    });
    // Without a dialect, each run answers in its own.
    const own = await client.listRuns({ project });
    expect(own.runs.find((r) => r.id === waiting.id)).toMatchObject({
      dialect: 'PARSL',
      nativeStatus: 'pending',
    });
  });

  it('watch() filters by a predicate and names each change’s `to` natively (nativeTo)', async () => {
    const project = uniqueProject('watchp');
    const run = await client.createRun({ project, dialect: 'PARSL' });
    const after = await latestCursorOf(server, run.id);
    const finals = client.watch(
      { projects: [project], predicate: { dialect: 'PARSL', name: 'final' } },
      { after },
    );
    const everything = client.watch({ projects: [project] }, { after, dialect: 'PERCEVAL' });
    await run.transition('launched');
    await run.transition('exec_done');

    const first = (await finals.next()).value as StatusChange;
    expect(first).toMatchObject({ to: 'SUCCEEDED', nativeTo: 'exec_done', runId: run.id });
    await finals.return?.();

    const got: StatusChange[] = [];
    for await (const change of everything) {
      got.push(change);
      if (change.to === 'SUCCEEDED') break;
    }
    expect(got.map((c) => [c.to, c.nativeTo])).toEqual([
      ['SCHEDULED', 'RUNNING'],
      ['SUCCEEDED', 'SUCCESS'],
    ]);
  });
});
