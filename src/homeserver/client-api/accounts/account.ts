/**
 * Account management (spec "Account management"): changing the password and
 * deactivating the account, both behind user-interactive auth with the current
 * password. A password change logs out the user's other devices unless asked
 * not to; deactivation logs out every device, keeps the user ID reserved for
 * ever, and then leaves every room the user was in or invited to.
 */
import { clientRoute, type RouteDefinition } from '../../http/router.js';
import { hashPassword } from '../../accounts/passwords.js';
import { removeDevices } from '../../accounts/devices.js';
import { checkNewPassword } from './register.js';
import { optionalBoolean, optionalString, requiredString } from '../../http/params.js';
import { operationOf, reauthenticate, type AccountsDeps } from './common.js';

export function accountRoutes(deps: AccountsDeps): RouteDefinition[] {
  const { services, presence } = deps;
  const { ctx, rooms } = services;

  return [
    // GET /_matrix/client/v3/account/3pid (spec: "Adding Account Administrative Contact Information"):
    // no email addresses or phone numbers are bound to accounts here (m.3pid_changes is disabled).
    clientRoute('GET', '/account/3pid', 'required', async () => ({ threepids: [] })),

    // POST /_matrix/client/v3/account/password (spec: "Account management"); behind user-interactive auth.
    clientRoute('POST', '/account/password', 'required', async ({ requester, json, request, url }) => {
      const body = await json();
      const newPassword = requiredString(body, 'new_password');
      checkNewPassword(newPassword);
      const logoutDevices = optionalBoolean(body, 'logout_devices') ?? true;
      await reauthenticate(deps, requester.userId, body.auth, operationOf(request, url));
      const passwordHash = await hashPassword(ctx, newPassword);
      await ctx.storage.write(async (txn) => {
        await txn.users.update(requester.userId, { passwordHash });
        if (!logoutDevices) return;
        const others = (await txn.devices.forUser(requester.userId)).filter((d) => d.deviceId !== requester.deviceId);
        await removeDevices(txn, requester.userId, others.map((d) => d.deviceId));
        // Tokens issued to the requester's own device before this one go too; this request's token stays.
        await txn.accessTokens.deleteForDevice(requester.userId, requester.deviceId, { except: requester.accessToken });
      });
      return {};
    }),

    // POST /_matrix/client/v3/account/deactivate (spec: "Account management"); behind user-interactive auth.
    clientRoute('POST', '/account/deactivate', 'required', async ({ requester, json, request, url }) => {
      const body = await json();
      const erase = optionalBoolean(body, 'erase') ?? false;
      optionalString(body, 'id_server');
      await reauthenticate(deps, requester.userId, body.auth, operationOf(request, url));
      const userId = requester.userId;
      const memberships = await ctx.storage.write(async (txn) => {
        await txn.users.update(userId, erase ? { deactivated: true, displayname: undefined, avatarUrl: undefined } : { deactivated: true });
        const devices = await txn.devices.forUser(userId);
        await removeDevices(txn, userId, [requester.deviceId, ...devices.map((d) => d.deviceId)]);
        return txn.memberships.forUser(userId);
      });
      presence.forget(userId);
      // Each leave is its own event; a room that refuses one (already left meanwhile) does not stop the rest.
      for (const { roomId, membership } of memberships) {
        if (membership !== 'join' && membership !== 'invite' && membership !== 'knock') continue;
        try {
          await rooms.updateMembership(roomId, userId, userId, 'leave');
        } catch (error) {
          ctx.log.warn(`deactivated ${userId} could not leave ${roomId}`, error);
        }
      }
      return { id_server_unbind_result: 'no-support' };
    }),
  ];
}
