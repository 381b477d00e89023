import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fromPackageRoot } from './package-root.js';
import { sendAsset } from './server/respond.js';

const DIR = fromPackageRoot('dist/dashboard');

const TYPES: Record<string, string> = {
  'app.js': 'text/javascript; charset=utf-8',
  'app.js.map': 'application/json; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

/** Everything the page loads comes from this service; it runs no inline script. */
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
  "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/**
 * The dashboard's files, built by `npm run build` into dist/dashboard, read once and served
 * from memory: `/` (the page) and `/dashboard/<file>`. Without a build, `/` says how to make one.
 */
export function createDashboardAssets(graphqlPath: string) {
  const assets = new Map<string, Asset>();
  const asset = (body: Buffer, type: string): Asset => ({
    body,
    type,
    etag: `"${createHash('sha1').update(body).digest('base64url')}"`,
  });
  if (existsSync(`${DIR}/index.html`)) {
    const page = readFileSync(`${DIR}/index.html`, 'utf8').replace('__GRAPHQL_PATH__', graphqlPath);
    assets.set('/', asset(Buffer.from(page), 'text/html; charset=utf-8'));
    for (const [file, type] of Object.entries(TYPES))
      if (existsSync(`${DIR}/${file}`))
        assets.set(`/dashboard/${file}`, asset(readFileSync(`${DIR}/${file}`), type));
  }

  return {
    /** Whether `path` is the dashboard's; answers it if so. */
    serve(req: IncomingMessage, res: ServerResponse, path: string): boolean {
      if (path !== '/' && !path.startsWith('/dashboard/')) return false;
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-length': 0 });
        res.end();
        return true;
      }
      const found = assets.get(path);
      if (!found) {
        const body =
          path === '/'
            ? 'The dashboard is not built yet: run `npm run build` (npm start does it).\n'
            : 'Not found\n';
        res.writeHead(path === '/' ? 503 : 404, {
          'content-type': 'text/plain; charset=utf-8',
          'content-length': Buffer.byteLength(body),
        });
        res.end(body);
        return true;
      }
      sendAsset(
        req,
        res,
        found,
        path === '/' ? { 'content-security-policy': CSP, 'referrer-policy': 'no-referrer' } : {},
      );
      return true;
    },
  };
}

export type DashboardAssets = ReturnType<typeof createDashboardAssets>;
