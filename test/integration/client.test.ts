import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createRunstateClient,
  TransitionRefusedError,
  type RunstateClient,
  type StatusChange,
} from '../../src/client/index.js';
import { startFlakyProxy } from '../support/flaky-proxy.js';
import { dataOf, getHistory, latestCursorOf, sleep, waitUntil } from '../support/operations.js';
import {
  startServer,
  TEST_ADMIN_TOKEN,
  uniqueProject,
  type TestServer,
} from '../support/server.js';

describe('the worker client against a real server', () => {
  let server: TestServer;
  let proxy: Awaited<ReturnType<typeof startFlakyProxy>>;
  let client: RunstateClient;
  let flaky: RunstateClient;
  beforeAll(async () => {
    server = await startServer();
    proxy = await startFlakyProxy(server.url);
    client = createRunstateClient({ url: server.url, token: TEST_ADMIN_TOKEN });
    flaky = createRunstateClient({
      url: proxy.url,
      token: TEST_ADMIN_TOKEN,
      retry: { baseDelayMs: 20 },
      measurementFlushMs: 20,
    });
  });
  afterAll(async () => {
    await client.close();
    await flaky.close();
    await proxy.close();
    await server.stop();
  });

  async function measurementCount(runId: string): Promise<number> {
    const data = dataOf(
      await server.gql<{ run: { measurements: { edges: unknown[] } } }>(
        `query($id: ID!) { run(id: $id) { measurements(first: 500) { edges { cursor } } } }`,
        { id: runId },
      ),
    );
    return data.run.measurements.edges.length;
  }

  it('reports a run from start to success in a few lines', async () => {
    const run = await client.createRun({ project: uniqueProject('client'), name: 'train' });
    expect(run.current.status).toBe('CREATED');
    expect((await run.start()).status).toBe('RUNNING');
    expect(await run.progress(0.5, 'epoch 1')).toMatchObject({ progress: 0.5, phase: 'epoch 1' });
    await Promise.all([
      run.measure('loss', 0.9, 1),
      run.measure('loss', 0.5, 2),
      run.measure('acc', 0.7, 2),
    ]);
    const done = await run.succeed('converged');
    expect(done).toMatchObject({ status: 'SUCCEEDED', isDone: true });
    expect((await getHistory(server, run.id)).map((c) => c.to)).toEqual([
      'CREATED',
      'RUNNING',
      'SUCCEEDED',
    ]);
    expect(await measurementCount(run.id)).toBe(3);
  });

  it('refuses what the lifecycle refuses, with a typed error', async () => {
    const run = await client.createRun({ project: uniqueProject('client') });
    await run.start();
    await run.succeed();
    const refused = await run.fail('too late').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(TransitionRefusedError);
    expect(refused).toMatchObject({ kind: 'IllegalTransition' });
  });

  it('sends heartbeats while running, stops after; sees a stop request and stops', async () => {
    const beating = createRunstateClient({
      url: server.url,
      token: TEST_ADMIN_TOKEN,
      heartbeatIntervalMs: 50,
    });
    try {
      const run = await beating.createRun({ project: uniqueProject('beat') });
      await run.start();
      const heartbeatAt = async () =>
        dataOf(
          await server.gql<{ run: { heartbeatAt: string | null } }>(
            `query($id: ID!) { run(id: $id) { heartbeatAt } }`,
            { id: run.id },
          ),
        ).run.heartbeatAt;
      await waitUntil('a heartbeat', async () => (await heartbeatAt()) != null);
      const first = await heartbeatAt();
      await waitUntil('another heartbeat', async () => (await heartbeatAt()) !== first);

      // An operator asks the run to stop; the worker learns it from its next heartbeat.
      await server.gql(
        `mutation($id: ID!) { stopRun(id: $id, message: "operator") { __typename } }`,
        {
          id: run.id,
        },
      );
      await waitUntil('stop requested', () => run.stopRequested);
      expect((await run.stop('cleaned up')).status).toBe('STOPPED');
      const stopped = await heartbeatAt();
      await sleep(200);
      expect(await heartbeatAt()).toBe(stopped); // no heartbeats once done
    } finally {
      await beating.close();
    }
  });

  it('retries a request whose answer was lost with the same idempotency key: each change is made once', async () => {
    const project = uniqueProject('lost');
    proxy.loseNextAnswers(1);
    const run = await flaky.createRun({ project });
    proxy.loseNextAnswers(1);
    expect((await run.start()).status).toBe('RUNNING');
    proxy.loseNextAnswers(1);
    await Promise.all([run.measure('loss', 1), run.measure('loss', 2)]);
    proxy.loseNextAnswers(1);
    expect((await run.succeed()).status).toBe('SUCCEEDED');
    expect(proxy.lost()).toBeGreaterThanOrEqual(4);

    const runs = dataOf(
      await server.gql<{ runs: { edges: { node: { id: string } }[] } }>(
        `query($p: String!) { runs(filter: { project: $p }) { edges { node { id } } } }`,
        { p: project },
      ),
    ).runs.edges.map((e) => e.node);
    expect(runs.map((r) => r.id)).toEqual([run.id]);
    expect((await getHistory(server, run.id)).map((c) => c.to)).toEqual([
      'CREATED',
      'RUNNING',
      'SUCCEEDED',
    ]);
    expect(await measurementCount(run.id)).toBe(2);
  });

  it('watch() resumes from its last cursor after the connection drops: every change once, in order', async () => {
    const project = uniqueProject('watch');
    const run = await client.createRun({ project });
    const reconnects: string[] = [];
    // After the creation's cursor: every later change, however soon the socket is up.
    const watch = flaky.watch(
      { projects: [project] },
      {
        after: await latestCursorOf(server, run.id),
        onReconnect: ({ reason }) => reconnects.push(reason),
      },
    );
    const got: StatusChange[] = [];
    const reading = (async () => {
      for await (const change of watch) {
        got.push(change);
        if (change.to === 'SUCCEEDED') break;
      }
    })();
    const path = ['QUEUED', 'SCHEDULED', 'STARTING', 'RUNNING', 'PROCESSING', 'SUCCEEDED'];
    for (const [i, to] of path.entries()) {
      await server.gql(
        `mutation($id: ID!, $to: RunStatus!) { transitionRun(input: { id: $id, to: $to }) { __typename } }`,
        {
          id: run.id,
          to,
        },
      );
      if (i === 1 || i === 3) {
        await waitUntil('delivered', () => got.length === i + 1);
        proxy.cutAll(); // the network drops the socket; the next changes commit meanwhile
      }
    }
    await reading;
    expect(got.map((c) => [c.to, c.version])).toEqual(path.map((to, i) => [to, i + 2]));
    expect(reconnects.length).toBeGreaterThanOrEqual(2);
    expect(watch.cursor).toBe(got.at(-1)!.cursor);
  });

  it('watch() with a filter the server refuses throws the server’s error instead of retrying', async () => {
    const watch = client.watch({ runIds: ['not-a-uuid'] });
    await expect(watch.next()).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
  });
});
