/**
 * Sessions (spec "Login", "Logout", "whoami"): password login with a user
 * identifier (or the legacy top-level `user`), logout of one device or all of
 * them, and who a token belongs to. Logging out deletes the device with its
 * keys, as Synapse does, so other users stop encrypting for it. Logins are
 * rate-limited as Synapse's rc_login: per client address, per account for
 * failed attempts (checked before the password is) and per account for
 * sessions opened.
 */
import { MatrixError, badJson, forbidden, missingParam } from '../../http/errors.js';
import { clientRoute, type RouteDefinition } from '../../http/router.js';
import { newAccessToken, newDeviceId, openSession, removeDevices } from '../../accounts/devices.js';
import { hashPassword, needsRehash, verifyPassword } from '../../accounts/passwords.js';
import { loginUserId } from '../../accounts/users.js';
import { optionalBoolean, optionalString } from '../../http/params.js';
import { addressKey } from '../../limits/rate-limits.js';
import { checkDeviceFields, type AccountsDeps } from './common.js';

/** The spec's bound on the length of a user ID. */
const MAX_USER_ID_LENGTH = 255;

const badLogin = () => forbidden('Invalid username or password');

/** The `user` a login body names; 400/403 for identifiers this server cannot log in with. */
function loginUser(body: Record<string, unknown>): string {
  const identifier = body.identifier;
  if (identifier !== undefined) {
    if (identifier === null || typeof identifier !== 'object' || Array.isArray(identifier)) {
      throw badJson('identifier must be an object');
    }
    const id = identifier as Record<string, unknown>;
    if (typeof id.type !== 'string') throw missingParam('identifier.type is missing');
    if (id.type === 'm.id.user') {
      if (id.user === undefined) throw missingParam('identifier.user is missing');
      if (typeof id.user !== 'string') throw badJson('identifier.user must be a string');
      return id.user;
    }
    // No third-party IDs are bound to accounts here, so none can name one.
    if (id.type === 'm.id.thirdparty' || id.type === 'm.id.phone') throw badLogin();
    throw new MatrixError(400, 'M_UNKNOWN', `Unknown login identifier type ${id.type}`);
  }
  const user = optionalString(body, 'user');
  if (user !== undefined) return user;
  if (body.medium !== undefined || body.address !== undefined) throw badLogin();
  throw missingParam('Missing parameter: identifier');
}

export function loginRoutes({ services }: AccountsDeps): RouteDefinition[] {
  const { ctx, limits } = services;
  return [
    // GET /_matrix/client/v3/login (spec: "Login")
    clientRoute('GET', '/login', 'none', async () => ({ flows: [{ type: 'm.login.password' }] })),

    // POST /_matrix/client/v3/login (spec: "Login")
    clientRoute('POST', '/login', 'none', async ({ json, remoteAddress }) => {
      limits.take('loginAddress', addressKey(remoteAddress));
      const body = await json();
      if (body.type === undefined) throw missingParam('Missing parameter: type');
      if (typeof body.type !== 'string') throw badJson('type must be a string');
      if (body.type !== 'm.login.password') throw new MatrixError(400, 'M_UNKNOWN', `Unknown login type ${body.type}`);
      const user = loginUser(body);
      if (body.password === undefined) throw missingParam('Missing parameter: password');
      const password = optionalString(body, 'password')!;
      const requestedDeviceId = optionalString(body, 'device_id');
      const deviceName = optionalString(body, 'initial_device_display_name');
      optionalBoolean(body, 'refresh_token');
      checkDeviceFields(requestedDeviceId, deviceName);

      // Unknown users and wrong passwords get the same answer; whether a user exists is public
      // anyway (profiles, /register/available), so no dummy hash is spent equalising their timing.
      // A name no account can have (another server's, longer than a user ID may be) has no password to guess.
      const userId = loginUserId(user, ctx.serverName);
      if (userId === undefined || userId.length > MAX_USER_ID_LENGTH) throw badLogin();
      // Failed attempts count against the account named, existing or not, so probing names costs the same.
      // Both account limits are checked before the password: a 429 only after a right one would reveal it.
      limits.check('loginFailedAttempts', userId);
      limits.check('loginAccount', userId);
      const record = await ctx.storage.read((txn) => txn.users.get(userId));
      if (!record || !(await verifyPassword(record.passwordHash, password))) {
        limits.record('loginFailedAttempts', userId);
        throw badLogin();
      }
      if (record.deactivated) throw new MatrixError(403, 'M_USER_DEACTIVATED', 'This account has been deactivated');
      // Hashed before the write: a transaction cannot wait for WebCrypto.
      const verifiedHash = record.passwordHash!;
      const upgradedHash = needsRehash(ctx, verifiedHash) ? await hashPassword(ctx, password) : undefined;
      limits.record('loginAccount', userId);

      const deviceId = requestedDeviceId ?? newDeviceId(ctx);
      const accessToken = newAccessToken(ctx);
      const now = ctx.clock.now();
      await ctx.storage.write(async (txn) => {
        if (requestedDeviceId !== undefined) {
          // The spec forbids a device ID equal to one of the user's cross-signing key IDs.
          for (const key of await txn.crossSigningKeys.forUser(userId)) {
            const keys = (key.keys as { keys?: Record<string, unknown> }).keys ?? {};
            if (Object.keys(keys).some((id) => id.slice(id.indexOf(':') + 1) === requestedDeviceId)) {
              throw forbidden('Device ID is in use by a cross-signing key');
            }
          }
        }
        // Unless the password changed meanwhile: then the new one's hash stays.
        if (upgradedHash !== undefined && (await txn.users.get(userId))?.passwordHash === verifiedHash) {
          await txn.users.update(userId, { passwordHash: upgradedHash });
        }
        await openSession(txn, { userId, deviceId, accessToken, displayName: deviceName, now });
      });
      return { user_id: userId, access_token: accessToken, device_id: deviceId, home_server: ctx.serverName };
    }),

    // POST /_matrix/client/v3/logout (spec: "Logout")
    clientRoute('POST', '/logout', 'required', async ({ requester }) => {
      await ctx.storage.write(async (txn) => {
        await txn.accessTokens.delete(requester.accessToken);
        await removeDevices(txn, requester.userId, [requester.deviceId]);
      });
      return {};
    }),

    // POST /_matrix/client/v3/logout/all (spec: "Logout")
    clientRoute('POST', '/logout/all', 'required', async ({ requester }) => {
      await ctx.storage.write(async (txn) => {
        const devices = await txn.devices.forUser(requester.userId);
        await txn.accessTokens.delete(requester.accessToken);
        await removeDevices(txn, requester.userId, [requester.deviceId, ...devices.map((d) => d.deviceId)]);
      });
      return {};
    }),

    // GET /_matrix/client/v3/account/whoami (spec: "Current account information")
    clientRoute('GET', '/account/whoami', 'required', async ({ requester }) => ({
      user_id: requester.userId,
      device_id: requester.deviceId,
      is_guest: false,
    })),
  ];
}
