import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * `tsx bench/profile-summary.ts DIR [N]`: the functions with the most self time in the V8 CPU
 * profiles (node --cpu-prof) in DIR, and the files they are in.
 */
interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount: number;
}
const [dir, top = '30'] = process.argv.slice(2);
if (!dir) throw new Error('usage: tsx bench/profile-summary.ts DIR [N]');
const byFunction = new Map<string, number>();
const byFile = new Map<string, number>();
let total = 0;
for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { nodes: Node[] };
  for (const node of profile.nodes) {
    const url = node.callFrame.url.replace(/^file:\/\//, '').replace(/.*node_modules\//, '~/');
    const key = `${node.callFrame.functionName || '(anonymous)'} ${url}:${node.callFrame.lineNumber + 1}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + node.hitCount);
    const pkg = url.startsWith('~/')
      ? url
          .split('/')
          .slice(0, url.startsWith('~/@') ? 3 : 2)
          .join('/')
      : url || node.callFrame.functionName;
    byFile.set(pkg, (byFile.get(pkg) ?? 0) + node.hitCount);
    total += node.hitCount;
  }
}
const show = (map: Map<string, number>) =>
  [...map]
    .sort((x, y) => y[1] - x[1])
    .slice(0, Number(top))
    .map(([k, v]) => `${((v / total) * 100).toFixed(1).padStart(5)} %  ${k}`)
    .join('\n');
console.log(
  `samples: ${total}\n\nby package or file:\n${show(byFile)}\n\nby function:\n${show(byFunction)}`,
);
