import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { RunstateYoga } from './yoga.js';
import type { DashboardAssets } from '../dashboard-assets.js';
import type { GraphiQLAssets } from './graphiql.js';
import type { Logger } from '../logger.js';
import type { Inflight } from '../ops/inflight.js';
import type { Metrics } from '../ops/metrics.js';
import { requestIdFrom } from '../ops/request-context.js';
import { countResultErrors } from '../graphql/instrument.js';
import { refuseCrossSiteForm } from './cross-site.js';
import { createGraphQLPost } from './graphql-post.js';
import type { HealthEndpoints } from './health.js';
import { sendError } from './respond.js';

/**
 * The HTTP server: /ready and /metrics, the dashboard, and GraphQL over HTTP and SSE (yoga),
 * after the refusals that must come before a body is read or an operation runs. Every request
 * gets a request id (its X-Request-Id, or a new one) for the logs, and counts for a drain.
 */
export function createHttpServer(deps: {
  yoga: RunstateYoga;
  health: HealthEndpoints;
  dashboard: DashboardAssets | null;
  /** GraphiQL's files (its page is yoga's, on the GraphQL path); null when GraphiQL is off. */
  graphiql: GraphiQLAssets | null;
  inflight: Inflight;
  metrics: Metrics;
  logger: Logger;
  maxBodyBytes: number;
  isDraining: () => boolean;
  /** Where GraphQL is served (a plain JSON POST there skips the Fetch API adapter). */
  graphqlPath: string;
}): Server {
  const { yoga, health, dashboard, inflight, metrics, logger } = deps;
  const graphqlPost = createGraphQLPost(yoga, deps.graphqlPath, (result) =>
    countResultErrors(metrics, result),
  );
  return createServer((req, res) => {
    const started = performance.now();
    const requestId = requestIdFrom(req.headers['x-request-id']);
    res.setHeader('x-request-id', requestId);
    const path = (req.url ?? '/').split('?', 1)[0]!;
    const uncount = countForDrain(res, inflight);
    res.once('close', () => {
      uncount();
      const seconds = (performance.now() - started) / 1000;
      metrics.observeRequest(metrics.routeOf(path), req.method ?? 'GET', res.statusCode, seconds);
      if (logger.isLevelEnabled('debug'))
        logger.debug(
          { requestId, method: req.method, path, status: res.statusCode, ms: seconds * 1000 },
          'request',
        );
    });
    if (path === '/ready') return void health.answerReady(res).catch(() => res.destroy());
    if (path === '/metrics') return void health.answerMetrics(res).catch(() => res.destroy());
    if (deps.isDraining()) {
      // Keep-alive connections may still bring requests: send them elsewhere.
      if (path !== '/health') return refuseWhileDraining(res);
      res.setHeader('connection', 'close');
    }
    if (dashboard?.serve(req, res, path)) return;
    if (deps.graphiql?.serve(req, res, path)) return;
    if (refuseLargeBody(req, res, deps.maxBodyBytes)) return;
    // On every path: yoga also serves GraphQL under others (`/graphql/`, `//graphql`).
    if (refuseCrossSiteForm(req, res)) return;
    if (refuseUnacceptable(req, res)) return;
    const mediaType = graphqlPost.answerableAs(req, path);
    if (mediaType)
      return void graphqlPost.serve(req, res, mediaType, requestId).catch(() => res.destroy());
    // The id reaches the GraphQL context through yoga's server context.
    void yoga(req, res, { requestId });
  });
}

/**
 * Every request counts for a drain from its arrival (its token check may query the database)
 * until it is answered, or until its answer turns out to be a stream (SSE or multipart): a stream
 * lives as long as its subscription, and a drain ends it instead. Answers the uncounting.
 */
function countForDrain(res: ServerResponse, inflight: Inflight): () => void {
  inflight.begin();
  let counted = true;
  const uncount = () => {
    if (!counted) return;
    counted = false;
    inflight.end();
  };
  const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
  res.writeHead = ((...args: unknown[]) => {
    const written = writeHead(...args);
    if (/text\/event-stream|multipart\/mixed/.test(String(res.getHeader('content-type'))))
      uncount();
    return written;
  }) as typeof res.writeHead;
  return uncount;
}

/** A request that arrived while this instance drains: 503, try another instance. */
function refuseWhileDraining(res: ServerResponse): void {
  sendError(
    res,
    503,
    'this instance is shutting down: retry, another instance will answer',
    { code: 'SERVER_STOPPING' },
    { connection: 'close', 'retry-after': '0' },
  );
}

/** Media types yoga can answer a POST with. */
const ANSWERABLE = new Set([
  '*/*',
  'application/*',
  'application/json',
  'application/graphql-response+json',
  'text/event-stream',
  'multipart/mixed',
]);

/**
 * Refuse (406) a POST whose Accept header admits no answer runstate can give, before it runs:
 * yoga would run the operation, commit a mutation, and only then find it cannot answer.
 */
function refuseUnacceptable(req: IncomingMessage, res: ServerResponse): boolean {
  const accept = req.headers.accept;
  if (req.method !== 'POST' || !accept?.trim()) return false;
  const types = accept.split(',').map((part) => part.split(';')[0]!.trim().toLowerCase());
  if (types.some((type) => ANSWERABLE.has(type))) return false;
  res.writeHead(406, { 'content-length': 0, connection: 'close' });
  res.end();
  return true;
}

/**
 * Refuse a request body over the limit before reading it: 413 when Content-Length says so,
 * 411 for a body without a length (chunked), whose size would only be known by reading it.
 * Answers whether the request was refused.
 */
function refuseLargeBody(req: IncomingMessage, res: ServerResponse, maxBytes: number): boolean {
  const length = req.headers['content-length'];
  const chunked = length === undefined && req.headers['transfer-encoding'] !== undefined;
  if (!chunked && (length === undefined || Number(length) <= maxBytes)) return false;
  const status = chunked ? 411 : 413;
  const message = chunked
    ? 'send the request body with a Content-Length header'
    : `the request body is larger than ${maxBytes} bytes`;
  // The body is not read: close the connection rather than leave it unread on a keep-alive one.
  sendError(
    res,
    status,
    message,
    { code: 'LIMIT_EXCEEDED', limit: 'bodyBytes', max: maxBytes },
    { connection: 'close' },
  );
  return true;
}
