import { buildPgliteTemplate, PGLITE_TEMPLATE } from './client.js';

/** `npm run build` ends here: the migrated, empty PGlite database a first start copies. */
const bytes = await buildPgliteTemplate();
console.log(`wrote ${PGLITE_TEMPLATE} (${Math.round(bytes / 1024)} KiB)`);
