import { Agent, request } from 'node:http';

/**
 * A GraphQL-over-HTTP client on node:http with keep-alive (lighter than fetch, so the load
 * generator takes less of the machine from the service it measures).
 */
export function createGraphQLClient(url: string, token: string, maxSockets: number) {
  const target = new URL(url);
  const agent = new Agent({ keepAlive: true, maxSockets });
  return {
    post<T = unknown>(
      query: string,
      variables: Record<string, unknown>,
    ): Promise<{ data?: T; errors?: { message: string }[] }> {
      const body = JSON.stringify({ query, variables });
      return new Promise((resolve, reject) => {
        const req = request(
          {
            agent,
            host: target.hostname,
            port: target.port,
            path: target.pathname,
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              'content-length': Buffer.byteLength(body),
              authorization: `Bearer ${token}`,
            },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (chunk: Buffer) => chunks.push(chunk));
            res.on('end', () => {
              try {
                resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as never);
              } catch (error) {
                reject(error as Error);
              }
            });
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    },
    close: () => agent.destroy(),
  };
}

/** The data of a GraphQL answer, or an exception naming its errors. */
export function dataOrThrow<T>(answer: { data?: T; errors?: { message: string }[] }): T {
  if (answer.errors?.length || answer.data == null) {
    throw new Error(`GraphQL errors: ${JSON.stringify(answer.errors)}`);
  }
  return answer.data;
}
