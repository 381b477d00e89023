import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * A static file (the dashboard's, GraphiQL's): revalidated by its ETag on every load (304 when
 * the browser has it), with its length; no body for HEAD.
 */
export function sendAsset(
  req: IncomingMessage,
  res: ServerResponse,
  asset: { type: string; etag: string; body: Buffer },
  headers: Record<string, string> = {},
): void {
  const all = {
    'content-type': asset.type,
    etag: asset.etag,
    'cache-control': 'no-cache',
    'x-content-type-options': 'nosniff',
    ...headers,
  };
  if (req.headers['if-none-match'] === asset.etag) {
    res.writeHead(304, all);
    res.end();
    return;
  }
  res.writeHead(200, { ...all, 'content-length': asset.body.length });
  res.end(req.method === 'HEAD' ? undefined : asset.body);
}

/** Answer JSON with a length, never cached. */
export function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(body);
}

/** A GraphQL-shaped error answer: `{ errors: [{ message, extensions }] }`. */
export function sendError(
  res: ServerResponse,
  status: number,
  message: string,
  extensions: Record<string, unknown>,
  headers: Record<string, string> = {},
): void {
  sendJson(res, status, { errors: [{ message, extensions }] }, headers);
}
