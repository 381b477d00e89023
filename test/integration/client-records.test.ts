import { describe, expect, it } from 'vitest';
import { RunstateError } from '../../src/client/index.js';
import { useClientOnServer } from '../support/client-server.js';
import { uniqueProject } from '../support/server.js';

// The worker client's side of records.md: outcome and exit code on succeed/fail, run.update()
// with its compare-and-set, and an import with the times it happened.

describe('the worker client reports records', () => {
  const use = useClientOnServer();

  it('succeed and fail carry an outcome, an exit code and meta', async () => {
    const passed = await use.client.createRun({ project: uniqueProject('cr') });
    await passed.start();
    const done = await passed.succeed('ok', { outcome: 'PASS', exitCode: 0, meta: { host: 'h1' } });
    expect(done).toMatchObject({ status: 'SUCCEEDED', outcome: 'PASS', exitCode: 0 });
    const diffed = await use.client.createRun({ project: uniqueProject('cr'), dialect: 'CANARY' });
    await diffed.transition('running');
    const failed = await diffed.fail('output differs', { exitCode: 64, outcome: 'DIFF' });
    expect(failed).toMatchObject({ status: 'FAILED', outcome: 'DIFF', exitCode: 64 });
    expect(failed.nativeStatus).toBe('diffed');
  });

  it('run.update merges attributes, and a stale expectedRevision is refused', async () => {
    const run = await use.client.createRun({
      project: uniqueProject('cr'),
      attributes: { suite: 'nightly' },
    });
    const seen = run.current.revision;
    const updated = await run.update({ attributes: { shard: 3 }, tags: ['gpu'] });
    expect(updated.attributes).toEqual({ suite: 'nightly', shard: 3 });
    expect(updated.tags).toEqual(['gpu']);
    expect(run.current.revision).toBe(seen + 1);
    const stale = await run.update({ name: 'x', expectedRevision: seen }).catch((e: unknown) => e);
    expect(stale).toBeInstanceOf(RunstateError);
    expect((stale as RunstateError).code).toBe('REVISION_CONFLICT');
    expect((stale as RunstateError).extensions['actualRevision']).toBe(seen + 1);
    // A later answer never goes back to an older state: a progress report after the update.
    await run.start();
    expect((await run.progress(0.5)).attributes).toEqual({ suite: 'nightly', shard: 3 });
  });

  it('imports a run that ran elsewhere, at the times it happened', async () => {
    const t = (s: number) => new Date(Date.UTC(2026, 5, 1, 12, 0, s)).toISOString();
    const run = await use.client.createRun({ project: uniqueProject('cr'), createdAt: t(0) });
    await run.transition('RUNNING', { at: t(10) });
    const done = await run.succeed(undefined, { at: t(70), exitCode: 0 });
    expect(done).toMatchObject({ createdAt: t(0), startedAt: t(10), finishedAt: t(70) });
  });
});
