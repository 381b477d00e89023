/** A point of a numeric series. */
export interface Point {
  value: number;
  step: number | null;
  at: string;
}

/** A point of any series: a number (`value`), or other JSON (`data`). */
export interface AnyPoint {
  value: number | null;
  data?: unknown;
  step: number | null;
  at: string;
}

/** Whether every point of a series is a number, so the series can be drawn as a line. */
export function isNumericSeries(points: readonly AnyPoint[]): points is Point[] {
  return points.every((p) => p.value != null);
}

const WIDTH = 420;
const HEIGHT = 170;
const PAD = { left: 52, right: 12, top: 12, bottom: 28 };

function compact(n: number): string {
  return Math.abs(n) >= 1000 || (Math.abs(n) < 0.01 && n !== 0)
    ? n.toExponential(2)
    : String(Number(n.toPrecision(4)));
}

/**
 * One measurement series as an SVG line: x is the step when every point has one, else the time.
 * Scales to its container; described for screen readers by its last value and range.
 */
export function SeriesChart({ name, points }: { name: string; points: Point[] }) {
  const bySteps = points.every((p) => p.step != null);
  const xs = points.map((p) => (bySteps ? p.step! : new Date(p.at).getTime()));
  const ys = points.map((p) => p.value);
  const [xMin, xMax] = [Math.min(...xs), Math.max(...xs)];
  const [yMin, yMax] = [Math.min(...ys), Math.max(...ys)];
  const sx = (x: number) =>
    PAD.left + (xMax === xMin ? 0.5 : (x - xMin) / (xMax - xMin)) * (WIDTH - PAD.left - PAD.right);
  const sy = (y: number) =>
    HEIGHT -
    PAD.bottom -
    (yMax === yMin ? 0.5 : (y - yMin) / (yMax - yMin)) * (HEIGHT - PAD.top - PAD.bottom);
  const order = xs.map((x, i) => [x, ys[i]!] as const).sort((a, b) => a[0] - b[0]);
  const line = order.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
  const last = points.at(-1)!;
  return (
    <figure class="chart" data-series={name}>
      <figcaption>
        <strong>{name}</strong> <span class="muted">last {compact(last.value)}</span>
      </figcaption>
      <svg
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        role="img"
        aria-label={`${name}: ${points.length} points from ${compact(yMin)} to ${compact(yMax)}, last ${compact(last.value)}`}
      >
        <line
          class="axis"
          x1={PAD.left}
          y1={HEIGHT - PAD.bottom}
          x2={WIDTH - PAD.right}
          y2={HEIGHT - PAD.bottom}
        />
        <line class="axis" x1={PAD.left} y1={PAD.top} x2={PAD.left} y2={HEIGHT - PAD.bottom} />
        <text class="tick" x={PAD.left - 6} y={sy(yMax) + 4} text-anchor="end">
          {compact(yMax)}
        </text>
        <text class="tick" x={PAD.left - 6} y={sy(yMin) + 4} text-anchor="end">
          {compact(yMin)}
        </text>
        <text class="tick" x={PAD.left} y={HEIGHT - 8}>
          {bySteps ? `step ${xMin}` : new Date(xMin).toLocaleTimeString()}
        </text>
        <text class="tick" x={WIDTH - PAD.right} y={HEIGHT - 8} text-anchor="end">
          {bySteps ? `step ${xMax}` : new Date(xMax).toLocaleTimeString()}
        </text>
        <polyline class="series" points={line} />
        {order.length <= 60 &&
          order.map(([x, y], i) => <circle key={i} class="point" cx={sx(x)} cy={sy(y)} r={2.5} />)}
      </svg>
    </figure>
  );
}

/** Text of a point's JSON shown whole up to this length, then cut. */
const MAX_TEXT = 2000;

/** A point's value as text: a string as it is, a number compactly, anything else as JSON. */
function textOf(point: AnyPoint): string {
  if (point.value != null) return compact(point.value);
  if (typeof point.data === 'string') return point.data;
  const text = JSON.stringify(point.data, null, 2);
  return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}…` : text;
}

/**
 * A series that is not (only) numbers: its newest point, with its step and time. A string or a
 * boolean on one line, an object or a list as indented JSON.
 */
export function LatestValue({ name, point }: { name: string; point: AnyPoint }) {
  const text = textOf(point);
  const where = [
    point.step != null ? `step ${point.step}` : null,
    new Date(point.at).toLocaleTimeString(),
  ]
    .filter(Boolean)
    .join(' · ');
  return (
    <figure class="chart latest" data-series={name}>
      <figcaption>
        <strong>{name}</strong> <span class="muted">latest, {where}</span>
      </figcaption>
      <pre class="latest-value" aria-label={`${name}: latest ${text}, ${where}`}>
        {text}
      </pre>
    </figure>
  );
}
