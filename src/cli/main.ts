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
import { createStyle, formatTable, printable, progressBar, type Style } from './format.js';

const USAGE = `runstate: the run-status service and its command line

Usage:
  runstate serve                      serve (configured by environment variables, see README)
  runstate migrate                    apply pending database migrations and exit
  runstate runs [options]             list runs as a table
      --project P  --status S[,S]  --first N (default 20)  --all (every page, N per page)
      --dialect D                     statuses in a system's own names (perceval: SUCCESS)
      --predicate P                   only runs in the dialect's status set P (with --dialect)
  runstate watch [options]            print status changes as they happen
      --project P  --run ID  --status S[,S]  --after CURSOR
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
    },
  });
  const client = createRunstateClient({ url: values.url!, token: values.token });
  const statuses = values.status ? parseStatuses(values.status) : undefined;
  const dialect = values.dialect != null ? parseDialect(values.dialect) : undefined;
  const predicate =
    values.predicate != null ? parsePredicate(dialect, values.predicate) : undefined;
  switch (command) {
    case 'runs':
      return listRuns(client, io, {
        project: values.project?.[0],
        statuses,
        predicate,
        dialect,
        first: values.first ? parsePageSize(values.first) : values.all ? 500 : 20,
        all: values.all!,
      });
    case 'watch':
      return watch(client, io, {
        filter: { projects: values.project, runIds: values.run, statuses, predicate },
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
    first: number;
    all: boolean;
  },
): Promise<number> {
  const filter = {
    project: options.project,
    statuses: options.statuses,
    predicate: options.predicate,
  };
  const runs: Run[] = [];
  let after: string | null = null;
  for (;;) {
    const page = await client.listRuns(filter, {
      first: options.first,
      after,
      dialect: options.dialect,
    });
    runs.push(...page.runs);
    if (!options.all || !page.hasNextPage) break;
    after = page.endCursor;
    io.err(`fetched ${runs.length} runs…`);
  }
  if (runs.length === 0) {
    io.err('no runs match');
    return 0;
  }
  io.out(
    formatTable(
      ['ID', 'PROJECT', 'NAME', 'STATUS', 'PROGRESS', 'UPDATED'],
      runs.map((run) => [
        run.id,
        printable(run.project),
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
