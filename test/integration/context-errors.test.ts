import { expect, it } from 'vitest';
import { captureLogs, useServerWithoutTable } from '../support/broken-database.js';
import { waitUntil } from '../support/operations.js';

// An error out of an operation's context (here: the token lookup, with the api_tokens table
// renamed away once the server has started) is a bug: answered "Unexpected error." with no SQL,
// and logged under the request's id, on the plain JSON POST path (graphql-post.ts) as through
// yoga's own adapter (a GET).

interface LogLine {
  level: number;
  msg: string;
  requestId?: string;
}
const { logger, errorLines } = captureLogs<LogLine>();
const server = useServerWithoutTable('context_errors', 'api_tokens', logger, { afterStart: true });
const QUERY = '{ __typename }';

async function ask(requestId: string, method: 'POST' | 'GET') {
  const base = server.url.replace(/\/graphql$/, '');
  const response = await fetch(
    method === 'POST' ? `${base}/graphql` : `${base}/graphql?query=${encodeURIComponent(QUERY)}`,
    {
      method,
      headers: {
        accept: 'application/json',
        'content-type': 'application/json',
        // Never issued, so never cached: looking it up reads api_tokens.
        authorization: `Bearer rst_${requestId}-0000000000000000000000000000`,
        'x-request-id': requestId,
      },
      body: method === 'POST' ? JSON.stringify({ query: QUERY }) : undefined,
    },
  );
  const text = await response.text();
  return { status: response.status, text, body: JSON.parse(text) as { errors?: unknown[] } };
}

it('answers and logs an error out of the context alike over POST and GET', async () => {
  const viaGet = await ask('context-get-1', 'GET');
  const viaPost = await ask('context-post-1', 'POST');
  expect(viaGet.body.errors).toEqual([expect.objectContaining({ message: 'Unexpected error.' })]);
  expect(viaPost.status).toBe(viaGet.status);
  expect(viaPost.body).toEqual(viaGet.body);
  expect(viaPost.text).not.toMatch(/api_tokens|relation|select/i);
  for (const id of ['context-get-1', 'context-post-1'])
    await waitUntil(`the log line of ${id}`, () => errorLines().some((l) => l.requestId === id));
});
