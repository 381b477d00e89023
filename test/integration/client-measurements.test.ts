import { describe, expect, it } from 'vitest';
import { RunstateError, type Measurement } from '../../src/client/index.js';
import { useClientOnServer } from '../support/client-server.js';
import { uniqueProject } from '../support/server.js';

describe('the worker client records and reads JSON-valued measurements', () => {
  const use = useClientOnServer({ measurementFlushMs: 20 });

  it('run.measure sends a number as value and any other JSON as data, in one batch', async () => {
    const run = await use.client.createRun({ project: uniqueProject('cmj') });
    await run.start();
    await Promise.all([
      run.measure('loss', 0.5, 1),
      run.measure('mode', 'fast', 1),
      run.measure('converged', false, 1),
      run.measure('stats', { mean: 0.25, std: 0.1 }, 1),
      run.measure('hist', [1, 2, 3], 1),
      run.measure('loss', 0, 2),
      run.measure('mode', '2', 2),
    ]);
    const page = await use.client.listMeasurements(run.id);
    const strip = ({ at: _at, ...rest }: Measurement) => rest;
    expect(page.hasNextPage).toBe(false);
    expect(page.measurements.map(strip)).toEqual([
      { name: 'loss', value: 0.5, data: null, step: 1 },
      { name: 'mode', value: null, data: 'fast', step: 1 },
      { name: 'converged', value: null, data: false, step: 1 },
      { name: 'stats', value: null, data: { mean: 0.25, std: 0.1 }, step: 1 },
      { name: 'hist', value: null, data: [1, 2, 3], step: 1 },
      { name: 'loss', value: 0, data: null, step: 2 },
      { name: 'mode', value: null, data: '2', step: 2 },
    ]);
    const latest = await use.client.latestMeasurements(run.id);
    expect(Object.fromEntries(latest.map((m) => [m.name, m.value ?? m.data]))).toEqual({
      loss: 0,
      mode: '2',
      converged: false,
      stats: { mean: 0.25, std: 0.1 },
      hist: [1, 2, 3],
    });
    const modes = await use.client.listMeasurements(run.id, { names: ['mode'], first: 1 });
    expect(modes.measurements.map((m) => m.data)).toEqual(['fast']);
    const next = await use.client.listMeasurements(run.id, {
      names: ['mode'],
      after: modes.endCursor,
    });
    expect(next.measurements.map((m) => m.data)).toEqual(['2']);
  });

  it('refuses null and non-finite numbers at once, without failing the rest of the batch', async () => {
    const run = await use.client.createRun({ project: uniqueProject('cmj') });
    const results = await Promise.allSettled([
      run.measure('ok', 'yes'),
      run.measure('nan', Number.NaN),
      run.measure('null', null as unknown as string),
      run.measure('ok', 1),
    ]);
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'rejected',
      'rejected',
      'fulfilled',
    ]);
    for (const r of results.filter((r) => r.status === 'rejected')) {
      expect(r.reason).toBeInstanceOf(RunstateError);
      expect(r.reason).toMatchObject({ code: 'BAD_USER_INPUT', field: 'value' });
    }
    const page = await use.client.listMeasurements(run.id);
    expect(page.measurements.map((m) => m.value ?? m.data)).toEqual(['yes', 1]);
  });

  it('a point the server refuses rejects its batch, with the field at fault', async () => {
    const run = await use.client.createRun({ project: uniqueProject('cmj') });
    const results = await Promise.allSettled([
      run.measure('fine', 'x'),
      run.measure('huge', { s: 'x'.repeat(17_000) }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'input.measurements[1].data',
    });
    expect((await use.client.listMeasurements(run.id)).measurements).toEqual([]);
  });

  it('reading the measurements of no run is NOT_FOUND', async () => {
    const missing = '00000000-0000-4000-8000-000000000000';
    await expect(use.client.listMeasurements(missing)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(use.client.latestMeasurements(missing)).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });
});
