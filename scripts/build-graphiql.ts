import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fromPackageRoot } from '../src/package-root.js';
import { GRAPHIQL_FILES } from '../src/server/graphiql.js';

/**
 * Copy GraphiQL's files (@graphql-yoga/graphiql, a development dependency: a bundle that needs
 * nothing else) into dist/graphiql, which the service serves at /graphiql/ (src/server/graphiql.ts).
 */
const require = createRequire(import.meta.url);
const from = `${dirname(require.resolve('@graphql-yoga/graphiql/package.json'))}/dist`;
const out = fromPackageRoot('dist/graphiql');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
for (const [name, file] of Object.entries(GRAPHIQL_FILES))
  copyFileSync(`${from}/${file}`, `${out}/${name}`);
console.log(`wrote dist/graphiql (${Object.keys(GRAPHIQL_FILES).length} files)`);
