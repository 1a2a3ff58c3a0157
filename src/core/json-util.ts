/**
 * Small helpers for handling JSON safely: recognising plain objects across
 * realms, writing any key (`__proto__` included) as an own data property,
 * and measuring how deep JSON text nests before anyone parses it. setOwn and
 * jsonDepth are in the core's public entry because every boundary (the
 * homeserver's JSON ingress, the p2p transports) needs exactly these rules.
 */

/** A plain JSON object: not null, not an array, not a Date, Map, typed array or boxed primitive. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && Object.prototype.toString.call(value) === '[object Object]';
}

/**
 * Stores `value` as `obj`'s own enumerable property `key`, whatever the key:
 * `__proto__` stays data instead of replacing the prototype, and a key like
 * `toString` works even when Object.prototype is frozen (where plain
 * assignment to an inherited read-only name throws).
 */
export function setOwn<T>(obj: Record<string, T>, key: string, value: NoInfer<T>): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * The deepest nesting of arrays and objects in JSON text, counted outside
 * strings in one pass with no recursion, stopping as soon as it exceeds
 * `limit`. Not a validator (JSON.parse has the last word): it bounds what a
 * parser will be asked to build, so a megabyte of `[` is refused unbuilt.
 */
export function jsonDepth(text: string, limit = Infinity): number {
  let depth = 0;
  let deepest = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      // Most of a PDU's bytes are inside strings (hashes, signatures, IDs): jump to the quote that ends this one,
      // the first not escaped (preceded by an even run of backslashes; each run is counted once, so this stays
      // one pass over the text whatever it holds).
      let end = i;
      for (;;) {
        end = text.indexOf('"', end + 1);
        if (end < 0) return deepest; // unterminated: JSON.parse refuses it
        let backslashes = 0;
        while (text.charCodeAt(end - 1 - backslashes) === 0x5c /* \ */) backslashes++;
        if (backslashes % 2 === 0) break;
      }
      i = end;
    } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) depth--;
  }
  return deepest;
}
