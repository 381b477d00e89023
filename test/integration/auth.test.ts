import { createHash } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { beforeAll, describe, expect, it } from 'vitest';
import { queryRows } from '../../src/db/client.js';
import {
  createRun,
  dataOf,
  getHistory,
  latestCursorOf,
  record,
  RESULT_FIELDS,
  transitionRun,
  untilTailPast,
  waitUntil,
} from '../support/operations.js';
import { uniqueProject, type TestServer, useServers } from '../support/server.js';
import { subscribeSse } from '../support/sse.js';

// API tokens (issue 5): roles READ < WRITE < ADMIN, tokens limited to projects, the same rules
// on HTTP, SSE and WebSocket, revocation on every instance, and the actor in history. Two
// instances share the database, as in production.

const [a, b] = useServers(2) as [TestServer, TestServer];

interface CreatedToken {
  token: string;
  apiToken: { id: string; name: string; role: string; projects: string[] | null };
}

async function createToken(
  role: 'READ' | 'WRITE' | 'ADMIN',
  projects: string[] | null = null,
  as?: { token: string },
): Promise<CreatedToken> {
  const response = await a.gql<{ createApiToken: CreatedToken }>(
    `mutation($input: CreateApiTokenInput!) {
      createApiToken(input: $input) { token apiToken { id name role projects } }
    }`,
    { input: { name: uniqueProject(`${role.toLowerCase()}-token`), role, projects } },
    as,
  );
  return dataOf(response).createApiToken;
}

async function revoke(id: string) {
  return a.gql<{ revokeApiToken: { id: string; revokedAt: string | null } }>(
    `mutation($id: ID!) { revokeApiToken(id: $id) { id revokedAt } }`,
    { id },
  );
}

const codeOf = (response: { errors?: { extensions?: Record<string, unknown> }[] }) =>
  response.errors?.[0]?.extensions?.['code'];

async function runsOf(project: string): Promise<{ id: string; version: number }[]> {
  const response = await a.gql<{ runs: { edges: { node: { id: string; version: number } }[] } }>(
    `query($p: String!) { runs(filter: { project: $p }) { edges { node { id version } } } }`,
    { p: project },
  );
  return dataOf(response).runs.edges.map((e) => e.node);
}

describe('tokens', () => {
  it('createApiToken shows the secret once; only its SHA-256 is stored', async () => {
    const created = await createToken('READ');
    expect(created.token).toMatch(/^rst_[A-Za-z0-9_-]{43}$/);
    expect(created.apiToken).toMatchObject({ role: 'READ', projects: null });

    const listed = await a.gql<{ apiTokens: { id: string; createdBy: string | null }[] }>(
      `{ apiTokens { id createdBy } }`,
    );
    const row = dataOf(listed).apiTokens.find((t) => t.id === created.apiToken.id);
    expect(row?.createdBy).toBe('admin (RUNSTATE_ADMIN_TOKEN)');

    const stored = await queryRows<Record<string, unknown>>(
      a.database.db,
      sql`SELECT * FROM api_tokens WHERE id = ${created.apiToken.id}`,
    );
    expect(stored).toHaveLength(1);
    expect(stored[0]!['secret_hash']).toBe(
      createHash('sha256').update(created.token).digest('hex'),
    );
    expect(JSON.stringify(stored)).not.toContain(created.token);
  });

  it('no token, an unknown one, another scheme: 401 UNAUTHENTICATED and nothing runs', async () => {
    const project = uniqueProject('anon');
    const mutation = `mutation($p: String!) { createRun(input: { project: $p }) { id } }`;
    for (const token of [null, 'rst_not-a-real-token-000000000000000000000000']) {
      const response = await a.gql(mutation, { p: project }, { token });
      expect(response.status).toBe(401);
      expect(codeOf(response)).toBe('UNAUTHENTICATED');
    }
    const basic = await fetch(a.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Basic YWRtaW46YWRtaW4=' },
      body: JSON.stringify({ query: mutation, variables: { p: project } }),
    });
    expect(basic.status).toBe(401);
    expect(basic.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await runsOf(project)).toEqual([]);
  });

  it('names are unique among live tokens; a revoked name may be used again', async () => {
    const first = await createToken('READ');
    const input = { name: first.apiToken.name, role: 'READ' };
    const create = `mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { token } }`;
    const clash = await a.gql(create, { input });
    expect(codeOf(clash)).toBe('BAD_USER_INPUT');
    expect(clash.errors?.[0]?.extensions?.['field']).toBe('input.name');
    dataOf(await revoke(first.apiToken.id));
    expect(dataOf(await a.gql<{ createApiToken: unknown }>(create, { input }))).toBeTruthy();
  });
});

describe('roles', () => {
  it('READ queries and subscribes, but every mutation is FORBIDDEN and writes nothing', async () => {
    const reader = await createToken('READ');
    const project = uniqueProject('read');
    const run = await createRun(a, { project });
    const as = { token: reader.token };

    const viewer = await a.gql<{ viewer: unknown }>(`{ viewer { name role projects } }`, {}, as);
    expect(dataOf(viewer).viewer).toEqual({
      name: reader.apiToken.name,
      role: 'READ',
      projects: null,
    });
    const read = await a.gql<{ run: { id: string } }>(
      `query($id: ID!) { run(id: $id) { id } }`,
      { id: run.id },
      as,
    );
    expect(dataOf(read).run.id).toBe(run.id);

    // b's tail past the creation first: a late creation event would be an update of its own.
    await untilTailPast(b, await latestCursorOf(a, run.id));
    const live = record<{ runUpdated: { progress: number } }>(
      b.wsClient(as),
      `subscription($id: ID!) { runUpdated(id: $id) { progress } }`,
      { id: run.id },
    );
    await waitUntil('the subscription to be registered', () =>
      b.app.services.events.hasSubscribers('runUpdated', run.id),
    );

    const attempts = [
      [`mutation($p: String!) { createRun(input: { project: $p }) { id } }`, { p: project }],
      [
        `mutation($id: ID!) { transitionRun(input: { id: $id, to: QUEUED }) { __typename } }`,
        { id: run.id },
      ],
      [
        `mutation($id: ID!) { reportProgress(input: { id: $id, progress: 0.5 }) { id } }`,
        { id: run.id },
      ],
      [`mutation($id: ID!) { heartbeat(id: $id) { id } }`, { id: run.id }],
      [`mutation($id: ID!) { stopRun(id: $id) { __typename } }`, { id: run.id }],
      [
        `mutation($id: ID!) {
          recordMeasurements(input: { runId: $id, measurements: [{ name: "x", value: 1 }] })
        }`,
        { id: run.id },
      ],
    ] as const;
    for (const [query, variables] of attempts) {
      const response = await a.gql(query, variables, as);
      expect(codeOf(response), query).toBe('FORBIDDEN');
      expect(response.errors?.[0]?.extensions?.['requiredRole']).toBe('WRITE');
    }

    // Nothing was written, and the writer's change does reach the reader.
    expect(await runsOf(project)).toEqual([{ id: run.id, version: 1 }]);
    dataOf(
      await a.gql(
        `mutation($id: ID!) { reportProgress(input: { id: $id, progress: 0.25 }) { id } }`,
        {
          id: run.id,
        },
      ),
    );
    expect(await live.waitFor(1)).toEqual([{ runUpdated: { progress: 0.25 } }]);
    live.dispose();
  });

  it('WRITE changes runs but may neither force nor manage tokens', async () => {
    const writer = await createToken('WRITE');
    const as = { token: writer.token };
    const run = await createRun(a, { project: uniqueProject('write') });
    const moved = await a.gql<{ transitionRun: { __typename: string } }>(
      `mutation($id: ID!) { transitionRun(input: { id: $id, to: QUEUED }) { __typename } }`,
      { id: run.id },
      as,
    );
    expect(dataOf(moved).transitionRun.__typename).toBe('TransitionAccepted');

    const forced = await a.gql(
      `mutation($id: ID!) {
        transitionRun(input: { id: $id, to: SUCCEEDED, force: true, reason: "fix" }) { __typename }
      }`,
      { id: run.id },
      as,
    );
    expect(codeOf(forced)).toBe('FORBIDDEN');
    expect(forced.errors?.[0]?.extensions?.['requiredRole']).toBe('ADMIN');
    const batchForced = await a.gql(
      `mutation($id: ID!) {
        transitionRuns(inputs: [{ id: $id, to: SCHEDULED }, { id: $id, to: SUCCEEDED, force: true, reason: "x" }]) { __typename }
      }`,
      { id: run.id },
      as,
    );
    expect(codeOf(batchForced)).toBe('FORBIDDEN');
    expect((await getHistory(a, run.id)).map((c) => c.to)).toEqual(['CREATED', 'QUEUED']);

    for (const query of [
      `{ apiTokens { id } }`,
      `mutation { createApiToken(input: { name: "nope", role: ADMIN }) { token } }`,
      `mutation { revokeApiToken(id: "${writer.apiToken.id}") { id } }`,
    ]) {
      expect(codeOf(await a.gql(query, {}, as)), query).toBe('FORBIDDEN');
    }
  });

  it('history records the acting token as actor; ADMIN may force', async () => {
    const writer = await createToken('WRITE');
    const project = uniqueProject('actor');
    const created = await a.gql<{ createRun: { id: string } }>(
      `mutation($p: String!) { createRun(input: { project: $p }) { id } }`,
      { p: project },
      { token: writer.token },
    );
    const id = dataOf(created).createRun.id;
    await a.gql(
      `mutation($id: ID!) { transitionRun(input: { id: $id, to: RUNNING }) { __typename } }`,
      { id },
      { token: writer.token },
    );
    const forced = await transitionRun(a, { id, to: 'CREATED', force: true, reason: 'undo' });
    expect(forced.__typename).toBe('TransitionAccepted');

    const history = await a.gql<{
      run: { statusHistory: { edges: { node: { to: string; actor: string; forced: boolean } }[] } };
    }>(
      `query($id: ID!) { run(id: $id) { statusHistory { edges { node { to actor forced } } } } }`,
      { id },
    );
    expect(dataOf(history).run.statusHistory.edges.map((e) => e.node)).toEqual([
      { to: 'CREATED', actor: writer.apiToken.name, forced: false },
      { to: 'RUNNING', actor: writer.apiToken.name, forced: false },
      { to: 'CREATED', actor: 'admin (RUNSTATE_ADMIN_TOKEN)', forced: true },
    ]);
  });
});

describe('a token limited to projects', () => {
  let mine: string;
  let theirs: string;
  let scoped: CreatedToken;
  let myRun: string;
  let theirRun: string;
  beforeAll(async () => {
    mine = uniqueProject('mine');
    theirs = uniqueProject('theirs');
    scoped = await createToken('WRITE', [mine]);
    myRun = (await createRun(a, { project: mine })).id;
    theirRun = (await createRun(a, { project: theirs })).id;
  });
  const as = () => ({ token: scoped.token });

  it('sees only its projects in every query', async () => {
    const run = await a.gql<{ run: unknown }>(
      `query($id: ID!) { run(id: $id) { id } }`,
      { id: theirRun },
      as(),
    );
    expect(dataOf(run).run).toBeNull();

    const runs = await a.gql<{ runs: { edges: { node: { project: string } }[] } }>(
      `{ runs(first: 500) { edges { node { project } } } }`,
      {},
      as(),
    );
    const projects = new Set(dataOf(runs).runs.edges.map((e) => e.node.project));
    expect([...projects]).toEqual([mine]);
    const asked = await a.gql<{ runs: { edges: unknown[] } }>(
      `query($p: String!) { runs(filter: { project: $p }) { edges { node { id } } } }`,
      { p: theirs },
      as(),
    );
    expect(dataOf(asked).runs.edges).toEqual([]);

    const log = await a.gql<{ statusChanges: { edges: { node: { runId: string } }[] } }>(
      `{ statusChanges(first: 500) { edges { node { runId } } } }`,
      {},
      as(),
    );
    expect(dataOf(log).statusChanges.edges.map((e) => e.node.runId)).toEqual([myRun]);
    const logAsked = await a.gql<{ statusChanges: { edges: unknown[] } }>(
      `query($p: String!) { statusChanges(filter: { projects: [$p] }) { edges { cursor } } }`,
      { p: theirs },
      as(),
    );
    expect(dataOf(logAsked).statusChanges.edges).toEqual([]);
  });

  it('answers changes to other projects as not found and writes nothing there', async () => {
    const transition = await a.gql<{ transitionRun: { __typename: string } }>(
      `mutation($id: ID!) { transitionRun(input: { id: $id, to: QUEUED }) { __typename } }`,
      { id: theirRun },
      as(),
    );
    expect(dataOf(transition).transitionRun.__typename).toBe('RunNotFound');
    const batch = await a.gql<{ transitionRuns: { __typename: string }[] }>(
      `mutation($mine: ID!, $theirs: ID!) {
        transitionRuns(inputs: [{ id: $mine, to: QUEUED }, { id: $theirs, to: QUEUED }]) { ${RESULT_FIELDS} }
      }`,
      { mine: myRun, theirs: theirRun },
      as(),
    );
    expect(dataOf(batch).transitionRuns.map((r) => r.__typename)).toEqual([
      'TransitionAccepted',
      'RunNotFound',
    ]);
    for (const [query, variables, expected] of [
      [`mutation($id: ID!) { stopRun(id: $id) { __typename } }`, { id: theirRun }, 'RunNotFound'],
      [`mutation($id: ID!) { retryRun(id: $id) { __typename } }`, { id: theirRun }, 'RunNotFound'],
      [`mutation($id: ID!) { resumeRun(id: $id) { __typename } }`, { id: theirRun }, 'RunNotFound'],
    ] as const) {
      const response = await a.gql<Record<string, { __typename: string }>>(query, variables, as());
      expect(Object.values(dataOf(response))[0]!.__typename, query).toBe(expected);
    }
    for (const [query, variables] of [
      [
        `mutation($id: ID!) { reportProgress(input: { id: $id, progress: 0.5 }) { id } }`,
        { id: theirRun },
      ],
      [
        `mutation($id: ID!) { reportProgress(input: { id: $id, progress: 0.5, attempt: 1 }) { id } }`,
        { id: theirRun },
      ],
      [`mutation($id: ID!) { heartbeat(id: $id, attempt: 1) { id } }`, { id: theirRun }],
      [
        `mutation($id: ID!) { recordMeasurements(input: { runId: $id, measurements: [{ name: "x", value: 1 }] }) }`,
        { id: theirRun },
      ],
      [`mutation($p: String!) { createRun(input: { project: $p }) { id } }`, { p: theirs }],
    ] as const) {
      const response = await a.gql(query, variables, as());
      expect(codeOf(response), query).toBe('NOT_FOUND');
    }
    const dependent = await a.gql(
      `mutation($p: String!, $up: ID!) { createRun(input: { project: $p, dependsOn: [$up] }) { id } }`,
      { p: mine, up: theirRun },
      as(),
    );
    expect(codeOf(dependent)).toBe('BAD_USER_INPUT');
    expect(dependent.errors?.[0]?.message).toContain('no such run');

    const untouched = await a.gql<{ run: unknown }>(
      `query($id: ID!) { run(id: $id) { status version progress heartbeatAt latestMeasurements { name } } }`,
      { id: theirRun },
    );
    expect(dataOf(untouched).run).toEqual({
      status: 'CREATED',
      version: 1,
      progress: null,
      heartbeatAt: null,
      latestMeasurements: [],
    });
    expect(await runsOf(theirs)).toHaveLength(1);
  });

  it('never receives other projects’ changes over WebSocket or SSE, even while both are written to', async () => {
    const ws = record<{ statusChanged: { runId: string; to: string } }>(
      b.wsClient(as()),
      `subscription { statusChanged { runId to } }`,
    );
    const sse = await subscribeSse<{ statusChanged: { runId: string; to: string } }>(
      a.url,
      `subscription { statusChanged { runId to } }`,
      {},
      as(),
    );
    const explicit = record<{ statusChanged: { runId: string } }>(
      a.wsClient(as()),
      `subscription($p: String!) { statusChanged(filter: { projects: [$p] }) { runId } }`,
      { p: theirs },
    );
    const theirUpdates = await a.gql(
      `subscription($id: ID!) { runUpdated(id: $id) { id } }`,
      { id: theirRun },
      as(),
    );
    expect(codeOf(theirUpdates)).toBe('NOT_FOUND');
    await waitUntil('the subscriptions to be registered', () =>
      [a, b].every((s) => s.app.services.events.hasSubscribers('statusChanged', '*')),
    );

    const steps = ['SCHEDULED', 'STARTING', 'RUNNING', 'SUCCEEDED'];
    const others = await Promise.all(
      Array.from({ length: 5 }, () => createRun(a, { project: theirs })),
    );
    const ours = (await createRun(a, { project: mine })).id;
    await Promise.all([
      (async () => {
        for (const to of steps) await transitionRun(a, { id: ours, to });
      })(),
      ...others.map(async (run) => {
        for (const to of steps) await transitionRun(b, { id: run.id, to });
      }),
    ]);
    // Changes arrive in log order: once a change made after all of theirs has arrived, any of
    // theirs that leaked would have arrived before it.
    const marker = (await createRun(a, { project: mine })).id;
    const arrived = (values: { statusChanged: { runId: string } }[]) =>
      values.some((v) => v.statusChanged.runId === marker);
    await waitUntil('the marker over WebSocket', () => arrived(ws.values));
    await waitUntil('the marker over SSE', () => arrived(sse.results.map((r) => r.data!)));
    const seen = (values: { statusChanged: { runId: string } }[]) =>
      new Set(values.map((v) => v.statusChanged.runId));
    expect([...seen(ws.values)].sort()).toEqual([ours, marker].sort());
    expect([...seen(sse.results.map((r) => r.data!))].sort()).toEqual([ours, marker].sort());
    expect(ws.values.filter((v) => v.statusChanged.runId === ours)).toHaveLength(5);
    expect(explicit.results).toEqual([]);
    ws.dispose();
    explicit.dispose();
    sse.close();
  });
});

describe('WebSocket connections', () => {
  it('close with 4403 without a valid token', async () => {
    for (const token of [null, 'rst_unknown-token-00000000000000000000000000']) {
      const sub = record(b.wsClient({ token }), `subscription { statusChanged { runId } }`);
      const ended = (await sub.ended) as { error?: { code?: number } };
      expect(ended.error?.code, String(token)).toBe(4403);
    }
  });
});

describe('revoking a token', () => {
  it('refuses it at once on every instance and ends its open subscriptions with TOKEN_REVOKED', async () => {
    const reader = await createToken('READ');
    const as = { token: reader.token };
    // Used once on each instance, so both have it cached.
    for (const server of [a, b]) {
      expect(
        dataOf(await server.gql<{ viewer: unknown }>(`{ viewer { name } }`, {}, as)),
      ).toBeTruthy();
    }
    const ws = record(b.wsClient(as), `subscription { statusChanged { runId } }`);
    const sse = await subscribeSse(a.url, `subscription { statusChanged { runId } }`, {}, as);
    await waitUntil('both subscriptions to be registered', () =>
      [a, b].every((s) => s.app.services.subscriptionQuota.count(reader.apiToken.id) === 1),
    );

    const revoked = dataOf(await revoke(reader.apiToken.id)).revokeApiToken;
    expect(revoked.revokedAt).not.toBeNull();
    expect((await a.gql(`{ viewer { name } }`, {}, as)).status).toBe(401);
    // The other instance hears it through NOTIFY, well within its 5 s cache lifetime.
    let answer = 200;
    for (const deadline = Date.now() + 3_000; answer !== 401 && Date.now() < deadline;) {
      answer = (await b.gql(`{ viewer { name } }`, {}, as)).status;
    }
    expect(answer).toBe(401);

    const wsEnd = (await ws.ended) as { error?: { code?: number }; complete?: boolean };
    const wsCodes = ws.results.flatMap((r) => r.errors?.map((e) => e.extensions?.['code']) ?? []);
    // The subscription ends with TOKEN_REVOKED, then the socket closes with 4403.
    expect(wsCodes).toEqual(['TOKEN_REVOKED']);
    expect(wsEnd.error?.code ?? 'complete').toSatisfy(
      (c: unknown) => c === 4403 || c === 'complete',
    );
    await sse.ended;
    expect(sse.results.flatMap((r) => r.errors?.map((e) => e.extensions?.code) ?? [])).toEqual([
      'TOKEN_REVOKED',
    ]);
    expect(b.app.services.subscriptionQuota.count(reader.apiToken.id)).toBe(0);
    expect(a.app.services.subscriptionQuota.count(reader.apiToken.id)).toBe(0);

    // A new connection with it is refused too.
    const again = record(b.wsClient(as), `subscription { statusChanged { runId } }`);
    expect(((await again.ended) as { error?: { code?: number } }).error?.code).toBe(4403);
  });

  it('a token limited to projects manages only tokens inside them', async () => {
    const p = uniqueProject('adm');
    const scopedAdmin = await createToken('ADMIN', [p]);
    const as = { token: scopedAdmin.token };
    const create = `mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { apiToken { id } } }`;
    const wide = await a.gql(create, { input: { name: uniqueProject('w'), role: 'READ' } }, as);
    expect(codeOf(wide)).toBe('BAD_USER_INPUT');
    expect(wide.errors?.[0]?.extensions?.['field']).toBe('input.projects');
    const other = await a.gql(
      create,
      { input: { name: uniqueProject('o'), role: 'READ', projects: [p, 'elsewhere'] } },
      as,
    );
    expect(codeOf(other)).toBe('BAD_USER_INPUT');
    const inside = await createToken('READ', [p], as);
    expect(inside.apiToken.projects).toEqual([p]);

    const unscoped = await createToken('READ');
    const revokeOther = await a.gql(
      `mutation($id: ID!) { revokeApiToken(id: $id) { id } }`,
      { id: unscoped.apiToken.id },
      as,
    );
    expect(codeOf(revokeOther)).toBe('NOT_FOUND');
    const listed = await a.gql<{ apiTokens: { id: string }[] }>(`{ apiTokens { id } }`, {}, as);
    expect(
      dataOf(listed)
        .apiTokens.map((t) => t.id)
        .sort(),
    ).toEqual([scopedAdmin.apiToken.id, inside.apiToken.id].sort());
  });
});

describe('subscribers of one shape with different scopes', () => {
  it('each get what their token may see, though the event is executed once per shape', async () => {
    const mine = uniqueProject('shape-mine');
    const theirs = uniqueProject('shape-theirs');
    const scoped = await createToken('READ', [mine]);
    const upstream = await createRun(a, { project: theirs });
    const created = await a.gql<{ createRun: { id: string } }>(
      `mutation($p: String!, $up: ID!) { createRun(input: { project: $p, dependsOn: [$up] }) { id } }`,
      { p: mine, up: upstream.id },
    );
    const downstream = dataOf(created).createRun.id;
    // From just after the creation: the first event each gets is the change below, whenever
    // its subscription registers (without `after`, the creation itself may come first).
    const history = await a.gql<{
      run: { statusHistory: { edges: { node: { cursor: string } }[] } };
    }>(`query($id: ID!) { run(id: $id) { statusHistory { edges { node { cursor } } } } }`, {
      id: downstream,
    });
    const after = dataOf(history).run.statusHistory.edges[0]!.node.cursor;
    const query = `subscription($id: ID!, $after: String) {
      statusChanged(filter: { runIds: [$id] }, after: $after) { to run { upstreams { id } } }
    }`;
    const variables = { id: downstream, after };
    const open = b.app.services.events.size();
    type Event = { statusChanged: { to: string; run: { upstreams: { id: string }[] } } };
    const admins = [
      record<Event>(b.wsClient(), query, variables),
      record<Event>(b.wsClient(), query, variables),
    ];
    const limited = record<Event>(b.wsClient({ token: scoped.token }), query, variables);
    // Live, so that all three receive the same event object (a replay reads each its own).
    await waitUntil('the three subscriptions', () => b.app.services.events.size() >= open + 3);
    await transitionRun(a, { id: downstream, to: 'STOPPED', message: 'not needed' });
    for (const admin of admins) {
      expect(await admin.waitFor(1)).toEqual([
        { statusChanged: { to: 'STOPPED', run: { upstreams: [{ id: upstream.id }] } } },
      ]);
    }
    expect(await limited.waitFor(1)).toEqual([
      { statusChanged: { to: 'STOPPED', run: { upstreams: [] } } },
    ]);
    for (const sub of [...admins, limited]) sub.dispose();
  });
});
