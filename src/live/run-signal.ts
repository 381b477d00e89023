import { randomUUID } from 'node:crypto';
import type { Database } from '../db/client.js';
import type { MeasurementRow } from '../db/schema.js';
import type { RunUpdates } from './run-updates.js';
import type { Logger } from '../logger.js';
import type { RunstateEvents } from './topics.js';

/** The channel on which instances pass on run updates that are not status changes. */
export const RUN_EVENTS_CHANNEL = 'runstate_run_events';

/** NOTIFY payloads must stay under 8000 bytes. */
const MAX_PAYLOAD = 7000;

interface Payload {
  /** The sending instance: it has published these events itself already. */
  i: string;
  /** Runs whose progress or heartbeat changed. */
  r?: string[];
  /**
   * Measurements recorded: [runId, first id, last id, writing transaction]. Concurrent batches
   * of one run interleave their ids, so the range alone would also name the other batch's rows.
   */
  m?: [string, number, number, string][];
}

/**
 * Carries runUpdated (progress, heartbeat, measurements) and measurementRecorded events to the
 * other instances. The writing instance publishes to its own subscribers directly; the others
 * get one coalesced NOTIFY, sent after the commit, naming the runs and measurement id ranges, and
 * read the rows themselves, only for runs someone there subscribed to.
 *
 * These two streams carry current state and have no cursor: a notification lost while an
 * instance's listener reconnects is not replayed (status changes, which are, travel through the
 * change log instead).
 */
export interface RunSignal {
  runChanged(runId: string): void;
  measurementsRecorded(runId: string, firstId: number, lastId: number, txId: string): void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** How an instance reads what another one wrote (the domains' stores, given by app.ts). */
export interface RunSignalReaders {
  /** The measurements one transaction wrote for a run, ids first..last. */
  writtenMeasurements(
    runId: string,
    firstId: number,
    lastId: number,
    txId: string,
  ): Promise<MeasurementRow[]>;
}

export function createRunSignal(deps: {
  database: Database;
  events: RunstateEvents;
  logger: Logger;
  read: RunSignalReaders;
  runUpdates: RunUpdates;
}): RunSignal {
  const { database, events, logger } = deps;
  const instance = randomUUID();
  let runs = new Set<string>();
  let ranges: [string, number, number, string][] = [];
  let sending = false;
  let unlisten: (() => Promise<void>) | null = null;

  function takePayloads(): string[] {
    const payloads: string[] = [];
    let current: Payload = { i: instance };
    const flush = () => {
      if (current.r || current.m) payloads.push(JSON.stringify(current));
      current = { i: instance };
    };
    for (const runId of runs) {
      (current.r ??= []).push(runId);
      if (JSON.stringify(current).length > MAX_PAYLOAD) flush();
    }
    for (const range of ranges) {
      (current.m ??= []).push(range);
      if (JSON.stringify(current).length > MAX_PAYLOAD) flush();
    }
    flush();
    runs = new Set();
    ranges = [];
    return payloads;
  }

  async function send() {
    if (sending) return;
    sending = true;
    try {
      for (let payloads = takePayloads(); payloads.length > 0; payloads = takePayloads()) {
        for (const payload of payloads) {
          await database.notify(RUN_EVENTS_CHANNEL, payload).catch((error: unknown) => {
            logger.warn({ err: error }, 'run-events NOTIFY failed');
          });
        }
      }
    } finally {
      sending = false;
    }
  }

  async function receive(text: string) {
    let payload: Payload;
    try {
      payload = JSON.parse(text) as Payload;
    } catch {
      return;
    }
    if (payload.i === instance) return;
    for (const [runId, first, last, txId] of payload.m ?? []) {
      if (!events.hasSubscribers('measurementRecorded', runId)) continue;
      const rows = await deps.read.writtenMeasurements(runId, first, last, txId);
      for (const row of rows) events.publish('measurementRecorded', runId, row);
    }
    await deps.runUpdates.refresh([
      ...(payload.r ?? []),
      ...(payload.m ?? []).map(([runId]) => runId),
    ]);
  }

  return {
    runChanged(runId) {
      runs.add(runId);
      void send();
    },
    measurementsRecorded(runId, firstId, lastId, txId) {
      ranges.push([runId, firstId, lastId, txId]);
      void send();
    },
    async start() {
      unlisten = await database.listen(
        RUN_EVENTS_CHANNEL,
        (text) => {
          receive(text).catch((error: unknown) =>
            logger.warn({ err: error }, 'run-events read failed'),
          );
        },
        () => {},
      );
    },
    async stop() {
      await unlisten?.();
      unlisten = null;
    },
  };
}
