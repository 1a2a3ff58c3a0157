/**
 * Setup for every test under tests/homeserver (the `homeserver` project in
 * vite.config.ts): once the test file and everything it imports are loaded,
 * Object.prototype and Array.prototype are frozen. Code
 * that writes along a key from input (`target[key] = ...` with `__proto__`, a
 * path through `constructor.prototype`) then throws a TypeError (ES modules are
 * strict) instead of quietly changing every object in the process: prototype
 * pollution cannot come back unnoticed (issue 6; see src/homeserver/own-keys.ts).
 *
 * Frozen after imports, in beforeAll, because loading is where libraries
 * legitimately touch shared prototypes (polyfills such as src/node/polyfills.js
 * add Promise.withResolvers). Each test file runs in its own worker, so the
 * freeze never reaches the other projects. Libraries checked under it:
 * vitest's expect, matrix-js-sdk and its rust-crypto WASM, fake-indexeddb,
 * better-sqlite3, undici's Request/Response; none needed an exclusion.
 *
 * Function.prototype stays unfrozen: vitest's fake timers (@sinonjs/fake-timers)
 * assign `ClockDate.toString = ...`, which a frozen Function.prototype turns
 * into a TypeError (its `toString` becomes read-only, and assignment does not
 * shadow a read-only inherited property), and homeserver tests use fake timers
 * (typing, and any rate-limit test). The hostile-input suite still checks after
 * every request that Function.prototype gained nothing.
 */
import { beforeAll } from 'vitest';

/** The shared prototypes the homeserver's tests keep frozen. */
export const FROZEN_PROTOTYPES = [Object.prototype, Array.prototype] as const;

beforeAll(() => {
  for (const proto of FROZEN_PROTOTYPES) Object.freeze(proto);
});
