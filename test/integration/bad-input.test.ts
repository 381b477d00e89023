import { describe, expect, it } from 'vitest';
import { createRun, dataOf, transitionRun } from '../support/operations.js';
import { authHeader, startServer, useServer, uniqueProject } from '../support/server.js';

// Malformed input is refused with extensions.code = "BAD_USER_INPUT" naming the field, nothing is
// written, and the service keeps answering (docs: /work/shared/design/api.md, "Mutations").

const server = useServer();

// ---------------------------------------------------------------------------------------------
// HTTP helpers: every request is a real HTTP request whose body we control byte for byte.

/** In variables, this string is sent as the raw JSON number 1e400 (JSON.parse: Infinity). */
const HUGE = '__raw_json_number_1e400__';

interface GqlError {
  message: string;
  path?: (string | number)[];
  extensions?: Record<string, unknown>;
}

interface Reply {
  status: number;
  text: string;
  body: { data?: Record<string, unknown> | null; errors?: GqlError[] } | null;
}

function bodyOf(query: string, variables?: Record<string, unknown>): string {
  return JSON.stringify({ query, variables }).replaceAll(`"${HUGE}"`, '1e400');
}

async function post(
  body: string,
  contentType = 'application/json',
  url: string = server.url,
): Promise<Reply> {
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': contentType,
      accept: 'application/graphql-response+json',
      ...authHeader(),
    },
    body,
  });
  const text = await response.text();
  let parsed: Reply['body'] = null;
  try {
    parsed = JSON.parse(text) as Reply['body'];
  } catch {
    parsed = null;
  }
  return { status: response.status, text, body: parsed };
}

const send = (query: string, variables?: Record<string, unknown>) => post(bodyOf(query, variables));

const CREATE = `mutation($input: CreateRunInput!) { createRun(input: $input) { id } }`;
const TRANSITION = `mutation($input: TransitionRunInput!) { transitionRun(input: $input) { __typename } }`;
const TRANSITION_MANY = `mutation($inputs: [TransitionRunInput!]!) { transitionRuns(inputs: $inputs) { __typename } }`;
const PROGRESS = `mutation($input: ReportProgressInput!) { reportProgress(input: $input) { id } }`;
const MEASURE = `mutation($input: RecordMeasurementsInput!) { recordMeasurements(input: $input) }`;

// ---------------------------------------------------------------------------------------------
// State: everything a refused request could have written, read back through the API.

/** A project with one run that has a history, progress, a phase and a measurement. */
interface Fixture {
  project: string;
  runId: string;
}

async function fixture(label: string): Promise<Fixture> {
  const project = uniqueProject(label);
  const run = await createRun(server, {
    project,
    name: 'baseline',
    tags: [project],
    meta: { k: 1 },
  });
  expect((await transitionRun(server, { id: run.id, to: 'QUEUED' })).__typename).toBe(
    'TransitionAccepted',
  );
  dataOf(await server.gql(PROGRESS, { input: { id: run.id, progress: 0.25, phase: 'warmup' } }));
  const measured = await server.gql<{ recordMeasurements: number }>(MEASURE, {
    input: { runId: run.id, measurements: [{ name: 'loss', value: 0.5, step: 1 }] },
  });
  expect(dataOf(measured).recordMeasurements).toBe(1);
  return { project, runId: run.id };
}

// Pages far larger than a fixture's few rows (one extra would still show), small enough for
// the default query cost limit.
const STATE = `query($project: String!, $tags: [String!]) {
  byProject: runs(filter: { project: $project }, first: 20) { edges { node { ...R } } }
  byTag: runs(filter: { tags: $tags }, first: 20) { edges { node { id project } } }
  changes: statusChanges(filter: { projects: [$project] }, first: 100) {
    edges { node { runId from to version reason message } }
  }
}
fragment R on Run {
  id project name tags meta status version progress phase stopMessage updatedAt heartbeatAt
  statusHistory(first: 50) { edges { node { from to version reason message } } }
  measurements(first: 50) { edges { node { name value step at } } }
}`;

interface RunState {
  id: string;
  name: string | null;
  progress: number | null;
  phase: string | null;
  status: string;
  version: number;
  statusHistory: { edges: { node: Record<string, unknown> }[] };
  measurements: { edges: { node: { name: string; value: number } }[] };
  [field: string]: unknown;
}

interface State {
  byProject: { edges: { node: RunState }[] };
  byTag: { edges: { node: { id: string; project: string } }[] };
  changes: { edges: { node: Record<string, unknown> }[] };
}

/** The project's runs (with history and points), runs carrying the project as a tag, its log. */
async function stateOf(project: string): Promise<State> {
  return dataOf(await server.gql<State>(STATE, { project, tags: [project] }));
}

/** The fixture as fixture() left it: one run, two changes, one point. */
function expectFixtureState(state: State) {
  expect(state.byProject.edges).toHaveLength(1);
  expect(state.byTag.edges).toHaveLength(1);
  expect(state.changes.edges).toHaveLength(2);
  const run = state.byProject.edges[0]!.node;
  expect(run).toMatchObject({
    name: 'baseline',
    status: 'QUEUED',
    version: 2,
    progress: 0.25,
    phase: 'warmup',
  });
  expect(run.measurements.edges).toHaveLength(1);
}

/** The service still answers, reading from the database. */
async function expectAlive() {
  const reply = await send(
    `{ runs(first: 1) { edges { cursor } } lifecycle { statuses { status } } }`,
  );
  expect(reply.status, reply.text).toBe(200);
  expect(reply.body?.errors, reply.text).toBeUndefined();
  const lifecycle = reply.body?.data?.['lifecycle'] as { statuses: unknown[] };
  expect(lifecycle.statuses).toHaveLength(21);
}

interface Refusal {
  /** extensions.field */
  field: string;
  /** 400: refused before execution (GraphQL's own input coercion); 200: refused by a resolver. */
  status: 200 | 400;
  /** For resolver refusals: the error's path (default: the mutation's field). */
  path?: (string | number)[];
  /** For resolver refusals: the expected data (default null). */
  data?: unknown;
}

/** Exactly one error, BAD_USER_INPUT, naming the field; nothing executed or a null answer. */
function expectBadUserInput(reply: Reply, expected: Refusal) {
  const context = `${reply.status} ${reply.text.slice(0, 1500)}`;
  expect(reply.status, context).toBe(expected.status);
  expect(reply.body, context).not.toBeNull();
  const errors = reply.body?.errors ?? [];
  expect(errors, context).toHaveLength(1);
  const error = errors[0]!;
  expect(error.extensions?.['code'], context).toBe('BAD_USER_INPUT');
  expect(error.extensions?.['field'], context).toBe(expected.field);
  expect(error.extensions, context).not.toHaveProperty('stacktrace');
  expect(error.extensions, context).not.toHaveProperty('originalError');
  if (expected.status === 400) {
    // A request error: the operation never ran.
    expect(reply.body, context).not.toHaveProperty('data');
  } else {
    // The service's own check: its message starts with the field it names.
    expect(error.message.startsWith(`${expected.field}: `), context).toBe(true);
    if (expected.path) expect(error.path, context).toEqual(expected.path);
    expect(reply.body?.data ?? null, context).toEqual(expected.data ?? null);
  }
}

/** Send a malformed request against a fixture: refused as expected, nothing written, still up. */
async function expectRefused(
  fx: Fixture,
  request: () => Promise<Reply>,
  expected: Refusal,
): Promise<Reply> {
  const before = await stateOf(fx.project);
  expectFixtureState(before);
  const reply = await request();
  expectBadUserInput(reply, expected);
  const after = await stateOf(fx.project);
  expect(after).toEqual(before);
  await expectAlive();
  return reply;
}

interface Case {
  name: string;
  request: (fx: Fixture) => Promise<Reply>;
  expected: Refusal;
}

const x = (n: number, c = 'x') => c.repeat(n);
const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';

/** Four valid points; cases spoil one of them so that a partial write would show. */
const points = (): Record<string, unknown>[] => [
  { name: 'acc', value: 0.1, step: 1 },
  { name: 'acc', value: 0.2, step: 2, at: '2026-01-01T00:00:00.000Z' },
  { name: 'lr', value: 3 },
  { name: 'lr', value: 4, step: 4 },
];

const measure = (fx: Fixture, spoil: (p: Record<string, unknown>[]) => void) => {
  const measurements = points();
  spoil(measurements);
  return send(MEASURE, { input: { runId: fx.runId, measurements } });
};

// ---------------------------------------------------------------------------------------------

describe('createRun refuses malformed input and writes nothing', () => {
  const create = (fx: Fixture, input: Record<string, unknown>) =>
    send(CREATE, { input: { project: fx.project, tags: [fx.project], ...input } });
  const refused = (field: string): Refusal => ({ field, status: 200, path: ['createRun'] });

  const cases: Case[] = [
    {
      name: 'empty project',
      request: (fx) => create(fx, { project: '' }),
      expected: refused('input.project'),
    },
    {
      name: 'empty project written in the query',
      request: (fx) =>
        send(`mutation { createRun(input: { project: "", tags: ["${fx.project}"] }) { id } }`),
      expected: refused('input.project'),
    },
    {
      name: 'blank project',
      request: (fx) => create(fx, { project: '   ' }),
      expected: refused('input.project'),
    },
    {
      name: 'project of 201 characters',
      request: (fx) => create(fx, { project: fx.project.padEnd(201, 'x') }),
      expected: refused('input.project'),
    },
    {
      name: 'name of 501 characters',
      request: (fx) => create(fx, { name: x(501) }),
      expected: refused('input.name'),
    },
    {
      name: '51 tags',
      request: (fx) =>
        create(fx, { tags: [fx.project, ...Array.from({ length: 50 }, (_, i) => `t${i}`)] }),
      expected: refused('input.tags'),
    },
    {
      name: 'an empty tag',
      request: (fx) => create(fx, { tags: [fx.project, ''] }),
      expected: refused('input.tags[1]'),
    },
    {
      name: 'a tag of 101 characters',
      request: (fx) => create(fx, { tags: [fx.project, x(101)] }),
      expected: refused('input.tags[1]'),
    },
    {
      name: 'meta an array',
      request: (fx) => create(fx, { meta: [1, 2] }),
      expected: refused('input.meta'),
    },
    {
      name: 'meta a string',
      request: (fx) => create(fx, { meta: 'text' }),
      expected: refused('input.meta'),
    },
    {
      name: 'meta a number',
      request: (fx) => create(fx, { meta: 42 }),
      expected: refused('input.meta'),
    },
    {
      name: 'meta holding 1e400 (Infinity after JSON.parse)',
      request: (fx) => create(fx, { meta: { a: { b: [1, HUGE] } } }),
      expected: refused('input.meta'),
    },
    {
      name: 'meta over 64 KiB',
      request: (fx) => create(fx, { meta: { blob: x(64 * 1024) } }),
      expected: refused('input.meta'),
    },
    {
      name: 'NUL in project',
      request: (fx) => create(fx, { project: `${fx.project}\u0000` }),
      expected: refused('input.project'),
    },
    {
      name: 'NUL in name',
      request: (fx) => create(fx, { name: 'a\u0000b' }),
      expected: refused('input.name'),
    },
    {
      name: 'NUL in a tag',
      request: (fx) => create(fx, { tags: [fx.project, 'a\u0000b'] }),
      expected: refused('input.tags[1]'),
    },
    {
      name: 'NUL in a meta value',
      request: (fx) => create(fx, { meta: { k: 'a\u0000b' } }),
      expected: refused('input.meta'),
    },
    {
      name: 'NUL in a meta key',
      request: (fx) => create(fx, { meta: { 'a\u0000': 1 } }),
      expected: refused('input.meta'),
    },
    {
      name: 'lone surrogate in name',
      request: (fx) => create(fx, { name: 'a\ud800b' }),
      expected: refused('input.name'),
    },
    {
      name: 'lone surrogate in a tag',
      request: (fx) => create(fx, { tags: [fx.project, '\udc00'] }),
      expected: refused('input.tags[1]'),
    },
    {
      name: 'empty idempotencyKey',
      request: (fx) => create(fx, { idempotencyKey: '' }),
      expected: refused('input.idempotencyKey'),
    },
    {
      name: 'project not a string',
      request: (fx) => create(fx, { project: 5 }),
      expected: { field: 'input.project', status: 400 },
    },
    {
      name: 'a null tag',
      request: (fx) => create(fx, { tags: [fx.project, null] }),
      expected: { field: 'input.tags[1]', status: 400 },
    },
  ];

  it.each(cases)('$name', async ({ request, expected }) => {
    const fx = await fixture('cr');
    await expectRefused(fx, () => request(fx), expected);
  });

  it('accepts every limit exactly (the checks above refuse only what is over)', async () => {
    const project = uniqueProject('edge').padEnd(200, 'x');
    const meta = { blob: x(64 * 1024 - '{"blob":""}'.length) };
    expect(Buffer.byteLength(JSON.stringify(meta))).toBe(64 * 1024);
    const tags = Array.from({ length: 50 }, (_, i) => `t${i}`.padEnd(100, '-'));
    const run = await createRun(server, { project, name: x(500, 'n'), tags, meta });
    expect(run).toMatchObject({ project, name: x(500, 'n'), tags, meta });

    const changed = await transitionRun(server, {
      id: run.id,
      to: 'QUEUED',
      reason: x(200, 'r'),
      message: x(10_000, 'm'),
      expectedVersion: 1,
    });
    expect(changed.__typename).toBe('TransitionAccepted');
    for (const progress of [0, 1]) {
      const reply = await send(
        `mutation($input: ReportProgressInput!) { reportProgress(input: $input) { progress phase } }`,
        { input: { id: run.id, progress, phase: x(500, 'p') } },
      );
      expect(reply.body?.data, reply.text).toEqual({
        reportProgress: { progress, phase: x(500, 'p') },
      });
    }
    const measurements = Array.from({ length: 10_000 }, (_, i) => ({
      name: i === 0 ? x(200, 'q') : 'many',
      value: i,
      step: i === 1 ? 2 ** 31 - 1 : i,
    }));
    const measured = await send(MEASURE, { input: { runId: run.id, measurements } });
    expect(measured.body?.data, measured.text).toEqual({ recordMeasurements: 10_000 });
    const page = await send(
      `query($p: String!) { runs(filter: { project: $p }, first: 500) { edges { node { id } } } statusChanges(first: 500, filter: { projects: [$p] }) { edges { cursor } } }`,
      { p: project },
    );
    expect(page.body?.errors, page.text).toBeUndefined();
    expect(page.body?.data).toEqual({
      runs: { edges: [{ node: { id: run.id } }] },
      statusChanges: { edges: [expect.anything(), expect.anything()] },
    });
  });
});

describe('transitionRun and transitionRuns refuse malformed input and write nothing', () => {
  const transition = (fx: Fixture, input: Record<string, unknown>) =>
    send(TRANSITION, { input: { id: fx.runId, to: 'RUNNING', ...input } });
  const refused = (field: string): Refusal => ({ field, status: 200, path: ['transitionRun'] });
  const coerced = (field: string): Refusal => ({ field, status: 400 });

  const cases: Case[] = [
    {
      name: 'unknown status written in the query',
      request: (fx) =>
        send(`mutation { transitionRun(input: { id: "${fx.runId}", to: BOGUS }) { __typename } }`),
      expected: coerced('input.to'),
    },
    {
      name: 'unknown status as a variable',
      request: (fx) => transition(fx, { to: 'BOGUS' }),
      expected: coerced('input.to'),
    },
    {
      name: 'lower-case status as a variable',
      request: (fx) => transition(fx, { to: 'running' }),
      expected: coerced('input.to'),
    },
    {
      name: 'status a number written in the query',
      request: (fx) =>
        send(`mutation { transitionRun(input: { id: "${fx.runId}", to: 5 }) { __typename } }`),
      expected: coerced('input.to'),
    },
    {
      name: 'status a number as a variable',
      request: (fx) => transition(fx, { to: 5 }),
      expected: coerced('input.to'),
    },
    {
      name: 'id a boolean',
      request: (fx) => transition(fx, { id: true }),
      expected: coerced('input.id'),
    },
    {
      name: 'unknown expectedStatus',
      request: (fx) => transition(fx, { expectedStatus: 'NOPE' }),
      expected: coerced('input.expectedStatus'),
    },
    {
      name: 'expectedVersion not an Int',
      request: (fx) => transition(fx, { expectedVersion: 1.5 }),
      expected: coerced('input.expectedVersion'),
    },
    {
      name: 'id not a UUID',
      request: (fx) => transition(fx, { id: 'not-a-uuid' }),
      expected: refused('input.id'),
    },
    {
      name: 'reason of 201 characters',
      request: (fx) => transition(fx, { reason: x(201) }),
      expected: refused('input.reason'),
    },
    {
      name: 'message of 10,001 characters',
      request: (fx) => transition(fx, { message: x(10_001) }),
      expected: refused('input.message'),
    },
    {
      name: 'NUL in message',
      request: (fx) => transition(fx, { message: 'a\u0000' }),
      expected: refused('input.message'),
    },
    {
      name: 'expectedVersion 0',
      request: (fx) => transition(fx, { expectedVersion: 0 }),
      expected: refused('input.expectedVersion'),
    },
    {
      name: 'expectedVersion -1',
      request: (fx) => transition(fx, { expectedVersion: -1 }),
      expected: refused('input.expectedVersion'),
    },
    {
      name: 'transitionRuns with 501 (otherwise valid) inputs',
      request: (fx) =>
        send(TRANSITION_MANY, {
          inputs: Array.from({ length: 501 }, (_, i) => ({
            id: fx.runId,
            to: i % 2 === 0 ? 'RUNNING' : 'QUEUED',
          })),
        }),
      expected: { field: 'inputs', status: 200, path: ['transitionRuns'] },
    },
    {
      name: 'transitionRuns whose third input is malformed (the first two are valid)',
      request: (fx) =>
        send(TRANSITION_MANY, {
          inputs: [
            { id: fx.runId, to: 'RUNNING' },
            { id: fx.runId, to: 'PROCESSING' },
            { id: fx.runId, to: 'SUCCEEDED', reason: x(201) },
          ],
        }),
      expected: { field: 'inputs[2].reason', status: 200, path: ['transitionRuns'] },
    },
    {
      name: 'transitionRuns whose second input has an unknown status',
      request: (fx) =>
        send(TRANSITION_MANY, {
          inputs: [
            { id: fx.runId, to: 'RUNNING' },
            { id: fx.runId, to: 'BOGUS' },
          ],
        }),
      expected: coerced('inputs[1].to'),
    },
  ];

  it.each(cases)('$name', async ({ request, expected }) => {
    const fx = await fixture('tr');
    await expectRefused(fx, () => request(fx), expected);
  });
});

describe('reportProgress refuses malformed input and writes nothing', () => {
  const report = (fx: Fixture, input: Record<string, unknown>) =>
    send(PROGRESS, { input: { id: fx.runId, progress: 0.5, phase: 'next', ...input } });
  const refused = (field: string): Refusal => ({ field, status: 200, path: ['reportProgress'] });
  const coerced = (field: string): Refusal => ({ field, status: 400 });

  const cases: Case[] = [
    {
      name: 'progress 1.5',
      request: (fx) => report(fx, { progress: 1.5 }),
      expected: refused('input.progress'),
    },
    {
      name: 'progress -0.1',
      request: (fx) => report(fx, { progress: -0.1 }),
      expected: refused('input.progress'),
    },
    {
      name: 'progress 1e400 in variables (Infinity after JSON.parse)',
      request: (fx) => report(fx, { progress: HUGE }),
      expected: coerced('input.progress'),
    },
    {
      name: 'progress 1e400 written in the query',
      request: (fx) =>
        send(`mutation { reportProgress(input: { id: "${fx.runId}", progress: 1e400 }) { id } }`),
      expected: refused('input.progress'),
    },
    {
      name: 'progress "abc"',
      request: (fx) => report(fx, { progress: 'abc' }),
      expected: coerced('input.progress'),
    },
    {
      name: 'progress "NaN"',
      request: (fx) => report(fx, { progress: 'NaN' }),
      expected: coerced('input.progress'),
    },
    {
      name: 'progress null',
      request: (fx) => report(fx, { progress: null }),
      expected: coerced('input.progress'),
    },
    {
      name: 'phase of 501 characters',
      request: (fx) => report(fx, { phase: x(501) }),
      expected: refused('input.phase'),
    },
    {
      name: 'NUL in phase',
      request: (fx) => report(fx, { phase: '\u0000' }),
      expected: refused('input.phase'),
    },
    {
      name: 'id not a UUID',
      request: (fx) => report(fx, { id: 'run-1' }),
      expected: refused('input.id'),
    },
  ];

  it.each(cases)('$name', async ({ request, expected }) => {
    const fx = await fixture('rp');
    await expectRefused(fx, () => request(fx), expected);
  });
});

describe('recordMeasurements refuses malformed input and writes nothing', () => {
  const refused = (field: string): Refusal => ({
    field,
    status: 200,
    path: ['recordMeasurements'],
  });
  const coerced = (field: string): Refusal => ({ field, status: 400 });
  const at = (i: number, key: string) => `input.measurements[${i}].${key}`;

  const cases: Case[] = [
    {
      name: 'an empty list',
      request: (fx) => send(MEASURE, { input: { runId: fx.runId, measurements: [] } }),
      expected: refused('input.measurements'),
    },
    {
      name: '10,001 points',
      request: (fx) =>
        send(MEASURE, {
          input: {
            runId: fx.runId,
            measurements: Array.from({ length: 10_001 }, (_, i) => ({ name: 'm', value: i })),
          },
        }),
      expected: refused('input.measurements'),
    },
    {
      name: 'value 1e400 in variables (Infinity after JSON.parse)',
      request: (fx) => measure(fx, (p) => (p[2]!['value'] = HUGE)),
      expected: coerced(at(2, 'value')),
    },
    {
      name: 'value 1e400 written in the query',
      request: (fx) =>
        send(
          `mutation { recordMeasurements(input: { runId: "${fx.runId}", measurements: [{ name: "a", value: 1 }, { name: "a", value: -1e400 }] }) }`,
        ),
      expected: refused(at(1, 'value')),
    },
    {
      name: 'value "NaN"',
      request: (fx) => measure(fx, (p) => (p[1]!['value'] = 'NaN')),
      expected: coerced(at(1, 'value')),
    },
    {
      name: 'value "Infinity"',
      request: (fx) => measure(fx, (p) => (p[3]!['value'] = 'Infinity')),
      expected: coerced(at(3, 'value')),
    },
    {
      name: 'an empty name',
      request: (fx) => measure(fx, (p) => (p[3]!['name'] = '')),
      expected: refused(at(3, 'name')),
    },
    {
      name: 'a name of 201 characters',
      request: (fx) => measure(fx, (p) => (p[0]!['name'] = x(201))),
      expected: refused(at(0, 'name')),
    },
    {
      name: 'at not a date-time',
      request: (fx) => measure(fx, (p) => (p[1]!['at'] = 'yesterday')),
      expected: coerced(at(1, 'at')),
    },
    {
      name: 'at without a time zone',
      request: (fx) => measure(fx, (p) => (p[1]!['at'] = '2026-01-01T00:00:00')),
      expected: coerced(at(1, 'at')),
    },
    {
      name: 'at an impossible date',
      request: (fx) => measure(fx, (p) => (p[2]!['at'] = '2026-02-30T00:00:00Z')),
      expected: coerced(at(2, 'at')),
    },
    {
      name: 'step 1.5',
      request: (fx) => measure(fx, (p) => (p[2]!['step'] = 1.5)),
      expected: coerced(at(2, 'step')),
    },
    {
      name: 'step 2^31',
      request: (fx) => measure(fx, (p) => (p[3]!['step'] = 2 ** 31)),
      expected: coerced(at(3, 'step')),
    },
    {
      name: 'runId not a UUID',
      request: () => send(MEASURE, { input: { runId: 'nope', measurements: points() } }),
      expected: refused('input.runId'),
    },
  ];

  it.each(cases)('$name', async ({ request, expected }) => {
    const fx = await fixture('rm');
    await expectRefused(fx, () => request(fx), expected);
  });
});

describe('queries refuse malformed arguments', () => {
  const cases: {
    name: string;
    query: string;
    variables?: Record<string, unknown>;
    expected: Refusal;
  }[] = [
    {
      name: 'runs(first: 0)',
      query: `{ runs(first: 0) { edges { cursor } } }`,
      expected: { field: 'first', status: 200, path: ['runs'] },
    },
    {
      name: 'runs(first: -1)',
      query: `{ runs(first: -1) { edges { cursor } } }`,
      expected: { field: 'first', status: 200, path: ['runs'] },
    },
    {
      name: 'runs(first: 501)',
      query: `{ runs(first: 501) { edges { cursor } } }`,
      expected: { field: 'first', status: 200, path: ['runs'] },
    },
    {
      name: 'statusChanges(first: 501)',
      query: `{ statusChanges(first: 501) { edges { cursor } } }`,
      expected: { field: 'first', status: 200, path: ['statusChanges'] },
    },
    {
      name: 'run.statusHistory(first: 501)',
      query: `query($id: ID!) { run(id: $id) { statusHistory(first: 501) { edges { cursor } } } }`,
      expected: {
        field: 'first',
        status: 200,
        path: ['run', 'statusHistory'],
        data: { run: null },
      },
    },
    {
      name: 'runs(after: "garbage")',
      query: `{ runs(after: "garbage") { edges { cursor } } }`,
      expected: { field: 'after', status: 200, path: ['runs'] },
    },
    {
      name: 'statusChanges(after: "%%%")',
      query: `{ statusChanges(after: "%%%") { edges { cursor } } }`,
      expected: { field: 'after', status: 200, path: ['statusChanges'] },
    },
    {
      name: 'run(id: "not-a-uuid")',
      query: `{ run(id: "not-a-uuid") { id } }`,
      expected: { field: 'id', status: 200, path: ['run'], data: { run: null } },
    },
    {
      name: 'filter.statuses with an unknown value written in the query',
      query: `{ runs(filter: { statuses: [RUNNING, BOGUS] }) { edges { cursor } } }`,
      expected: { field: 'filter.statuses[1]', status: 400 },
    },
    {
      name: 'filter.statuses with an unknown value as a variable',
      query: `query($filter: RunFilter) { runs(filter: $filter) { edges { cursor } } }`,
      variables: { filter: { statuses: ['BOGUS'] } },
      expected: { field: 'filter.statuses[0]', status: 400 },
    },
    {
      name: 'statusChanges filter.runIds with a non-UUID',
      query: `{ statusChanges(filter: { runIds: ["nope"] }) { edges { cursor } } }`,
      expected: { field: 'filter.runIds[0]', status: 200, path: ['statusChanges'] },
    },
  ];

  it.each(cases)('$name', async ({ query, variables, expected }) => {
    const fx = await fixture('q');
    await expectRefused(fx, () => send(query, { id: fx.runId, ...variables }), expected);
  });
});

describe('missing and unknown input fields', () => {
  // graphql-js reports these without a code; the service maps every problem with an input value
  // (missing required field, unknown input field, null for a non-null) to BAD_USER_INPUT. Unknown
  // arguments and selections are not about values: those stay GRAPHQL_VALIDATION_FAILED.
  const cases: (Case & { message: string })[] = [
    {
      name: 'createRun(input: {}) written in the query',
      message: 'Field "CreateRunInput.project" of required type "String!" was not provided',
      request: () => send(`mutation { createRun(input: {}) { id } }`),
      expected: { field: 'input.project', status: 400 },
    },
    {
      name: 'createRun with input {} as a variable',
      message: 'Field "project" of required type "String!" was not provided',
      request: () => send(CREATE, { input: {} }),
      expected: { field: 'input.project', status: 400 },
    },
    {
      name: 'createRun without its input variable',
      message: 'Variable "$input" of required type "CreateRunInput!" was not provided',
      request: () => send(CREATE),
      expected: { field: 'input', status: 400 },
    },
    {
      name: 'createRun with input null',
      message: 'Variable "$input" of non-null type "CreateRunInput!" must not be null',
      request: () => send(CREATE, { input: null }),
      expected: { field: 'input', status: 400 },
    },
    {
      // `to` is optional since dialects (exactly one of `to` and `native`): the service refuses.
      name: 'transitionRun without `to` or `native`',
      message: 'give `to` (a RunStatus) or `native` (a name)',
      request: (fx) => send(TRANSITION, { input: { id: fx.runId } }),
      expected: { field: 'input.to', status: 200 },
    },
    {
      name: 'transitionRun with both `to` and `native`',
      message: 'give either `to` or `native`, not both',
      request: (fx) => send(TRANSITION, { input: { id: fx.runId, to: 'RUNNING', native: 'x' } }),
      expected: { field: 'input.native', status: 200 },
    },
    {
      name: 'transitionRun with an unknown native name',
      message: 'is not a RUNSTATE status; expected one of CREATED, ON_SCHEDULE',
      request: (fx) => send(TRANSITION, { input: { id: fx.runId, native: 'running' } }),
      expected: { field: 'input.native', status: 200 },
    },
    {
      name: 'an unknown input field written in the query',
      message: 'Field "bogus" is not defined by type "CreateRunInput"',
      request: (fx) =>
        send(`mutation { createRun(input: { project: "${fx.project}", bogus: 1 }) { id } }`),
      expected: { field: 'input.bogus', status: 400 },
    },
    {
      name: 'an unknown input field in a variable',
      message: 'Field "bogus" is not defined by type "CreateRunInput"',
      request: (fx) => send(CREATE, { input: { project: fx.project, bogus: 1 } }),
      expected: { field: 'input', status: 400 },
    },
  ];

  it.each(cases)('$name', async ({ request, expected, message }) => {
    const fx = await fixture('mi');
    const reply = await expectRefused(fx, () => request(fx), expected);
    // The message names the field too.
    expect(reply.body?.errors?.[0]?.message).toContain(message);
  });

  it.each([
    [
      'an unknown argument',
      'mutation { createRun(input: { project: "PROJECT" }, bogus: 1) { id } }',
    ],
    [
      'an unknown selected field',
      'mutation { createRun(input: { project: "PROJECT" }) { id bogus } }',
    ],
  ])('%s is GRAPHQL_VALIDATION_FAILED and writes nothing', async (_, template) => {
    const fx = await fixture('va');
    const before = await stateOf(fx.project);
    const reply = await send(template.replace('PROJECT', fx.project));
    expect(reply.status, reply.text).toBe(400);
    expect(reply.body?.errors, reply.text).toHaveLength(1);
    expect(reply.body?.errors?.[0]?.extensions?.['code']).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(reply.body?.errors?.[0]?.message).toContain('"bogus"');
    expect(reply.body).not.toHaveProperty('data');
    expect(await stateOf(fx.project)).toEqual(before);
    await expectAlive();
  });
});

describe('malformed HTTP requests', () => {
  const cases: {
    name: string;
    body: (fx: Fixture) => string;
    contentType: string;
    status: number;
  }[] = [
    {
      name: 'invalid JSON that starts like a createRun',
      body: (fx) =>
        `${bodyOf(`mutation { createRun(input: { project: "${fx.project}" }) { id } }`)}garbage`,
      contentType: 'application/json',
      status: 400,
    },
    {
      name: 'truncated JSON',
      body: () => '{"query": ',
      contentType: 'application/json',
      status: 400,
    },
    { name: 'an empty body', body: () => '', contentType: 'application/json', status: 400 },
    { name: 'JSON null', body: () => 'null', contentType: 'application/json', status: 400 },
    {
      name: 'a JSON array (batch)',
      body: () => '[1, 2]',
      contentType: 'application/json',
      status: 400,
    },
    {
      name: 'query a number',
      body: () => '{"query": 5}',
      contentType: 'application/json',
      status: 400,
    },
    {
      name: 'variables a string',
      body: (fx) =>
        JSON.stringify({
          query: `mutation { createRun(input: { project: "${fx.project}" }) { id } }`,
          variables: 'x',
        }),
      contentType: 'application/json',
      status: 400,
    },
    {
      name: 'a valid createRun sent as text/plain',
      body: (fx) => bodyOf(`mutation { createRun(input: { project: "${fx.project}" }) { id } }`),
      contentType: 'text/plain',
      status: 415,
    },
    { name: 'XML', body: () => '<query/>', contentType: 'application/xml', status: 415 },
  ];

  it.each(cases)('$name: $status, nothing written, still answering', async (c) => {
    const fx = await fixture('http');
    const before = await stateOf(fx.project);
    const reply = await post(c.body(fx), c.contentType);
    expect(reply.status, reply.text).toBe(c.status);
    if (c.status === 400) {
      expect(reply.body?.errors, reply.text).toHaveLength(1);
      expect(reply.body?.errors?.[0]?.extensions?.['code']).toBe('BAD_REQUEST');
    }
    expect(reply.text).not.toMatch(/\n\s+at /);
    expect(await stateOf(fx.project)).toEqual(before);
    await expectAlive();
  });
});

describe('SQL-looking strings are plain data', () => {
  const DROP = `'; DROP TABLE runs; --`;
  const OR = `" OR 1=1 --`;

  it('are stored and read back verbatim everywhere, and match only themselves', async () => {
    const control = await fixture('ctl');
    const controlBefore = await stateOf(control.project);
    const project = `${uniqueProject('sql')}${DROP}`;
    const marker = uniqueProject('sqltag');
    const name = `${OR} ${DROP}`;
    const meta = { q: DROP, [OR]: [OR, DROP] };

    const created = await createRun(server, {
      project,
      name,
      tags: [DROP, OR, marker],
      meta,
      idempotencyKey: OR,
    });
    expect(created).toMatchObject({ project, name, tags: [DROP, OR, marker], meta });
    // The same key again is the same run.
    const again = await createRun(server, { project, name: 'other', idempotencyKey: OR });
    expect(again.id).toBe(created.id);

    const moved = await transitionRun(server, {
      id: created.id,
      to: 'QUEUED',
      reason: DROP,
      message: OR,
      idempotencyKey: DROP,
    });
    expect(moved.change).toMatchObject({ reason: DROP, message: OR });
    dataOf(await server.gql(PROGRESS, { input: { id: created.id, progress: 0.5, phase: OR } }));
    const measured = await server.gql<{ recordMeasurements: number }>(MEASURE, {
      input: {
        runId: created.id,
        measurements: [
          { name: DROP, value: 1 },
          { name: OR, value: 2 },
        ],
      },
    });
    expect(dataOf(measured).recordMeasurements).toBe(2);

    // A second run whose name holds LIKE wildcards, and one that would match if they were live.
    const wild = await createRun(server, { project, name: `100%_done`, tags: [marker] });
    await createRun(server, { project, name: `1000 done`, tags: [marker] });

    const read = await server.gql<{
      run: Record<string, unknown> & {
        statusHistory: { edges: { node: unknown }[] };
        measurements: { edges: { node: unknown }[] };
      };
    }>(
      `query($id: ID!, $names: [String!]) { run(id: $id) { project name tags meta phase progress
        statusHistory { edges { node { from to reason message } } }
        measurements(names: $names) { edges { node { name value } } } } }`,
      { id: created.id, names: [DROP] },
    );
    expect(dataOf(read).run).toEqual({
      project,
      name,
      tags: [DROP, OR, marker],
      meta,
      phase: OR,
      progress: 0.5,
      statusHistory: {
        edges: [
          { node: { from: null, to: 'CREATED', reason: 'CREATED', message: null } },
          { node: { from: 'CREATED', to: 'QUEUED', reason: DROP, message: OR } },
        ],
      },
      measurements: { edges: [{ node: { name: DROP, value: 1 } }] },
    });

    const ids = async (filter: Record<string, unknown>) => {
      const reply = await server.gql<{ runs: { edges: { node: { id: string } }[] } }>(
        `query($filter: RunFilter) { runs(filter: $filter, first: 500) { edges { node { id } } } }`,
        { filter },
      );
      return dataOf(reply)
        .runs.edges.map((e) => e.node.id)
        .sort();
    };
    expect((await ids({ project })).length).toBe(3);
    expect(await ids({ tags: [DROP, OR] })).toEqual([created.id]);
    expect(await ids({ tags: [marker], nameContains: OR })).toEqual([created.id]);
    expect(await ids({ tags: [marker], nameContains: DROP })).toEqual([created.id]);
    expect(await ids({ tags: [marker], nameContains: `' OR '1'='1` })).toEqual([]);
    expect(await ids({ tags: [marker], nameContains: `%` })).toEqual([wild.id]);
    expect(await ids({ tags: [marker], nameContains: `0_d` })).toEqual([]);
    expect(await ids({ tags: [marker], nameContains: `%_` })).toEqual([wild.id]);
    expect(await ids({ project: OR })).toEqual([]);

    const log = await server.gql<{ statusChanges: { edges: unknown[] } }>(
      `query($p: [String!]) { statusChanges(filter: { projects: $p }, first: 500) { edges { cursor } } }`,
      { p: [project] },
    );
    expect(dataOf(log).statusChanges.edges).toHaveLength(4);

    // Nothing else was touched: the other project is exactly as it was, the tables still work.
    expect(await stateOf(control.project)).toEqual(controlBefore);
    await expectAlive();
  });
});

describe('database errors are masked', () => {
  it('a server whose database is closed answers a retryable 503 SERVICE_UNAVAILABLE and nothing more', async () => {
    const broken = await startServer();
    try {
      await broken.database.close();
      const requests = [
        bodyOf(`{ runs(first: 1) { edges { node { id } } } }`),
        bodyOf(CREATE, { input: { project: uniqueProject('mask') } }),
        bodyOf(`query($id: ID!) { run(id: $id) { id } }`, { id: UNKNOWN_ID }),
      ];
      for (const body of requests) {
        const reply = await post(body, 'application/json', broken.url);
        const context = `${reply.status} ${reply.text}`;
        expect(reply.body, context).not.toBeNull();
        const errors = reply.body?.errors ?? [];
        expect(errors, context).toHaveLength(1);
        expect(reply.status, context).toBe(503);
        expect(errors[0]!.extensions?.['code'], context).toBe('SERVICE_UNAVAILABLE');
        expect(errors[0]!.extensions ?? {}, context).not.toHaveProperty('stacktrace');
        expect(errors[0]!.extensions ?? {}, context).not.toHaveProperty('stack');
        expect(errors[0]!.extensions ?? {}, context).not.toHaveProperty('originalError');
        expect(errors[0]!.extensions ?? {}, context).not.toHaveProperty('exception');
        for (const leak of [
          'postgres',
          'relation',
          'select',
          'insert',
          'connection',
          'drizzle',
          'node_modules',
          '.ts:',
          'at ',
          'stack',
        ]) {
          expect(reply.text.toLowerCase(), `${leak} in ${context}`).not.toContain(leak);
        }
      }
    } finally {
      // stop() closes the database again; that may throw, which is not what is tested here.
      await broken.stop().catch(() => {});
    }
    await expectAlive();
  });
});

// ---------------------------------------------------------------------------------------------
// Generated malformed requests, all in flight at once, with a few valid ones in the mix.

/** A deterministic PRNG (mulberry32), so a failure can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Vars = Record<string, unknown>;

interface Spoiler {
  /** The field the refusal names. */
  field: string;
  /** 400: GraphQL's input coercion refuses it; 200: the service's own check does. */
  status: 200 | 400;
  /** Spoilers of one group are never combined (they touch the same value). */
  group: string;
  /** Replaces the whole list: combined with nothing. */
  solo?: boolean;
  apply: (vars: Vars) => void;
}

interface Template {
  name: string;
  query: string;
  base: (fx: Fixture) => Vars;
  spoilers: Spoiler[];
}

const input = (vars: Vars) => vars['input'] as Vars;
const point = (vars: Vars, i: number) => (input(vars)['measurements'] as Vars[])[i]!;
const spoil = (
  group: string,
  field: string,
  status: 200 | 400,
  apply: (vars: Vars) => void,
  solo = false,
): Spoiler => ({ group, field, status, apply, solo });
const set = (key: string, value: unknown) => (vars: Vars) => (input(vars)[key] = value);
/** The marker tag (the fixture's project) that every generated createRun carries. */
const firstTag = (vars: Vars) => (input(vars)['tags'] as unknown[])[0];
const setPoint = (i: number, key: string, value: unknown) => (vars: Vars) =>
  (point(vars, i)[key] = value);

function templates(): Template[] {
  const ip = 'input.project';
  const m = (i: number, k: string) => `input.measurements[${i}].${k}`;
  return [
    {
      name: 'createRun',
      query: CREATE,
      base: (fx) => ({ input: { project: fx.project, name: 'malformed', tags: [fx.project] } }),
      spoilers: [
        spoil('project', ip, 200, set('project', '')),
        spoil('project', ip, 200, set('project', '   ')),
        spoil('project', ip, 200, set('project', x(201))),
        spoil('project', ip, 200, set('project', 'p\u0000')),
        spoil('project', ip, 400, set('project', 5)),
        spoil('name', 'input.name', 200, set('name', x(501))),
        spoil('name', 'input.name', 200, set('name', '\u0000')),
        spoil('name', 'input.name', 200, set('name', '\ud800')),
        spoil('name', 'input.name', 400, set('name', ['x'])),
        spoil(
          'tags',
          'input.tags',
          200,
          (v) =>
            (input(v)['tags'] = [firstTag(v), ...Array.from({ length: 50 }, (_, i) => `t${i}`)]),
        ),
        spoil('tags', 'input.tags[1]', 200, (v) => (input(v)['tags'] = [firstTag(v), ''])),
        spoil('tags', 'input.tags[1]', 200, (v) => (input(v)['tags'] = [firstTag(v), x(101)])),
        spoil('tags', 'input.tags[1]', 400, (v) => (input(v)['tags'] = [firstTag(v), 7])),
        spoil('meta', 'input.meta', 200, set('meta', [])),
        spoil('meta', 'input.meta', 200, set('meta', 'str')),
        spoil('meta', 'input.meta', 200, set('meta', 3.5)),
        spoil('meta', 'input.meta', 200, set('meta', { deep: { n: HUGE } })),
        spoil('meta', 'input.meta', 200, set('meta', { s: 'a\u0000' })),
        spoil('meta', 'input.meta', 200, set('meta', { big: x(70_000) })),
        spoil('key', 'input.idempotencyKey', 200, set('idempotencyKey', '')),
        spoil('key', 'input.idempotencyKey', 200, set('idempotencyKey', x(201))),
        spoil('bogus', 'input', 400, set('bogus', true)),
      ],
    },
    {
      name: 'transitionRun',
      query: TRANSITION,
      base: (fx) => ({ input: { id: fx.runId, to: 'RUNNING', reason: 'mass' } }),
      spoilers: [
        spoil('id', 'input.id', 200, set('id', 'not-a-uuid')),
        spoil('id', 'input.id', 400, set('id', true)),
        spoil('to', 'input.to', 400, set('to', 'BOGUS')),
        spoil('to', 'input.to', 400, set('to', 5)),
        spoil('to', 'input.to', 400, set('to', null)),
        spoil('reason', 'input.reason', 200, set('reason', x(201))),
        spoil('message', 'input.message', 200, set('message', x(10_001))),
        spoil('ev', 'input.expectedVersion', 200, set('expectedVersion', 0)),
        spoil('ev', 'input.expectedVersion', 200, set('expectedVersion', -3)),
        spoil('ev', 'input.expectedVersion', 400, set('expectedVersion', 1.5)),
        spoil('ev', 'input.expectedVersion', 400, set('expectedVersion', 2 ** 31)),
        spoil('es', 'input.expectedStatus', 400, set('expectedStatus', 'NOPE')),
        spoil('key', 'input.idempotencyKey', 200, set('idempotencyKey', '')),
      ],
    },
    {
      name: 'transitionRuns',
      query: TRANSITION_MANY,
      base: (fx) => ({
        inputs: [
          { id: fx.runId, to: 'RUNNING' },
          { id: fx.runId, to: 'PROCESSING' },
        ],
      }),
      spoilers: [
        spoil(
          'inputs',
          'inputs',
          200,
          (v) =>
            (v['inputs'] = Array.from({ length: 501 }, () => ({
              id: (v['inputs'] as Vars[])[0]!['id'],
              to: 'RUNNING',
            }))),
          true,
        ),
        spoil(
          'i1',
          'inputs[1].reason',
          200,
          (v) => ((v['inputs'] as Vars[])[1]!['reason'] = x(201)),
        ),
        spoil('i0', 'inputs[0].to', 400, (v) => ((v['inputs'] as Vars[])[0]!['to'] = 'NOPE')),
        spoil('i0', 'inputs[0].id', 200, (v) => ((v['inputs'] as Vars[])[0]!['id'] = 'nope')),
      ],
    },
    {
      name: 'reportProgress',
      query: PROGRESS,
      base: (fx) => ({ input: { id: fx.runId, progress: 0.75, phase: 'mass' } }),
      spoilers: [
        spoil('progress', 'input.progress', 200, set('progress', 1.5)),
        spoil('progress', 'input.progress', 200, set('progress', -0.1)),
        spoil('progress', 'input.progress', 400, set('progress', HUGE)),
        spoil('progress', 'input.progress', 400, set('progress', 'abc')),
        spoil('progress', 'input.progress', 400, set('progress', 'NaN')),
        spoil('progress', 'input.progress', 400, set('progress', null)),
        spoil('phase', 'input.phase', 200, set('phase', x(501))),
        spoil('phase', 'input.phase', 200, set('phase', 'x\u0000')),
        spoil('id', 'input.id', 200, set('id', 'nope')),
      ],
    },
    {
      name: 'recordMeasurements',
      query: MEASURE,
      base: (fx) => ({ input: { runId: fx.runId, measurements: points() } }),
      spoilers: [
        spoil('all', 'input.measurements', 200, set('measurements', []), true),
        spoil(
          'all',
          'input.measurements',
          200,
          set(
            'measurements',
            Array.from({ length: 10_001 }, (_, i) => ({ name: 'm', value: i })),
          ),
          true,
        ),
        spoil('0v', m(0, 'value'), 400, setPoint(0, 'value', HUGE)),
        spoil('1v', m(1, 'value'), 400, setPoint(1, 'value', 'NaN')),
        spoil('2n', m(2, 'name'), 200, setPoint(2, 'name', '')),
        spoil('3n', m(3, 'name'), 200, setPoint(3, 'name', x(201))),
        spoil('1a', m(1, 'at'), 400, setPoint(1, 'at', 'not a date')),
        spoil('2s', m(2, 'step'), 400, setPoint(2, 'step', 1.5)),
        spoil('3s', m(3, 'step'), 400, setPoint(3, 'step', 2 ** 31)),
        spoil('run', 'input.runId', 200, set('runId', 'x')),
      ],
    },
  ];
}

interface Generated {
  label: string;
  body: string;
  spoilers: Spoiler[];
}

function generate(fx: Fixture, count: number, random: () => number): Generated[] {
  const all = templates();
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  return Array.from({ length: count }, (_, n) => {
    const template = all[n % all.length]!;
    const first = pick(template.spoilers);
    const chosen = [first];
    // Half of them get a second, independent mutation.
    if (!first.solo && random() < 0.5) {
      const others = template.spoilers.filter((s) => !s.solo && s.group !== first.group);
      if (others.length > 0) chosen.push(pick(others));
    }
    const vars = template.base(fx);
    for (const s of chosen) s.apply(vars);
    return {
      label: `${template.name} [${chosen.map((s) => s.field).join(', ')}]`,
      body: bodyOf(template.query, vars),
      spoilers: chosen,
    };
  });
}

describe('generated malformed requests', () => {
  it('150 malformed requests mixed with valid ones, all at once: no 5xx, every one coded, only valid writes land', async () => {
    const fx = await fixture('mass');
    const before = await stateOf(fx.project);
    const baseline = before.byProject.edges[0]!.node;
    const seed = 20_261_121;
    const malformed = generate(fx, 150, prng(seed));
    expect(new Set(malformed.map((g) => g.label)).size).toBeGreaterThan(60);

    const validRuns = Array.from({ length: 8 }, (_, i) =>
      bodyOf(CREATE, { input: { project: fx.project, name: `valid-${i}`, tags: [fx.project] } }),
    );
    const validPoints = Array.from({ length: 6 }, () =>
      bodyOf(MEASURE, { input: { runId: fx.runId, measurements: points() } }),
    );
    const requests = [
      ...malformed.map((g) => ({ kind: 'bad' as const, g, body: g.body })),
      ...validRuns.map((body) => ({ kind: 'run' as const, body })),
      ...validPoints.map((body) => ({ kind: 'points' as const, body })),
    ];
    // Interleave the valid ones among the malformed ones.
    const random = prng(seed + 1);
    for (let i = requests.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [requests[i], requests[j]] = [requests[j]!, requests[i]!];
    }

    const replies = await Promise.all(requests.map((r) => post(r.body)));

    const problems: string[] = [];
    requests.forEach((request, i) => {
      const reply = replies[i]!;
      const context = `${reply.status} ${reply.text.slice(0, 300)}`;
      if (reply.status >= 500) problems.push(`5xx: ${context}`);
      if (request.kind !== 'bad') {
        if (reply.status !== 200 || reply.body?.errors) problems.push(`valid refused: ${context}`);
        return;
      }
      const { g } = request;
      const errors = reply.body?.errors ?? [];
      if (errors.length === 0) {
        problems.push(`${g.label}: no error: ${context}`);
        return;
      }
      // GraphQL's own coercion runs first: if any chosen mutation is one it refuses, only those.
      const coerced = g.spoilers.filter((s) => s.status === 400);
      const expected = coerced.length > 0 ? coerced : g.spoilers;
      const status = coerced.length > 0 ? 400 : 200;
      if (reply.status !== status) problems.push(`${g.label}: status ${context}`);
      for (const error of errors) {
        const code = error.extensions?.['code'];
        const field = error.extensions?.['field'];
        if (code !== 'BAD_USER_INPUT')
          problems.push(`${g.label}: code ${String(code)}: ${context}`);
        if (!expected.some((s) => s.field === field))
          problems.push(`${g.label}: field ${String(field)}: ${context}`);
      }
      if (status === 200 && errors.length !== 1) problems.push(`${g.label}: ${context}`);
    });
    expect(problems.slice(0, 20), `${problems.length} problems`).toEqual([]);

    // Exactly what the valid requests wrote, nothing else.
    const after = await stateOf(fx.project);
    expect(after.byProject.edges.map((e) => e.node.name).sort()).toEqual(
      ['baseline', ...Array.from({ length: 8 }, (_, i) => `valid-${i}`)].sort(),
    );
    expect(after.byTag.edges).toHaveLength(9);
    expect(after.byTag.edges.every((e) => e.node.project === fx.project)).toBe(true);
    expect(after.changes.edges).toHaveLength(2 + 8);
    const run = after.byProject.edges.find((e) => e.node.id === fx.runId)!.node;
    const { measurements: _m, ...rest } = run;
    const { measurements: _b, ...baselineRest } = baseline;
    expect(rest).toEqual(baselineRest);
    expect(run.measurements.edges).toHaveLength(1 + 6 * 4);
    for (const e of after.byProject.edges) {
      if (e.node.id === fx.runId) continue;
      expect(e.node).toMatchObject({ status: 'CREATED', version: 1, progress: null });
      expect(e.node.statusHistory.edges).toHaveLength(1);
      expect(e.node.measurements.edges).toHaveLength(0);
    }
    await expectAlive();
  });
});
