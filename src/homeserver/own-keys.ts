/**
 * Writing under keys that came from outside (request bodies, path and query
 * parameters, event content, stored user data, later peers): the only ways
 * the homeserver does it on plain objects. `target[key] = value` with key
 * `__proto__` calls Object.prototype's setter instead of storing the value,
 * and reading `target[key]` with `__proto__`, `constructor` or a polluted name
 * finds an inherited object that a following write would change for the whole
 * process. These helpers store and find own data properties only
 * (CreateDataProperty, as object spread and Object.fromEntries do), so any key
 * is just data. Where a structure stays internal, a Map is better still.
 */

import { setOwn } from '../core/index.js';

/** Stores `value` as `target`'s own enumerable property `key`, whatever the key (the core's rule). */
export { setOwn };

/** `target`'s own property `key`, never an inherited one. */
export function getOwn<T>(target: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(target, key) ? target[key] : undefined;
}

/** `target`'s own property `key`, created with `make()` first if absent (the safe `target[key] ??= make()`). */
export function ownSlot<T>(target: Record<string, T>, key: string, make: () => NoInfer<T>): T {
  if (Object.hasOwn(target, key)) return target[key]!;
  const value = make();
  setOwn(target, key, value);
  return value;
}
