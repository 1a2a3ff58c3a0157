// Sending: messages with transaction IDs, state events, redactions, size limits, concurrency.
import { afterEach, describe, expect, test } from 'vitest';
import type { TestServer } from '../harness.js';
import { enc, expectUnchanged, setup, stateOf, withUsers } from './helpers.js';

let server: TestServer;
afterEach(async () => server?.close());

describe('PUT /rooms/{roomId}/send/{eventType}/{txnId}', () => {
  test('stores the event; a replayed transaction ID returns the same event without a new one', async () => {
    const { server: s, clients: [alice] } = await setup('alice');
    server = s;
    const roomId = await alice!.createRoom();
    const path = `/rooms/${enc(roomId)}/send/m.room.message/txn-1`;
    const first = await alice!.call('PUT', path, { msgtype: 'm.text', body: 'one' });
    expect(first.status).toBe(200);
    expect(first.json.event_id).toMatch(/^\$[A-Za-z0-9_-]{43}$/);
    const position = await s.storage.read((txn) => txn.stream.current());
    const again = await alice!.call('PUT', path, { msgtype: 'm.text', body: 'different body, same txn' });
    expect(again.json).toEqual(first.json);
    expect(await s.storage.read((txn) => txn.stream.current())).toBe(position);

    // The event as a client sees it, with the transaction ID for the sending device.
    const got = await alice!.call('GET', `/rooms/${enc(roomId)}/event/${enc(first.json.event_id)}`);
    expect(got.json).toMatchObject({
      event_id: first.json.event_id,
      room_id: roomId,
      sender: alice!.userId,
      type: 'm.room.message',
      content: { msgtype: 'm.text', body: 'one' },
      unsigned: { transaction_id: 'txn-1' },
    });
    expect(got.json).not.toHaveProperty('prev_events');
    expect(got.json).not.toHaveProperty('signatures');

    // Another device of the same user: the transaction ID is its own.
    const login = await s.call('POST', '/_matrix/client/v3/login', {
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: 'alice' },
      password: 'correct horse battery staple',
    });
    expect(login.status).toBe(200);
    const other = await s.call('PUT', '/_matrix/client/v3' + path, { msgtype: 'm.text', body: 'two' }, login.json.access_token);
    expect(other.status).toBe(200);
    expect(other.json.event_id).not.toBe(first.json.event_id);
    const seenByOther = await s.call('GET', `/_matrix/client/v3/rooms/${enc(roomId)}/event/${enc(first.json.event_id)}`, undefined, login.json.access_token);
    expect(seenByOther.json.unsigned).not.toHaveProperty('transaction_id');
  });

  test('a replay still answers after the sender left the room and after a restart', async () => {
    const { server: s, clients: [alice, bob] } = await setup('alice', 'bob');
    server = s;
    const roomId = await alice!.createRoom({ preset: 'public_chat' });
    await bob!.call('POST', `/rooms/${enc(roomId)}/join`, {});
    const eventId = await bob!.send(roomId, { msgtype: 'm.text', body: 'x' }, 'bobs-txn');
    await bob!.call('POST', `/rooms/${enc(roomId)}/leave`, {});
    const replay = await bob!.call('PUT', `/rooms/${enc(roomId)}/send/m.room.message/bobs-txn`, { msgtype: 'm.text', body: 'x' });
    expect(replay).toMatchObject({ status: 200, json: { event_id: eventId } });
    // A fresh homeserver on the same storage: the transaction is found in storage.
    const { startTestServer } = await import('../harness.js');
    const restarted = await startTestServer({ storage: s.storage });
    const again = await restarted.call('PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/bobs-txn`, { body: 'x' }, bob!.accessToken);
    expect(again).toMatchObject({ status: 200, json: { event_id: eventId } });
    await restarted.close();
  });

  test('refusals: not joined, unknown room, too large, bad JSON — storage unchanged', async () => {
    const { server: s, clients: [alice, bob] } = await setup('alice', 'bob');
    server = s;
    const roomId = await alice!.createRoom();
    const send = (who: typeof alice, room: string, body: unknown, type = 'm.room.message') =>
      who!.call('PUT', `/rooms/${enc(room)}/send/${enc(type)}/${Math.random()}`, body);
    const cases: [() => Promise<{ status: number; json: any }>, number, string][] = [
      [() => send(bob, roomId, { body: 'hi' }), 403, 'M_FORBIDDEN'],
      [() => send(bob, '!nowhere:hs.test', { body: 'hi' }), 403, 'M_FORBIDDEN'],
      [() => send(alice, 'nowhere', { body: 'hi' }), 400, 'M_INVALID_PARAM'],
      [() => send(alice, roomId, { body: 'x'.repeat(65_536) }), 413, 'M_TOO_LARGE'],
      [() => send(alice, roomId, { body: 'hi' }, 't'.repeat(256)), 413, 'M_TOO_LARGE'],
      [() => send(alice, roomId, { n: 1.5 }), 400, 'M_BAD_JSON'],
      [() => send(alice, roomId, '{"body":'), 400, 'M_NOT_JSON'],
      [() => send(alice, roomId, [1, 2]), 400, 'M_BAD_JSON'],
      [() => send(alice, roomId, {}, 'm.room.create'), 400, 'M_INVALID_PARAM'],
      [() => s.call('PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/1`, { body: 'hi' }), 401, 'M_MISSING_TOKEN'],
      [() => s.call('PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/1`, { body: 'hi' }, 'bogus'), 401, 'M_UNKNOWN_TOKEN'],
    ];
    for (const [run, status, errcode] of cases) {
      await expectUnchanged(s.storage, async () => {
        const res = await run();
        expect({ status: res.status, errcode: res.json?.errcode }).toEqual({ status, errcode });
      });
    }
    // An event of exactly the limit is fine, one over is not: measured on the signed event, so probe around it.
    const small = await send(alice, roomId, { body: 'x'.repeat(64_000) });
    expect(small.status).toBe(200);
  });

  test('concurrent sends to one room keep the DAG linear, store everything, leave one extremity', async () => {
    const { server: s, clients: [alice, bob] } = await setup('alice', 'bob');
    server = s;
    const roomId = await alice!.createRoom({ preset: 'public_chat' });
    await bob!.call('POST', `/rooms/${enc(roomId)}/join`, {});
    const ids = await Promise.all(
      Array.from({ length: 60 }, (_, i) => (i % 2 ? alice! : bob!).send(roomId, { msgtype: 'm.text', body: `m${i}` }, `c${i}`)),
    );
    expect(new Set(ids).size).toBe(60);
    const records = await s.storage.read((txn) => txn.timeline.range(roomId, { dir: 'f' }));
    for (let i = 1; i < records.length; i++) {
      expect(records[i]!.event.prev_events).toEqual([records[i - 1]!.eventId]);
      expect(records[i]!.depth).toBe(records[i - 1]!.depth + 1);
    }
    for (const id of ids) expect(records.some((r) => r.eventId === id)).toBe(true);
    expect(await s.storage.read((txn) => txn.dag.extremities(roomId))).toEqual([records[records.length - 1]!.eventId]);
  });
});

describe('state events', () => {
  test('put and get state, with and without a state key; format=event; prev_content', async () => {
    const { server: s, clients: [alice] } = await setup('alice');
    server = s;
    const roomId = await alice!.createRoom({ name: 'Old' });
    const put = await alice!.call('PUT', `/rooms/${enc(roomId)}/state/m.room.name`, { name: 'New' });
    expect(put.status).toBe(200);
    expect((await alice!.call('GET', `/rooms/${enc(roomId)}/state/m.room.name`)).json).toEqual({ name: 'New' });
    expect((await alice!.call('GET', `/rooms/${enc(roomId)}/state/m.room.name/`)).json).toEqual({ name: 'New' });
    const asEvent = await alice!.call('GET', `/rooms/${enc(roomId)}/state/m.room.name/?format=event`);
    expect(asEvent.json).toMatchObject({ event_id: put.json.event_id, type: 'm.room.name', state_key: '', content: { name: 'New' } });
    expect(asEvent.json.unsigned.prev_content).toEqual({ name: 'Old' });

    const custom = await alice!.putState(roomId, 'org.example.thing', 'a/b c', { value: 1 });
    expect(custom.status).toBe(200);
    expect((await alice!.call('GET', `/rooms/${enc(roomId)}/state/org.example.thing/${enc('a/b c')}`)).json).toEqual({ value: 1 });

    // Sending the same state again by the same sender is deduplicated.
    const position = await s.storage.read((txn) => txn.stream.current());
    const same = await alice!.putState(roomId, 'org.example.thing', 'a/b c', { value: 1 });
    expect(same.json.event_id).toBe(custom.json.event_id);
    expect(await s.storage.read((txn) => txn.stream.current())).toBe(position);

    const missing = await alice!.call('GET', `/rooms/${enc(roomId)}/state/m.room.topic`);
    expect(missing).toMatchObject({ status: 404, json: { errcode: 'M_NOT_FOUND' } });
    const badFormat = await alice!.call('GET', `/rooms/${enc(roomId)}/state/m.room.name?format=xml`);
    expect(badFormat).toMatchObject({ status: 400, json: { errcode: 'M_INVALID_PARAM' } });
  });

  test('forbidden and invalid state changes leave storage unchanged', async () => {
    const { server: s, clients: [alice, bob] } = await setup('alice', 'bob');
    server = s;
    const roomId = await alice!.createRoom({ room_version: '11', preset: 'public_chat', room_alias_name: 'here' });
    await bob!.call('POST', `/rooms/${enc(roomId)}/join`, {});
    const other = await alice!.createRoom({ room_alias_name: 'there' });
    const cases: [() => Promise<{ status: number; json: any }>, number, string][] = [
      [() => bob!.putState(roomId, 'm.room.name', '', { name: 'mine' }), 403, 'M_FORBIDDEN'],
      [() => bob!.putState(roomId, 'm.room.power_levels', '', { users: { [bob!.userId]: 100 } }), 403, 'M_FORBIDDEN'],
      [() => bob!.putState(roomId, 'org.example', alice!.userId, {}), 403, 'M_FORBIDDEN'],
      [() => alice!.putState(roomId, 'm.room.power_levels', '', { ban: 'fifty' }), 400, 'M_BAD_JSON'],
      [() => alice!.putState(roomId, 'm.room.power_levels', '', { users: { nobody: 5 } }), 400, 'M_BAD_JSON'],
      [() => alice!.putState(roomId, 'm.room.canonical_alias', '', { alias: '#there:hs.test' }), 400, 'M_BAD_ALIAS'],
      [() => alice!.putState(roomId, 'm.room.canonical_alias', '', { alias: '#none:hs.test' }), 400, 'M_BAD_ALIAS'],
      [() => alice!.putState(roomId, 'm.room.canonical_alias', '', { alt_aliases: 'x' }), 400, 'M_INVALID_PARAM'],
      [() => alice!.putState(roomId, 'm.room.create', '', { room_version: '11' }), 400, 'M_INVALID_PARAM'],
      [() => alice!.putState(roomId, 'org.example', 'k'.repeat(256), {}), 413, 'M_TOO_LARGE'],
      [() => bob!.putState(other, 'm.room.name', '', { name: 'not a member' }), 403, 'M_FORBIDDEN'],
    ];
    for (const [run, status, errcode] of cases) {
      await expectUnchanged(s.storage, async () => {
        const res = await run();
        expect({ status: res.status, errcode: res.json?.errcode }).toEqual({ status, errcode });
      });
    }
    // A valid canonical alias is accepted.
    expect((await alice!.putState(roomId, 'm.room.canonical_alias', '', { alias: '#here:hs.test', alt_aliases: ['#here:hs.test'] })).status).toBe(200);
  });
});

describe.each(['10', '11', '12'])('redactions in room version %s', (roomVersion) => {
  test('own events, others with the redact level, refusals', async () => {
    const { server: s, clients: [alice, bob] } = await setup('alice', 'bob');
    server = s;
    const roomId = await alice!.createRoom({ room_version: roomVersion, preset: 'public_chat' });
    await bob!.call('POST', `/rooms/${enc(roomId)}/join`, {});
    const bobsMessage = await bob!.send(roomId, { msgtype: 'm.text', body: 'oops' });
    const alicesMessage = await alice!.send(roomId, { msgtype: 'm.text', body: 'mine' });

    // Bob may not redact Alice's message (redact level 50).
    await expectUnchanged(s.storage, async () => {
      const res = await bob!.call('PUT', `/rooms/${enc(roomId)}/redact/${enc(alicesMessage)}/r1`, {});
      expect(res).toMatchObject({ status: 403, json: { errcode: 'M_FORBIDDEN' } });
    });
    // He may redact his own.
    const own = await bob!.call('PUT', `/rooms/${enc(roomId)}/redact/${enc(bobsMessage)}/r2`, { reason: 'typo' });
    expect(own.status).toBe(200);
    const replay = await bob!.call('PUT', `/rooms/${enc(roomId)}/redact/${enc(bobsMessage)}/r2`, { reason: 'typo' });
    expect(replay.json).toEqual(own.json);

    const redacted = await bob!.call('GET', `/rooms/${enc(roomId)}/event/${enc(bobsMessage)}`);
    expect(redacted.json.content).toEqual({});
    expect(redacted.json.unsigned.redacted_because).toMatchObject({ event_id: own.json.event_id, type: 'm.room.redaction', content: { reason: 'typo' } });
    const redaction = await s.storage.read((txn) => txn.events.get(own.json.event_id));
    if (roomVersion === '10') expect(redaction!.event.redacts).toBe(bobsMessage);
    else expect(redaction!.event.content.redacts).toBe(bobsMessage);
    expect((await s.storage.read((txn) => txn.events.get(bobsMessage)))!.redactedBy).toBe(own.json.event_id);

    // Alice (level 100) may redact Bob's state: a redacted name is seen redacted.
    await alice!.putState(roomId, 'm.room.name', '', { name: 'Named' });
    const topic = await alice!.putState(roomId, 'm.room.topic', '', { topic: 'T' });
    expect((await alice!.call('POST', `/rooms/${enc(roomId)}/redact/${enc(topic.json.event_id)}`, {})).status).toBe(200);
    expect((await alice!.call('GET', `/rooms/${enc(roomId)}/state/m.room.topic`)).json).toEqual({});

    // The create event and events of other rooms cannot be redacted; content.redacts must match the path.
    const create = (await stateOf(alice!, roomId)).get('m.room.create|').event_id;
    const elsewhere = await alice!.createRoom();
    const foreign = await alice!.send(elsewhere);
    await expectUnchanged(s.storage, async () => {
      expect(await alice!.call('PUT', `/rooms/${enc(roomId)}/redact/${enc(create)}/r3`, {})).toMatchObject({ status: 403, json: { errcode: 'M_FORBIDDEN' } });
      expect(await alice!.call('PUT', `/rooms/${enc(roomId)}/redact/${enc(foreign)}/r4`, {})).toMatchObject({ status: 400, json: { errcode: 'M_INVALID_PARAM' } });
      expect(await alice!.call('PUT', `/rooms/${enc(roomId)}/redact/${enc(foreign)}/r5`, { redacts: '$other' })).toMatchObject({ status: 400, json: { errcode: 'M_INVALID_PARAM' } });
      expect(await alice!.call('PUT', `/rooms/${enc(roomId)}/redact/not-an-event/r6`, {})).toMatchObject({ status: 400, json: { errcode: 'M_INVALID_PARAM' } });
      expect(await alice!.call('PUT', `/rooms/${enc(roomId)}/redact/${enc(foreign)}/r7`, { reason: 5 })).toMatchObject({ status: 400, json: { errcode: 'M_BAD_JSON' } });
    });
    // A redaction of an event this server does not have is stored and redacts nothing.
    const unknownTarget = '$' + 'A'.repeat(43);
    expect((await alice!.call('PUT', `/rooms/${enc(roomId)}/redact/${enc(unknownTarget)}/r8`, {})).status).toBe(200);
  });
});

test('users other than the sender see no transaction_id', async () => {
  const s = await (await import('../harness.js')).startTestServer();
  server = s;
  const [alice, bob] = await withUsers(s, 'alice', 'bob');
  const roomId = await alice!.createRoom({ preset: 'public_chat' });
  await bob!.call('POST', `/rooms/${enc(roomId)}/join`, {});
  const eventId = await alice!.send(roomId, { body: 'x' }, 'secret-txn');
  const seen = await bob!.call('GET', `/rooms/${enc(roomId)}/event/${enc(eventId)}`);
  expect(seen.json.unsigned).not.toHaveProperty('transaction_id');
});
