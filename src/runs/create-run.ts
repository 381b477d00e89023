import type { Db } from '../db/client.js';
import type { RunRow, StatusChangeRow } from '../db/schema.js';
import { BadUserInputError, NotFoundError } from '../errors.js';
import {
  checkIntInRange,
  checkJsonObject,
  checkListLength,
  checkOptionalString,
  checkString,
  checkUuid,
  LIMITS,
} from '../validation.js';
import { canSeeProject } from '../auth/principal.js';
import * as changeStore from '../changelog/change-store.js';
import * as dependencyStore from './dependency-store.js';
import { checkEventTriggers } from './orchestration.js';
import { decideDownstream, decideMemoized } from './policy.js';
import * as store from './run-store.js';
import { retryOnDeadlock } from '../db/deadlock.js';
import type { CreateRunInput } from './run-service.js';
import type { Actor } from './transition-batch.js';

/**
 * createRun: one transaction that checks the input, locks the upstreams, inserts the run with
 * its edges and triggers, and applies the policy's creation rules (memoization, or the
 * dependency and event conditions) to its first status. A replay of its idempotency key
 * answers the first run.
 */
export async function createRun(
  deps: {
    db: Db;
    /** Tells the change log and the live fan-out what committed. */
    publishCommitted: (changes: readonly StatusChangeRow[], runs: readonly RunRow[]) => void;
  },
  input: CreateRunInput,
  actor: Actor,
): Promise<RunRow> {
  const { db, publishCommitted } = deps;

  const project = checkString('input.project', input.project, {
    min: 1,
    max: LIMITS.projectLength,
  });
  if (!canSeeProject(actor, project)) throw new NotFoundError('project', project);
  const values: store.NewRun = {
    project,
    name: checkOptionalString('input.name', input.name, { min: 1, max: LIMITS.nameLength }),
    tags: [
      ...new Set(
        checkListLength('input.tags', input.tags ?? [], LIMITS.tags).map((tag, i) =>
          checkString(`input.tags[${i}]`, tag, { min: 1, max: LIMITS.tagLength }),
        ),
      ),
    ],
    meta: input.meta == null ? null : checkJsonObject('input.meta', input.meta),
    idempotencyKey: checkOptionalString('input.idempotencyKey', input.idempotencyKey, {
      min: 1,
      max: LIMITS.idempotencyKeyLength,
    }),
    maxRetries:
      input.maxRetries == null
        ? 0
        : checkIntInRange('input.maxRetries', input.maxRetries, 0, LIMITS.maxRetries),
    trigger: null,
    skipOnUpstreamSkip: input.skipOnUpstreamSkip ?? false,
    cacheKey: checkOptionalString('input.cacheKey', input.cacheKey, {
      min: 1,
      max: LIMITS.idempotencyKeyLength,
    }),
    heartbeatTimeout:
      input.heartbeatTimeout == null
        ? null
        : checkIntInRange(
            'input.heartbeatTimeout',
            input.heartbeatTimeout,
            1,
            LIMITS.timeoutSeconds,
          ),
    queueTimeout:
      input.queueTimeout == null
        ? null
        : checkIntInRange('input.queueTimeout', input.queueTimeout, 1, LIMITS.timeoutSeconds),
    dialect: input.dialect ?? 'RUNSTATE',
    statusReason: 'CREATED',
  };
  const dependsOn = [
    ...new Set(
      checkListLength('input.dependsOn', input.dependsOn ?? [], LIMITS.dependencies).map((id, i) =>
        checkUuid(`input.dependsOn[${i}]`, id),
      ),
    ),
  ];
  if (dependsOn.length > 0) values.trigger = input.trigger ?? 'ALL_SUCCEEDED';
  else if (input.trigger != null) throw new BadUserInputError('input.trigger', 'needs dependsOn');
  const events = checkEventTriggers(input.events);

  // Locking upstreams can lose a deadlock against a cascade locking downstream runs
  // (a DAG with a transitive edge); run again then (an idempotent replay stays one run).
  const created = await retryOnDeadlock(() =>
    db.transaction(async (tx) => {
      // Upstreams first (locked): their state decides this run's, and none may finish
      // unseen between our read and our commit.
      const locked = await dependencyStore.lockUpstreamsForCreate(tx, [
        ...new Set([...dependsOn, ...events.map((e) => e.refId)]),
      ]);
      const found = new Set(locked.filter((u) => canSeeProject(actor, u.project)).map((u) => u.id));
      const missing = dependsOn.findIndex((id) => !found.has(id));
      if (missing >= 0) throw new BadUserInputError(`input.dependsOn[${missing}]`, 'no such run');
      const missingRef = events.findIndex((e) => !found.has(e.refId));
      if (missingRef >= 0) {
        throw new BadUserInputError(`input.events[${missingRef}].ref`, 'no such run');
      }
      const upstreams = locked.filter((u) => dependsOn.includes(u.id));

      const inserted = await store.insertRun(tx, values);
      if (!inserted) return null;
      await dependencyStore.insertDependencies(tx, inserted.id, dependsOn);
      await dependencyStore.insertEventTriggers(tx, inserted.id, events);
      const changes: changeStore.NewStatusChange[] = [
        {
          runId: inserted.id,
          project: inserted.project,
          fromStatus: null,
          toStatus: inserted.status,
          version: inserted.version,
          reason: 'CREATED',
          message: null,
          at: inserted.createdAt,
          actor: actor.name,
        },
      ];
      let run = inserted;
      const memo = values.cacheKey
        ? await store.findMemoizedRun(tx, values.project, values.cacheKey)
        : null;
      const memoized = decideMemoized(run, memo);
      if (memoized) {
        changes.push({
          runId: run.id,
          project: run.project,
          fromStatus: run.status,
          toStatus: memoized.change.to,
          version: memoized.run.version,
          reason: memoized.change.reason,
          message: memoized.change.message,
          at: run.createdAt,
          actor: actor.name,
        });
        run = memoized.run;
        await store.updateRunStates(tx, [run]);
        await store.setMemoizedFrom(tx, run.id, memoized.run.memoizedFrom!);
      } else if (values.trigger || events.length > 0) {
        const eventStates =
          events.length > 0 ? await dependencyStore.listEventTriggerStates(tx, [run.id]) : [];
        const decided = decideDownstream(run, upstreams, eventStates, run.createdAt, actor.name);
        run = decided.run;
        changes.push(...decided.changes);
        await store.updateRunStates(tx, [run]);
      }
      return { run, changes: await changeStore.insertStatusChanges(tx, changes) };
    }),
  );
  if (created) {
    publishCommitted(created.changes, []);
    return created.run;
  }
  // A replay of createRun: the first run, nothing created. The key is unique per project.
  const existing = await store.getRunByIdempotencyKey(db, values.project, values.idempotencyKey!);
  if (!existing) throw new Error('idempotent createRun found no run for its key');
  return existing;
}
