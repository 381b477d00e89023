import { createSchema, createYoga } from 'graphql-yoga';
import { expect, it } from 'vitest';
import { useCompiledQueries } from '../../src/graphql/compiled-queries.js';

// Where graphql-jit on its own answers otherwise than the executor, on a schema made to show it:
// every answer of a query sent again is its first (uncompiled) answer. The service's own schema
// is covered over HTTP in test/integration/compiled-queries.test.ts.

const compileErrors: unknown[] = [];

class BrokenEdge {
  get cursor(): string {
    throw new Error('no cursor');
  }
}
const yoga = createYoga({
  schema: createSchema({
    typeDefs: /* GraphQL */ `
      enum Color {
        RED
      }
      input Options {
        label: String = "default"
        sizes: [Int!]
      }
      type Box {
        size: Int
      }
      union Thing = Box
      type Edge {
        cursor: String!
      }
      type Query {
        page: [Edge!]!
        pageNow: [Edge!]!
        thing: Thing
        echo(options: Options): String!
        color: Color
        name: String!
        names: [String]
      }
    `,
    resolvers: {
      Thing: { __resolveType: () => 'Nothing' }, // not a type of the union
      Query: {
        thing: () => ({}),
        echo: (_: unknown, args: unknown) => JSON.stringify(args),
        color: () => 'PURPLE', // not a Color: the serializer refuses it
        name: () => null, // null for a non-null field
        names: () => 'not a list',
        // A property read without a resolver that throws (a bug): graphql-jit reads such
        // properties inline, outside the try its resolver calls get.
        page: () => Promise.resolve([new BrokenEdge()]),
        pageNow: () => [new BrokenEdge()],
      },
    },
  }),
  plugins: [useCompiledQueries((errors) => compileErrors.push(errors))],
  logging: false,
});

async function answers(query: string, variables: Record<string, unknown> = {}) {
  const sent = async () => {
    const response = await yoga.fetch('http://yoga/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query, variables }),
    });
    return { status: response.status, body: (await response.json()) as unknown };
  };
  const first = await sent();
  for (let i = 0; i < 3; i++) expect(await sent()).toEqual(first);
  return first;
}

it('a variable left out inside an input object leaves the field out, so its default applies', async () => {
  const { body } = await answers('query($label: String) { echo(options: { label: $label }) }');
  expect(body).toEqual({ data: { echo: JSON.stringify({ options: { label: 'default' } }) } });
  // Given, it is used; in a list, the same rule.
  const given = await answers('query($label: String) { echo(options: { label: $label }) }', {
    label: 'x',
  });
  expect(given.body).toEqual({ data: { echo: JSON.stringify({ options: { label: 'x' } }) } });
  const inList = await answers('query($s: Int!) { echo(options: { sizes: [1, $s] }) }', { s: 2 });
  expect(inList.body).toEqual({
    data: { echo: JSON.stringify({ options: { label: 'default', sizes: [1, 2] } }) },
  });
});

it('what graphql-jit raises itself is answered as the executor answers it', async () => {
  // A null for a non-null field: masked.
  expect((await answers('{ name }')).body).toEqual({
    errors: [
      {
        message: 'Unexpected error.',
        locations: [{ line: 1, column: 3 }],
        path: ['name'],
        extensions: { code: 'INTERNAL_SERVER_ERROR' },
      },
    ],
    data: null,
  });
  // A value its type cannot represent: masked. A list that is not one, an abstract type that
  // resolves to no type of it: shown, in the executor's words.
  expect((await answers('{ color }')).body).toEqual({
    errors: [expect.objectContaining({ message: 'Unexpected error.', path: ['color'] })],
    data: { color: null },
  });
  expect((await answers('{ names }')).body).toEqual({
    errors: [expect.objectContaining({ message: expect.stringMatching(/^Expected Iterable/) })],
    data: { names: null },
  });
  expect((await answers('{ thing { __typename } }')).body).toEqual({
    errors: [expect.objectContaining({ message: expect.stringMatching(/^Abstract type "Thing"/) })],
    data: { thing: null },
  });
  expect(compileErrors).toEqual([]);
});

it('a property that throws after a resolver awaited is answered as the executor answers it', async () => {
  // Compiled, the throw escaped the promise graphql-jit waited on: the answer never came, and
  // the error was an unhandled rejection (graphql-jit 0.8.9; patches/graphql-jit+0.8.9.patch).
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    for (const field of ['page', 'pageNow']) {
      const { status, body } = await answers(`{ ${field} { cursor } }`);
      expect(status).toBe(200);
      expect(body).toEqual({
        data: null,
        errors: [
          {
            message: 'Unexpected error.',
            locations: [{ line: 1, column: field.length + 6 }],
            path: [field, 0, 'cursor'],
            extensions: { code: 'INTERNAL_SERVER_ERROR' },
          },
        ],
      });
    }
    await new Promise((resolve) => setImmediate(resolve));
    expect(unhandled).toEqual([]);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
}, 10_000);
