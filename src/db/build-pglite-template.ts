import { buildPgliteTemplate, PGLITE_TEMPLATE } from './client.js';

/** `npm run build` ends here: the migrated, empty PGlite database a first start copies. */
await buildPgliteTemplate();
console.log(`wrote ${PGLITE_TEMPLATE}`);
