import { readEnv } from './env.js';
import { serve } from './serve.js';

/** `npm start`: serve with the configuration in the environment. */
// readEnv throws on an invalid configuration: inside the chain, so it is reported like the rest.
Promise.resolve()
  .then(() => serve(readEnv()))
  .catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
