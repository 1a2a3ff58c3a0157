// POST /createRoom: presets, room versions 10/11/12, event order, aliases, invites, refusals.
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, test } from 'vitest';
import { isHashRoomId } from '../../../src/core/index.js';
import type { TestServer } from '../harness.js';
import { enc, expectUnchanged, setup, stateOf } from './helpers.js';

const expectedPowerLevels = JSON.parse(readFileSync(new URL('./fixtures/power-levels.json', import.meta.url), 'utf8'));

let server: TestServer;
afterEach(async () => server?.close());

describe('POST /createRoom', () => {
  test('private_chat in room version 11: Synapse order and defaults, creator has 100', async () => {
    const { server: s, clients: [alice] } = await setup('alice');
    server = s;
    const roomId = await alice!.createRoom({ room_version: '11', name: 'Chat', topic: 'About things' });
    expect(roomId).toMatch(/^![A-Za-z0-9]{18}:hs\.test$/);

    const records = await s.storage.read((txn) => txn.timeline.range(roomId, { dir: 'f' }));
    expect(records.map((r) => r.event.type)).toEqual([
      'm.room.create',
      'm.room.member',
      'm.room.power_levels',
      'm.room.join_rules',
      'm.room.history_visibility',
      'm.room.guest_access',
      'm.room.name',
      'm.room.topic',
    ]);
    // A linear DAG with increasing depth, each event naming the one before.
    records.forEach((r, i) => {
      expect(r.depth).toBe(i + 1);
      expect(r.event.prev_events).toEqual(i === 0 ? [] : [records[i - 1]!.eventId]);
    });
    const create = records[0]!.event;
    expect(create.content).toEqual({ room_version: '11' });
    expect(create.room_id).toBe(roomId);

    const state = await stateOf(alice!, roomId);
    expect(state.get('m.room.power_levels|')!.content).toEqual(expectedPowerLevels.v11_private_chat);
    expect(state.get('m.room.join_rules|')!.content).toEqual({ join_rule: 'invite' });
    expect(state.get('m.room.history_visibility|')!.content).toEqual({ history_visibility: 'shared' });
    expect(state.get('m.room.guest_access|')!.content).toEqual({ guest_access: 'can_join' });
    expect(state.get('m.room.topic|')!.content).toEqual({ topic: 'About things', 'm.topic': { 'm.text': [{ body: 'About things' }] } });
    expect(state.get(`m.room.member|${alice!.userId}`)!.content).toMatchObject({ membership: 'join' });

    const extremities = await s.storage.read((txn) => txn.dag.extremities(roomId));
    expect(extremities).toEqual([records[records.length - 1]!.eventId]);
  });

  test('room version 10 puts the creator in the create event', async () => {
    const { server: s, clients: [alice] } = await setup('alice');
    server = s;
    const roomId = await alice!.createRoom({ room_version: '10' });
    const state = await stateOf(alice!, roomId);
    expect(state.get('m.room.create|')!.content).toEqual({ room_version: '10', creator: alice!.userId });
    expect(state.get('m.room.power_levels|')!.content.users).toEqual({ [alice!.userId]: 100 });
  });

  test('public_chat in room version 12 (the default): hash room ID, creator not in users, no guest access', async () => {
    const { server: s, clients: [alice] } = await setup('alice');
    server = s;
    const roomId = await alice!.createRoom({ preset: 'public_chat' });
    expect(isHashRoomId(roomId)).toBe(true);
    const state = await stateOf(alice!, roomId);
    const create = state.get('m.room.create|')!;
    expect(create.content).toEqual({ room_version: '12' });
    expect(create.event_id).toBe('$' + roomId.slice(1));
    expect(state.get('m.room.power_levels|')!.content).toEqual(expectedPowerLevels.v12_public_chat);
    expect(state.get('m.room.join_rules|')!.content).toEqual({ join_rule: 'public' });
    expect(state.has('m.room.guest_access|')).toBe(false);
    // v12 auth_events never name the create event.
    const stored = await s.storage.read((txn) => txn.timeline.range(roomId, { dir: 'f' }));
    for (const record of stored.slice(1)) expect(record.event.auth_events).not.toContain(create.event_id);
  });

  test('visibility public picks public_chat and lists the room; two quick creates get distinct IDs', async () => {
    const { server: s, clients: [alice] } = await setup('alice');
    server = s;
    const [a, b] = await Promise.all([alice!.createRoom({ visibility: 'public' }), alice!.createRoom({ visibility: 'public' })]);
    expect(a).not.toBe(b);
    const { json } = await alice!.call('GET', `/directory/list/room/${enc(a)}`);
    expect(json).toEqual({ visibility: 'public' });
    const state = await stateOf(alice!, a);
    expect(state.get('m.room.join_rules|')!.content.join_rule).toBe('public');
  });

  test('trusted_private_chat: invitees get 100 in v11, become additional creators in v12; invites carry is_direct and stripped state', async () => {
    const { server: s, clients: [alice, bob] } = await setup('alice', 'bob');
    server = s;
    const v11 = await alice!.createRoom({ room_version: '11', preset: 'trusted_private_chat', invite: [bob!.userId], is_direct: true, name: 'DM' });
    const state11 = await stateOf(alice!, v11);
    expect(state11.get('m.room.power_levels|')!.content.users).toEqual({ [alice!.userId]: 100, [bob!.userId]: 100 });
    const invite = state11.get(`m.room.member|${bob!.userId}`)!;
    expect(invite.content).toEqual({ membership: 'invite', is_direct: true, displayname: 'bob' });
    const stripped = invite.unsigned.invite_room_state;
    expect(stripped.map((e: any) => e.type).sort()).toEqual(['m.room.create', 'm.room.join_rules', 'm.room.member', 'm.room.name'].sort());
    expect(stripped.find((e: any) => e.type === 'm.room.member')).toMatchObject({ state_key: alice!.userId, sender: alice!.userId });
    expect(stripped.find((e: any) => e.type === 'm.room.name').content).toEqual({ name: 'DM' });

    const v12 = await alice!.createRoom({ preset: 'trusted_private_chat', invite: [bob!.userId] });
    const state12 = await stateOf(alice!, v12);
    expect(state12.get('m.room.create|')!.content.additional_creators).toEqual([bob!.userId]);
    expect(state12.get('m.room.power_levels|')!.content.users).toEqual({});
    expect(await s.storage.read((txn) => txn.memberships.get(v12, bob!.userId))).toMatchObject({ membership: 'invite' });
  });

  test('initial_state replaces preset events in place; power_level_content_override applies last', async () => {
    const { server: s, clients: [alice] } = await setup('alice');
    server = s;
    const roomId = await alice!.createRoom({
      room_version: '11',
      initial_state: [
        { type: 'm.room.join_rules', state_key: '', content: { join_rule: 'knock' } },
        { type: 'm.room.encryption', content: { algorithm: 'm.megolm.v1.aes-sha2' } },
        { type: 'org.example.custom', state_key: 'k', content: { a: 1 } },
      ],
      power_level_content_override: { events_default: 10, users: { [alice!.userId]: 100, '@carol:hs.test': 20 } },
      creation_content: { 'm.federate': false, type: 'm.space' },
      room_alias_name: 'things',
    });
    const records = await s.storage.read((txn) => txn.timeline.range(roomId, { dir: 'f' }));
    expect(records.map((r) => `${r.event.type}|${r.event.state_key}`)).toEqual([
      'm.room.create|',
      `m.room.member|${alice!.userId}`,
      'm.room.power_levels|',
      'm.room.canonical_alias|',
      'm.room.history_visibility|',
      'm.room.guest_access|',
      'm.room.join_rules|',
      'm.room.encryption|',
      'org.example.custom|k',
    ]);
    const state = await stateOf(alice!, roomId);
    expect(state.get('m.room.create|')!.content).toEqual({ room_version: '11', 'm.federate': false, type: 'm.space' });
    expect(state.get('m.room.power_levels|')!.content).toMatchObject({ events_default: 10, users: { [alice!.userId]: 100, '@carol:hs.test': 20 } });
    expect(state.get('m.room.canonical_alias|')!.content).toEqual({ alias: '#things:hs.test' });
    const { json } = await alice!.call('GET', `/directory/room/${enc('#things:hs.test')}`);
    expect(json).toEqual({ room_id: roomId, servers: ['hs.test'] });
  });

  test('the whole room is one write: one commit notice, stream positions consecutive', async () => {
    const { server: s, clients: [alice, bob] } = await setup('alice', 'bob');
    server = s;
    const commits: number[] = [];
    const unsubscribe = s.storage.subscribe((commit) => commits.push(commit.changes.length));
    const roomId = await alice!.createRoom({ name: 'n', topic: 't', invite: [bob!.userId], room_alias_name: 'one' });
    unsubscribe();
    expect(commits).toHaveLength(1);
    const records = await s.storage.read((txn) => txn.timeline.range(roomId, { dir: 'f' }));
    const positions = records.map((r) => r.streamOrdering!);
    expect(positions).toEqual(positions.map((_, i) => positions[0]! + i));
  });

  test('refusals leave storage unchanged', async () => {
    const { server: s, clients: [alice] } = await setup('alice');
    server = s;
    await alice!.createRoom({ room_alias_name: 'taken' });
    const cases: [unknown, number, string][] = [
      [{ room_version: '9' }, 400, 'M_UNSUPPORTED_ROOM_VERSION'],
      [{ room_version: 11 }, 400, 'M_BAD_JSON'],
      [{ room_alias_name: 'taken' }, 400, 'M_ROOM_IN_USE'],
      [{ room_alias_name: 'has space' }, 400, 'M_INVALID_PARAM'],
      [{ room_alias_name: '#full:hs.test' }, 400, 'M_INVALID_PARAM'],
      [{ invite: ['not-a-user'] }, 400, 'M_INVALID_PARAM'],
      [{ invite: 'nope' }, 400, 'M_BAD_JSON'],
      [{ preset: 'secret_chat' }, 400, 'M_INVALID_PARAM'],
      [{ visibility: 'hidden' }, 400, 'M_INVALID_PARAM'],
      [{ name: 42 }, 400, 'M_BAD_JSON'],
      [{ initial_state: [{ type: 'm.room.name' }] }, 400, 'M_BAD_JSON'],
      [{ initial_state: {} }, 400, 'M_BAD_JSON'],
      [{ creation_content: [] }, 400, 'M_BAD_JSON'],
      [{ power_level_content_override: { ban: '50' } }, 400, 'M_BAD_JSON'],
      [{ room_version: '11', power_level_content_override: { users: { '@other:hs.test': 100 } } }, 400, 'M_INVALID_ROOM_STATE'],
      // The spec's own example: the creator's level set below what the name needs.
      [{ room_version: '11', name: 'x', power_level_content_override: { state_default: 200, events: { 'm.room.name': 200 } } }, 400, 'M_INVALID_ROOM_STATE'],
      [{ topic: 'x'.repeat(70_000) }, 413, 'M_TOO_LARGE'],
      [{ initial_state: [{ type: 'x'.repeat(300), content: {} }] }, 413, 'M_TOO_LARGE'],
      [{ initial_state: [{ type: 'm.room.create', content: {} }] }, 400, 'M_INVALID_ROOM_STATE'],
      [{ creation_content: { n: 1.5 } }, 400, 'M_BAD_JSON'],
    ];
    for (const [body, status, errcode] of cases) {
      await expectUnchanged(s.storage, async () => {
        const res = await alice!.call('POST', '/createRoom', body);
        expect({ body, status: res.status, errcode: res.json?.errcode }).toEqual({ body, status, errcode });
      });
    }
  });
});
