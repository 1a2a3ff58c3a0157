/**
 * Debian's python3-matrix-nio as a second, independent client over HTTP
 * against `npm run homeserver`: it uses the r0 paths and puts the access token
 * in the query string. It logs in, syncs, joins a room, sends, and receives a
 * message sent by another user.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { httpCall, killLeftoverHomeservers, startHomeserverProcess } from '../support/homeserver-process.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./nio_client.py', import.meta.url));

function nioAvailable(): boolean {
  return existsSync('/usr/lib/python3/dist-packages/nio');
}

afterAll(killLeftoverHomeservers);

describe.skipIf(!nioAvailable() && !process.env.CI)('matrix-nio', () => {
  it('logs in, syncs, sends and receives', async () => {
    const server = await startHomeserverProcess(['--memory']);
    try {
      const register = async (username: string) =>
        (await httpCall(server.url, 'POST', '/_matrix/client/v3/register', { username, password: 'nio password', auth: { type: 'm.login.dummy' } })).json;
      const host = await register('host');
      const nioUser = await register('niouser');
      const room = await httpCall(server.url, 'POST', '/_matrix/client/v3/createRoom', { preset: 'public_chat', name: 'with nio' }, host.access_token);
      const roomId = room.json.room_id as string;

      const run = new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
        execFile(PYTHON, [SCRIPT, server.url, nioUser.user_id, 'nio password', roomId], { timeout: 60_000 }, (error, stdout, stderr) =>
          done({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });

      // Once nio has joined, say hello.
      for (let i = 0; i < 400; i++) {
        const members = await httpCall(server.url, 'GET', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/joined_members`, undefined, host.access_token);
        if (members.json.joined?.[nioUser.user_id]) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      await httpCall(server.url, 'PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/hello1`, { msgtype: 'm.text', body: 'hello nio' }, host.access_token);

      const result = await run;
      expect(result.stderr + result.stdout).not.toMatch(/Traceback/);
      expect(result.code, result.stdout + result.stderr).toBe(0);
      const report = JSON.parse(result.stdout.trim().split('\n').at(-1)!);
      expect(report.received).toContain('hello nio');

      // What nio sent is in the room, seen by the other user.
      const messages = await httpCall(server.url, 'GET', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=20`, undefined, host.access_token);
      expect(messages.json.chunk.map((e: any) => e.content?.body)).toContain('hello from nio');
    } finally {
      await server.stop();
    }
  }, 120_000);
});
