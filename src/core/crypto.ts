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
import { encodeBase64 } from './base64.js';
import { CoreError } from './errors.js';

// noble's synchronous API needs a SHA-512 to be plugged in once.
if (!ed.hashes.sha512) ed.hashes.sha512 = sha512;

/** SHA-256 of the bytes. */
export function sha256(bytes: Uint8Array): Uint8Array {
  return nobleSha256(bytes);
}

/**
 * SHA-256 through WebCrypto when the platform has it: native code off the
 * main thread, several times faster than the synchronous JavaScript hash on
 * event-sized inputs, which matters when verifying a backlog of events.
 */
export async function sha256Async(bytes: Uint8Array): Promise<Uint8Array> {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) return nobleSha256(bytes);
  return new Uint8Array(await subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
}

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

/** Ed25519 over one backend. Verification never throws: malformed keys or signatures are just invalid. */
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

function subtle(): SubtleCrypto | undefined {
  return (globalThis as { crypto?: Crypto }).crypto?.subtle;
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
  keyPair(seed: Uint8Array): Promise<Ed25519KeyPair>;
  sign(seed: Uint8Array, message: Uint8Array): Promise<Uint8Array>;
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean>;
}

function nobleBackend(): Backend {
  const signWith = (seed: Uint8Array, message: Uint8Array) => ed.sign(message, seed);
  return {
    name: 'noble',
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

function webCryptoBackend(cacheSize: number): Backend {
  const s = subtle();
  if (!s) throw new CoreError('BAD_KEY', 'WebCrypto is not available on this platform');
  // Verification keys by base64 public key, in least-recently-used order (Map keeps insertion order).
  const verifyKeys = new Map<string, Promise<CryptoKey>>();
  // Signing keys for the raw `sign(seed, msg)` primitive, so repeated use of one seed imports it once.
  // Keyed by a hash of the seed so no secret sits in the map's keys.
  const signKeys = new Map<string, Promise<CryptoKey>>();

  const importSign = (seed: Uint8Array) => s.importKey('pkcs8', pkcs8(seed), ED25519, false, ['sign']);

  function cached(
    cache: Map<string, Promise<CryptoKey>>,
    limit: number,
    id: string,
    load: () => Promise<CryptoKey>,
  ): Promise<CryptoKey> {
    const key = cache.get(id);
    if (key) {
      cache.delete(id);
      cache.set(id, key);
      return key;
    }
    const loading = load();
    // A failed import is not cached (unless a newer entry already replaced it).
    loading.catch(() => {
      if (cache.get(id) === loading) cache.delete(id);
    });
    cache.set(id, loading);
    if (cache.size > limit) cache.delete(cache.keys().next().value as string);
    return loading;
  }

  return {
    name: 'webcrypto',
    async keyPair(seed) {
      const key = await importSign(seed);
      // Derived with noble so the private key can stay non-extractable.
      const publicKey = ed.getPublicKey(seed);
      return {
        publicKey,
        sign: async (message) => new Uint8Array(await s.sign(ED25519, key, bufferSource(message))),
      };
    },
    async sign(seed, message) {
      const key = await cached(signKeys, 16, encodeBase64(sha256(seed)), () => importSign(seed));
      return new Uint8Array(await s.sign(ED25519, key, bufferSource(message)));
    },
    async verify(publicKey, message, signature) {
      try {
        const key = await cached(verifyKeys, cacheSize, encodeBase64(publicKey), () =>
          s.importKey('raw', Uint8Array.from(publicKey), ED25519, false, ['verify']),
        );
        return await s.verify(ED25519, key, bufferSource(signature), bufferSource(message));
      } catch {
        return false;
      }
    },
  };
}

/** Makes an Ed25519 instance with its own key caches. */
export function createEd25519(opts: Ed25519Options = {}): Ed25519 {
  const choice = opts.backend ?? 'auto';
  const cacheSize = Math.max(1, opts.verifyKeyCacheSize ?? 1024);
  let resolved: Promise<Backend> | undefined;
  const backend = (): Promise<Backend> => {
    resolved ??= (async () => {
      if (choice === 'noble') return nobleBackend();
      if (choice === 'webcrypto') {
        if (!(await webCryptoHasEd25519())) throw new CoreError('BAD_KEY', 'WebCrypto Ed25519 is not available on this platform');
        return webCryptoBackend(cacheSize);
      }
      return (await webCryptoHasEd25519()) ? webCryptoBackend(cacheSize) : nobleBackend();
    })();
    return resolved;
  };

  return {
    async backend() {
      return (await backend()).name;
    },
    async publicKeyFromSeed(seed) {
      checkSeed(seed);
      return ed.getPublicKey(seed);
    },
    async keyPair(seed) {
      checkSeed(seed);
      return (await backend()).keyPair(seed);
    },
    async sign(seed, message) {
      checkSeed(seed);
      return (await backend()).sign(seed, message);
    },
    async verify(publicKey, message, signature) {
      if (!plausible(publicKey, message, signature)) return false;
      return (await backend()).verify(publicKey, message, signature);
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
