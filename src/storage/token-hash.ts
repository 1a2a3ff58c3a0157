/**
 * How an access token is kept at rest: only its SHA-256, so a copy of the
 * database (a backup, a stolen laptop's profile) holds no usable credential.
 * One unsalted hash is right for tokens, unlike passwords: a token is ~238
 * random bits, so there is nothing to guess, and lookups need one fixed key
 * per token. The access token store and the homeserver's token cache both key
 * by this, so they cannot disagree on it.
 */
import { encodeBase64, sha256, utf8 } from '../core/index.js';

/** The at-rest form of an access token: unpadded base64 of its UTF-8 bytes' SHA-256. */
export function accessTokenHash(token: string): string {
  return encodeBase64(sha256(utf8(token)));
}
