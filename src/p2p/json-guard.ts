/**
 * Defensive JSON for peer input. Every frame a peer sends is checked before
 * `JSON.parse` sees it: its size, then its nesting depth, by one iterative
 * scan of the text (no recursion, so a hostile `[[[[...` cannot blow the
 * stack, and the scan costs one pass over bytes we already hold). The parsed
 * value is used as it is: `JSON.parse` defines keys as own properties, so a
 * `"__proto__"` key stays data; callers read known fields with `Object.hasOwn`
 * and never copy input keys into plain objects. The homeserver's federation
 * ingress re-checks bodies with its own rules; this guard only keeps the
 * transport itself safe.
 */
import { jsonDepth } from '../core/index.js';
import { P2PError } from './errors.js';

export interface JsonGuardOptions {
  /** Largest text accepted, in UTF-16 code units (about bytes for JSON). @default 1_048_576 */
  maxLength?: number;
  /** Deepest nesting of arrays and objects accepted. @default 64 */
  maxDepth?: number;
}

export const DEFAULT_MAX_JSON_DEPTH = 64;
export const DEFAULT_MAX_JSON_LENGTH = 1 << 20;

export { jsonDepth };

/** Parses peer JSON within size and depth limits; throws P2PError('TOO_LARGE' | 'PROTOCOL'). */
export function parseGuardedJson(text: string, options: JsonGuardOptions = {}): unknown {
  const maxLength = options.maxLength ?? DEFAULT_MAX_JSON_LENGTH;
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_JSON_DEPTH;
  if (text.length > maxLength) throw new P2PError('TOO_LARGE', `JSON of ${text.length} characters exceeds ${maxLength}`);
  if (jsonDepth(text, maxDepth) > maxDepth) throw new P2PError('PROTOCOL', `JSON nested deeper than ${maxDepth}`);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new P2PError('PROTOCOL', `invalid JSON: ${(error as Error).message}`);
  }
}

/** A non-null, non-array object: the only shape a frame may have. */
export function isJsonRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An own property of parsed input, or undefined (never one from a prototype). */
export function ownField(record: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}
