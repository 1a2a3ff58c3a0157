/**
 * Helpers for the accounts tests: a test server with cheap password hashing,
 * and a snapshot of everything an accounts request can change, to show that a
 * refused request changed nothing.
 */
import type { HomeserverConfig } from '../../../src/homeserver/index.js';
import type { Storage } from '../../../src/storage/types.js';
import { startTestServer, type TestServer } from '../harness.js';

export async function accountsServer(config: Partial<HomeserverConfig> = {}): Promise<TestServer> {
  // 1,000 iterations keep tests fast; the hashing code is the same as with the default 600,000.
  return startTestServer({ config: { passwordHashIterations: 1000, ...config } });
}

/** Users, devices, tokens, account data, filters and the stream position, as plain JSON. */
export async function snapshot(storage: Storage, userIds: string[]): Promise<unknown> {
  return storage.read(async (txn) => {
    const out: Record<string, unknown> = { position: await txn.stream.current(), users: await txn.users.list() };
    for (const userId of userIds) {
      const devices = await txn.devices.forUser(userId);
      const tokens = [];
      for (const d of devices) tokens.push(...(await txn.accessTokens.forDevice(userId, d.deviceId)));
      out[userId] = {
        devices,
        tokens,
        accountData: await txn.accountData.changes(userId, { dir: 'f' }),
        filters: [await txn.filters.get(userId, '1'), await txn.filters.get(userId, '2')],
        deviceKeys: await txn.deviceKeys.forUser(userId),
      };
    }
    return out;
  });
}

export const V3 = '/_matrix/client/v3';
