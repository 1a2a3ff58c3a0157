/**
 * `npm run homeserver -- [--port 8008] [--data ./hs-data | --memory] [--public-url URL] [--verbose] [--no-rate-limits]`:
 * a headless Hometab homeserver on 127.0.0.1 over HTTP, for bots, tests and an
 * always-on peer. With --data it keeps everything in that directory (the
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
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createHomeserver, NO_RATE_LIMITS } from '../homeserver/index.js';
import { createMemoryStorage } from '../storage/memory/index.js';
import { openSqliteStorage } from '../storage/sqlite/index.js';
import type { Storage } from '../storage/types.js';
import { prepareDataDir } from './data-dir.js';
import { serveHttp } from './http-adapter.js';
import type { Homeserver } from '../homeserver/index.js';
import { loadOrCreateSigner, signerFromSeed } from './identity.js';

const USAGE = 'usage: npm run homeserver -- [--port 8008] [--data ./hs-data | --memory] [--public-url URL] [--verbose] [--no-rate-limits]';
export const DATABASE_FILE = 'homeserver.sqlite';

interface CliOptions {
  port: number;
  dataDir?: string;
  /** What .well-known publishes; the listen address when absent. */
  publicUrl?: string;
  verbose: boolean;
  /** Turns every rc_* limit off: for benchmarks, which send thousands of messages as one user. */
  noRateLimits: boolean;
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
  return { port, dataDir: values.memory ? undefined : resolve(values.data ?? './hs-data'), publicUrl, verbose: values.verbose, noRateLimits: values['no-rate-limits'] };
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
  if (options.dataDir) {
    await prepareDataDir(options.dataDir, (note) => console.error(note));
    signer = await loadOrCreateSigner(options.dataDir);
    storage = await openSqliteStorage(join(options.dataDir, DATABASE_FILE));
  } else {
    signer = await signerFromSeed(new Uint8Array(randomBytes(32)));
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
  if (options.verbose) console.error(`server name ${homeserver.serverName}; data ${options.dataDir ?? '(memory)'}`);

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
