import { parseArgs } from 'node:util';
import { createRunstateClient, type RunstateClient } from '../client/index.js';
import type { PredicateFilter, Run, StatusChange, StatusChangeFilter } from '../client/types.js';
import { readCliEnv, readEnv } from '../env.js';
import {
  DIALECTS,
  findPredicate,
  getDialect,
  isDialect,
  type Dialect,
} from '../lifecycle/dialects.js';
import { isRunStatus, RUN_STATUSES } from '../lifecycle/lifecycle.js';
import {
  createStyle,
  formatCondition,
  formatFields,
  formatTable,
  printable,
  progressBar,
  type Condition,
  type Style,
} from './format.js';

const USAGE = `runstate: the run-status service and its command line

Usage:
  runstate serve                      serve (configured by environment variables, see README)
  runstate migrate                    apply pending database migrations and exit
  runstate runs [options]             list runs as a table
      --project P  --status S[,S]  --first N (default 20)  --all (every page, N per page)
      --parent ID                     the steps of run ID (a pipeline's), oldest first, by op name
      --dialect D                     statuses in a system's own names (perceval: SUCCESS)
      --predicate P                   only runs in the dialect's status set P (with --dialect)
  runstate show ID                    one run: its status, op, parent, progress, times, why it
                                      waits; its steps with their upstream conditions and
                                      counts per status; its status history
  runstate watch [options]            print status changes as they happen
      --project P  --run ID  --parent ID (its steps' changes)  --status S[,S]  --after CURSOR
      --dialect D  --predicate P      each new status in D's names; only changes into P
  runstate token create --name N --role READ|WRITE|ADMIN [--project P ...]
                                      create an API token (ADMIN); prints its secret once

Dialects (--dialect D, any case): ${DIALECTS.map((d) => d.toLowerCase()).join(', ')}.
A dialect's status names and predicates: the GraphQL query \`dialect(name: PARSL)\`.

Client commands reach the service at --url (RUNSTATE_URL, default
http://localhost:4000/graphql) with --token (RUNSTATE_TOKEN).
`;

/** What a command writes to: stdout for results, stderr for progress and notices. */
interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
  style: Style;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return command ? 0 : 2;
  }
  if (command === 'serve') {
    // The server's and the database's modules load only for the commands that use them: a
    // client command starts without them.
    const { serve } = await import('../serve.js');
    await serve(readEnv());
    return -1; // keeps running until a signal
  }
  if (command === 'migrate') return migrate();

  const cliEnv = readCliEnv();
  const colors = cliEnv.FORCE_COLOR != null || (cliEnv.NO_COLOR == null && process.stdout.isTTY);
  const io: Io = {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    style: createStyle(colors),
  };
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      url: { type: 'string', default: cliEnv.RUNSTATE_URL },
      token: { type: 'string', default: cliEnv.RUNSTATE_TOKEN },
      project: { type: 'string', multiple: true },
      status: { type: 'string' },
      run: { type: 'string', multiple: true },
      first: { type: 'string' },
      all: { type: 'boolean', default: false },
      after: { type: 'string' },
      name: { type: 'string' },
      role: { type: 'string' },
      dialect: { type: 'string' },
      predicate: { type: 'string' },
      parent: { type: 'string' },
    },
  });
  const client = createRunstateClient({ url: values.url!, token: values.token });
  const statuses = values.status ? parseStatuses(values.status) : undefined;
  const dialect = values.dialect != null ? parseDialect(values.dialect) : undefined;
  const predicate =
    values.predicate != null ? parsePredicate(dialect, values.predicate) : undefined;
  const parentId = values.parent != null ? parseRunId('--parent', values.parent) : undefined;
  switch (command) {
    case 'runs':
      return listRuns(client, io, {
        project: values.project?.[0],
        statuses,
        predicate,
        dialect,
        parentId,
        first: values.first ? parsePageSize(values.first) : values.all ? 500 : 20,
        all: values.all!,
      });
    case 'show':
      if (positionals.length !== 1)
        throw new UsageError('usage: runstate show ID (the id of one run)');
      return showRun(client, io, parseRunId('show', positionals[0]!));
    case 'watch':
      return watch(client, io, {
        filter: { projects: values.project, runIds: values.run, statuses, predicate, parentId },
        after: values.after,
        dialect,
      });
    case 'token':
      if (positionals[0] !== 'create') throw new UsageError('usage: runstate token create …');
      if (!values.name || !values.role)
        throw new UsageError('token create needs --name and --role');
      return createToken(client, io, {
        name: values.name,
        role: values.role.toUpperCase(),
        projects: values.project,
      });
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

class UsageError extends Error {}

function parsePageSize(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 500) throw new UsageError('--first takes 1 to 500');
  return n;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A run id (a UUID, as `runstate runs` shows them; `runs.<uuid>` too). */
function parseRunId(what: string, text: string): string {
  const id = text.trim().replace(/^runs\./, '');
  if (UUID.test(id)) return id.toLowerCase();
  throw new UsageError(`${what}: "${printable(text)}" is not a run id (a UUID)`);
}

function parseStatuses(text: string): string[] {
  const statuses = text.split(',').map((s) => s.trim().toUpperCase());
  for (const status of statuses)
    if (!isRunStatus(status))
      throw new UsageError(`unknown status "${status}" (one of ${RUN_STATUSES.join(', ')})`);
  return statuses;
}

/** A dialect by its name in any case (`perceval`, `Parsl`). */
function parseDialect(text: string): Dialect {
  const dialect = text.trim().toUpperCase();
  if (isDialect(dialect)) return dialect;
  throw new UsageError(
    `unknown dialect "${text}" (one of ${DIALECTS.map((d) => d.toLowerCase()).join(', ')})`,
  );
}

/** A predicate of the --dialect given (Perceval's `completed`, Parsl's `final`). */
function parsePredicate(dialect: Dialect | undefined, name: string): PredicateFilter {
  if (!dialect) throw new UsageError('--predicate needs --dialect (the dialect it is named in)');
  if (findPredicate(dialect, name)) return { dialect, name };
  const names = getDialect(dialect).predicates.map((p) => p.name);
  throw new UsageError(`unknown ${dialect} predicate "${name}" (one of ${names.join(', ')})`);
}

async function migrate(): Promise<number> {
  const env = readEnv();
  const where = env.DATABASE_URL ? 'PostgreSQL' : `embedded PGlite in ${env.RUNSTATE_DATA_DIR}`;
  process.stderr.write(`opening ${where}…\n`);
  const [{ createDatabase }, { listPendingMigrations }] = await Promise.all([
    import('../db/create-database.js'),
    import('../db/migrations.js'),
  ]);
  const database = await createDatabase(env);
  try {
    const pending = await listPendingMigrations(database.db);
    if (pending.length === 0) {
      process.stdout.write('up to date: no migration pending\n');
      return 0;
    }
    process.stderr.write(`${pending.length} pending: ${pending.map((m) => m.tag).join(', ')}\n`);
    const started = performance.now();
    process.stderr.write('applying… ');
    await database.migrate();
    const left = await listPendingMigrations(database.db);
    process.stderr.write(`done in ${Math.round(performance.now() - started)} ms\n`);
    process.stdout.write(`applied ${pending.length - left.length} migration(s)\n`);
    return left.length === 0 ? 0 : 1;
  } finally {
    await database.close();
  }
}

async function listRuns(
  client: RunstateClient,
  io: Io,
  /**
   * `first`: the page size; with `all`, every page is fetched. With `dialect`, statuses are
   * shown in its names.
   */
  options: {
    project?: string;
    statuses?: string[];
    predicate?: PredicateFilter;
    dialect?: Dialect;
    /** The steps of this run, in creation order, with an OP column instead of PROJECT. */
    parentId?: string;
    first: number;
    all: boolean;
  },
): Promise<number> {
  const filter = {
    project: options.project,
    statuses: options.statuses,
    predicate: options.predicate,
    parentId: options.parentId,
  };
  const steps = options.parentId != null;
  const runs: Run[] = [];
  let after: string | null = null;
  let total: number | undefined;
  for (;;) {
    const page = await client.listRuns(filter, {
      first: options.first,
      after,
      dialect: options.dialect,
      // A pipeline's steps in the order they were made (each after the ops it refers to).
      orderBy: steps ? { field: 'CREATED_AT', direction: 'ASC' } : null,
      // How many there are in all, when a page shows only some (asked once).
      totalCount: steps && after == null,
    });
    runs.push(...page.runs);
    total ??= page.totalCount;
    if (!page.hasNextPage) break;
    if (!options.all) {
      if (total != null) io.err(`showing ${runs.length} of ${total} steps (--all for every one)`);
      break;
    }
    after = page.endCursor;
    io.err(`fetched ${runs.length} runs…`);
  }
  if (runs.length === 0) {
    if (options.parentId != null && !(await runExists(client, options.parentId)))
      throw new Error(`no run ${options.parentId}`);
    io.err(steps ? `run ${options.parentId} has no steps that match` : 'no runs match');
    return 0;
  }
  io.out(
    formatTable(
      ['ID', steps ? 'OP' : 'PROJECT', 'NAME', 'STATUS', 'PROGRESS', 'UPDATED'],
      runs.map((run) => [
        run.id,
        printable((steps ? run.op : run.project) ?? ''),
        printable(run.name ?? ''),
        // A native name takes the color of the runstate status it stands for.
        io.style.status(run.status, options.dialect ? printable(run.nativeStatus) : undefined),
        progressBar(run.progress),
        io.style.dim(run.updatedAt),
      ]),
    ),
  );
  return 0;
}

async function runExists(client: RunstateClient, id: string): Promise<boolean> {
  const data = await client.request<{ run: { id: string } | null }>(
    `query Exists($id: ID!) { run(id: $id) { id } }`,
    { id },
    { repeatable: true },
  );
  return data.run != null;
}

interface DependencyView {
  run: { id: string; op: string | null };
  when: string[];
  isSatisfied: boolean;
  canStillBeSatisfied: boolean;
}

interface HistoryView {
  at: string;
  from: string | null;
  to: string;
  reason: string | null;
  message: string | null;
}

interface HistoryPage {
  edges: { node: HistoryView }[];
  pageInfo: { endCursor: string | null; hasNextPage: boolean };
}

interface ShowView {
  id: string;
  project: string;
  name: string | null;
  status: string;
  nativeStatus: string;
  dialect: string;
  op: string | null;
  rollup: boolean;
  attempt: number;
  progress: number | null;
  phase: string | null;
  blockedReason: string | null;
  stopMessage: string | null;
  scheduledAt: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  parent: { id: string; op: string | null; name: string | null } | null;
  dependencies: DependencyView[];
  childCounts: { status: string; count: number }[];
  children: {
    totalCount: number;
    edges: {
      node: {
        id: string;
        op: string | null;
        name: string | null;
        status: string;
        nativeStatus: string;
        dialect: string;
        progress: number | null;
        dependencies: DependencyView[];
      };
    }[];
  };
  statusHistory: HistoryPage;
}

/** Steps `show` lists; more are counted, and `runs --parent ID --all` lists them all. */
const SHOWN_STEPS = 100;
/** History changes per request; `show` pages through at most HISTORY_PAGES of them. */
const HISTORY_PAGE = 200;
const HISTORY_PAGES = 10;

const DEPENDENCY_FIELDS = 'dependencies { run { id op } when isSatisfied canStillBeSatisfied }';
const HISTORY_FIELDS =
  'edges { node { at from to reason message } } pageInfo { endCursor hasNextPage }';

/** `runstate show ID`: the run, its steps with their conditions, its status history. */
async function showRun(client: RunstateClient, io: Io, id: string): Promise<number> {
  const data = await client.request<{ run: ShowView | null }>(
    `query Show($id: ID!) { run(id: $id) {
      id project name status nativeStatus dialect op rollup attempt progress phase blockedReason
      stopMessage scheduledAt createdAt startedAt finishedAt
      parent { id op name } ${DEPENDENCY_FIELDS} childCounts { status count }
      children(first: ${SHOWN_STEPS}, orderBy: { field: CREATED_AT, direction: ASC }) {
        totalCount edges { node { id op name status nativeStatus dialect progress
          ${DEPENDENCY_FIELDS} } } }
      statusHistory(first: ${HISTORY_PAGE}) { ${HISTORY_FIELDS} } } }`,
    { id },
    { repeatable: true },
  );
  const run = data.run;
  if (!run) throw new Error(`no run ${id}`);
  const { style } = io;
  const history = run.statusHistory.edges.map((e) => e.node);
  let page = run.statusHistory.pageInfo;
  for (let n = 1; page.hasNextPage && n < HISTORY_PAGES; n++) {
    const more = await client.request<{ run: { statusHistory: HistoryPage } | null }>(
      `query History($id: ID!, $after: String) { run(id: $id) {
        statusHistory(first: ${HISTORY_PAGE}, after: $after) { ${HISTORY_FIELDS} } } }`,
      { id, after: page.endCursor },
      { repeatable: true },
    );
    if (!more.run) break;
    history.push(...more.run.statusHistory.edges.map((e) => e.node));
    page = more.run.statusHistory.pageInfo;
  }

  const upstreams = (dependencies: DependencyView[]) =>
    dependencies
      .map((d) =>
        formatCondition(style, {
          upstream: d.run.op ?? d.run.id,
          when: d.when,
          isSatisfied: d.isSatisfied,
          canStillBeSatisfied: d.canStillBeSatisfied,
        } satisfies Condition),
      )
      .join(', ');
  const status = (r: { status: string; nativeStatus: string; dialect: string }) =>
    style.status(r.status) +
    (r.dialect === 'RUNSTATE'
      ? ''
      : `  ${style.status(r.status, printable(r.nativeStatus))} ${style.dim(`(${r.dialect.toLowerCase()})`)}`);
  const parent = run.parent;
  const progress = [progressBar(run.progress), printable(run.phase ?? '')].filter(Boolean);
  const stepCount = run.childCounts.reduce((sum, c) => sum + c.count, 0);

  io.out(
    formatFields([
      ['run', run.id],
      ['project', printable(run.project)],
      ['name', run.name == null ? null : printable(run.name)],
      ['status', status(run) + (run.attempt > 1 ? style.dim(`  attempt ${run.attempt}`) : '')],
      ['op', run.op == null ? null : printable(run.op)],
      [
        'parent',
        parent &&
          `${parent.id}${(parent.op ?? parent.name) ? `  ${printable(parent.op ?? parent.name ?? '')}` : ''}`,
      ],
      ['rollup', run.rollup ? 'yes: its status follows its steps' : null],
      ['progress', progress.join('  ')],
      ['upstream', upstreams(run.dependencies)],
      ['blocked', run.blockedReason == null ? null : printable(run.blockedReason)],
      ['scheduled', run.scheduledAt],
      // The message of the change that ended it (or of a stop request), when it says more.
      [
        'message',
        run.stopMessage == null || run.stopMessage === run.blockedReason
          ? null
          : printable(run.stopMessage),
      ],
      ['created', run.createdAt],
      ['started', run.startedAt],
      ['finished', run.finishedAt],
      [
        'steps',
        stepCount === 0
          ? null
          : `${stepCount}: ${run.childCounts.map((c) => `${c.count} ${style.status(c.status)}`).join(', ')}`,
      ],
    ]),
  );
  const children = run.children.edges.map((e) => e.node);
  if (children.length > 0) {
    io.out('');
    io.out(
      formatTable(
        ['OP', 'STATUS', 'PROGRESS', 'UPSTREAM', 'ID'],
        children.map((step) => [
          printable(step.op ?? step.name ?? ''),
          status(step),
          progressBar(step.progress),
          upstreams(step.dependencies),
          style.dim(step.id),
        ]),
      ),
    );
    if (run.children.totalCount > children.length)
      io.out(
        style.dim(
          `… and ${run.children.totalCount - children.length} more: runstate runs --parent ${run.id} --all`,
        ),
      );
  }
  io.out('');
  io.out(
    formatTable(
      ['TIME', 'CHANGE', 'REASON', 'MESSAGE'],
      history.map((change) => [
        style.dim(change.at),
        `${change.from ? `${style.status(change.from)} → ` : ''}${style.status(change.to)}`,
        printable(change.reason ?? ''),
        printable(change.message ?? ''),
      ]),
    ),
  );
  if (page.hasNextPage) io.out(style.dim(`… more changes: the first ${history.length} are shown`));
  return 0;
}

async function watch(
  client: RunstateClient,
  io: Io,
  options: {
    filter: StatusChangeFilter;
    after?: string;
    /** Each change's new status in this dialect's names, its runstate change after it. */
    dialect?: Dialect;
  },
): Promise<number> {
  const changes = client.watch(options.filter, {
    after: options.after ?? null,
    dialect: options.dialect,
    onReconnect: ({ reason, cursor }) =>
      io.err(io.style.dim(`connection lost (${reason}); resuming after ${cursor ?? 'now'}…`)),
  });
  const stop = () => void changes.return?.();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  io.err(io.style.dim('watching; Ctrl-C to stop'));
  for await (const change of changes) {
    const what = options.dialect
      ? nativeChange(io.style, change)
      : `${change.from ? `${io.style.status(change.from)} → ` : ''}${io.style.status(change.to)}`;
    const who = printable(`${change.run.project}/${change.run.name ?? change.runId.slice(0, 8)}`);
    const why = printable([change.reason, change.message].filter(Boolean).join(': '));
    io.out(
      `${io.style.dim(change.at)}  ${who}  ${what}` +
        `${why ? `  ${io.style.dim(why)}` : ''}  ${io.style.dim(`v${change.version} ${change.runId}`)}`,
    );
  }
  io.err(io.style.dim(`stopped; resume with --after ${changes.cursor ?? ''}`));
  return 0;
}

/**
 * A change in a dialect: its new status in the dialect's names, then the runstate change
 * (`exec_done  (RUNNING → SUCCEEDED)`): the change log keeps no native name for `from`.
 */
function nativeChange(style: Style, change: StatusChange): string {
  const runstate = `${change.from ? `${change.from} → ` : ''}${change.to}`;
  return `${style.status(change.to, printable(change.nativeTo))}  ${style.dim(`(${runstate})`)}`;
}

async function createToken(
  client: RunstateClient,
  io: Io,
  input: { name: string; role: string; projects?: string[] },
): Promise<number> {
  const data = await client.request<{
    createApiToken: { token: string; apiToken: { id: string; role: string } };
  }>(
    `mutation Create($input: CreateApiTokenInput!) {
      createApiToken(input: $input) { token apiToken { id role } } }`,
    { input },
  );
  const { token, apiToken } = data.createApiToken;
  io.err(
    `created ${apiToken.role} token "${input.name}" (id ${apiToken.id})` +
      `${input.projects ? ` for ${input.projects.join(', ')}` : ''}; its secret is shown only now:`,
  );
  io.out(token);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (error: unknown) => {
    const usage =
      error instanceof UsageError ||
      (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`runstate: ${error instanceof Error ? error.message : String(error)}\n`);
    if (usage) process.stderr.write('run `runstate --help` for usage\n');
    process.exitCode = usage ? 2 : 1;
  },
);
