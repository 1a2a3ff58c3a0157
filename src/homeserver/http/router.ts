/**
 * The route table of a homeserver's HTTP API: matches `METHOD /path` against
 * registered patterns (`{name}` segments become decoded params), answers CORS
 * preflights, authenticates the access token when a route needs it, reads and
 * size-limits request bodies, parses JSON bodies through the one ingress
 * (json-ingress.ts), answers HEAD for every GET route, and turns every failure
 * into Matrix error JSON. Handlers return a plain object (sent as 200 JSON) or
 * a ready `Response`.
 */
import { MatrixError, badJson, missingToken, tooLarge, unrecognized, methodNotAllowed, unknown } from './errors.js';
import { parseJsonBody, type JsonLimits } from './json-ingress.js';
import { CORS_HEADERS, jsonResponse } from './response.js';
import { StorageError } from '../../storage/errors.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** Who a request is from, once its access token has been checked. */
export interface Requester {
  userId: string;
  deviceId: string;
  accessToken: string;
}

export interface RouteContext {
  request: Request;
  url: URL;
  params: Record<string, string>;
  query: URLSearchParams;
  /** Present when the route's `auth` is 'required' (or 'optional' and a token was given). */
  requester: Requester | undefined;
  /** The client's address when the request came over a network; undefined in process. */
  remoteAddress: string | undefined;
  /** Federation: the authenticated remote server (the transport's word, never a header); undefined for clients. */
  origin: string | undefined;
  /**
   * The body as a JSON object, through the JSON ingress: M_NOT_JSON if it does not parse, M_BAD_JSON if it is
   * not an object, too deep or holds a lone surrogate, M_TOO_LARGE past a size bound.
   */
  json<T = Record<string, unknown>>(): Promise<T>;
  /** The raw body, limited to the route's `maxBodyBytes`. */
  bytes(): Promise<Uint8Array>;
}

/**
 * What the transport knows of a request's client, which a web Request does not carry. The Node
 * HTTP adapter gives the socket's address; in process (the tab) there is none, and per-address
 * rate limits do not apply (see limits/rate-limits.ts).
 */
export interface ConnectionInfo {
  /** The peer's IP address as the socket reports it, e.g. '127.0.0.1' or '::1'. */
  remoteAddress?: string;
  /** Federation: the remote server the transport authenticated (its Noise-verified key). */
  origin?: string;
}

/** Like RouteContext, for routes that require authentication. */
export interface AuthedContext extends RouteContext {
  requester: Requester;
}

export interface RouteDefinition {
  method: HttpMethod;
  /** Full path patterns, e.g. '/_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}'. */
  paths: string[];
  auth: 'required' | 'optional' | 'none';
  /** Overrides the router's body limit (media uploads). */
  maxBodyBytes?: number;
  handler(ctx: RouteContext): Promise<unknown>;
}

/** The client-server API's path prefixes: v3, and r0 for older clients (Hydrogen, matrix-nio). */
export const CLIENT_PREFIXES = ['/_matrix/client/v3', '/_matrix/client/r0'];

/** Helper for the common case: one route under every client-server prefix. */
export function clientRoute(
  method: HttpMethod,
  path: string,
  auth: RouteDefinition['auth'],
  handler: (ctx: AuthedContext) => Promise<unknown>,
  options: { prefixes?: string[]; maxBodyBytes?: number } = {},
): RouteDefinition {
  return {
    method,
    paths: (options.prefixes ?? CLIENT_PREFIXES).map((p) => p + path),
    auth,
    maxBodyBytes: options.maxBodyBytes,
    handler: handler as (ctx: RouteContext) => Promise<unknown>,
  };
}

interface CompiledRoute {
  definition: RouteDefinition;
  segments: string[]; // literal segment, or '{name}'
}

export interface RouterOptions {
  /** Checks an access token and returns who it belongs to; throws M_UNKNOWN_TOKEN otherwise. */
  authenticate(accessToken: string): Promise<Requester>;
  /** Default limit for request bodies in bytes. @default 1048576 */
  maxBodyBytes?: number;
  /** Bounds on JSON bodies. @default DEFAULT_JSON_LIMITS */
  jsonLimits?: Partial<JsonLimits>;
  /** Where unexpected (non-Matrix) errors are reported. @default console.error */
  onError?(error: unknown, request: Request): void;
}

/** One entry of the route table: a method and a full path pattern. */
export interface RouteSummary {
  method: HttpMethod;
  path: string;
  auth: RouteDefinition['auth'];
}

export interface Router {
  handle(request: Request, connection?: ConnectionInfo): Promise<Response>;
  /** Every `METHOD /path` the router serves (tests walk it; docs list it). */
  readonly routes: readonly RouteSummary[];
}

export function createRouter(routes: RouteDefinition[], options: RouterOptions): Router {
  const maxBodyDefault = options.maxBodyBytes ?? 1024 * 1024;
  const onError = options.onError ?? ((e: unknown) => console.error('homeserver error', e));
  const bySegmentCount = new Map<number, CompiledRoute[]>();
  for (const definition of routes) {
    for (const path of definition.paths) {
      const segments = path.split('/').slice(1);
      const list = bySegmentCount.get(segments.length) ?? [];
      list.push({ definition, segments });
      bySegmentCount.set(segments.length, list);
    }
  }

  function match(pathname: string, method: string) {
    const parts = pathname.split('/').slice(1);
    let pathMatched = false;
    for (const route of bySegmentCount.get(parts.length) ?? []) {
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < parts.length; i++) {
        const seg = route.segments[i]!;
        if (seg.startsWith('{')) {
          try {
            params[seg.slice(1, -1)] = decodeURIComponent(parts[i]!);
          } catch {
            ok = false;
            break;
          }
        } else if (seg !== parts[i]) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      pathMatched = true;
      if (route.definition.method === method) return { route, params };
    }
    return pathMatched ? 'method' : undefined;
  }

  async function readBody(request: Request, limit: number): Promise<Uint8Array> {
    const declared = Number(request.headers.get('content-length') ?? NaN);
    if (declared > limit) throw tooLarge(`Request body is larger than ${limit} bytes`);
    if (!request.body) return new Uint8Array(0);
    const reader = request.body.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > limit) {
        await reader.cancel().catch(() => {});
        throw tooLarge(`Request body is larger than ${limit} bytes`);
      }
      chunks.push(value);
    }
    if (chunks.length === 1) return chunks[0]!;
    const out = new Uint8Array(size);
    let offset = 0;
    for (const c of chunks) {
      out.set(c, offset);
      offset += c.byteLength;
    }
    return out;
  }

  function accessTokenOf(request: Request, url: URL): string | undefined {
    const header = request.headers.get('authorization');
    if (header) {
      const m = /^Bearer\s+(.+)$/i.exec(header.trim());
      if (m) return m[1];
    }
    return url.searchParams.get('access_token') ?? undefined;
  }

  const summaries: RouteSummary[] = routes.flatMap((r) => r.paths.map((path) => ({ method: r.method, path, auth: r.auth })));

  return {
    routes: summaries,
    async handle(request, connection) {
      try {
        if (request.method === 'OPTIONS') return new Response(null, { status: 204, headers: CORS_HEADERS });
        const url = new URL(request.url);
        // HEAD is GET without the body (RFC 9110 9.3.2): same route, status and headers.
        const head = request.method === 'HEAD';
        const found = match(url.pathname, head ? 'GET' : request.method);
        if (found === undefined) throw unrecognized();
        if (found === 'method') throw methodNotAllowed();
        const { route, params } = found;
        const { definition } = route;

        let requester: Requester | undefined;
        if (definition.auth !== 'none') {
          const token = accessTokenOf(request, url);
          if (token) requester = await options.authenticate(token);
          else if (definition.auth === 'required') throw missingToken();
        }

        const limit = definition.maxBodyBytes ?? maxBodyDefault;
        let bodyBytes: Promise<Uint8Array> | undefined;
        const bytes = () => (bodyBytes ??= readBody(request, limit));
        const ctx: RouteContext = {
          request,
          url,
          params,
          query: url.searchParams,
          requester,
          remoteAddress: connection?.remoteAddress,
          origin: connection?.origin,
          bytes,
          async json<T>() {
            const parsed = parseJsonBody(await bytes(), options.jsonLimits);
            if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
              throw badJson('Request body must be a JSON object');
            }
            return parsed as T;
          },
        };
        const result = await definition.handler(ctx);
        const response = result instanceof Response ? result : jsonResponse(result ?? {});
        return head ? withoutBody(response) : response;
      } catch (error) {
        let response: Response;
        if (error instanceof MatrixError) response = jsonResponse(error.toJSON(), error.status, error.headers);
        else if (error instanceof StorageError && error.code === 'UNSTORABLE') {
          // Storage refused a value it could not read back (the ingress's limits set above its own): the
          // client's value is at fault, and nothing was written.
          response = jsonResponse(badJson('The request holds a value the server cannot store').toJSON(), 400);
        } else {
          onError(error, request);
          response = jsonResponse(unknown('Internal server error').toJSON(), 500);
        }
        return request.method === 'HEAD' ? withoutBody(response) : response;
      }
    },
  };
}

/** The response to a HEAD request: the GET response's status and headers, no body. */
function withoutBody(response: Response): Response {
  void response.body?.cancel().catch(() => {});
  return new Response(null, { status: response.status, statusText: response.statusText, headers: response.headers });
}
