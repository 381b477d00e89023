import { readFileSync } from 'node:fs';
import {
  buildClientSchema,
  buildSchema,
  getIntrospectionQuery,
  lexicographicSortSchema,
  printSchema,
  type IntrospectionQuery,
} from 'graphql';
import { beforeAll, describe, expect, it } from 'vitest';
import { dataOf } from '../support/operations.js';
import { useServer, uniqueProject, type GqlResponse } from '../support/server.js';

// Introspection is what GraphiQL, code generators and client caches start from: it is never
// priced by the cost limit (it reads no data), but depth and token limits still bound it. And
// the schema it answers is schema.graphql, to the letter (descriptions of scalars included).

/** GraphiQL's own introspection query, with every option it asks for. */
const GRAPHIQL_INTROSPECTION = getIntrospectionQuery({
  inputValueDeprecation: true,
  schemaDescription: true,
  descriptions: true,
  specifiedByUrl: true,
  directiveIsRepeatable: true,
});

const server = useServer(); // the default limits

let readToken: string;
beforeAll(async () => {
  const created = await server.gql<{ createApiToken: { token: string } }>(
    `mutation($name: String!) { createApiToken(input: { name: $name, role: READ }) { token } }`,
    { name: uniqueProject('introspect') },
  );
  readToken = dataOf(created).createApiToken.token;
});

function expectLimit(response: GqlResponse<unknown>, limit: string) {
  expect(response.data ?? null).toBeNull();
  expect(response.errors?.[0]?.extensions).toMatchObject({ code: 'LIMIT_EXCEEDED', limit });
}

describe('introspection', () => {
  it("GraphiQL's introspection query is answered with a READ token and the default limits", async () => {
    const response = await server.gql<IntrospectionQuery>(GRAPHIQL_INTROSPECTION, undefined, {
      token: readToken,
    });
    expect(response.errors).toBeUndefined();
    expect(response.status).toBe(200);
    expect(response.data!.__schema.queryType?.name).toBe('Query');
  });

  it('the served schema is schema.graphql, descriptions and all', async () => {
    const response = await server.gql<IntrospectionQuery>(GRAPHIQL_INTROSPECTION, undefined, {
      token: readToken,
    });
    const served = buildClientSchema(response.data!);
    const written = buildSchema(
      readFileSync(new URL('../../schema.graphql', import.meta.url), 'utf8'),
    );
    expect(printSchema(lexicographicSortSchema(served))).toBe(
      printSchema(lexicographicSortSchema(written)),
    );
    // What differed before: graphql-scalars' own descriptions of the scalars.
    expect(served.getType('JSON')?.description).toBe('A JSON object, for free-form metadata.');
    // And the schema yoga holds in memory (WebSocket operations run on it too).
    const inMemory = server.app.yoga.getEnveloped().schema;
    expect(printSchema(lexicographicSortSchema(inMemory))).toBe(
      printSchema(lexicographicSortSchema(written)),
    );
  });

  it('a costly ordinary query is still refused, next to introspection or alone', async () => {
    const costly = `runs(first: 500) { edges { node { statusHistory(first: 500) { edges { cursor } } } } }`;
    expectLimit(await server.gql(`{ ${costly} }`), 'cost');
    expectLimit(await server.gql(`{ __schema { types { name } } ${costly} }`), 'cost');
  });

  it('introspection nested absurdly deep is refused by depth', async () => {
    const ofTypes = (n: number): string => (n === 0 ? 'name' : `ofType { ${ofTypes(n - 1)} }`);
    const deep = `{ __schema { types { fields { type { ${ofTypes(40)} } } } } }`;
    expectLimit(await server.gql(deep, undefined, { token: readToken }), 'depth');
    const deepType = `{ __type(name: "Run") { fields { type { ${ofTypes(40)} } } } }`;
    expectLimit(await server.gql(deepType, undefined, { token: readToken }), 'depth');
  });

  it('a document whose cost does not depend on variables answers the same every time; one whose cost does is priced per request', async () => {
    const fixed = `query($p: String!) { runs(filter: { project: $p }, first: 500) { edges { node { statusHistory(first: 500) { edges { cursor } } } } } }`;
    for (let i = 0; i < 3; i++)
      expectLimit(await server.gql(fixed, { p: uniqueProject('cost') }), 'cost');
    const cheap = `query($p: String!) { runs(filter: { project: $p }, first: 5) { edges { cursor } } }`;
    for (let i = 0; i < 3; i++)
      expect((await server.gql(cheap, { p: uniqueProject('cost') })).errors).toBeUndefined();
    // A directive's variable decides whether the costly part counts.
    const maybe = `query($big: Boolean!) { runs(first: 500) { edges { node { statusHistory(first: 500) @include(if: $big) { edges { cursor } } } } } }`;
    expect((await server.gql(maybe, { big: false })).errors).toBeUndefined();
    expectLimit(await server.gql(maybe, { big: true }), 'cost');
    expect((await server.gql(maybe, { big: false })).errors).toBeUndefined();
    // So does a page size.
    const sized = `query($n: Int) { runs(first: $n) { edges { node { statusHistory(first: $n) { edges { cursor } } } } } }`;
    expect((await server.gql(sized, { n: 5 })).errors).toBeUndefined();
    expectLimit(await server.gql(sized, { n: 500 }), 'cost');
    expect((await server.gql(sized, { n: 5 })).errors).toBeUndefined();
  });
});
