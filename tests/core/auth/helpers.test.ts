/**
 * The helpers the homeserver and state resolution use beside checkEventAuth:
 * auth event selection, creators, power level lookups and the redaction check.
 */
import { describe, expect, it } from 'vitest';
import {
  actionPowerLevel,
  authEventTypesFor,
  checkEventAuth,
  creatorsOf,
  isCreator,
  notificationPowerLevel,
  pickAuthEvents,
  powerLevelOf,
  redactionPermitted,
  redactionTarget,
  requiredPowerLevel,
  stateKeyOf,
  type PDU,
} from '../../../src/core/index.js';

function ev(fields: Partial<PDU> & Pick<PDU, 'type' | 'sender'>): PDU {
  return { content: {}, origin_server_ts: 1, prev_events: [], auth_events: [], ...fields };
}

const create10 = ev({ type: 'm.room.create', state_key: '', sender: '@alice:a.test', room_id: '!r:a.test', content: { creator: '@carol:c.test', room_version: '10' } });
const create11 = ev({ type: 'm.room.create', state_key: '', sender: '@alice:a.test', room_id: '!r:a.test', content: { room_version: '11' } });
const create12 = ev({
  type: 'm.room.create',
  state_key: '',
  sender: '@alice:a.test',
  event_id: '$H',
  content: { room_version: '12', additional_creators: ['@bob:b.test', 'not-a-user'] },
});
const powerLevels = ev({ type: 'm.room.power_levels', state_key: '', sender: '@alice:a.test', content: { users: { '@mod:b.test': 50 }, users_default: 5 } });

describe('authEventTypesFor', () => {
  it('selects nothing for a create event', () => {
    expect(authEventTypesFor(create11, '11')).toEqual([]);
  });

  it('selects create, power levels and the sender for a message (v10/11)', () => {
    const message = { type: 'm.room.message', sender: '@bob:b.test', content: {} };
    expect(authEventTypesFor(message, '11')).toEqual([
      ['m.room.create', ''],
      ['m.room.power_levels', ''],
      ['m.room.member', '@bob:b.test'],
    ]);
  });

  it('leaves the create event out in v12 (room_id implies it)', () => {
    const message = { type: 'm.room.message', sender: '@bob:b.test', content: {} };
    expect(authEventTypesFor(message, '12')).toEqual([
      ['m.room.power_levels', ''],
      ['m.room.member', '@bob:b.test'],
    ]);
  });

  it('adds target, join rules, third-party token and authoriser for member events', () => {
    const join = {
      type: 'm.room.member',
      sender: '@carol:c.test',
      state_key: '@carol:c.test',
      content: { membership: 'join', join_authorised_via_users_server: '@mod:b.test' },
    };
    expect(authEventTypesFor(join, '12')).toEqual([
      ['m.room.power_levels', ''],
      ['m.room.member', '@carol:c.test'],
      ['m.room.join_rules', ''],
      ['m.room.member', '@mod:b.test'],
    ]);
    const invite = {
      type: 'm.room.member',
      sender: '@alice:a.test',
      state_key: '@carol:c.test',
      content: { membership: 'invite', third_party_invite: { signed: { mxid: '@carol:c.test', token: 'tok' } } },
    };
    expect(authEventTypesFor(invite, '10')).toContainEqual(['m.room.third_party_invite', 'tok']);
    const kick = { type: 'm.room.member', sender: '@mod:b.test', state_key: '@bob:b.test', content: { membership: 'leave' } };
    expect(authEventTypesFor(kick, '11')).not.toContainEqual(['m.room.join_rules', '']);
    const knock = { type: 'm.room.member', sender: '@bob:b.test', state_key: '@bob:b.test', content: { membership: 'knock' } };
    expect(authEventTypesFor(knock, '11')).toContainEqual(['m.room.join_rules', '']);
  });

  it('ignores an authoriser on non-join memberships', () => {
    const invite = {
      type: 'm.room.member',
      sender: '@alice:a.test',
      state_key: '@carol:c.test',
      content: { membership: 'invite', join_authorised_via_users_server: '@mod:b.test' },
    };
    expect(authEventTypesFor(invite, '11')).not.toContainEqual(['m.room.member', '@mod:b.test']);
  });
});

describe('pickAuthEvents', () => {
  it('puts the create event first in every version, and skips what the state lacks', () => {
    const state = new Map<string, PDU>([
      [stateKeyOf('m.room.create', ''), create12],
      [stateKeyOf('m.room.power_levels', ''), powerLevels],
    ]);
    const message = { type: 'm.room.message', sender: '@bob:b.test', content: {} };
    const picked = pickAuthEvents(message, (type, key) => state.get(stateKeyOf(type, key)), '12');
    expect(picked).toEqual([create12, powerLevels]);
  });
});

describe('creators and power levels', () => {
  it('names the creators per version', () => {
    expect(creatorsOf(create10, '10')).toEqual(['@carol:c.test']);
    expect(creatorsOf(create11, '11')).toEqual(['@alice:a.test']);
    expect(creatorsOf(create12, '12')).toEqual(['@alice:a.test', '@bob:b.test']);
    expect(isCreator('@bob:b.test', create12, '12')).toBe(true);
    expect(isCreator('@bob:b.test', create12, '11')).toBe(false);
    expect(creatorsOf(undefined, '12')).toEqual([]);
  });

  it('gives v12 creators infinite power, with or without power levels', () => {
    expect(powerLevelOf('@alice:a.test', powerLevels, create12, '12')).toBe(Infinity);
    expect(powerLevelOf('@bob:b.test', undefined, create12, '12')).toBe(Infinity);
    expect(powerLevelOf('@mod:b.test', undefined, create12, '12')).toBe(0);
  });

  it('gives the v10/11 creator 100 only while there are no power levels', () => {
    expect(powerLevelOf('@carol:c.test', undefined, create10, '10')).toBe(100);
    expect(powerLevelOf('@alice:a.test', undefined, create10, '10')).toBe(0);
    expect(powerLevelOf('@alice:a.test', undefined, create11, '11')).toBe(100);
    expect(powerLevelOf('@alice:a.test', powerLevels, create11, '11')).toBe(5);
    expect(powerLevelOf('@mod:b.test', powerLevels, create11, '11')).toBe(50);
  });

  it('applies the spec defaults', () => {
    expect(requiredPowerLevel({ type: 'm.room.topic', state_key: '' }, undefined)).toBe(50);
    expect(requiredPowerLevel({ type: 'm.room.message' }, undefined)).toBe(0);
    expect(requiredPowerLevel({ type: 'constructor' }, powerLevels)).toBe(0);
    expect(actionPowerLevel('invite', undefined)).toBe(0);
    expect(actionPowerLevel('kick', undefined)).toBe(50);
    expect(actionPowerLevel('ban', powerLevels)).toBe(50);
    expect(actionPowerLevel('redact', powerLevels)).toBe(50);
    expect(notificationPowerLevel('room', undefined)).toBe(50);
    expect(notificationPowerLevel('room', ev({ ...powerLevels, content: { notifications: { room: 10 } } }))).toBe(10);
  });
});

describe('redactions', () => {
  const original = ev({ type: 'm.room.message', sender: '@bob:b.test', room_id: '!r:a.test' });

  it('finds the target per version', () => {
    const redaction = ev({ type: 'm.room.redaction', sender: '@mod:b.test', redacts: '$top', content: { redacts: '$inner' } });
    expect(redactionTarget(redaction, '10')).toBe('$top');
    expect(redactionTarget(redaction, '11')).toBe('$inner');
    expect(redactionTarget(ev({ type: 'm.room.redaction', sender: '@x:y' }), '12')).toBeUndefined();
  });

  it('applies with the redact level or from the same server', () => {
    const byMod = ev({ type: 'm.room.redaction', sender: '@mod:b.test', content: {} });
    const byStranger = ev({ type: 'm.room.redaction', sender: '@eve:e.test', content: {} });
    const byCreator = ev({ type: 'm.room.redaction', sender: '@alice:a.test', content: {} });
    expect(redactionPermitted(byMod, original, powerLevels, create11, '11')).toBe(true); // level 50 and same server
    expect(redactionPermitted(byStranger, original, powerLevels, create11, '11')).toBe(false);
    expect(redactionPermitted(byStranger, ev({ ...original, sender: '@eve2:e.test' }), powerLevels, create11, '11')).toBe(true);
    expect(redactionPermitted(byCreator, original, powerLevels, create12, '12')).toBe(true);
    expect(redactionPermitted(byCreator, original, powerLevels, create11, '11')).toBe(false); // alice has users_default 5
  });
});

describe('checkEventAuth input handling', () => {
  it('denies an unsupported room version instead of throwing', () => {
    expect(checkEventAuth(create11, [], '9')).toEqual({ allowed: false, reason: 'unsupported room version "9"' });
  });

  it('denies garbage without throwing', () => {
    expect(checkEventAuth(null as unknown as PDU, [], '11').allowed).toBe(false);
    expect(checkEventAuth(ev({ type: 'm.room.message', sender: '@b:b', room_id: '!r:a.test' }), [null as unknown as PDU], '11')).toEqual({
      allowed: false,
      reason: 'auth event is malformed (no type)',
    });
    expect(checkEventAuth(ev({ type: 'm.room.message', sender: '@b:b', room_id: '!r:a.test' }), 'x' as unknown as PDU[], '11').allowed).toBe(false);
  });

  it('uses an injected server-signature check for join_authorised_via_users_server', () => {
    const joinRules = ev({ type: 'm.room.join_rules', state_key: '', sender: '@alice:a.test', room_id: '!r:a.test', content: { join_rule: 'restricted' } });
    const modJoined = ev({ type: 'm.room.member', state_key: '@mod:b.test', sender: '@mod:b.test', room_id: '!r:a.test', content: { membership: 'join' } });
    const join = ev({
      type: 'm.room.member',
      state_key: '@carol:c.test',
      sender: '@carol:c.test',
      room_id: '!r:a.test',
      prev_events: ['$p'],
      content: { membership: 'join', join_authorised_via_users_server: '@mod:b.test' },
      signatures: { 'b.test': { 'ed25519:1': 'forged' } },
    });
    const authEvents = [create11, joinRules, modJoined];
    expect(checkEventAuth(join, authEvents, '11')).toEqual({ allowed: true });
    const seen: string[] = [];
    const strict = (_event: PDU, server: string): boolean => (seen.push(server), false);
    expect(checkEventAuth(join, authEvents, '11', { isSignedByServer: strict })).toEqual({
      allowed: false,
      reason: 'event is not signed by b.test, the server of join_authorised_via_users_server',
    });
    expect(seen).toEqual(['b.test']);
  });
});
