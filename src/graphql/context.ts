import DataLoader from 'dataloader';
import type { AuthService } from '../auth/auth-service.js';
import type { Principal } from '../auth/principal.js';
import type { RateLimiter } from '../limits/rate-limiter.js';
import type { SubscriptionQuota } from '../limits/subscription-quota.js';
import type { Db } from '../db/client.js';
import type { MeasurementRow, RunRow } from '../db/schema.js';
import type { ChangeLogTail } from '../changelog/change-log-tail.js';
import type { RunstateEvents } from '../live/topics.js';
import {
  getLatestMeasurements,
  type MeasurementService,
} from '../measurements/measurement-service.js';
import { getDependencyIds, getRunsInOrder } from '../runs/run-queries.js';
import type { RunService } from '../runs/run-service.js';

/** What every resolver gets: the services, and per-operation loaders that batch reads. */
export interface GraphQLContext {
  db: Db;
  events: RunstateEvents;
  /** This instance's reader of the change log (its position bounds log reads). */
  tail: ChangeLogTail;
  runs: RunService;
  measurements: MeasurementService;
  auth: AuthService;
  /** Mutations per second per token. */
  mutationRate: RateLimiter;
  /** Open subscriptions per token. */
  subscriptionQuota: SubscriptionQuota;
  /** Who is asking (authenticated when the context is built). */
  principal: Principal;
  loaders: Loaders;
  /** The HTTP request (HTTP and SSE; absent on WebSocket), set by yoga. */
  request?: Request;
  /**
   * The id the logs know this operation by: its HTTP request's, or on WebSocket its connection's
   * and the operation's number on it (ops/request-context.ts).
   */
  requestId?: string;
}

export interface Loaders {
  runById: DataLoader<string, RunRow | null>;
  /** A run's upstream and downstream ids. */
  dependencies: DataLoader<string, { upstreams: string[]; downstreams: string[] }>;
  latestMeasurements: DataLoader<string, MeasurementRow[]>;
}

export type AppServices = Omit<GraphQLContext, 'loaders' | 'request' | 'principal' | 'requestId'>;

/**
 * Loaders for one operation. They batch but do not cache: a subscription keeps its context for
 * its whole life, and a cached run or measurement would be served stale to every later event.
 */
export function createLoaders(db: Db): Loaders {
  // Made when first used: most operations (a status change, a heartbeat) use none of them.
  let runById: Loaders['runById'] | undefined;
  let dependencies: Loaders['dependencies'] | undefined;
  let latestMeasurements: Loaders['latestMeasurements'] | undefined;
  return {
    get runById() {
      return (runById ??= new DataLoader((ids) => getRunsInOrder(db, ids), { cache: false }));
    },
    get dependencies() {
      return (dependencies ??= new DataLoader((runIds) => getDependencyIds(db, runIds), {
        cache: false,
      }));
    },
    get latestMeasurements() {
      return (latestMeasurements ??= new DataLoader((runIds) => getLatestMeasurements(db, runIds), {
        cache: false,
      }));
    },
  };
}
