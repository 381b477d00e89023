import { afterAll, beforeAll } from 'vitest';
import {
  createRunstateClient,
  type RunstateClient,
  type RunstateClientOptions,
} from '../../src/client/index.js';
import { startServer, TEST_ADMIN_TOKEN, type TestServer } from './server.js';

/**
 * A server of the file's own and a worker client on it (the admin token), started before its
 * tests and closed after them. Read `server` and `client` inside the tests.
 */
export function useClientOnServer(options: Omit<RunstateClientOptions, 'url' | 'token'> = {}) {
  const handles = {} as { server: TestServer; client: RunstateClient };
  beforeAll(async () => {
    handles.server = await startServer();
    handles.client = createRunstateClient({
      url: handles.server.url,
      token: TEST_ADMIN_TOKEN,
      ...options,
    });
  });
  afterAll(async () => {
    await handles.client?.close();
    await handles.server?.stop();
  });
  return handles;
}
