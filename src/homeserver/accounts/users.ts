/**
 * Local user IDs: the grammar new localparts must follow, the IDs the server
 * generates when a client registers without a username, and how the `user`
 * a client logs in with (a full user ID or a bare localpart) maps to one of
 * this server's users.
 */
import { MAX_ID_BYTES, utf8 } from '../../core/index.js';
import { randomId, type HomeserverContext } from '../context.js';
import { MatrixError } from '../http/errors.js';

/** The spec's grammar for new localparts (appendix "User Identifiers"). */
const LOCALPART = /^[a-z0-9._=\-/+]+$/;

export const invalidUsername = (msg: string) => new MatrixError(400, 'M_INVALID_USERNAME', msg);

/**
 * The user ID a requested username maps to. Upper case is folded to lower case
 * (the spec lets servers map usernames "in a logical manner", and Synapse does
 * the same); anything else outside the grammar, or an ID over 255 bytes, is
 * M_INVALID_USERNAME.
 */
export function userIdForUsername(username: string, serverName: string): string {
  const localpart = username.toLowerCase();
  if (localpart.length === 0) throw invalidUsername('User ID cannot be empty');
  if (!LOCALPART.test(localpart)) {
    throw invalidUsername('User ID can only contain characters a-z, 0-9, or "=_-./+"');
  }
  const userId = `@${localpart}:${serverName}`;
  if (utf8(userId).length > MAX_ID_BYTES) throw invalidUsername(`User ID may not be longer than ${MAX_ID_BYTES} bytes`);
  return userId;
}

/** A fresh localpart for registrations without a username: lower-case letters and digits. */
export function generateLocalpart(ctx: Pick<HomeserverContext, 'randomBytes'>): string {
  return `u${randomId(ctx, 11).toLowerCase()}`;
}

/** The localpart of one of this server's user IDs. */
export function localpartOf(userId: string): string {
  return userId.slice(1, userId.indexOf(':'));
}

/** Whether `userId` names a user of this server (well formed or not). */
export function isLocalUserId(userId: string, serverName: string): boolean {
  return userId.startsWith('@') && userId.indexOf(':') > 0 && userId.slice(userId.indexOf(':') + 1) === serverName;
}

/**
 * The local user ID a login names: `@localpart:server` or a bare localpart,
 * either matched case-insensitively since registration folds case. Undefined
 * for users of other servers.
 */
export function loginUserId(user: string, serverName: string): string | undefined {
  if (user.startsWith('@')) {
    if (!isLocalUserId(user, serverName)) return undefined;
    return `@${localpartOf(user).toLowerCase()}:${serverName}`;
  }
  if (user.length === 0 || user.includes(':')) return undefined;
  return `@${user.toLowerCase()}:${serverName}`;
}
