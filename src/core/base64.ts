/**
 * Unpadded Base64 (spec appendix "Unpadded Base64"), standard and URL-safe.
 * Owns the one encoder and the one decoder the core uses for keys, signatures,
 * hashes and IDs. Decoding is lenient in the ways the spec asks for (padding
 * optional, either alphabet, stray bits in the last character ignored — the
 * spec's own test seed has them) and strict about everything else.
 */
import { CoreError } from './errors.js';

const STANDARD = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const URL_SAFE = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

// Pair tables: one lookup per 12 bits halves the work of the encoder's inner loop.
function pairTable(alphabet: string): string[] {
  const table = new Array<string>(4096);
  for (let i = 0; i < 4096; i++) table[i] = alphabet[i >> 6] + alphabet[i & 63];
  return table;
}
const STANDARD_PAIRS = pairTable(STANDARD);
const URL_SAFE_PAIRS = pairTable(URL_SAFE);

/** 255 marks a character outside both alphabets. */
const DECODE = new Uint8Array(128).fill(255);
for (let i = 0; i < 64; i++) {
  DECODE[STANDARD.charCodeAt(i)] = i;
  DECODE[URL_SAFE.charCodeAt(i)] = i;
}

/** Unpadded Base64 of the bytes; `urlSafe` selects the `-`/`_` alphabet (event and room IDs). */
export function encodeBase64(bytes: Uint8Array, opts?: { urlSafe?: boolean }): string {
  const alphabet = opts?.urlSafe ? URL_SAFE : STANDARD;
  const pairs = opts?.urlSafe ? URL_SAFE_PAIRS : STANDARD_PAIRS;
  const n = bytes.length;
  const whole = n - (n % 3);
  const parts: string[] = [];
  let out = '';
  let i = 0;
  for (; i < whole; i += 3) {
    const v = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += pairs[v >> 12] + pairs[v & 4095];
    // Flush periodically so huge inputs don't build one very deep rope.
    if (out.length >= 8192) {
      parts.push(out);
      out = '';
    }
  }
  const rest = n - whole;
  if (rest === 1) {
    const v = bytes[i];
    out += alphabet[v >> 2] + alphabet[(v & 3) << 4];
  } else if (rest === 2) {
    const v = (bytes[i] << 8) | bytes[i + 1];
    out += alphabet[v >> 10] + alphabet[(v >> 4) & 63] + alphabet[(v & 15) << 2];
  }
  if (parts.length === 0) return out;
  parts.push(out);
  return parts.join('');
}

function bad(text: string, why: string): CoreError {
  const shown = text.length > 40 ? `${JSON.stringify(text.slice(0, 40))}…` : JSON.stringify(text);
  return new CoreError('BAD_BASE64', `invalid base64 ${shown}: ${why}`);
}

/**
 * Bytes of standard or URL-safe Base64, with or without `=` padding. Nonzero
 * bits in the final character's unused positions are ignored. Anything else
 * (other characters, whitespace, padding in the middle, an impossible length)
 * is `CoreError('BAD_BASE64')`.
 */
export function decodeBase64(text: string): Uint8Array {
  return decodeBase64Into(text, undefined);
}

/** How many bytes `text` decodes to, or -1 for an impossible length. */
function decodedLength(text: string): number {
  let end = text.length;
  // Up to two '=' may end the text; their count is not checked (leniency).
  if (end > 0 && text.charCodeAt(end - 1) === 61) end--;
  if (end > 0 && text.charCodeAt(end - 1) === 61) end--;
  const rest = end % 4;
  if (rest === 1) return -1;
  return ((end - rest) / 4) * 3 + (rest === 0 ? 0 : rest - 1);
}

/**
 * `decodeBase64`, written into `target` when the bytes fit it exactly (the
 * result is then `target`), into a new array otherwise. Same errors.
 * @internal
 */
export function decodeBase64Into(text: string, target: Uint8Array | undefined): Uint8Array {
  if (typeof text !== 'string') throw new CoreError('BAD_BASE64', `expected a base64 string, got ${typeof text}`);
  const length = decodedLength(text);
  if (length < 0) throw bad(text, 'impossible length');
  const out = target && target.length === length ? target : new Uint8Array(length);
  const full = Math.floor(length / 3) * 4; // characters in whole groups of four
  const rest = length % 3; // 0, or 1 or 2 bytes from a final group of 2 or 3 characters
  let o = 0;
  let i = 0;
  for (; i < full; i += 4) {
    const a = sextet(text, i);
    const b = sextet(text, i + 1);
    const c = sextet(text, i + 2);
    const d = sextet(text, i + 3);
    const v = (a << 18) | (b << 12) | (c << 6) | d;
    out[o++] = v >> 16;
    out[o++] = (v >> 8) & 255;
    out[o++] = v & 255;
  }
  if (rest === 1) {
    const v = (sextet(text, i) << 6) | sextet(text, i + 1);
    out[o] = v >> 4;
  } else if (rest === 2) {
    const v = (sextet(text, i) << 12) | (sextet(text, i + 1) << 6) | sextet(text, i + 2);
    out[o++] = v >> 10;
    out[o] = (v >> 2) & 255;
  }
  return out;
}

function sextet(text: string, i: number): number {
  const c = text.charCodeAt(i);
  const v = c < 128 ? DECODE[c] : 255;
  if (v === 255) throw bad(text, `unexpected character ${JSON.stringify(text[i])} at ${i}`);
  return v;
}
