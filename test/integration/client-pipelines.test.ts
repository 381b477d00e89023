import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createRunstateClient,
  RunstateError,
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
  variables?: { input?: { op?: string; idempotencyKey?: string } };
}

/** Pipelines (pipelines.md) through the worker client: a parent and its steps by op name. */
describe('the worker client creates and drives pipelines', () => {
  let server: TestServer;
  let proxy: Awaited<ReturnType<typeof startFlakyProxy>>;
  let client: RunstateClient;
  let flaky: RunstateClient;
  const sent: SentBody[] = [];
  /** The next createRun of this op through `flaky` loses its first answer. */
  let loseAnswerOf: string | null = null;
  beforeAll(async () => {
    server = await startServer();
    proxy = await startFlakyProxy(server.url);
    client = createRunstateClient({ url: server.url, token: TEST_ADMIN_TOKEN });
    flaky = createRunstateClient({
      url: proxy.url,
      token: TEST_ADMIN_TOKEN,
      retry: { baseDelayMs: 20 },
      fetch: (url, init) => {
        const body = JSON.parse(String(init?.body)) as SentBody;
        sent.push(body);
        if (loseAnswerOf != null && body.variables?.input?.op === loseAnswerOf) {
          loseAnswerOf = null;
          proxy.loseNextAnswers(1); // it reaches the server and commits; its answer is lost
        }
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

  /** How many runs a project has, by status (runCounts), read apart from the client. */
  async function countsOf(project: string) {
    return dataOf(
      await server.gql<{ runCounts: { status: string; count: number }[] }>(
        `query($p: String!) { runCounts(filter: { project: $p }) { status count } }`,
        { p: project },
      ),
    ).runCounts;
  }

  it('creates a pipeline by op names and drives it to the end: the rollup parent ends SUCCEEDED', async () => {
    const project = uniqueProject('client-dag');
    const p = await client.createPipeline({ project, name: 'dag', rollup: true }, [
      { op: 'prepare' },
      { op: 'train', dependsOn: ['ops.prepare'] },
      { op: 'evaluate', dependencies: [{ ref: 'ops.train', when: ['SUCCEEDED'] }] },
    ]);
    const { prepare, train, evaluate } = p.steps; // typed by op: no undefined
    expect(p.parent.current).toMatchObject({ project, name: 'dag', rollup: true, op: null });
    expect(Object.keys(p.steps)).toEqual(['prepare', 'train', 'evaluate']);
    for (const [op, step] of Object.entries(p.steps))
      expect(step.current).toMatchObject({ project, op, status: 'CREATED', rollup: false });
    expect(train.current.blockedReason).toBeTruthy(); // it waits for ops.prepare

    // The steps, read back: by op, and as a page with its total.
    expect((await client.runByOp(p.parent.id, 'train')).id).toBe(train.id);
    const missing = await client.runByOp(p.parent.id, 'nope').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(RunstateError);
    expect(missing).toMatchObject({ code: 'NOT_FOUND' });
    const page = await client.listRuns(
      { parentId: p.parent.id },
      { first: 2, totalCount: true, orderBy: { direction: 'ASC' } },
    );
    expect(page.runs.map((r) => r.op)).toEqual(['prepare', 'train']);
    expect(page).toMatchObject({ totalCount: 3, hasNextPage: true });
    const roots = await client.listRuns({ project, roots: true });
    expect(roots.runs.map((r) => r.id)).toEqual([p.parent.id]);
    expect(roots.totalCount).toBeUndefined(); // counted only when asked

    // The pipeline's changes, live: every step's, none of the parent's.
    const watch = client.watch(
      { parentId: p.parent.id },
      { after: await latestCursorOf(server, p.parent.id) },
    );
    await prepare.start();
    expect((await client.run(p.parent.id)).current.status).toBe('RUNNING'); // the first step runs
    await prepare.succeed();
    expect((await client.run(train.id)).current.status).toBe('QUEUED');
    await train.start();
    await train.progress(0.5, 'epoch 1');
    await train.succeed('converged');
    await evaluate.start();
    await evaluate.succeed();

    const parent = await client.run(p.parent.id);
    expect(parent.current).toMatchObject({ status: 'SUCCEEDED', isDone: true });
    const history = await getHistory(server, p.parent.id);
    expect(history.map((c) => c.to)).toEqual(['CREATED', 'RUNNING', 'SUCCEEDED']);
    expect(history.at(-1)).toMatchObject({ reason: 'CHILDREN_SUCCEEDED' });

    const changes: StatusChange[] = [];
    for await (const change of watch) {
      changes.push(change);
      if (changes.length === 11) break; // 3 + 4 + 4: each step from CREATED to SUCCEEDED
    }
    expect(new Set(changes.map((c) => c.runId))).toEqual(
      new Set([prepare.id, train.id, evaluate.id]),
    );
    expect(changes.filter((c) => c.runId === evaluate.id).map((c) => c.to)).toEqual([
      'CREATED',
      'QUEUED',
      'RUNNING',
      'SUCCEEDED',
    ]);
  });

  it('refuses a step list with a forward, unknown or repeated op before writing anything', async () => {
    const project = uniqueProject('client-forward');
    const refused = async (steps: Parameters<RunstateClient['createPipeline']>[1]) => {
      const error = await client
        .createPipeline({ project, rollup: true }, steps)
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RunstateError);
      return error as RunstateError;
    };

    const forward = await refused([
      { op: 'prepare' },
      { op: 'diagnose', dependencies: [{ ref: 'ops.train', when: ['FAILED'] }] },
      { op: 'train', dependsOn: ['ops.prepare'] },
    ]);
    expect(forward.code).toBe('BAD_USER_INPUT');
    expect(forward.field).toBe('steps[1].dependencies[0].ref');
    expect(forward.message).toContain('refers to ops.train, which comes later (steps[2])');

    const unknown = await refused([{ op: 'train', dependsOn: ['ops.prepare'] }]);
    expect(unknown.field).toBe('steps[0].dependsOn[0]');
    expect(unknown.message).toContain('ops.prepare, which is no step of this pipeline');

    const event = await refused([
      { op: 'board', events: [{ ref: 'ops.board', kinds: ['RUN_STATUS_RUNNING'] }] },
    ]);
    expect(event.field).toBe('steps[0].events[0].ref');
    expect(event.message).toContain('refers to itself');

    const twice = await refused([{ op: 'train' }, { op: 'train' }]);
    expect(twice.field).toBe('steps[1].op');
    expect(twice.message).toContain('taken by steps[0]');

    expect(await countsOf(project)).toEqual([]); // not even the parent
  });

  it('parent.step(op) creates a step by op; the server refuses an op it cannot resolve yet, writing nothing', async () => {
    const project = uniqueProject('client-step');
    const parent = await client.createRun({ project, name: 'session' });
    const heat = await parent.step('heat', { dialect: 'CANARY' });
    expect(heat.current).toMatchObject({ project, op: 'heat', dialect: 'CANARY' });

    const early = await parent
      .step('report', { dependencies: [{ ref: 'ops.summary' }] })
      .catch((e: unknown) => e);
    expect(early).toBeInstanceOf(RunstateError);
    expect(early).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.dependencies[0].ref' });
    expect((early as Error).message).toContain('ops.summary');
    const taken = await parent.step('heat').catch((e: unknown) => e);
    expect(taken).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.op' });

    const later = new Date(Date.now() + 3_600_000);
    const scheduled = await parent.step('nightly', { scheduledAt: later });
    expect(scheduled.current).toMatchObject({ status: 'ON_SCHEDULE', op: 'nightly' });
    expect(Date.parse(scheduled.current.scheduledAt!)).toBe(later.getTime());

    const steps = await client.listRuns({ parentId: parent.id }, { totalCount: true });
    expect(steps.runs.map((r) => r.op).sort()).toEqual(['heat', 'nightly']);
    expect(steps.totalCount).toBe(2);
  });

  it('a step whose answer was lost is sent again with the same key: made once, never "op taken"; the same parent key answers the same pipeline', async () => {
    const project = uniqueProject('client-lost');
    const input = { project, name: 'dag', rollup: true, idempotencyKey: `dag-${project}` };
    const steps = [{ op: 'prepare' }, { op: 'train', dependsOn: ['ops.prepare'] }] as const;
    loseAnswerOf = 'train';
    const p = await flaky.createPipeline(input, steps);
    expect(loseAnswerOf).toBeNull();
    expect(proxy.lost()).toBeGreaterThanOrEqual(1);
    const trainBodies = sent.filter((b) => b.variables?.input?.op === 'train');
    expect(trainBodies.length).toBeGreaterThanOrEqual(2);
    expect(new Set(trainBodies.map((b) => b.variables!.input!.idempotencyKey)).size).toBe(1);
    expect(p.steps.train.current).toMatchObject({ op: 'train', status: 'CREATED' });

    // A step through a handle, its answer lost too.
    loseAnswerOf = 'evaluate';
    const evaluate = await p.parent.step('evaluate', { dependsOn: ['ops.train'] });
    expect(loseAnswerOf).toBeNull();

    // The whole call again with the parent's key (a worker restarted): the same runs.
    const again = await client.createPipeline(input, steps);
    expect(again.parent.id).toBe(p.parent.id);
    expect(again.steps.prepare.id).toBe(p.steps.prepare.id);
    expect(again.steps.train.id).toBe(p.steps.train.id);

    const listed = await client.listRuns({ parentId: p.parent.id }, { totalCount: true });
    expect(listed.totalCount).toBe(3);
    expect(listed.runs.map((r) => r.id).sort()).toEqual(
      [p.steps.prepare.id, p.steps.train.id, evaluate.id].sort(),
    );
    expect(await countsOf(project)).toEqual([{ status: 'CREATED', count: 4 }]);
  });
});
