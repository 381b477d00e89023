import { copyFileSync, mkdirSync } from 'node:fs';
import { build } from 'esbuild';
import { fromPackageRoot } from '../src/package-root.js';

/**
 * Bundle the dashboard (src/dashboard: Preact and graphql-ws's client) into dist/dashboard, which
 * the service serves at /. Everything it loads comes from the service itself: no CDN.
 */
const out = fromPackageRoot('dist/dashboard');
mkdirSync(out, { recursive: true });
const started = performance.now();
const result = await build({
  entryPoints: { app: fromPackageRoot('src/dashboard/main.tsx') },
  bundle: true,
  format: 'esm',
  target: ['es2022'],
  minify: true,
  sourcemap: true,
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outdir: out,
  metafile: true,
  logLevel: 'warning',
});
copyFileSync(fromPackageRoot('src/dashboard/styles.css'), `${out}/app.css`);
copyFileSync(fromPackageRoot('src/dashboard/index.html'), `${out}/index.html`);
const bytes = Object.entries(result.metafile.outputs)
  .filter(([file]) => file.endsWith('.js'))
  .reduce((sum, [, o]) => sum + o.bytes, 0);
console.log(
  `wrote dist/dashboard (app.js ${(bytes / 1024).toFixed(0)} KiB) in ${Math.round(performance.now() - started)} ms`,
);
