import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compareSchemas } from '../../scripts/schema-check.js';

// `npm run schema:check` fails on a change of schema.graphql that breaks clients of the released
// schema (schema.released.graphql), and lets additions through.

const RELEASED = `
  type Query { run(id: ID!): Run  runs(first: Int): [Run!]! }
  type Run { id: ID!  name: String  version: Int!  status: Status! }
  enum Status { CREATED RUNNING }
  input RunFilter { project: String }
`;

describe('schema check', () => {
  it('reports a removed field as breaking', () => {
    const current = RELEASED.replace('name: String', '');
    expect(compareSchemas(RELEASED, current).breaking).toEqual([
      'FIELD_REMOVED: Run.name was removed.',
    ]);
  });

  it("reports a field's changed type as breaking", () => {
    const current = RELEASED.replace('version: Int!', 'version: String!');
    expect(compareSchemas(RELEASED, current).breaking).toEqual([
      'FIELD_CHANGED_KIND: Run.version changed type from Int! to String!.',
    ]);
  });

  it('reports a new required argument, and a removed enum value, as breaking', () => {
    const current = RELEASED.replace(
      'runs(first: Int)',
      'runs(first: Int, project: String!)',
    ).replace('CREATED RUNNING', 'CREATED');
    expect(compareSchemas(RELEASED, current).breaking).toHaveLength(2);
  });

  it('lets an added optional field, type or argument through; an added enum value is a warning', () => {
    const current = RELEASED.replace('name: String', 'name: String  phase: String')
      .replace('runs(first: Int)', 'runs(first: Int, after: String)')
      .replace('CREATED RUNNING', 'CREATED RUNNING SUCCEEDED')
      .concat('type Measurement { name: String! }');
    const changes = compareSchemas(RELEASED, current);
    expect(changes.breaking).toEqual([]);
    expect(changes.dangerous).toContain(
      'VALUE_ADDED_TO_ENUM: SUCCEEDED was added to enum type Status.',
    );
  });

  it('the released schema is a schema (whether schema.graphql keeps it is `npm run schema:check`)', () => {
    const released = readFileSync(
      new URL('../../schema.released.graphql', import.meta.url),
      'utf8',
    );
    expect(compareSchemas(released, released)).toEqual({ breaking: [], dangerous: [] });
  });
});
