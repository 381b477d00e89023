/**
 * Property-based tests of transitionRun against a model of the lifecycle, over real HTTP and
 * PostgreSQL. Each property run creates one fresh run and sends it random requests: targets
 * drawn from all 21 statuses (many of them illegal) or, a third of the time, from the statuses
 * legal after the one the client last saw (for longer paths), sometimes an expectedStatus and/or
 * expectedVersion (now and then the right one, mostly random), sometimes an idempotencyKey from
 * a pool of three, so replays happen. Every request carries a unique `reason`, which tells which
 * request wrote which history row.
 *
 * Asserted, with 2–5 concurrent clients:
 * - the history is one legal path: CREATED at version 1, versions 1..n, each row starting where
 *   the one before ended, each move in lifecycle.json; the run ends where its history ends;
 * - every answer agrees with that history: an accepted change is exactly one row (replays of a
 *   key answer the first answer again), every row is one request's accepted change, refusals
 *   are really illegal or really stale, and nothing was an HTTP or GraphQL error.
 * Asserted, with one client: every answer and the whole history equal a sequential model
 * (replayed key → first answer; expectation mismatch → conflict; same status → no-op;
 * allowed → accepted; else illegal).
 *
 * Runs are created without maxRetries and without upstreams, so an accepted change writes
 * exactly one history row (see planChanges in src/runs/transition-rules.ts). A failure prints
 * fast-check's seed and path; FC_SEED=<seed> FC_PATH=<path> replays that case.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createRun,
  dataOf,
  RESULT_FIELDS,
  type TransitionResultData,
} from '../support/operations.js';
import { useServer, uniqueProject } from '../support/server.js';

const LIFECYCLE = JSON.parse(
  readFileSync(new URL('../fixtures/lifecycle.json', import.meta.url), 'utf8'),
) as { statuses: { status: string; allowedNext: string[] }[] };

const STATUSES = LIFECYCLE.statuses.map((s) => s.status);
const ALLOWED_NEXT = new Map(LIFECYCLE.statuses.map((s) => [s.status, s.allowedNext]));

function allowedNext(from: string): string[] {
  const allowed = ALLOWED_NEXT.get(from);
  if (!allowed) throw new Error(`no status ${from} in lifecycle.json`);
  return allowed;
}

const isAllowed = (from: string, to: string) => allowedNext(from).includes(to);

/**
 * A SUSPENDED run sent a status RESUMING leads to is resumed first: accepted as two rows,
 * SUSPENDED -> RESUMING (reason RESUME) then RESUMING -> the status (lifecycle.ts impliedSteps).
 */
const isImpliedResume = (from: string, to: string) =>
  from === 'SUSPENDED' && !isAllowed(from, to) && isAllowed('RESUMING', to);

/** A row the service wrote before a request's own: the RESUMING of a SUSPENDED run. */
const isImpliedResumeRow = (row: HistoryRow) =>
  row.from === 'SUSPENDED' && row.to === 'RESUMING' && row.reason === 'RESUME';

/** Replays a reported failure: FC_SEED=<seed> FC_PATH=<path> npx vitest run <this file>. */
const REPLAY = process.env.FC_SEED
  ? {
      seed: Number(process.env.FC_SEED),
      ...(process.env.FC_PATH ? { path: process.env.FC_PATH } : {}),
    }
  : {};

const TRANSITION = `mutation($input: TransitionRunInput!) { transitionRun(input: $input) { ${RESULT_FIELDS} } }`;
const RUN_WITH_HISTORY = `query($id: ID!) { run(id: $id) { status version
  statusHistory(first: 500) { edges { node { from to version reason actor forced } } } } }`;

/** An expectation a request may carry: none, the client's last known value, or any value. */
type Expectation<T> = { kind: 'none' } | { kind: 'known' } | { kind: 'fixed'; value: T };

/** A target: any of the 21 statuses, or one legal from the status the client knows of. */
type Target = { kind: 'any'; status: string } | { kind: 'legalNext'; pick: number };

interface Step {
  to: Target;
  expectedStatus: Expectation<string>;
  expectedVersion: Expectation<number>;
  key: string | null;
}

/** One request as sent. */
interface Request {
  reason: string;
  to: string;
  expectedStatus: string | null;
  expectedVersion: number | null;
  key: string | null;
}

interface Sent extends Request {
  client: number;
  answer: TransitionResultData;
}

interface HistoryRow {
  from: string | null;
  to: string;
  version: number;
  reason: string | null;
  actor: string | null;
  forced: boolean;
}

interface RunState {
  status: string;
  version: number;
  history: HistoryRow[];
}

const statusArb = fc.constantFrom(...STATUSES);

function expectationArb<T>(value: fc.Arbitrary<T>): fc.Arbitrary<Expectation<T>> {
  return fc.oneof(
    { weight: 8, arbitrary: fc.constant({ kind: 'none' } as const) },
    { weight: 1, arbitrary: fc.constant({ kind: 'known' } as const) },
    { weight: 2, arbitrary: value.map((v) => ({ kind: 'fixed', value: v }) as const) },
  );
}

const stepArb: fc.Arbitrary<Step> = fc.record({
  to: fc.oneof(
    { weight: 2, arbitrary: statusArb.map((status) => ({ kind: 'any', status }) as const) },
    { weight: 1, arbitrary: fc.nat().map((pick) => ({ kind: 'legalNext', pick }) as const) },
  ),
  expectedStatus: expectationArb(statusArb),
  expectedVersion: expectationArb(fc.integer({ min: 1, max: 10 })),
  key: fc.oneof(
    { weight: 3, arbitrary: fc.constant(null) },
    { weight: 1, arbitrary: fc.constantFrom('k1', 'k2', 'k3') },
  ),
});

function resolve<T>(expectation: Expectation<T>, known: T): T | null {
  if (expectation.kind === 'none') return null;
  return expectation.kind === 'known' ? known : expectation.value;
}

function targetOf(target: Target, known: string): string {
  if (target.kind === 'any') return target.status;
  const allowed = allowedNext(known);
  return allowed.length > 0
    ? allowed[target.pick % allowed.length]!
    : STATUSES[target.pick % STATUSES.length]!;
}

function requestFor(step: Step, reason: string, known: { status: string; version: number }) {
  return {
    reason,
    to: targetOf(step.to, known.status),
    expectedStatus: resolve(step.expectedStatus, known.status),
    expectedVersion: resolve(step.expectedVersion, known.version),
    key: step.key,
  } satisfies Request;
}

/** A move the service makes on its own: another test file's reaper ending a long STOPPING. */
function isReaperStop(row: HistoryRow): boolean {
  return row.actor == null && row.reason === 'STOP_TIMEOUT' && row.from === 'STOPPING';
}

/** An answer without its message (wording) and, for replays, without the run (read fresh). */
function project(answer: TransitionResultData, withRun: boolean): Record<string, unknown> {
  switch (answer.__typename) {
    case 'TransitionAccepted': {
      const { change, run } = answer;
      return {
        __typename: answer.__typename,
        change: change
          ? { from: change.from, to: change.to, version: change.version, reason: change['reason'] }
          : null,
        ...(withRun ? { run: { status: run!.status, version: run!.version } } : {}),
      };
    }
    case 'IllegalTransition':
      return {
        __typename: answer.__typename,
        from: answer['from'],
        to: answer['to'],
        allowed: answer['allowed'],
      };
    case 'TransitionConflict':
      return {
        __typename: answer.__typename,
        expectedStatus: answer['expectedStatus'],
        expectedVersion: answer['expectedVersion'],
        actualStatus: answer['actualStatus'],
        actualVersion: answer['actualVersion'],
      };
    default:
      return { __typename: answer.__typename, runId: answer['runId'] };
  }
}

/** The lifecycle for one client alone: what each request answers and what it writes. */
class SequentialModel {
  status = 'CREATED';
  version = 1;
  readonly changes: { from: string; to: string; version: number; reason: string }[] = [];
  private readonly keys = new Map<string, Record<string, unknown>>();

  apply(request: Request): Record<string, unknown> {
    const { key, to, expectedStatus, expectedVersion } = request;
    const first = key == null ? undefined : this.keys.get(key);
    if (first) return first;
    let answer: Record<string, unknown>;
    if (
      (expectedStatus != null && expectedStatus !== this.status) ||
      (expectedVersion != null && expectedVersion !== this.version)
    ) {
      answer = {
        __typename: 'TransitionConflict',
        expectedStatus,
        expectedVersion,
        actualStatus: this.status,
        actualVersion: this.version,
      };
    } else if (to === this.status) {
      answer = { __typename: 'TransitionAccepted', change: null };
    } else if (isImpliedResume(this.status, to)) {
      this.changes.push({
        from: this.status,
        to: 'RESUMING',
        version: this.version + 1,
        reason: 'RESUME',
      });
      const change = { from: 'RESUMING', to, version: this.version + 2, reason: request.reason };
      this.changes.push(change);
      this.status = to;
      this.version = change.version;
      answer = { __typename: 'TransitionAccepted', change };
    } else if (isAllowed(this.status, to)) {
      const change = { from: this.status, to, version: this.version + 1, reason: request.reason };
      this.changes.push(change);
      this.status = to;
      this.version = change.version;
      answer = { __typename: 'TransitionAccepted', change };
    } else {
      answer = {
        __typename: 'IllegalTransition',
        from: this.status,
        to,
        allowed: allowedNext(this.status),
      };
    }
    if (key != null) this.keys.set(key, answer);
    // The first answer shows the run right after it; a replay's run is not part of the model.
    return answer['__typename'] === 'TransitionAccepted'
      ? { ...answer, run: { status: this.status, version: this.version } }
      : answer;
  }

  isReplay(request: Request): boolean {
    return request.key != null && this.keys.has(request.key);
  }
}

const server = useServer();

async function send(runId: string, request: Request): Promise<TransitionResultData> {
  const response = await server.gql<{ transitionRun: TransitionResultData }>(TRANSITION, {
    input: {
      id: runId,
      to: request.to,
      reason: request.reason,
      expectedStatus: request.expectedStatus,
      expectedVersion: request.expectedVersion,
      idempotencyKey: request.key,
    },
  });
  expect(response.status, `HTTP status of ${JSON.stringify(response)}`).toBe(200);
  return dataOf(response).transitionRun;
}

async function readRun(id: string): Promise<RunState> {
  const response = await server.gql<{
    run: { status: string; version: number; statusHistory: { edges: { node: HistoryRow }[] } };
  }>(RUN_WITH_HISTORY, { id });
  const { status, version, statusHistory } = dataOf(response).run;
  return { status, version, history: statusHistory.edges.map((e) => e.node) };
}

/** What a client believes the run is, from the answers it got (for `known` expectations). */
function observe(
  known: { status: string; version: number },
  answer: TransitionResultData,
): { status: string; version: number } {
  if (answer.__typename === 'TransitionAccepted') {
    return { status: answer.run!.status, version: answer.run!.version };
  }
  if (answer.__typename === 'TransitionConflict') {
    return { status: answer['actualStatus'] as string, version: answer['actualVersion'] as number };
  }
  if (answer.__typename === 'IllegalTransition') {
    return { ...known, status: answer['from'] as string };
  }
  return known;
}

function expectLegalPath(run: RunState) {
  const { history } = run;
  expect(history[0]).toMatchObject({ from: null, to: 'CREATED', version: 1, forced: false });
  history.forEach((row, i) => {
    expect(row.version, `row ${i}: ${JSON.stringify(row)}`).toBe(i + 1);
    if (i === 0) return;
    const previous = history[i - 1]!;
    expect(row.from, `v${row.version} starts where v${previous.version} ended`).toBe(previous.to);
    expect(isAllowed(row.from!, row.to), `v${row.version}: ${row.from} -> ${row.to}`).toBe(true);
    expect(row.forced).toBe(false);
  });
  expect(run.status).toBe(history.at(-1)!.to);
  expect(run.version).toBe(history.length);
}

/** Every answer agrees with the history, and every history row is one request's change. */
function expectAnswersMatchHistory(run: RunState, sent: Sent[]) {
  const { history } = run;
  const byReason = new Map(sent.map((s) => [s.reason, s]));
  const states = new Set(history.map((row) => `${row.to}@${row.version}`));
  const sameKey = (s: Sent) => (s.key == null ? [s] : sent.filter((r) => r.key === s.key));

  // Each row after the creation was written by exactly one of our requests, which was told so.
  let written = 0;
  for (const row of history.slice(1)) {
    if (isReaperStop(row)) continue;
    if (isImpliedResumeRow(row)) {
      // Written with the request that wrote the next row.
      const next = history[row.version];
      expect(next?.from, `v${row.version} is followed by the resumed status`).toBe('RESUMING');
      expect(byReason.has(next?.reason ?? ''), `v${row.version + 1} is one of ours`).toBe(true);
      continue;
    }
    const author = byReason.get(row.reason ?? '');
    expect(
      author,
      `v${row.version} was written by none of ours: ${JSON.stringify(row)}`,
    ).toBeDefined();
    expect(row.actor).toBe(history[0]!.actor);
    expect(author!.answer, `the answer to ${author!.reason}`).toMatchObject({
      __typename: 'TransitionAccepted',
      change: { from: row.from, to: row.to, version: row.version, reason: row.reason },
    });
    written++;
  }

  const changeVersions = new Map<number, Sent[]>();
  for (const s of sent) {
    const a = s.answer;
    const where = `${JSON.stringify(s)} against ${JSON.stringify(history)}`;
    expect(['TransitionAccepted', 'IllegalTransition', 'TransitionConflict'], where).toContain(
      a.__typename,
    );
    if (a.__typename === 'TransitionAccepted') {
      // The run as the answer shows it was a state of the history.
      expect(states.has(`${a.run!.status}@${a.run!.version}`), where).toBe(true);
      if (a.change) {
        const row = history[a.change.version - 1];
        expect(row, where).toMatchObject({
          from: a.change.from,
          to: a.change.to,
          version: a.change.version,
          reason: a.change['reason'],
        });
        // A change written for another request is a replay of the same key.
        const author = byReason.get(row!.reason!)!;
        if (author !== s) expect(s.key != null && author.key === s.key, where).toBe(true);
        changeVersions.set(a.change.version, [...(changeVersions.get(a.change.version) ?? []), s]);
      } else if (s.key == null) {
        expect(a.run!.status, where).toBe(s.to);
      }
    } else if (a.__typename === 'IllegalTransition') {
      const from = a['from'] as string;
      const to = a['to'] as string;
      expect(from === to || isAllowed(from, to) || isImpliedResume(from, to), where).toBe(false);
      expect(a['allowed'], where).toEqual(allowedNext(from));
      expect(
        history.some((row) => row.to === from),
        where,
      ).toBe(true);
      expect(
        sameKey(s).some((r) => r.to === to),
        where,
      ).toBe(true);
    } else {
      const actualStatus = a['actualStatus'] as string;
      const actualVersion = a['actualVersion'] as number;
      const expectedStatus = a['expectedStatus'] as string | null;
      const expectedVersion = a['expectedVersion'] as number | null;
      expect(states.has(`${actualStatus}@${actualVersion}`), where).toBe(true);
      expect(
        (expectedStatus != null && expectedStatus !== actualStatus) ||
          (expectedVersion != null && expectedVersion !== actualVersion),
        where,
      ).toBe(true);
      expect(
        sameKey(s).some(
          (r) => r.expectedStatus === expectedStatus && r.expectedVersion === expectedVersion,
        ),
        where,
      ).toBe(true);
    }
  }

  // Distinct accepted answers share a version only as replays of one key.
  for (const [version, answers] of changeVersions) {
    if (answers.length === 1) continue;
    const keys = new Set(answers.map((s) => s.key));
    expect(keys.size === 1 && !keys.has(null), `v${version} answered to ${answers.length}`).toBe(
      true,
    );
  }
  expect(changeVersions.size, 'accepted changes').toBe(written);

  // Every request with one key got the same answer (the run aside, which is read fresh).
  for (const key of new Set(sent.flatMap((s) => (s.key == null ? [] : [s.key])))) {
    const answers = sent.filter((s) => s.key === key).map((s) => project(s.answer, false));
    for (const answer of answers) expect(answer, `answers to key ${key}`).toEqual(answers[0]);
  }

  // A client waits for each answer: the versions it sees never go back.
  const clients = new Set(sent.map((s) => s.client));
  for (const client of clients) {
    const seen = sent
      .filter((s) => s.client === client && s.key == null)
      .flatMap((s) =>
        s.answer.__typename === 'TransitionAccepted'
          ? [s.answer.run!.version]
          : s.answer.__typename === 'TransitionConflict'
            ? [s.answer['actualVersion'] as number]
            : [],
      );
    expect(seen, `versions seen by client ${client}`).toEqual([...seen].sort((x, y) => x - y));
  }
}

describe('transitionRun against a model of the lifecycle', () => {
  it('concurrent clients leave one legal path that every answer agrees with', async () => {
    const clientsArb = fc.array(fc.array(stepArb, { minLength: 1, maxLength: 12 }), {
      minLength: 2,
      maxLength: 5,
    });
    await fc.assert(
      fc.asyncProperty(clientsArb, async (clients) => {
        const run = await createRun(server, { project: uniqueProject('model') });
        const sent: Sent[] = [];
        await Promise.all(
          clients.map(async (steps, client) => {
            let known = { status: run.status, version: run.version };
            for (const [i, step] of steps.entries()) {
              const request = requestFor(step, `c${client}.${i}`, known);
              const answer = await send(run.id, request);
              sent.push({ ...request, client, answer });
              known = observe(known, answer);
            }
          }),
        );
        const final = await readRun(run.id);
        expectLegalPath(final);
        expectAnswersMatchHistory(final, sent);
      }),
      { numRuns: 30, ...REPLAY },
    );
  }, 120_000);

  it('one client gets exactly the answers and history of the sequential model', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 20 }), async (steps) => {
        const run = await createRun(server, { project: uniqueProject('model') });
        const model = new SequentialModel();
        const answers: Record<string, unknown>[] = [];
        const predicted: Record<string, unknown>[] = [];
        for (const [i, step] of steps.entries()) {
          // `known` expectations are the right ones here: the client is alone.
          const request = requestFor(step, `s${i}`, model);
          const replay = model.isReplay(request);
          predicted.push(model.apply(request));
          answers.push(project(await send(run.id, request), !replay));
        }
        const final = await readRun(run.id);
        // Another test file's reaper (stop timeout 1 s) may have ended a long STOPPING.
        fc.pre(!final.history.some(isReaperStop));
        expect(answers).toEqual(predicted);
        expect(final.history[0]).toMatchObject({ from: null, to: 'CREATED', version: 1 });
        expect(
          final.history.slice(1).map(({ from, to, version, reason }) => ({
            from,
            to,
            version,
            reason,
          })),
        ).toEqual(model.changes);
        expect({ status: final.status, version: final.version }).toEqual({
          status: model.status,
          version: model.version,
        });
      }),
      { numRuns: 40, ...REPLAY },
    );
  }, 120_000);
});
