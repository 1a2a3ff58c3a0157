/**
 * The one door JSON comes in by: every client-server request body (through
 * the router's `ctx.json()`), every query parameter that carries JSON (the
 * `filter` of /sync, /messages and /context) and, later, every federation
 * body is decoded and checked here before any handler sees it. It owns the
 * byte-level rules (strict UTF-8) and the shape rules that hold for all JSON
 * whatever its meaning: a bounded nesting depth, bounded arrays, objects and
 * strings, and no lone surrogates in any string or key. What a field means is
 * the handler's business; that no value can break storage (nested deeper than
 * V8 can deserialize), a later canonical-JSON encoding (lone surrogates) or
 * the event loop (huge containers walked again and again) is decided once,
 * here. Pure: no I/O, no clock, no globals.
 *
 * Cost: one linear pass over the text before parsing (so a megabyte of `[`
 * is refused without building it) and one iterative walk over the parsed
 * value; neither recurses, so hostile nesting cannot overflow the stack.
 */
import { isWellFormedString, jsonDepth, type JsonValue } from '../../core/index.js';
import { badJson, notJson, tooLarge } from './errors.js';

export interface JsonLimits {
  /**
   * Deepest nesting of arrays and objects; the top-level value is depth 1.
   * V8's deserialize (our storage) gives up near 2,200 levels and Matrix
   * content rarely goes past 10, so 100 leaves clients room and storage a wide
   * margin.
   * @default 100
   */
  maxDepth: number;
  /**
   * Most elements in one array. Bodies are already size-limited (1 MiB by
   * default); this caps the work of code that walks a list per element.
   * @default 10000
   */
  maxArrayLength: number;
  /** Most keys in one object. @default 10000 */
  maxObjectKeys: number;
  /**
   * Longest string or key, in UTF-16 code units: Matrix's event size limit,
   * since no string a client sends can sensibly be longer than an event.
   * @default 65536
   */
  maxStringLength: number;
}

export const DEFAULT_JSON_LIMITS: Readonly<JsonLimits> = Object.freeze({
  maxDepth: 100,
  maxArrayLength: 10_000,
  maxObjectKeys: 10_000,
  maxStringLength: 65_536,
});

/**
 * Decodes a request body (strict UTF-8) and parses it as JSON within `limits`.
 * An empty body is `{}`, as the client-server API treats it. M_NOT_JSON if it
 * is not UTF-8 or not JSON; M_BAD_JSON if too deep or holding a lone
 * surrogate; M_TOO_LARGE for an array, object or string over its bound.
 */
export function parseJsonBody(bytes: Uint8Array, limits: Partial<JsonLimits> = {}): JsonValue {
  if (bytes.byteLength === 0) return {};
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw notJson('Request body is not valid UTF-8');
  }
  return parseJsonText(text, limits, 'Content not JSON.');
}

/** Parses a query parameter that carries JSON (already URL-decoded), with the same rules as bodies. */
export function parseJsonParam(text: string, limits: Partial<JsonLimits> = {}, what = 'parameter'): JsonValue {
  return parseJsonText(text, limits, `${what} is not valid JSON`);
}

function parseJsonText(text: string, partial: Partial<JsonLimits>, notJsonMessage: string): JsonValue {
  const limits = { ...DEFAULT_JSON_LIMITS, ...partial };
  // Before parsing: JSON.parse would happily build a million levels, and the walk below would then visit them.
  if (jsonDepth(text, limits.maxDepth) > limits.maxDepth) {
    throw badJson(`JSON nested deeper than ${limits.maxDepth} levels`);
  }
  let value: JsonValue;
  try {
    value = JSON.parse(text) as JsonValue;
  } catch {
    throw notJson(notJsonMessage);
  }
  checkJsonValue(value, limits);
  return value;
}


/**
 * Checks an already parsed value against `limits`, iteratively (an explicit
 * stack, each value visited once). Exported for values that arrive parsed
 * by someone else (a federation transport, a test).
 */
export function checkJsonValue(value: unknown, partial: Partial<JsonLimits> = {}): void {
  const limits = { ...DEFAULT_JSON_LIMITS, ...partial };
  const stack: Visit[] = [{ value, depth: 1 }];
  while (stack.length > 0) {
    const visit = stack.pop()!;
    const { value: v, depth } = visit;
    if (typeof v === 'string') {
      checkString(v, limits, 'string', visit);
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (depth > limits.maxDepth) throw badJson(`${where(visit)}is nested deeper than ${limits.maxDepth} levels`);
    if (Array.isArray(v)) {
      if (v.length > limits.maxArrayLength) throw tooLarge(`${where(visit)}has more than ${limits.maxArrayLength} elements`);
      for (let i = 0; i < v.length; i++) stack.push({ value: v[i], depth: depth + 1, parent: visit, key: i });
      continue;
    }
    const keys = Object.keys(v);
    if (keys.length > limits.maxObjectKeys) throw tooLarge(`${where(visit)}has more than ${limits.maxObjectKeys} keys`);
    for (const key of keys) {
      checkString(key, limits, 'key', visit);
      stack.push({ value: (v as Record<string, unknown>)[key], depth: depth + 1, parent: visit, key });
    }
  }
}

/** One value on the walk's stack, linked to its parent so an error can name where it is (built only then). */
interface Visit {
  value: unknown;
  depth: number;
  parent?: Visit;
  key?: string | number;
}

/** Longest key shown in an error: keys are the client's and may be huge. */
const MAX_KEY_IN_MESSAGE = 64;

/** "'room.timeline.not_types' " for an error message, or "JSON " at the top (the body or parameter itself). */
function where(visit: Visit): string {
  const parts: string[] = [];
  for (let at: Visit | undefined = visit; at?.parent; at = at.parent) {
    parts.push(typeof at.key === 'number' ? `[${at.key}]` : String(at.key).slice(0, MAX_KEY_IN_MESSAGE));
  }
  if (parts.length === 0) return 'JSON ';
  const path = parts.reverse().reduce((out, part) => (part.startsWith('[') || out === '' ? out + part : `${out}.${part}`), '');
  return `'${path}' `;
}

function checkString(s: string, limits: JsonLimits, what: 'string' | 'key', at: Visit): void {
  if (s.length > limits.maxStringLength) throw tooLarge(`${what === 'key' ? `A key in ${where(at)}` : where(at)}is longer than ${limits.maxStringLength} characters`);
  if (!isWellFormedString(s)) throw badJson(`${what === 'key' ? `A key in ${where(at)}` : where(at)}holds a lone surrogate`);
}
