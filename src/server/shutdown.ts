import type { Server } from 'node:http';
import { ServerStoppingError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Inflight } from '../ops/inflight.js';
import type { WebSocketEndpoint } from './websocket.js';

/** Something that runs in the background and stops. */
export interface Stoppable {
  stop(): Promise<void>;
}

/**
 * Drain and stop, in this order: keep listening while in-flight requests and mutations finish
 * (up to `drainTimeoutMs`; /ready answers 503 and newcomers get 503 SERVER_STOPPING, so load
 * balancers and callers go elsewhere rather than meet a refused connection); stop listening;
 * stop the background parts; end subscriptions with SERVER_STOPPING; close WebSockets with 1012;
 * close what connections remain (SSE streams after a second). The database stays open.
 */
export async function drainAndStop(deps: {
  httpServer: Server;
  webSocket: WebSocketEndpoint;
  inflight: Inflight;
  /** Stopped in this order, after the drain. */
  background: Stoppable[];
  closeSubscriptions: (error: Error) => void;
  logger: Logger;
  drainTimeoutMs: number;
}): Promise<void> {
  const { httpServer, inflight } = deps;
  const drained = await inflight.settled(deps.drainTimeoutMs);
  if (!drained) deps.logger.warn({ inflight: inflight.size() }, 'drain timed out');
  const closed = new Promise<void>((resolve) => httpServer.close(() => resolve()));
  httpServer.closeIdleConnections();
  for (const part of deps.background) await part.stop();
  deps.closeSubscriptions(new ServerStoppingError());
  // Let the closing results reach the clients before their connections go.
  await new Promise((resolve) => setTimeout(resolve, 50));
  await deps.webSocket.close();
  httpServer.closeIdleConnections();
  // SSE responses stay open until their stream ends; don't wait for them forever.
  setTimeout(() => httpServer.closeAllConnections(), 1000).unref();
  await closed;
}
