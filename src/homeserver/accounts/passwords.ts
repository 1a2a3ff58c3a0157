/**
 * Password hashes for local accounts: PBKDF2-SHA256 through WebCrypto (the
 * same code in browsers and Node), a random 16-byte salt per hash and the
 * iteration count stored in the hash, so raising `passwordHashIterations`
 * later leaves existing passwords valid. Stored form:
 * `pbkdf2-sha256$<iterations>$<salt base64>$<hash base64>`.
 *
 * The default of 600,000 iterations is OWASP's current advice for
 * PBKDF2-SHA256; it costs roughly a third of a second per hash, paid at
 * registration, login and password checks only. A hash made with fewer
 * iterations than configured (an account from before the default was raised)
 * is replaced on the user's next successful login, when the password is in
 * hand: `needsRehash` says when.
 */
import { decodeBase64, encodeBase64, utf8 } from '../../core/index.js';
import type { HomeserverContext } from '../context.js';

const SCHEME = 'pbkdf2-sha256';
const SALT_BYTES = 16;
const HASH_BITS = 256;

/** Longest password accepted (Synapse's limit): hashing megabytes of "password" is a cheap denial of service. */
export const MAX_PASSWORD_LENGTH = 512;

async function derive(password: string, salt: Uint8Array, iterations: number): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey('raw', utf8(password) as BufferSource, 'PBKDF2', false, ['deriveBits']);
  const bits = await crypto.subtle.deriveBits(
    { name: 'PBKDF2', hash: 'SHA-256', salt: salt as BufferSource, iterations },
    key,
    HASH_BITS,
  );
  return new Uint8Array(bits);
}

/** Hashes `password` with a fresh salt and the configured iteration count. */
export async function hashPassword(ctx: Pick<HomeserverContext, 'config' | 'randomBytes'>, password: string): Promise<string> {
  const iterations = ctx.config.passwordHashIterations;
  const salt = ctx.randomBytes(SALT_BYTES);
  const hash = await derive(password, salt, iterations);
  return `${SCHEME}$${iterations}$${encodeBase64(salt)}$${encodeBase64(hash)}`;
}

/** Whether `password` matches `stored`; false for a missing or unreadable hash, never a throw. */
export async function verifyPassword(stored: string | undefined, password: string): Promise<boolean> {
  if (typeof stored !== 'string' || typeof password !== 'string') return false;
  const parts = stored.split('$');
  if (parts.length !== 4 || parts[0] !== SCHEME) return false;
  const iterations = Number(parts[1]);
  if (!Number.isSafeInteger(iterations) || iterations < 1) return false;
  let salt: Uint8Array;
  let expected: Uint8Array;
  try {
    salt = decodeBase64(parts[2]!);
    expected = decodeBase64(parts[3]!);
  } catch {
    return false;
  }
  return constantTimeEqual(await derive(password, salt, iterations), expected);
}

/**
 * Whether a stored hash is weaker than `hashPassword` would make now (another
 * scheme, or fewer iterations than configured), so a login that has just
 * verified the password should store a fresh hash of it.
 */
export function needsRehash(ctx: Pick<HomeserverContext, 'config'>, stored: string): boolean {
  const [scheme, iterations] = stored.split('$');
  return scheme !== SCHEME || !(Number(iterations) >= ctx.config.passwordHashIterations);
}

/** Compares two byte strings in time that depends only on their lengths, not on where they differ. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
