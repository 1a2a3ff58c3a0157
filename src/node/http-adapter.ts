/**
 * Serves a `(Request) => Promise<Response>` handler over HTTP with node:http,
 * on 127.0.0.1 only. Each Node request becomes a web Request whose signal
 * aborts when the client goes away (long-polling /sync). A body that declares
 * a small length (every JSON call) is read whole first and handed over as
 * bytes, which costs far less than a web stream; other bodies stream from the
 * socket, so the router can refuse oversized ones early. The Response goes
 * back buffered for JSON and streamed for everything else (media). Closing
 * stops listening and drops every open connection.
 *
 * A client cannot hold the server's resources for long: headers must arrive
 * within `headersTimeoutMs` and the whole request within `requestTimeoutMs`
 * (a body trickled in a byte at a time is cut off with 408), a socket silent
 * both ways for `idleTimeoutMs` is closed, and past `maxConnections` new
 * connections are dropped at once. The idle limit sits above the longest
 * /sync long-poll, which is silent until it answers.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { builtText } from '../homeserver/http/response.js';

/** What the socket tells of a client, which a web Request cannot carry (per-address rate limits). */
export interface ClientConnection {
  remoteAddress?: string;
}

export type FetchHandler = (request: Request, connection: ClientConnection) => Promise<Response>;

export interface HttpAdapterOptions {
  /** TCP port; 0 picks a free one. @default 8008 */
  port?: number;
  /** Interface to listen on. @default '127.0.0.1' */
  host?: string;
  /** Where failures of the adapter itself are reported. @default console.error */
  onError?(error: unknown): void;
  /** Longest wait for a request's complete headers (Node's `headersTimeout`); at most `requestTimeoutMs`. @default 10000 */
  headersTimeoutMs?: number;
  /**
   * Longest time to receive a whole request, headers and body (Node's `requestTimeout`); a slower one
   * is answered 408 and its connection closed. Bounds the slowest upload: 50 MB in 120 s needs ~420 KB/s.
   * @default 120000
   */
  requestTimeoutMs?: number;
  /** How long a keep-alive connection waits for its next request. @default 5000 */
  keepAliveTimeoutMs?: number;
  /**
   * A connection with no traffic either way for this long is closed. Must exceed the homeserver's
   * `maxSyncTimeoutMs` (30 s by default): a long-poll is silent until it answers. @default 60000
   */
  idleTimeoutMs?: number;
  /** Most connections open at once; further ones are closed as soon as they connect. @default 1000 */
  maxConnections?: number;
}

export interface HttpServerHandle {
  /** The port actually listened on (the real one when 0 was asked for). */
  readonly port: number;
  /** `http://host:port` */
  readonly url: string;
  close(): Promise<void>;
}

/** Bodies that declare at most this many bytes are read whole before the handler runs. */
const BUFFERED_BODY_BYTES = 64 * 1024;

/** The whole body of a request that declared a small Content-Length. */
function readWholeBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.on('error', reject);
    // A client gone before the end of its body: 'close' comes without 'end'.
    req.on('close', () => reject(new Error('request closed before its body ended')));
  });
}

/** A web ReadableStream over a Node request body that respects backpressure. */
function bodyStream(req: IncomingMessage): ReadableStream<Uint8Array> {
  let cancelled = false;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      req.on('data', (chunk: Buffer) => {
        if (cancelled) return;
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        if ((controller.desiredSize ?? 1) <= 0) req.pause();
      });
      req.on('end', () => {
        if (!cancelled) controller.close();
      });
      req.on('error', (error) => {
        if (!cancelled) controller.error(error);
      });
    },
    pull() {
      req.resume();
    },
    cancel() {
      // The rest of the body is read and dropped, so the error response can still be sent.
      cancelled = true;
      req.resume();
    },
  });
}

/** Whether a request's body is small enough, by its declared length, to be read whole first. */
function bufferable(req: IncomingMessage): boolean {
  const declared = req.headers['content-length'];
  return declared !== undefined && Number(declared) <= BUFFERED_BODY_BYTES;
}

/** The web Request for a Node request; `body` is its whole body when already read, else it streams. */
function toRequest(req: IncomingMessage, origin: string, signal: AbortSignal | undefined, body?: Buffer): Request {
  // Name/value pairs in arrival order: the Request builds its Headers from them once.
  const headers: [string, string][] = [];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) headers.push([raw[i]!, raw[i + 1]!]);
  const method = req.method ?? 'GET';
  const hasBody = method !== 'GET' && method !== 'HEAD';
  // The Host header names the origin the client used (e.g. for .well-known); fall back to ours.
  let base = origin;
  const host = req.headers.host;
  if (host && /^[A-Za-z0-9.:[\]-]+$/.test(host)) base = `http://${host}`;
  const init: RequestInit & { duplex?: 'half' } = { method, headers };
  // Following a signal costs the Request a listener and a finalizer: only requests that can wait get one.
  if (signal) init.signal = signal;
  if (hasBody) {
    if (body) {
      init.body = body as Uint8Array<ArrayBuffer>;
    } else {
      init.body = bodyStream(req);
      init.duplex = 'half';
    }
  }
  // A plain origin-form target joins the base as a string: the Request parses its URL once itself.
  const target = req.url ?? '/';
  const url = target[0] === '/' && target[1] !== '/' && target[1] !== '\\' ? base + target : new URL(target, base).href;
  return new Request(url, init);
}

async function sendResponse(res: ServerResponse, response: Response, method: string): Promise<void> {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, key) => {
    headers[key] = value;
  });
  const streamed = response.body !== null && method !== 'HEAD' && !(headers['content-type'] ?? '').startsWith('application/json');
  if (!streamed) {
    let body: Buffer | string | undefined;
    if (response.body && method !== 'HEAD') {
      // The homeserver's JSON answers keep the text they were built from: sent as it is, without reading the stream.
      body = builtText(response) ?? Buffer.from(await response.arrayBuffer());
    }
    if (body !== undefined) headers['content-length'] = String(typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength);
    res.writeHead(response.status, headers);
    res.end(body);
    return;
  }
  res.writeHead(response.status, headers);
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    if (res.destroyed) return;
    if (!res.write(chunk)) await once(res, 'drain');
  }
  res.end();
}

/** Starts serving `handler`; resolves once the server listens. */
export async function serveHttp(handler: FetchHandler, options: HttpAdapterOptions = {}): Promise<HttpServerHandle> {
  const host = options.host ?? '127.0.0.1';
  const onError = options.onError ?? ((error: unknown) => console.error('http adapter error', error));
  let origin = '';

  const headersTimeout = options.headersTimeoutMs ?? 10_000;
  const requestTimeout = options.requestTimeoutMs ?? 120_000;
  const server = createServer({
    headersTimeout,
    requestTimeout,
    keepAliveTimeout: options.keepAliveTimeoutMs ?? 5_000,
    // Node checks the header and request timeouts on this period (30 s by default), so short timeouts need a short one.
    connectionsCheckingInterval: Math.max(10, Math.min(30_000, Math.floor(Math.min(headersTimeout, requestTimeout) / 4))),
  }, (req, res) => {
    // Only GET/HEAD requests can wait (long-polling /sync), so only they get an abort signal; a
    // plain flag records a client gone away for the rest.
    const aborter = req.method === 'GET' || req.method === 'HEAD' ? new AbortController() : undefined;
    let gone = false;
    res.on('close', () => {
      if (res.writableFinished) return;
      gone = true;
      aborter?.abort();
    });
    (async () => {
      const method = req.method ?? 'GET';
      const wholeBody = method !== 'GET' && method !== 'HEAD' && bufferable(req) ? readWholeBody(req) : undefined;
      // A body that never ends means the client went away: the same as an abort later on.
      const body = await wholeBody?.catch((error: unknown) => {
        gone = true;
        aborter?.abort();
        throw error;
      });
      let request: Request;
      try {
        request = toRequest(req, origin, aborter?.signal, body);
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ errcode: 'M_UNRECOGNIZED', error: 'Malformed request' }));
        return;
      }
      const response = await handler(request, { remoteAddress: req.socket.remoteAddress });
      await sendResponse(res, response, req.method ?? 'GET');
    })().catch((error) => {
      if (gone) return;
      onError(error);
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ errcode: 'M_UNKNOWN', error: 'Internal server error' }));
      } else {
        res.destroy();
      }
    });
  });

  server.maxConnections = options.maxConnections ?? 1000;
  // Without a 'timeout' listener Node destroys the silent socket itself.
  server.setTimeout(options.idleTimeoutMs ?? 60_000);
  server.listen(options.port ?? 8008, host);
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  origin = `http://${host}:${port}`;

  let closing: Promise<void> | undefined;
  return {
    port,
    url: origin,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // Keep-alive sockets and long-polls would otherwise hold the server open.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
