/**
 * The core's cryptographic primitives: SHA-256 (synchronous, @noble/hashes) and
 * Ed25519 signing and verification with two interchangeable backends.
 *
 * `webcrypto` uses `crypto.subtle` (Node 20+, current browsers): native speed,
 * and many verifications run in parallel off the main thread. `noble` is pure
 * JavaScript (@noble/ed25519), the fallback where WebCrypto lacks Ed25519.
 * Ed25519 is deterministic, so both produce byte-identical signatures; noble
 * verifies with RFC 8032 (not ZIP-215) rules to stay as close as possible to
 * what the native libraries accept. `auto` (the default) picks WebCrypto when
 * the platform has it. The backend is chosen per instance (`createEd25519`) or
 * for the whole core (`setEd25519Backend`), so tests and benchmarks can run both.
 */
import * as ed from '@noble/ed25519';
import { sha256 as nobleSha256, sha512 } from '@noble/hashes/sha2.js';
import { decodeBase64, encodeBase64 } from './base64.js';
import { CoreError } from './errors.js';

// noble's synchronous API needs a SHA-512 to be plugged in once.
if (!ed.hashes.sha512) ed.hashes.sha512 = sha512;

/** SHA-256 of the bytes. */
export function sha256(bytes: Uint8Array): Uint8Array {
  return nobleSha256(bytes);
}

/**
 * SHA-256 through WebCrypto when the platform has it: native code, several
 * times faster than the synchronous JavaScript hash on event-sized inputs in
 * browsers (in Node it runs on the thread pool), which matters when verifying
 * a backlog of events.
 *
 * The input is read before this returns (WebCrypto copies its arguments when
 * called), so the caller may reuse the buffer at once.
 */
export function sha256Async(bytes: Uint8Array): Promise<Uint8Array> {
  const s = subtle();
  if (!s) return Promise.resolve(nobleSha256(bytes));
  try {
    return s.digest('SHA-256', bufferSource(bytes)).then(toBytes);
  } catch (err) {
    return Promise.reject(err);
  }
}

const toBytes = (buffer: ArrayBuffer) => new Uint8Array(buffer);

const textEncoder = new TextEncoder();

/** The UTF-8 bytes of a string. */
export function utf8(s: string): Uint8Array {
  return textEncoder.encode(s);
}

export type Ed25519BackendName = 'webcrypto' | 'noble';
export type Ed25519BackendChoice = Ed25519BackendName | 'auto';

export interface Ed25519Options {
  /** Which implementation to use. @default 'auto' (WebCrypto when available, else noble) */
  backend?: Ed25519BackendChoice;
  /** How many imported verification keys to keep (WebCrypto key import is not free). @default 1024 */
  verifyKeyCacheSize?: number;
}

/** One server key, ready to sign many messages. */
export interface Ed25519KeyPair {
  readonly publicKey: Uint8Array;
  sign(message: Uint8Array): Promise<Uint8Array>;
}

/**
 * Ed25519 over one backend. Verification never throws: malformed keys or
 * signatures are just invalid. `verify` reads its three arguments before it
 * returns (copying them if it has to wait for the backend or a key import),
 * so callers may reuse their buffers at once.
 */
export interface Ed25519 {
  /** The backend in use once `auto` has been resolved. */
  backend(): Promise<Ed25519BackendName>;
  publicKeyFromSeed(seed: Uint8Array): Promise<Uint8Array>;
  /** Imports the 32-byte seed once, for signing many messages with it. */
  keyPair(seed: Uint8Array): Promise<Ed25519KeyPair>;
  sign(seed: Uint8Array, message: Uint8Array): Promise<Uint8Array>;
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean>;
}

export const ED25519_SEED_LENGTH = 32;
export const ED25519_PUBLIC_KEY_LENGTH = 32;
export const ED25519_SIGNATURE_LENGTH = 64;

const ED25519 = { name: 'Ed25519' } as const;
/** PKCS#8 wrapping of a raw Ed25519 seed (RFC 8410): the fixed DER header, then the 32 bytes. */
const PKCS8_PREFIX = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

/** TypeScript's BufferSource excludes views of SharedArrayBuffer; copy in that rare case. */
function bufferSource(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer ? (bytes as Uint8Array<ArrayBuffer>) : new Uint8Array(bytes);
}

function checkSeed(seed: Uint8Array): void {
  if (!(seed instanceof Uint8Array) || seed.length !== ED25519_SEED_LENGTH) {
    throw new CoreError('BAD_KEY', `an Ed25519 seed is ${ED25519_SEED_LENGTH} bytes, got ${describeBytes(seed)}`);
  }
}

function describeBytes(x: unknown): string {
  return x instanceof Uint8Array ? `${x.length} bytes` : typeof x;
}

function plausible(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  return (
    publicKey instanceof Uint8Array &&
    publicKey.length === ED25519_PUBLIC_KEY_LENGTH &&
    signature instanceof Uint8Array &&
    signature.length === ED25519_SIGNATURE_LENGTH &&
    message instanceof Uint8Array
  );
}

let subtleCrypto: SubtleCrypto | undefined;

/** The platform's WebCrypto (looked up once it is found: the lookup is not free in browsers). */
function subtle(): SubtleCrypto | undefined {
  return (subtleCrypto ??= (globalThis as { crypto?: Crypto }).crypto?.subtle);
}

let webCryptoProbe: Promise<boolean> | undefined;

/** Whether this platform's WebCrypto implements Ed25519 (probed once). */
export function webCryptoHasEd25519(): Promise<boolean> {
  webCryptoProbe ??= (async () => {
    const s = subtle();
    if (!s) return false;
    try {
      const key = await s.importKey('pkcs8', pkcs8(new Uint8Array(32)), ED25519, false, ['sign']);
      await s.sign(ED25519, key, new Uint8Array(0));
      return true;
    } catch {
      return false;
    }
  })();
  return webCryptoProbe;
}

function pkcs8(seed: Uint8Array): Uint8Array<ArrayBuffer> {
  const der = new Uint8Array(PKCS8_PREFIX.length + 32);
  der.set(PKCS8_PREFIX);
  der.set(seed, PKCS8_PREFIX.length);
  return der;
}

interface Backend {
  readonly name: Ed25519BackendName;
  publicKey(seed: Uint8Array): Promise<Uint8Array>;
  keyPair(seed: Uint8Array): Promise<Ed25519KeyPair>;
  sign(seed: Uint8Array, message: Uint8Array): Promise<Uint8Array>;
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean>;
}

function nobleBackend(): Backend {
  const signWith = (seed: Uint8Array, message: Uint8Array) => ed.sign(message, seed);
  return {
    name: 'noble',
    async publicKey(seed) {
      return ed.getPublicKey(seed);
    },
    async keyPair(seed) {
      const own = Uint8Array.from(seed); // later changes to the caller's buffer must not change the key
      const publicKey = ed.getPublicKey(own);
      return { publicKey, sign: async (message) => signWith(own, message) };
    },
    async sign(seed, message) {
      return signWith(seed, message);
    },
    async verify(publicKey, message, signature) {
      try {
        return ed.verify(signature, message, publicKey, { zip215: false });
      } catch {
        return false; // not a curve point, S out of range, ...
      }
    },
  };
}

/** A verification key being imported: `key` is set once the import has succeeded, `failed` once it has failed. */
interface VerifyKeyEntry {
  readonly bytes: Uint8Array;
  readonly loading: Promise<CryptoKey>;
  key?: CryptoKey;
  failed?: boolean;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function webCryptoBackend(cacheSize: number): Backend {
  const found = subtle();
  if (!found) throw new CoreError('BAD_KEY', 'WebCrypto is not available on this platform');
  const s: SubtleCrypto = found;
  // Verification keys by base64 public key, in least-recently-used order (Map keeps insertion order).
  const verifyKeys = new Map<string, VerifyKeyEntry>();
  // The same entries by the caller's key buffer: callers verifying many
  // events pass the same Uint8Array each time, and finding its entry this way
  // costs a comparison of 32 bytes instead of a base64 encoding and two map
  // updates. The bytes are compared on every hit, so a buffer changed in place
  // falls back to the lookup by value. Entries evicted from `verifyKeys` stay
  // usable here for as long as the caller keeps the buffer.
  const byBuffer = new WeakMap<Uint8Array, VerifyKeyEntry>();
  // Signing keys for the raw `sign(seed, msg)` primitive, so repeated use of one seed imports it once.
  // Keyed by a hash of the seed so no secret sits in the map's keys.
  const signKeys = new Map<string, Promise<CryptoKey>>();

  const importSign = (seed: Uint8Array) => s.importKey('pkcs8', pkcs8(seed), ED25519, false, ['sign']);

  /**
   * Natively, from an extractable copy of the key whose JWK carries the public half (`x`): noble's first
   * derivation builds its precomputed table in JavaScript, a noticeable part of a browser tab's start-up.
   */
  async function publicKey(seed: Uint8Array): Promise<Uint8Array> {
    const exportable = await s.importKey('pkcs8', pkcs8(seed), ED25519, true, ['sign']);
    const { x } = await s.exportKey('jwk', exportable);
    if (typeof x !== 'string') throw new CoreError('BAD_KEY', 'WebCrypto exported an Ed25519 key without its public half');
    return decodeBase64(x);
  }

  function cachedSignKey(id: string, load: () => Promise<CryptoKey>): Promise<CryptoKey> {
    const key = signKeys.get(id);
    if (key) {
      signKeys.delete(id);
      signKeys.set(id, key);
      return key;
    }
    const loading = load();
    // A failed import is not cached (unless a newer entry already replaced it).
    loading.catch(() => {
      if (signKeys.get(id) === loading) signKeys.delete(id);
    });
    signKeys.set(id, loading);
    if (signKeys.size > 16) signKeys.delete(signKeys.keys().next().value as string);
    return loading;
  }

  function verifyKey(publicKey: Uint8Array): VerifyKeyEntry {
    const known = byBuffer.get(publicKey);
    if (known && !known.failed && sameBytes(known.bytes, publicKey)) return known;
    const id = encodeBase64(publicKey);
    let entry = verifyKeys.get(id);
    if (entry) {
      verifyKeys.delete(id);
      verifyKeys.set(id, entry);
    } else {
      const bytes = Uint8Array.from(publicKey);
      const loading = s.importKey('raw', bytes, ED25519, false, ['verify']);
      const fresh: VerifyKeyEntry = { bytes, loading };
      entry = fresh;
      loading.then(
        (key) => {
          fresh.key = key;
        },
        () => {
          // A failed import is not cached (unless a newer entry already replaced it).
          fresh.failed = true;
          if (verifyKeys.get(id) === fresh) verifyKeys.delete(id);
        },
      );
      verifyKeys.set(id, fresh);
      if (verifyKeys.size > cacheSize) verifyKeys.delete(verifyKeys.keys().next().value as string);
    }
    byBuffer.set(publicKey, entry);
    return entry;
  }

  const invalid = () => false;

  return {
    name: 'webcrypto',
    publicKey,
    async keyPair(seed) {
      // The signing key stays non-extractable; the public key comes from a separate, short-lived import.
      const [key, ownPublicKey] = await Promise.all([importSign(seed), publicKey(seed)]);
      return {
        publicKey: ownPublicKey,
        sign: async (message) => new Uint8Array(await s.sign(ED25519, key, bufferSource(message))),
      };
    },
    async sign(seed, message) {
      const key = await cachedSignKey(encodeBase64(sha256(seed)), () => importSign(seed));
      return new Uint8Array(await s.sign(ED25519, key, bufferSource(message)));
    },
    verify(publicKey, message, signature) {
      const entry = verifyKey(publicKey);
      const key = entry.key;
      // With the key at hand, WebCrypto copies message and signature during this call.
      if (key) {
        try {
          return s.verify(ED25519, key, bufferSource(signature), bufferSource(message)).catch(invalid);
        } catch {
          return Promise.resolve(false);
        }
      }
      // A failed import is an invalid key, not an error.
      const m = Uint8Array.from(message);
      const sig = Uint8Array.from(signature);
      return entry.loading.then((k) => s.verify(ED25519, k, sig, m)).catch(invalid);
    },
  };
}

/** Makes an Ed25519 instance with its own key caches. */
export function createEd25519(opts: Ed25519Options = {}): Ed25519 {
  const choice = opts.backend ?? 'auto';
  const cacheSize = Math.max(1, opts.verifyKeyCacheSize ?? 1024);
  let resolved: Promise<Backend> | undefined;
  /** The backend once `resolved` has settled: verification then starts without waiting a turn. */
  let ready: Backend | undefined;
  const backend = (): Promise<Backend> => {
    if (!resolved) {
      resolved = (async () => {
        if (choice === 'noble') return nobleBackend();
        if (choice === 'webcrypto') {
          if (!(await webCryptoHasEd25519())) throw new CoreError('BAD_KEY', 'WebCrypto Ed25519 is not available on this platform');
          return webCryptoBackend(cacheSize);
        }
        return (await webCryptoHasEd25519()) ? webCryptoBackend(cacheSize) : nobleBackend();
      })();
      resolved.then(
        (b) => {
          ready = b;
        },
        () => {},
      );
    }
    return resolved;
  };

  return {
    async backend() {
      return (await backend()).name;
    },
    async publicKeyFromSeed(seed) {
      checkSeed(seed);
      return (await backend()).publicKey(seed);
    },
    async keyPair(seed) {
      checkSeed(seed);
      return (await backend()).keyPair(seed);
    },
    async sign(seed, message) {
      checkSeed(seed);
      return (await backend()).sign(seed, message);
    },
    verify(publicKey, message, signature) {
      if (!plausible(publicKey, message, signature)) return Promise.resolve(false);
      if (ready) return ready.verify(publicKey, message, signature);
      // The arguments are read after the backend is known: keep copies, as promised.
      const [k, m, sig] = [Uint8Array.from(publicKey), Uint8Array.from(message), Uint8Array.from(signature)];
      return backend().then((b) => b.verify(k, m, sig));
    },
  };
}

const instances = new Map<Ed25519BackendChoice, Ed25519>();

function instanceFor(choice: Ed25519BackendChoice): Ed25519 {
  let inst = instances.get(choice);
  if (!inst) {
    inst = createEd25519({ backend: choice });
    instances.set(choice, inst);
  }
  return inst;
}

let defaultChoice: Ed25519BackendChoice = 'auto';

/** Selects the backend the rest of the core uses (signers, JSON and event signatures). */
export function setEd25519Backend(choice: Ed25519BackendChoice): void {
  defaultChoice = choice;
}

/** The core-wide Ed25519 instance for the selected backend. */
export function defaultEd25519(): Ed25519 {
  return instanceFor(defaultChoice);
}

/** Raw signature of a message with a 32-byte seed. */
export function ed25519Sign(seed: Uint8Array, message: Uint8Array, opts?: { backend?: Ed25519BackendChoice }): Promise<Uint8Array> {
  return instanceFor(opts?.backend ?? defaultChoice).sign(seed, message);
}

/** Raw verification; false (never a throw) for a bad key, signature or length. */
export function ed25519Verify(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
  opts?: { backend?: Ed25519BackendChoice },
): Promise<boolean> {
  return instanceFor(opts?.backend ?? defaultChoice).verify(publicKey, message, signature);
}

/** The public key of a 32-byte seed. */
export function ed25519PublicKey(seed: Uint8Array): Promise<Uint8Array> {
  return instanceFor(defaultChoice).publicKeyFromSeed(seed);
}

export interface VerifyItem {
  publicKey: Uint8Array;
  message: Uint8Array;
  signature: Uint8Array;
}

/**
 * Verifies many signatures at once. With WebCrypto the checks run concurrently
 * (Node spreads them over its thread pool), which is what makes catching up on
 * a large backlog of events fast. Results are in input order.
 */
export function verifyBatch(items: readonly VerifyItem[], opts?: { backend?: Ed25519BackendChoice }): Promise<boolean[]> {
  const inst = instanceFor(opts?.backend ?? defaultChoice);
  return Promise.all(items.map((it) => inst.verify(it.publicKey, it.message, it.signature)));
}
