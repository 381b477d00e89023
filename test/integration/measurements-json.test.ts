import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createPgliteDatabase } from '../../src/db/client.js';
import { createRun, dataOf, record, waitUntil } from '../support/operations.js';
import { startServer, uniqueProject, useServers, type TestServer } from '../support/server.js';

/**
 * records.md, non-numeric measurements: a point is a number (`value`) or any other JSON
 * (`data`), and JSON series are read, listed as latest and followed live like numeric ones.
 * Two instances share the test database: a batch written through one reaches subscribers on both.
 */

const [a, b] = useServers(2) as [TestServer, TestServer];

interface Point {
  name: string;
  value: number | null;
  data: unknown;
  step: number | null;
  at: string;
}

const POINT = 'name value data step at';
const MEASURE = `mutation($input: RecordMeasurementsInput!) { recordMeasurements(input: $input) }`;
const SUBSCRIBE = `subscription($id: ID!) { measurementRecorded(runId: $id) { ${POINT} } }`;

const t = (second: number) => `2026-03-01T10:00:${String(second).padStart(2, '0')}.000Z`;

/** Numbers and each kind of JSON, including strings a second JSON parse would turn into others. */
const MIXED = [
  { name: 'loss', value: 0.5, step: 1, at: t(1) },
  { name: 'mode', data: 'fast', step: 1, at: t(1) },
  { name: 'converged', data: true, step: 1, at: t(2) },
  { name: 'stats', data: { mean: 0.25, std: null, tags: ['a', 'b'] }, step: 1, at: t(2) },
  { name: 'hist', data: [1, 2, 3], step: 1, at: t(3) },
  { name: 'loss', value: 0.25, step: 2, at: t(3) },
  { name: 'mode', data: '1', step: 2, at: t(4) },
  { name: 'label', data: 'true', at: t(4) },
  { name: 'label', data: 'null', at: t(5) },
  { name: 'converged', data: false, step: 2, at: t(5) },
  { name: 'note', data: 'héllo ✓ "quoted" \\ 𝄞', at: t(6) },
  { name: 'empty', data: {}, at: t(6) },
  { name: 'empty', data: [], at: t(7) },
];

/** Each point as the API answers it. */
const answered = (points: typeof MIXED): Point[] =>
  points.map((p) => ({
    name: p.name,
    value: 'value' in p ? p.value! : null,
    data: 'data' in p ? p.data : null,
    step: p.step ?? null,
    at: p.at,
  }));

async function readPoints(server: TestServer, runId: string): Promise<Point[]> {
  const data = dataOf(
    await server.gql<{ run: { measurements: { edges: { node: Point }[] } } }>(
      `query($id: ID!) { run(id: $id) { measurements(first: 500) { edges { node { ${POINT} } } } } }`,
      { id: runId },
    ),
  );
  return data.run.measurements.edges.map((e) => e.node);
}

async function latestOf(server: TestServer, runId: string): Promise<Point[]> {
  const data = dataOf(
    await server.gql<{ run: { latestMeasurements: Point[] } }>(
      `query($id: ID!) { run(id: $id) { latestMeasurements { ${POINT} } } }`,
      { id: runId },
    ),
  );
  return [...data.run.latestMeasurements].sort((x, y) => x.name.localeCompare(y.name));
}

describe('JSON-valued measurements beside numeric ones', () => {
  it('a mixed batch is written once per idempotency key and read back in order, each type as sent', async () => {
    const run = await createRun(a, { project: uniqueProject('mj') });
    const input = { runId: run.id, measurements: MIXED, idempotencyKey: 'batch-1' };
    expect(dataOf(await a.gql(MEASURE, { input }))).toEqual({ recordMeasurements: MIXED.length });
    // The same key again, through the other instance and with other points: nothing new.
    const replay = { ...input, measurements: [{ name: 'mode', data: 'slow' }] };
    expect(dataOf(await b.gql(MEASURE, { input: replay }))).toEqual({
      recordMeasurements: MIXED.length,
    });
    expect(await readPoints(a, run.id)).toEqual(answered(MIXED));
    expect(await readPoints(b, run.id)).toEqual(answered(MIXED));

    // Filtered by name, and paginated: JSON points page like numbers.
    const page = dataOf(
      await b.gql<{ run: { measurements: { edges: { node: Point }[] } } }>(
        `query($id: ID!) { run(id: $id) { measurements(names: ["mode", "stats"], first: 2) {
          edges { node { ${POINT} } } } } }`,
        { id: run.id },
      ),
    );
    expect(page.run.measurements.edges.map((e) => e.node.data)).toEqual([
      'fast',
      { mean: 0.25, std: null, tags: ['a', 'b'] },
    ]);
  });

  it('GraphQL literals carry JSON data as well as variables do', async () => {
    const run = await createRun(a, { project: uniqueProject('mj') });
    const written = await a.gql<{ recordMeasurements: number }>(
      `mutation($id: ID!) { recordMeasurements(input: { runId: $id, measurements: [
        { name: "s", data: "x", step: 1, at: "${t(1)}" },
        { name: "o", data: { k: [1, "two", null, false], n: { m: 1.5 } }, at: "${t(2)}" },
        { name: "v", value: 3, at: "${t(3)}" }] }) }`,
      { id: run.id },
    );
    expect(dataOf(written)).toEqual({ recordMeasurements: 3 });
    expect(await readPoints(b, run.id)).toEqual([
      { name: 's', value: null, data: 'x', step: 1, at: t(1) },
      {
        name: 'o',
        value: null,
        data: { k: [1, 'two', null, false], n: { m: 1.5 } },
        step: null,
        at: t(2),
      },
      { name: 'v', value: 3, data: null, step: null, at: t(3) },
    ]);
  });

  it('latestMeasurements holds the newest point of each series, whichever its kind', async () => {
    const run = await createRun(a, { project: uniqueProject('mj') });
    dataOf(await a.gql(MEASURE, { input: { runId: run.id, measurements: MIXED } }));
    expect(await latestOf(b, run.id)).toEqual([
      { name: 'converged', value: null, data: false, step: 2, at: t(5) },
      { name: 'empty', value: null, data: [], step: null, at: t(7) },
      { name: 'hist', value: null, data: [1, 2, 3], step: 1, at: t(3) },
      { name: 'label', value: null, data: 'null', step: null, at: t(5) },
      { name: 'loss', value: 0.25, data: null, step: 2, at: t(3) },
      { name: 'mode', value: null, data: '1', step: 2, at: t(4) },
      { name: 'note', value: null, data: 'héllo ✓ "quoted" \\ 𝄞', step: null, at: t(6) },
      {
        name: 'stats',
        value: null,
        data: { mean: 0.25, std: null, tags: ['a', 'b'] },
        step: 1,
        at: t(2),
      },
    ]);
    // A series may change kind: the newest point is what it is now.
    dataOf(
      await b.gql(MEASURE, {
        input: {
          runId: run.id,
          measurements: [
            { name: 'loss', data: 'diverged', step: 3, at: t(8) },
            { name: 'mode', value: 2, step: 3, at: t(8) },
          ],
        },
      }),
    );
    const latest = await latestOf(a, run.id);
    expect(latest.find((p) => p.name === 'loss')).toEqual({
      name: 'loss',
      value: null,
      data: 'diverged',
      step: 3,
      at: t(8),
    });
    expect(latest.find((p) => p.name === 'mode')).toEqual({
      name: 'mode',
      value: 2,
      data: null,
      step: 3,
      at: t(8),
    });
  });

  it('subscribers on both instances receive the JSON points of a batch, in order, as sent', async () => {
    const run = await createRun(a, { project: uniqueProject('mj') });
    const [beforeA, beforeB] = [a.app.services.events.size(), b.app.services.events.size()];
    // On the writing instance the batch is read back by the INSERT itself; on the other one by
    // its id range after the NOTIFY: both paths decode `data`.
    const here = record<{ measurementRecorded: Point }>(a.wsClient(), SUBSCRIBE, { id: run.id });
    const there = record<{ measurementRecorded: Point }>(b.wsClient(), SUBSCRIBE, { id: run.id });
    try {
      await waitUntil('subscribed on a', () => a.app.services.events.size() > beforeA);
      await waitUntil('subscribed on b', () => b.app.services.events.size() > beforeB);
      dataOf(await a.gql(MEASURE, { input: { runId: run.id, measurements: MIXED } }));
      const expected = answered(MIXED);
      expect((await here.waitFor(MIXED.length)).map((v) => v.measurementRecorded)).toEqual(
        expected,
      );
      expect((await there.waitFor(MIXED.length)).map((v) => v.measurementRecorded)).toEqual(
        expected,
      );
    } finally {
      here.dispose();
      there.dispose();
    }
  });
});

describe('recordMeasurements refuses a bad point and writes none of the batch', () => {
  /** A list with `depth` levels of lists inside it: 0 is [], 2 is [[[]]]. */
  const nested = (depth: number): unknown =>
    Array.from({ length: depth }).reduce<unknown>((inner) => [inner], []);
  /** An object whose JSON text is exactly `bytes` long. */
  const sized = (bytes: number) => ({ s: 'x'.repeat(bytes - '{"s":""}'.length) });

  const good = [
    { name: 'loss', value: 0.5, step: 1 },
    { name: 'mode', data: 'fast', step: 1 },
    { name: 'stats', data: { mean: 1 }, step: 1 },
  ];
  const cases: { name: string; bad: Record<string, unknown>; field: string }[] = [
    { name: 'both value and data', bad: { value: 1, data: 'x' }, field: 'data' },
    { name: 'neither value nor data', bad: {}, field: 'value' },
    { name: 'data null and no value', bad: { data: null }, field: 'value' },
    { name: 'value null and data null', bad: { value: null, data: null }, field: 'value' },
    { name: 'data a bare number', bad: { data: 1.5 }, field: 'data' },
    { name: 'data the number 0', bad: { data: 0 }, field: 'data' },
    { name: 'data over 16 KB', bad: { data: sized(16 * 1024 + 1) }, field: 'data' },
    { name: 'data over 16 KB in one string', bad: { data: 'é'.repeat(8200) }, field: 'data' },
    { name: 'data nested 33 levels', bad: { data: nested(33) }, field: 'data' },
    { name: 'data with a NUL character', bad: { data: { s: 'a\u0000b' } }, field: 'data' },
    { name: 'data with a lone surrogate', bad: { data: ['\ud800'] }, field: 'data' },
  ];

  it.each(cases)('$name', async ({ bad, field }) => {
    const run = await createRun(a, { project: uniqueProject('mjbad') });
    const measurements = [...good, { name: 'bad', step: 2, ...bad }, ...good];
    const response = await a.gql(MEASURE, { input: { runId: run.id, measurements } });
    expect(response.status).toBe(200);
    expect(response.data).toBeNull();
    expect(response.errors).toHaveLength(1);
    expect(response.errors![0]!.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: `input.measurements[3].${field}`,
    });
    expect(await readPoints(b, run.id)).toEqual([]);
  });

  it('a bare number written in the query, and Infinity inside a literal object, are refused', async () => {
    const run = await createRun(a, { project: uniqueProject('mjbad') });
    for (const data of ['2', '-1e3', '{ n: 1e400 }']) {
      const response = await a.gql(
        `mutation($id: ID!) { recordMeasurements(input: { runId: $id, measurements: [
          { name: "ok", data: "fine" }, { name: "bad", data: ${data} }] }) }`,
        { id: run.id },
      );
      expect(response.errors?.[0]?.extensions, data).toMatchObject({
        code: 'BAD_USER_INPUT',
        field: 'input.measurements[1].data',
      });
    }
    expect(await readPoints(a, run.id)).toEqual([]);
  });

  it('data of exactly 16 KB, and data nested 32 levels, is accepted', async () => {
    const run = await createRun(a, { project: uniqueProject('mjbad') });
    const measurements = [
      { name: 'big', data: sized(16 * 1024) },
      { name: 'deep', data: nested(32) },
    ];
    expect(dataOf(await a.gql(MEASURE, { input: { runId: run.id, measurements } }))).toEqual({
      recordMeasurements: 2,
    });
    const points = await readPoints(b, run.id);
    expect(points.map((p) => p.data)).toEqual([sized(16 * 1024), nested(32)]);
  });
});

describe('on the embedded PGlite database', () => {
  it('a mixed batch is read back, listed as latest and sent to a subscriber, each type as sent', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'runstate-pglite-mj-'));
    // From the build's template when there is one (migrate() applies what is newer): faster.
    const database = await createPgliteDatabase({ dataDir });
    try {
      await database.migrate();
      const server = await startServer({ database });
      try {
        const run = await createRun(server, { project: 'embedded' });
        const live = record<{ measurementRecorded: Point }>(server.wsClient(), SUBSCRIBE, {
          id: run.id,
        });
        await waitUntil('subscribed', () => server.app.services.events.size() > 0);
        dataOf(await server.gql(MEASURE, { input: { runId: run.id, measurements: MIXED } }));
        const expected = answered(MIXED);
        expect((await live.waitFor(MIXED.length)).map((v) => v.measurementRecorded)).toEqual(
          expected,
        );
        live.dispose();
        expect(await readPoints(server, run.id)).toEqual(expected);
        const latest = await latestOf(server, run.id);
        expect(latest.map((p) => [p.name, p.value ?? p.data])).toEqual([
          ['converged', false],
          ['empty', []],
          ['hist', [1, 2, 3]],
          ['label', 'null'],
          ['loss', 0.25],
          ['mode', '1'],
          ['note', 'héllo ✓ "quoted" \\ 𝄞'],
          ['stats', { mean: 0.25, std: null, tags: ['a', 'b'] }],
        ]);
      } finally {
        await server.stop();
      }
    } finally {
      await database.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
