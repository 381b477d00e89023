import { RunstateError, TransitionRefusedError } from './errors.js';
import { createTransport, type RetryOptions, type Transport } from './transport.js';
import {
  MEASUREMENT_FIELDS,
  RUN_FIELDS,
  RUN_FIELDS_IN_DIALECT,
  type CreateRunInput,
  type Dialect,
  type MeasuredValue,
  type Measurement,
  type Run,
  type RunFilter,
  type RunInputFields,
  type StatusChangeFilter,
  type StepInput,
} from './types.js';
import { watchStatusChanges, type StatusChangeWatch, type WatchOptions } from './watch.js';

export interface RunstateClientOptions {
  /** The GraphQL endpoint, e.g. http://localhost:4000/graphql (WebSocket: the same, ws://). */
  url: string;
  /** An API token (WRITE to report, READ to watch). */
  token?: string;
  /** Retries of requests that did not get an answer (network errors, 429, 502–504). */
  retry?: RetryOptions;
  /** Heartbeat period while a run is running (default: a third of its heartbeatTimeout, else 10 s). */
  heartbeatIntervalMs?: number;
  /** How long measure() gathers points before sending them in one batch (default 200 ms). */
  measurementFlushMs?: number;
  /** A fetch to use (default: the global one). */
  fetch?: typeof fetch;
  /** A WebSocket class (default: the global one, else the `ws` package). */
  webSocketImpl?: unknown;
}

/** A page of runs. */
export interface RunPage {
  runs: Run[];
  endCursor: string | null;
  hasNextPage: boolean;
  /** How many runs match the whole filter; only when asked for (ListRunsOptions.totalCount). */
  totalCount?: number;
}

/** Which page of runs, and in which dialect's names. */
export interface ListRunsOptions {
  /** Page size (default 50). */
  first?: number;
  /** The previous page's endCursor. */
  after?: string | null;
  /** The dialect of each run's `nativeStatus` (default: each run's own). */
  dialect?: Dialect | null;
  /** The order (default: newest created first); keep it the same from page to page. */
  orderBy?: { field?: 'CREATED_AT' | 'UPDATED_AT'; direction?: 'ASC' | 'DESC' } | null;
  /**
   * Also count every run the filter matches (RunPage.totalCount). The server counts only when
   * asked, from its counts table for project, status and roots filters.
   */
  totalCount?: boolean;
}

/** A page of a run's measurements, oldest first. */
export interface MeasurementPage {
  measurements: Measurement[];
  endCursor: string | null;
  hasNextPage: boolean;
}

/** Which page of measurements, of which series. */
export interface ListMeasurementsOptions {
  /** Only these series (default: all). */
  names?: readonly string[];
  /** Page size (default 100, at most 500). */
  first?: number;
  /** The previous page's endCursor. */
  after?: string | null;
}

/** A pipeline as createPipeline() made it: the parent and its steps by op. */
export interface Pipeline<Op extends string = string> {
  parent: RunHandle;
  /** Each step's handle by its op (`pipeline.steps.train`). */
  steps: Record<Op, RunHandle>;
}

/** What a worker reports with a change, beside its status (records.md). */
export interface ChangeReport {
  /** Free text, upper case by convention: PASS, DIFF, TIMEOUT (up to 50 characters). */
  outcome?: string;
  /** The worker's exit code (32-bit). */
  exitCode?: number;
  /** A JSON object (up to 16 KB): Polyaxon's meta_info. */
  meta?: Record<string, unknown>;
  /** When it happened elsewhere (an ISO date-time): not before the run's last change. */
  at?: string;
}

/** RunHandle.update(): fields given replace (attributes merge); see UpdateRunInput. */
export interface RunUpdate {
  name?: string | null;
  tags?: string[];
  meta?: Record<string, unknown> | null;
  attributes?: Record<string, unknown>;
  expectedRevision?: number;
}

/** Options of RunHandle.transition(). */
export interface NativeTransitionOptions extends ChangeReport {
  /** The dialect `native` is a name of (default: the run's own). */
  dialect?: Dialect;
  /** A human-readable message recorded with the change. */
  message?: string;
  /** A short, machine-readable cause (instead of the one the native name records, if any). */
  reason?: string;
}

export interface RunstateClient {
  /** Create a run (retried safely: an idempotency key is made up when none is given). */
  createRun(input: CreateRunInput): Promise<RunHandle>;
  /**
   * A parent run and its steps, by op, in the order given: `createPipeline({ project, rollup:
   * true }, [{ op: 'prepare' }, { op: 'train', dependsOn: ['ops.prepare'] }])`. Each step may
   * refer only to the ops before it (`ops.<name>` in dependsOn, dependencies, events); any
   * other `ops.` reference, a duplicate or a missing op throws RunstateError BAD_USER_INPUT
   * (its `field`: `steps[1].dependsOn[0]`) before anything is created. Each step's idempotency
   * key derives from the parent's, so calling again with the same `idempotencyKey` answers the
   * same runs and creates only those a failed call had not.
   */
  createPipeline<const S extends readonly StepInput[]>(
    parent: CreateRunInput,
    steps: S,
  ): Promise<Pipeline<S[number]['op']>>;
  /** A handle on an existing run, e.g. one a scheduler created for this worker. */
  run(id: string): Promise<RunHandle>;
  /** A handle on the step `op` of run `parentId` (RunstateError NOT_FOUND when it has none). */
  runByOp(parentId: string, op: string): Promise<RunHandle>;
  /** One page of runs, newest first (`nativeStatus` in `options.dialect`, else each run's). */
  listRuns(filter?: RunFilter, options?: ListRunsOptions): Promise<RunPage>;
  /** One page of a run's points, oldest first (RunstateError NOT_FOUND when no such run). */
  listMeasurements(runId: string, options?: ListMeasurementsOptions): Promise<MeasurementPage>;
  /** The newest point of each of a run's series, by name (RunstateError NOT_FOUND: no run). */
  latestMeasurements(runId: string): Promise<Measurement[]>;
  /**
   * Live status changes that resume by themselves after a dropped connection (`nativeTo` in
   * `options.dialect`, else each run's own).
   */
  watch(filter?: StatusChangeFilter, options?: WatchOptions): StatusChangeWatch;
  /**
   * Any operation. It is retried only where the server surely did not run it, unless
   * `repeatable` says running it twice is harmless (a query, a mutation with an idempotency key).
   */
  request<T>(
    query: string,
    variables?: Record<string, unknown>,
    options?: { repeatable?: boolean },
  ): Promise<T>;
  /** Stop every handle's heartbeats and flush their measurements. */
  close(): Promise<void>;
}

/**
 * A worker's view of one run. Each method sends one request and updates `current`; a change
 * the lifecycle refuses throws TransitionRefusedError. While the run is running, heartbeats go
 * out by themselves; when someone else asks the run to stop, `stopRequested` turns true.
 * `current.nativeStatus` is the status in the run's dialect (`exec_done` for a Parsl run).
 */
export interface RunHandle {
  readonly id: string;
  /** The run as last answered by the server. */
  readonly current: Run;
  /** True once the run was moved to STOPPING by someone else (stopRun): wrap up and call stop(). */
  readonly stopRequested: boolean;
  /**
   * Create a step of this run named `op` (in this run's project unless told): its `ops.<name>`
   * references resolve among this run's steps, so create the steps they name first.
   */
  step(op: string, input?: RunInputFields & { project?: string }): Promise<RunHandle>;
  /** RUNNING (heartbeats start). */
  start(): Promise<Run>;
  /** Progress in [0, 1], with an optional phase. */
  progress(progress: number, phase?: string): Promise<Run>;
  /**
   * A point of a series; points are sent in batches (resolves once this one is stored). A
   * number is the point's `value`; anything else JSON can hold (a string, a boolean, an object,
   * a list) its `data`. A non-finite number or null rejects at once (RunstateError
   * BAD_USER_INPUT) and is not sent.
   */
  measure(name: string, value: MeasuredValue, step?: number): Promise<void>;
  /** Send the points gathered so far now. */
  flush(): Promise<void>;
  /** SUCCEEDED (heartbeats stop), with what the worker reports (an outcome, an exit code…). */
  succeed(message?: string, report?: ChangeReport): Promise<Run>;
  /** FAILED with a message (heartbeats stop), and what the worker reports. */
  fail(message: string, report?: ChangeReport): Promise<Run>;
  /** STOPPED, or STOPPING when the run was handed to an executor (heartbeats stop). */
  stop(message?: string): Promise<Run>;
  /**
   * A status by its native name (`launched`, `exec_done` for Parsl), in the run's dialect or
   * `options.dialect`; fenced by attempt and retried safely, as the methods above. A name the
   * dialect does not know throws RunstateError BAD_USER_INPUT (its `field`, and the names
   * `allowed`), and nothing changes.
   */
  transition(native: string, options?: NativeTransitionOptions): Promise<Run>;
  /**
   * Change the run's name, tags or meta (replaced) and attributes (merged; a key set to null is
   * removed); `expectedRevision` makes it a compare-and-set (RunstateError REVISION_CONFLICT,
   * with `extensions.actualRevision`, when the run changed meanwhile).
   */
  update(changes: RunUpdate): Promise<Run>;
}

/** The run as the server has it now, or null. */
async function fetchRun(transport: Transport, id: string): Promise<Run | null> {
  const data = await transport.request<{ run: Run | null }>(
    `query Run($id: ID!) { run(id: $id) { ${RUN_FIELDS} } }`,
    { id },
  );
  return data.run;
}

/** Node 20+ and browsers both have Web Crypto. */
const randomUUID = () => globalThis.crypto.randomUUID();

/**
 * A step's idempotency key from its parent's and its op: the same pipeline created again with
 * the parent's key answers the same steps. Hashed, as op and key may each be 200 characters.
 */
async function stepKey(parentKey: string, op: string): Promise<string> {
  const bytes = new TextEncoder().encode(`${parentKey}\u0000${op}`);
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', bytes));
  return `step-${Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

function badInput(field: string, message: string): RunstateError {
  return new RunstateError(message, 'BAD_USER_INPUT', { field });
}

/** Every `ops.<name>` reference of a step, with the field it is in. */
function opRefs(step: RunInputFields): { field: string; op: string }[] {
  const refs = [
    ...(step.dependsOn ?? []).map((ref, i) => ({ field: `dependsOn[${i}]`, ref })),
    ...(step.dependencies ?? []).map((d, i) => ({ field: `dependencies[${i}].ref`, ref: d.ref })),
    ...(step.events ?? []).map((e, i) => ({ field: `events[${i}].ref`, ref: e.ref })),
  ];
  return refs.flatMap(({ field, ref }) =>
    typeof ref === 'string' && ref.startsWith('ops.') ? [{ field, op: ref.slice(4) }] : [],
  );
}

/**
 * Steps are created one by one in the order given, and the server resolves `ops.<name>` among
 * the steps that exist: each must come after the ops it refers to. Checked before anything is
 * created, so a bad list writes nothing.
 */
function checkStepOrder(steps: readonly StepInput[]): void {
  const seen = new Map<string, number>();
  steps.forEach((step, i) => {
    const op: unknown = step.op;
    if (typeof op !== 'string' || op.length === 0)
      throw badInput(`steps[${i}].op`, `steps[${i}] has no op: every step needs one`);
    const first = seen.get(op);
    if (first != null)
      throw badInput(`steps[${i}].op`, `op "${op}" is taken by steps[${first}] already`);
    for (const ref of opRefs(step)) {
      if (seen.has(ref.op)) continue;
      const field = `steps[${i}].${ref.field}`;
      const at = steps.findIndex((s) => s.op === ref.op);
      throw badInput(
        field,
        at === i
          ? `step "${op}" refers to itself (ops.${ref.op}): a cycle`
          : at > i
            ? `step "${op}" refers to ops.${ref.op}, which comes later (steps[${at}]): steps ` +
              'are created in the order given, so list each after the ops it refers to'
            : `step "${op}" refers to ops.${ref.op}, which is no step of this pipeline`,
      );
    }
    seen.set(op, i);
  });
}

const RESULT_FIELDS = `__typename
  ... on TransitionAccepted { run { ${RUN_FIELDS} } }
  ... on IllegalTransition { runId from to allowed message }
  ... on TransitionConflict { runId actualStatus actualVersion actualAttempt message }
  ... on RunNotFound { runId message }`;

/** A client for workers and tools: `createRunstateClient({ url, token })`. */
export function createRunstateClient(options: RunstateClientOptions): RunstateClient {
  const transport = createTransport(options);
  const handles = new Set<Handle>();
  const wsUrl = options.url.replace(/^http/, 'ws');

  const open = (run: Run) => {
    const handle = new Handle(run, transport, options, createRun, () => handles.delete(handle));
    handles.add(handle);
    return handle;
  };

  async function createRun(input: CreateRunInput): Promise<RunHandle> {
    // One key for every retry of this call (the transport resends the same body): a create
    // whose answer was lost is answered again, not made twice, nor refused as "op taken".
    const data = await transport.request<{ createRun: Run }>(
      `mutation CreateRun($input: CreateRunInput!) { createRun(input: $input) { ${RUN_FIELDS} } }`,
      { input: { ...input, idempotencyKey: input.idempotencyKey ?? randomUUID() } },
    );
    return open(data.createRun);
  }

  return {
    createRun,
    async createPipeline<const S extends readonly StepInput[]>(
      parentInput: CreateRunInput,
      steps: S,
    ): Promise<Pipeline<S[number]['op']>> {
      checkStepOrder(steps);
      const key = parentInput.idempotencyKey ?? randomUUID();
      const parent = await createRun({ ...parentInput, idempotencyKey: key });
      const byOp: Record<string, RunHandle> = {};
      for (const [i, step] of steps.entries()) {
        try {
          byOp[step.op] = await createRun({
            ...step,
            project: step.project ?? parent.current.project,
            parentId: parent.id,
            idempotencyKey: step.idempotencyKey ?? (await stepKey(key, step.op)),
          });
        } catch (error) {
          if (!(error instanceof RunstateError)) throw error;
          // Say which step, and that the ones before it exist: the same call with the same
          // idempotencyKey finishes the pipeline.
          const field = error.field ? `steps[${i}].${error.field.replace(/^input\./, '')}` : null;
          throw new RunstateError(
            `step "${step.op}" (steps[${i}]) of pipeline ${parent.id}: ${error.message}`,
            error.code,
            { ...error.extensions, ...(field ? { field } : {}), parentId: parent.id, op: step.op },
          );
        }
      }
      return { parent, steps: byOp as Record<S[number]['op'], RunHandle> };
    },
    async run(id) {
      const run = await fetchRun(transport, id);
      if (!run) throw new RunstateError(`no run ${id}`, 'NOT_FOUND');
      return open(run);
    },
    async runByOp(parentId, op) {
      const data = await transport.request<{ runByOp: Run | null }>(
        `query RunByOp($parentId: ID!, $op: String!) {
          runByOp(parentId: $parentId, op: $op) { ${RUN_FIELDS} } }`,
        { parentId, op },
      );
      if (!data.runByOp) throw new RunstateError(`run ${parentId} has no step ${op}`, 'NOT_FOUND');
      return open(data.runByOp);
    },
    async listRuns(filter = {}, page = {}) {
      const data = await transport.request<{
        runs: {
          edges: { node: Run }[];
          pageInfo: { endCursor: string | null; hasNextPage: boolean };
          totalCount?: number;
        };
      }>(
        `query Runs($filter: RunFilter, $first: Int, $after: String, $dialect: Dialect,
          $orderBy: RunOrder) {
          runs(filter: $filter, first: $first, after: $after, orderBy: $orderBy) {
            edges { node { ${RUN_FIELDS_IN_DIALECT} } } pageInfo { endCursor hasNextPage }
            ${page.totalCount ? 'totalCount' : ''} } }`,
        {
          filter,
          first: page.first ?? 50,
          after: page.after ?? null,
          dialect: page.dialect ?? null,
          orderBy: page.orderBy ?? null,
        },
      );
      const { edges, pageInfo, totalCount } = data.runs;
      return {
        runs: edges.map((e) => e.node),
        ...pageInfo,
        ...(totalCount != null ? { totalCount } : {}),
      };
    },
    async listMeasurements(runId, page = {}) {
      const data = await transport.request<{
        run: {
          measurements: {
            edges: { node: Measurement }[];
            pageInfo: { endCursor: string | null; hasNextPage: boolean };
          };
        } | null;
      }>(
        `query Measurements($id: ID!, $names: [String!], $first: Int, $after: String) {
          run(id: $id) { measurements(names: $names, first: $first, after: $after) {
            edges { node { ${MEASUREMENT_FIELDS} } } pageInfo { endCursor hasNextPage } } } }`,
        {
          id: runId,
          names: page.names ?? null,
          first: page.first ?? 100,
          after: page.after ?? null,
        },
      );
      if (!data.run) throw new RunstateError(`no run ${runId}`, 'NOT_FOUND');
      const { edges, pageInfo } = data.run.measurements;
      return { measurements: edges.map((e) => e.node), ...pageInfo };
    },
    async latestMeasurements(runId) {
      const data = await transport.request<{ run: { latestMeasurements: Measurement[] } | null }>(
        `query Latest($id: ID!) { run(id: $id) { latestMeasurements { ${MEASUREMENT_FIELDS} } } }`,
        { id: runId },
      );
      if (!data.run) throw new RunstateError(`no run ${runId}`, 'NOT_FOUND');
      return data.run.latestMeasurements;
    },
    watch(filter = {}, watchOptions = {}) {
      return watchStatusChanges({ ...options, wsUrl }, filter, watchOptions);
    },
    request: (query, variables, requestOptions) =>
      transport.request(query, variables, { repeatable: requestOptions?.repeatable ?? false }),
    async close() {
      await Promise.all([...handles].map((h) => h.close()));
    },
  };
}

interface PendingPoint {
  point: { name: string; value?: number; data?: unknown; step: number | null; at: string };
  resolve: () => void;
  reject: (error: unknown) => void;
}

class Handle implements RunHandle {
  current: Run;
  stopRequested = false;
  private heartbeat: NodeJS.Timeout | null = null;
  private beating = false;
  private period = 10_000;
  private closed = false;
  private pending: PendingPoint[] = [];
  private flushTimer: NodeJS.Timeout | null = null;

  constructor(
    run: Run,
    private readonly transport: Transport,
    private readonly options: RunstateClientOptions,
    private readonly create: (input: CreateRunInput) => Promise<RunHandle>,
    private readonly forget: () => void,
  ) {
    this.current = run;
    this.keepAlive();
  }

  get id(): string {
    return this.current.id;
  }

  step(op: string, input: RunInputFields & { project?: string } = {}): Promise<RunHandle> {
    return this.create({
      ...input,
      project: input.project ?? this.current.project,
      parentId: this.id,
      op,
    });
  }

  start(): Promise<Run> {
    return this.send({ to: 'RUNNING' });
  }

  async progress(progress: number, phase?: string): Promise<Run> {
    const data = await this.transport.request<{ reportProgress: Run }>(
      `mutation Progress($input: ReportProgressInput!) { reportProgress(input: $input) { ${RUN_FIELDS} } }`,
      { input: { id: this.id, progress, phase, attempt: this.current.attempt } },
    );
    return this.adopt(data.reportProgress);
  }

  measure(name: string, value: MeasuredValue, step?: number): Promise<void> {
    // The server would refuse the whole batch: only this point is refused, here.
    if (value == null || (typeof value === 'number' && !Number.isFinite(value))) {
      return Promise.reject(
        badInput(
          'value',
          `measure(${JSON.stringify(name)}): ${String(value)} is no value to record`,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const point = {
        name,
        ...(typeof value === 'number' ? { value } : { data: value }),
        step: step ?? null,
        at: new Date().toISOString(),
      };
      this.pending.push({ point, resolve, reject });
      // A failed batch rejects its points' promises; the flush's own rejection is not news.
      if (this.pending.length >= 1000) void this.flush().catch(() => {});
      else
        this.flushTimer ??= setTimeout(
          () => void this.flush().catch(() => {}),
          this.options.measurementFlushMs ?? 200,
        );
    });
  }

  async flush(): Promise<void> {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    const batch = this.pending.splice(0, this.pending.length);
    if (batch.length === 0) return;
    try {
      // One key per batch: a retry after a lost answer records the points once.
      await this.transport.request(
        `mutation Measure($input: RecordMeasurementsInput!) { recordMeasurements(input: $input) }`,
        {
          input: {
            runId: this.id,
            measurements: batch.map((p) => p.point),
            idempotencyKey: randomUUID(),
          },
        },
      );
      for (const p of batch) p.resolve();
    } catch (error) {
      for (const p of batch) p.reject(error);
      throw error;
    }
  }

  async succeed(message?: string, report: ChangeReport = {}): Promise<Run> {
    await this.flush();
    return this.send({ to: 'SUCCEEDED', message, ...report });
  }

  async fail(message: string, report: ChangeReport = {}): Promise<Run> {
    await this.flush().catch(() => {}); // the failure matters more than the last points
    return this.send({ to: 'FAILED', message, ...report });
  }

  async update(changes: RunUpdate): Promise<Run> {
    const data = await this.transport.request<{ updateRun: Run }>(
      `mutation Update($input: UpdateRunInput!) { updateRun(input: $input) { ${RUN_FIELDS} } }`,
      { input: { id: this.id, ...changes } },
    );
    return this.adopt(data.updateRun);
  }

  async stop(message?: string): Promise<Run> {
    await this.flush().catch(() => {});
    if (this.current.status === 'STOPPING') return this.send({ to: 'STOPPED', message });
    const data = await this.transport.request<{ stopRun: Record<string, unknown> }>(
      `mutation Stop($id: ID!, $message: String) { stopRun(id: $id, message: $message) { ${RESULT_FIELDS} } }`,
      { id: this.id, message },
    );
    try {
      return this.accept(data.stopRun);
    } catch (error) {
      // stopRun has no idempotency key: when a retry finds the run already stopped (the first
      // try's answer was lost, or someone else stopped it), the stop happened.
      const from = (error as TransitionRefusedError).details?.['from'];
      if (from !== 'STOPPED' && from !== 'STOPPING') throw error;
      const again = await fetchRun(this.transport, this.id);
      return again ? this.adopt(again) : this.current;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stopHeartbeats();
    await this.flush().catch(() => {});
    this.forget();
  }

  async transition(native: string, options: NativeTransitionOptions = {}): Promise<Run> {
    // As succeed() and fail(): the points gathered so far land before a status that may end
    // the run; a failed flush rejects its points' promises, and the status still goes out.
    await this.flush().catch(() => {});
    const { dialect, message, reason, ...report } = options;
    return this.send({ native, dialect, message, reason, ...report });
  }

  /** transitionRun to a runstate status (`to`) or a native name (`native`, maybe `dialect`). */
  private async send(
    target: {
      to?: string;
      native?: string;
      dialect?: Dialect;
      message?: string;
      reason?: string;
    } & ChangeReport,
  ): Promise<Run> {
    const data = await this.transport.request<{ transitionRun: Record<string, unknown> }>(
      `mutation Transition($input: TransitionRunInput!) { transitionRun(input: $input) { ${RESULT_FIELDS} } }`,
      {
        input: {
          id: this.id,
          ...target,
          attempt: this.current.attempt,
          // The same key on every retry: a change that committed but whose answer was lost
          // is answered again, not made twice.
          idempotencyKey: randomUUID(),
        },
      },
    );
    return this.accept(data.transitionRun);
  }

  private accept(result: Record<string, unknown>): Run {
    const kind = result['__typename'] as string;
    if (kind === 'TransitionAccepted') return this.adopt(result['run'] as Run);
    throw new TransitionRefusedError(
      kind as TransitionRefusedError['kind'],
      String(result['message'] ?? kind),
      result,
    );
  }

  private adopt(run: Run): Run {
    // Answers can cross (a heartbeat sent before succeed() answered after it): keep the newest
    // (every write to the run raises its revision).
    if (run.revision < this.current.revision) return this.current;
    this.current = run;
    if (run.status === 'STOPPING') this.stopRequested = true;
    this.keepAlive();
    return run;
  }

  /** Heartbeats while the run is in the RUNNING category; none otherwise or once closed. */
  private keepAlive(): void {
    if (this.closed || !this.current.isRunning || this.current.isDone) return this.stopHeartbeats();
    if (this.heartbeat) return;
    const timeout = this.current.heartbeatTimeout;
    this.period =
      this.options.heartbeatIntervalMs ?? (timeout ? Math.max(1000, (timeout * 1000) / 3) : 10_000);
    this.heartbeat = setInterval(() => void this.beat(), this.period);
    this.heartbeat.unref(); // the work keeps the process alive, not its heartbeats
  }

  private async beat(): Promise<void> {
    if (this.beating) return; // the last one has not answered yet
    this.beating = true;
    try {
      // No retries, and no longer than a period: a late beat is worth less than the next one.
      const data = await this.transport.request<{ heartbeat: Run }>(
        `mutation Beat($id: ID!, $attempt: Int) { heartbeat(id: $id, attempt: $attempt) { ${RUN_FIELDS} } }`,
        { id: this.id, attempt: this.current.attempt },
        { retries: 0, timeoutMs: Math.max(this.period, 2000) },
      );
      this.adopt(data.heartbeat);
    } catch {
      // The next beat tries again; the server's timeout is several periods long.
    } finally {
      this.beating = false;
    }
  }

  private stopHeartbeats(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }
}
