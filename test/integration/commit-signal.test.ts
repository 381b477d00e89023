import postgres from 'postgres';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import type { ChangeLogTail } from '../../src/changelog/change-log-tail.js';
import {
  CHANGE_LOG_CHANNEL,
  NOTIFY_INTERVAL_MS,
  createCommitSignal,
} from '../../src/changelog/commit-signal.js';
import { createPostgresDatabase, type Database } from '../../src/db/client.js';
import { createLogger } from '../../src/logger.js';

// The NOTIFY that tells other instances of this one's commits (issue 18): a commit no write
// carried one for gets one of its own after a few milliseconds, unless a write carrying one is
// on its way, whose commit covers it. Under load every answer takes longer than that wait, and
// each commit paid for a NOTIFY transaction of its own. Heard on a LISTEN of the real channel.

let database: Database;
let listener: postgres.Sql;
/** When each instance's NOTIFYs were heard (other test files' servers notify too). */
const heard = new Map<string, number[]>();

beforeAll(async () => {
  database = createPostgresDatabase({ url: inject('databaseUrl'), poolSize: 2 });
  listener = postgres(inject('databaseUrl'), { max: 1, onnotice: () => {} });
  await listener.listen(CHANGE_LOG_CHANNEL, (id) =>
    heard.set(id, [...(heard.get(id) ?? []), performance.now()]),
  );
});
afterAll(async () => {
  await listener?.end({ timeout: 2 });
  await database?.close();
});

/** This instance's tail: told of its commits, which these tests do not publish. */
const tail = { committed() {}, poke() {} } as unknown as ChangeLogTail;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A signal, its instance's id (in its payloads), and no offer due for the next one. */
async function instance() {
  const signal = createCommitSignal({ database, tail, logger: createLogger('silent') });
  const offer = signal.offerNotification()!;
  signal.notificationSent(offer.at); // it covered nothing
  await sleep(NOTIFY_INTERVAL_MS + 2); // past the spacing of offers
  return { signal, id: offer.payload };
}

/** The NOTIFYs of instance `id` heard after `since`, waiting up to `ms` for the first. */
async function heardWithin(id: string, ms: number, since: number): Promise<number[]> {
  const after = () => (heard.get(id) ?? []).filter((t) => t > since).map((t) => t - since);
  const until = performance.now() + ms;
  while (performance.now() < until && after().length === 0) await sleep(5);
  return after();
}

it('a write carrying a NOTIFY, sent after an uncovered commit, covers it: none is sent alone', async () => {
  const { signal, id } = await instance();
  const since = performance.now();
  signal.committed([]); // a commit whose write carried no notification
  const offer = signal.offerNotification();
  expect(offer).not.toBeNull();
  // Its write is on its way for longer than a commit waits for cover on its own.
  expect(await heardWithin(id, 60, since)).toEqual([]);
  signal.committed([], offer!.at); // that write committed with the NOTIFY (sent by the write)
  expect(await heardWithin(id, 60, since)).toEqual([]);
  await signal.stop();
});

it('when the write carrying it fails, the uncovered commit gets a NOTIFY of its own', async () => {
  const { signal, id } = await instance();
  const since = performance.now();
  signal.committed([]);
  const offer = signal.offerNotification()!;
  await sleep(20);
  signal.notificationFailed(offer.at);
  expect(await heardWithin(id, 1_000, since)).toHaveLength(1);
  await signal.stop();
});

it('a write on its way holds the NOTIFY back only so long', async () => {
  const { signal, id } = await instance();
  const since = performance.now();
  signal.committed([]);
  signal.offerNotification(); // its write never answers
  const alone = await heardWithin(id, 1_000, since);
  expect(alone).toHaveLength(1);
  expect(alone[0]).toBeGreaterThanOrEqual(90);
  await signal.stop();
});

it('a commit alone gets a NOTIFY of its own within milliseconds', async () => {
  const { signal, id } = await instance();
  const since = performance.now();
  signal.committed([]);
  const alone = await heardWithin(id, 1_000, since);
  expect(alone).toHaveLength(1);
  expect(alone[0]).toBeLessThan(90);
  await signal.stop();
});
