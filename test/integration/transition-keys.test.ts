import { readFileSync } from 'node:fs';
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it, inject } from 'vitest';
import { createRun, transitionRun } from '../support/operations.js';
import { uniqueProject, useServer, useServers } from '../support/server.js';

// What an idempotency key keeps, and replays by, is the outcome's kind, not its GraphQL type
// name; answers kept in the older form (before migration 0013, or written by an older instance
// during a rolling upgrade) are replayed the same, and the migration adds the kind to them.
// The type name is still written, for one release, for instances of the previous version.

const server = useServer();
const [a, b] = useServers(2);
let sql: postgres.Sql;
beforeAll(() => {
  sql = postgres(inject('databaseUrl'), { max: 2, onnotice: () => {} });
});
afterAll(async () => {
  await sql.end();
});

const MIGRATION = readFileSync(
  new URL('../../drizzle/0013_outcome_kinds.sql', import.meta.url),
  'utf8',
);

it('keys keep kinds, and answers kept under GraphQL type names replay the same before and after the migration', async () => {
  const run = await createRun(server, { project: uniqueProject('keys') });
  const requests = [
    { id: run.id, to: 'RUNNING', idempotencyKey: 'k-accepted' },
    { id: run.id, to: 'CREATED', idempotencyKey: 'k-illegal' },
    { id: run.id, to: 'SUCCEEDED', expectedVersion: 1, idempotencyKey: 'k-conflict' },
  ];
  const first = [];
  for (const input of requests) first.push(await transitionRun(server, input));
  expect(first.map((r) => r.__typename)).toEqual([
    'TransitionAccepted',
    'IllegalTransition',
    'TransitionConflict',
  ]);
  const kept = () =>
    sql<{ key: string; outcome: Record<string, unknown> }[]>`
      SELECT key, outcome FROM transition_keys WHERE run_id = ${run.id} ORDER BY key`;
  expect((await kept()).map((r) => [r.key, r.outcome['kind'], r.outcome['__typename']])).toEqual([
    ['run:k-accepted', 'accepted', 'TransitionAccepted'],
    ['run:k-conflict', 'conflict', 'TransitionConflict'],
    ['run:k-illegal', 'illegal', 'IllegalTransition'],
  ]);

  // Replays read the kind alone: a type name that no longer matches changes nothing.
  await sql`
    UPDATE transition_keys SET outcome = outcome || '{"__typename": "Renamed"}'::jsonb
    WHERE run_id = ${run.id}`;
  for (const [i, input] of requests.entries())
    expect(await transitionRun(server, input)).toEqual(first[i]);

  // As an instance of the previous version kept them.
  await sql`
    UPDATE transition_keys SET outcome = (outcome - 'kind') || jsonb_build_object('__typename',
      CASE outcome->>'kind' WHEN 'accepted' THEN 'TransitionAccepted'
        WHEN 'illegal' THEN 'IllegalTransition' WHEN 'conflict' THEN 'TransitionConflict' END)
    WHERE run_id = ${run.id}`;
  for (const [i, input] of requests.entries())
    expect(await transitionRun(server, input)).toEqual(first[i]);

  await sql.unsafe(MIGRATION);
  expect((await kept()).map((r) => [r.outcome['kind'], r.outcome['__typename']])).toEqual([
    ['accepted', 'TransitionAccepted'],
    ['conflict', 'TransitionConflict'],
    ['illegal', 'IllegalTransition'],
  ]);
  for (const [i, input] of requests.entries())
    expect(await transitionRun(server, input)).toEqual(first[i]);
});

it('concurrent requests with one key, on two instances, get the first answer of each kind', async () => {
  // api.md: the same idempotencyKey on the same run returns the first answer again and changes
  // nothing, whatever the answer was, however many clients send it at once, wherever.
  const run = await createRun(server, { project: uniqueProject('keys-race') });
  const send = (input: Record<string, unknown>) =>
    Promise.all(Array.from({ length: 16 }, (_, i) => transitionRun(i % 2 === 0 ? a! : b!, input)));
  const illegal = await send({ id: run.id, to: 'SUCCEEDED', idempotencyKey: 'k-illegal' });
  const conflict = await send({
    id: run.id,
    to: 'RUNNING',
    expectedVersion: 7,
    idempotencyKey: 'k-conflict',
  });
  const accepted = await send({ id: run.id, to: 'RUNNING', idempotencyKey: 'k-accepted' });
  for (const [answers, typename] of [
    [illegal, 'IllegalTransition'],
    [conflict, 'TransitionConflict'],
    [accepted, 'TransitionAccepted'],
  ] as const) {
    expect(answers[0]!.__typename).toBe(typename);
    for (const answer of answers) expect(answer).toEqual(answers[0]);
  }
  // One change in all: the accepted one, made once.
  const [row] = await sql<{ count: string }[]>`
    SELECT count(*) FROM status_changes WHERE run_id = ${run.id} AND to_status = 'RUNNING'`;
  expect(Number(row!.count)).toBe(1);
});
