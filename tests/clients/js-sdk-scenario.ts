/**
 * One conversation between two matrix-js-sdk 43 clients, driven exactly as an
 * app drives the SDK: register, create a room, invite, join, 200 messages,
 * paginate the whole history back from a fresh client, edit, redact, receipts,
 * typing, display names, leave, kick, ban. Run in process (fetchFn straight
 * into the homeserver) and over HTTP against `npm run homeserver`.
 */
import { expect } from 'vitest';
import {
  ClientEvent,
  createClient,
  Direction,
  EventType,
  MsgType,
  Preset,
  type MatrixClient,
  type MatrixEvent,
  type Room,
} from 'matrix-js-sdk';
import { logger } from 'matrix-js-sdk/lib/logger.js';
import type { Logger as LogLevelLogger } from 'loglevel';

// The SDK logs every sync at info level; keep test output readable.
(logger as unknown as LogLevelLogger).setLevel('warn');

export interface ScenarioTarget {
  baseUrl: string;
  fetchFn?: typeof globalThis.fetch;
}

export async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function registerClient(target: ScenarioTarget, localpart: string): Promise<MatrixClient> {
  const anonymous = createClient({ baseUrl: target.baseUrl, fetchFn: target.fetchFn });
  const response = await anonymous.registerRequest({ username: localpart, password: 'hunter2 hunter2', auth: { type: 'm.login.dummy' } });
  return createClient({
    baseUrl: target.baseUrl,
    fetchFn: target.fetchFn,
    userId: response.user_id,
    accessToken: response.access_token!,
    deviceId: response.device_id!,
  });
}

export async function startAndSync(client: MatrixClient): Promise<void> {
  const prepared = new Promise<void>((resolve, reject) => {
    client.on(ClientEvent.Sync, (state, _prev, data) => {
      if (state === 'PREPARED') resolve();
      if (state === 'ERROR') reject(data?.error ?? new Error('sync error'));
    });
  });
  await client.startClient({ initialSyncLimit: 20, lazyLoadMembers: true });
  await prepared;
}

function bodies(events: MatrixEvent[]): string[] {
  return events.filter((e) => e.getType() === EventType.RoomMessage && !e.isRedacted() && !e.isRelation()).map((e) => e.getContent().body as string);
}

export interface ConversationOutcome {
  roomId: string;
  alice: { userId: string; accessToken: string; deviceId: string };
  /** The message bodies in the order they were sent. */
  messages: string[];
}

export async function runConversation(target: ScenarioTarget, tag: string): Promise<ConversationOutcome> {
  const alice = await registerClient(target, `alice_${tag}`);
  const bob = await registerClient(target, `bob_${tag}`);
  const clients: MatrixClient[] = [alice, bob];
  try {
    await Promise.all([startAndSync(alice), startAndSync(bob)]);
    const aliceId = alice.getUserId()!;
    const bobId = bob.getUserId()!;

    const { room_id: roomId } = await alice.createRoom({ name: 'Planning', topic: 'where to go', preset: Preset.PrivateChat });
    await alice.invite(roomId, bobId);
    await waitFor('bob sees the invite', () => bob.getRoom(roomId)?.getMyMembership() === 'invite');
    await bob.joinRoom(roomId);
    await waitFor('alice sees bob join', () => alice.getRoom(roomId)?.getMember(bobId)?.membership === 'join');
    expect(bob.getRoom(roomId)!.name).toBe('Planning');

    // 200 messages, alternating senders, each side sending in order.
    const expected: string[] = [];
    for (let i = 0; i < 200; i++) {
      const sender = i % 2 === 0 ? alice : bob;
      const body = `message ${i} from ${i % 2 === 0 ? 'alice' : 'bob'}`;
      expected.push(body);
      await sender.sendMessage(roomId, { msgtype: MsgType.Text, body });
    }
    for (const client of clients) {
      await waitFor(`${client.getUserId()} sees all 200`, () => bodies(client.getRoom(roomId)!.getLiveTimeline().getEvents()).includes('message 199 from bob'));
    }

    // A fresh client for bob paginates back to the room's creation: every message, in order, once.
    const bobAgain = createClient({ baseUrl: target.baseUrl, fetchFn: target.fetchFn, userId: bobId, accessToken: bob.getAccessToken()!, deviceId: bob.getDeviceId()! });
    clients.push(bobAgain);
    await startAndSync(bobAgain);
    const room: Room = bobAgain.getRoom(roomId)!;
    let guard = 0;
    while (room.getLiveTimeline().getPaginationToken(Direction.Backward) !== null && guard++ < 100) {
      await bobAgain.scrollback(room, 30);
    }
    const history = room.getLiveTimeline().getEvents();
    expect(history[0]!.getType()).toBe(EventType.RoomCreate);
    expect(bodies(history)).toEqual(expected);
    const ids = history.map((e) => e.getId());
    expect(new Set(ids).size).toBe(ids.length);

    // Edit and redact.
    const target0 = room.getLiveTimeline().getEvents().find((e) => e.getContent().body === 'message 198 from alice')!;
    await alice.sendMessage(roomId, {
      msgtype: MsgType.Text,
      body: '* message 198, edited',
      'm.new_content': { msgtype: MsgType.Text, body: 'message 198, edited' },
      'm.relates_to': { rel_type: 'm.replace', event_id: target0.getId()! },
    } as never);
    await waitFor('bob sees the edit', () => {
      const original = bob.getRoom(roomId)!.findEventById(target0.getId()!);
      return original?.replacingEvent()?.getContent()['m.new_content']?.body === 'message 198, edited';
    });
    const toRedact = bob.getRoom(roomId)!.getLiveTimeline().getEvents().find((e) => e.getContent().body === 'message 199 from bob')!;
    await bob.redactEvent(roomId, toRedact.getId()!);
    await waitFor('alice sees the redaction', () => alice.getRoom(roomId)!.findEventById(toRedact.getId()!)?.isRedacted());
    const fetched = await alice.fetchRoomEvent(roomId, toRedact.getId()!);
    expect(fetched.content).toEqual({});

    // Receipts and typing.
    const lastFromAlice = bob.getRoom(roomId)!.getLiveTimeline().getEvents().filter((e) => e.getSender() === aliceId).at(-1)!;
    await bob.sendReadReceipt(lastFromAlice);
    await waitFor('alice sees bob\'s receipt', () => alice.getRoom(roomId)!.getEventReadUpTo(bobId) === lastFromAlice.getId());
    await alice.sendTyping(roomId, true, 30_000);
    await waitFor('bob sees alice typing', () => bob.getRoom(roomId)!.getMember(aliceId)?.typing === true);
    await alice.sendTyping(roomId, false, 0);
    await waitFor('bob sees alice stop typing', () => bob.getRoom(roomId)!.getMember(aliceId)?.typing === false);

    // Display names.
    await bob.setDisplayName('Bobby');
    await waitFor('alice sees the new name', () => alice.getRoom(roomId)!.getMember(bobId)?.name === 'Bobby');

    // Leave, then kick and ban.
    await bob.leave(roomId);
    await waitFor('alice sees bob leave', () => alice.getRoom(roomId)!.getMember(bobId)?.membership === 'leave');
    await alice.invite(roomId, bobId);
    await waitFor('bob is invited again', () => bob.getRoom(roomId)?.getMyMembership() === 'invite');
    await bob.joinRoom(roomId);
    await waitFor('bob is back', () => alice.getRoom(roomId)!.getMember(bobId)?.membership === 'join');
    await alice.kick(roomId, bobId, 'too chatty');
    await waitFor('bob sees the kick', () => bob.getRoom(roomId)?.getMyMembership() === 'leave');
    await alice.ban(roomId, bobId, 'still too chatty');
    await waitFor('alice sees the ban', () => alice.getRoom(roomId)!.getMember(bobId)?.membership === 'ban');
    // Synapse refuses a banned user's join with 403 M_BAD_STATE; so do we.
    await expect(bob.joinRoom(roomId)).rejects.toMatchObject({ httpStatus: 403, errcode: 'M_BAD_STATE' });
    await alice.unban(roomId, bobId);
    await waitFor('alice sees the unban', () => alice.getRoom(roomId)!.getMember(bobId)?.membership === 'leave');
    return {
      roomId,
      alice: { userId: aliceId, accessToken: alice.getAccessToken()!, deviceId: alice.getDeviceId()! },
      messages: expected,
    };
  } finally {
    for (const client of clients) client.stopClient();
  }
}
