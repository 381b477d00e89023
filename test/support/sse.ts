import { authHeader, type AsToken } from './server.js';

/** A GraphQL subscription over SSE (graphql-sse "distinct connections" mode, as yoga serves it). */
export interface SseSubscription<T> {
  /** Every `next` payload received so far. */
  readonly results: { data?: T; errors?: { message: string; extensions?: { code?: string } }[] }[];
  /** Resolves when the server ends the stream (`complete`, or the response ends). */
  readonly ended: Promise<void>;
  close(): void;
}

export async function subscribeSse<T = Record<string, unknown>>(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
  as: AsToken = {},
): Promise<SseSubscription<T> & { status: number }> {
  const controller = new AbortController();
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...authHeader(as) },
    body: JSON.stringify({ query, variables }),
    signal: controller.signal,
  });
  const results: SseSubscription<T>['results'] = [];
  const ended = (async () => {
    if (!response.body) return;
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event === 'next' && data) results.push(JSON.parse(data) as never);
          if (event === 'complete') return;
        }
      }
    } catch {
      // Aborted by close().
    }
  })();
  return { status: response.status, results, ended, close: () => controller.abort() };
}
