/**
 * What the accounts routes share: the per-homeserver state they keep beyond
 * storage (UIA sessions, presence), and small checks on request bodies and
 * path user IDs. Errors follow one rule: a missing required key is
 * M_MISSING_PARAM, a key of the wrong JSON type is M_BAD_JSON, a value of the
 * right type that is not acceptable is M_INVALID_PARAM.
 */
import { isValidUserId } from '../../../core/index.js';
import { MatrixError, forbidden, invalidParam } from '../../http/errors.js';
import type { HomeserverServices } from '../../services.js';
import { InteractiveAuth, type AuthFlow } from '../../accounts/uia.js';
import type { PresenceTracker } from '../../accounts/presence.js';
import type { UserRecord } from '../../../storage/types.js';

export interface AccountsDeps {
  services: HomeserverServices;
  uia: InteractiveAuth;
  presence: PresenceTracker;
}

export function createAccountsDeps(services: HomeserverServices): AccountsDeps {
  return { services, uia: new InteractiveAuth(services.ctx), presence: services.presence };
}

/** Synapse's limit on device display names. */
export const MAX_DEVICE_NAME_LENGTH = 100;
/** Longest client-chosen device ID accepted. */
export const MAX_DEVICE_ID_LENGTH = 512;

/** Checks the device fields of /register and /login bodies (types already checked). */
export function checkDeviceFields(deviceId: string | undefined, displayName: string | undefined): void {
  if (deviceId !== undefined && (deviceId.length === 0 || deviceId.length > MAX_DEVICE_ID_LENGTH)) {
    throw invalidParam(`device_id must have 1 to ${MAX_DEVICE_ID_LENGTH} characters`);
  }
  if (displayName !== undefined && displayName.length > MAX_DEVICE_NAME_LENGTH) {
    throw invalidParam(`Device display name is too long (max ${MAX_DEVICE_NAME_LENGTH})`);
  }
}

/** A user ID from the path: 400 M_INVALID_PARAM unless it is one. */
export function pathUserId(userId: string): string {
  if (!isValidUserId(userId)) throw invalidParam(`Invalid user ID: ${userId}`);
  return userId;
}

/** Only the requester may touch their own data: 403 otherwise. */
export function requireSelf(requesterId: string, userId: string, what: string): void {
  pathUserId(userId);
  if (requesterId !== userId) throw forbidden(`Cannot ${what} for other users`);
}


/**
 * The re-authentication flows for a user: their password if they have one.
 * An account created without a password has nothing to prove beyond its
 * access token, so it gets m.login.dummy instead of being locked out of
 * device management.
 */
export function reauthFlows(user: UserRecord): AuthFlow[] {
  return user.passwordHash ? [{ stages: ['m.login.password'] }] : [{ stages: ['m.login.dummy'] }];
}

/** The requester's own record; their token exists, so a missing record is a server fault. */
export async function requesterRecord(deps: AccountsDeps, userId: string): Promise<UserRecord> {
  const user = await deps.services.ctx.storage.read((txn) => txn.users.get(userId));
  if (!user) throw new MatrixError(500, 'M_UNKNOWN', `No account for ${userId}`);
  return user;
}

/**
 * Runs the re-authentication (the password again, see reauthFlows) that
 * sensitive account operations need, and returns the requester's record.
 */
export async function reauthenticate(deps: AccountsDeps, userId: string, auth: unknown, operation: string): Promise<UserRecord> {
  const user = await requesterRecord(deps, userId);
  await deps.uia.check({ auth, flows: reauthFlows(user), operation, userId, passwordHash: user.passwordHash, serverName: deps.services.ctx.serverName });
  return user;
}

/** The operation a UIA session is bound to: method and path, without the version prefix. */
export function operationOf(request: Request, url: URL): string {
  return `${request.method} ${url.pathname.replace(/^\/_matrix\/client\/[^/]+/, '')}`;
}
