/**
 * matrix-js-sdk 43 over real HTTP against `npm run homeserver` with SQLite
 * persistence; then the server is restarted from the same data directory and
 * the history, the access token and the uploaded device keys are all still there.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { httpCall, killLeftoverHomeservers, startHomeserverProcess } from '../support/homeserver-process.js';
import { runConversation } from './js-sdk-scenario.js';

afterAll(killLeftoverHomeservers);

describe('matrix-js-sdk over HTTP', () => {
  it('runs a whole conversation, and a restart keeps history, tokens and keys', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'hometab-sdk-'));
    try {
      // 200 scripted messages in a second or two are a load test, not a user: rc_message would pace them.
      const first = await startHomeserverProcess(['--data', dataDir, '--no-rate-limits']);
      const outcome = await runConversation({ baseUrl: first.url }, 'http');
      const { accessToken, userId, deviceId } = outcome.alice;
      const deviceKeys = {
        user_id: userId,
        device_id: deviceId,
        algorithms: ['m.olm.v1.curve25519-aes-sha2', 'm.megolm.v1.aes-sha2'],
        keys: { [`curve25519:${deviceId}`]: 'c'.repeat(43), [`ed25519:${deviceId}`]: 'e'.repeat(43) },
        signatures: {},
      };
      expect((await httpCall(first.url, 'POST', '/_matrix/client/v3/keys/upload', { device_keys: deviceKeys }, accessToken)).status).toBe(200);
      expect(await first.stop('SIGTERM')).toBe(true);

      const second = await startHomeserverProcess(['--data', dataDir]);
      try {
        const whoami = await httpCall(second.url, 'GET', '/_matrix/client/v3/account/whoami', undefined, accessToken);
        expect(whoami).toMatchObject({ status: 200, json: { user_id: userId, device_id: deviceId } });

        const history: string[] = [];
        let from: string | undefined;
        for (let page = 0; page < 50; page++) {
          const query = `dir=b&limit=60${from ? `&from=${encodeURIComponent(from)}` : ''}`;
          const { status, json } = await httpCall(second.url, 'GET', `/_matrix/client/v3/rooms/${encodeURIComponent(outcome.roomId)}/messages?${query}`, undefined, accessToken);
          expect(status).toBe(200);
          for (const event of json.chunk) {
            if (event.type === 'm.room.message' && !event.content['m.relates_to'] && event.content.body) history.push(event.content.body);
          }
          if (!json.end) break;
          from = json.end;
        }
        // Newest first going backwards; message 199 was redacted.
        expect(history.reverse()).toEqual(outcome.messages.slice(0, 199));

        const keys = await httpCall(second.url, 'POST', '/_matrix/client/v3/keys/query', { device_keys: { [userId]: [] } }, accessToken);
        expect(keys.json.device_keys[userId][deviceId].keys).toEqual(deviceKeys.keys);
      } finally {
        expect(await second.stop('SIGINT')).toBe(true);
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 180_000);
});
