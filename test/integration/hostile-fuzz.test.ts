import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { isDeepStrictEqual } from 'node:util';
import { sql } from 'drizzle-orm';
import fc from 'fast-check';
import { parse } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { queryRows } from '../../src/db/client.js';
import { DEFAULT_LIMITS } from '../../src/limits/limits.js';
import { record, sleep, type Recorder } from '../support/operations.js';
import {
  authHeader,
  startServer,
  TEST_ADMIN_TOKEN,
  uniqueProject,
  type TestServer,
} from '../support/server.js';

/*
 * A generated corpus of hostile requests (fast-check), sent to one running server over HTTP
 * and over WebSocket at the same time, mixed with valid requests. Asserted afterwards:
 *
 * - no HTTP answer is a 5xx;
 * - every refused request carries GraphQL errors that all have an `extensions.code`, and the
 *   code (status, field, limit) its kind of refusal calls for; HTTP-level refusals answer
 *   exactly what the body limit / yoga answer (413, 411, 405, 406, 415, 400 invalid JSON);
 * - a malformed WebSocket message closes that socket only, with graphql-ws's 44xx code (never
 *   1011 or 4500); refused operations get coded errors and leave their socket open;
 * - no answer (HTTP body, WebSocket frame or close reason) leaks SQL, stack traces or paths;
 * - SQL-looking strings are plain data: valid requests store them verbatim, and they read
 *   back and filter exactly (queries and subscriptions);
 * - the database holds exactly what the valid requests' answers said they wrote (runs,
 *   history, measurements, tokens of this test's unique prefixes), nothing from the rest;
 * - afterwards the server answers, and a subscription opened before it all still delivers.
 */

// ---------------------------------------------------------------------------------------------
// Corpus generation

/**
 * fast-check is a corpus generator here, not a shrinking property runner: every draw has a
 * fixed seed, so the corpus (and whatever it finds) is the same on every run.
 */
const SEED = 0x5eed_f022;
let draws = 0;
function draw<T>(arbitrary: fc.Arbitrary<T>, count: number): T[] {
  draws += 1;
  const values = fc.sample(arbitrary, { seed: SEED + draws, numRuns: count });
  if (arbitrary === (sqlText as unknown)) for (const v of values) generated.add(v as string);
  return values;
}

type Vars = Record<string, unknown>;
type Path = (string | number)[];

/** A value sent as a raw JSON token (`1e400` parses to Infinity, `-0` to -0), not a string. */
const raw = (token: string) => `\u0000raw:${token}\u0000`;
const rawTokenOf = (value: unknown) =>
  typeof value === 'string' && value.startsWith('\u0000raw:') ? value.slice(5, -1) : null;
const toJson = (value: unknown) =>
  JSON.stringify(value).replace(/"\\u0000raw:([^"\\]*)\\u0000"/g, '$1');

/** An enum value: a string in variables, a bare name in a GraphQL literal. */
class EnumValue {
  constructor(readonly name: string) {}
  toJSON() {
    return this.name;
  }
}
const enumValue = (name: string) => new EnumValue(name);

/** A value as a GraphQL literal. */
function literal(value: unknown): string {
  const token = rawTokenOf(value);
  if (token !== null) return token;
  if (value instanceof EnumValue) return value.name;
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'number') return Object.is(value, -0) ? '-0' : String(value);
  if (typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(literal).join(', ')}]`;
  const fields = Object.entries(value).filter(([, v]) => v !== undefined);
  return `{ ${fields.map(([k, v]) => `${k}: ${literal(v)}`).join(', ')} }`;
}

const pathString = (path: Path) =>
  path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');

function setAt(target: Vars, path: Path, value: unknown): Vars {
  let node = target as Record<string | number, unknown>;
  path.forEach((key, i) => {
    if (i === path.length - 1) {
      node[key] = value;
      return;
    }
    const next = node[key];
    if (next === null || typeof next !== 'object') {
      node[key] = typeof path[i + 1] === 'number' ? [] : {};
    }
    node = node[key] as Record<string | number, unknown>;
  });
  return target;
}

/** Every string a request carries (variables and literals), which an answer may echo. */
function stringsOf(value: unknown, into: string[] = []): string[] {
  if (typeof value === 'string') {
    if (rawTokenOf(value) === null && value.length >= 3) into.push(value);
  } else if (value instanceof EnumValue) {
    into.push(value.name);
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k.length >= 3) into.push(k);
      stringsOf(v, into);
    }
  }
  return into;
}

function literalsOf(query: string): string[] {
  const found: string[] = [];
  for (const match of query.matchAll(/"((?:[^"\\]|\\.)*)"/g)) {
    try {
      found.push(JSON.parse(`"${match[1]}"`) as string);
    } catch {
      found.push(match[1]!);
    }
  }
  return found.filter((s) => s.length >= 3);
}

/** SQL-looking text: valid strings everywhere, so they must be stored and matched verbatim. */
const SQL_PAYLOADS = [
  `'; DROP TABLE runs; --`,
  `' OR 1=1 --`,
  `" OR ""="`,
  `$$`,
  `$body$; DELETE FROM status_changes; $body$`,
  `' UNION SELECT secret_hash FROM api_tokens --`,
  `1; SELECT pg_sleep(10)`,
  `'); INSERT INTO runs DEFAULT VALUES; --`,
  `%_%`,
  `\\`,
  `\\'`,
  `E'\\x27'`,
  `'::jsonb`,
  `/* */`,
  `$1`,
  `?`,
  `:name`,
  `{"a":"b"}`,
  `ʼ OR ʼ1ʼ=ʼ1`,
  `＇ OR １=１ --`,
  `‘; DROP TABLE runs; --’`,
  `\u202e'; DROP`,
  `\u200b'\u200b`,
  `🙂'); --`,
  `İı ǅ e\u0301`,
];
const sqlText = fc
  .tuple(
    fc.constantFrom(...SQL_PAYLOADS),
    fc.string({ unit: 'grapheme', maxLength: 8 }),
    fc.constantFrom(...SQL_PAYLOADS),
  )
  .map(([a, b, c]) => `${a}${b}${c}`)
  .filter(
    (s) =>
      s.length <= 90 &&
      s.isWellFormed() &&
      !s.includes('\u0000') &&
      !s.includes('#') &&
      s.trim() !== '',
  );

const SCHEMA_NAMES = new Set(
  readFileSync(new URL('../../schema.graphql', import.meta.url), 'utf8').match(/\w+/g) ?? [],
);
const ENUM_VALUES = new Set(
  [
    ...readFileSync(new URL('../../schema.graphql', import.meta.url), 'utf8').matchAll(
      /^\s+([A-Z][A-Z_]+)$/gm,
    ),
  ].map((m) => m[1]!),
);
const unknownName = fc
  .stringMatching(/^[a-z][A-Za-z0-9]{0,14}$/)
  .filter((n) => !SCHEMA_NAMES.has(n) && !['query', 'mutation', 'on', 'fragment'].includes(n));

// ---------------------------------------------------------------------------------------------
// Requests, answers and what a refusal must look like

interface GqlError {
  message: string;
  path?: (string | number)[];
  extensions?: Record<string, unknown>;
}

interface Reply {
  status: number;
  text: string;
  headers: Record<string, string>;
  body: { data?: Vars | null; errors?: GqlError[] } | null;
}

/** What the errors of a refusal must be (status: HTTP only). */
interface Refusal {
  status: number[];
  check(errors: GqlError[], status?: number): string | null;
}

function refused(
  status: number | number[],
  code: string,
  opts: { field?: string; under?: string; limit?: string; message?: string; one?: boolean } = {},
): Refusal {
  const statuses = Array.isArray(status) ? status : [status];
  return {
    status: statuses,
    check(errors, actual) {
      if (actual !== undefined && !statuses.includes(actual)) return `status ${actual}`;
      if (errors.length === 0) return 'no errors';
      if (opts.one && errors.length !== 1) return `${errors.length} errors`;
      const codes = errors.map((e) => e.extensions?.['code']);
      if (codes.some((c) => c !== code)) return `codes ${codes.join(',')}, expected ${code}`;
      const fields = errors.map((e) => e.extensions?.['field']);
      if (opts.field !== undefined && !fields.includes(opts.field)) {
        return `fields ${fields.join(',')}, expected ${opts.field}`;
      }
      const under = opts.under;
      if (
        under !== undefined &&
        !fields.some(
          (f) =>
            typeof f === 'string' &&
            (f === under || f.startsWith(`${under}.`) || f.startsWith(`${under}[`)),
        )
      ) {
        return `fields ${fields.join(',')}, expected one under ${under}`;
      }
      if (opts.limit && !errors.some((e) => e.extensions?.['limit'] === opts.limit)) {
        return `no error with limit ${opts.limit}`;
      }
      if (opts.message && !errors.some((e) => e.message === opts.message)) {
        return `no error saying ${opts.message}`;
      }
      return null;
    },
  };
}

function either(...alternatives: Refusal[]): Refusal {
  return {
    status: alternatives.flatMap((a) => a.status),
    check(errors, status) {
      const problems = alternatives.map((a) => a.check(errors, status));
      return problems.includes(null) ? null : problems.join(' / ');
    },
  };
}

const NESTED = 'Syntax Error: the document is nested too deeply.';

/** A GraphQL operation, sendable over either transport. */
interface OpCase {
  label: string;
  query: string;
  variables?: Vars;
  operationName?: unknown;
  /** Extra strings the answer may echo (names that are not string literals). */
  echoes?: string[];
  /** A hostile one: how it must be refused. */
  refusal?: Refusal;
  /** A valid one: check the answer's data and record what it says was written. */
  valid?: (data: Vars) => void;
}

const sentBy = (c: OpCase) => [
  ...stringsOf(c.variables),
  ...literalsOf(c.query),
  ...(c.echoes ?? []),
  ...(typeof c.operationName === 'string' ? [c.operationName] : []),
];

/** A request over HTTP: an operation, or raw bytes / another method / other headers. */
interface HttpCase {
  label: string;
  method?: string;
  search?: string;
  contentType?: string;
  accept?: string;
  /** The Authorization header; null for none (default: the admin token). */
  auth?: string | null;
  body?: string | Uint8Array;
  chunked?: boolean;
  sent: string[];
  /** For a refusal: null when the answer is as expected, else what is wrong. */
  check?: (reply: Reply) => string | null;
  valid?: (data: Vars) => void;
  /** Counted as hostile input even though it is answered normally (lossy UTF-8). */
  hostile?: boolean;
}

function httpOf(c: OpCase): HttpCase {
  return {
    label: c.label,
    body: toJson({ query: c.query, variables: c.variables, operationName: c.operationName }),
    sent: sentBy(c),
    check: c.refusal ? (reply) => graphqlRefusal(reply, c.refusal!) : undefined,
    valid: c.valid,
  };
}

function graphqlRefusal(reply: Reply, refusal: Refusal): string | null {
  if (!reply.body || !Array.isArray(reply.body.errors)) return 'no GraphQL errors in the answer';
  return refusal.check(reply.body.errors, reply.status);
}

const exactly =
  (status: number, body: unknown, headers: Record<string, string> = {}) =>
  (reply: Reply): string | null => {
    if (reply.status !== status) return `status ${reply.status}, expected ${status}`;
    for (const [name, value] of Object.entries(headers)) {
      if (reply.headers[name] !== value) return `header ${name}: ${reply.headers[name]}`;
    }
    if (body === '') return reply.text === '' ? null : 'expected an empty body';
    return isDeepStrictEqual(reply.body, body) ? null : 'body differs';
  };

// ---------------------------------------------------------------------------------------------
// What the valid requests' answers said they wrote

interface Change {
  runId: string;
  version: number;
  from: string | null;
  to: string;
  reason: string | null;
  message: string | null;
}

interface LedgerRun {
  id: string;
  project: string;
  name: string | null;
  tags: string[];
  meta: unknown;
  idempotencyKey: string | null;
  cacheKey: string | null;
  maxRetries: number;
  progress: number | null;
  phase: string | null;
  status: string;
  version: number;
  attempt: number;
  stopMessage: string | null;
  heartbeat: boolean;
}

interface Point {
  runId: string;
  name: string;
  value: number;
  step: number | null;
  at: number | null;
}

interface LedgerToken {
  id: string;
  name: string;
  role: string;
  projects: string[] | null;
  revoked: boolean;
}

const ledger = {
  runs: new Map<string, LedgerRun>(),
  changes: new Map<string, Change>(),
  points: [] as Point[],
  tokens: new Map<string, LedgerToken>(),
};

/** JSON's view of a value: -0 is 0, undefined fields are gone. */
const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value ?? null));

function same(actual: unknown, expected: unknown, what: string): void {
  if (!isDeepStrictEqual(plain(actual), plain(expected))) {
    throw new Error(`${what}: ${JSON.stringify(actual)} is not ${JSON.stringify(expected)}`);
  }
}

const numberOf = (value: unknown) => {
  const token = rawTokenOf(value);
  return token === null ? (value as number) : Number(token);
};

const RUN_SELECTION =
  'id project name tags meta status version attempt maxRetries progress phase stopMessage cacheKey';

const RESULT_SELECTION = `__typename
  ... on TransitionAccepted {
    run { id status version attempt stopMessage }
    change { runId from to version reason message }
  }
  ... on IllegalTransition { runId }
  ... on TransitionConflict { runId }
  ... on RunNotFound { runId }`;

function recordCreated(input: Vars, run: Vars): void {
  for (const key of ['project', 'name', 'tags', 'meta', 'cacheKey']) {
    same(run[key], input[key] ?? (key === 'tags' ? [] : null), `createRun echoes ${key}`);
  }
  same([run['status'], run['version']], ['CREATED', 1], 'a new run');
  const id = run['id'] as string;
  ledger.runs.set(id, {
    id,
    project: input['project'] as string,
    name: (input['name'] as string | undefined) ?? null,
    tags: (input['tags'] as string[] | undefined) ?? [],
    meta: input['meta'] ?? null,
    idempotencyKey: (input['idempotencyKey'] as string | undefined) ?? null,
    cacheKey: (input['cacheKey'] as string | undefined) ?? null,
    maxRetries: numberOf(input['maxRetries'] ?? 0),
    progress: null,
    phase: null,
    status: 'CREATED',
    version: 1,
    attempt: 1,
    stopMessage: null,
    heartbeat: false,
  });
  const creation = { from: null, to: 'CREATED', reason: 'CREATED', message: null };
  ledger.changes.set(`${id}:1`, { runId: id, version: 1, ...creation });
}

/** A TransitionResult: an accepted change is recorded; the others wrote nothing. */
function recordResult(
  result: Vars,
  sent: { reason?: string | null; message?: string | null } = {},
): void {
  const typename = result['__typename'] as string;
  if (!['TransitionAccepted', 'IllegalTransition', 'TransitionConflict'].includes(typename)) {
    throw new Error(`unexpected ${typename}`);
  }
  if (typename !== 'TransitionAccepted') return;
  const run = result['run'] as Vars;
  const change = result['change'] as Change | null;
  const entry = ledger.runs.get(run['id'] as string);
  if (!entry) throw new Error(`a change of a run this test did not create: ${String(run['id'])}`);
  if (change) {
    if (sent.reason !== undefined) same(change.reason, sent.reason, 'the reason, verbatim');
    if (sent.message !== undefined) same(change.message, sent.message, 'the message, verbatim');
    ledger.changes.set(`${change.runId}:${change.version}`, { ...change });
  }
  if ((run['version'] as number) >= entry.version) {
    entry.status = run['status'] as string;
    entry.version = run['version'] as number;
    entry.attempt = run['attempt'] as number;
    entry.stopMessage = run['stopMessage'] as string | null;
  }
}

// ---------------------------------------------------------------------------------------------
// The server, its test data, and the sockets opened before the storm

let server: TestServer;
let P: string;
/** A project whose name is SQL-looking (a prefix of P, so the database check covers it). */
let PS: string;
/** The prefix of this test's API token names. */
let TP: string;
let sqlPool: string[] = [];
let sqlNext = 0;
const nextSql = () => sqlPool[sqlNext++ % sqlPool.length]!;
let counter = 0;
const uid = () => ++counter;

interface Targets {
  transition: string[];
  decoy: string[];
  progress: string[];
  measure: string[];
  stop: string[];
  retry: string[];
  resume: string[];
  heartbeat: string[];
  decoyTokens: string[];
  revokeTokens: string[];
  seriesA: string;
  seriesB: string;
}
let t: Targets;

const problems = {
  http5xx: [] as string[],
  httpRefusals: [] as string[],
  uncoded: [] as string[],
  leaks: [] as string[],
  valid: [] as string[],
  wsProtocol: [] as string[],
  wsOperations: [] as string[],
};
const counts = { httpHostile: 0, httpValid: 0, wsHostile: 0, wsValid: 0 };
/** The counts of the storm alone (setup and verification requests are not in them). */
let stormCounts = { ...counts };

// ---------------------------------------------------------------------------------------------
// No leaks

const LEAKS: [string, RegExp][] = [
  ['a stack frame', /\bat (?:[\w.<>$[\] ]+ )?\(?(?:\/|file:|node:)/],
  [
    'a file path',
    /\/(?:work|home|usr|opt|tmp|var|root|app|srv)\/|node_modules|\w\.(?:ts|js|mjs|cjs):\d/,
  ],
  ['postgres', /postgres/i],
  ['SELECT', /\bselect\b/i],
  ['INSERT', /\binsert\b/i],
  ['UPDATE', /\bupdate\s+"?\w+"?\s+set\b/i],
  ['DELETE', /\bdelete\s+from\b/i],
  ['a PostgreSQL syntax error', /syntax error at or near/i],
  ['a constraint or relation', /violates|duplicate key value|relation "|column "/i],
  ['drizzle', /drizzle|failed query/i],
  ['a stack property', /"stack(?:trace)?"\s*:/i],
];

/** Every SQL-looking string this test generated: data that any read may hand back. */
const generated = new Set<string>();

function scrub(text: string, strings: Iterable<string>): string {
  const forms = [...strings].flatMap((s) => [
    JSON.stringify(JSON.stringify(s)).slice(3, -3),
    JSON.stringify(s).slice(1, -1),
    s,
  ]);
  let rest = text;
  for (const form of forms.sort((a, b) => b.length - a.length)) {
    if (form.length >= 3) rest = rest.split(form).join('');
  }
  return rest;
}

/** Remove what was sent (raw, JSON-escaped once or twice) and any stored data, then look. */
function scanLeaks(label: string, text: string, sent: string[]): void {
  let rest = scrub(text, sent);
  if (!LEAKS.some(([, pattern]) => pattern.test(rest))) return;
  rest = scrub(rest, generated);
  for (const [what, pattern] of LEAKS) {
    const match = pattern.exec(rest);
    if (match) {
      const at = Math.max(0, match.index - 80);
      problems.leaks.push(`${label}: ${what}: …${rest.slice(at, match.index + 80)}…`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP

async function fetchReply(c: HttpCase): Promise<Reply> {
  if (c.chunked) return chunkedReply(c);
  const auth =
    c.auth === undefined ? authHeader() : c.auth === null ? {} : { authorization: c.auth };
  const response = await fetch(`${server.url}${c.search ?? ''}`, {
    method: c.method ?? 'POST',
    headers: {
      'content-type': c.contentType ?? 'application/json',
      accept: c.accept ?? 'application/graphql-response+json',
      ...auth,
    },
    body: c.body === undefined || typeof c.body === 'string' ? c.body : new Uint8Array(c.body),
    signal: AbortSignal.timeout(20_000),
  });
  const text = await response.text();
  return replyOf(response.status, text, Object.fromEntries(response.headers));
}

function chunkedReply(c: HttpCase): Promise<Reply> {
  const url = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'transfer-encoding': 'chunked',
          ...authHeader(),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers)) headers[k] = String(v);
          resolve(replyOf(res.statusCode ?? 0, text, headers));
        });
      },
    );
    req.on('error', reject);
    req.end(c.body);
  });
}

function replyOf(status: number, text: string, headers: Record<string, string>): Reply {
  let body: Reply['body'] = null;
  try {
    body = JSON.parse(text) as Reply['body'];
  } catch {
    body = null;
  }
  return { status, text, headers, body };
}

async function sendHttp(c: HttpCase): Promise<Reply | null> {
  if (c.valid && !c.hostile) counts.httpValid += 1;
  else counts.httpHostile += 1;
  let reply: Reply;
  try {
    reply = await fetchReply(c);
  } catch (error) {
    problems.httpRefusals.push(`${c.label}: no answer: ${String(error)}`);
    return null;
  }
  const context = `${c.label} → ${reply.status} ${reply.text.slice(0, 400)}`;
  if (reply.status >= 500) problems.http5xx.push(context);
  const errors = reply.body?.errors;
  if (Array.isArray(errors) && errors.some((e) => typeof e.extensions?.['code'] !== 'string')) {
    problems.uncoded.push(`HTTP ${context}`);
  }
  scanLeaks(`HTTP ${c.label}`, reply.text, c.sent);
  if (c.valid) {
    if (reply.status !== 200 || errors !== undefined || !reply.body?.data) {
      problems.valid.push(`HTTP ${context}`);
    } else {
      try {
        c.valid(reply.body.data);
      } catch (error) {
        problems.valid.push(`HTTP ${c.label}: ${(error as Error).message}`);
      }
    }
  } else {
    const problem = c.check ? c.check(reply) : 'no expectation';
    if (problem) problems.httpRefusals.push(`${context}\n   ⇒ ${problem}`);
  }
  return reply;
}

/** Run `work` over `items`, `limit` at a time. */
async function pool<T>(items: T[], limit: number, work: (item: T) => Promise<unknown>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

/** Setup and verification requests: valid, and they must succeed. */
async function must(c: OpCase): Promise<Vars> {
  let data: Vars | null = null;
  const valid = c.valid;
  await sendHttp(
    httpOf({
      ...c,
      valid: (d) => {
        valid?.(d);
        data = d;
      },
    }),
  );
  if (!data) throw new Error(`${c.label} failed: ${problems.valid.slice(-1).join('')}`);
  return data;
}

// ---------------------------------------------------------------------------------------------
// WebSocket

interface Frame {
  id?: unknown;
  type?: unknown;
  payload?: unknown;
}

interface Conn {
  socket: WebSocket;
  frames: Frame[];
  texts: string[];
  closed: { code: number; reason: string } | null;
}

async function openSocket(protocol: string | null = 'graphql-transport-ws'): Promise<Conn> {
  const socket = protocol ? new WebSocket(server.wsUrl, protocol) : new WebSocket(server.wsUrl);
  const conn: Conn = { socket, frames: [], texts: [], closed: null };
  socket.on('message', (data) => {
    const text = String(data);
    conn.texts.push(text);
    try {
      conn.frames.push(JSON.parse(text) as Frame);
    } catch {
      conn.frames.push({});
    }
  });
  socket.on('close', (code, reason) => (conn.closed = { code, reason: String(reason) }));
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('close', () => resolve());
    socket.once('error', reject);
  });
  return conn;
}

/** Poll until `condition` holds or `ms` pass; answers whether it held. */
async function settle(condition: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

async function initSocket(conn: Conn): Promise<boolean> {
  conn.socket.send(
    JSON.stringify({ type: 'connection_init', payload: { token: TEST_ADMIN_TOKEN } }),
  );
  return settle(
    () => conn.closed !== null || conn.frames.some((f) => f.type === 'connection_ack'),
    5000,
  );
}

/** A protocol-level case: its own socket, and either the close it must end with or an answer. */
interface WsCase {
  label: string;
  protocol?: string | null;
  init: boolean;
  frames: (string | Buffer)[];
  close: { code: number; reason?: string } | null;
  /** For a case that keeps the socket open: the answer that must arrive. */
  answered?: (frames: Frame[]) => boolean;
  sent: string[];
}

async function runWsCase(c: WsCase): Promise<void> {
  counts.wsHostile += 1;
  let conn: Conn;
  try {
    conn = await openSocket(c.protocol === undefined ? 'graphql-transport-ws' : c.protocol);
  } catch (error) {
    problems.wsProtocol.push(`${c.label}: could not connect: ${String(error)}`);
    return;
  }
  if (c.init && !(await initSocket(conn))) {
    problems.wsProtocol.push(`${c.label}: no connection_ack`);
  }
  for (const frame of c.frames) if (conn.closed === null) conn.socket.send(frame);
  if (c.close) {
    await settle(() => conn.closed !== null, 5000);
    const closed = conn.closed as Conn['closed'];
    const expected = `${c.close.code}${c.close.reason === undefined ? '' : ` ${c.close.reason}`}`;
    if (!closed) {
      problems.wsProtocol.push(`${c.label}: still open, expected a close with ${expected}`);
    } else if (
      closed.code !== c.close.code ||
      (c.close.reason !== undefined && closed.reason !== c.close.reason)
    ) {
      problems.wsProtocol.push(
        `${c.label}: closed with ${closed.code} ${closed.reason.slice(0, 120)}, expected ${expected}`,
      );
    }
  } else {
    conn.socket.send(JSON.stringify({ type: 'ping' }));
    const ok = await settle(
      () =>
        conn.closed !== null ||
        (conn.frames.some((f) => f.type === 'pong') && (c.answered?.(conn.frames) ?? true)),
      5000,
    );
    if (conn.closed) {
      const { code, reason } = conn.closed;
      problems.wsProtocol.push(`${c.label}: closed with ${code} ${reason}, expected to stay open`);
    } else if (!ok) problems.wsProtocol.push(`${c.label}: no answer`);
  }
  scanLeaks(`WS ${c.label}`, [...conn.texts, conn.closed?.reason ?? ''].join('\n'), c.sent);
  if (!conn.closed) conn.socket.close(1000);
}

/**
 * An operation on a shared, acknowledged socket. Its document gets a comment naming it, so no
 * document is the same on both transports (yoga's parse cache is shared between them), unless
 * `asIs` is set.
 */
async function runWsOperation(conn: Conn, c: OpCase, id: string, asIs = false): Promise<void> {
  if (c.valid) counts.wsValid += 1;
  else counts.wsHostile += 1;
  const query = asIs ? c.query : `# ${id}\n${c.query}`;
  const payload = { query, variables: c.variables, operationName: c.operationName };
  conn.socket.send(toJson({ id, type: 'subscribe', payload }));
  const mine = () => conn.frames.filter((f) => f.id === id);
  const done = await settle(
    () => conn.closed !== null || mine().some((f) => f.type === 'error' || f.type === 'complete'),
    15_000,
  );
  const frames = mine();
  const context = `${c.label} → ${JSON.stringify(frames).slice(0, 400)}`;
  scanLeaks(`WS ${c.label}`, JSON.stringify(frames), sentBy(c));
  if (!done || conn.closed) {
    problems.wsOperations.push(`${context}: ${conn.closed ? 'socket closed' : 'no answer'}`);
    return;
  }
  const failed = frames.find((f) => f.type === 'error');
  const results = frames.filter((f) => f.type === 'next').map((f) => f.payload as Reply['body']);
  const errors = failed ? (failed.payload as GqlError[]) : results.flatMap((r) => r?.errors ?? []);
  if (errors.some((e) => typeof e.extensions?.['code'] !== 'string')) {
    problems.uncoded.push(`WS ${context}`);
  }
  if (c.valid) {
    const data = results[0]?.data;
    if (errors.length > 0 || !data) problems.valid.push(`WS ${context}`);
    else {
      try {
        c.valid(data);
      } catch (error) {
        problems.valid.push(`WS ${c.label}: ${(error as Error).message}`);
      }
    }
    return;
  }
  const problem = c.refusal!.check(errors);
  if (problem) problems.wsOperations.push(`${context}\n   ⇒ ${problem}`);
}

// ---------------------------------------------------------------------------------------------
// Valid requests (SQL-looking strings in every string field)

function createCase(project: string, extra: Vars = {}): OpCase {
  const i = uid();
  const [name, tagA, tagB, key, value, nested, idem, cache] = Array.from({ length: 8 }, nextSql);
  const input: Vars = {
    project,
    name: `${name}#${i}#`,
    tags: [...new Set([`${P}:t${i}`, tagA!, tagB!])],
    meta: { [key!]: value, list: [nested, 1, true, null], n: { [nested!]: { k: value } } },
    idempotencyKey: `${idem}#${i}#`,
    cacheKey: `${cache}#${i}#`,
    ...extra,
  };
  return {
    label: `valid createRun ${i}`,
    query: `mutation($input: CreateRunInput!) { createRun(input: $input) { ${RUN_SELECTION} } }`,
    variables: { input },
    valid: (data) => recordCreated(input, data['createRun'] as Vars),
  };
}

function transitionCase(id: string, to: string): OpCase {
  const i = uid();
  const input = {
    id,
    to,
    reason: nextSql(),
    message: nextSql(),
    idempotencyKey: `${nextSql()}#${i}#`,
  };
  return {
    label: `valid transitionRun ${i} → ${to}`,
    query: `mutation($input: TransitionRunInput!) { transitionRun(input: $input) { ${RESULT_SELECTION} } }`,
    variables: { input },
    valid: (data) => recordResult(data['transitionRun'] as Vars, input),
  };
}

function batchCase(ids: string[], to: string[]): OpCase {
  const i = uid();
  const inputs = ids.map((id, k) => ({ id, to: to[k], reason: nextSql(), message: nextSql() }));
  return {
    label: `valid transitionRuns ${i}`,
    query: `mutation($inputs: [TransitionRunInput!]!) { transitionRuns(inputs: $inputs) { ${RESULT_SELECTION} } }`,
    variables: { inputs },
    valid: (data) =>
      (data['transitionRuns'] as Vars[]).forEach((result, k) => recordResult(result, inputs[k])),
  };
}

function progressCase(id: string, progress: number | string): OpCase {
  const phase = nextSql();
  return {
    label: `valid reportProgress ${uid()}`,
    query: `mutation($input: ReportProgressInput!) { reportProgress(input: $input) { id progress phase } }`,
    variables: { input: { id, progress, phase } },
    valid: (data) => {
      const run = data['reportProgress'] as Vars;
      same([run['progress'], run['phase']], [numberOf(progress), phase], 'progress and phase');
      Object.assign(ledger.runs.get(id)!, { progress: numberOf(progress), phase });
    },
  };
}

function measureCase(runId: string, points: Point[]): OpCase {
  const measurements = points.map((p) => ({
    name: p.name,
    value: p.value,
    ...(p.step === null ? {} : { step: p.step }),
    ...(p.at === null ? {} : { at: new Date(p.at).toISOString() }),
  }));
  return {
    label: `valid recordMeasurements ${uid()}`,
    query: `mutation($input: RecordMeasurementsInput!) { recordMeasurements(input: $input) }`,
    variables: { input: { runId, measurements } },
    valid: (data) => {
      same(data['recordMeasurements'], points.length, 'points written');
      ledger.points.push(...points.map((p) => ({ ...p, runId })));
    },
  };
}

function commandCase(command: 'stopRun' | 'retryRun' | 'resumeRun', id: string): OpCase {
  const argument = command === 'stopRun' ? 'message' : 'reason';
  const text = nextSql();
  return {
    label: `valid ${command} ${uid()}`,
    query: `mutation($id: ID!, $text: String) { ${command}(id: $id, ${argument}: $text) { ${RESULT_SELECTION} } }`,
    variables: { id, text },
    valid: (data) => {
      const result = data[command] as Vars;
      same(result['__typename'], 'TransitionAccepted', `${command} is accepted`);
      recordResult(result, { [argument]: text });
    },
  };
}

function heartbeatCase(id: string): OpCase {
  return {
    label: `valid heartbeat ${uid()}`,
    query: `mutation($id: ID!) { heartbeat(id: $id) { id heartbeatAt } }`,
    variables: { id },
    valid: (data) => {
      if (!(data['heartbeat'] as Vars)['heartbeatAt']) throw new Error('no heartbeatAt');
      ledger.runs.get(id)!.heartbeat = true;
    },
  };
}

function tokenCase(): OpCase {
  const input = {
    name: `${TP}${nextSql()}#${uid()}#`,
    role: 'WRITE',
    projects: [P, `${P}/${nextSql()}`],
  };
  return {
    label: `valid createApiToken ${counter}`,
    query: `mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { token apiToken { id name role projects revokedAt } } }`,
    variables: { input },
    valid: (data) => {
      const created = data['createApiToken'] as { token: string; apiToken: LedgerToken };
      same(created.apiToken.name, input.name, 'the token name, verbatim');
      same(created.apiToken.projects, input.projects, 'the token projects, verbatim');
      const { id, name, role, projects } = created.apiToken;
      ledger.tokens.set(id, { id, name, role, projects, revoked: false });
    },
  };
}

function revokeCase(id: string): OpCase {
  return {
    label: `valid revokeApiToken ${uid()}`,
    query: `mutation($id: ID!) { revokeApiToken(id: $id) { id revokedAt } }`,
    variables: { id },
    valid: (data) => {
      if (!(data['revokeApiToken'] as Vars)['revokedAt']) throw new Error('not revoked');
      ledger.tokens.get(id)!.revoked = true;
    },
  };
}

/** Reads with SQL-looking filters during the storm: whatever they find must match them. */
function filterCases(): OpCase[] {
  const [project, tag, name, series] = Array.from({ length: 4 }, nextSql);
  const runsFilter = { project: `${P}/${project}`, tags: [tag], nameContains: name };
  return [
    {
      label: `valid runs filter ${uid()}`,
      query: `query($filter: RunFilter) { runs(filter: $filter, first: 50) { edges { node { project tags } } } }`,
      variables: { filter: runsFilter },
      valid: (data) => {
        for (const { node } of (data['runs'] as { edges: { node: Vars }[] }).edges) {
          same(node['project'], runsFilter.project, 'a filtered run');
          if (!(node['tags'] as string[]).includes(tag!)) throw new Error('tag filter');
        }
      },
    },
    {
      label: `valid statusChanges filter ${uid()}`,
      query: `query($p: [String!]) { statusChanges(filter: { projects: $p }, first: 50) { edges { node { run { project } } } } }`,
      variables: { p: [`${P}/${project}`, PS] },
      valid: (data) => {
        for (const { node } of (data['statusChanges'] as { edges: { node: Vars }[] }).edges) {
          same((node['run'] as Vars)['project'], PS, 'a filtered change');
        }
      },
    },
    {
      label: `valid measurements filter ${uid()}`,
      query: `query($id: ID!, $names: [String!]) { run(id: $id) { measurements(names: $names, first: 50) { edges { node { name } } } } }`,
      variables: { id: t.measure[0], names: [series, t.seriesA] },
      valid: (data) => {
        const run = data['run'] as { measurements: { edges: { node: Vars }[] } };
        for (const { node } of run.measurements.edges) same(node['name'], t.seriesA, 'a point');
      },
    },
  ];
}

const pointsArb = (names: string[]) =>
  fc.array(
    fc.record({
      name: fc.constantFrom(...names),
      value: fc.double({ noNaN: true, noDefaultInfinity: true }),
      step: fc.option(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), { nil: null }),
      at: fc.option(
        fc
          .date({ min: new Date('2000-01-01'), max: new Date('2099-12-31'), noInvalidDate: true })
          .map((d) => d.getTime()),
        { nil: null },
      ),
    }),
    { minLength: 1, maxLength: 4 },
  );

const MOVES = ['QUEUED', 'SCHEDULED', 'STARTING', 'RUNNING', 'PROCESSING', 'WARNING'];

function validStormCases(): OpCase[] {
  const cases: OpCase[] = [];
  for (let i = 0; i < 24; i++) cases.push(createCase(i % 3 === 0 ? `${P}/${nextSql()}` : P));
  cases.push(createCase(P, { maxRetries: raw('-0') }), createCase(P, { maxRetries: 3 }));
  const moves = draw(fc.constantFrom(...MOVES), 40);
  t.transition.forEach((id, k) => {
    for (let j = 0; j < 4; j++) cases.push(transitionCase(id, moves[k * 4 + j]!));
  });
  for (let k = 0; k < 5; k++) {
    const ids = [t.transition[k]!, t.transition[(k + 1) % t.transition.length]!];
    cases.push(batchCase(ids, [moves[30 + k]!, moves[35 + k]!]));
  }
  const progress = draw(fc.double({ min: 0, max: 1, noNaN: true }), t.progress.length);
  t.progress.forEach((id, k) => cases.push(progressCase(id, k === 0 ? raw('-0') : progress[k]!)));
  const series = [t.seriesA, t.seriesB, nextSql(), nextSql()];
  t.measure.forEach((id, k) => {
    for (const points of draw(pointsArb(series), 4)) {
      cases.push(
        measureCase(
          id,
          points.map((p) => ({ ...p, runId: id })),
        ),
      );
    }
    if (k === 0)
      cases.push(measureCase(id, [{ runId: id, name: t.seriesB, value: -0, step: 0, at: null }]));
  });
  for (const id of t.stop) cases.push(commandCase('stopRun', id));
  for (const id of t.retry) cases.push(commandCase('retryRun', id));
  for (const id of t.resume) cases.push(commandCase('resumeRun', id));
  for (const id of t.heartbeat) cases.push(heartbeatCase(id));
  for (let k = 0; k < 4; k++) cases.push(tokenCase());
  for (const id of t.revokeTokens) cases.push(revokeCase(id));
  for (let k = 0; k < 5; k++) cases.push(...filterCases());
  return cases;
}

// ---------------------------------------------------------------------------------------------
// Hostile operations: every argument of every mutation and query, in variables and literals

type SlotType =
  | 'String'
  | 'ID'
  | 'Int'
  | 'Float'
  | 'Boolean'
  | 'JSON'
  | 'DateTime'
  | 'Enum'
  | 'Object'
  | 'List'
  | 'ObjectList';

interface Slot {
  path: Path;
  type: SlotType;
  max?: number;
  nonNull?: boolean;
}

interface Op {
  name: string;
  root: 'query' | 'mutation';
  args: Record<string, string>;
  body: (arg: (name: string) => string) => string;
  base: () => Vars;
  slots: Slot[];
}

const slot = (path: Path, type: SlotType, more: { max?: number; nonNull?: boolean } = {}) => ({
  path,
  type,
  ...more,
});

function ops(): Op[] {
  const e = enumValue;
  const [run, other] = t.transition as [string, string];
  return [
    {
      name: 'createRun',
      root: 'mutation',
      args: { input: 'CreateRunInput!' },
      body: (a) => `createRun(input: ${a('input')}) { id }`,
      base: () => ({
        input: { project: P, name: 'hostile', tags: [P, 'hostile'], meta: { k: 1 } },
      }),
      slots: [
        slot(['input'], 'Object', { nonNull: true }),
        slot(['input', 'project'], 'String', { max: 200, nonNull: true }),
        slot(['input', 'name'], 'String', { max: 500 }),
        slot(['input', 'tags'], 'List'),
        slot(['input', 'tags', 1], 'String', { max: 100, nonNull: true }),
        slot(['input', 'meta'], 'JSON'),
        slot(['input', 'idempotencyKey'], 'String', { max: 200 }),
        slot(['input', 'cacheKey'], 'String', { max: 200 }),
        slot(['input', 'maxRetries'], 'Int'),
        slot(['input', 'heartbeatTimeout'], 'Int'),
        slot(['input', 'queueTimeout'], 'Int'),
        slot(['input', 'skipOnUpstreamSkip'], 'Boolean'),
        slot(['input', 'dependsOn', 0], 'ID', { nonNull: true }),
        slot(['input', 'trigger'], 'Enum'),
        slot(['input', 'events', 0, 'kinds', 0], 'Enum', { nonNull: true }),
      ],
    },
    {
      name: 'transitionRun',
      root: 'mutation',
      args: { input: 'TransitionRunInput!' },
      body: (a) => `transitionRun(input: ${a('input')}) { __typename }`,
      base: () => ({ input: { id: run, to: e('RUNNING'), reason: 'hostile', message: 'hostile' } }),
      slots: [
        slot(['input'], 'Object', { nonNull: true }),
        slot(['input', 'id'], 'ID', { nonNull: true }),
        slot(['input', 'to'], 'Enum'),
        slot(['input', 'native'], 'String', { max: 200 }),
        slot(['input', 'dialect'], 'Enum'),
        slot(['input', 'reason'], 'String', { max: 200 }),
        slot(['input', 'message'], 'String', { max: 10_000 }),
        slot(['input', 'expectedStatus'], 'Enum'),
        slot(['input', 'expectedVersion'], 'Int'),
        slot(['input', 'idempotencyKey'], 'String', { max: 200 }),
        slot(['input', 'attempt'], 'Int'),
        slot(['input', 'force'], 'Boolean'),
      ],
    },
    {
      name: 'transitionRuns',
      root: 'mutation',
      args: { inputs: '[TransitionRunInput!]!' },
      body: (a) => `transitionRuns(inputs: ${a('inputs')}) { __typename }`,
      base: () => ({
        inputs: [
          { id: run, to: e('QUEUED') },
          { id: other, to: e('RUNNING') },
        ],
      }),
      slots: [
        slot(['inputs'], 'ObjectList', { nonNull: true }),
        slot(['inputs', 0], 'Object', { nonNull: true }),
        slot(['inputs', 0, 'id'], 'ID', { nonNull: true }),
        slot(['inputs', 1, 'to'], 'Enum'),
        slot(['inputs', 0, 'reason'], 'String', { max: 200 }),
        slot(['inputs', 1, 'message'], 'String', { max: 10_000 }),
        slot(['inputs', 0, 'expectedVersion'], 'Int'),
      ],
    },
    {
      name: 'reportProgress',
      root: 'mutation',
      args: { input: 'ReportProgressInput!' },
      body: (a) => `reportProgress(input: ${a('input')}) { id }`,
      base: () => ({ input: { id: t.progress[0], progress: 0.5, phase: 'hostile' } }),
      slots: [
        slot(['input'], 'Object', { nonNull: true }),
        slot(['input', 'id'], 'ID', { nonNull: true }),
        slot(['input', 'progress'], 'Float', { nonNull: true }),
        slot(['input', 'phase'], 'String', { max: 500 }),
        slot(['input', 'attempt'], 'Int'),
      ],
    },
    {
      name: 'recordMeasurements',
      root: 'mutation',
      args: { input: 'RecordMeasurementsInput!' },
      body: (a) => `recordMeasurements(input: ${a('input')})`,
      base: () => ({
        input: {
          runId: t.measure[1],
          measurements: [{ name: 'hostile', value: 1, step: 1, at: '2024-01-01T00:00:00Z' }],
        },
      }),
      slots: [
        slot(['input', 'runId'], 'ID', { nonNull: true }),
        slot(['input', 'measurements'], 'ObjectList', { nonNull: true }),
        slot(['input', 'measurements', 0], 'Object', { nonNull: true }),
        slot(['input', 'measurements', 0, 'name'], 'String', { max: 200, nonNull: true }),
        // Nullable since JSON points (data): a missing value is BAD_USER_INPUT, tested with them.
        slot(['input', 'measurements', 0, 'value'], 'Float'),
        slot(['input', 'measurements', 0, 'step'], 'Int'),
        slot(['input', 'measurements', 0, 'at'], 'DateTime'),
      ],
    },
    {
      name: 'heartbeat',
      root: 'mutation',
      args: { id: 'ID!', attempt: 'Int' },
      body: (a) => `heartbeat(id: ${a('id')}, attempt: ${a('attempt')}) { id }`,
      base: () => ({ id: t.decoy[0] }),
      slots: [slot(['id'], 'ID', { nonNull: true }), slot(['attempt'], 'Int')],
    },
    ...(['stopRun', 'retryRun', 'resumeRun'] as const).map((command): Op => {
      const text = command === 'stopRun' ? 'message' : 'reason';
      return {
        name: command,
        root: 'mutation',
        args: { id: 'ID!', [text]: 'String' },
        body: (a) => `${command}(id: ${a('id')}, ${text}: ${a(text)}) { __typename }`,
        base: () => ({ id: t.decoy[1], [text]: 'hostile' }),
        slots: [
          slot(['id'], 'ID', { nonNull: true }),
          slot([text], 'String', { max: command === 'stopRun' ? 10_000 : 200 }),
        ],
      };
    }),
    {
      name: 'createApiToken',
      root: 'mutation',
      args: { input: 'CreateApiTokenInput!' },
      body: (a) => `createApiToken(input: ${a('input')}) { apiToken { id } }`,
      base: () => ({ input: { name: `${TP}hostile`, role: e('READ'), projects: [P] } }),
      slots: [
        slot(['input'], 'Object', { nonNull: true }),
        slot(['input', 'name'], 'String', { max: 500, nonNull: true }),
        slot(['input', 'role'], 'Enum', { nonNull: true }),
        slot(['input', 'projects'], 'List'),
        slot(['input', 'projects', 0], 'String', { max: 200, nonNull: true }),
      ],
    },
    {
      name: 'revokeApiToken',
      root: 'mutation',
      args: { id: 'ID!' },
      body: (a) => `revokeApiToken(id: ${a('id')}) { id }`,
      base: () => ({ id: t.decoyTokens[0] }),
      slots: [slot(['id'], 'ID', { nonNull: true })],
    },
    {
      name: 'runs',
      root: 'query',
      args: { filter: 'RunFilter', first: 'Int', after: 'String', orderBy: 'RunOrder' },
      body: (a) =>
        `runs(filter: ${a('filter')}, first: ${a('first')}, after: ${a('after')}, orderBy: ${a('orderBy')}) { edges { cursor } }`,
      base: () => ({
        filter: {
          project: P,
          tags: [P],
          nameContains: 'x',
          statuses: [e('CREATED')],
          categories: [e('PENDING')],
          createdAfter: '2000-01-01T00:00:00Z',
        },
        first: 5,
        orderBy: { field: e('CREATED_AT'), direction: e('DESC') },
      }),
      slots: [
        slot(['filter'], 'Object'),
        slot(['filter', 'project'], 'String', { max: 200 }),
        slot(['filter', 'tags'], 'List'),
        slot(['filter', 'tags', 0], 'String', { max: 100, nonNull: true }),
        slot(['filter', 'nameContains'], 'String', { max: 500 }),
        slot(['filter', 'statuses', 0], 'Enum', { nonNull: true }),
        slot(['filter', 'categories', 0], 'Enum', { nonNull: true }),
        slot(['filter', 'createdAfter'], 'DateTime'),
        slot(['first'], 'Int'),
        slot(['after'], 'String', { max: 0 }),
        slot(['orderBy'], 'Object'),
        slot(['orderBy', 'field'], 'Enum', { nonNull: true }),
        slot(['orderBy', 'direction'], 'Enum', { nonNull: true }),
      ],
    },
    {
      name: 'statusChanges',
      root: 'query',
      args: { filter: 'StatusChangeFilter', first: 'Int', after: 'String' },
      body: (a) =>
        `statusChanges(filter: ${a('filter')}, first: ${a('first')}, after: ${a('after')}) { edges { cursor } }`,
      base: () => ({
        filter: {
          projects: [P],
          runIds: [t.decoy[0]],
          statuses: [e('QUEUED')],
          categories: [e('QUEUED')],
        },
        first: 5,
      }),
      slots: [
        slot(['filter'], 'Object'),
        slot(['filter', 'projects', 0], 'String', { max: 200, nonNull: true }),
        slot(['filter', 'runIds', 0], 'ID', { nonNull: true }),
        slot(['filter', 'statuses', 0], 'Enum', { nonNull: true }),
        slot(['filter', 'categories', 0], 'Enum', { nonNull: true }),
        slot(['first'], 'Int'),
        slot(['after'], 'String', { max: 0 }),
      ],
    },
    {
      name: 'run',
      root: 'query',
      args: { id: 'ID!', names: '[String!]', first: 'Int', after: 'String' },
      body: (a) =>
        `run(id: ${a('id')}) { statusHistory(first: ${a('first')}) { edges { cursor } } measurements(names: ${a('names')}, first: ${a('first')}, after: ${a('after')}) { edges { cursor } } }`,
      base: () => ({ id: t.measure[1], names: ['hostile'], first: 5 }),
      slots: [
        slot(['id'], 'ID', { nonNull: true }),
        slot(['names'], 'List'),
        slot(['names', 0], 'String', { max: 200, nonNull: true }),
        slot(['first'], 'Int'),
        slot(['after'], 'String', { max: 0 }),
      ],
    },
  ];
}

function document(op: Op, vars: Vars, form: 'variables' | 'literal') {
  if (form === 'literal') {
    return { query: `${op.root} { ${op.body((n) => literal(vars[n]))} }` };
  }
  const declarations = Object.entries(op.args).map(([n, type]) => `$${n}: ${type}`);
  return {
    query: `${op.root}(${declarations.join(', ')}) { ${op.body((n) => `$${n}`)} }`,
    variables: vars,
  };
}

const small = fc.string({ maxLength: 6 });
const anObject = fc.dictionary(
  fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/),
  fc.oneof(fc.integer(), fc.boolean(), small),
  { minKeys: 1, maxKeys: 3 },
);
const nonInteger = fc
  .double({ noNaN: true, noDefaultInfinity: true })
  .filter((x) => !Number.isInteger(x));
const beyondInt32 = fc.oneof(
  fc.integer({ min: 2 ** 31, max: Number.MAX_SAFE_INTEGER }),
  fc.integer({ min: Number.MIN_SAFE_INTEGER, max: -(2 ** 31) - 1 }),
  fc.constantFrom(raw('1e20'), raw('-1e20')),
);
const nanLike = fc.constantFrom('NaN', 'Infinity', '-Infinity', '1e400', '0x10', '', ' 1');
const infinite = fc.constantFrom(raw('1e400'), raw('-1e400'), raw('1E999'));
const someInts = fc.array(fc.integer(), { minLength: 1, maxLength: 3 });

/** Values GraphQL's coercion must refuse for a slot (JSON: the resolver refuses non-objects). */
function wrongValue(s: Slot, form: 'variables' | 'literal'): fc.Arbitrary<unknown> {
  const nullable = s.nonNull ? [fc.constant(null)] : [];
  switch (s.type) {
    case 'String':
      return fc.oneof(fc.integer(), nonInteger, fc.boolean(), anObject, someInts, ...nullable);
    case 'ID':
      return fc.oneof(nonInteger, fc.boolean(), anObject, fc.constant(['x']), ...nullable);
    case 'Int':
      return fc.oneof(nonInteger, beyondInt32, fc.boolean(), anObject, nanLike, infinite, small);
    case 'Float':
      return fc.oneof(
        fc.boolean(),
        anObject,
        nanLike,
        fc.constantFrom('0.5', '1'),
        ...(form === 'variables' ? [infinite] : []),
        ...nullable,
      );
    case 'Boolean':
      return fc.oneof(fc.integer(), fc.constantFrom('true', 'false', ''), anObject);
    case 'JSON':
      return fc.oneof(small, fc.integer(), fc.boolean(), someInts);
    case 'DateTime':
      return fc.oneof(
        fc.integer(),
        fc.boolean(),
        anObject,
        fc.constantFrom('yesterday', '2024-13-01T00:00:00Z', '', 'now', '25:00'),
      );
    case 'Enum':
      return fc.oneof(
        fc.integer(),
        fc.boolean(),
        fc.constantFrom('BOGUS', 'running', '', 'DROP TABLE runs'),
        fc
          .stringMatching(/^[A-Z][A-Z_]{0,10}$/)
          .filter((v) => !ENUM_VALUES.has(v))
          .map((v) => (form === 'literal' ? enumValue(v) : v)),
        ...nullable,
      );
    case 'Object':
      return fc.oneof(small, fc.integer(), fc.boolean(), someInts, ...nullable);
    case 'List':
      return fc.oneof(fc.integer(), fc.boolean(), anObject, fc.constant([null]), someInts);
    case 'ObjectList':
      return fc.oneof(fc.integer(), fc.boolean(), fc.constant([null]), someInts, ...nullable);
  }
}

function wrongTypeCases(perSlot: number, form: 'variables' | 'literal'): OpCase[] {
  const cases: OpCase[] = [];
  for (const op of ops()) {
    for (const s of op.slots) {
      for (const value of draw(wrongValue(s, form), perSlot)) {
        const vars = setAt(op.base(), s.path, value);
        const field = pathString(s.path);
        cases.push({
          label: `${op.name} ${field} = ${literal(value).slice(0, 40)} (${form})`,
          ...document(op, vars, form),
          refusal:
            s.type === 'JSON'
              ? refused(200, 'BAD_USER_INPUT', { field, one: true })
              : refused(400, 'BAD_USER_INPUT', { under: field }),
        });
      }
    }
  }
  return cases;
}

/** Raw JSON numbers GraphQL's Int and Float cannot take, and -0 where the service refuses 0. */
function numberCases(count: number): OpCase[] {
  const slots = ops().flatMap((op) =>
    op.slots.filter((s) => s.type === 'Int' || s.type === 'Float').map((s) => ({ op, s })),
  );
  const values = [
    'NaN',
    'Infinity',
    '-Infinity',
    raw('1e400'),
    raw('-1e400'),
    2 ** 31,
    -(2 ** 31) - 1,
    2 ** 53,
  ];
  const pairs = slots.flatMap(({ op, s }) =>
    values.filter((v) => s.type === 'Int' || typeof v !== 'number').map((v) => ({ op, s, v })),
  );
  const cases = draw(fc.shuffledSubarray(pairs, { minLength: count, maxLength: count }), 1)[0]!.map(
    ({ op, s, v }): OpCase => ({
      label: `${op.name} ${pathString(s.path)} = ${String(rawTokenOf(v) ?? JSON.stringify(v))}`,
      ...document(op, setAt(op.base(), s.path, v), 'variables'),
      refusal: refused(400, 'BAD_USER_INPUT', { under: pathString(s.path) }),
    }),
  );
  // A Float literal of 1e400 is Infinity after parsing: the service refuses it as not finite.
  for (const { op, s } of slots.filter(({ s }) => s.type === 'Float')) {
    const field = pathString(s.path);
    cases.push({
      label: `${op.name} ${field} = literal 1e400`,
      ...document(op, setAt(op.base(), s.path, raw('1e400')), 'literal'),
      refusal: refused(200, 'BAD_USER_INPUT', { field, one: true }),
    });
  }
  const negativeZero = [
    ['runs', ['first'], 'first'],
    ['statusChanges', ['first'], 'first'],
    ['run', ['first'], 'first'],
    ['transitionRun', ['input', 'expectedVersion'], 'input.expectedVersion'],
    ['transitionRun', ['input', 'attempt'], 'input.attempt'],
  ] as const;
  for (const [name, path, field] of negativeZero) {
    const op = ops().find((o) => o.name === name)!;
    cases.push({
      label: `${name} ${field} = -0`,
      ...document(op, setAt(op.base(), [...path], raw('-0')), 'variables'),
      refusal: refused(200, 'BAD_USER_INPUT', { field, one: true }),
    });
  }
  return cases;
}

/** Strings (and a meta object) past their limit, up to ~200 KB; cursors that are not cursors. */
function hugeCases(count: number): OpCase[] {
  const slots = ops().flatMap((op) =>
    op.slots.filter((s) => s.type === 'String' && s.max !== undefined).map((s) => ({ op, s })),
  );
  const arb = fc.record({
    target: fc.constantFrom(...slots),
    length: fc.integer({ min: 1, max: 200_000 }),
    unit: fc.constantFrom('x', 'é', '中', '🙂', "'", '\\'),
    form: fc.constantFrom('variables' as const, 'literal' as const),
  });
  const cases = draw(arb, count).map(({ target: { op, s }, length, unit, form }): OpCase => {
    const size = Math.max(length, s.max! + 1);
    const value = unit.repeat(Math.ceil(size / unit.length));
    const field = pathString(s.path);
    return {
      label: `${op.name} ${field}: ${value.length} code units of ${unit} (${form})`,
      ...document(op, setAt(op.base(), s.path, value), form),
      refusal: refused(200, 'BAD_USER_INPUT', { field, one: true }),
    };
  });
  const create = ops()[0]!;
  for (const size of draw(fc.integer({ min: 64 * 1024 + 1, max: 200_000 }), 3)) {
    cases.push({
      label: `createRun meta of ${size} bytes`,
      ...document(
        create,
        setAt(create.base(), ['input', 'meta'], { big: 'm'.repeat(size) }),
        'variables',
      ),
      refusal: refused(200, 'BAD_USER_INPUT', { field: 'input.meta', one: true }),
    });
  }
  return cases;
}

function unknownCases(count: number): OpCase[] {
  const objectSlots = ops().flatMap((op) =>
    op.slots.filter((s) => s.type === 'Object').map((s) => ({ op, s })),
  );
  const decoy = t.decoy[0]!;
  const selections = [
    (n: string) => `{ runs(first: 1) { edges { node { id ${n} } } } }`,
    (n: string) => `{ lifecycle { ${n} } }`,
    (n: string) => `{ viewer { name ${n} } }`,
    (n: string) => `{ ${n} }`,
    (n: string) => `mutation { ${n} }`,
    (n: string) =>
      `mutation { createRun(input: { project: "${P}", name: "unknown" }) { id ${n} } }`,
  ];
  const args = [
    (n: string) => `{ run(id: "${decoy}", ${n}: 1) { id } }`,
    (n: string) => `{ runs(${n}: "x") { edges { cursor } } }`,
    (n: string) => `mutation { createRun(input: { project: "${P}" }, ${n}: true) { id } }`,
    (n: string) => `mutation { heartbeat(id: "${decoy}", ${n}: 1) { id } }`,
  ];
  const arb = fc.record({
    name: unknownName,
    kind: fc.constantFrom('input-variables', 'input-literal', 'selection', 'argument'),
    target: fc.constantFrom(...objectSlots),
    selection: fc.constantFrom(...selections),
    argument: fc.constantFrom(...args),
    value: fc.oneof(fc.integer(), small, fc.boolean()),
  });
  return draw(arb, count).map(({ name, kind, target, selection, argument, value }): OpCase => {
    if (kind === 'selection' || kind === 'argument') {
      return {
        label: `unknown ${kind} ${name}`,
        query: (kind === 'selection' ? selection : argument)(name),
        echoes: [name],
        refusal: refused(400, 'GRAPHQL_VALIDATION_FAILED'),
      };
    }
    const { op, s } = target;
    const form = kind === 'input-variables' ? 'variables' : 'literal';
    const vars = op.base();
    const base = s.path.reduce<unknown>((node, key) => (node as Vars)[key], vars);
    setAt(vars, s.path, { ...(base as Vars), [name]: value });
    return {
      label: `${op.name} ${pathString(s.path)}.${name} (${form})`,
      ...document(op, vars, form),
      echoes: [name],
      refusal: refused(400, 'BAD_USER_INPUT', { under: String(s.path[0]) }),
    };
  });
}

const aliases = (count: number, field: (i: number) => string) =>
  Array.from({ length: count }, (_, i) => `a${i}: ${field(i)}`).join(' ');

/** Depth, aliases, directives, tokens, and literals nested past the parser's stack. */
function shapeCases(scale: number): OpCase[] {
  const cases: OpCase[] = [];
  const run = t.measure[1]!;
  const depthTemplates = [
    (d: number) => `{ run(id: "${run}") { ${'upstreams { '.repeat(d)}id${' }'.repeat(d)} } }`,
    (d: number) =>
      `mutation { createRun(input: { project: "${P}", name: "deep" }) { ${'downstreams { '.repeat(d)}id${' }'.repeat(d)} } }`,
    (d: number) =>
      `{ statusChanges { edges { node { ${'run { statusHistory { edges { node { '.repeat(d)}to${' } } } }'.repeat(d)} } } } }`,
  ];
  for (const [i, d] of draw(fc.integer({ min: 13, max: 60 }), 5 * scale).entries()) {
    const template = i % depthTemplates.length;
    cases.push({
      label: `selection depth ${d}`,
      query: depthTemplates[template]!(d),
      // The third template nests 4 fields (8 AST levels) per level: from 49 levels on (AST
      // depth 11 + 8d > 400) the parser's nesting limit (parser-limits.ts) refuses it first.
      refusal:
        template === 2 && 11 + 8 * d > 400
          ? refused(400, 'BAD_USER_INPUT', { message: NESTED, one: true })
          : refused(400, 'LIMIT_EXCEEDED', { limit: 'depth' }),
    });
  }
  // Thousands of nested inline fragments: refused for depth, or by the parser's own limit
  // (which of the two overflows first depends on how warm the JIT is).
  for (const [i, d] of draw(fc.integer({ min: 1500, max: 3600 }), 3 * scale).entries()) {
    const fragments = (type: string, leaf: string) =>
      `${`... on ${type} { `.repeat(d)}${leaf}${' }'.repeat(d)}`;
    cases.push({
      label: `${d} nested inline fragments`,
      query:
        i % 2 === 0
          ? `{ viewer { ${fragments('Viewer', 'name')} } }`
          : `mutation { createRun(input: { project: "${P}", name: "fragments" }) { ${fragments('Run', 'id')} } }`,
      refusal: either(
        refused(400, 'LIMIT_EXCEEDED', { limit: 'depth', one: true }),
        refused(400, 'BAD_USER_INPUT', { message: NESTED, one: true }),
      ),
    });
  }
  const literalTemplates = [
    (d: number) =>
      `mutation { createRun(input: { project: "${P}", meta: { a: ${'['.repeat(d)}1${']'.repeat(d)} } }) { id } }`,
    (d: number) =>
      `mutation { createRun(input: { project: "${P}", name: "nested ${d}", meta: { a: ${'{ b: '.repeat(4800)}1${' }'.repeat(4800)} } }) { id } }`,
    (d: number) =>
      `{ runs(filter: { tags: ${'['.repeat(d)}"a"${']'.repeat(d)} }) { edges { cursor } } }`,
    (d: number) =>
      `mutation { transitionRuns(inputs: ${'['.repeat(d)}{ id: "${run}", to: RUNNING }${']'.repeat(d)}) { __typename } }`,
    (d: number) =>
      `{ statusChanges(filter: { projects: ${'['.repeat(d)}"x"${']'.repeat(d)} }) { edges { cursor } } }`,
  ];
  // Usually the parser's stack gives out first ("nested too deeply"); when the JIT has made it
  // lean enough to parse, validation refuses the value instead. Either way: 400, BAD_USER_INPUT.
  for (const [i, d] of draw(fc.integer({ min: 5000, max: 9000 }), 5 * scale).entries()) {
    cases.push({
      label: `literal nested ${d} deep (${i % literalTemplates.length})`,
      query: literalTemplates[i % literalTemplates.length]!(d),
      refusal: refused(400, 'BAD_USER_INPUT'),
    });
  }
  const aliasTemplates = [
    () => 'viewer { name }',
    (i: number) => `createRun(input: { project: "${P}", name: "alias flood ${i}" }) { id }`,
    () => 'lifecycle { statuses { status } }',
  ];
  for (const [i, n] of draw(fc.integer({ min: 31, max: 400 }), 4 * scale).entries()) {
    const template = aliasTemplates[i % aliasTemplates.length]!;
    const mutation = i % aliasTemplates.length === 1;
    cases.push({
      label: `${n} aliases (${i % aliasTemplates.length})`,
      query: `${mutation ? 'mutation ' : ''}{ ${aliases(n, template)} }`,
      refusal: refused(400, 'LIMIT_EXCEEDED', { limit: 'aliases' }),
    });
  }
  // graphql-armor allow-lists __typename: a flood of it is cheap, and answered.
  for (const n of draw(fc.integer({ min: 31, max: 400 }), scale)) {
    cases.push({
      label: `${n} aliases of __typename`,
      query: `{ ${aliases(n, () => '__typename')} }`,
      valid: (data) => same(Object.keys(data).length, n, 'aliased __typename'),
    });
  }
  for (const [i, n] of draw(fc.integer({ min: 51, max: 400 }), 2 * scale).entries()) {
    cases.push({
      label: `${n} directives`,
      query:
        i % 2 === 0
          ? `{ viewer { ${'name @include(if: true) '.repeat(n)} } }`
          : `mutation { createRun(input: { project: "${P}", name: "directives" }) { ${'id @skip(if: false) '.repeat(n)} } }`,
      refusal: refused(400, 'LIMIT_EXCEEDED', { limit: 'directives' }),
    });
  }
  for (const [i, n] of draw(fc.integer({ min: 20_001, max: 60_000 }), 2 * scale).entries()) {
    cases.push({
      label: `${n} tokens`,
      query:
        i % 2 === 0
          ? `{ ${'__typename '.repeat(n)} }`
          : `mutation { createRun(input: { project: "${P}", tags: [${'"t" '.repeat(n)}] }) { id } }`,
      refusal: refused(400, 'LIMIT_EXCEEDED', { limit: 'tokens', one: true }),
    });
  }
  return cases;
}

function isSyntaxError(query: string): boolean {
  if (query.trim() === '') return false;
  try {
    parse(query);
    return false;
  } catch (error) {
    return (error as Error).message.startsWith('Syntax Error');
  }
}

/** Valid documents with one thing broken, so that they no longer parse. */
function syntaxErrors(count: number): string[] {
  const bases = [
    `{ viewer { name role } }`,
    `mutation { createRun(input: { project: "${P}", name: "syntax" }) { id } }`,
    `query($id: ID!) { run(id: $id) { id status } }`,
    `{ runs(first: 2, filter: { project: "${P}" }) { edges { cursor node { id } } } }`,
    `mutation { transitionRun(input: { id: "${t.decoy[0]}", to: RUNNING }) { __typename } }`,
  ];
  const corrupted = fc
    .record({
      base: fc.constantFrom(...bases),
      at: fc.nat(),
      kind: fc.constantFrom('cut', 'insert', 'replace'),
      junk: fc.constantFrom(...'{}()[:$@!"=&|`'.split(''), '...', '\\u'),
    })
    .map(({ base, at, kind, junk }) => {
      const i = at % base.length;
      if (kind === 'cut') return base.slice(0, i);
      return base.slice(0, i) + junk + base.slice(kind === 'insert' ? i : i + 1);
    })
    .filter(isSyntaxError);
  return draw(corrupted, count);
}

/** Documents that do not parse, operations that cannot be picked, cursors and ids of SQL. */
function documentCases(count: number): OpCase[] {
  const cases: OpCase[] = syntaxErrors(count).map((query) => ({
    label: `syntax error: ${query.slice(0, 60)}`,
    query,
    refusal: refused(400, 'GRAPHQL_PARSE_FAILED', { one: true }),
  }));
  const twoOperations = `query A { viewer { name } } mutation B { createRun(input: { project: "${P}", name: "opname" }) { id } }`;
  const names = draw(
    fc.option(
      unknownName.map((n) => `Op${n}`),
      { nil: undefined },
    ),
    Math.ceil(count / 3),
  );
  for (const operationName of names) {
    cases.push({
      label: `operationName ${String(operationName)} of A, B`,
      query: twoOperations,
      operationName,
      refusal: refused(400, 'OPERATION_RESOLUTION_FAILURE', { one: true }),
    });
  }
  const runs = ops().filter((o) => ['runs', 'statusChanges', 'run'].includes(o.name));
  for (const [i, cursor] of draw(sqlText, Math.ceil(count / 2)).entries()) {
    const op = runs[i % runs.length]!;
    cases.push({
      label: `${op.name} after = SQL`,
      ...document(op, setAt(op.base(), ['after'], cursor), 'variables'),
      refusal: refused(200, 'BAD_USER_INPUT', { field: 'after', one: true }),
    });
  }
  const idSlots = ops().flatMap((op) =>
    op.slots.filter((s) => s.type === 'ID').map((s) => ({ op, s })),
  );
  for (const [i, id] of draw(sqlText, Math.ceil(count / 2)).entries()) {
    const { op, s } = idSlots[i % idSlots.length]!;
    const field = pathString(s.path);
    cases.push({
      label: `${op.name} ${field} = SQL`,
      ...document(op, setAt(op.base(), s.path, id), 'variables'),
      refusal: refused(200, 'BAD_USER_INPUT', { field, one: true }),
    });
  }
  return cases;
}

/**
 * The same bad documents over WebSocket first, then over HTTP: the HTTP answer must not depend
 * on what came before (yoga caches parse errors by document text, for both transports).
 */
function crossCases(): OpCase[] {
  return syntaxErrors(4).map((query, i) => ({
    label: `syntax error: ${query.slice(0, 50)}`,
    query: `# cross ${i}\n${query}`,
    refusal: refused(400, 'GRAPHQL_PARSE_FAILED', { one: true }),
  }));
}

async function crossTransport(conn: Conn): Promise<void> {
  for (const [i, c] of crossCases().entries()) {
    await runWsOperation(conn, { ...c, label: `${c.label} (over WebSocket first)` }, `x${i}`, true);
    await sendHttp(httpOf({ ...c, label: `${c.label} (over HTTP after WebSocket)` }));
  }
}

// ---------------------------------------------------------------------------------------------
// Hostile HTTP requests that are not (only) a GraphQL operation

function createBody(name: string, selection = 'id'): string {
  return JSON.stringify({
    query: `mutation($input: CreateRunInput!) { createRun(input: $input) { ${selection} } }`,
    variables: { input: { project: P, name } },
  });
}

const INVALID_JSON = {
  errors: [
    {
      message: 'POST body sent invalid JSON.',
      extensions: { code: 'BAD_REQUEST', originalError: { name: 'SyntaxError' } },
    },
  ],
};

function invalidJson(reply: Reply): string | null {
  if (reply.status !== 400) return `status ${reply.status}`;
  const error = reply.body?.errors?.[0];
  const original = error?.extensions?.['originalError'] as Vars | undefined;
  if (reply.body?.errors?.length !== 1 || typeof original?.['message'] !== 'string') {
    return 'not exactly one error with the JSON parser message';
  }
  const { message: _, ...rest } = original;
  return isDeepStrictEqual(
    {
      ...reply.body,
      errors: [{ ...error, extensions: { ...error!.extensions, originalError: rest } }],
    },
    INVALID_JSON,
  )
    ? null
    : 'not the invalid JSON answer';
}

const badRequest = (message: RegExp) => (reply: Reply) => {
  if (reply.status !== 400) return `status ${reply.status}`;
  const errors = reply.body?.errors ?? [];
  if (errors.length !== 1 || errors[0]!.extensions?.['code'] !== 'BAD_REQUEST')
    return 'not one BAD_REQUEST';
  return message.test(errors[0]!.message) ? null : `message ${errors[0]!.message}`;
};

const BAD_UTF8 = [
  [0xff],
  [0xfe],
  [0xc0, 0xaf],
  [0xed, 0xa0, 0x80],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
  [0x80],
  [0xe2, 0x82],
  [0xf4, 0x90, 0x80, 0x80],
  [0xc3, 0x28],
];

function httpOnlyCases(): HttpCase[] {
  const cases: HttpCase[] = [];
  const limit = DEFAULT_LIMITS.maxBodyBytes;
  const base = createBody('refused: invalid JSON');

  // Invalid JSON: a createRun body, broken.
  const broken = fc
    .record({
      at: fc.nat(),
      kind: fc.constantFrom('cut', 'insert', 'replace', 'append', 'prefix'),
      junk: fc.constantFrom(
        '{',
        '}',
        '[',
        ']',
        ',',
        ':',
        '"',
        "'",
        '\\',
        'NaN',
        'undefined',
        '//',
        '\ufeff',
        'Infinity',
        ' x',
      ),
    })
    .map(({ at, kind, junk }) => {
      const i = at % base.length;
      if (kind === 'cut') return base.slice(0, i);
      if (kind === 'append') return base + junk;
      if (kind === 'prefix') return junk + base;
      return base.slice(0, i) + junk + base.slice(kind === 'insert' ? i : i + 1);
    })
    .filter((body) => {
      if (body.trim() === '') return false;
      try {
        JSON.parse(body);
        return false;
      } catch {
        return true;
      }
    });
  for (const body of draw(broken, 30)) {
    cases.push({ label: `invalid JSON ${body.slice(0, 50)}`, body, sent: [], check: invalidJson });
  }

  // Valid JSON that is not a GraphQL request.
  const shapes = fc
    .jsonValue({ maxDepth: 2 })
    .filter((v) => !(v !== null && typeof v === 'object' && !Array.isArray(v) && 'query' in v));
  for (const value of draw(shapes, 15)) {
    const body = JSON.stringify(value);
    cases.push({
      label: `JSON body ${body.slice(0, 50)}`,
      body,
      sent: stringsOf(value),
      check: badRequest(
        /^(POST body is expected to be object but received \w+|Unexpected parameter ".*" in the request body\.|Must provide query string\.|Expected "\w+" param to be .*|Batching is not supported\.)$/s,
      ),
    });
  }
  for (const name of draw(
    unknownName.filter((n) => !['variables', 'extensions'].includes(n)),
    6,
  )) {
    const body = JSON.stringify({ ...(JSON.parse(base) as Vars), [name]: 1 });
    cases.push({
      label: `unknown body parameter ${name}`,
      body,
      sent: [name],
      check: exactly(400, {
        errors: [
          {
            message: `Unexpected parameter "${name}" in the request body.`,
            extensions: { code: 'BAD_REQUEST' },
          },
        ],
      }),
    });
  }

  // Invalid UTF-8: inside a string value it is decoded as U+FFFD (the fetch standard's lossy
  // decoding) and stored as such; in the document or the JSON structure it is refused.
  const utf8 = fc.record({
    where: fc.constantFrom('string', 'string', 'document', 'json'),
    bytes: fc.array(fc.constantFrom(...BAD_UTF8), { minLength: 1, maxLength: 4 }),
    text: fc.stringMatching(/^[a-z ]{0,8}$/),
  });
  for (const { where, bytes, text } of draw(utf8, 24)) {
    const bad = Buffer.from(bytes.flat());
    const label = `invalid UTF-8 ${bad.toString('hex')} in the ${where}`;
    if (where === 'string') {
      const name = `utf8 ${text}`;
      const [before, after] = createBody(`${name}\u0001`, RUN_SELECTION).split('\\u0001');
      const decoded = new TextDecoder().decode(Buffer.concat([Buffer.from(name), bad]));
      const input = { project: P, name: decoded };
      cases.push({
        label,
        body: Buffer.concat([Buffer.from(before!), bad, Buffer.from(after!)]),
        sent: [decoded],
        hostile: true,
        valid: (data) => recordCreated(input, data['createRun'] as Vars),
      });
    } else if (where === 'document') {
      const body = Buffer.concat([
        Buffer.from(`{"query":"mutation { createRun(input: { project: \\"${P}\\" }) { id `),
        bad,
        Buffer.from(` } }"}`),
      ]);
      cases.push({
        label,
        body,
        sent: [],
        check: (reply) =>
          graphqlRefusal(reply, refused(400, 'GRAPHQL_PARSE_FAILED', { one: true })),
      });
    } else {
      const body = Buffer.concat([
        Buffer.from('{"query":'),
        bad,
        Buffer.from(base.slice('{"query":'.length)),
      ]);
      cases.push({ label, body, sent: [], check: invalidJson });
    }
  }

  // Bodies over the limit (413, unread), around it, and without a length (411).
  const over = (status: number, message: string) =>
    exactly(status, {
      errors: [{ message, extensions: { code: 'LIMIT_EXCEEDED', limit: 'bodyBytes', max: limit } }],
    });
  for (const size of draw(fc.integer({ min: limit + 1, max: limit + 600_000 }), 8)) {
    const padding = size - createBody('').length;
    cases.push({
      label: `a ${size}-byte body`,
      body: createBody('b'.repeat(padding)),
      sent: [],
      check: over(413, `the request body is larger than ${limit} bytes`),
    });
  }
  for (const delta of [-1, 0, 1, 2]) {
    const query = JSON.stringify({ query: '{ __typename }' });
    const body = query + ' '.repeat(limit + delta - query.length);
    cases.push(
      delta <= 0
        ? {
            label: `a body of limit ${delta} bytes`,
            body,
            sent: [],
            valid: (data) => same(data, { __typename: 'Query' }, 'the answer'),
          }
        : {
            label: `a body of limit + ${delta} bytes`,
            body,
            sent: [],
            check: over(413, `the request body is larger than ${limit} bytes`),
          },
    );
  }
  for (const name of draw(fc.stringMatching(/^[a-z]{1,10}$/), 4)) {
    cases.push({
      label: `a chunked body (${name})`,
      body: createBody(`refused with 411: ${name}`),
      chunked: true,
      sent: [name],
      check: over(411, 'send the request body with a Content-Length header'),
    });
  }

  // Tokens that are not valid: 401, and nothing runs.
  const printable = fc.string({
    unit: fc.constantFrom(...Array.from({ length: 94 }, (_, i) => String.fromCharCode(33 + i))),
    minLength: 1,
    maxLength: 60,
  });
  const auth = fc.oneof(
    fc.constant(null),
    printable.map((s) => `Bearer ${s}`),
    printable.map((s) => `Bearer rst_${s}`),
    printable.map((s) => `Basic ${s}`),
    fc.constantFrom(
      'Bearer',
      'bearer ',
      `Bearer ${TEST_ADMIN_TOKEN}x`,
      `Bearer ${TEST_ADMIN_TOKEN.slice(0, -1)}`,
      `Bearer ${TEST_ADMIN_TOKEN} extra`,
      `Bearer ${'a'.repeat(201)}`,
      `Token ${TEST_ADMIN_TOKEN}`,
    ),
    printable,
  );
  for (const header of draw(auth, 20)) {
    cases.push({
      label: `authorization ${String(header).slice(0, 40)}`,
      auth: header,
      body: createBody(`refused with 401: ${String(header).slice(0, 40)}`),
      sent: [],
      check: (reply) => {
        if (reply.status !== 401) return `status ${reply.status}`;
        if (reply.headers['www-authenticate'] !== 'Bearer realm="runstate"')
          return 'no WWW-Authenticate';
        return graphqlRefusal(reply, refused(401, 'UNAUTHENTICATED', { one: true }));
      },
    });
  }

  // Methods, content types and Accept headers yoga does not serve.
  const onlyGetPost = {
    errors: [
      {
        message: 'GraphQL only supports GET and POST requests.',
        extensions: { code: 'BAD_REQUEST' },
      },
    ],
  };
  for (const method of draw(fc.constantFrom('PUT', 'DELETE', 'PATCH'), 6)) {
    cases.push({
      label: `${method}`,
      method,
      body: createBody(`refused with 405: ${method}`),
      sent: [],
      check: exactly(405, onlyGetPost, { allow: 'GET, POST' }),
    });
  }
  for (const name of draw(fc.stringMatching(/^[a-z]{1,8}$/), 5)) {
    const query = `mutation { createRun(input: { project: "${P}", name: "refused with 405: GET ${name}" }) { id } }`;
    cases.push({
      label: `GET mutation ${name}`,
      method: 'GET',
      search: `?query=${encodeURIComponent(query)}`,
      sent: [name],
      check: exactly(405, {
        errors: [
          {
            message: 'Can only perform a mutation operation from a POST request.',
            extensions: { code: 'BAD_REQUEST' },
          },
        ],
      }),
    });
  }
  for (const contentType of draw(
    fc.constantFrom(
      'text/plain',
      'application/xml',
      'text/html',
      'image/png',
      'application/octet-stream',
    ),
    8,
  )) {
    cases.push({
      label: `content-type ${contentType}`,
      contentType,
      body: createBody(`refused with 415: ${contentType}`),
      sent: [],
      check: exactly(415, ''),
    });
  }
  for (const accept of draw(fc.constantFrom('text/html', 'image/png', 'application/xml'), 3)) {
    cases.push({
      label: `accept ${accept}`,
      accept,
      body: createBody(`refused with 406: Accept ${accept}`),
      sent: [],
      check: exactly(406, ''),
    });
  }
  for (const boundary of draw(fc.stringMatching(/^[a-z0-9]{4,12}$/), 3)) {
    cases.push({
      label: `multipart/form-data (${boundary})`,
      contentType: `multipart/form-data; boundary=${boundary}`,
      body: `--${boundary}\r\nContent-Disposition: form-data; name="x"\r\n\r\n${base}\r\n--${boundary}--\r\n`,
      sent: [],
      // No file uploads: multipart is an unsupported content type, like any other.
      check: exactly(415, ''),
    });
  }
  return cases;
}

// ---------------------------------------------------------------------------------------------
// Hostile WebSocket messages

const FORBIDDEN = { code: 4403, reason: 'Forbidden' };
const BAD_REQUEST = { code: 4400, reason: 'Invalid message received' };
const MESSAGE_TYPES = new Set([
  'connection_init',
  'connection_ack',
  'ping',
  'pong',
  'subscribe',
  'next',
  'error',
  'complete',
]);

function isMessage(text: string): boolean {
  try {
    const value = JSON.parse(text) as unknown;
    return value !== null && typeof value === 'object' && 'type' in value;
  } catch {
    return false;
  }
}

function wsCases(): WsCase[] {
  const cases: WsCase[] = [];
  const subscribe = (id: unknown, payload: unknown) =>
    JSON.stringify({ id, type: 'subscribe', payload });
  const frame = (value: unknown) => JSON.stringify(value);
  const add = (
    label: string,
    frames: (string | Buffer)[],
    close: WsCase['close'],
    more: Partial<WsCase> = {},
  ) =>
    cases.push({
      label,
      init: true,
      frames,
      close,
      sent: frames.filter((f) => typeof f === 'string'),
      ...more,
    });

  for (const text of draw(
    fc.string({ minLength: 1, maxLength: 200 }).filter((s) => !isMessage(s)),
    15,
  )) {
    add(`text ${JSON.stringify(text).slice(0, 30)}`, [text], BAD_REQUEST);
  }
  for (const bytes of draw(fc.uint8Array({ minLength: 1, maxLength: 300 }), 12)) {
    const buffer = Buffer.from(bytes);
    if (!isMessage(String(buffer)))
      add(`binary ${buffer.toString('hex').slice(0, 20)}`, [buffer], BAD_REQUEST);
  }
  const noType = fc.oneof(
    fc
      .dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 1 }))
      .filter((o) => !('type' in o)),
    fc
      .jsonValue({ maxDepth: 2 })
      .filter((v) => v === null || typeof v !== 'object' || Array.isArray(v)),
  );
  for (const value of draw(noType, 14))
    add(`no type: ${frame(value).slice(0, 30)}`, [frame(value)], BAD_REQUEST);
  const unknownType = fc.record({
    type: fc.oneof(
      fc.string({ maxLength: 20 }).filter((s) => !MESSAGE_TYPES.has(s)),
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
      fc.constantFrom('Subscribe', 'CONNECTION_INIT', 'start', 'connection_terminate', 'stop'),
    ),
    id: fc.string({ maxLength: 5 }),
    payload: fc.jsonValue({ maxDepth: 1 }),
  });
  for (const value of draw(unknownType, 14))
    add(`type ${JSON.stringify(value.type)}`, [frame(value)], BAD_REQUEST);

  const query = (i: number) => ({ query: `{ viewer { name } }`, variables: { i } });
  for (let i = 0; i < 8; i++) {
    add(
      `subscribe before connection_init ${i}`,
      [subscribe(`early${i}`, query(i))],
      { code: 4401, reason: 'Unauthorized' },
      { init: false },
    );
  }
  const ids = fc.oneof(
    fc.string({ minLength: 1, maxLength: 8 }),
    fc.string({ minLength: 90, maxLength: 400 }),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 }),
  );
  for (const id of draw(ids, 12)) {
    const live = {
      query: 'subscription($p: [String!]) { statusChanged(filter: { projects: $p }) { cursor } }',
      variables: { p: [`${P}-dup`] },
    };
    // Ids over 64 characters are refused outright (graphql-ws would echo them in a close
    // reason, which must fit 123 bytes); a shorter duplicate is graphql-ws's 4409.
    add(
      `duplicate id of ${id.length} characters`,
      [subscribe(id, live), subscribe(id, query(0))],
      id.length > 64 ? BAD_REQUEST : { code: 4409, reason: `Subscriber for ${id} already exists` },
    );
  }
  for (const payload of draw(
    fc.oneof(fc.string({ maxLength: 10 }), fc.integer(), fc.boolean(), fc.constant(null), someInts),
    10,
  )) {
    add(`subscribe payload ${JSON.stringify(payload)}`, [subscribe('p', payload)], BAD_REQUEST);
  }
  const badPayloads = [
    ...draw(fc.oneof(fc.integer(), fc.boolean(), anObject, someInts), 5).map((q) => ({ query: q })),
    ...draw(fc.oneof(small, fc.integer(), someInts), 5).map((v) => ({
      query: '{ __typename }',
      variables: v,
    })),
    ...draw(fc.oneof(fc.integer(), fc.boolean(), anObject), 3).map((o) => ({
      query: '{ __typename }',
      operationName: o,
    })),
    ...draw(fc.oneof(small, fc.integer(), someInts), 3).map((x) => ({
      query: '{ __typename }',
      extensions: x,
    })),
  ];
  for (const payload of badPayloads)
    add(
      `subscribe payload ${JSON.stringify(payload).slice(0, 40)}`,
      [subscribe('q', payload)],
      BAD_REQUEST,
    );
  for (const id of ['', 5, null, {}, []])
    add(`subscribe id ${JSON.stringify(id)}`, [subscribe(id, query(0))], BAD_REQUEST);
  for (let i = 0; i < 4; i++) {
    add(
      `connection_init twice ${i}`,
      [frame({ type: 'connection_init', payload: { token: TEST_ADMIN_TOKEN, i } })],
      { code: 4429, reason: 'Too many initialisation requests' },
    );
  }
  for (const payload of draw(fc.oneof(small, fc.integer(), fc.boolean(), someInts), 5)) {
    add(
      `connection_init payload ${JSON.stringify(payload)}`,
      [frame({ type: 'connection_init', payload })],
      BAD_REQUEST,
      { init: false },
    );
  }
  const printable = fc.string({ minLength: 1, maxLength: 80 });
  const tokens = fc.oneof(
    printable.map((s) => ({ token: s })),
    printable.map((s) => ({ token: `rst_${s}` })),
    printable.map((s) => ({ authorization: `Bearer ${s}` })),
    printable.map((s) => ({ authorization: `Basic ${s}` })),
    fc.constantFrom<unknown>(
      {},
      null,
      { token: 5 },
      { token: `${TEST_ADMIN_TOKEN}x` },
      { token: 'x'.repeat(201) },
      { Authorization: TEST_ADMIN_TOKEN },
      { token: '' },
    ),
  );
  for (const payload of draw(tokens, 14)) {
    add(
      `connection_init ${JSON.stringify(payload).slice(0, 40)}`,
      [frame({ type: 'connection_init', payload })],
      FORBIDDEN,
      { init: false },
    );
  }
  for (const payload of ['x', 5, [1]])
    add(`ping payload ${JSON.stringify(payload)}`, [frame({ type: 'ping', payload })], BAD_REQUEST);
  for (const payload of ['x', [1]])
    add(`pong payload ${JSON.stringify(payload)}`, [frame({ type: 'pong', payload })], BAD_REQUEST);
  for (const id of [undefined, '', 5])
    add(`complete id ${JSON.stringify(id)}`, [frame({ type: 'complete', id })], BAD_REQUEST);
  add(
    'no subprotocol',
    [],
    { code: 4406, reason: 'Subprotocol not acceptable' },
    { protocol: null, init: false },
  );
  add(
    'no subprotocol, then a subscribe',
    [subscribe('x', query(0))],
    { code: 4406, reason: 'Subprotocol not acceptable' },
    { protocol: null, init: false },
  );
  for (const id of draw(fc.string({ minLength: 1, maxLength: 20 }), 4)) {
    add(`complete of unknown id ${JSON.stringify(id)}`, [frame({ type: 'complete', id })], null);
  }
  for (const size of draw(fc.integer({ min: 1_000, max: 300_000 }), 6)) {
    const id = 'i'.repeat(size);
    add(`an id of ${size} characters`, [subscribe(id, { query: '{ __typename }' })], BAD_REQUEST);
  }
  return cases;
}

/** Messages only a server may send (next, error, connection_ack), sent by a client. */
function serverMessageCases(): WsCase[] {
  const messages = [
    { type: 'next', id: '1', payload: { data: {} } },
    { type: 'error', id: '1', payload: [{ message: 'x' }] },
    { type: 'connection_ack' },
    ...draw(
      fc.record({
        type: fc.constant('next'),
        id: fc.string({ minLength: 1, maxLength: 5 }),
        payload: anObject,
      }),
      2,
    ),
    ...draw(fc.record({ type: fc.constant('connection_ack'), payload: anObject }), 1),
  ];
  return messages.map((m) => ({
    label: `a client's ${m.type}`,
    init: true,
    frames: [JSON.stringify(m)],
    close: BAD_REQUEST,
    sent: [JSON.stringify(m)],
  }));
}

// ---------------------------------------------------------------------------------------------
// The storm

let quiet: Recorder<{ statusChanged: { runId: string; to: string } }>;
let quietEnded = false;
let quietRun: string;
let sqlFeed: Recorder<{ statusChanged: Change }>;
let seriesFeed: Recorder<{
  measurementRecorded: { name: string; value: number; step: number | null };
}>;
let opSockets: Conn[] = [];
let elapsed = 0;

async function lastCursor(project: string): Promise<string> {
  const data = await must({
    label: `cursor of ${project}`,
    query: `query($p: [String!]) { statusChanges(filter: { projects: $p }, first: 500) { edges { cursor } } }`,
    variables: { p: [project] },
  });
  const edges = (data['statusChanges'] as { edges: { cursor: string }[] }).edges;
  return edges.at(-1)!.cursor;
}

async function setup(): Promise<void> {
  P = uniqueProject('fuzz');
  PS = `${P}/'; DROP TABLE runs; --`;
  TP = `${uniqueProject('fuzztok')}:`;
  sqlPool = draw(sqlText, 500);

  // The unrelated subscription, opened first and left alone until the end.
  const Q = uniqueProject('fuzzquiet');
  const quietData = await must({
    label: 'quiet run',
    query: `mutation($p: String!) { createRun(input: { project: $p }) { id } }`,
    variables: { p: Q },
  });
  quietRun = (quietData['createRun'] as Vars)['id'] as string;
  quiet = record(
    server.wsClient(),
    `subscription($p: [String!], $after: String) { statusChanged(filter: { projects: $p }, after: $after) { runId to } }`,
    { p: [Q], after: await lastCursor(Q) },
  );
  void quiet.ended.then(() => (quietEnded = true));

  const create = async (project: string, count: number) => {
    const ids: string[] = [];
    await pool(
      Array.from({ length: count }, () => createCase(project)),
      10,
      async (c) => {
        ids.push(((await must(c))['createRun'] as Vars)['id'] as string);
      },
    );
    return ids.sort();
  };
  t = {
    transition: await create(PS, 6),
    decoy: await create(P, 2),
    progress: await create(P, 10),
    measure: await create(P, 3),
    stop: await create(P, 4),
    retry: await create(P, 3),
    resume: await create(P, 3),
    heartbeat: await create(P, 2),
    decoyTokens: [],
    revokeTokens: [],
    seriesA: nextSql(),
    seriesB: nextSql(),
  };
  for (const id of t.retry) {
    const data = await must(transitionCase(id, 'FAILED'));
    same((data['transitionRun'] as Vars)['__typename'], 'TransitionAccepted', 'FAILED');
  }
  for (const id of t.resume) await must(commandCase('stopRun', id));
  for (let i = 0; i < 5; i++) {
    const data = await must(tokenCase());
    const id = ((data['createApiToken'] as Vars)['apiToken'] as Vars)['id'] as string;
    (i < 2 ? t.decoyTokens : t.revokeTokens).push(id);
  }

  // Subscriptions whose filters are SQL-looking: they must deliver exactly what matches.
  sqlFeed = record(
    server.wsClient(),
    `subscription($p: [String!], $after: String) { statusChanged(filter: { projects: $p }, after: $after) { runId version from to reason message } }`,
    { p: [PS], after: await lastCursor(PS) },
  );
  // A third series, also in the filter, tells when the subscription is live; only the points of
  // the SQL-looking series A and B are compared.
  const warmUp = `${P}:warm-up`;
  seriesFeed = record(
    server.wsClient(),
    `subscription($id: ID!, $names: [String!]) { measurementRecorded(runId: $id, names: $names) { name value step } }`,
    { id: t.measure[0], names: [t.seriesA, t.seriesB, warmUp] },
  );
  const measured = t.measure[0]!;
  for (let i = 0; seriesFeed.values.length === 0; i++) {
    if (i === 100) throw new Error('measurementRecorded never went live');
    const point = { runId: measured, name: warmUp, value: i, step: null, at: null };
    await must(measureCase(measured, [point]));
    await sleep(50);
  }

  opSockets = await Promise.all(Array.from({ length: 4 }, () => openSocket()));
  for (const conn of opSockets) if (!(await initSocket(conn))) throw new Error('no ack');
}

async function storm(): Promise<void> {
  const started = Date.now();
  const before = { ...counts };
  const httpCases: HttpCase[] = [
    ...wrongTypeCases(2, 'variables').map(httpOf),
    ...wrongTypeCases(1, 'literal').map(httpOf),
    ...numberCases(40).map(httpOf),
    ...hugeCases(30).map(httpOf),
    ...unknownCases(30).map(httpOf),
    ...shapeCases(3).map(httpOf),
    ...documentCases(24).map(httpOf),
    ...httpOnlyCases(),
    ...validStormCases().map(httpOf),
  ];
  // Interleave the valid requests with the hostile ones (deterministically).
  const keys = draw(
    fc.array(fc.nat(), { minLength: httpCases.length, maxLength: httpCases.length }),
    1,
  )[0]!;
  const order = httpCases.map((c, i) => ({ c, key: keys[i]! })).sort((a, b) => a.key - b.key);

  const wsOperations: OpCase[] = [
    ...draw(
      fc.shuffledSubarray(wrongTypeCases(1, 'variables'), { minLength: 30, maxLength: 30 }),
      1,
    )[0]!,
    ...draw(
      fc.shuffledSubarray(wrongTypeCases(1, 'literal'), { minLength: 10, maxLength: 10 }),
      1,
    )[0]!,
    ...numberCases(8),
    ...hugeCases(8),
    ...unknownCases(10),
    ...shapeCases(1),
    ...documentCases(8),
    ...Array.from({ length: 8 }, () => createCase(P)),
    ...t.transition.slice(0, 3).map((id, k) => transitionCase(id, MOVES[k]!)),
  ];
  const protocolCases = [...wsCases(), ...serverMessageCases()];

  let opId = 0;
  await Promise.all([
    pool(
      order.map((o) => o.c),
      20,
      sendHttp,
    ),
    pool(wsOperations, 12, (c) => {
      opId += 1;
      return runWsOperation(opSockets[opId % opSockets.length]!, c, `op${opId}`);
    }),
    pool(protocolCases, 10, runWsCase),
    crossTransport(opSockets[0]!),
  ]);
  elapsed = Date.now() - started;
  stormCounts = {
    httpHostile: counts.httpHostile - before.httpHostile,
    httpValid: counts.httpValid - before.httpValid,
    wsHostile: counts.wsHostile - before.wsHostile,
    wsValid: counts.wsValid - before.wsValid,
  };
}

// ---------------------------------------------------------------------------------------------
// The checks

const byKey = <T>(items: T[], key: (item: T) => string) =>
  [...items].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));

beforeAll(async () => {
  server = await startServer();
  await setup();
  await storm();
}, 120_000);

afterAll(async () => {
  for (const conn of opSockets) conn.socket.close();
  await server?.stop();
});

describe('a generated hostile corpus, over HTTP and WebSocket at once', () => {
  it('sends at least 400 hostile requests over HTTP and 100 over WebSocket, mixed with valid ones', () => {
    const { httpHostile, httpValid, wsHostile, wsValid } = stormCounts;
    console.info(
      `hostile-fuzz: HTTP ${httpHostile} hostile + ${httpValid} valid, ` +
        `WebSocket ${wsHostile} hostile + ${wsValid} valid, in ${elapsed} ms`,
    );
    expect(httpHostile).toBeGreaterThanOrEqual(400);
    expect(wsHostile).toBeGreaterThanOrEqual(100);
    expect(httpValid).toBeGreaterThanOrEqual(50);
    expect(wsValid).toBeGreaterThanOrEqual(10);
  });

  it('no HTTP answer is a 5xx', () => {
    expect(problems.http5xx).toEqual([]);
  });

  it('every refused HTTP request is answered as its kind calls for', () => {
    expect(problems.httpRefusals).toEqual([]);
  });

  it('every GraphQL error, on either transport, carries an extensions.code', () => {
    expect(problems.uncoded).toEqual([]);
  });

  it('a malformed WebSocket message closes only its socket, with the graphql-ws 44xx code', () => {
    expect(problems.wsProtocol).toEqual([]);
    for (const conn of opSockets) expect(conn.closed).toBeNull();
  });

  it('a refused WebSocket operation gets coded errors, and its socket stays open', () => {
    expect(problems.wsOperations).toEqual([]);
    for (const conn of opSockets) expect(conn.closed).toBeNull();
  });

  it('no answer leaks SQL, stack traces or file paths', () => {
    expect(problems.leaks).toEqual([]);
  });

  it('every valid request succeeded and echoed its SQL-looking strings verbatim', () => {
    expect(problems.valid).toEqual([]);
  });

  it('the database holds exactly what the valid requests wrote', async () => {
    const db = server.database.db;
    const runs = await queryRows<Vars>(
      db,
      sql`SELECT id, project, name, tags, meta, status, version, attempt, max_retries, progress,
            phase, stop_message, idempotency_key, cache_key, heartbeat_at IS NOT NULL AS heartbeat
          FROM runs WHERE starts_with(project, ${P})`,
    );
    const changes = await queryRows<Vars>(
      db,
      sql`SELECT run_id, version, from_status, to_status, reason, message
          FROM status_changes WHERE starts_with(project, ${P})`,
    );
    const points = await queryRows<Vars>(
      db,
      sql`SELECT m.run_id, m.name, m.value, m.step,
            (extract(epoch FROM m.at) * 1000)::float8 AS at
          FROM measurements m JOIN runs r ON r.id = m.run_id WHERE starts_with(r.project, ${P})`,
    );
    const tokens = await queryRows<Vars>(
      db,
      sql`SELECT id, name, role, projects, revoked_at IS NOT NULL AS revoked
          FROM api_tokens WHERE starts_with(name, ${TP})`,
    );

    const expectedRuns = [...ledger.runs.values()];
    expect(
      byKey(
        runs.map((r) => ({
          id: r['id'],
          project: r['project'],
          name: r['name'],
          tags: r['tags'],
          meta: typeof r['meta'] === 'string' ? JSON.parse(r['meta']) : r['meta'],
          idempotencyKey: r['idempotency_key'],
          cacheKey: r['cache_key'],
          maxRetries: r['max_retries'],
          progress: r['progress'],
          phase: r['phase'],
          status: r['status'],
          version: r['version'],
          attempt: r['attempt'],
          stopMessage: r['stop_message'],
          heartbeat: r['heartbeat'],
        })),
        (r) => r.id as string,
      ).map(plain),
    ).toEqual(byKey(expectedRuns, (r) => r.id).map(plain));

    const changeKey = (c: Change) => `${c.runId}:${String(c.version).padStart(6, '0')}`;
    expect(
      byKey(
        changes.map((c): Change => ({
          runId: c['run_id'] as string,
          version: c['version'] as number,
          from: c['from_status'] as string | null,
          to: c['to_status'] as string,
          reason: c['reason'] as string | null,
          message: c['message'] as string | null,
        })),
        changeKey,
      ),
    ).toEqual(byKey([...ledger.changes.values()], changeKey));

    const pointKey = (p: Point) => JSON.stringify([p.runId, p.name, p.value, p.step]);
    const given = (p: Point, at: unknown) => (p.at === null ? null : (at as number));
    expect(
      byKey(
        points.map((p) => {
          const point: Point = {
            runId: p['run_id'] as string,
            name: p['name'] as string,
            value: (p['value'] as number) + 0,
            step: p['step'] as number | null,
            at: null,
          };
          const sent = ledger.points.find((l) => pointKey(l) === pointKey(point) && l.at !== null);
          return { ...point, at: sent ? given(sent, p['at']) : null };
        }),
        pointKey,
      ),
    ).toEqual(
      byKey(
        ledger.points.map((p) => ({ ...p, value: p.value + 0 })),
        pointKey,
      ),
    );

    expect(
      byKey(
        tokens.map((k) => ({
          id: k['id'],
          name: k['name'],
          role: k['role'],
          projects: k['projects'],
          revoked: k['revoked'],
        })),
        (k) => k.id as string,
      ),
    ).toEqual(byKey([...ledger.tokens.values()], (k) => k.id));
  });

  it('SQL-looking strings read back and filter exactly, in queries and subscriptions', async () => {
    const readBack = `query($id: ID!) { run(id: $id) { ${RUN_SELECTION}
      statusHistory(first: 500) { edges { node { from to version reason message } } }
      measurements(first: 500) { edges { node { name value step } } } } }`;
    const mismatches: string[] = [];
    const check = (what: string, actual: unknown, expected: unknown) => {
      if (!isDeepStrictEqual(plain(actual), plain(expected))) {
        mismatches.push(
          `${what}: ${JSON.stringify(actual).slice(0, 300)} ≠ ${JSON.stringify(expected).slice(0, 300)}`,
        );
      }
    };
    const runs = [...ledger.runs.values()];
    await pool(runs, 20, async (run) => {
      const data = await must({
        label: `read back ${run.id}`,
        query: readBack,
        variables: { id: run.id },
      });
      const read = data['run'] as Vars & {
        statusHistory: { edges: { node: Vars }[] };
        measurements: { edges: { node: Vars }[] };
      };
      const { statusHistory, measurements, ...fields } = read;
      check(`run ${run.id}`, fields, {
        id: run.id,
        project: run.project,
        name: run.name,
        tags: run.tags,
        meta: run.meta,
        status: run.status,
        version: run.version,
        attempt: run.attempt,
        maxRetries: run.maxRetries,
        progress: run.progress,
        phase: run.phase,
        stopMessage: run.stopMessage,
        cacheKey: run.cacheKey,
      });
      const history = [...ledger.changes.values()]
        .filter((c) => c.runId === run.id)
        .sort((a, b) => a.version - b.version)
        .map(({ runId: _, ...c }) => c);
      check(
        `history of ${run.id}`,
        statusHistory.edges.map((e) => e.node),
        history,
      );
      const series = (list: Vars[]) => byKey(list.map(plain) as Vars[], (p) => JSON.stringify(p));
      check(
        `measurements of ${run.id}`,
        series(measurements.edges.map((e) => e.node)),
        series(
          ledger.points
            .filter((p) => p.runId === run.id)
            .map(({ name, value, step }) => ({ name, value, step })),
        ),
      );

      // Filters: its own tag + name find exactly it; a SQL-looking tag finds exactly its carriers.
      const ids = async (filter: Vars) => {
        const found = await must({
          label: `filter ${run.id}`,
          query: `query($filter: RunFilter) { runs(filter: $filter, first: 500) { edges { node { id } } } }`,
          variables: { filter },
        });
        return (found['runs'] as { edges: { node: { id: string } }[] }).edges
          .map((e) => e.node.id)
          .sort();
      };
      if (run.name !== null && run.tags.length > 0) {
        check(
          `name filter of ${run.id}`,
          await ids({ project: run.project, tags: [run.tags[0]], nameContains: run.name }),
          [run.id],
        );
        const tag = run.tags.at(-1)!;
        check(
          `tag filter ${tag}`,
          await ids({ project: run.project, tags: [tag] }),
          runs
            .filter((r) => r.project === run.project && r.tags.includes(tag))
            .map((r) => r.id)
            .sort(),
        );
      }
    });
    const projects = [...new Set(runs.map((r) => r.project))];
    await pool(projects, 20, async (project) => {
      const data = await must({
        label: `log of ${project}`,
        query: `query($p: [String!]) { statusChanges(filter: { projects: $p }, first: 500) { edges { node { runId version from to reason message run { project } } } } }`,
        variables: { p: [project] },
      });
      const inProject = new Set(runs.filter((r) => r.project === project).map((r) => r.id));
      const nodes = (data['statusChanges'] as { edges: { node: Vars }[] }).edges.map((e) => e.node);
      const outside = nodes.filter((n) => (n['run'] as Vars)['project'] !== project);
      check(`log of ${project}: changes of other projects`, outside, []);
      // Runs no valid request created are the database check's concern, not the filter's.
      const key = (c: Vars) => `${String(c['runId'])}:${String(c['version']).padStart(6, '0')}`;
      check(
        `log of ${project}`,
        byKey(
          nodes
            .filter((n) => inProject.has(n['runId'] as string))
            .map(({ run: _, ...change }) => change),
          key,
        ),
        byKey(
          [...ledger.changes.values()].filter((c) => inProject.has(c.runId)) as unknown as Vars[],
          key,
        ),
      );
    });
    for (const name of [t.seriesA, t.seriesB]) {
      const data = await must({
        label: `series ${name}`,
        query: `query($id: ID!, $names: [String!]) { run(id: $id) { measurements(names: $names, first: 500) { edges { node { name value step } } } } }`,
        variables: { id: t.measure[0], names: [name] },
      });
      const nodes = (
        data['run'] as { measurements: { edges: { node: Vars }[] } }
      ).measurements.edges.map((e) => e.node);
      const key = (p: Vars) => JSON.stringify(plain(p));
      check(
        `series ${name}`,
        byKey(nodes, key),
        byKey(
          ledger.points
            .filter((p) => p.runId === t.measure[0] && p.name === name)
            .map(({ name: n, value, step }) => ({ name: n, value, step })),
          key,
        ),
      );
    }
    expect(mismatches).toEqual([]);

    // The subscription filtered by the SQL-looking project got exactly its changes after setup.
    const transitioned = new Set(t.transition);
    const expectedFeed = [...ledger.changes.values()].filter(
      (c) => transitioned.has(c.runId) && c.version > 1,
    );
    await sqlFeed.waitFor(expectedFeed.length, 10_000).catch(() => {});
    await sleep(200);
    const changeKey = (c: Change) => `${c.runId}:${String(c.version).padStart(6, '0')}`;
    expect(
      byKey(
        sqlFeed.values.map((v) => v.statusChanged),
        changeKey,
      ),
    ).toEqual(byKey(expectedFeed, changeKey));
    // And the one filtered by SQL-looking series names got exactly their points.
    const wanted = new Set([t.seriesA, t.seriesB]);
    const expectedPoints = ledger.points.filter(
      (p) => p.runId === t.measure[0] && wanted.has(p.name),
    );
    const delivered = () =>
      seriesFeed.values.map((v) => v.measurementRecorded).filter((m) => wanted.has(m.name));
    await settle(() => delivered().length >= expectedPoints.length, 10_000);
    await sleep(200);
    const key = (p: Vars) => JSON.stringify(plain(p));
    expect(byKey(delivered().map(plain) as Vars[], key)).toEqual(
      byKey(
        expectedPoints.map(({ name, value, step }) => plain({ name, value, step }) as Vars),
        key,
      ),
    );
  });

  it('the server still answers, and the unrelated open subscription still delivers', async () => {
    const data = await must({ label: 'alive', query: '{ lifecycle { statuses { status } } }' });
    expect((data['lifecycle'] as { statuses: unknown[] }).statuses).toHaveLength(21);
    expect(quietEnded).toBe(false);
    expect(quiet.values).toEqual([]);
    const moved = await must({
      label: 'quiet move',
      query: `mutation($id: ID!) { transitionRun(input: { id: $id, to: QUEUED }) { __typename } }`,
      variables: { id: quietRun },
    });
    expect((moved['transitionRun'] as Vars)['__typename']).toBe('TransitionAccepted');
    await quiet.waitFor(1);
    expect(quiet.values).toEqual([{ statusChanged: { runId: quietRun, to: 'QUEUED' } }]);
    expect(quietEnded).toBe(false);
  });
});
