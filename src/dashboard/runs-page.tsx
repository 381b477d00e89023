import type { Client } from 'graphql-ws';
import { useEffect, useRef, useState } from 'preact/hooks';
import { gql, subscribe } from './api.js';
import { CountsBar } from './counts-bar.js';
import { ago, shortId } from './format.js';
import { NativeStatus, Outcome, ProgressBar, StatusBadge } from './status-badge.js';
import { sequence, throttle } from './throttle.js';
import {
  RUN_SUMMARY,
  STATUS_COUNT,
  type RunSummary,
  type StatusCount,
  type StatusInfo,
} from './types.js';

const PAGE = 50;
/** The API's largest page: what a reload asks for at most, to show again what was shown. */
const MAX_PAGE = 500;
/**
 * Unfinished rows whose progress is followed live, newest first: one subscription each, and the
 * server allows 200 per connection. Statuses are live for every row whatever this is.
 */
const FOLLOW_MAX = 100;
/** The table's columns; each cell repeats its name as data-label for the phone layout. */
const COLUMNS = ['Run', 'Project', 'Status', 'Progress', 'Updated'] as const;

/** How often the counts per status are read again while changes stream in, at most. */
const COUNTS_EVERY_MS = 500;

/**
 * A page of runs; with `$counts`, the counts per status for the whole filter too. `runs` comes
 * first: its logCursor is read before the counts, so a change the counts miss streams after it.
 */
const RUNS_QUERY = `query Runs($filter: RunFilter, $first: Int, $after: String, $counts: Boolean!) {
  runs(filter: $filter, first: $first, after: $after) {
    logCursor totalCount @include(if: $counts)
    edges { node { ${RUN_SUMMARY} } } pageInfo { hasNextPage endCursor } }
  runCounts(filter: $filter) @include(if: $counts) { ${STATUS_COUNT} } }`;

const COUNTS_QUERY = `query Counts($filter: RunFilter) {
  runs(filter: $filter, first: 1) { totalCount } runCounts(filter: $filter) { ${STATUS_COUNT} } }`;

interface RunsPage {
  runs: {
    logCursor: string;
    totalCount?: number;
    edges: { node: RunSummary }[];
    pageInfo: { hasNextPage: boolean; endCursor: string | null };
  };
  runCounts?: StatusCount[];
}

interface Counts {
  /** The filter they are for. */
  key: string;
  counts: StatusCount[];
  total: number;
}

interface Props {
  token: string | null;
  client: Client;
  statuses: StatusInfo[];
  params: URLSearchParams;
  /** +1 each time the live connection is (back) up; null while it is down. */
  liveEpoch: number | null;
}

/** The API's RunFilter for the page's filters, and a key that names it. */
function runFilter(project: string, status: string) {
  const filter = { project: project || undefined, statuses: status ? [status] : undefined };
  return { filter, key: JSON.stringify(filter) };
}

function setFilter(params: URLSearchParams, key: string, value: string) {
  const next = new URLSearchParams(params);
  if (value) next.set(key, value);
  else next.delete(key);
  const query = next.toString();
  location.hash = `#/${query ? `?${query}` : ''}`;
}

/** The live table of runs, newest first, filtered by project and status. */
export function RunsPage({ token, client, statuses, params, liveEpoch }: Props) {
  const project = params.get('project') ?? '';
  const status = params.get('status') ?? '';
  const [runs, setRuns] = useState<RunSummary[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [flashing, setFlashing] = useState<ReadonlySet<string>>(new Set());
  const [projectInput, setProjectInput] = useState(project);
  const [reloads, setReloads] = useState(0);
  /** Where the next page starts, while there is one. */
  const [nextPage, setNextPage] = useState<string | null>(null);
  const [loadingMore, setLoadingMore] = useState(false);
  /** Runs per status for the whole filter (not only the rows loaded), kept current. */
  const [counts, setCounts] = useState<Counts | null>(null);
  const [, tick] = useState(0);
  const projectsSeen = useRef(new Set<string>());
  /** The newest snapshot seen of each run, shown or not: an older snapshot never wins. */
  const latest = useRef(new Map<string, RunSummary>());
  /**
   * The oldest run loaded while there are older ones: a change to a run older than it waits for
   * "Show more" (which then shows its newest snapshot); null when every run is loaded.
   */
  const oldestLoaded = useRef<RunSummary | null>(null);
  /** Pages loaded for the current filter: a reload shows as many again. */
  const pages = useRef(1);
  /** +1 on every (re)load: a "Show more" answer from before it is dropped. */
  const generation = useRef(0);
  /** How many rows are shown: a reload after a reconnect asks for as many. */
  const shown = useRef(0);
  shown.current = runs?.length ?? 0;

  useEffect(() => setProjectInput(project), [project]);

  // Relative times stay true.
  useEffect(() => {
    const timer = setInterval(() => tick((n) => n + 1), 15_000);
    return () => clearInterval(timer);
  }, []);

  /** Put in (or update, or take out when the filter drops it) a snapshot newer than the last. */
  const apply = (run: RunSummary) => {
    if ((latest.current.get(run.id)?.revision ?? -1) >= run.revision) return false;
    latest.current.set(run.id, run);
    setRuns((current) => upsert(current, run, status, oldestLoaded.current));
    return true;
  };

  // The first page (again each time the live connection is back), then, while it is live,
  // every status change since the page was read: `logCursor` makes the seam exact.
  const loadedFor = useRef<string | null>(null);
  useEffect(() => {
    let cancelled = false;
    let stop = () => {};
    const { filter, key } = runFilter(project, status);
    // While the connection is down, what is shown stays (it is loaded again once it is back).
    if (liveEpoch == null && loadedFor.current === key) return;
    const again = loadedFor.current === key;
    if (!again) {
      // Another filter: its own first page; the old one's cursor must not be followed.
      pages.current = 1;
      setNextPage(null);
    }
    const loading = ++generation.current;
    setLoadingMore(false);
    const first = Math.min(MAX_PAGE, Math.max(PAGE * pages.current, again ? shown.current : 0));
    // The counts are read again as changes arrive, at most every COUNTS_EVERY_MS; only the
    // answer to the latest read is shown.
    const reads = sequence();
    const showCounts = (counts: StatusCount[], total: number) => setCounts({ key, counts, total });
    const refreshCounts = throttle(() => {
      const read = reads.next();
      gql<{ runs: { totalCount: number }; runCounts: StatusCount[] }>(
        COUNTS_QUERY,
        { filter },
        token,
      ).then(
        (data) =>
          !cancelled && reads.isCurrent(read) && showCounts(data.runCounts, data.runs.totalCount),
        // The rows stay live; the counts catch up with the next change.
        () => {},
      );
    }, COUNTS_EVERY_MS);
    const firstRead = reads.next();
    gql<RunsPage>(RUNS_QUERY, { filter, first, counts: true }, token).then(
      (data) => {
        if (cancelled || loading !== generation.current) return;
        const page = data.runs.edges.map((e) => e.node);
        if (reads.isCurrent(firstRead)) showCounts(data.runCounts ?? [], data.runs.totalCount ?? 0);
        loadedFor.current = key;
        latest.current = new Map(page.map((r) => [r.id, r]));
        const { hasNextPage, endCursor } = data.runs.pageInfo;
        oldestLoaded.current = hasNextPage ? (page.at(-1) ?? null) : null;
        setNextPage(hasNextPage ? endCursor : null);
        setError(null);
        setRuns(page);
        if (liveEpoch == null) return;
        stop = subscribe<{ statusChanged: { run: RunSummary } }>(
          client,
          `subscription Changes($filter: StatusChangeFilter, $after: String) {
            statusChanged(filter: $filter, after: $after) { run { ${RUN_SUMMARY} } } }`,
          { filter: project ? { projects: [project] } : {}, after: data.runs.logCursor },
          ({ statusChanged: { run } }) => {
            refreshCounts();
            if (!apply(run)) return;
            // Highlight the changed row for a moment (rows keep their identity, and so focus).
            setFlashing((f) => new Set(f).add(run.id));
            setTimeout(
              () =>
                setFlashing((f) => {
                  const next = new Set(f);
                  next.delete(run.id);
                  return next;
                }),
              1500,
            );
          },
          // Ended by the server (it fell behind, say): read the page again.
          () => !cancelled && setReloads((n) => n + 1),
        );
      },
      (e: unknown) => !cancelled && setError(e instanceof Error ? e.message : String(e)),
    );
    return () => {
      cancelled = true;
      refreshCounts.cancel();
      stop();
    };
  }, [client, token, project, status, liveEpoch, reloads]);

  /**
   * The next page. What it brings is each run in its newest snapshot seen, and so is every run
   * it opens up: a change that arrived while the page was on its way (a run that only now
   * matches the status filter, say) was kept aside, and is shown now.
   */
  const showMore = () => {
    const { filter, key } = runFilter(project, status);
    if (nextPage == null || loadingMore || loadedFor.current !== key) return;
    const loading = generation.current;
    setLoadingMore(true);
    gql<RunsPage>(RUNS_QUERY, { filter, first: PAGE, after: nextPage, counts: false }, token).then(
      (data) => {
        if (loading !== generation.current) return;
        const page = data.runs.edges.map((e) => e.node);
        const { hasNextPage, endCursor } = data.runs.pageInfo;
        const before = oldestLoaded.current;
        const after = hasNextPage ? (page.at(-1) ?? before) : null;
        const opened = new Map<string, RunSummary>();
        for (const run of page) {
          const seen = latest.current.get(run.id);
          if (!seen || seen.revision <= run.revision) latest.current.set(run.id, run);
          opened.set(run.id, latest.current.get(run.id)!);
        }
        for (const run of latest.current.values())
          if (
            (before == null || run.createdAt < before.createdAt) &&
            (after == null || run.createdAt >= after.createdAt)
          )
            opened.set(run.id, run);
        oldestLoaded.current = after;
        pages.current += 1;
        setNextPage(hasNextPage ? endCursor : null);
        setLoadingMore(false);
        setRuns((current) =>
          [...opened.values()].reduce((list, run) => upsert(list, run, status, after), current),
        );
      },
      (e: unknown) => {
        if (loading !== generation.current) return;
        setLoadingMore(false);
        setError(e instanceof Error ? e.message : String(e));
      },
    );
  };

  // Progress does not change the status: follow the newest shown runs that are not done, one
  // subscription per run, added and ended as runs come and go.
  const following = useRef(new Map<string, () => void>());
  const unfinished = (runs ?? []).filter((r) => !r.isDone);
  const followKey = unfinished
    .slice(0, FOLLOW_MAX)
    .map((r) => r.id)
    .join(',');
  useEffect(() => {
    const wanted = new Set(liveEpoch == null || !followKey ? [] : followKey.split(','));
    for (const [id, stop] of following.current)
      if (!wanted.has(id)) {
        stop();
        following.current.delete(id);
      }
    for (const id of wanted)
      if (!following.current.has(id))
        following.current.set(
          id,
          subscribe<{ runUpdated: RunSummary }>(
            client,
            `subscription Run($id: ID!) { runUpdated(id: $id) { ${RUN_SUMMARY} } }`,
            { id },
            ({ runUpdated }) => apply(runUpdated),
          ),
        );
  });
  // The status filter is read when events arrive: new subscriptions for a new filter.
  useEffect(() => {
    const current = following.current;
    return () => {
      for (const stop of current.values()) stop();
      current.clear();
    };
  }, [client, status, liveEpoch]);

  for (const run of runs ?? []) projectsSeen.current.add(run.project);
  const colors = new Map(statuses.map((s) => [s.status, s.color]));
  const current = counts != null && counts.key === runFilter(project, status).key ? counts : null;

  return (
    <section aria-labelledby="runs-title">
      <h1 id="runs-title">Runs</h1>
      {current != null && (current.total > 0 || status !== '') && (
        <CountsBar
          counts={current.counts}
          total={current.total}
          colors={colors}
          label={project ? `Runs of ${project} by status` : 'Runs by status'}
          hrefFor={(s) => {
            const next = new URLSearchParams(params);
            next.set('status', s);
            return `#/?${next.toString()}`;
          }}
        />
      )}
      <form
        class="filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setFilter(params, 'project', projectInput.trim());
        }}
      >
        <div class="field">
          <label for="project">Project</label>
          <input
            id="project"
            list="projects"
            value={projectInput}
            placeholder="all projects"
            onInput={(e) => setProjectInput((e.target as HTMLInputElement).value)}
            onChange={(e) =>
              setFilter(params, 'project', (e.target as HTMLInputElement).value.trim())
            }
          />
          <datalist id="projects">
            {[...projectsSeen.current].sort().map((p) => (
              <option key={p} value={p} />
            ))}
          </datalist>
        </div>
        <div class="field">
          <label for="status">Status</label>
          <select
            id="status"
            value={status}
            onChange={(e) => setFilter(params, 'status', (e.target as HTMLSelectElement).value)}
          >
            <option value="">any status</option>
            {statuses.map((s) => (
              <option key={s.status} value={s.status}>
                {s.status}
              </option>
            ))}
          </select>
        </div>
      </form>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {runs == null && !error && <p class="muted">Loading runs…</p>}
      {runs != null && runs.length === 0 && nextPage == null && (
        <div class="empty" data-testid="empty">
          <h2>{project || status ? 'No runs match these filters' : 'No runs yet'}</h2>
          <p>Runs appear here the moment a worker creates one. From a worker, with the client:</p>
          <pre>
            <code>{`const run = await runstate.createRun({ project: '${project || 'my-project'}' });
await run.start();`}</code>
          </pre>
          <p>
            or with the API:{' '}
            <code>
              mutation {'{'} createRun(input: {'{'} project: "{project || 'my-project'}" {'}'}){' '}
              {'{'} id {'}'} {'}'}
            </code>
          </p>
        </div>
      )}
      {runs != null && runs.length > 0 && (
        // Explicit roles: the phone layout makes the table's parts blocks, which drops them.
        <table class="runs" role="table">
          <thead role="rowgroup">
            <tr role="row">
              {COLUMNS.map((name) => (
                <th key={name} scope="col" role="columnheader">
                  {name}
                </th>
              ))}
            </tr>
          </thead>
          <tbody role="rowgroup">
            {runs.map((run) => (
              <tr
                role="row"
                key={run.id}
                data-run-id={run.id}
                class={flashing.has(run.id) ? 'flash' : undefined}
              >
                <td role="cell" data-label="Run">
                  <a href={`#/runs/${run.id}`}>{run.name ?? run.op ?? shortId(run.id)}</a>
                </td>
                <td role="cell" data-label="Project">
                  {run.project}
                </td>
                <td role="cell" data-label="Status">
                  <StatusBadge status={run.status} color={run.color} />{' '}
                  <Outcome outcome={run.outcome} />{' '}
                  <NativeStatus dialect={run.dialect} native={run.nativeStatus} />
                </td>
                <td role="cell" data-label="Progress">
                  <ProgressBar progress={run.progress} phase={run.phase} />
                </td>
                <td role="cell" data-label="Updated">
                  <time dateTime={run.updatedAt} title={run.updatedAt}>
                    {ago(run.updatedAt)}
                  </time>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {runs != null && (runs.length > 0 || nextPage != null) && (
        <p class="more">
          <span class="muted" aria-live="polite">
            {nextPage == null
              ? `${runs.length} ${runs.length === 1 ? 'run' : 'runs'}`
              : runs.length === 0
                ? 'None of the newest runs match; older ones may'
                : `Newest ${runs.length} runs`}
            {unfinished.length > FOLLOW_MAX &&
              ` · progress is live for the newest ${FOLLOW_MAX} unfinished`}
          </span>
          {nextPage != null && (
            <button type="button" onClick={showMore} disabled={loadingMore}>
              {loadingMore ? 'Loading…' : `Show ${PAGE} more`}
            </button>
          )}
        </p>
      )}
    </section>
  );
}

/**
 * The list with `run` put in (newest first) or updated, or taken out when the filter drops it
 * or it is older than the oldest run loaded (the next page brings it). A run created in the
 * same millisecond as that one is kept: the list never misses a run, and never shows one twice.
 */
function upsert(
  current: RunSummary[] | null,
  run: RunSummary,
  status: string,
  oldestLoaded: RunSummary | null,
): RunSummary[] | null {
  if (current == null) return current;
  const rest = current.filter((r) => r.id !== run.id);
  if (status && run.status !== status) return rest;
  if (oldestLoaded != null && run.createdAt < oldestLoaded.createdAt) return rest;
  return [...rest, run].sort(newestFirst);
}

/** The API's order: creation time, then id, both descending. */
function newestFirst(a: RunSummary, b: RunSummary): number {
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? 1 : -1;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}
