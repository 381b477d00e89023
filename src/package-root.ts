import { fileURLToPath } from 'node:url';

/**
 * A file or folder at the package root (schema.graphql, drizzle/), whether the code runs from
 * src/ (tsx) or from dist/src/ (compiled): both are the same depth below their top folder.
 */
export function fromPackageRoot(relative: string): string {
  const root = fileURLToPath(new URL('..', import.meta.url)).replace(/\/dist\/?$/, '/');
  return `${root.replace(/\/$/, '')}/${relative}`;
}
