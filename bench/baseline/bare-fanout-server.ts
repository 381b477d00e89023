import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ExecutionArgs } from 'graphql';
import { createPubSub, createSchema, createYoga } from 'graphql-yoga';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';

/**
 * The fan-out baseline (benchmarks.md): a bare graphql-yoga + graphql-ws server with an
 * in-memory pub/sub and nothing else (no database, no auth, no limits), fed the same changes as
 * runstate through a `publish` mutation. Prints its URL as runstate does.
 */
interface Change {
  runId: string;
  version: number;
  to: string;
}
const pubSub = createPubSub<{ run: [runId: string, change: Change]; all: [change: Change] }>();

const yoga = createYoga({
  schema: createSchema({
    typeDefs: /* GraphQL */ `
      type Change {
        runId: ID!
        version: Int!
        to: String!
      }
      input ChangeInput {
        runId: ID!
        version: Int!
        to: String!
      }
      type Query {
        ok: Boolean
      }
      type Mutation {
        publish(changes: [ChangeInput!]!): Int!
      }
      type Subscription {
        changed(runId: ID): Change!
      }
    `,
    resolvers: {
      Mutation: {
        publish: (_: unknown, { changes }: { changes: Change[] }) => {
          for (const change of changes) {
            pubSub.publish('run', change.runId, change);
            pubSub.publish('all', change);
          }
          return changes.length;
        },
      },
      Subscription: {
        changed: {
          subscribe: (_: unknown, { runId }: { runId?: string | null }) =>
            runId ? pubSub.subscribe('run', runId) : pubSub.subscribe('all'),
          resolve: (change: Change) => change,
        },
      },
    },
  }),
  graphiql: false,
  logging: false,
});

const server = createServer(yoga);
const wsServer = new WebSocketServer({ server, path: '/graphql' });
useServer(
  {
    execute: (args) => (args.rootValue as Root).execute(args) as never,
    subscribe: (args) => (args.rootValue as Root).subscribe(args) as never,
    onSubscribe: async (ctx, _id, payload) => {
      const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
        ...ctx,
        req: ctx.extra.request,
        socket: ctx.extra.socket,
        params: payload,
      });
      const document = parse(payload.query);
      const errors = validate(schema, document);
      if (errors.length > 0) return errors;
      return {
        schema,
        operationName: payload.operationName ?? null,
        document,
        variableValues: payload.variables ?? null,
        contextValue: await contextFactory(),
        rootValue: { execute, subscribe },
      };
    },
  },
  wsServer,
);
interface Root {
  execute: (args: ExecutionArgs) => unknown;
  subscribe: (args: ExecutionArgs) => unknown;
}

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  console.log(JSON.stringify({ url: `http://127.0.0.1:${port}/graphql` }));
});
process.once('SIGTERM', () => {
  for (const client of wsServer.clients) client.terminate();
  server.close(() => process.exit(0));
});
