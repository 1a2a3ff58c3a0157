/**
 * `npm start [-- --port 8080] [--host 127.0.0.1] [--data DIR] [--rebuild]`:
 * everything a browser needs, on ONE port. It builds the app with vite if
 * `dist/` is missing or older than the sources (src/, index.html, the vite
 * config), so a developer never sees a stale app, serves `dist/` statically, runs the libp2p relay, and
 * answers `GET /config.json` with `{"relays": ["<relay multiaddr>/p2p/<id>"]}`
 * so a page finds its relay on its own origin with no setup.
 *
 * One port: the relay listens on an internal loopback port and this HTTP
 * server forwards WebSocket upgrades to it byte for byte (@libp2p/websockets
 * creates its own HTTP server and accepts none from outside). The relay
 * announces the public port, and /config.json builds the address from the
 * request's Host header, so a page opened as http://localhost:8080 or
 * http://192.168.1.5:8080 gets an address it can dial. With `--data DIR` the
 * relay's key is kept in DIR/relay.key so its PeerId survives restarts;
 * without, each start has a new one. Stops cleanly on SIGINT/SIGTERM.
 */
import './polyfills.js';
import { randomBytes } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, createServer as createNetServer, isIP, type AddressInfo, type Socket } from 'node:net';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';
import { createRelay, type Relay } from '../p2p/relay.js';

const USAGE = 'usage: npm start -- [--port 8080] [--host 127.0.0.1] [--data DIR] [--rebuild]';
export const RELAY_KEY_FILE = 'relay.key';

export interface StartOptions {
  /** Port for pages, /config.json and the relay's WebSocket. 0 picks a free one. @default 8080 */
  port?: number;
  /** Interface to listen on. @default '127.0.0.1' */
  host?: string;
  /** Directory keeping the relay key; without it the relay's PeerId is new on each start. @default undefined */
  dataDir?: string;
  /** The built app. @default '<repo>/dist' */
  distDir?: string;
  /** Build even if dist/ is up to date. @default false */
  rebuild?: boolean;
  /** Progress lines. @default console.log */
  log?: (line: string) => void;
}

export interface Started {
  url: string;
  port: number;
  relay: Relay;
  relayPeerId: string;
  stop(): Promise<void>;
}

const ROOT = resolve(import.meta.dirname, '../..');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
  '.webmanifest': 'application/manifest+json',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json',
};

/** The relay's seed from DIR/relay.key (hex), created on first start (temporary file, then rename). */
async function relaySeed(dataDir: string): Promise<Uint8Array> {
  const path = join(dataDir, RELAY_KEY_FILE);
  if (existsSync(path)) {
    const hex = (await readFile(path, 'utf8')).trim();
    if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`${path} is not a relay key (64 hex digits)`);
    return Uint8Array.from(Buffer.from(hex, 'hex'));
  }
  await mkdir(dataDir, { recursive: true });
  const seed = new Uint8Array(randomBytes(32));
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, `${Buffer.from(seed).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  await rename(temporary, path);
  return seed;
}

/** A multiaddr for `host:port` as a page reached it (the Host header), ending in the relay's PeerId. */
export function relayAddressFor(hostHeader: string | undefined, fallbackHost: string, port: number, peerId: string): string {
  let host = fallbackHost;
  let p = port;
  if (hostHeader) {
    const match = /^(\[[0-9a-fA-F:.]+\]|[^:]+)(?::(\d+))?$/.exec(hostHeader);
    if (match) {
      host = match[1]!.replace(/^\[|\]$/g, '');
      if (match[2]) p = Number(match[2]);
    }
  }
  if (host === '0.0.0.0' || host === '::') host = '127.0.0.1';
  const kind = isIP(host) === 4 ? 'ip4' : isIP(host) === 6 ? 'ip6' : 'dns4';
  return `/${kind}/${host}/tcp/${p}/ws/p2p/${peerId}`;
}

async function serveStatic(distDir: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://x');
  let path: string;
  try {
    path = decodeURIComponent(url.pathname);
  } catch {
    res.writeHead(400).end();
    return;
  }
  // Resolve inside dist/ only: '..' and absolute tricks end up outside and get 404.
  let file = normalize(join(distDir, path));
  if (file !== distDir && !file.startsWith(distDir + sep)) {
    res.writeHead(404).end();
    return;
  }
  let info = await stat(file).catch(() => undefined);
  if (info?.isDirectory()) {
    file = join(file, 'index.html');
    info = await stat(file).catch(() => undefined);
  }
  if (!info?.isFile()) {
    // A client-side route (no extension) gets the app; a missing asset gets 404.
    if (extname(path) !== '') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    file = join(distDir, 'index.html');
    info = await stat(file).catch(() => undefined);
    if (!info?.isFile()) {
      res.writeHead(404).end();
      return;
    }
  }
  res.writeHead(200, {
    'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
    'content-length': info.size,
    // Hashed assets never change; the page itself is always revalidated.
    'cache-control': file.includes(`${sep}assets${sep}`) ? 'public, max-age=31536000, immutable' : 'no-cache',
  });
  if (req.method === 'HEAD') res.end();
  else createReadStream(file).pipe(res);
}

/** Forwards a WebSocket upgrade to the relay's internal port, replaying the request head. */
function forwardUpgrade(req: IncomingMessage, socket: Socket, head: Buffer, relayPort: number): void {
  const upstream = connect(relayPort, '127.0.0.1');
  const lines = [`${req.method} ${req.url} HTTP/1.1`];
  for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
  upstream.on('connect', () => {
    upstream.write(lines.join('\r\n') + '\r\n\r\n');
    if (head.length) upstream.write(head);
    socket.pipe(upstream).pipe(socket);
  });
  const end = (): void => {
    socket.destroy();
    upstream.destroy();
  };
  upstream.on('error', end);
  socket.on('error', end);
  socket.on('close', () => upstream.destroy());
  upstream.on('close', () => socket.destroy());
}

export async function start(options: StartOptions = {}): Promise<Started> {
  const log = options.log ?? ((line: string) => console.log(line));
  const host = options.host ?? '127.0.0.1';
  const distDir = resolve(options.distDir ?? join(ROOT, 'dist'));
  const staleBecause = options.rebuild ? 'asked to' : distStaleness(distDir);
  if (staleBecause) {
    log(`building the app into ${distDir} (${staleBecause}) …`);
    const { build } = await import('vite');
    await build({ root: ROOT, logLevel: 'warn', build: { outDir: distDir, emptyOutDir: true } });
  }
  const sockets = new Set<Socket>();
  let relay: Relay | undefined;
  let relayPort = 0;
  let relayPeerId = '';
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/config.json' && (req.method === 'GET' || req.method === 'HEAD')) {
      const body = JSON.stringify({ relays: [relayAddressFor(req.headers.host, host, port, relayPeerId)] });
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache' }).end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    serveStatic(distDir, req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    if (!relay) return socket.destroy();
    sockets.add(socket);
    forwardUpgrade(req, socket, head, relayPort);
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(options.port ?? 8080, host, () => {
      server.off('error', fail);
      ok();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const announceHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  const seed = options.dataDir ? await relaySeed(resolve(options.dataDir)) : undefined;
  const announced = relayAddressFor(undefined, announceHost, port, 'X').replace(/\/p2p\/X$/, '');
  // The relay's internal port is picked here because, once it announces the public address, libp2p no longer reports the bound one.
  relayPort = await freeLoopbackPort();
  relay = await createRelay({ seed, listen: [`/ip4/127.0.0.1/tcp/${relayPort}/ws`], announce: [announced] });
  relayPeerId = relay.node.peerId.toString();
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/`;
  log(`Hometab is running: open ${url}`);
  log(`relay ${relayAddressFor(undefined, announceHost, port, relayPeerId)}`);
  let stopped = false;
  return {
    url,
    port,
    relay,
    relayPeerId,
    async stop() {
      if (stopped) return;
      stopped = true;
      const closed = new Promise<void>((ok) => server.close(() => ok()));
      for (const socket of sockets) socket.destroy();
      await relay!.stop();
      await closed;
    },
  };
}

/** The newest modification time (ms) of a file under `path` (or of `path` itself), 0 when absent. */
function newestMtime(path: string): number {
  let info;
  try {
    info = statSync(path);
  } catch {
    return 0;
  }
  if (!info.isDirectory()) return info.mtimeMs;
  let newest = 0;
  for (const name of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, name)));
  return newest;
}

/** Why dist/ must be rebuilt, or undefined when it is newer than every source the build reads. */
export function distStaleness(distDir: string, root = ROOT): string | undefined {
  const built = join(distDir, 'index.html');
  if (!existsSync(built)) return 'no build yet';
  const builtAt = statSync(built).mtimeMs;
  for (const source of ['src', 'public', 'index.html', 'vite.config.ts', 'package.json']) {
    if (newestMtime(join(root, source)) > builtAt) return `${source} changed since the last build`;
  }
  return undefined;
}

/** A free TCP port on 127.0.0.1 (bound and released; the relay binds it right after). */
function freeLoopbackPort(): Promise<number> {
  return new Promise((ok, fail) => {
    const probe = createNetServer();
    probe.once('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => ok(port));
    });
  });
}

async function main(): Promise<void> {
  let values: { port?: string; host?: string; data?: string; rebuild?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: process.argv.slice(2),
      options: { port: { type: 'string' }, host: { type: 'string' }, data: { type: 'string' }, rebuild: { type: 'boolean' }, help: { type: 'boolean' } },
      strict: true,
    }));
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const port = Number(values.port ?? '8080');
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`--port must be 0..65535, not ${values.port}\n${USAGE}`);
    process.exit(2);
  }
  let started: Started;
  try {
    started = await start({ port, host: values.host, dataDir: values.data, rebuild: values.rebuild });
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    console.error(e.code === 'EADDRINUSE' ? `port ${port} is in use: pass --port P` : `cannot start: ${e.message}`);
    process.exit(1);
  }
  const shutdown = (signal: string): void => {
    console.log(`${signal}: stopping`);
    started.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  void main();
}
