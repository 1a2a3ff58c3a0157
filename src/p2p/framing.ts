/**
 * Length-prefixed frames on a libp2p stream: an unsigned LEB128 varint byte
 * count, then that many bytes. Small enough to own (it-length-prefixed would
 * add a dependency for twenty lines), and it lets the reader refuse a frame
 * by its announced length before a single body byte is buffered.
 */
import type { Stream } from '@libp2p/interface';
import { P2PError } from './errors.js';

/** A varint never needs more than 5 bytes for lengths below 2^35. */
const MAX_VARINT_BYTES = 5;
/** Writes go out in pieces this big so backpressure (onDrain) applies to large frames. */
const WRITE_CHUNK = 64 * 1024;

export function encodeFrame(payload: Uint8Array): Uint8Array {
  const prefix: number[] = [];
  let n = payload.length;
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    prefix.push(byte);
  } while (n > 0);
  const out = new Uint8Array(prefix.length + payload.length);
  out.set(prefix, 0);
  out.set(payload, prefix.length);
  return out;
}

/** Reads the frame at the start of `buffer`: its payload and how many bytes it used, or undefined if incomplete. */
export function decodeFrame(buffer: Uint8Array, maxBytes: number): { payload: Uint8Array; used: number } | undefined {
  const prefix = decodeLength(buffer, maxBytes);
  if (prefix === undefined) return undefined;
  const [length, i] = prefix;
  if (buffer.length - i < length) return undefined;
  return { payload: buffer.subarray(i, i + length), used: i + length };
}

/** Writes one frame, waiting for the stream to drain when its buffer is full. */
export async function writeFrame(stream: Stream, payload: Uint8Array, signal?: AbortSignal): Promise<void> {
  const frame = encodeFrame(payload);
  for (let offset = 0; offset < frame.length; offset += WRITE_CHUNK) {
    if (!stream.send(frame.subarray(offset, Math.min(frame.length, offset + WRITE_CHUNK)))) {
      await stream.onDrain({ signal });
    }
  }
}

/**
 * Reads exactly one frame. Throws P2PError('TOO_LARGE') as soon as the
 * prefix announces more than `maxBytes`, P2PError('PROTOCOL') if the stream
 * ends early. Chunks are kept as a list and joined once, so a large frame
 * costs one copy, not one per chunk. The caller bounds the time (by
 * aborting the stream).
 */
export async function readFrame(stream: Stream, maxBytes: number): Promise<Uint8Array> {
  let head = new Uint8Array(0); // bytes until the prefix is decoded
  let length = -1;
  let offset = 0; // where the payload starts in `head`
  const chunks: Uint8Array[] = [];
  let have = 0;
  for await (const chunk of stream) {
    const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray();
    if (length < 0) {
      const joined = new Uint8Array(head.length + bytes.length);
      joined.set(head, 0);
      joined.set(bytes, head.length);
      head = joined;
      const prefix = decodeLength(head, maxBytes);
      if (prefix === undefined) continue;
      [length, offset] = prefix;
      chunks.push(head.subarray(offset));
      have = head.length - offset;
    } else {
      chunks.push(bytes);
      have += bytes.length;
    }
    if (have >= length) {
      const out = new Uint8Array(length);
      let at = 0;
      for (const c of chunks) {
        const take = Math.min(c.length, length - at);
        out.set(c.subarray(0, take), at);
        at += take;
        if (at === length) break;
      }
      return out;
    }
  }
  throw new P2PError('PROTOCOL', 'stream ended before a whole frame arrived');
}

/** The announced length and the prefix size, undefined while the prefix is incomplete. */
function decodeLength(buffer: Uint8Array, maxBytes: number): [number, number] | undefined {
  let length = 0;
  let shift = 1;
  for (let i = 0; ; i++) {
    if (i >= buffer.length) return undefined;
    if (i >= MAX_VARINT_BYTES) throw new P2PError('PROTOCOL', 'frame length prefix too long');
    const byte = buffer[i]!;
    length += (byte & 0x7f) * shift;
    shift *= 128;
    if ((byte & 0x80) === 0) {
      if (length > maxBytes) throw new P2PError('TOO_LARGE', `frame of ${length} bytes exceeds ${maxBytes}`);
      return [length, i + 1];
    }
  }
}
