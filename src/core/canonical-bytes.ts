/**
 * Canonical JSON written straight to UTF-8 bytes into a reusable buffer: the
 * same output as `canonicalJsonBytes` (and the same refusals, reported without
 * a path), for the hot verification path. Going through a string costs two
 * passes over every byte — the engine's JSON.stringify, then TextEncoder — and
 * in Chromium TextEncoder alone costs about as much as this whole encoder.
 * Writing bytes also lets a caller copy an already encoded member into a
 * second document instead of encoding it again, and write into a reused
 * buffer (fresh ArrayBuffers are expensive in browsers).
 *
 * Strings are escaped exactly as JSON.stringify escapes well-formed strings
 * (which is the spec's minimal escaping): `"` and `\`, \b \f \n \r \t, other
 * C0 controls as lowercase \u00xx, everything else as raw UTF-8.
 */
import { MAX_CANONICAL_DEPTH, sortKeysInPlace } from './canonical-json.js';
import { CoreError } from './errors.js';

const objectToString = Object.prototype.toString;

/** Escape sequences of the characters below U+0020 that JSON.stringify writes. */
const CONTROL_ESCAPES: readonly string[] = Array.from({ length: 32 }, (_, c) =>
  c === 8 ? '\\b' : c === 9 ? '\\t' : c === 10 ? '\\n' : c === 12 ? '\\f' : c === 13 ? '\\r' : '\\u' + c.toString(16).padStart(4, '0'),
);

function refuse(reason: string): never {
  throw new CoreError('NOT_CANONICAL', `not canonical JSON: ${reason}`);
}

/** Initial size of a writer's buffer; buffers grown past `KEEP_MAX` are dropped by `reset`. */
const INITIAL_SIZE = 16 * 1024;
const KEEP_MAX = 1024 * 1024;

/**
 * Appends canonical JSON to one growing byte buffer. Views returned by
 * `bytes` stay valid until the next `reset` (growing moves the content to a
 * new buffer; earlier views keep the old one).
 * @internal
 */
export class CanonicalWriter {
  buf = new Uint8Array(INITIAL_SIZE);
  pos = 0;

  reset(): void {
    if (this.buf.length > KEEP_MAX) this.buf = new Uint8Array(INITIAL_SIZE);
    this.pos = 0;
  }

  /** The bytes written between `start` and `end`. */
  bytes(start: number, end: number): Uint8Array {
    return this.buf.subarray(start, end);
  }

  /** Makes room for `extra` more bytes. */
  reserve(extra: number): Uint8Array {
    const need = this.pos + extra;
    if (need > this.buf.length) {
      const grown = new Uint8Array(Math.max(need, 2 * this.buf.length));
      grown.set(this.buf.subarray(0, this.pos));
      this.buf = grown;
    }
    return this.buf;
  }

  /** Appends ASCII text (structural characters, numbers, known keys). */
  ascii(text: string): void {
    const n = text.length;
    const buf = this.reserve(n);
    let pos = this.pos;
    for (let i = 0; i < n; i++) buf[pos++] = text.charCodeAt(i);
    this.pos = pos;
  }

  byte(b: number): void {
    this.reserve(1)[this.pos++] = b;
  }

  /** Appends a copy of bytes already written, `start` to `end`. */
  copy(start: number, end: number): void {
    const buf = this.reserve(end - start);
    buf.copyWithin(this.pos, start, end);
    this.pos += end - start;
  }

  /** Appends a string as a JSON string literal; refuses lone surrogates. */
  string(s: string): void {
    const n = s.length;
    // Worst case: 6 bytes per code unit (\u00xx), quotes included in the slack.
    const buf = this.reserve(6 * n + 2);
    let pos = this.pos;
    buf[pos++] = 0x22;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x80) {
        if (c >= 0x20 && c !== 0x22 && c !== 0x5c) {
          buf[pos++] = c;
        } else if (c >= 0x20) {
          buf[pos++] = 0x5c;
          buf[pos++] = c;
        } else {
          const esc = CONTROL_ESCAPES[c]!;
          for (let k = 0; k < esc.length; k++) buf[pos++] = esc.charCodeAt(k);
        }
      } else if (c < 0x800) {
        buf[pos++] = 0xc0 | (c >> 6);
        buf[pos++] = 0x80 | (c & 63);
      } else if (c < 0xd800 || c >= 0xe000) {
        buf[pos++] = 0xe0 | (c >> 12);
        buf[pos++] = 0x80 | ((c >> 6) & 63);
        buf[pos++] = 0x80 | (c & 63);
      } else {
        const d = i + 1 < n ? s.charCodeAt(i + 1) : 0;
        if (c >= 0xdc00 || (d & 0xfc00) !== 0xdc00) refuse('string contains a lone UTF-16 surrogate');
        const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        buf[pos++] = 0xf0 | (cp >> 18);
        buf[pos++] = 0x80 | ((cp >> 12) & 63);
        buf[pos++] = 0x80 | ((cp >> 6) & 63);
        buf[pos++] = 0x80 | (cp & 63);
        i++;
      }
    }
    buf[pos++] = 0x22;
    this.pos = pos;
  }

  /** Appends `"key":`. */
  key(key: string): void {
    this.string(key);
    this.byte(0x3a);
  }

  /** Appends the canonical JSON of a value; refuses what `canonicalJson` refuses. */
  value(value: unknown, depth = 0): void {
    switch (typeof value) {
      case 'string':
        this.string(value);
        return;
      case 'number':
        // Number.isSafeInteger accepts -0; String(-0) is "0", as the spec wants.
        if (!Number.isSafeInteger(value)) refuse(`number ${String(value)} is not an integer within ±(2^53−1)`);
        this.ascii(String(value));
        return;
      case 'boolean':
        this.ascii(value ? 'true' : 'false');
        return;
      case 'object':
        break;
      default:
        refuse(`${typeof value} has no JSON form`);
    }
    if (value === null) {
      this.ascii('null');
      return;
    }
    if (depth >= MAX_CANONICAL_DEPTH) refuse(`nesting deeper than ${MAX_CANONICAL_DEPTH}`);
    if (Array.isArray(value)) {
      this.byte(0x5b);
      for (let i = 0; i < value.length; i++) {
        if (i > 0) this.byte(0x2c);
        // Holes in sparse arrays read as undefined and are refused like undefined.
        this.value(value[i], depth + 1);
      }
      this.byte(0x5d);
      return;
    }
    // As in canonicalJson: a tag check, so plain objects from another realm pass.
    if (objectToString.call(value) !== '[object Object]') refuse('not a plain JSON object');
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj);
    sortKeysInPlace(keys);
    this.byte(0x7b);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      if (i > 0) this.byte(0x2c);
      this.key(key);
      this.value(obj[key], depth + 1);
    }
    this.byte(0x7d);
  }
}
