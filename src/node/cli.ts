/**
 * `npm run homeserver -- [--port 8008] [--data ./hs-data | --memory] [--verbose] [--no-rate-limits]`:
 * a headless Hometab homeserver on 127.0.0.1 over HTTP, for bots, tests and an
 * always-on peer. With --data it keeps everything in that directory (the
 * signing key in `signing.key`, the rest in SQLite), so a restart is the same
 * server with the same users, tokens and history; --memory keeps nothing.
 * Registration is open (the server listens on loopback only). Prints
 * `listening on http://127.0.0.1:PORT` once ready and stops cleanly on
 * SIGINT/SIGTERM. --no-rate-limits turns the rc_* limits off (benchmarks).
 */
import './polyfills.js';
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createHomeserver, NO_RATE_LIMITS } from '../homeserver/index.js';
import { createMemoryStorage } from '../storage/memory/index.js';
import { openSqliteStorage } from '../storage/sqlite/index.js';
import type { Storage } from '../storage/types.js';
import { serveHttp } from './http-adapter.js';
import { loadOrCreateSigner, signerFromSeed } from './identity.js';

const USAGE = 'usage: npm run homeserver -- [--port 8008] [--data ./hs-data | --memory] [--verbose] [--no-rate-limits]';
export const DATABASE_FILE = 'homeserver.sqlite';

interface CliOptions {
  port: number;
  dataDir?: string;
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
  return { port, dataDir: values.memory ? undefined : resolve(values.data ?? './hs-data'), verbose: values.verbose, noRateLimits: values['no-rate-limits'] };
}

async function main(): Promise<void> {
  let options: CliOptions;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    process.exit(2);
  }

  let storage: Storage;
  let signer;
  if (options.dataDir) {
    await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
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
  const rateLimits = options.noRateLimits ? NO_RATE_LIMITS : undefined;
  const homeserver = createHomeserver({ storage, signer, log, config: { registrationEnabled: true, rateLimits } });
  const http = await serveHttp((request, connection) => homeserver.handleClient(request, connection), { port: options.port, onError: (e) => log.error('http', e) });
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
