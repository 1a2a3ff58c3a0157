/**
 * The Node homeserver's identity: one ed25519 signing key, kept in the data
 * directory as `signing.key` (mode 0600, Synapse's one-line format
 * `ed25519 <version> <unpadded base64 seed>`), so a restart is the same
 * server. Its server name is the lowercase hex of the public key (DESIGN.md,
 * "Identity and names"); its key ID is `ed25519:<version>`.
 */
import { createPrivateKey, randomBytes, sign as nodeSign } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSigner, decodeBase64, ed25519PublicKey, encodeBase64, type Signer } from '../core/index.js';

export const SIGNING_KEY_FILE = 'signing.key';
const KEY_VERSION = '1';

/** The lowercase hex of bytes: a server name from a public key. */
export function hexOf(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

/** PKCS#8 wrapping of a raw Ed25519 seed (RFC 8410): the fixed DER header, then the 32 bytes. */
const PKCS8_ED25519_PREFIX = Buffer.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);

/**
 * A signer for `seed`, named by its public key. It signs with node:crypto
 * synchronously: Ed25519 signatures are deterministic, so they are the bytes
 * the core's WebCrypto signer makes, at less than half the cost and without a
 * thread-pool round trip per event (every local event is signed).
 */
export async function signerFromSeed(seed: Uint8Array, version = KEY_VERSION): Promise<Signer> {
  const serverName = hexOf(await ed25519PublicKey(seed));
  // The core signer checks the seed, name and key ID; only its sign function is replaced.
  const signer = await createSigner(seed, serverName, `ed25519:${version}`);
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  return {
    ...signer,
    async sign(data) {
      const signature = nodeSign(null, data, key);
      return new Uint8Array(signature.buffer, signature.byteOffset, signature.byteLength);
    },
  };
}

/** Parses a signing key file; throws with the reason if it is not one. */
export function parseSigningKey(text: string): { version: string; seed: Uint8Array } {
  const parts = text.trim().split(/\s+/);
  if (parts.length !== 3 || parts[0] !== 'ed25519' || !/^\w+$/.test(parts[1]!)) {
    throw new Error('expected "ed25519 <version> <base64 seed>"');
  }
  const seed = decodeBase64(parts[2]!);
  if (seed.length !== 32) throw new Error(`the seed has ${seed.length} bytes, not 32`);
  return { version: parts[1]!, seed };
}

/**
 * The signer whose key is in `dataDir`, creating the key on first start. A
 * new key is written to a temporary file and renamed into place, so a crash
 * never leaves a half-written key; the `wx` flag refuses to overwrite one.
 */
export async function loadOrCreateSigner(dataDir: string): Promise<Signer> {
  const path = join(dataDir, SIGNING_KEY_FILE);
  let text: string | undefined;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (text !== undefined) {
    try {
      const { version, seed } = parseSigningKey(text);
      return await signerFromSeed(seed, version);
    } catch (error) {
      throw new Error(`${path} is not a signing key: ${(error as Error).message}`);
    }
  }
  const seed = new Uint8Array(randomBytes(32));
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, `ed25519 ${KEY_VERSION} ${encodeBase64(seed)}\n`, { mode: 0o600, flag: 'wx' });
  await rename(temporary, path);
  return signerFromSeed(seed);
}
