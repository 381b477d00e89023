import { readFileSync } from 'node:fs';
import {
  ApolloClient,
  gql,
  HttpLink,
  InMemoryCache,
  type InMemoryCacheConfig,
  type TypedDocumentNode,
} from '@apollo/client';
import { buildSchema, isAbstractType } from 'graphql';
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest';
import { createRun } from '../support/operations.js';
import { authHeader, uniqueProject, useServer } from '../support/server.js';

// The cache configuration README's "Apollo Client and urql" section gives, with the real
// @apollo/client against a real service: runs, their history and the lifecycle normalise, a
// transition answered through a fragment on the TransitionResult union lands in the cache, and
// Apollo warns of nothing (no data lost on a refetch, no fragment it cannot match).

/** As in README (keep them the same). */
const APOLLO_CACHE: InMemoryCacheConfig = {
  possibleTypes: {
    TransitionResult: [
      'TransitionAccepted',
      'IllegalTransition',
      'TransitionConflict',
      'RunNotFound',
    ],
  },
  typePolicies: {
    // A change has no `id`: its cursor is its identity (the same change has the same cursor in
    // statusHistory, statusChanges, subscriptions and a transition's answer).
    StatusChange: { keyFields: ['cursor'] },
    // The lifecycle's rows, one per status.
    StatusInfo: { keyFields: ['status'] },
    // Objects without an identity of their own, reached through the same field by queries that
    // select different parts of them: the parts add up instead of replacing each other.
    Lifecycle: { merge: true },
    RunConnection: { merge: true },
    StatusChangeConnection: { merge: true },
    MeasurementConnection: { merge: true },
    PageInfo: { merge: true },
    Viewer: { merge: true },
  },
};

const server = useServer();

let warnings: MockInstance[];
beforeEach(() => {
  warnings = [
    vi.spyOn(console, 'warn').mockImplementation(() => {}),
    vi.spyOn(console, 'error').mockImplementation(() => {}),
  ];
});
afterEach(() => {
  for (const spy of warnings) spy.mockRestore();
});
const warned = () => warnings.flatMap((spy) => spy.mock.calls.map((args) => args.join(' ')));

function client(config: InMemoryCacheConfig = APOLLO_CACHE) {
  return new ApolloClient({
    link: new HttpLink({ uri: server.url, headers: authHeader() }),
    cache: new InMemoryCache(config),
  });
}

interface RunsData {
  lifecycle: { statuses: { status: string; color: string }[] };
  runs: {
    edges: {
      node: {
        id: string;
        status: string;
        statusHistory: { edges: { node: { cursor: string; to: string } }[] };
      };
    }[];
  };
}

const RUNS: TypedDocumentNode<RunsData, { p: string }> = gql`
  query Runs($p: String!) {
    lifecycle {
      statuses {
        status
        color
      }
    }
    runs(filter: { project: $p }) {
      edges {
        node {
          id
          status
          statusHistory {
            edges {
              node {
                cursor
                to
              }
            }
          }
        }
      }
    }
  }
`;

/** The same page of runs, another part of it: its total (and no history). */
const RUN_TOTAL = gql`
  query RunTotal($p: String!) {
    runs(filter: { project: $p }) {
      totalCount
      edges {
        node {
          id
          name
        }
      }
    }
  }
`;

/** Another part of the lifecycle: without `Lifecycle: { merge: true }` it would replace the first. */
const LIFECYCLE_RULES = gql`
  query LifecycleRules {
    lifecycle {
      statuses {
        status
        isFinal
        allowedNext
      }
    }
  }
`;

const TRANSITION = gql`
  fragment Outcome on TransitionResult {
    __typename
    ... on TransitionAccepted {
      run {
        id
        status
        version
      }
      change {
        cursor
        from
        to
      }
    }
    ... on IllegalTransition {
      runId
      message
    }
    ... on TransitionConflict {
      runId
      message
    }
    ... on RunNotFound {
      runId
      message
    }
  }
  mutation Transition($id: ID!, $to: RunStatus!) {
    transitionRun(input: { id: $id, to: $to }) {
      ...Outcome
    }
  }
`;

describe('Apollo Client', () => {
  it("README's possibleTypes name every union and interface of schema.graphql, with all their members", () => {
    const schema = buildSchema(
      readFileSync(new URL('../../schema.graphql', import.meta.url), 'utf8'),
    );
    const derived = Object.fromEntries(
      Object.values(schema.getTypeMap())
        .filter(isAbstractType)
        .map((type) => [type.name, schema.getPossibleTypes(type).map((t) => t.name)]),
    );
    expect(APOLLO_CACHE.possibleTypes).toEqual(derived);
  });

  it('with the policies: runs, history and lifecycle normalise, a transition lands in the cache, and nothing is warned of', async () => {
    const project = uniqueProject('apollo');
    const run = await createRun(server, { project, name: 'cached' });
    const apollo = client();

    const first = await apollo.query({ query: RUNS, variables: { p: project } });
    expect(first.data?.runs.edges.map((e) => e.node.id)).toEqual([run.id]);
    await apollo.query({ query: LIFECYCLE_RULES });
    await apollo.query({ query: RUN_TOTAL, variables: { p: project } });

    const answer = await apollo.mutate({
      mutation: TRANSITION,
      variables: { id: run.id, to: 'RUNNING' },
    });
    const outcome = (answer.data as { transitionRun: { __typename: string } }).transitionRun;
    expect(outcome.__typename).toBe('TransitionAccepted');
    // A refused one is read through the same fragment.
    const refused = await apollo.mutate({
      mutation: TRANSITION,
      variables: { id: run.id, to: 'CREATED' },
    });
    expect(refused.data).toMatchObject({ transitionRun: { __typename: 'IllegalTransition' } });

    // The run's entity was updated by the mutation: the cached query shows RUNNING.
    const cached = apollo.readQuery({ query: RUNS, variables: { p: project } });
    expect(cached?.runs.edges[0]?.node.status).toBe('RUNNING');
    // Both parts of the lifecycle are kept.
    const rules = apollo.readQuery({ query: LIFECYCLE_RULES }) as {
      lifecycle: { statuses: { status: string; allowedNext: string[] }[] };
    } | null;
    expect(rules?.lifecycle.statuses.find((s) => s.status === 'CREATED')?.allowedNext).toContain(
      'RUNNING',
    );

    const store = apollo.cache.extract() as Record<string, unknown>;
    const keys = Object.keys(store);
    expect(keys).toContain(`Run:${run.id}`);
    expect(keys).toContain('StatusInfo:{"status":"CREATED"}');
    expect(keys.filter((key) => key.startsWith('StatusChange:{"cursor":'))).toHaveLength(2);

    // Refetched, each in turn: still nothing to warn of, and both parts of the page are kept.
    await apollo.query({ query: RUNS, variables: { p: project }, fetchPolicy: 'network-only' });
    await apollo.query({
      query: RUN_TOTAL,
      variables: { p: project },
      fetchPolicy: 'network-only',
    });
    await apollo.query({ query: RUNS, variables: { p: project }, fetchPolicy: 'network-only' });
    expect(apollo.readQuery({ query: RUN_TOTAL, variables: { p: project } })).toMatchObject({
      runs: { totalCount: 1 },
    });
    expect(warned()).toEqual([]);
  });

  it('without them, Apollo warns that it loses part of a page of runs, and cannot match the fragment on the union', async () => {
    const project = uniqueProject('apollo-bare');
    const run = await createRun(server, { project, name: 'bare' });
    const apollo = client({});
    await apollo.query({ query: RUN_TOTAL, variables: { p: project } });
    await apollo.query({ query: RUNS, variables: { p: project } });
    await apollo.mutate({ mutation: TRANSITION, variables: { id: run.id, to: 'RUNNING' } });
    const text = warned().join('\n');
    // (printf-style: the arguments follow the message.)
    expect(text).toMatch(/Cache data may be lost when replacing the %s field[\s\S]* runs Query /);
    expect(text).toMatch(/missing `possibleTypes` entry/);
  });
});
