/** runstate's client for workers and tools. */
export { createRunstateClient } from './client.js';
export type {
  ChangeReport,
  ListMeasurementsOptions,
  ListRunsOptions,
  MeasurementPage,
  NativeTransitionOptions,
  Pipeline,
  RunHandle,
  RunPage,
  RunUpdate,
  RunstateClient,
  RunstateClientOptions,
} from './client.js';
export { RunstateError, RunstateUnavailableError, TransitionRefusedError } from './errors.js';
export type { RetryOptions } from './transport.js';
export type { StatusChangeWatch, WatchOptions } from './watch.js';
export type {
  CreateRunInput,
  DependencyInput,
  Dialect,
  EventTriggerInput,
  MeasuredValue,
  Measurement,
  PredicateFilter,
  Run,
  RunFilter,
  RunInputFields,
  RunRef,
  StatusChange,
  StatusChangeFilter,
  StepInput,
} from './types.js';
