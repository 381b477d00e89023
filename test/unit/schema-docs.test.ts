import { readFileSync } from 'node:fs';
import {
  buildSchema,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isIntrospectionType,
  isObjectType,
  isSpecifiedScalarType,
} from 'graphql';
import { expect, it } from 'vitest';

const schema = buildSchema(readFileSync(new URL('../../schema.graphql', import.meta.url), 'utf8'));

it('documents every type, field, argument, input field and enum value of schema.graphql', () => {
  const missing: string[] = [];
  const check = (name: string, description: string | null | undefined) => {
    if (!description?.trim()) missing.push(name);
  };
  for (const type of Object.values(schema.getTypeMap())) {
    if (isIntrospectionType(type) || isSpecifiedScalarType(type)) continue;
    check(type.name, type.description);
    if (isObjectType(type) || isInterfaceType(type)) {
      for (const field of Object.values(type.getFields())) {
        check(`${type.name}.${field.name}`, field.description);
        for (const arg of field.args)
          check(`${type.name}.${field.name}(${arg.name})`, arg.description);
      }
    }
    if (isInputObjectType(type)) {
      for (const field of Object.values(type.getFields()))
        check(`${type.name}.${field.name}`, field.description);
    }
    if (isEnumType(type)) {
      for (const value of type.getValues()) check(`${type.name}.${value.name}`, value.description);
    }
  }
  expect(missing).toEqual([]);
});

// Issue 15, defect 4: skipOnUpstreamSkip said "(Parsl's dep_fail)", but dep_fail is
// UPSTREAM_FAILED, the very status the flag replaces; the flag is no seed system's status.
it("describes skipOnUpstreamSkip by what it does, not as Parsl's dep_fail", () => {
  const input = schema.getType('CreateRunInput');
  const run = schema.getType('Run');
  if (!isInputObjectType(input) || !isObjectType(run)) throw new Error('types missing');
  for (const description of [
    input.getFields()['skipOnUpstreamSkip']?.description,
    run.getFields()['skipOnUpstreamSkip']?.description,
  ]) {
    expect(description).toMatch(/SKIPPED/);
    expect(description).not.toMatch(/dep_fail/);
  }
});
