import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ExecutionResult, GraphQLError } from 'graphql';
import { sendNodeResponse } from '@whatwg-node/server';
import { processRegularResult } from 'graphql-yoga';
import type { RunstateYoga } from './yoga.js';

/**
 * GraphQL over a plain JSON POST (a worker's change, a client's query), answered without the
 * Fetch API adapter: the body is read and parsed here, then yoga runs the operation as it would
 * (its params hooks, parse and validation caches, envelop plugins, context, masking) and its own
 * result processor writes the answer. What is skipped is the adapter around it (a Request built
 * from the socket, a Response piped back) and yoga's request hooks, none of which answers such a
 * request. Measured (issue 18): 30–40 % of the service's CPU for `{ __typename }` (about 80 µs),
 * a few per cent of a transitionRun or a page of 50 runs.
 *
 * Everything else goes to yoga as before: other methods, paths and content types, a request with
 * an Origin (CORS), an Accept that asks for a stream, a body that is not one operation's params
 * (yoga's answer to a malformed body is the contract), and a subscription.
 */
export function createGraphQLPost(
  yoga: RunstateYoga,
  graphqlPath: string,
  /** Counts the errors of an answer (graphql/instrument.ts), as yoga's result hook does. */
  countErrors: (result: ExecutionResult) => void,
) {
  return {
    /** The media type the answer will have, or null when yoga must answer this request. */
    answerableAs(req: IncomingMessage, path: string): RegularMediaType | null {
      if (req.method !== 'POST' || path !== graphqlPath || req.headers.origin !== undefined) {
        return null;
      }
      if (!isJsonContentType(req.headers['content-type'])) return null;
      return regularMediaType(req.headers.accept);
    },

    async serve(
      req: IncomingMessage,
      res: ServerResponse,
      mediaType: RegularMediaType,
      requestId: string,
    ) {
      // What yoga's context factory receives besides the request (its id: for the logs).
      const serverContext: object = { req, res, requestId };
      const body = await readBody(req);
      const params = paramsOf(body);
      if (params === null)
        return forwardToYoga(yoga, req, res, requestOf(yoga, req, body), serverContext);
      const request = requestOf(yoga, req);
      let result: ExecutionResult;
      try {
        result = (await yoga.getResultForParams({ params, request }, serverContext)) as never;
      } catch (error) {
        // What getResultForParams lets through (a syntax error, a hook's throw) is answered, and
        // logged when masked, as yoga's adapter answers it.
        result = { errors: [yoga.maskAndLog(error) as GraphQLError] };
      }
      countErrors(result);
      if (isPlainAnswer(result)) {
        // What yoga answers an answer without errors (200, its media type, its JSON), written
        // without the Response that would carry it to the same writeHead: building it, and its
        // body's copy of the JSON, cost 4 % of a page of runs (issue 18).
        const body = JSON.stringify(result);
        res.writeHead(200, {
          'Content-Type': `${mediaType}; charset=utf-8`,
          'Content-Length': Buffer.byteLength(body),
        });
        res.end(body);
        return;
      }
      // Written as yoga's adapter writes every answer (status, headers, the body at once).
      await sendNodeResponse(
        processRegularResult(result, yoga.fetchAPI, mediaType),
        res,
        req,
        true,
      );
    },
  };
}

/**
 * An answer yoga's result processor writes as it is, with status 200: one result (not a stream),
 * no errors (they set the status, and yoga rewrites them), no HTTP extensions (they set status
 * and headers), no stringifier of its own.
 */
function isPlainAnswer(result: ExecutionResult): boolean {
  return (
    !(Symbol.asyncIterator in result) &&
    !result.errors?.length &&
    (result.extensions as { http?: unknown } | undefined)?.http === undefined &&
    (result as { stringify?: unknown }).stringify === undefined
  );
}

export type RegularMediaType = 'application/json' | 'application/graphql-response+json';
const REGULAR: readonly RegularMediaType[] = [
  'application/graphql-response+json',
  'application/json',
];

function isJsonContentType(value: string | undefined): boolean {
  return value?.split(';', 1)[0]!.trim().toLowerCase() === 'application/json';
}

/**
 * The media type yoga's result processors pick for a regular (not streamed) answer: of the
 * Accept header's utf-8 types, last to first, the last match of graphql-response+json then json;
 * a stream processor wins over it only when nothing matches it. Null: yoga decides (a stream,
 * or 406).
 */
export function regularMediaType(accept: string | undefined): RegularMediaType | null {
  const asked = (accept || '*/*').replace(/\s/g, '').toLowerCase().split(',').reverse();
  let chosen: RegularMediaType | null = null;
  for (const entry of asked) {
    const [type, ...params] = entry.split(';');
    const charset = params.find((p) => p.includes('charset=')) ?? 'charset=utf-8';
    if (charset !== 'charset=utf-8' || type === undefined) continue;
    const [pre, suf] = type.split('/');
    for (const candidate of REGULAR) {
      const [cPre, cSuf] = candidate.split('/');
      if ((pre === '*' || pre === cPre) && (suf === '*' || suf === cSuf)) chosen = candidate;
    }
  }
  return chosen;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let ended = false;
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.once('end', () => {
      ended = true;
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    });
    req.once('error', reject);
    // A client gone before its body ended. Every request closes: an error (and its stack) made
    // for each one only to be dropped was 2 % of a page of runs.
    req.once('close', () => {
      if (!ended) reject(new Error('the request closed before its body ended'));
    });
  });
}

const PARAM_NAMES = new Set(['query', 'variables', 'operationName', 'extensions']);

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * One operation's params as yoga accepts them (a query string; variables and extensions objects;
 * an operation name; nothing else), or null for anything yoga must answer itself: invalid JSON,
 * a batch, a malformed param, and a subscription (its word anywhere sends it there).
 */
function paramsOf(body: Buffer) {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return null;
  }
  if (!isPlainObject(parsed)) return null;
  for (const key in parsed) if (parsed[key] != null && !PARAM_NAMES.has(key)) return null;
  const { query, variables, operationName, extensions } = parsed;
  if (typeof query !== 'string' || query.includes('subscription')) return null;
  if (variables != null && !isPlainObject(variables)) return null;
  if (extensions != null && !isPlainObject(extensions)) return null;
  if (operationName != null && typeof operationName !== 'string') return null;
  return {
    query,
    variables: variables as Record<string, unknown> | undefined,
    operationName: operationName as string | undefined,
    extensions: extensions as Record<string, unknown> | undefined,
  };
}

/**
 * The Fetch API Request yoga's hooks and our context read (its headers: the token), with the
 * body when yoga is to read it. Node's header object is handed over as it is (read lazily): a
 * request's repeated headers are joined already, but for set-cookie, which no GraphQL request
 * needs.
 */
function requestOf(yoga: RunstateYoga, req: IncomingMessage, body?: Buffer): Request {
  return new yoga.fetchAPI.Request(`http://localhost${req.url ?? '/'}`, {
    method: 'POST',
    headers: req.headers as Record<string, string>,
    ...(body ? { body: body.toString('utf8') } : {}),
  });
}

/**
 * Yoga answers, through its adapter, a body read here already: its own errors for what it cannot
 * take, and a subscription (a stream, when the Accept header allows one).
 */
async function forwardToYoga(
  yoga: RunstateYoga,
  req: IncomingMessage,
  res: ServerResponse,
  request: Request,
  serverContext: object,
) {
  await sendNodeResponse(await yoga.handleRequest(request, serverContext), res, req, true);
}
