import type { createGraphQLClient } from './http.js';
import { dataOrThrow } from './http.js';

type Client = ReturnType<typeof createGraphQLClient>;

/** Create `count` runs in a project and move them to RUNNING, through the service. */
export async function createRunningRuns(
  client: Client,
  project: string,
  count: number,
): Promise<string[]> {
  const ids: string[] = [];
  for (let offset = 0; offset < count; offset += 100) {
    const batch = Math.min(100, count - offset);
    const created = await Promise.all(
      Array.from({ length: batch }, () =>
        client
          .post<{ createRun: { id: string } }>(
            `mutation($p: String!) { createRun(input: { project: $p }) { id } }`,
            { p: project },
          )
          .then((answer) => dataOrThrow(answer).createRun.id),
      ),
    );
    const moved = dataOrThrow(
      await client.post<{ transitionRuns: { __typename: string }[] }>(
        `mutation($inputs: [TransitionRunInput!]!) { transitionRuns(inputs: $inputs) { __typename } }`,
        { inputs: created.map((id) => ({ id, to: 'RUNNING' })) },
      ),
    );
    if (moved.transitionRuns.some((r) => r.__typename !== 'TransitionAccepted')) {
      throw new Error('could not move the benchmark runs to RUNNING');
    }
    ids.push(...created);
  }
  return ids;
}

/** RUNNING and PROCESSING lead to each other: a run can change status forever between them. */
export const flip = (status: string): 'RUNNING' | 'PROCESSING' =>
  status === 'RUNNING' ? 'PROCESSING' : 'RUNNING';
