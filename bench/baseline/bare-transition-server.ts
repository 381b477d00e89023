import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSchema, createYoga } from 'graphql-yoga';
import postgres from 'postgres';
import { RUN_STATUSES } from '../../src/lifecycle/lifecycle.js';

/**
 * The ceiling of a status change through this stack (issue 18): a bare graphql-yoga server whose
 * `transitionRun` mutation sends the change as one statement (a compare-and-set UPDATE of the
 * run and the INSERT of its history row, in one CTE) through postgres.js, and nothing else: no
 * auth, no limits, no lifecycle rules, no change log, no metrics. Same HTTP, same GraphQL, same
 * driver and database as runstate. DATABASE_URL and POOL_SIZE come from the environment; prints
 * its URL as runstate does.
 */
const sql = postgres(process.env.DATABASE_URL!, {
  max: Number(process.env.POOL_SIZE ?? 20),
  onnotice: () => {},
});

const yoga = createYoga({
  schema: createSchema({
    typeDefs: /* GraphQL */ `
      type Change {
        version: Int!
      }
      type TransitionAccepted {
        change: Change!
      }
      type Refused {
        message: String!
      }
      union TransitionResult = TransitionAccepted | Refused
      enum RunStatus {
        ${RUN_STATUSES.join('\n')}
      }
      input TransitionRunInput {
        id: ID!
        to: RunStatus!
      }
      type Query {
        ok: Boolean
      }
      type Mutation {
        transitionRun(input: TransitionRunInput!): TransitionResult!
      }
    `,
    resolvers: {
      TransitionResult: {
        __resolveType: (result: { version?: number }) =>
          result.version === undefined ? 'Refused' : 'TransitionAccepted',
      },
      TransitionAccepted: { change: (result: { version: number }) => result },
      Mutation: {
        transitionRun: async (_: unknown, { input }: { input: { id: string; to: string } }) => {
          const [row] = await sql<{ version: number }[]>`
            WITH moved AS (
              UPDATE runs SET status = ${input.to}::run_status, version = version + 1,
                     revision = revision + 1, updated_at = greatest(now(), updated_at)
              WHERE id = ${input.id} AND status <> ${input.to}::run_status
              RETURNING id, project, version, status
            ), cur AS (SELECT status FROM runs WHERE id = ${input.id})
            INSERT INTO status_changes (run_id, project, from_status, to_status, version, reason)
            SELECT m.id, m.project, (SELECT status FROM cur), m.status, m.version, 'bench'
            FROM moved m
            RETURNING version`;
          return row ?? { message: 'refused' };
        },
      },
    },
  }),
  graphiql: false,
  logging: false,
});

const server = createServer(yoga);
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  console.log(JSON.stringify({ url: `http://127.0.0.1:${port}/graphql` }));
});
process.once('SIGTERM', () => {
  server.close(() => void sql.end({ timeout: 2 }).then(() => process.exit(0)));
});
