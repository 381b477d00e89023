import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type { GraphiQLOptions, Plugin } from 'graphql-yoga';
import { fromPackageRoot } from '../package-root.js';
import { sendAsset } from './respond.js';

/**
 * GraphiQL, served by runstate itself: yoga's page loads its script, styles and editor workers
 * from unpkg.com; this one loads them from `/graphiql/`, and runs no inline script, under a
 * Content-Security-Policy that admits nothing but this origin. The files are those of
 * @graphql-yoga/graphiql (the build yoga's own page points at), copied into dist/graphiql by
 * `npm run build` (scripts/build-graphiql.ts); a checkout that was never built serves them from
 * node_modules.
 */
export const GRAPHIQL_ASSETS_PATH = '/graphiql/';

/**
 * GraphiQL's own options. Subscriptions over SSE: an HTTP request that carries the headers of
 * GraphiQL's Headers tab (the token), which graphql-ws would put into each operation's payload
 * instead of the connection's connectionParams, and the socket would close with 4403.
 */
export const GRAPHIQL_OPTIONS: GraphiQLOptions = {
  title: 'runstate GraphiQL',
  subscriptionsProtocol: 'SSE',
  inputValueDeprecation: true,
  schemaDescription: true,
  directiveIsRepeatable: true,
};

/**
 * GraphiQL needs styles in `style` attributes and in the <style> elements its editor (Monaco)
 * writes: 'unsafe-inline' for styles only. Scripts and workers come from this origin alone.
 */
export const GRAPHIQL_CSP =
  "default-src 'self'; script-src 'self'; worker-src 'self'; style-src 'self' 'unsafe-inline'; " +
  "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; " +
  "base-uri 'none'; form-action 'self'";

/** The files of @graphql-yoga/graphiql runstate serves, by the name it serves each under. */
export const GRAPHIQL_FILES: Record<string, string> = {
  'graphiql.js': 'yoga-graphiql.umd.js',
  'graphiql.css': 'graphiql.css',
  'editor.worker.js': 'monacoeditorwork/editor.worker.bundle.js',
  'json.worker.js': 'monacoeditorwork/json.worker.bundle.js',
  'graphql.worker.js': 'monacoeditorwork/graphql.worker..bundle.js',
};

const TYPES: Record<string, string> = {
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};

/** Where the built copies are (dist/graphiql), or null for the package's own in node_modules. */
const BUILT = fromPackageRoot('dist/graphiql');

/**
 * The page's one script of its own: where Monaco finds its workers (at a URL of this origin,
 * which it starts as they are: no blob: URLs as on yoga's page), then GraphiQL with the options
 * the page carries as JSON.
 */
const START_JS = `self.MonacoEnvironment = {
  globalAPI: false,
  getWorkerUrl: function (_moduleId, label) {
    var workers = { json: 'json.worker.js', graphql: 'graphql.worker.js' };
    var path = '${GRAPHIQL_ASSETS_PATH}' + (workers[label] || 'editor.worker.js');
    return new URL(path, location.href).href;
  },
};
YogaGraphiQL.renderYogaGraphiQL(
  document.getElementById('root'),
  JSON.parse(document.getElementById('graphiql-options').textContent),
);
`;

/** yoga's `renderGraphiQL`: the page, with no inline script and nothing from elsewhere. */
export function renderGraphiQLPage(options: GraphiQLOptions | undefined): string {
  // Inside a JSON <script> block, `<` could end it: escaped, JSON.parse reads it back.
  const json = JSON.stringify(options ?? {}).replace(/</g, '\\u003c');
  const title = (options?.title ?? 'GraphiQL').replace(/[<>&"]/g, '');
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>${title}</title>
    <link rel="icon" href="data:," />
    <link rel="stylesheet" href="${GRAPHIQL_ASSETS_PATH}graphiql.css" />
  </head>
  <body id="body" class="no-focus-outline">
    <noscript>GraphiQL needs JavaScript.</noscript>
    <div id="root">Loading ${title}…</div>
    <script id="graphiql-options" type="application/json">${json}</script>
    <script src="${GRAPHIQL_ASSETS_PATH}graphiql.js"></script>
    <script src="${GRAPHIQL_ASSETS_PATH}start.js"></script>
  </body>
</html>
`;
}

/** The page's headers (yoga answers it with a Content-Type alone). */
export function useGraphiQLHeaders(): Plugin {
  return {
    onResponse({ response }) {
      if (!response.headers.get('content-type')?.startsWith('text/html')) return;
      response.headers.set('content-security-policy', GRAPHIQL_CSP);
      response.headers.set('referrer-policy', 'no-referrer');
      response.headers.set('x-content-type-options', 'nosniff');
      response.headers.set('cache-control', 'no-cache');
    },
  };
}

/**
 * The folder the files are read from: dist/graphiql once built, else the package's own (a
 * development dependency); null when neither is there.
 */
export function graphiqlSourceDir(): string | null {
  if (existsSync(`${BUILT}/graphiql.js`)) return BUILT;
  try {
    const require = createRequire(import.meta.url);
    return `${dirname(require.resolve('@graphql-yoga/graphiql/package.json'))}/dist`;
  } catch {
    return null;
  }
}

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/**
 * GraphiQL's files at `/graphiql/<file>`, read on first use (about 8 MB) and served from memory
 * with an ETag. Answers whether a path was GraphiQL's (and answered it).
 */
export function createGraphiQLAssets() {
  const assets = new Map<string, Asset | null>();
  const load = (file: string): Asset | null => {
    if (file !== 'start.js' && !Object.hasOwn(GRAPHIQL_FILES, file)) return null;
    if (assets.has(file)) return assets.get(file)!;
    let body: Buffer | null = null;
    if (file === 'start.js') body = Buffer.from(START_JS);
    else {
      const dir = graphiqlSourceDir();
      const path = dir && `${dir}/${dir === BUILT ? file : GRAPHIQL_FILES[file]}`;
      body = path && existsSync(path) ? readFileSync(path) : null;
    }
    const asset = body && {
      body,
      type: TYPES[file.slice(file.lastIndexOf('.') + 1)]!,
      etag: `"${createHash('sha1').update(body).digest('base64url')}"`,
    };
    assets.set(file, asset);
    return asset;
  };

  return {
    serve(req: IncomingMessage, res: ServerResponse, path: string): boolean {
      if (!path.startsWith(GRAPHIQL_ASSETS_PATH)) return false;
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-length': 0 });
        res.end();
        return true;
      }
      const found = load(path.slice(GRAPHIQL_ASSETS_PATH.length));
      if (!found) {
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'content-length': 10 });
        res.end('Not found\n');
        return true;
      }
      sendAsset(req, res, found);
      return true;
    },
  };
}

export type GraphiQLAssets = ReturnType<typeof createGraphiQLAssets>;
