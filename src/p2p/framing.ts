/**
 * Length-prefixed frames on a libp2p stream: an unsigned LEB128 varint byte
 * count, then that many bytes. Small enough to own (it-length-prefixed would
 * add a dependency for twenty lines), and it lets the reader refuse a frame
 * by its announced length before a single body byte is buffered. Payloads
 * are JSON, read through the guard of json-guard.ts.
 */
import type { Stream } from '@libp2p/interface';
import { P2PError } from './errors.js';
import { parseGuardedJson } from './json-guard.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** A frame's payload for a JSON value. */
export function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

/** A frame's payload as JSON, through the hostile-input guard (json-guard.ts); throws P2PError('PROTOCOL' | 'TOO_LARGE'). */
export function decodeJson(bytes: Uint8Array, maxBytes: number, maxDepth: number): unknown {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    throw new P2PError('PROTOCOL', 'frame is not UTF-8');
  }
  return parseGuardedJson(text, { maxLength: maxBytes, maxDepth });
}

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

/**
 * Frames out of a long-lived stream, chunk by chunk: `push` returns every
 * frame a chunk completes and keeps the rest. A frame announced larger than
 * `maxBytes` throws P2PError('TOO_LARGE') as soon as its prefix is read, a
 * prefix longer than five bytes P2PError('PROTOCOL'). Chunks are kept as a
 * list and a frame is copied once, when it is whole.
 */
export class FrameDecoder {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  /** Payload length of the frame being read, -1 while its prefix is incomplete. */
  private length = -1;

  constructor(private readonly maxBytes: number) {}

  /** Whether part of a frame has arrived and the rest is awaited. */
  get partial(): boolean {
    return this.buffered > 0 || this.length >= 0;
  }

  push(chunk: Uint8Array): Uint8Array[] {
    const frames: Uint8Array[] = [];
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    for (;;) {
      if (this.length < 0) {
        // One byte past the longest prefix, so an over-long prefix is seen as one.
        const prefix = decodeLength(this.peek(Math.min(MAX_VARINT_BYTES + 1, this.buffered)), this.maxBytes);
        if (prefix === undefined) break;
        this.take(prefix[1]);
        this.length = prefix[0];
      }
      if (this.buffered < this.length) break;
      frames.push(this.take(this.length));
      this.length = -1;
    }
    return frames;
  }

  private peek(n: number): Uint8Array {
    const first = this.chunks[0];
    if (first !== undefined && first.length >= n) return first.subarray(0, n);
    const out = new Uint8Array(n);
    let at = 0;
    for (const c of this.chunks) {
      const part = c.subarray(0, n - at);
      out.set(part, at);
      at += part.length;
      if (at === n) break;
    }
    return out;
  }

  private take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks[0]!;
      const part = c.subarray(0, n - at);
      out.set(part, at);
      at += part.length;
      if (part.length === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(part.length);
    }
    this.buffered -= n;
    return out;
  }
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

/**
 * Frames onto a long-lived stream shared by many exchanges: whole frames, one
 * after another (two frames' chunks must never interleave), written at once
 * while the stream takes them and queued behind a drain otherwise. At most
 * `maxQueued` frames wait; one more means the peer is not reading, and the
 * write fails with P2PError('PROTOCOL') so the caller can reset the stream.
 */
export class FrameWriter {
  private readonly queue: { frame: Uint8Array; offset: number; resolve: () => void; reject: (error: unknown) => void }[] = [];
  private pumping = false;

  constructor(
    private readonly stream: Stream,
    private readonly maxQueued: number,
    private readonly drainTimeoutMs: number,
  ) {}

  write(payload: Uint8Array): Promise<void> {
    if (this.queue.length >= this.maxQueued) return Promise.reject(new P2PError('PROTOCOL', `${this.queue.length} frames wait for the peer to read`));
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ frame: encodeFrame(payload), offset: 0, resolve, reject });
      if (!this.pumping) void this.pump();
    });
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.queue.length > 0) {
        const job = this.queue[0]!;
        while (job.offset < job.frame.length) {
          const end = Math.min(job.frame.length, job.offset + WRITE_CHUNK);
          const taken = this.stream.send(job.frame.subarray(job.offset, end));
          job.offset = end;
          if (!taken) await this.stream.onDrain({ signal: AbortSignal.timeout(this.drainTimeoutMs) });
        }
        this.queue.shift();
        job.resolve();
      }
    } catch (error) {
      for (const job of this.queue.splice(0)) job.reject(error);
    } finally {
      this.pumping = false;
    }
  }
}
