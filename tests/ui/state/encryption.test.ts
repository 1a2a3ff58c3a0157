// The state classes with end-to-end encryption, against a real homeserver in process and matrix-js-sdk
// clients with the Rust crypto (as src/app/crypto.ts starts it, with a memory store here):
// - RoomsState creates encrypted rooms when asked (m.room.encryption, Megolm, in the initial state), direct
//   chats always encrypted, and says which rooms are;
// - TimelineState shows a message whose key has not arrived as waiting for it, and the same row with its
//   text once the key arrives (the room key's to-device message is held back in transit here);
// - a history window (reading far back without the room keeping it) gets encrypted messages decrypted, as
//   the room's own timeline does;
// - RoomTrustState names the members with devices this user has not verified, and drops them once verified.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { MatrixClient } from 'matrix-js-sdk';
import { MEGOLM_ENCRYPTION, RoomsState } from '../../../src/ui/state/rooms.svelte.js';
import { TimelineState } from '../../../src/ui/state/timeline.svelte.js';
import { RoomTrustState } from '../../../src/ui/state/room-trust.svelte.js';
import { HistoryWindow } from '../../../src/ui/state/history-window.js';
import { startTestServer, type TestServer } from '../../homeserver/harness.js';
import { startCryptoClient } from '../../support/e2ee.js';
import { eventually } from './support.js';

let server: TestServer;
const clients: MatrixClient[] = [];
const states: Array<{ dispose(): void }> = [];
const keep = <T extends { dispose(): void }>(state: T): T => (states.push(state), state);

beforeEach(async () => {
  server = await startTestServer();
});
afterEach(async () => {
  for (const state of states.splice(0)) state.dispose();
  for (const client of clients.splice(0)) client.stopClient();
  await server.close();
});

async function cryptoUser(localpart: string, wrapFetch?: (fetchFn: typeof fetch) => typeof fetch): Promise<{ client: MatrixClient; rooms: RoomsState }> {
  // As src/app/boot.ts makes it (a history window needs timelineSupport).
  const client = await startCryptoClient(server, localpart, { wrapFetch, detachedPending: true, timelineSupport: true });
  clients.push(client);
  await client.setDisplayName(localpart[0]!.toUpperCase() + localpart.slice(1));
  return { client, rooms: keep(new RoomsState(client)) };
}

/**
 * A fetch that can hold back the to-device messages of /sync responses, as a slow path would: while
 * `holding`, they are taken out of each response and kept; once released they ride on the next response.
 */
function toDeviceDelay() {
  const held: unknown[] = [];
  const control = { holding: true, held };
  const wrap = (fetchFn: typeof fetch): typeof fetch =>
    (async (input: RequestInfo | URL, init?: RequestInit) => {
      const response = await fetchFn(input, init);
      const url = new URL(input instanceof Request ? input.url : String(input));
      if (!url.pathname.endsWith('/sync') || !response.ok) return response;
      const body = (await response.json()) as { to_device?: { events?: unknown[] } };
      const events = body.to_device?.events ?? [];
      if (control.holding) {
        held.push(...events);
        body.to_device = { events: [] };
      } else {
        body.to_device = { events: [...held.splice(0), ...events] };
      }
      return new Response(JSON.stringify(body), { status: response.status, headers: response.headers });
    }) as typeof fetch;
  return { control, wrap };
}

/** A fetch whose /sync responses carry no m.room.encrypted timeline events (to-device messages pass). */
function withoutEncryptedTimelineEvents(fetchFn: typeof fetch): typeof fetch {
  return (async (input: RequestInfo | URL, init?: RequestInit) => {
    const response = await fetchFn(input, init);
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (!url.pathname.endsWith('/sync') || !response.ok) return response;
    const body = (await response.json()) as { rooms?: { join?: Record<string, { timeline?: { events?: Array<{ type?: string }> } }> } };
    for (const joined of Object.values(body.rooms?.join ?? {})) {
      if (joined.timeline?.events) joined.timeline.events = joined.timeline.events.filter((event) => event.type !== 'm.room.encrypted');
    }
    return new Response(JSON.stringify(body), { status: response.status, headers: response.headers });
  }) as typeof fetch;
}

async function encryptionOf(client: MatrixClient, roomId: string): Promise<unknown> {
  const { json } = await server.call('GET', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state/m.room.encryption/`, undefined, client.getAccessToken()!);
  return json;
}

type CryptoUser = Awaited<ReturnType<typeof cryptoUser>>;

/** Ann starts a direct chat with Ben (encrypted, as direct chats always are), Ben accepts, and Ann sees him join. */
async function directChat(ann: CryptoUser, ben: CryptoUser): Promise<string> {
  const roomId = await ann.rooms.startDirect(ben.client.getUserId()!);
  await eventually('ben is invited', () => ben.rooms.invites.some((r) => r.id === roomId));
  await ben.rooms.accept(roomId);
  await eventually('ann sees ben join', () => ann.client.getRoom(roomId)?.getMember(ben.client.getUserId()!)?.membership === 'join', 20_000);
  return roomId;
}

describe('encrypted rooms in the state classes', () => {
  it('creates encrypted rooms when asked and direct chats always encrypted, and marks them in the room list', async () => {
    const ann = await cryptoUser('ann');
    const ben = await cryptoUser('ben');
    const plain = await ann.rooms.create({ name: 'Open' });
    const secret = await ann.rooms.create({ name: 'Secret', encrypted: true });
    const direct = await ann.rooms.startDirect(ben.client.getUserId()!);
    expect(await encryptionOf(ann.client, secret)).toEqual(MEGOLM_ENCRYPTION.content);
    expect(await encryptionOf(ann.client, direct)).toEqual({ algorithm: 'm.megolm.v1.aes-sha2' });
    expect((await encryptionOf(ann.client, plain)) as { errcode?: string }).toMatchObject({ errcode: 'M_NOT_FOUND' });
    await eventually('the list marks the encrypted rooms', () => ann.rooms.rooms.length === 3 && ann.rooms.rooms.every((r) => r.encrypted === (r.id !== plain)));
  });

  it('shows a message waiting for its key, and the same row with the text once the key arrives', async () => {
    const ann = await cryptoUser('ann');
    const delay = toDeviceDelay();
    delay.control.holding = false;
    const ben = await cryptoUser('ben', delay.wrap);
    const roomId = await ann.rooms.create({ name: 'Secret', encrypted: true });
    await ann.rooms.invite(roomId, ben.client.getUserId()!);
    await eventually('ben is invited', () => ben.rooms.invites.some((r) => r.id === roomId));
    await ben.rooms.accept(roomId);
    const annTimeline = keep(new TimelineState(ann.client, roomId));
    const benTimeline = keep(new TimelineState(ben.client, roomId));
    await eventually('ann sees ben join', () => ann.client.getRoom(roomId)?.getMember(ben.client.getUserId()!)?.membership === 'join', 20_000);

    await annTimeline.send('the first secret');
    await eventually('ben reads the first secret', () => benTimeline.messages.some((m) => m.body === 'the first secret' && !m.awaitingKey), 20_000);

    // A new Megolm session whose key is held back on its way to Ben.
    delay.control.holding = true;
    await ann.client.getCrypto()!.forceDiscardSession(roomId);
    await annTimeline.send('the second secret');
    await eventually('the key to the second message is held', () => delay.control.held.length > 0, 20_000);
    await eventually('ben has a row waiting for its key', () => benTimeline.messages.some((m) => m.awaitingKey), 20_000);
    const waiting = benTimeline.messages.find((m) => m.awaitingKey)!;
    expect(waiting).toMatchObject({ sender: ann.client.getUserId(), body: '', deleted: false });
    expect(benTimeline.messages.some((m) => m.body === 'the second secret')).toBe(false);
    // Ann sees her own message (her device holds the session).
    expect(annTimeline.messages.some((m) => m.body === 'the second secret' && !m.awaitingKey)).toBe(true);

    // The key arrives with Ben's next sync: the same row now has the text.
    delay.control.holding = false;
    await ann.client.sendTyping(roomId, true, 1_000);
    await eventually('the row is decrypted in place', () => benTimeline.messages.some((m) => m.id === waiting.id && m.body === 'the second secret' && !m.awaitingKey), 20_000);
    expect(benTimeline.messages.filter((m) => m.awaitingKey)).toEqual([]);
    expect(benTimeline.messages.map((m) => m.body)).toEqual(['the first secret', 'the second secret']);
  });

  it('decrypts the encrypted messages a history window pages in', async () => {
    const ann = await cryptoUser('ann');
    // Ben's syncs leave the room's encrypted events out (his keys still come): his room never holds those
    // messages, so the window's events are mapped, and decrypted, anew.
    const ben = await cryptoUser('ben', withoutEncryptedTimelineEvents);
    const roomId = await ann.rooms.create({ name: 'Secret', encrypted: true });
    await ann.rooms.invite(roomId, ben.client.getUserId()!);
    await eventually('ben is invited', () => ben.rooms.invites.some((r) => r.id === roomId));
    await ben.rooms.accept(roomId);
    await eventually('ann sees ben join', () => ann.client.getRoom(roomId)?.getMember(ben.client.getUserId()!)?.membership === 'join', 20_000);
    const sent: string[] = [];
    for (let i = 0; i < 12; i++) sent.push((await ann.client.sendTextMessage(roomId, `secret ${i}`)).event_id);
    const room = ben.client.getRoom(roomId)!;
    expect(sent.some((id) => room.findEventById(id))).toBe(false);

    const history = await HistoryWindow.open(ben.client, room, sent.at(-1)!);
    while (history.canGoBack) await history.older(5);
    const bodies = () => history.events().filter((e) => e.getWireType() === 'm.room.encrypted').map((e) => (e.getContent() as { body?: string }).body);
    await eventually('the window decrypts them', () => bodies().length === 12 && bodies().every((b) => b !== undefined), 20_000);
    expect(bodies()).toEqual(Array.from({ length: 12 }, (_, i) => `secret ${i}`));
    expect(sent.some((id) => room.findEventById(id))).toBe(false);
  });

  it('typing in an encrypted room shares a new room key before Send, so the send only encrypts; the typing notice stops after the message', async () => {
    const sendsToDevice: string[] = [];
    const ann = await cryptoUser('ann', (fetchFn) =>
      (async (input: RequestInfo | URL, init?: RequestInit) => {
        const path = new URL(input instanceof Request ? input.url : String(input)).pathname;
        if (path.includes('/sendToDevice/') || path.includes('/typing/') || path.includes('/send/')) sendsToDevice.push(path);
        return fetchFn(input, init);
      }) as typeof fetch);
    const ben = await cryptoUser('ben');
    const roomId = await directChat(ann, ben);
    const annTimeline = keep(new TimelineState(ann.client, roomId));
    const benTimeline = keep(new TimelineState(ben.client, roomId));

    // No session yet: typing makes one and sends its key to Ben's device, before anything is sent.
    annTimeline.draft = 'hello';
    await annTimeline.setTyping(true);
    await eventually('the room key goes out while Ann types', () => sendsToDevice.some((p) => p.includes('/sendToDevice/m.room.encrypted/')), 20_000);
    const keysShared = sendsToDevice.filter((p) => p.includes('/sendToDevice/')).length;
    await annTimeline.send('hello');
    await eventually('ben reads it', () => benTimeline.messages.some((m) => m.body === 'hello' && !m.awaitingKey), 20_000);
    // The send reused the session typing had shared: no key went out with it.
    expect(sendsToDevice.filter((p) => p.includes('/sendToDevice/')).length).toBe(keysShared);
    // The typing notice stopped after the message went, not ahead of it.
    await eventually('the typing notice stops', () => sendsToDevice.filter((p) => p.includes('/typing/')).length === 2);
    const order = sendsToDevice.filter((p) => !p.includes('/sendToDevice/')).map((p) => (p.includes('/typing/') ? 'typing' : 'message'));
    expect(order).toEqual(['typing', 'message', 'typing']);
  });

  it('names the members whose devices are not verified, and drops them once verified', async () => {
    const ann = await cryptoUser('ann');
    const ben = await cryptoUser('ben');
    const roomId = await directChat(ann, ben);

    const trust = keep(new RoomTrustState(ann.client, roomId));
    await trust.refresh();
    expect(trust.checked).toBe(true);
    expect(trust.unverified).toEqual([{ userId: ben.client.getUserId(), name: 'Ben', devices: 1 }]);

    // An unencrypted room has nothing to warn about.
    const plain = await ann.rooms.create({ name: 'Open' });
    const plainTrust = keep(new RoomTrustState(ann.client, plain));
    await plainTrust.refresh();
    expect(plainTrust.unverified).toEqual([]);

    await ann.client.getCrypto()!.setDeviceVerified(ben.client.getUserId()!, ben.client.getDeviceId()!, true);
    await eventually('the warning goes once the device is verified', () => trust.unverified.length === 0, 20_000);
  });
});
