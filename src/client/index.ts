/** runstate's client for workers and tools. */
export { createRunstateClient } from './client.js';
export type { RunHandle, RunPage, RunstateClient, RunstateClientOptions } from './client.js';
export { RunstateError, RunstateUnavailableError, TransitionRefusedError } from './errors.js';
export type { RetryOptions } from './transport.js';
export type { StatusChangeWatch, WatchOptions } from './watch.js';
export type { CreateRunInput, Run, RunFilter, StatusChange, StatusChangeFilter } from './types.js';
