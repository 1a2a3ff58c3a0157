/**
 * Registration (spec "Account registration"): POST /register behind
 * user-interactive auth with one m.login.dummy stage, and the username
 * availability check. A new account gets its display name (its localpart, as
 * in Synapse), the default push rules in its account data (so the first /sync
 * already carries m.push_rules) and, unless `inhibit_login`, a device and an
 * access token, all in one storage write. Registrations are rate-limited per
 * client address (rc_registration); in process there is none to limit.
 */
import { MatrixError, forbidden, invalidParam, missingParam } from '../../http/errors.js';
import { clientRoute, type RouteDefinition } from '../../http/router.js';
import { newAccessToken, newDeviceId, openSession } from '../../accounts/devices.js';
import { MAX_PASSWORD_LENGTH, hashPassword } from '../../accounts/passwords.js';
import { PUSH_RULES_TYPE, defaultPushRules, pushRulesContent } from '../../accounts/push-rules.js';
import { generateLocalpart, localpartOf, userIdForUsername } from '../../accounts/users.js';
import { optionalBoolean, optionalString } from '../../http/params.js';
import { addressKey } from '../../limits/rate-limits.js';
import { checkDeviceFields, operationOf, type AccountsDeps } from './common.js';

const REGISTER_FLOWS = [{ stages: ['m.login.dummy'] }];

export const userInUse = () => new MatrixError(400, 'M_USER_IN_USE', 'User ID already taken.');

/** Checks a password's type and length (M_BAD_JSON / M_INVALID_PARAM). */
export function checkNewPassword(password: string | undefined): void {
  if (password !== undefined && password.length > MAX_PASSWORD_LENGTH) {
    throw invalidParam(`Password may not be longer than ${MAX_PASSWORD_LENGTH} characters`);
  }
}

export function registerRoutes({ services, uia }: AccountsDeps): RouteDefinition[] {
  const { ctx, limits } = services;

  function checkRegistrationOpen(): void {
    if (!ctx.config.registrationEnabled) throw forbidden('Registration has been disabled');
  }

  return [
    // POST /_matrix/client/v3/register (spec: "Account registration")
    clientRoute('POST', '/register', 'none', async ({ request, url, query, json, remoteAddress }) => {
      checkRegistrationOpen();
      // Checked first, counted only once an account exists: the UIA round trip that precedes it is free.
      limits.check('registration', addressKey(remoteAddress));
      const kind = query.get('kind') ?? 'user';
      if (kind === 'guest') throw new MatrixError(403, 'M_GUEST_ACCESS_FORBIDDEN', 'Guest access is disabled');
      if (kind !== 'user') throw invalidParam(`Invalid kind: ${kind}`);

      const body = await json();
      const username = optionalString(body, 'username');
      const password = optionalString(body, 'password');
      const requestedDeviceId = optionalString(body, 'device_id');
      const deviceName = optionalString(body, 'initial_device_display_name');
      const inhibitLogin = optionalBoolean(body, 'inhibit_login') ?? false;
      optionalBoolean(body, 'refresh_token');
      checkNewPassword(password);
      checkDeviceFields(requestedDeviceId, deviceName);

      // The spec asks for username errors before user-interactive auth, so clients learn them first.
      let userId: string | undefined;
      if (username !== undefined) {
        userId = userIdForUsername(username, ctx.serverName);
        if (await ctx.storage.read((txn) => txn.users.get(userId!))) throw userInUse();
      }
      await uia.check({ auth: body.auth, flows: REGISTER_FLOWS, operation: operationOf(request, url), serverName: ctx.serverName });

      const passwordHash = password === undefined ? undefined : await hashPassword(ctx, password);
      const deviceId = requestedDeviceId ?? newDeviceId(ctx);
      const accessToken = newAccessToken(ctx);
      const candidates = userId !== undefined ? [userId] : Array.from({ length: 5 }, () => `@${generateLocalpart(ctx)}:${ctx.serverName}`);
      const now = ctx.clock.now();

      const registered = await ctx.storage.write(async (txn) => {
        let chosen: string | undefined;
        for (const candidate of candidates) {
          if (!(await txn.users.get(candidate))) {
            chosen = candidate;
            break;
          }
        }
        // Taken since the check above: the spec allows M_USER_IN_USE after auth too.
        if (chosen === undefined) throw userInUse();
        await txn.users.add({
          userId: chosen,
          displayname: localpartOf(chosen),
          deactivated: false,
          createdAt: now,
          ...(passwordHash !== undefined ? { passwordHash } : {}),
        });
        await txn.accountData.put(chosen, PUSH_RULES_TYPE, pushRulesContent(defaultPushRules(chosen).global));
        if (!inhibitLogin) await openSession(txn, { userId: chosen, deviceId, accessToken, displayName: deviceName, now });
        return chosen;
      });

      limits.record('registration', addressKey(remoteAddress));
      if (inhibitLogin) return { user_id: registered, home_server: ctx.serverName };
      return { user_id: registered, access_token: accessToken, device_id: deviceId, home_server: ctx.serverName };
    }),

    // GET /_matrix/client/v3/register/available (spec: "Account registration")
    clientRoute('GET', '/register/available', 'none', async ({ query }) => {
      checkRegistrationOpen();
      const username = query.get('username');
      if (username === null) throw missingParam('Missing parameter: username');
      const userId = userIdForUsername(username, ctx.serverName);
      if (await ctx.storage.read((txn) => txn.users.get(userId))) throw userInUse();
      return { available: true };
    }),
  ];
}
