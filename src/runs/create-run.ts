import type { Db, Tx } from '../db/client.js';
import { isDone, type RunStatus } from '../lifecycle/lifecycle.js';
import type { RunRow, StatusChangeRow } from '../db/schema.js';
import { BadUserInputError, getPgErrorCode, NotFoundError } from '../errors.js';
import {
  checkDate,
  checkIntInRange,
  checkJsonObject,
  checkListLength,
  checkOptionalString,
  checkReportedTime,
  checkString,
  checkTags,
  checkUuid,
  LIMITS,
} from '../validation.js';
import { canSeeProject } from '../auth/principal.js';
import * as changeStore from '../changelog/change-store.js';
import * as dependencyStore from './dependency-store.js';
import { checkEventTriggers, mergeEventTriggers } from './orchestration.js';
import { conditionState } from './dependency-rules.js';
import { changeOf, decideDownstream, decideMemoized, decideScheduled } from './policy.js';
import { parseRunRef, resolveRunRefs } from './run-refs.js';
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
    tags: checkTags('input.tags', input.tags ?? []),
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
    attributes:
      input.attributes == null
        ? {}
        : checkJsonObject('input.attributes', input.attributes, LIMITS.attributesBytes),
  };
  if (input.createdAt != null) {
    // An import: the run was created elsewhere, earlier.
    values.createdAt = checkReportedTime('input.createdAt', input.createdAt);
    values.updatedAt = values.createdAt;
  }
  const parentId = input.parentId == null ? null : checkUuid('input.parentId', input.parentId);
  values.op = checkOptionalString('input.op', input.op, { min: 1, max: LIMITS.opLength });
  values.parentId = parentId;
  values.rollup = input.rollup === true;
  if (values.op != null && parentId == null) {
    throw new BadUserInputError(
      'input.op',
      "names a step among its parent's children: give parentId",
    );
  }
  const edges = [
    ...checkListLength('input.dependsOn', input.dependsOn ?? [], LIMITS.dependencies).map(
      (ref, i) => {
        const field = `input.dependsOn[${i}]`;
        return { ref: parseRunRef(field, ref), field, when: null as RunStatus[] | null };
      },
    ),
    ...checkListLength('input.dependencies', input.dependencies ?? [], LIMITS.dependencies).map(
      (dependency, i) => {
        const field = `input.dependencies[${i}]`;
        const when: readonly RunStatus[] = checkListLength(
          `${field}.when`,
          dependency.when ?? ['SUCCEEDED'],
          21,
          1,
        );
        return {
          ref: parseRunRef(`${field}.ref`, dependency.ref),
          field: `${field}.ref`,
          when: [...new Set(when)],
        };
      },
    ),
  ];
  checkListLength('input.dependencies', edges, LIMITS.dependencies);
  if (input.dependsOn?.length) values.trigger = input.trigger ?? 'ALL_SUCCEEDED';
  else if (input.trigger != null) throw new BadUserInputError('input.trigger', 'needs dependsOn');
  const events = checkEventTriggers(input.events);
  let scheduledAt: Date | null = null;
  if (input.scheduledAt != null) {
    scheduledAt = checkDate('input.scheduledAt', input.scheduledAt);
    // A second of leeway for the clocks of client and server.
    if (scheduledAt.getTime() < Date.now() - 1000) {
      throw new BadUserInputError('input.scheduledAt', 'is in the past');
    }
    if (edges.length > 0 || events.length > 0) {
      throw new BadUserInputError(
        'input.scheduledAt',
        'a scheduled run starts at its time: it cannot also wait for upstreams or events',
      );
    }
    values.scheduledAt = scheduledAt;
  }

  // Locking upstreams can lose a deadlock against a cascade locking downstream runs
  // (a DAG with a transitive edge); run again then (an idempotent replay stays one run).
  const created = await retryOnDeadlock(() =>
    db.transaction(async (tx) => {
      const parent = parentId == null ? null : await checkParent(tx, parentId, project, actor);
      if (parent) values.depth = parent.depth + 1;
      // References by op are resolved among the parent's children, at creation.
      const resolved = await resolveRunRefs(tx, parentId, values.op ?? null, [...edges, ...events]);
      const edgeIds = resolved.slice(0, edges.length);
      const refIds = resolved.slice(edges.length);
      const seen = new Map<string, string>();
      edgeIds.forEach((id, i) => {
        const twice = seen.get(id);
        if (twice) throw new BadUserInputError(edges[i]!.field, `names the same run as ${twice}`);
        seen.set(id, edges[i]!.field);
      });
      // A step that waits for its own parent or an ancestor waits for itself: a rollup parent
      // waits for its children.
      if (parent) {
        const ancestors = new Set(await store.listAncestorIds(tx, parent.id));
        const cycle = [...edgeIds, ...refIds].findIndex((id) => ancestors.has(id));
        if (cycle >= 0) {
          const field = [...edges, ...events][cycle]!.field;
          throw new BadUserInputError(field, 'is an ancestor of this run: a cycle');
        }
      }
      // Upstreams first (locked): their state decides this run's, and none may finish
      // unseen between our read and our commit.
      const locked = await dependencyStore.lockUpstreamsForCreate(tx, [
        ...new Set([...edgeIds, ...refIds]),
      ]);
      const found = new Map(
        locked.filter((u) => canSeeProject(actor, u.project)).map((u) => [u.id, u]),
      );
      const missing = [...edgeIds, ...refIds].findIndex((id) => !found.has(id));
      if (missing >= 0)
        throw new BadUserInputError([...edges, ...events][missing]!.field, 'no such run');
      const upstreams = edgeIds.map((id, i) => ({ ...found.get(id)!, when: edges[i]!.when }));
      // A condition that can never hold would fail the run at once: refused instead.
      upstreams.forEach((u, i) => {
        if (u.when && !conditionState(u, u.when).possible) {
          throw new BadUserInputError(
            edges[i]!.field.replace(/\.ref$/, '.when'),
            `can never be met: run ${u.id} is ${u.status}`,
          );
        }
      });

      if (values.op != null) {
        // A replay (the same idempotency key) answers the first run; another run may not
        // take the name.
        const named = await store.getRunByOp(tx, parentId!, values.op);
        if (
          named &&
          (values.idempotencyKey == null || named.idempotencyKey !== values.idempotencyKey)
        )
          throw opTaken(values.op, parentId!);
      }
      const inserted = await store.insertRun(tx, values).catch((error: unknown) => {
        // Two creates of one name at once: the index decides.
        if (getPgErrorCode(error) === '23505' && values.op != null)
          throw opTaken(values.op, parentId!);
        throw error;
      });
      if (!inserted) return null;
      await dependencyStore.insertDependencies(
        tx,
        inserted.id,
        upstreams.map((u) => ({ upstreamId: u.id, when: u.when })),
      );
      await dependencyStore.insertEventTriggers(
        tx,
        inserted.id,
        mergeEventTriggers(events, refIds),
      );
      const changes: changeStore.NewStatusChange[] = [
        {
          runId: inserted.id,
          project: inserted.project,
          parentId: inserted.parentId,
          fromStatus: null,
          toStatus: inserted.status,
          version: inserted.version,
          reason: 'CREATED',
          message: null,
          attempt: inserted.attempt,
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
          parentId: run.parentId,
          fromStatus: run.status,
          toStatus: memoized.change.to,
          version: memoized.run.version,
          reason: memoized.change.reason,
          message: memoized.change.message,
          attempt: memoized.run.attempt,
          at: run.createdAt,
          actor: actor.name,
        });
        run = memoized.run;
        await store.updateRunStates(tx, [run]);
        await store.setMemoizedFrom(tx, run.id, memoized.run.memoizedFrom!);
      } else if (scheduledAt) {
        // Waits for its time; the reaper queues it (SCHEDULE_DUE).
        const waiting = decideScheduled(run, scheduledAt);
        changes.push({ ...changeOf(run, waiting.run, waiting.change), actor: actor.name });
        run = waiting.run;
        await store.updateRunStates(tx, [run]);
      } else if (upstreams.length > 0 || events.length > 0) {
        const eventStates =
          events.length > 0 ? await dependencyStore.listEventTriggerStates(tx, [run.id]) : [];
        const decided = decideDownstream(run, upstreams, eventStates, run.createdAt, actor.name);
        run = decided.run;
        changes.push(...decided.changes);
        await store.updateRunStates(tx, [run]);
      }
      // A rollup parent is not decided by a step's creation, even one created done
      // (memoized): its other steps may still be on their way (createPipeline makes them one
      // after the other). Its steps' changes decide it.
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

function opTaken(op: string, parentId: string) {
  return new BadUserInputError('input.op', `run ${parentId} already has a step ${op}`);
}

/**
 * The parent of a new step, locked (with its rollup ancestors: a stop or a rollup decided
 * meanwhile sees the step): visible, of the same project, not finished or stopping, not too deep.
 */
async function checkParent(tx: Tx, parentId: string, project: string, actor: Actor) {
  const parent = (await store.lockRunsForTransition(tx, [parentId])).rows.find(
    (r) => r.id === parentId,
  );
  if (!parent || !canSeeProject(actor, parent.project)) {
    throw new BadUserInputError('input.parentId', 'no such run');
  }
  if (parent.project !== project) {
    throw new BadUserInputError(
      'input.parentId',
      `is a run of project ${parent.project}: a step belongs to its parent's project`,
    );
  }
  if (isDone(parent.status) || parent.status === 'STOPPING') {
    throw new BadUserInputError(
      'input.parentId',
      `is ${parent.status}: a step cannot be added to a run that is finished or stopping`,
    );
  }
  if (parent.depth + 1 > LIMITS.pipelineDepth) {
    throw new BadUserInputError(
      'input.parentId',
      `is ${parent.depth + 1} levels deep: steps nest at most ${LIMITS.pipelineDepth} levels`,
    );
  }
  return parent;
}
