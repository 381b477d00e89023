export interface Point {
  value: number;
  step: number | null;
  at: string;
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
