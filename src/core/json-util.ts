/**
 * Small helpers for handling parsed JSON safely inside the core (not part of
 * the public entry): recognising plain objects across realms, and writing keys
 * such as `__proto__` as ordinary data instead of touching the prototype.
 */

/** A plain JSON object: not null, not an array, not a Date, Map, typed array or boxed primitive. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && Object.prototype.toString.call(value) === '[object Object]';
}

/** `obj[key] = value`, except that `__proto__` becomes an own data key like any other. */
export function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  else obj[key] = value;
}
