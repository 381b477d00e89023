import { describe, expect, it } from 'vitest';
import { createRun, dataOf, sleep, type RunData } from '../support/operations.js';
import { useServer, uniqueProject, type GqlResponse } from '../support/server.js';

// Reads: run lists with filters, orders and keyset pages; the change log; one run; nested lists.

const server = useServer();

const MISSING_ID = '00000000-0000-4000-8000-00000000dcba';

interface PageInfo {
  hasNextPage: boolean;
  hasPreviousPage: boolean;
  startCursor: string | null;
  endCursor: string | null;
}

interface Connection<T> {
  edges: { cursor: string; node: T }[];
  pageInfo: PageInfo;
}

interface ListedRun {
  id: string;
  name: string | null;
  status: string;
  tags: string[];
  createdAt: string;
  updatedAt: string;
}

interface Change {
  cursor: string;
  runId: string;
  from: string | null;
  to: string;
  version: number;
  reason: string | null;
  message: string | null;
  at: string;
}

interface Measurement {
  name: string;
  value: number;
  step: number | null;
  at: string;
}

type GqlError = NonNullable<GqlResponse<unknown>['errors']>[number];

const PAGE_INFO = 'pageInfo { hasNextPage hasPreviousPage startCursor endCursor }';
const CHANGE_FIELDS = 'cursor runId from to version reason message at';

const RUNS = `query($filter: RunFilter, $first: Int, $after: String, $orderBy: RunOrder) {
  runs(filter: $filter, first: $first, after: $after, orderBy: $orderBy) {
    edges { cursor node { id name status tags createdAt updatedAt } } ${PAGE_INFO} } }`;

const STATUS_CHANGES = `query($filter: StatusChangeFilter, $first: Int, $after: String) {
  statusChanges(filter: $filter, first: $first, after: $after) {
    edges { cursor node { ${CHANGE_FIELDS} } } ${PAGE_INFO} } }`;

const HISTORY = `query($id: ID!, $first: Int, $after: String) { run(id: $id) {
  statusHistory(first: $first, after: $after) { edges { cursor node { ${CHANGE_FIELDS} } } ${PAGE_INFO} } } }`;

const MEASUREMENTS = `query($id: ID!, $names: [String!], $first: Int, $after: String) { run(id: $id) {
  measurements(names: $names, first: $first, after: $after) {
    edges { cursor node { name value step at } } ${PAGE_INFO} } } }`;

async function runsPage(variables: Record<string, unknown>): Promise<Connection<ListedRun>> {
  return dataOf(await server.gql<{ runs: Connection<ListedRun> }>(RUNS, variables)).runs;
}

/** Ids of the runs matching a filter, in the order served (one page of up to 500). */
async function runIds(
  filter: Record<string, unknown>,
  orderBy?: Record<string, unknown>,
): Promise<string[]> {
  const page = await runsPage({ filter, first: 500, orderBy });
  expect(page.pageInfo.hasNextPage).toBe(false);
  return page.edges.map((e) => e.node.id);
}

async function changesPage(variables: Record<string, unknown>): Promise<Connection<Change>> {
  return dataOf(await server.gql<{ statusChanges: Connection<Change> }>(STATUS_CHANGES, variables))
    .statusChanges;
}

async function changes(filter: Record<string, unknown>): Promise<Change[]> {
  const page = await changesPage({ filter, first: 500 });
  expect(page.pageInfo.hasNextPage).toBe(false);
  for (const edge of page.edges) expect(edge.cursor).toBe(edge.node.cursor);
  return page.edges.map((e) => e.node);
}

async function transition(input: Record<string, unknown>): Promise<Change> {
  const response = await server.gql<{
    transitionRun: { __typename: string; change: Change | null };
  }>(
    `mutation($input: TransitionRunInput!) { transitionRun(input: $input) {
       __typename ... on TransitionAccepted { change { ${CHANGE_FIELDS} } } } }`,
    { input },
  );
  const result = dataOf(response).transitionRun;
  if (result.__typename !== 'TransitionAccepted' || !result.change) {
    throw new Error(`expected an accepted change: ${JSON.stringify(result)}`);
  }
  return result.change;
}

async function walk(id: string, path: string[]): Promise<Change[]> {
  const out: Change[] = [];
  for (const to of path) out.push(await transition({ id, to }));
  return out;
}

/** The single error of a refused read. */
async function refusal(query: string, variables: Record<string, unknown>): Promise<GqlError> {
  const response = await server.gql(query, variables);
  expect(response.errors, JSON.stringify(response)).toHaveLength(1);
  return response.errors![0]!;
}

function expectBadInput(error: GqlError, field: string) {
  expect(error.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
  expect(error.message).toContain(field);
}

const sortedIds = (runs: { id: string }[]) => runs.map((r) => r.id).sort();

/** The order the API promises: by the timestamp, then by id, in the given direction. */
function expectedOrder(
  runs: RunData[],
  field: 'createdAt' | 'updatedAt',
  direction: 'ASC' | 'DESC',
): string[] {
  const sorted = [...runs].sort((a, b) => {
    const byTime = Date.parse(a[field] as string) - Date.parse(b[field] as string);
    return byTime !== 0 ? byTime : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  });
  if (direction === 'DESC') sorted.reverse();
  return sorted.map((r) => r.id);
}

/** Create runs one after another, a few milliseconds apart, so their createdAt differ. */
async function createSpaced(project: string, inputs: Record<string, unknown>[]) {
  const created: RunData[] = [];
  for (const input of inputs) {
    if (created.length > 0) await sleep(3);
    created.push(await createRun(server, { project, ...input }));
  }
  return created;
}

describe('runs(filter)', () => {
  it('project: only that project’s runs', async () => {
    const p1 = uniqueProject();
    const p2 = uniqueProject();
    const a = await createRun(server, { project: p1 });
    const b = await createRun(server, { project: p1 });
    const c = await createRun(server, { project: p2 });
    expect((await runIds({ project: p1 })).sort()).toEqual(sortedIds([a, b]));
    expect(await runIds({ project: p2 })).toEqual([c.id]);
    expect(await runIds({ project: uniqueProject() })).toEqual([]);
  });

  it('statuses, categories, and both together (their intersection)', async () => {
    const project = uniqueProject();
    const [created, queued, running, processing, failed, warning] = await Promise.all(
      [1, 2, 3, 4, 5, 6].map(() => createRun(server, { project })),
    );
    await walk(queued!.id, ['QUEUED']);
    await walk(running!.id, ['RUNNING']);
    await walk(processing!.id, ['PROCESSING']);
    await walk(failed!.id, ['FAILED']);
    await walk(warning!.id, ['RUNNING', 'WARNING']);

    const ids = async (f: Record<string, unknown>) => (await runIds({ project, ...f })).sort();
    expect(await ids({ statuses: ['RUNNING', 'FAILED'] })).toEqual(sortedIds([running!, failed!]));
    expect(await ids({ statuses: ['CREATED'] })).toEqual([created!.id]);
    expect(await ids({ categories: ['RUNNING'] })).toEqual(sortedIds([running!, processing!]));
    expect(await ids({ categories: ['PENDING', 'QUEUED'] })).toEqual(
      sortedIds([created!, queued!]),
    );
    expect(await ids({ categories: ['WARNING', 'DONE'] })).toEqual(sortedIds([warning!, failed!]));
    expect(await ids({ statuses: ['QUEUED', 'RUNNING'], categories: ['RUNNING'] })).toEqual([
      running!.id,
    ]);
    expect(await ids({ statuses: ['QUEUED'], categories: ['DONE'] })).toEqual([]);
    expect(await ids({ statuses: [] })).toEqual([]);
    expect(await ids({ statuses: ['SUCCEEDED'] })).toEqual([]);
  });

  it('tags: runs that carry all of them', async () => {
    const project = uniqueProject();
    const ab = await createRun(server, { project, tags: ['a', 'b'] });
    const a = await createRun(server, { project, tags: ['a'] });
    const bc = await createRun(server, { project, tags: ['b', 'c'] });
    const none = await createRun(server, { project });
    const ids = async (tags: string[]) => (await runIds({ project, tags })).sort();
    expect(await ids(['a'])).toEqual(sortedIds([ab, a]));
    expect(await ids(['b'])).toEqual(sortedIds([ab, bc]));
    expect(await ids(['a', 'b'])).toEqual([ab.id]);
    expect(await ids(['b', 'a'])).toEqual([ab.id]);
    expect(await ids(['a', 'c'])).toEqual([]);
    expect(await ids(['A'])).toEqual([]);
    expect(await ids([])).toEqual(sortedIds([ab, a, bc, none]));
  });

  it('nameContains: case-insensitive, with %, _ and \\ taken literally', async () => {
    const project = uniqueProject();
    const names = [
      'Nightly Train',
      'nightly-eval',
      '100% done',
      '100 done',
      'a_b',
      'axb',
      'C:\\temp',
      'C:temp',
    ];
    const runs = await Promise.all(names.map((name) => createRun(server, { project, name })));
    await createRun(server, { project }); // no name: never matches
    const byName = new Map(runs.map((r) => [r['name'] as string, r.id]));
    const ids = async (nameContains: string) => (await runIds({ project, nameContains })).sort();
    const idsOf = (...n: string[]) => n.map((x) => byName.get(x)!).sort();

    expect(await ids('NIGHTLY')).toEqual(idsOf('Nightly Train', 'nightly-eval'));
    expect(await ids('train')).toEqual(idsOf('Nightly Train'));
    expect(await ids('%')).toEqual(idsOf('100% done'));
    expect(await ids('100%')).toEqual(idsOf('100% done'));
    expect(await ids('0 d')).toEqual(idsOf('100 done'));
    expect(await ids('DONE')).toEqual(idsOf('100% done', '100 done'));
    expect(await ids('_')).toEqual(idsOf('a_b'));
    expect(await ids('A_B')).toEqual(idsOf('a_b'));
    expect(await ids('\\')).toEqual(idsOf('C:\\temp'));
    expect(await ids('c:\\t')).toEqual(idsOf('C:\\temp'));
    expect(await ids('no such name')).toEqual([]);
  });

  it('createdAfter is inclusive, createdBefore exclusive', async () => {
    const project = uniqueProject();
    const [r1, r2, r3, r4] = await createSpaced(project, [{}, {}, {}, {}]);
    const times = [r1, r2, r3, r4].map((r) => r!['createdAt'] as string);
    expect(new Set(times).size).toBe(4);
    const ids = async (f: Record<string, unknown>) => (await runIds({ project, ...f })).sort();

    expect(await ids({ createdAfter: times[1] })).toEqual(sortedIds([r2!, r3!, r4!]));
    expect(await ids({ createdBefore: times[2] })).toEqual(sortedIds([r1!, r2!]));
    expect(await ids({ createdAfter: times[1], createdBefore: times[2] })).toEqual([r2!.id]);
    expect(await ids({ createdAfter: times[2], createdBefore: times[2] })).toEqual([]);
    const later = new Date(Date.parse(times[3]!) + 1).toISOString();
    expect(await ids({ createdAfter: later })).toEqual([]);
  });

  it('orderBy CREATED_AT and UPDATED_AT, ASC and DESC', async () => {
    const project = uniqueProject();
    const [r1, r2, r3] = await createSpaced(project, [{}, {}, {}]);
    // Update r2 then r1: by updatedAt the order is r3 (never updated), r2, r1.
    await sleep(3);
    await transition({ id: r2!.id, to: 'QUEUED' });
    await sleep(3);
    await transition({ id: r1!.id, to: 'QUEUED' });

    const order = (field: string, direction: string) => runIds({ project }, { field, direction });
    expect(await order('CREATED_AT', 'ASC')).toEqual([r1!.id, r2!.id, r3!.id]);
    expect(await order('CREATED_AT', 'DESC')).toEqual([r3!.id, r2!.id, r1!.id]);
    expect(await order('UPDATED_AT', 'ASC')).toEqual([r3!.id, r2!.id, r1!.id]);
    expect(await order('UPDATED_AT', 'DESC')).toEqual([r1!.id, r2!.id, r3!.id]);
    // Defaults: newest created first; a missing field means CREATED_AT.
    expect(await runIds({ project })).toEqual([r3!.id, r2!.id, r1!.id]);
    expect(await runIds({ project }, { direction: 'ASC' })).toEqual([r1!.id, r2!.id, r3!.id]);
    expect(await runIds({ project }, { field: 'UPDATED_AT' })).toEqual([r1!.id, r2!.id, r3!.id]);
  });
});

describe('runs keyset pagination', () => {
  async function pageThrough(
    filter: Record<string, unknown>,
    first: number,
    orderBy?: Record<string, unknown>,
  ) {
    const pages: Connection<ListedRun>[] = [];
    let after: string | null = null;
    for (;;) {
      const page = await runsPage({ filter, first, after, orderBy });
      pages.push(page);
      if (!page.pageInfo.hasNextPage) return pages;
      after = page.pageInfo.endCursor;
      if (pages.length > 100) throw new Error('pagination does not end');
    }
  }

  it.each(['DESC', 'ASC'])(
    '25 runs, first: 10 -> 10, 10, 5 with no gap or duplicate (%s)',
    async (direction) => {
      const project = uniqueProject();
      // Created concurrently: many share a createdAt, so the id tie-break is exercised too.
      const runs = await Promise.all(
        Array.from({ length: 25 }, (_, i) => createRun(server, { project, name: `r${i}` })),
      );
      const pages = await pageThrough({ project }, 10, { field: 'CREATED_AT', direction });
      expect(pages.map((p) => p.edges.length)).toEqual([10, 10, 5]);
      expect(pages.map((p) => p.pageInfo.hasNextPage)).toEqual([true, true, false]);
      for (const page of pages) {
        expect(page.pageInfo.hasPreviousPage).toBe(false);
        expect(page.pageInfo.startCursor).toBe(page.edges[0]!.cursor);
        expect(page.pageInfo.endCursor).toBe(page.edges.at(-1)!.cursor);
      }
      const seen = pages.flatMap((p) => p.edges.map((e) => e.node.id));
      expect(seen).toEqual(expectedOrder(runs, 'createdAt', direction as 'ASC' | 'DESC'));
    },
  );

  it('by UPDATED_AT, pages follow the update order', async () => {
    const project = uniqueProject();
    const runs = await Promise.all(Array.from({ length: 7 }, () => createRun(server, { project })));
    for (const run of [runs[4]!, runs[0]!, runs[6]!])
      await transition({ id: run.id, to: 'QUEUED' });
    const current = await Promise.all(
      runs.map(async (r) => {
        const response = await server.gql<{ run: RunData }>(
          `query($id: ID!) { run(id: $id) { id createdAt updatedAt } }`,
          { id: r.id },
        );
        return dataOf(response).run;
      }),
    );
    const pages = await pageThrough({ project }, 3, { field: 'UPDATED_AT', direction: 'DESC' });
    expect(pages.map((p) => p.edges.length)).toEqual([3, 3, 1]);
    expect(pages.flatMap((p) => p.edges.map((e) => e.node.id))).toEqual(
      expectedOrder(current, 'updatedAt', 'DESC'),
    );
  });

  it.each(['CREATED_AT', 'UPDATED_AT'])(
    'pages that show only ids still page by %s (the time their cursors name is read)',
    async (field) => {
      const project = uniqueProject();
      const runs = await Promise.all(
        Array.from({ length: 5 }, () => createRun(server, { project })),
      );
      for (const run of [runs[3]!, runs[1]!]) await transition({ id: run.id, to: 'QUEUED' });
      const query = `query($filter: RunFilter, $after: String, $orderBy: RunOrder) {
        runs(filter: $filter, first: 2, after: $after, orderBy: $orderBy) {
          edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }`;
      const seen: string[] = [];
      let after: string | null = null;
      for (let page = 0; page < 10; page++) {
        const response = await server.gql<{ runs: Connection<{ id: string }> }>(query, {
          filter: { project },
          after,
          orderBy: { field, direction: 'DESC' },
        });
        const connection: Connection<{ id: string }> = dataOf(response).runs;
        seen.push(...connection.edges.map((e) => e.node.id));
        if (!connection.pageInfo.hasNextPage) break;
        after = connection.pageInfo.endCursor;
      }
      expect(seen).toEqual(await runIds({ project }, { field, direction: 'DESC' }));
      expect(new Set(seen).size).toBe(5);
    },
  );

  it('stable under concurrent inserts: every run that existed before is seen exactly once', async () => {
    const project = uniqueProject();
    const existing = await Promise.all(
      Array.from({ length: 30 }, () => createRun(server, { project })),
    );
    const before = new Set(existing.map((r) => r.id));
    for (const direction of ['DESC', 'ASC']) {
      const seen: string[] = [];
      const inserted: string[] = [];
      let after: string | null = null;
      for (let pageNumber = 0; ; pageNumber++) {
        // The page and three new runs of the same project in flight at once.
        const [page, ...created]: [Connection<ListedRun>, ...RunData[]] = await Promise.all([
          runsPage({ filter: { project }, first: 7, after, orderBy: { direction } }),
          createRun(server, { project }),
          createRun(server, { project }),
          createRun(server, { project }),
        ]);
        inserted.push(...created.map((r) => r.id));
        seen.push(...page.edges.map((e) => e.node.id));
        if (!page.pageInfo.hasNextPage) break;
        after = page.pageInfo.endCursor;
        expect(pageNumber).toBeLessThan(50);
      }
      expect(new Set(seen).size).toBe(seen.length);
      const seenBefore = seen.filter((id) => before.has(id));
      expect(seenBefore.sort()).toEqual([...before].sort());
      for (const id of seen) expect(before.has(id) || inserted.includes(id)).toBe(true);
      for (const id of inserted) before.add(id); // the next direction starts from all of them
    }
  });

  it('refuses a cursor of another order or list, and garbage, as BAD_USER_INPUT naming after', async () => {
    const project = uniqueProject();
    await Promise.all([1, 2, 3].map(() => createRun(server, { project })));
    const page = await runsPage({ filter: { project }, first: 1 });
    const cursor = page.pageInfo.endCursor!;
    // The cursor works with its own order.
    const next = await runsPage({ filter: { project }, first: 1, after: cursor });
    expect(next.edges).toHaveLength(1);
    expect(next.edges[0]!.node.id).not.toBe(page.edges[0]!.node.id);

    const refusals = [
      { after: cursor, orderBy: { field: 'UPDATED_AT', direction: 'DESC' } },
      { after: cursor, orderBy: { field: 'CREATED_AT', direction: 'ASC' } },
      { after: 'not a cursor!' },
      { after: 'bm90LWpzb24' }, // base64url of "not-json"
      { after: Buffer.from(JSON.stringify(['run:CREATED_AT:DESC'])).toString('base64url') },
    ];
    const [change] = await changes({ projects: [project] });
    refusals.push({ after: change!.cursor });
    for (const args of refusals) {
      const error = await refusal(RUNS, { filter: { project }, first: 5, ...args });
      expectBadInput(error, 'after');
    }
  });

  it('first must be within 1..500', async () => {
    const project = uniqueProject();
    await createRun(server, { project });
    for (const first of [0, -1, 501]) {
      const error = await refusal(RUNS, { filter: { project }, first });
      expectBadInput(error, 'first');
    }
    expect((await runsPage({ filter: { project }, first: 500 })).edges).toHaveLength(1);
  });
});

describe('statusChanges', () => {
  async function scenario() {
    const project = uniqueProject();
    const a = await createRun(server, { project });
    const b = await createRun(server, { project });
    const aQueued = await transition({ id: a.id, to: 'QUEUED', reason: 'SUBMIT' });
    const bRunning = await transition({ id: b.id, to: 'RUNNING', message: 'go' });
    const aRunning = await transition({ id: a.id, to: 'RUNNING' });
    const bFailed = await transition({ id: b.id, to: 'FAILED', message: 'boom' });
    return { project, a, b, aQueued, bRunning, aRunning, bFailed };
  }

  it('is the change log in commit order, creation rows included, cursors equal to StatusChange.cursor', async () => {
    const { project, a, b, aQueued, bRunning, aRunning, bFailed } = await scenario();
    const log = await changes({ projects: [project] });
    expect(log).toEqual([
      expect.objectContaining({
        cursor: expect.any(String),
        runId: a.id,
        from: null,
        to: 'CREATED',
        version: 1,
        message: null,
        at: a['createdAt'],
      }),
      expect.objectContaining({
        cursor: expect.any(String),
        runId: b.id,
        from: null,
        to: 'CREATED',
        version: 1,
        message: null,
        at: b['createdAt'],
      }),
      aQueued,
      bRunning,
      aRunning,
      bFailed,
    ]);
    expect(log.slice(2).map((c) => [c.from, c.to, c.version])).toEqual([
      ['CREATED', 'QUEUED', 2],
      ['CREATED', 'RUNNING', 2],
      ['QUEUED', 'RUNNING', 3],
      ['RUNNING', 'FAILED', 3],
    ]);
    expect(new Set(log.map((c) => c.cursor)).size).toBe(6);
  });

  it('filters by runIds, projects, statuses (to) and categories (to)', async () => {
    const s = await scenario();
    const other = await scenario();
    const pick = (list: Change[]) => list.map((c) => [c.runId, c.to]);

    expect(pick(await changes({ runIds: [s.a.id] }))).toEqual([
      [s.a.id, 'CREATED'],
      [s.a.id, 'QUEUED'],
      [s.a.id, 'RUNNING'],
    ]);
    expect(pick(await changes({ runIds: [s.b.id, other.a.id] }))).toEqual([
      [s.b.id, 'CREATED'],
      [s.b.id, 'RUNNING'],
      [s.b.id, 'FAILED'],
      [other.a.id, 'CREATED'],
      [other.a.id, 'QUEUED'],
      [other.a.id, 'RUNNING'],
    ]);
    expect((await changes({ projects: [s.project, other.project] })).length).toBe(12);
    expect(pick(await changes({ projects: [s.project], statuses: ['RUNNING'] }))).toEqual([
      [s.b.id, 'RUNNING'],
      [s.a.id, 'RUNNING'],
    ]);
    expect(pick(await changes({ projects: [s.project], categories: ['PENDING'] }))).toEqual([
      [s.a.id, 'CREATED'],
      [s.b.id, 'CREATED'],
    ]);
    expect(pick(await changes({ projects: [s.project], categories: ['QUEUED', 'DONE'] }))).toEqual([
      [s.a.id, 'QUEUED'],
      [s.b.id, 'FAILED'],
    ]);
    expect(
      pick(
        await changes({
          projects: [s.project],
          statuses: ['QUEUED', 'RUNNING'],
          categories: ['RUNNING'],
        }),
      ),
    ).toEqual([
      [s.b.id, 'RUNNING'],
      [s.a.id, 'RUNNING'],
    ]);
    expect(
      await changes({ projects: [s.project], statuses: ['QUEUED'], categories: ['DONE'] }),
    ).toEqual([]);
    expect(pick(await changes({ runIds: [s.a.id], statuses: ['RUNNING', 'FAILED'] }))).toEqual([
      [s.a.id, 'RUNNING'],
    ]);
    expect(await changes({ runIds: [MISSING_ID] })).toEqual([]);
  });

  it('pages with first/after from an edge cursor, without gap or duplicate', async () => {
    const { project } = await scenario();
    const all = await changes({ projects: [project] });
    const seen: Change[] = [];
    const hasNext: boolean[] = [];
    let after: string | null = null;
    for (;;) {
      const page = await changesPage({ filter: { projects: [project] }, first: 4, after });
      seen.push(...page.edges.map((e) => e.node));
      hasNext.push(page.pageInfo.hasNextPage);
      expect(page.pageInfo.endCursor).toBe(page.edges.at(-1)?.cursor ?? null);
      if (!page.pageInfo.hasNextPage) break;
      after = page.edges.at(-1)!.cursor;
    }
    expect(hasNext).toEqual([true, false]);
    expect(seen).toEqual(all);
    // After a change's own cursor comes what followed it.
    const fromThird = await changesPage({ filter: { projects: [project] }, after: all[2]!.cursor });
    expect(fromThird.edges.map((e) => e.node)).toEqual(all.slice(3));
    const fromLast = await changesPage({ filter: { projects: [project] }, after: all[5]!.cursor });
    expect(fromLast.edges).toEqual([]);
    expect(fromLast.pageInfo).toEqual({
      hasNextPage: false,
      hasPreviousPage: false,
      startCursor: null,
      endCursor: null,
    });
  });

  it('unfiltered, the global log holds every change in commit order', async () => {
    const s = await scenario();
    const mine = await changes({ projects: [s.project] });
    const wanted = new Set(mine.map((c) => c.cursor));
    // Everything after the first creation, whatever other tests add in between.
    const found: Change[] = [];
    let after: string | null = mine[0]!.cursor;
    found.push(mine[0]!);
    for (let i = 0; i < 200 && found.length < mine.length; i++) {
      const page = await changesPage({ first: 500, after });
      found.push(...page.edges.map((e) => e.node).filter((c) => wanted.has(c.cursor)));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(found).toEqual(mine);
  });

  it('refuses a garbage or foreign cursor and an out-of-range first', async () => {
    const { project, a } = await scenario();
    const runCursor = (await runsPage({ filter: { project }, first: 1 })).pageInfo.endCursor;
    const historyCursor = dataOf(
      await server.gql<{ run: { statusHistory: Connection<Change> } }>(HISTORY, {
        id: a.id,
        first: 1,
      }),
    ).run.statusHistory.pageInfo.endCursor;
    for (const after of ['%%%', runCursor, historyCursor]) {
      expectBadInput(await refusal(STATUS_CHANGES, { after }), 'after');
    }
    for (const first of [0, 501]) {
      expectBadInput(await refusal(STATUS_CHANGES, { first }), 'first');
    }
  });
});

describe('run(id)', () => {
  it('is null for a valid id that is no run, and BAD_USER_INPUT for a malformed one', async () => {
    const absent = await server.gql<{ run: unknown }>(`query($id: ID!) { run(id: $id) { id } }`, {
      id: MISSING_ID,
    });
    expect(absent).toEqual({ status: 200, data: { run: null } });

    const run = await createRun(server, { project: uniqueProject() });
    const upper = await server.gql<{ run: { id: string } }>(
      `query($id: ID!) { run(id: $id) { id } }`,
      { id: run.id.toUpperCase() },
    );
    expect(dataOf(upper).run.id).toBe(run.id);

    for (const id of ['not-a-uuid', '', `${run.id}0`]) {
      const response = await server.gql<{ run: unknown }>(
        `query($id: ID!) { run(id: $id) { id } }`,
        { id },
      );
      expect(response.data?.run ?? null).toBeNull();
      expect(response.errors).toHaveLength(1);
      expectBadInput(response.errors![0]!, 'id');
    }
  });
});

describe('Run.statusHistory', () => {
  it('pages oldest first with first/after', async () => {
    const run = await createRun(server, { project: uniqueProject() });
    const made = await walk(run.id, ['QUEUED', 'RUNNING', 'FAILED', 'RETRYING', 'RUNNING']);
    const pages: Connection<Change>[] = [];
    let after: string | null = null;
    for (;;) {
      const response: GqlResponse<{ run: { statusHistory: Connection<Change> } }> =
        await server.gql(HISTORY, { id: run.id, first: 2, after });
      const page: Connection<Change> = dataOf(response).run.statusHistory;
      pages.push(page);
      if (!page.pageInfo.hasNextPage) break;
      after = page.edges.at(-1)!.cursor;
      expect(pages.length).toBeLessThan(10);
    }
    expect(pages.map((p) => p.edges.length)).toEqual([2, 2, 2]);
    expect(pages.map((p) => p.pageInfo.hasNextPage)).toEqual([true, true, false]);
    const nodes = pages.flatMap((p) => p.edges.map((e) => e.node));
    expect(nodes.map((n) => n.version)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(nodes[0]).toMatchObject({ runId: run.id, from: null, to: 'CREATED' });
    expect(nodes.slice(1)).toEqual(made);
    // The nodes are the log's changes.
    expect(nodes).toEqual(await changes({ runIds: [run.id] }));
  });

  it('refuses a cursor from another run’s history and first over 500', async () => {
    const project = uniqueProject();
    const a = await createRun(server, { project });
    const b = await createRun(server, { project });
    await walk(a.id, ['QUEUED']);
    await walk(b.id, ['QUEUED']);
    const aPage = dataOf(
      await server.gql<{ run: { statusHistory: Connection<Change> } }>(HISTORY, {
        id: a.id,
        first: 1,
      }),
    ).run.statusHistory;
    expectBadInput(
      await refusal(HISTORY, { id: b.id, first: 1, after: aPage.pageInfo.endCursor }),
      'after',
    );
    expectBadInput(await refusal(HISTORY, { id: a.id, first: 501 }), 'first');
  });
});

describe('Run.measurements', () => {
  it('pages in time order (then recording order), filtered by names', async () => {
    const run = await createRun(server, { project: uniqueProject() });
    const t0 = Date.parse('2031-06-01T12:00:00.000Z');
    const at = (s: number) => new Date(t0 + s * 1000).toISOString();
    const points = [
      { name: 'loss', value: 0.5, step: 5, at: at(5) },
      { name: 'acc', value: 0.6, step: 1, at: at(1) },
      { name: 'loss', value: 0.9, step: 1, at: at(1) },
      { name: 'loss', value: 0.7, step: 3, at: at(3) },
      { name: 'lr', value: 0.01, at: at(2) },
      { name: 'loss', value: 0.8, step: 2, at: at(3) },
      { name: 'acc', value: 0.8, step: 4, at: at(4) },
      { name: 'loss', value: 0.4, step: 6, at: at(6) },
    ];
    const count = dataOf(
      await server.gql<{ recordMeasurements: number }>(
        `mutation($input: RecordMeasurementsInput!) { recordMeasurements(input: $input) }`,
        { input: { runId: run.id, measurements: points } },
      ),
    ).recordMeasurements;
    expect(count).toBe(points.length);

    const read = async (names: string[] | null, first: number) => {
      const seen: Measurement[] = [];
      const sizes: number[] = [];
      let after: string | null = null;
      for (;;) {
        const response: GqlResponse<{ run: { measurements: Connection<Measurement> } }> =
          await server.gql(MEASUREMENTS, { id: run.id, names, first, after });
        const page: Connection<Measurement> = dataOf(response).run.measurements;
        seen.push(...page.edges.map((e) => e.node));
        sizes.push(page.edges.length);
        if (!page.pageInfo.hasNextPage) return { seen, sizes };
        after = page.edges.at(-1)!.cursor;
        expect(sizes.length).toBeLessThan(20);
      }
    };
    const m = (name: string, value: number, step: number | null, s: number): Measurement => ({
      name,
      value,
      step,
      at: at(s),
    });

    const loss = await read(['loss'], 2);
    expect(loss.sizes).toEqual([2, 2, 1]);
    expect(loss.seen).toEqual([
      m('loss', 0.9, 1, 1),
      m('loss', 0.7, 3, 3),
      m('loss', 0.8, 2, 3),
      m('loss', 0.5, 5, 5),
      m('loss', 0.4, 6, 6),
    ]);

    const two = await read(['acc', 'lr'], 2);
    expect(two.sizes).toEqual([2, 1]);
    expect(two.seen).toEqual([m('acc', 0.6, 1, 1), m('lr', 0.01, null, 2), m('acc', 0.8, 4, 4)]);

    const all = await read(null, 3);
    expect(all.sizes).toEqual([3, 3, 2]);
    expect(all.seen).toEqual([
      m('acc', 0.6, 1, 1),
      m('loss', 0.9, 1, 1),
      m('lr', 0.01, null, 2),
      m('loss', 0.7, 3, 3),
      m('loss', 0.8, 2, 3),
      m('acc', 0.8, 4, 4),
      m('loss', 0.5, 5, 5),
      m('loss', 0.4, 6, 6),
    ]);

    expect((await read([], 10)).seen).toEqual([]);
    expect((await read(['nothing'], 10)).seen).toEqual([]);
  });

  it('refuses a garbage cursor and first over 500', async () => {
    const run = await createRun(server, { project: uniqueProject() });
    expectBadInput(await refusal(MEASUREMENTS, { id: run.id, after: 'garbage!' }), 'after');
    expectBadInput(await refusal(MEASUREMENTS, { id: run.id, first: 501 }), 'first');
  });
});
