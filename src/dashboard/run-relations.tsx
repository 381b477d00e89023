import type { Client } from 'graphql-ws';
import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { gql, subscribe } from './api.js';
import { useNewestById } from './newest.js';
import { shortId } from './format.js';
import { StatusBadge } from './status-badge.js';
import { sequence, throttle } from './throttle.js';

/** An upstream or downstream of the run, as listed. */
export interface RelatedRun {
  id: string;
  name: string | null;
  op: string | null;
  project: string;
  status: string;
  color: string;
  /** The larger of two snapshots is the newer. */
  revision: number;
}

interface Relations {
  upstreams: RelatedRun[];
  downstreams: RelatedRun[];
  /** Each upstream's condition, by its id. */
  conditions: Map<string, { when: string[]; canStillBeSatisfied: boolean }>;
}

const RELATED = `id name op project status color revision`;
/** How often the lists are read again while the run changes, at most. */
const READ_EVERY_MS = 500;
/** Related runs whose statuses are followed live (the API's largest runIds filter). */
const FOLLOW_MAX = 100;

/**
 * `children(first: 1)` only for its logCursor, read before the lists: subscribing after it, no
 * change of a related run is missed between the read and the subscription.
 */
const RELATIONS_QUERY = `query Relations($id: ID!) { run(id: $id) {
  children(first: 1) { logCursor }
  upstreams { ${RELATED} } downstreams { ${RELATED} }
  dependencies { when canStillBeSatisfied run { id } } } }`;

interface Props {
  token: string | null;
  client: Client;
  id: string;
  /** The run's project: a related run of another one says so. */
  project: string;
  /** +1 each time the live connection is (back) up; null while it is down. */
  liveEpoch: number | null;
  /**
   * Changes when the run's own state does (its version, its blockedReason): the lists and their
   * conditions are read again then.
   */
  changeKey: string;
  /** The run's related runs as the page knows them, for the blocked reason's links. */
  onRuns: (runs: ReadonlyMap<string, RelatedRun>) => void;
}

/** The runs this one waits for, with their conditions, and the runs waiting for it: live. */
export function RunRelations({ token, client, id, project, liveEpoch, changeKey, onRuns }: Props) {
  const [relations, setRelations] = useState<Relations | null>(null);
  /** The newest snapshot seen of each related run. */
  const { latest, keep, redraw } = useNewestById<RelatedRun>();
  const [reloads, setReloads] = useState(0);
  const reread = useRef<() => void>(() => {});

  const loadedFor = useRef<string | null>(null);
  useEffect(() => {
    if (liveEpoch == null && loadedFor.current === id) return;
    let cancelled = false;
    let stop = () => {};
    /** The ids followed live now: subscribed again only when they change. */
    let following = '';
    const reads = sequence();
    const read = () => {
      const mine = reads.next();
      gql<{
        run: {
          children: { logCursor: string };
          upstreams: RelatedRun[];
          downstreams: RelatedRun[];
          dependencies: { when: string[]; canStillBeSatisfied: boolean; run: { id: string } }[];
        } | null;
      }>(RELATIONS_QUERY, { id }, token).then(
        (data) => {
          if (cancelled || !reads.isCurrent(mine) || !data.run) return;
          const { upstreams, downstreams, dependencies } = data.run;
          for (const run of [...upstreams, ...downstreams]) keep(run);
          setRelations({
            upstreams,
            downstreams,
            conditions: new Map(dependencies.map((d) => [d.run.id, d])),
          });
          loadedFor.current = id;
          onRuns(latest);
          const ids = [...new Set([...upstreams, ...downstreams].map((r) => r.id))].slice(
            0,
            FOLLOW_MAX,
          );
          if (liveEpoch == null || ids.join() === following) return;
          following = ids.join();
          stop();
          stop =
            ids.length === 0
              ? () => {}
              : subscribe<{ statusChanged: { run: RelatedRun } }>(
                  client,
                  `subscription Related($ids: [ID!]!, $after: String) {
                    statusChanged(filter: { runIds: $ids }, after: $after) { run { ${RELATED} } } }`,
                  { ids, after: data.run.children.logCursor },
                  ({ statusChanged: { run } }) => {
                    if (!keep(run)) return;
                    onRuns(latest);
                    redraw();
                  },
                  () => !cancelled && setReloads((n) => n + 1),
                );
        },
        () => {},
      );
    };
    const again = throttle(read, READ_EVERY_MS);
    reread.current = again;
    read();
    return () => {
      cancelled = true;
      again.cancel();
      stop();
    };
  }, [client, id, token, liveEpoch, reloads]);

  // The run changed (a new status, another reason to wait): its conditions may have too.
  const seenKey = useRef(changeKey);
  useEffect(() => {
    if (seenKey.current === changeKey) return;
    seenKey.current = changeKey;
    reread.current();
  }, [changeKey]);

  if (relations == null) return null;
  const { upstreams, downstreams, conditions } = relations;
  if (upstreams.length === 0 && downstreams.length === 0) return null;
  const now = (run: RelatedRun) => latest.get(run.id) ?? run;
  return (
    <section aria-labelledby="relations-title" class="relations">
      <h2 id="relations-title">Dependencies</h2>
      <div class="relation-lists">
        <RelationList title="Upstreams" testId="upstreams" empty="It waits for no run.">
          {upstreams.map(now).map((run) => {
            const condition = conditions.get(run.id);
            const met = condition?.when.includes(run.status);
            return (
              <li key={run.id} data-run-id={run.id}>
                <RunLink run={run} project={project} />{' '}
                <StatusBadge status={run.status} color={run.color} />{' '}
                {condition && (
                  <span
                    class="condition"
                    data-state={met ? 'met' : condition.canStillBeSatisfied ? 'waiting' : 'unmet'}
                  >
                    {met ? 'met: ' : condition.canStillBeSatisfied ? 'needs ' : 'never met: '}
                    {condition.when.join(' or ')}
                  </span>
                )}
              </li>
            );
          })}
        </RelationList>
        <RelationList title="Downstreams" testId="downstreams" empty="No run waits for it.">
          {downstreams.map(now).map((run) => (
            <li key={run.id} data-run-id={run.id}>
              <RunLink run={run} project={project} />{' '}
              <StatusBadge status={run.status} color={run.color} />
            </li>
          ))}
        </RelationList>
      </div>
    </section>
  );
}

function RelationList({
  title,
  testId,
  empty,
  children,
}: {
  title: string;
  testId: string;
  empty: string;
  children: ComponentChildren[];
}) {
  const headingId = `${testId}-title`;
  return (
    <div class="relation-list">
      <h3 id={headingId}>{title}</h3>
      {children.length === 0 ? (
        <p class="muted">{empty}</p>
      ) : (
        <ul aria-labelledby={headingId} data-testid={testId}>
          {children}
        </ul>
      )}
    </div>
  );
}

/** A run's name (or op, or short id) linking to its page; its project when it is another's. */
export function RunLink({ run, project }: { run: RelatedRun; project?: string }) {
  return (
    <a href={`#/runs/${run.id}`}>
      {labelOf(run)}
      {project != null && run.project !== project && <span class="muted"> ({run.project})</span>}
    </a>
  );
}

export function labelOf(run: { id: string; name: string | null; op: string | null }): string {
  return run.name ?? run.op ?? shortId(run.id);
}
