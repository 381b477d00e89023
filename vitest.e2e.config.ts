import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

/** `npm run test:e2e`: the dashboard in a real Chromium (Debian's /usr/bin/chromium), and the bin launcher. */
export default defineConfig({
  resolve: base.resolve,
  test: {
    ...base.test,
    include: ['test/e2e/**/*.e2e.ts'],
    testTimeout: 60_000,
    // One file at a time: the launcher's builds would otherwise starve the browser of CPU.
    fileParallelism: false,
    // A page update may take a while on a busy 2-core machine; poll for up to 10 s.
    expect: { poll: { timeout: 10_000 } },
  },
});
