/**
 * `npm run homeserver -- [--port 8008] [--data ./hs-data | --memory] [--public-url URL] [--verbose] [--no-rate-limits]
 *   [--p2p [--relay <multiaddr | http URL of a config.json>]... [--auto-join any|none|@user:server,...]]`:
 * a headless Hometab homeserver on 127.0.0.1 over HTTP, for bots, tests and an
 * always-on peer. With --p2p it also joins the peer-to-peer network through
 * the relays (default http://127.0.0.1:8080/config.json, as `npm start`
 * serves it) under its own key, replicates rooms (p2p-peer.ts), and its
 * `@peer` account accepts invites per --auto-join (default none;
 * auto-join.ts). It prints `server name <name>` at start, or with --p2p once
 * a relay has made it reachable. With --data it keeps everything in that directory (the
 * signing key in `signing.key`, the rest in SQLite), so a restart is the same
 * server with the same users, tokens and history; --memory keeps nothing.
 * The directory is 0700 and its files 0600 (data-dir.ts; the process runs
 * with umask 077). `.well-known/matrix/client` publishes --public-url, by
 * default the listen address. Registration is open (the server listens on
 * loopback only). Prints `listening on http://127.0.0.1:PORT` once ready and
 * stops cleanly on SIGINT/SIGTERM.
 * --no-rate-limits turns the rc_* limits off (benchmarks).
 */
import './polyfills.js';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createHomeserver, NO_RATE_LIMITS } from '../homeserver/index.js';
import { createMemoryStorage } from '../storage/memory/index.js';
import { openSqliteStorage } from '../storage/sqlite/index.js';
import type { Storage } from '../storage/types.js';
import { prepareDataDir } from './data-dir.js';
import { createAutoJoiner, parseAutoJoin, type AutoJoinPolicy, type AutoJoiner } from './auto-join.js';
import { serveHttp } from './http-adapter.js';
import type { Homeserver } from '../homeserver/index.js';
import { loadOrCreateSigner, parseSigningKey, signerFromSeed, SIGNING_KEY_FILE } from './identity.js';
import { resolveRelays, startP2pPeer, type P2pPeer } from './p2p-peer.js';

const USAGE = 'usage: npm run homeserver -- [--port 8008] [--data ./hs-data | --memory] [--public-url URL] [--verbose] [--no-rate-limits] [--p2p [--relay R]... [--auto-join any|none|@user:server,...]]';
export const DATABASE_FILE = 'homeserver.sqlite';

interface CliOptions {
  port: number;
  dataDir?: string;
  /** What .well-known publishes; the listen address when absent. */
  publicUrl?: string;
  verbose: boolean;
  /** Turns every rc_* limit off: for benchmarks, which send thousands of messages as one user. */
  noRateLimits: boolean;
  /** Join the peer-to-peer network. */
  p2p: boolean;
  /** --relay values (multiaddrs or config.json URLs); empty means the default config URL. */
  relays: string[];
  autoJoin: AutoJoinPolicy;
}

function parseOptions(argv: string[]): CliOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', default: '8008' },
      data: { type: 'string' },
      memory: { type: 'boolean', default: false },
      'public-url': { type: 'string' },
      verbose: { type: 'boolean', default: false },
      'no-rate-limits': { type: 'boolean', default: false },
      p2p: { type: 'boolean', default: false },
      relay: { type: 'string', multiple: true, default: [] },
      'auto-join': { type: 'string', default: 'none' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be 0..65535, not ${values.port}`);
  if (values.memory && values.data !== undefined) throw new Error('--data and --memory exclude each other');
  let publicUrl: string | undefined;
  if (values['public-url'] !== undefined) {
    const url = URL.canParse(values['public-url']) ? new URL(values['public-url']) : undefined;
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.search || url.hash) {
      throw new Error(`--public-url must be an http(s) URL without query or fragment, not ${values['public-url']}`);
    }
    publicUrl = url.href.replace(/\/+$/, '');
  }
  if (!values.p2p && (values.relay.length > 0 || values['auto-join'] !== 'none')) throw new Error('--relay and --auto-join need --p2p');
  return {
    port,
    dataDir: values.memory ? undefined : resolve(values.data ?? './hs-data'),
    publicUrl,
    verbose: values.verbose,
    noRateLimits: values['no-rate-limits'],
    p2p: values.p2p,
    relays: values.relay,
    autoJoin: parseAutoJoin(values['auto-join']),
  };
}

async function main(): Promise<void> {
  let options: CliOptions;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    process.exit(2);
  }

  // Everything this process creates is its user's alone: the key, the database and its -wal/-shm files.
  process.umask(0o077);
  let storage: Storage;
  let signer;
  let seed: Uint8Array;
  if (options.dataDir) {
    await prepareDataDir(options.dataDir, (note) => console.error(note));
    signer = await loadOrCreateSigner(options.dataDir);
    // The libp2p key is the signing key: its seed is read back from the file the signer came from.
    seed = parseSigningKey(await readFile(join(options.dataDir, SIGNING_KEY_FILE), 'utf8')).seed;
    storage = await openSqliteStorage(join(options.dataDir, DATABASE_FILE));
  } else {
    seed = new Uint8Array(randomBytes(32));
    signer = await signerFromSeed(seed);
    storage = createMemoryStorage();
  }

  const log = {
    debug: options.verbose ? (message: string, detail?: unknown) => console.error(message, detail ?? '') : () => {},
    warn: (message: string, detail?: unknown) => console.error(message, detail ?? ''),
    error: (message: string, detail?: unknown) => console.error(message, detail ?? ''),
  };
  // The homeserver is made once the listen address (port 0 picks one) is known: it is the default public URL.
  let ready!: (homeserver: Homeserver) => void;
  const made = new Promise<Homeserver>((resolve) => (ready = resolve));
  const http = await serveHttp(async (request, connection) => (await made).handleClient(request, connection), { port: options.port, onError: (e) => log.error('http', e) });
  const homeserver = createHomeserver({
    storage,
    signer,
    log,
    config: { registrationEnabled: true, publicBaseUrl: options.publicUrl ?? http.url, rateLimits: options.noRateLimits ? NO_RATE_LIMITS : undefined },
  });
  ready(homeserver);
  console.log(`listening on ${http.url}`);
  if (options.verbose) console.error(`data ${options.dataDir ?? '(memory)'}`);

  let peer: P2pPeer | undefined;
  let joiner: AutoJoiner | undefined;
  if (options.p2p) {
    const relays = await resolveRelays(options.relays);
    peer = await startP2pPeer({ storage, seed, homeserver, relays, log });
    if (!(await peer.reachable())) log.warn('no relay reachable yet; still trying in the background');
    console.log(`server name ${homeserver.serverName}`);
    if (options.autoJoin.kind !== 'none') {
      joiner = createAutoJoiner({ handleClient: (request) => homeserver.handleClient(request), storage, policy: options.autoJoin, log });
      const userId = await joiner.start();
      console.log(`accepting invites for ${userId}`);
    }
  } else {
    console.log(`server name ${homeserver.serverName}`);
  }

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      // A second signal means "now": skip the orderly shutdown.
      process.exit(130);
    }
    stopping = true;
    log.debug(`${signal}: shutting down`);
    const force = setTimeout(() => {
      console.error('shutdown took over 10 s; exiting');
      process.exit(1);
    }, 10_000);
    force.unref();
    try {
      joiner?.stop();
      await peer?.close();
      await http.close();
      await homeserver.close();
      await storage.close();
    } catch (error) {
      console.error('error while shutting down', error);
      process.exit(1);
    }
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
