/**
 * The remote-media scenario's moves, the same over every way of wiring
 * servers (in process, the memory network, real libp2p): a room shared by a
 * user on each server, an image uploaded through matrix-js-sdk, and downloads
 * through the client-server API's authenticated and legacy paths.
 */
import { readFileSync } from 'node:fs';
import { createClient, type MatrixClient } from 'matrix-js-sdk';
import { expect } from 'vitest';
import type { TestServer } from '../homeserver/harness.js';

export const IMAGE = new Uint8Array(readFileSync(new URL('../homeserver/federation/fixtures/noise-300.png', import.meta.url)));

export interface MediaUser {
  server: TestServer;
  userId: string;
  accessToken: string;
  client: MatrixClient;
}

/** A user on `server` and a matrix-js-sdk client for it (in process, fetchFn into handleClient). */
export async function mediaUser(server: TestServer, localpart: string): Promise<MediaUser> {
  const { userId, accessToken, deviceId } = await server.register(localpart);
  const client = createClient({
    baseUrl: server.baseUrl,
    fetchFn: ((input: RequestInfo | URL, init?: RequestInit) => server.homeserver.handleClient(new Request(input, init))) as typeof fetch,
    userId,
    accessToken,
    deviceId,
  });
  return { server, userId, accessToken, client };
}

const clientV3 = (user: MediaUser, method: string, path: string, body?: unknown) => user.server.call(method, '/_matrix/client/v3' + path, body, user.accessToken);

/**
 * `owner` creates a room and invites the others, who join in turn through the
 * owner's server; `settle` lets the wiring deliver (a pump, quiesce, a wait).
 */
export async function shareRoom(owner: MediaUser, others: MediaUser[], settle: () => Promise<void>): Promise<string> {
  const created = await clientV3(owner, 'POST', '/createRoom', { preset: 'private_chat', name: 'media' });
  expect(created.status, JSON.stringify(created.json)).toBe(200);
  const roomId = created.json.room_id as string;
  for (const other of others) {
    const invited = await clientV3(owner, 'POST', `/rooms/${encodeURIComponent(roomId)}/invite`, { user_id: other.userId });
    expect(invited.status, JSON.stringify(invited.json)).toBe(200);
    await settle();
    const joined = await clientV3(other, 'POST', `/join/${encodeURIComponent(roomId)}?server_name=${owner.server.serverName}`, {});
    expect(joined.status, JSON.stringify(joined.json)).toBe(200);
    await settle();
  }
  return roomId;
}

/** Uploads the fixture image through matrix-js-sdk; returns its mxc URI. */
export async function uploadImage(user: MediaUser): Promise<string> {
  const { content_uri: uri } = await user.client.uploadContent(IMAGE, { name: 'noise.png', type: 'image/png' });
  expect(uri).toMatch(new RegExp(`^mxc://${user.server.serverName}/`));
  return uri;
}

/** GET of the client API URL matrix-js-sdk builds for `mxc` (authenticated media unless `legacy`), with the user's token. */
export async function download(user: MediaUser, mxc: string, options: { legacy?: boolean; thumbnail?: boolean } = {}): Promise<Response> {
  const url = options.thumbnail
    ? user.client.mxcUrlToHttp(mxc, 64, 64, 'scale', false, true, !options.legacy)!
    : user.client.mxcUrlToHttp(mxc, undefined, undefined, undefined, false, true, !options.legacy)!;
  expect(url, 'matrix-js-sdk builds a URL').toBeTruthy();
  return user.server.homeserver.handleClient(new Request(url, { headers: { authorization: `Bearer ${user.accessToken}` } }));
}

/** Downloads and checks that the bytes are the fixture's, with its type. */
export async function expectImage(user: MediaUser, mxc: string, options: { legacy?: boolean; thumbnail?: boolean } = {}): Promise<void> {
  const response = await download(user, mxc, options);
  if (response.status !== 200) throw new Error(`download of ${mxc} on ${user.server.serverName.slice(0, 8)}: ${response.status} ${await response.text()}`);
  expect(response.headers.get('content-type')).toBe('image/png');
  const bytes = new Uint8Array(await response.arrayBuffer());
  expect(bytes.byteLength).toBe(IMAGE.byteLength);
  expect(Buffer.from(bytes).equals(Buffer.from(IMAGE))).toBe(true);
}

/** The media ID of an mxc URI. */
export const mediaIdOf = (mxc: string) => mxc.split('/').pop()!;
