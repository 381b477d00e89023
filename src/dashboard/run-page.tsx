import type { Client } from 'graphql-ws';
import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { gql, subscribe } from './api.js';
import { isNumericSeries, LatestValue, SeriesChart, type AnyPoint } from './chart.js';
import { ago } from './format.js';
import { PipelineGraph } from './pipeline-graph.js';
import { RunActions } from './run-actions.js';
import { labelOf, RunRelations, type RelatedRun } from './run-relations.js';
import { NativeStatus, Outcome, ProgressBar, StatusBadge } from './status-badge.js';

interface RunDetail {
  id: string;
  project: string;
  name: string | null;
  status: string;
  color: string;
  category: string;
  progress: number | null;
  phase: string | null;
  /** The run's home dialect (RUNSTATE, PARSL, …). */
  dialect: string;
  /** Its current status in its dialect's names. */
  nativeStatus: string;
  attempt: number;
  version: number;
  revision: number;
  createdAt: string;
  updatedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  heartbeatAt: string | null;
  stopMessage: string | null;
  tags: string[];
  /** Its name among its parent's children. */
  op: string | null;
  /** The run it is a step of (null also when the token cannot see it). */
  parent: { id: string; name: string | null; op: string | null; project: string } | null;
  /** When a scheduled run is queued (it waits ON_SCHEDULE until then). */
  scheduledAt: string | null;
  /** Why it is not ready, or why it failed upstream: names the runs and the rule. */
  blockedReason: string | null;
  isStoppable: boolean;
  allowedTransitions: string[];
  /** What its DONE status came with (`DIFF`); null while not done, and after a resume or retry. */
  outcome: string | null;
  /** The worker's exit code, as `outcome`. */
  exitCode: number | null;
  /** Free-form JSON object, changed with updateRun. */
  attributes: Record<string, unknown> | null;
}

interface Change {
  cursor: string;
  version: number;
  from: string | null;
  to: string;
  /** `to` in the run's dialect's names. */
  nativeTo: string;
  reason: string | null;
  message: string | null;
  actor: string | null;
  at: string;
  outcome: string | null;
  exitCode: number | null;
  /** The run's attempt after the change. */
  attempt: number;
}

interface Measurement extends AnyPoint {
  id?: string;
  name: string;
}

const DETAIL = `id project name status color category progress phase dialect nativeStatus attempt version
  revision createdAt updatedAt startedAt finishedAt heartbeatAt stopMessage tags op
  parent { id name op project } scheduledAt blockedReason isStoppable allowedTransitions
  outcome exitCode attributes`;
/**
 * A run in a blocked reason: its id, and its name in parentheses when it has one (the server
 * writes `<id> (<name>)`).
 */
const RUN_IN_REASON =
  /([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?: \(([^()]*)\))?/gi;
const CHANGE = `cursor version from to nativeTo reason message actor at outcome exitCode attempt`;
const POINT = `name value data step at`;
const MAX_PAGES = 10;
/** Points drawn per series (the newest). */
const MAX_POINTS = 2000;

interface Props {
  token: string | null;
  client: Client;
  id: string;
  colors: Map<string, string>;
  /** +1 each time the live connection is (back) up; null while it is down. */
  liveEpoch: number | null;
  /** The token may stop, retry and resume runs: the page shows those buttons. */
  mayWrite: boolean;
}

/**
 * One run: its state, why it waits, its upstreams and downstreams, its steps as a graph, its
 * status timeline and a chart per measurement series, all live; Stop, Retry and Resume for a
 * token that may write.
 */
export function RunPage({ token, client, id, colors, liveEpoch, mayWrite }: Props) {
  const [run, setRun] = useState<RunDetail | null | undefined>(undefined);
  /** Related runs as the relations list knows them: names for the ids in blockedReason. */
  const [related, setRelated] = useState<ReadonlyMap<string, RelatedRun>>(new Map());
  const [history, setHistory] = useState<Change[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [reloads, setReloads] = useState(0);
  /** Points by series, appended in place; `drawn` re-renders at most once a frame. */
  const series = useRef(new Map<string, Measurement[]>());
  const [, setDrawn] = useState(0);
  const frame = useRef<number | null>(null);
  const addPoints = (points: Measurement[]) => {
    for (const point of points) {
      let list = series.current.get(point.name);
      if (!list) series.current.set(point.name, (list = []));
      list.push(point);
      // The newest MAX_POINTS of a series are drawn; trimmed in halves, not point by point.
      if (list.length > 2 * MAX_POINTS) list.splice(0, list.length - MAX_POINTS);
    }
    frame.current ??= requestAnimationFrame(() => {
      frame.current = null;
      setDrawn((n) => n + 1);
    });
  };
  useEffect(() => () => void (frame.current != null && cancelAnimationFrame(frame.current)), []);

  // Subscriptions first, then the query, so nothing falls between them: points that arrive
  // meanwhile wait for the query's answer, and the timeline streams from the last change read.
  // Loaded again each time the live connection is back, or a subscription was ended.
  const loadedFor = useRef<string | null>(null);
  useEffect(() => {
    // While the connection is down, what is shown stays (it is loaded again once it is back).
    if (liveEpoch == null && loadedFor.current === id) return;
    let cancelled = false;
    let loaded = false;
    const early: Measurement[] = [];
    let stopChanges = () => {};
    const live = liveEpoch != null;
    const reload = () => !cancelled && setReloads((n) => n + 1);
    const stopRun = live
      ? subscribe<{ runUpdated: RunDetail }>(
          client,
          `subscription Run($id: ID!) { runUpdated(id: $id) { ${DETAIL} } }`,
          { id },
          ({ runUpdated }) => setRun((current) => newer(current, runUpdated)),
          reload,
        )
      : () => {};
    const stopPoints = live
      ? subscribe<{ measurementRecorded: Measurement }>(
          client,
          `subscription Points($id: ID!) { measurementRecorded(runId: $id) { ${POINT} } }`,
          { id },
          ({ measurementRecorded }) => {
            if (loaded) addPoints([measurementRecorded]);
            else early.push(measurementRecorded);
          },
          reload,
        )
      : () => {};
    (async () => {
      const first = await gql<{
        run: (RunDetail & { statusHistory: Page<Change>; measurements: Page<Measurement> }) | null;
      }>(
        `query Run($id: ID!) { run(id: $id) { ${DETAIL}
          statusHistory(first: 500) { edges { node { ${CHANGE} } } pageInfo { hasNextPage endCursor } }
          measurements(first: 500) { edges { node { ${POINT} } } pageInfo { hasNextPage endCursor } } } }`,
        { id },
        token,
      );
      if (cancelled) return;
      if (!first.run) {
        setRun(null);
        return;
      }
      const { statusHistory, measurements, ...detail } = first.run;
      const all = measurements.edges.map((e) => e.node);
      let page = measurements.pageInfo;
      for (let n = 1; page.hasNextPage && n < MAX_PAGES && !cancelled; n++) {
        const next = await gql<{ run: { measurements: Page<Measurement> } }>(
          `query More($id: ID!, $after: String) { run(id: $id) {
            measurements(first: 500, after: $after) { edges { node { ${POINT} } } pageInfo { hasNextPage endCursor } } } }`,
          { id, after: page.endCursor },
          token,
        );
        all.push(...next.run.measurements.edges.map((e) => e.node));
        page = next.run.measurements.pageInfo;
      }
      if (cancelled) return;
      const changes = statusHistory.edges.map((e) => e.node);
      const seen = new Set(all.map(pointKey));
      setRun((current) => newer(current, detail));
      setHistory(changes);
      series.current = new Map();
      addPoints([...all, ...early.filter((p) => !seen.has(pointKey(p)))]);
      setError(null);
      loaded = true;
      loadedFor.current = id;
      if (!live) return;
      stopChanges = subscribe<{ statusChanged: Change }>(
        client,
        `subscription Changes($id: ID!, $after: String) {
          statusChanged(filter: { runIds: [$id] }, after: $after) { ${CHANGE} } }`,
        { id, after: changes.at(-1)?.cursor ?? null },
        ({ statusChanged }) =>
          setHistory((h) =>
            h.some((c) => c.version === statusChanged.version) ? h : [...h, statusChanged],
          ),
        reload,
      );
    })().catch((e: unknown) => !cancelled && setError(e instanceof Error ? e.message : String(e)));
    return () => {
      cancelled = true;
      stopRun();
      stopPoints();
      stopChanges();
    };
  }, [client, id, token, liveEpoch, reloads]);

  /** The run read again (after an action: the page may have been behind it). */
  const refresh = () =>
    gql<{ run: RunDetail | null }>(
      `query Run($id: ID!) { run(id: $id) { ${DETAIL} } }`,
      { id },
      token,
    ).then(
      (data) => data.run && setRun((current) => newer(current, data.run!)),
      () => {},
    );

  /** A run that was retried: each change says which attempt it belongs to. */
  const retried = history.some((change) => change.attempt > 1);

  if (error)
    return (
      <p class="error" role="alert">
        {error}
      </p>
    );
  if (run === undefined) return <p class="muted">Loading the run…</p>;
  if (run === null)
    return (
      <section class="empty">
        <h1>No such run</h1>
        <p>
          No run has the id <code>{id}</code> (or your token may not see its project).{' '}
          <a href="#/">Back to the runs</a>
        </p>
      </section>
    );

  return (
    <article class="run" aria-labelledby="run-title">
      <p class="crumbs">
        <a href={`#/?project=${encodeURIComponent(run.project)}`}>{run.project}</a> /{' '}
        {run.parent && (
          <>
            <a href={`#/runs/${run.parent.id}`} data-testid="parent">
              {labelOf(run.parent)}
            </a>{' '}
            /
          </>
        )}
      </p>
      <h1 id="run-title">
        {run.name ?? run.op ?? run.id} <StatusBadge status={run.status} color={run.color} />{' '}
        <Outcome outcome={run.outcome} exitCode={run.exitCode} />{' '}
        <NativeStatus dialect={run.dialect} native={run.nativeStatus} />
      </h1>
      {mayWrite && <RunActions run={run} token={token} onSettled={() => void refresh()} />}
      {run.blockedReason && (
        <p class="blocked" data-testid="blocked-reason">
          <strong>{run.category === 'DONE' ? 'Did not run: ' : 'Not ready: '}</strong>
          {linkRuns(run.blockedReason, related)}
        </p>
      )}
      <dl class="facts">
        {run.op != null && (
          <div>
            <dt>Step</dt>
            <dd>
              <code>{run.op}</code>
              {run.parent && (
                <>
                  {' '}
                  of <a href={`#/runs/${run.parent.id}`}>{labelOf(run.parent)}</a>
                </>
              )}
            </dd>
          </div>
        )}
        {run.scheduledAt && (
          <div data-testid="scheduled-at">
            <dt>Scheduled for</dt>
            <dd>
              <time dateTime={run.scheduledAt} title={run.scheduledAt}>
                {new Date(run.scheduledAt).toLocaleString()} ({ago(run.scheduledAt)})
              </time>
            </dd>
          </div>
        )}
        <div>
          <dt>Progress</dt>
          <dd>
            <ProgressBar progress={run.progress} phase={run.phase} />
          </dd>
        </div>
        <div>
          <dt>Attempt</dt>
          <dd>{run.attempt}</dd>
        </div>
        <div>
          <dt>Created</dt>
          <dd>
            <time dateTime={run.createdAt} title={run.createdAt}>
              {ago(run.createdAt)}
            </time>
          </dd>
        </div>
        <div>
          <dt>Last heartbeat</dt>
          <dd>{run.heartbeatAt ? ago(run.heartbeatAt) : '–'}</dd>
        </div>
        <div>
          <dt>Id</dt>
          <dd>
            <code>{run.id}</code>
          </dd>
        </div>
      </dl>
      {run.stopMessage && <p class="stop-message">{run.stopMessage}</p>}
      <Attributes attributes={run.attributes ?? {}} />

      <RunRelations
        token={token}
        client={client}
        id={run.id}
        project={run.project}
        liveEpoch={liveEpoch}
        changeKey={`${run.version}|${run.blockedReason ?? ''}`}
        onRuns={(runs) => setRelated(new Map(runs))}
      />

      <PipelineGraph
        token={token}
        client={client}
        id={run.id}
        colors={colors}
        liveEpoch={liveEpoch}
      />

      <section aria-labelledby="timeline-title">
        <h2 id="timeline-title">Status timeline</h2>
        <ol class="timeline">
          {history.map((change) => (
            <li key={change.version} data-status={change.to}>
              <span
                class="marker"
                style={{ backgroundColor: colors.get(change.to) ?? '#888' }}
                aria-hidden="true"
              />
              <StatusBadge status={change.to} color={colors.get(change.to) ?? '#888'} />
              <NativeStatus dialect={run.dialect} native={change.nativeTo} />
              <Outcome outcome={change.outcome} exitCode={change.exitCode} />
              {retried && (
                <span class="attempt muted" data-attempt={change.attempt}>
                  attempt {change.attempt}
                </span>
              )}
              <time dateTime={change.at} title={change.at}>
                {new Date(change.at).toLocaleString()}
              </time>
              {(change.reason || change.message) && (
                <span class="why">
                  {[change.reason, change.message].filter(Boolean).join(': ')}
                </span>
              )}
              {change.actor && <span class="muted">by {change.actor}</span>}
            </li>
          ))}
        </ol>
      </section>

      <section aria-labelledby="measurements-title">
        <h2 id="measurements-title">Measurements</h2>
        {series.current.size === 0 ? (
          <p class="muted">No measurements yet: they appear here as the worker records them.</p>
        ) : (
          <div class="charts">
            {[...series.current.entries()].map(([name, ps]) => {
              const shown = ps.slice(-MAX_POINTS);
              // A series of numbers is a chart; any other, its newest value with its step.
              return isNumericSeries(shown) ? (
                <SeriesChart key={name} name={name} points={shown} />
              ) : (
                <LatestValue key={name} name={name} point={newestOf(shown)} />
              );
            })}
          </div>
        )}
      </section>
    </article>
  );
}

/** Text of an attribute's value shown whole up to this length, then cut. */
const MAX_VALUE_TEXT = 500;

/**
 * The run's attributes as a small key/value table, keys in order: a string as it is, any other
 * value as compact JSON. Nothing while there are none.
 */
function Attributes({ attributes }: { attributes: Record<string, unknown> }) {
  const keys = Object.keys(attributes).sort();
  if (keys.length === 0) return null;
  return (
    <section aria-labelledby="attributes-title">
      <h2 id="attributes-title">Attributes</h2>
      <table class="attributes" data-testid="attributes">
        <tbody>
          {keys.map((key) => {
            const value = attributes[key];
            const text = typeof value === 'string' ? value : JSON.stringify(value);
            const shown = text.length > MAX_VALUE_TEXT ? `${text.slice(0, MAX_VALUE_TEXT)}…` : text;
            return (
              <tr key={key} data-key={key}>
                <th scope="row">{key}</th>
                <td>{typeof value === 'string' ? shown : <code>{shown}</code>}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
}

interface Page<T> {
  edges: { node: T }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

/** The later of two snapshots of the run (events and answers may cross). */
function newer(current: RunDetail | null | undefined, next: RunDetail): RunDetail {
  return current && current.id === next.id && current.revision > next.revision ? current : next;
}

/**
 * A blocked reason with each run in it as a link, named by its name (or op) rather than its id
 * where the reason or the page knows it.
 */
function linkRuns(text: string, runs: ReadonlyMap<string, RelatedRun>) {
  const parts: ComponentChildren[] = [];
  let from = 0;
  for (const match of text.matchAll(RUN_IN_REASON)) {
    const [whole, id, name] = match as unknown as [string, string, string | undefined];
    parts.push(text.slice(from, match.index));
    from = match.index + whole.length;
    const known = runs.get(id.toLowerCase());
    const label = name ?? (known ? labelOf(known) : null);
    parts.push(
      <a key={from} href={`#/runs/${id}`} title={id}>
        {label ?? <code>{id}</code>}
      </a>,
    );
  }
  parts.push(text.slice(from));
  return parts;
}

function pointKey(p: Measurement): string {
  return `${p.name}|${p.at}|${p.value ?? JSON.stringify(p.data)}|${p.step}`;
}

/** The newest point of a series (by time; of equal times, the one recorded last). */
function newestOf(points: readonly Measurement[]): Measurement {
  let newest = points[0]!;
  for (const p of points) if (p.at >= newest.at) newest = p;
  return newest;
}
