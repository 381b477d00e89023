import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

/**
 * `npm run test:faults`: the database fault model (../shared/design/reliability.md) against real
 * service processes and a PostgreSQL cluster the suite starts, restarts and fails over itself.
 * Run on its own (by .ci/run after `npm test`): it loads both cores for about a minute.
 */
export default defineConfig({
  resolve: base.resolve,
  test: {
    include: ['test/faults/**/*.fault.ts'],
    testTimeout: 240_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
