/**
 * `npm run schema:check` (part of `npm run check`): schema.graphql against schema.released.graphql,
 * the schema of the last release. A breaking change (a field, type, argument or enum value
 * removed, a type changed, an argument made required …) fails the check: clients written against
 * the release would break. Dangerous changes (an enum value or an optional argument added, a
 * default changed …) are printed as warnings. Releasing is copying schema.graphql over
 * schema.released.graphql, deliberately, in a commit of its own (README, "Schema changes").
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { buildSchema, findBreakingChanges, findDangerousChanges } from 'graphql';

export interface SchemaChanges {
  /** `TYPE: description`, as graphql-js words them. */
  breaking: string[];
  dangerous: string[];
}

/** What changed from the released schema to the current one, both as SDL. */
export function compareSchemas(released: string, current: string): SchemaChanges {
  const before = buildSchema(released);
  const after = buildSchema(current);
  return {
    breaking: findBreakingChanges(before, after).map((c) => `${c.type}: ${c.description}`),
    dangerous: findDangerousChanges(before, after).map((c) => `${c.type}: ${c.description}`),
  };
}

function main(): void {
  const root = new URL('..', import.meta.url);
  const read = (file: string) => readFileSync(new URL(file, root), 'utf8');
  const { breaking, dangerous } = compareSchemas(
    read('schema.released.graphql'),
    read('schema.graphql'),
  );
  for (const change of dangerous) console.warn(`warning: ${change}`);
  if (breaking.length > 0) {
    console.error(
      `schema.graphql breaks clients of the released schema (schema.released.graphql):\n` +
        breaking.map((change) => `  ${change}`).join('\n') +
        `\nKeep the old field, type or argument (deprecate it with @deprecated), or, for a ` +
        `release that breaks on purpose, copy schema.graphql over schema.released.graphql.`,
    );
    process.exit(1);
  }
  console.log(
    `schema.graphql keeps every part of the released schema` +
      (dangerous.length > 0 ? ` (${dangerous.length} warning(s) above)` : ''),
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
