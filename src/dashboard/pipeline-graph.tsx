import type { Client } from 'graphql-ws';
import { useEffect, useRef, useState } from 'preact/hooks';
import { gql, subscribe } from './api.js';
import { useNewestById } from './newest.js';
import { CountsBar } from './counts-bar.js';
import { shortId, textColorOn } from './format.js';
import { sequence, throttle } from './throttle.js';
import { STATUS_COUNT, type StatusCount } from './types.js';

/** A step of a pipeline as the graph draws it. */
interface Step {
  id: string;
  name: string | null;
  op: string | null;
  status: string;
  category: string;
  color: string;
  /** Grows with every change of the run: the larger of two snapshots is the newer. */
  revision: number;
}

/** Its upstreams with their conditions (fixed when the step is created). */
interface StepWithDependencies extends Step {
  dependencies: { when: string[]; run: { id: string } }[];
}

const STEP = `id name op status category color revision`;
/** The API's largest page: a pipeline with more steps shows its first 500. */
const MAX_STEPS = 500;
/** How often the counts per status are read again while changes stream in, at most. */
const COUNTS_EVERY_MS = 500;

/**
 * The steps, oldest first, and their counts. `children` comes first: its logCursor is read
 * before the steps and the counts, so whatever they miss streams after it.
 */
const STEPS_QUERY = `query Steps($id: ID!, $first: Int) { run(id: $id) {
  children(first: $first, orderBy: { field: CREATED_AT, direction: ASC }) {
    logCursor totalCount edges { node { ${STEP} dependencies { when run { id } } } } }
  childCounts { ${STATUS_COUNT} } } }`;
const COUNTS_QUERY = `query StepCounts($id: ID!) { run(id: $id) { childCounts { ${STATUS_COUNT} } } }`;

/** Box and gap sizes of the layout, in CSS pixels. */
const BOX_W = 180;
const BOX_H = 60;
/** Room between columns for the edges and their labels. */
const GAP_X = 190;
const GAP_Y = 24;
const PAD = 4;

interface Props {
  token: string | null;
  client: Client;
  /** The parent run. */
  id: string;
  colors: ReadonlyMap<string, string>;
  /** +1 each time the live connection is (back) up; null while it is down. */
  liveEpoch: number | null;
}

interface Loaded {
  /** The steps' structure, oldest first (their statuses are in `latest`). */
  steps: StepWithDependencies[];
  total: number;
  counts: StatusCount[];
}

/**
 * A run's steps as a graph, live: a box per child in its status color, an arrow from each
 * upstream to the step that waits for it, labelled with the statuses that satisfy it. Nothing
 * for a run without children. Columns are dependency depth: a step stands right of every
 * sibling it waits for.
 */
export function PipelineGraph({ token, client, id, colors, liveEpoch }: Props) {
  const [loaded, setLoaded] = useState<Loaded | null>(null);
  /** The newest snapshot seen of each step: an older one never wins. */
  const { latest, keep, redraw } = useNewestById<Step>();
  const [reloads, setReloads] = useState(0);
  const [error, setError] = useState<string | null>(null);

  const loadedFor = useRef<string | null>(null);
  useEffect(() => {
    // While the connection is down, what is shown stays (it is loaded again once it is back).
    if (liveEpoch == null && loadedFor.current === id) return;
    let cancelled = false;
    let stop = () => {};
    const countReads = sequence();
    /** The counts again (the live events say what changed, not how many there are now). */
    const refreshCounts = throttle(() => {
      const read = countReads.next();
      gql<{ run: { childCounts: StatusCount[] } | null }>(COUNTS_QUERY, { id }, token).then(
        (data) =>
          !cancelled &&
          countReads.isCurrent(read) &&
          data.run &&
          setLoaded((l) => l && { ...l, counts: data.run!.childCounts }),
        () => {},
      );
    }, COUNTS_EVERY_MS);
    /** The whole structure again: a step was added (its conditions come with it). */
    const stepReads = sequence();
    const read = () => {
      const mine = stepReads.next();
      return gql<{
        run: {
          children: {
            logCursor: string;
            totalCount: number;
            edges: { node: StepWithDependencies }[];
          };
          childCounts: StatusCount[];
        } | null;
      }>(STEPS_QUERY, { id, first: MAX_STEPS }, token).then((data) => {
        if (cancelled || !stepReads.isCurrent(mine) || !data.run) return null;
        const steps = data.run.children.edges.map((e) => e.node);
        for (const step of steps) keep(step);
        setError(null);
        setLoaded({ steps, total: data.run.children.totalCount, counts: data.run.childCounts });
        return data.run.children.logCursor;
      });
    };
    const refreshSteps = throttle(() => void read().catch(() => {}), COUNTS_EVERY_MS);
    read().then(
      (logCursor) => {
        if (logCursor == null) return;
        loadedFor.current = id;
        if (liveEpoch == null) return;
        stop = subscribe<{ statusChanged: { run: Step } }>(
          client,
          `subscription Steps($id: ID!, $after: String) {
            statusChanged(filter: { parentId: $id }, after: $after) { run { ${STEP} } } }`,
          { id, after: logCursor },
          ({ statusChanged: { run } }) => {
            const known = latest.has(run.id);
            if (keep(run)) redraw();
            if (known) refreshCounts();
            else refreshSteps();
          },
          // Ended by the server (it fell behind, say): read the steps again.
          () => !cancelled && setReloads((n) => n + 1),
        );
      },
      (e: unknown) => !cancelled && setError(e instanceof Error ? e.message : String(e)),
    );
    return () => {
      cancelled = true;
      refreshCounts.cancel();
      refreshSteps.cancel();
      stop();
    };
  }, [client, id, token, liveEpoch, reloads]);

  if (error && loaded == null)
    return (
      <p class="error" role="alert">
        The steps could not be read: {error}
      </p>
    );
  if (loaded == null || loaded.steps.length === 0) return null;
  const steps = loaded.steps.map((s) => ({ ...s, ...latest.get(s.id)! }));
  const { boxes, edges, width, height } = layout(steps);
  const labelOf = (step: Step) => step.op ?? step.name ?? shortId(step.id);
  const byId = new Map(steps.map((s) => [s.id, s]));
  const countsTotal = loaded.counts.reduce((n, c) => n + c.count, 0);

  return (
    <section aria-labelledby="steps-title" class="pipeline">
      <h2 id="steps-title">Steps</h2>
      <CountsBar
        counts={loaded.counts}
        total={countsTotal}
        colors={colors}
        label="Steps by status"
        noun={['step', 'steps']}
      />
      {loaded.total > loaded.steps.length && (
        <p class="muted">
          The graph shows the first {loaded.steps.length} of {loaded.total} steps.
        </p>
      )}
      <div class="graph-scroll">
        <div
          class="graph"
          role="group"
          aria-label="Steps and their dependencies"
          style={{ width: `${width}px`, height: `${height}px` }}
        >
          <svg
            class="edges"
            width={width}
            height={height}
            viewBox={`0 0 ${width} ${height}`}
            aria-hidden="true"
          >
            <defs>
              <marker
                id="arrow"
                viewBox="0 0 10 10"
                refX="9"
                refY="5"
                markerWidth="7"
                markerHeight="7"
                orient="auto-start-reverse"
              >
                <path d="M 0 0 L 10 5 L 0 10 z" class="arrow-head" />
              </marker>
            </defs>
            {edges.map((edge) => {
              const upstream = byId.get(edge.from)!;
              const state = edge.when.includes(upstream.status)
                ? 'met'
                : upstream.category === 'DONE'
                  ? 'unmet'
                  : 'waiting';
              return (
                <g
                  key={`${edge.from}-${edge.to}`}
                  class="edge"
                  data-from={labelOf(upstream)}
                  data-to={labelOf(byId.get(edge.to)!)}
                  data-state={state}
                >
                  <path d={edge.path} marker-end="url(#arrow)" />
                  <text class="edge-label" x={edge.label.x} y={edge.label.y} text-anchor="middle">
                    {edge.when.join(' | ')}
                  </text>
                </g>
              );
            })}
          </svg>
          {boxes.map(({ step, x, y }) => {
            const waitsFor = step.dependencies
              .filter((d) => byId.has(d.run.id) && d.run.id !== step.id)
              .map((d) => `${labelOf(byId.get(d.run.id)!)} to be ${d.when.join(' or ')}`);
            // Named in full for screen readers: the arrows are drawn, not read.
            const name = [
              labelOf(step),
              step.status,
              ...(waitsFor.length > 0 ? [`waits for ${waitsFor.join(' and ')}`] : []),
            ].join(', ');
            return (
              <a
                key={step.id}
                class="step"
                href={`#/runs/${step.id}`}
                data-run-id={step.id}
                data-status={step.status}
                aria-label={name}
                title={name}
                style={{
                  left: `${x}px`,
                  top: `${y}px`,
                  width: `${BOX_W}px`,
                  height: `${BOX_H}px`,
                  backgroundColor: step.color,
                  color: textColorOn(step.color),
                }}
              >
                <span class="step-name">{labelOf(step)}</span>
                <span class="step-status">{step.status}</span>
              </a>
            );
          })}
        </div>
      </div>
    </section>
  );
}

interface Box {
  step: StepWithDependencies;
  x: number;
  y: number;
}

interface Edge {
  from: string;
  to: string;
  when: string[];
  path: string;
  label: { x: number; y: number };
}

/**
 * Columns by dependency depth (a step one column right of its deepest upstream sibling), rows
 * within a column by the mean row of their upstreams (fewer crossings), else by creation.
 * Upstreams that are not siblings are left out: they are listed on the step's own page.
 */
function layout(steps: StepWithDependencies[]) {
  const ids = new Set(steps.map((s) => s.id));
  const upstreamsOf = new Map(
    steps.map((s) => [s.id, s.dependencies.filter((d) => ids.has(d.run.id) && d.run.id !== s.id)]),
  );
  const depth = new Map<string, number>();
  const visiting = new Set<string>();
  const depthOf = (id: string): number => {
    const known = depth.get(id);
    if (known != null) return known;
    if (visiting.has(id)) return 0; // a cycle cannot be created; never loop on one anyway
    visiting.add(id);
    let d = 0;
    for (const up of upstreamsOf.get(id) ?? []) d = Math.max(d, depthOf(up.run.id) + 1);
    visiting.delete(id);
    depth.set(id, d);
    return d;
  };
  const columns: StepWithDependencies[][] = [];
  for (const step of steps) (columns[depthOf(step.id)] ??= []).push(step);
  const rowOf = new Map<string, number>();
  const boxes: Box[] = [];
  const at = new Map<string, Box>();
  columns.forEach((column, c) => {
    const meanRow = (s: StepWithDependencies) => {
      const rows = (upstreamsOf.get(s.id) ?? []).map((u) => rowOf.get(u.run.id) ?? 0);
      return rows.length === 0 ? Infinity : rows.reduce((a, b) => a + b, 0) / rows.length;
    };
    const ordered = c === 0 ? column : [...column].sort((a, b) => meanRow(a) - meanRow(b));
    ordered.forEach((step, r) => {
      rowOf.set(step.id, r);
      const box = { step, x: PAD + c * (BOX_W + GAP_X), y: PAD + r * (BOX_H + GAP_Y) };
      boxes.push(box);
      at.set(step.id, box);
    });
  });
  const edges: Edge[] = [];
  for (const box of boxes)
    for (const up of upstreamsOf.get(box.step.id) ?? []) {
      const from = at.get(up.run.id)!;
      const [x1, y1] = [from.x + BOX_W, from.y + BOX_H / 2];
      const [x2, y2] = [box.x - 2, box.y + BOX_H / 2];
      const bend = Math.max(40, (x2 - x1) / 2);
      const curve = (t: number) => cubic(t, [x1, y1], [x1 + bend, y1], [x2 - bend, y2], [x2, y2]);
      edges.push({
        from: up.run.id,
        to: box.step.id,
        when: up.when,
        path: `M ${x1} ${y1} C ${x1 + bend} ${y1}, ${x2 - bend} ${y2}, ${x2} ${y2}`,
        // In the gap just before the step, where no box is: found on the curve by bisection.
        label: labelPoint(curve, x2 - GAP_X / 2),
      });
    }
  const columnsUsed = Math.max(1, columns.length);
  const rowsUsed = Math.max(1, ...columns.map((c) => c.length));
  return {
    boxes,
    edges,
    width: 2 * PAD + columnsUsed * BOX_W + (columnsUsed - 1) * GAP_X,
    height: 2 * PAD + rowsUsed * BOX_H + (rowsUsed - 1) * GAP_Y,
  };
}

type XY = [number, number];

function cubic(t: number, p0: XY, p1: XY, p2: XY, p3: XY): XY {
  const u = 1 - t;
  const f = (i: 0 | 1) =>
    u * u * u * p0[i] + 3 * u * u * t * p1[i] + 3 * u * t * t * p2[i] + t * t * t * p3[i];
  return [f(0), f(1)];
}

/** The point of a left-to-right curve at `x`, just above the line (the label's baseline). */
function labelPoint(curve: (t: number) => XY, x: number): { x: number; y: number } {
  let [lo, hi] = [0, 1];
  for (let i = 0; i < 30; i++) {
    const mid = (lo + hi) / 2;
    if (curve(mid)[0] < x) lo = mid;
    else hi = mid;
  }
  const [px, py] = curve((lo + hi) / 2);
  return { x: Math.round(px), y: Math.round(py) - 5 };
}
