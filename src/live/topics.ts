import type { MeasurementRow, RunRow, StatusChangeRow } from '../db/schema.js';
import type { EventHub } from './event-hub.js';

/** Every live topic, keyed as documented. Published only after the writing transaction commits. */
export interface Topics extends Record<string, unknown> {
  /** Each change is published twice: under `*` (the whole log) and under its run id. */
  statusChanged: StatusChangeRow;
  /** Key: the run id. */
  runUpdated: RunRow;
  /** Key: the run id. */
  measurementRecorded: MeasurementRow;
}

export type RunstateEvents = EventHub<Topics>;

export const ALL = '*';
