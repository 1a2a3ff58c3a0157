/**
 * matrix-js-sdk as the app loads it (one lazily imported chunk): the client built from the SDK's client
 * module, as the package entry's `createClient` builds it (an in-memory store whose filter IDs persist in
 * localStorage, the default request scheduler), without the rest of the entry. The entry also evaluates
 * the widget client (matrix-widget-api) and installs a factory for the legacy crypto store, an IndexedDB
 * database the app has no use for (end-to-end encryption is the SDK's Rust crypto, which keeps its own);
 * leaving them out makes the chunk a cold start has to fetch and evaluate smaller. The SDK's logger is
 * quietened here too: it logs every request at info level, and a tab's console keeps warnings and errors.
 */
import { MatrixClient, type ICreateClientOpts } from 'matrix-js-sdk/lib/client.js';
import { logger, type Logger } from 'matrix-js-sdk/lib/logger.js';
import { MatrixScheduler } from 'matrix-js-sdk/lib/scheduler.js';
import { MemoryStore } from 'matrix-js-sdk/lib/store/memory.js';

// The modules' shared logger; the client's own (and its children's, which the SDK creates at debug level
// whatever the parent's level) is `quietLogger`.
(logger as unknown as { setLevel(level: string): void }).setLevel('warn');

/**
 * Warnings and errors only, for the client and every child logger it makes. Besides the noise, each
 * console call costs the tab time while DevTools or a test driver listens, and the client makes many
 * while it starts.
 */
export const quietLogger: Logger = {
  trace() {},
  debug() {},
  info() {},
  warn: (...message: unknown[]) => console.warn(...message),
  error: (...message: unknown[]) => console.error(...message),
  getChild: () => quietLogger,
};

export function createClient(options: ICreateClientOpts): MatrixClient {
  return new MatrixClient({
    logger: quietLogger,
    ...options,
    store: options.store ?? new MemoryStore({ localStorage: globalThis.localStorage }),
    scheduler: options.scheduler ?? new MatrixScheduler(),
  });
}
