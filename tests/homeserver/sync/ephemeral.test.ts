// Receipts, read markers, typing and unread counts, as /sync shows them.
import { afterEach, describe, expect, test } from 'vitest';
import { createMemoryStorage } from '../../../src/storage/memory/index.js';
import { startTestServer, type TestServer } from '../harness.js';
import { enc, setup, userOf, type User } from './helpers.js';

let server: TestServer;
afterEach(async () => server?.close());

async function room(): Promise<{ alice: User; bob: User; roomId: string }> {
  const { server: s, users } = await setup('alice', 'bob');
  server = s;
  const [alice, bob] = users as [User, User];
  const roomId = await alice.createRoom({ preset: 'public_chat' });
  await bob.join(roomId);
  return { alice, bob, roomId };
}

const receipt = (user: User, roomId: string, type: string, eventId: string, body: Record<string, unknown> = {}) =>
  user.call('POST', `/rooms/${enc(roomId)}/receipt/${enc(type)}/${enc(eventId)}`, body);

describe('receipts', () => {
  test('m.read reaches the other member; m.read.private only its owner; unread counts follow', async () => {
    const { alice, bob, roomId } = await room();
    const first = await alice.ok('PUT', `/rooms/${enc(roomId)}/send/m.room.message/a1`, { msgtype: 'm.text', body: 'one' });
    const second = await alice.ok('PUT', `/rooms/${enc(roomId)}/send/m.room.message/a2`, { msgtype: 'm.text', body: 'two' });
    const bobFirst = await bob.sync();
    expect(bobFirst.rooms.join[roomId].unread_notifications.notification_count).toBe(2);
    const aliceFirst = await alice.sync();

    expect((await receipt(bob, roomId, 'm.read', first.event_id)).status).toBe(200);
    const aliceNext = await alice.sync({ since: aliceFirst.next_batch });
    const receipts = aliceNext.rooms.join[roomId].ephemeral.events.find((e: any) => e.type === 'm.receipt');
    expect(Object.keys(receipts.content)).toEqual([first.event_id]);
    expect(receipts.content[first.event_id]['m.read'][bob.userId].ts).toEqual(expect.any(Number));
    const bobNext = await bob.sync({ since: bobFirst.next_batch });
    expect(bobNext.rooms.join[roomId].unread_notifications).toEqual({ notification_count: 1, highlight_count: 0 });

    expect((await receipt(bob, roomId, 'm.read.private', second.event_id)).status).toBe(200);
    const aliceThird = await alice.sync({ since: aliceNext.next_batch, timeout: 0 });
    expect(aliceThird.rooms.join[roomId]).toBeUndefined();
    const bobThird = await bob.sync({ since: bobNext.next_batch });
    const own = bobThird.rooms.join[roomId].ephemeral.events.find((e: any) => e.type === 'm.receipt');
    expect(own.content[second.event_id]['m.read.private'][bob.userId]).toBeDefined();
    expect(bobThird.rooms.join[roomId].unread_notifications.notification_count).toBe(0);

    // Initial syncs carry every visible receipt.
    const aliceInitial = await alice.sync();
    const all = aliceInitial.rooms.join[roomId].ephemeral.events.find((e: any) => e.type === 'm.receipt');
    expect(all.content[first.event_id]['m.read'][bob.userId]).toBeDefined();
    expect(all.content[second.event_id]).toBeUndefined();
  });

  test('threaded receipts carry thread_id; receipts never move backwards', async () => {
    const { alice, bob, roomId } = await room();
    const older = await alice.send(roomId, 'older');
    const newer = await alice.send(roomId, 'newer');
    expect((await receipt(bob, roomId, 'm.read', newer, { thread_id: 'main' })).status).toBe(200);
    // A receipt for the main timeline clears its unread count like an unthreaded one.
    expect((await bob.sync()).rooms.join[roomId].unread_notifications.notification_count).toBe(0);
    expect((await receipt(bob, roomId, 'm.read', newer)).status).toBe(200);
    const before = await server.storage.read((txn) => txn.receipts.forRoom(roomId));
    expect((await receipt(bob, roomId, 'm.read', older)).status).toBe(200);
    expect(await server.storage.read((txn) => txn.receipts.forRoom(roomId))).toEqual(before);
    const sync = await alice.sync();
    const content = sync.rooms.join[roomId].ephemeral.events.find((e: any) => e.type === 'm.receipt').content;
    expect(content[newer]['m.read'][bob.userId].thread_id).toBeUndefined();
    expect(before.find((r) => r.threadId === 'main')).toMatchObject({ eventId: newer });
  });

  test('read markers: m.fully_read becomes room account data, with m.read in the same request', async () => {
    const { alice, bob, roomId } = await room();
    const eventId = await alice.send(roomId, 'hello');
    const first = await bob.sync();
    expect((await bob.call('POST', `/rooms/${enc(roomId)}/read_markers`, { 'm.fully_read': eventId, 'm.read': eventId })).status).toBe(200);
    const next = await bob.sync({ since: first.next_batch });
    const joined = next.rooms.join[roomId];
    expect(joined.account_data.events).toEqual([{ type: 'm.fully_read', content: { event_id: eventId } }]);
    expect(joined.ephemeral.events.find((e: any) => e.type === 'm.receipt').content[eventId]['m.read'][bob.userId]).toBeDefined();
    expect(joined.unread_notifications.notification_count).toBe(0);
    expect((await receipt(bob, roomId, 'm.fully_read', eventId)).status).toBe(200);
  });

  test('refusals leave storage untouched', async () => {
    const { alice, bob, roomId } = await room();
    const eventId = await alice.send(roomId, 'x');
    const eve = userOf(server, await server.register('eve'));
    const snapshot = () => server.storage.read(async (txn) => [await txn.receipts.forRoom(roomId), await txn.accountData.list(bob.userId, roomId)]);
    const before = await snapshot();
    expect(await receipt(bob, roomId, 'm.unknown', eventId)).toMatchObject({ status: 400, json: { errcode: 'M_INVALID_PARAM' } });
    expect(await receipt(bob, roomId, 'm.read', eventId, { thread_id: 5 })).toMatchObject({ status: 400, json: { errcode: 'M_INVALID_PARAM' } });
    expect(await receipt(bob, roomId, 'm.fully_read', eventId, { thread_id: 'main' })).toMatchObject({ status: 400, json: { errcode: 'M_INVALID_PARAM' } });
    expect(await receipt(bob, roomId, 'm.read', '$missing')).toMatchObject({ status: 404, json: { errcode: 'M_NOT_FOUND' } });
    expect(await receipt(eve, roomId, 'm.read', eventId)).toMatchObject({ status: 403, json: { errcode: 'M_FORBIDDEN' } });
    expect(await bob.call('POST', `/rooms/${enc(roomId)}/read_markers`, { 'm.read': 12 })).toMatchObject({ status: 400, json: { errcode: 'M_BAD_JSON' } });
    expect(await bob.call('POST', `/rooms/${enc(roomId)}/read_markers`, { 'm.fully_read': eventId, 'm.read': '$missing' })).toMatchObject({ status: 404 });
    expect(await bob.call('POST', `/rooms/${enc(roomId)}/receipt/m.read/${enc(eventId)}`, '{not json')).toMatchObject({ status: 400, json: { errcode: 'M_NOT_JSON' } });
    expect(await snapshot()).toEqual(before);
  });
});

describe('unread counts', () => {
  test('mentions highlight: m.mentions, display name, localpart; notices and edits do not count', async () => {
    const { alice, bob, roomId } = await room();
    await bob.send(roomId, 'plain');
    await bob.send(roomId, 'hey alice, look');
    await bob.send(roomId, { msgtype: 'm.text', body: 'no name here', 'm.mentions': { user_ids: [alice.userId] } });
    await bob.send(roomId, { msgtype: 'm.text', body: 'alice but mentions say otherwise', 'm.mentions': {} });
    await bob.send(roomId, { msgtype: 'm.notice', body: 'a bot notice for alice' });
    const edited = await bob.send(roomId, 'typo');
    await bob.send(roomId, { msgtype: 'm.text', body: '* fixed', 'm.new_content': { msgtype: 'm.text', body: 'fixed' }, 'm.relates_to': { rel_type: 'm.replace', event_id: edited } });
    const sync = await alice.sync();
    expect(sync.rooms.join[roomId].unread_notifications).toEqual({ notification_count: 5, highlight_count: 2 });

    // Alice's own message marks everything before it read.
    await alice.send(roomId, 'caught up');
    await bob.send(roomId, 'one more');
    const next = await alice.sync({ since: sync.next_batch });
    expect(next.rooms.join[roomId].unread_notifications).toEqual({ notification_count: 1, highlight_count: 0 });
  });
});

describe('unread counts over time', () => {
  test('counts kept up to date sync after sync equal counts made afresh', async () => {
    const storage = createMemoryStorage();
    server = await startTestServer({ storage });
    const alice = userOf(server, await server.register('alice'));
    const bob = userOf(server, await server.register('bob'));
    const roomId = await alice.createRoom({ preset: 'public_chat' });
    await bob.join(roomId);
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const sent: string[] = [];
    let since = (await alice.sync()).next_batch;
    for (let step = 0; step < 60; step++) {
      const r = random();
      if (r < 0.45) sent.push(await bob.send(roomId, 'chatter'));
      else if (r < 0.6) sent.push(await bob.send(roomId, 'hey alice'));
      else if (r < 0.7) sent.push(await bob.send(roomId, { msgtype: 'm.notice', body: 'bot' }));
      else if (r < 0.8) sent.push(await alice.send(roomId, 'me'));
      else if (sent.length > 0) {
        const target = sent[Math.floor(random() * sent.length)]!;
        await alice.ok('POST', `/rooms/${enc(roomId)}/receipt/m.read/${enc(target)}`, {});
      }
      const next = await alice.sync({ since });
      since = next.next_batch;
      if (!next.rooms.join[roomId]) continue;
      // A second homeserver over the same storage has no caches: it counts from scratch.
      const fresh = await startTestServer({ storage });
      const freshAlice = userOf(fresh, { userId: alice.userId, accessToken: alice.accessToken, deviceId: alice.deviceId });
      const expected = (await freshAlice.sync()).rooms.join[roomId].unread_notifications;
      await fresh.homeserver.close();
      expect({ step, counts: next.rooms.join[roomId].unread_notifications }).toEqual({ step, counts: expected });
    }
  });
});

describe('typing', () => {
  test('start, stop and expiry reach both members; refusals', async () => {
    const { alice, bob, roomId } = await room();
    const first = await alice.sync();
    const path = `/rooms/${enc(roomId)}/typing/${enc(bob.userId)}`;
    expect((await bob.call('PUT', path, { typing: true, timeout: 30_000 })).status).toBe(200);
    const typing = await alice.sync({ since: first.next_batch });
    expect(typing.rooms.join[roomId].ephemeral.events).toEqual([{ type: 'm.typing', content: { user_ids: [bob.userId] } }]);
    // An initial sync shows who is typing now.
    expect((await alice.sync()).rooms.join[roomId].ephemeral.events).toContainEqual({ type: 'm.typing', content: { user_ids: [bob.userId] } });

    expect((await bob.call('PUT', path, { typing: false })).status).toBe(200);
    const stopped = await alice.sync({ since: typing.next_batch });
    expect(stopped.rooms.join[roomId].ephemeral.events).toEqual([{ type: 'm.typing', content: { user_ids: [] } }]);

    expect((await bob.call('PUT', path, { typing: true, timeout: 20 })).status).toBe(200);
    const started = await alice.sync({ since: stopped.next_batch });
    const expired = await alice.sync({ since: started.next_batch, timeout: 5000 });
    expect(expired.rooms.join[roomId].ephemeral.events).toEqual([{ type: 'm.typing', content: { user_ids: [] } }]);

    expect(await alice.call('PUT', path, { typing: true })).toMatchObject({ status: 403, json: { errcode: 'M_FORBIDDEN' } });
    expect(await bob.call('PUT', path, { typing: 'yes' })).toMatchObject({ status: 400, json: { errcode: 'M_BAD_JSON' } });
    expect(await bob.call('PUT', path, { typing: true, timeout: 'long' })).toMatchObject({ status: 400, json: { errcode: 'M_BAD_JSON' } });
    const other = await alice.createRoom({});
    expect(await bob.call('PUT', `/rooms/${enc(other)}/typing/${enc(bob.userId)}`, { typing: true })).toMatchObject({ status: 403, json: { errcode: 'M_FORBIDDEN' } });
  });

  test('leaving the room stops typing', async () => {
    const { alice, bob, roomId } = await room();
    await bob.ok('PUT', `/rooms/${enc(roomId)}/typing/${enc(bob.userId)}`, { typing: true, timeout: 30_000 });
    const first = await alice.sync();
    expect(first.rooms.join[roomId].ephemeral.events).toContainEqual({ type: 'm.typing', content: { user_ids: [bob.userId] } });
    await bob.leave(roomId);
    const next = await alice.sync({ since: first.next_batch });
    expect(next.rooms.join[roomId].ephemeral.events).toContainEqual({ type: 'm.typing', content: { user_ids: [] } });
  });
});
