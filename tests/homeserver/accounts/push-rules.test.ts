import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TestServer } from '../harness.js';
import { accountsServer, V3 } from './helpers.js';

/** The spec's server-default rule IDs, kind by kind, in the spec's order. */
const DEFAULT_IDS = JSON.parse(readFileSync(new URL('./fixtures/default-rule-ids.json', import.meta.url), 'utf8'));

let server: TestServer;
let alice: { userId: string; accessToken: string; deviceId: string };

beforeEach(async () => {
  server = await accountsServer();
  alice = await server.register('alice');
});
afterEach(async () => {
  await server.close();
});

const ids = (rules: Array<{ rule_id: string }>) => rules.map((r) => r.rule_id);

async function rules() {
  const { status, json } = await server.call('GET', `${V3}/pushrules/`, undefined, alice.accessToken);
  expect(status).toBe(200);
  return json.global;
}

describe('push rules', () => {
  it('serves the spec default rule set, filled in for the user', async () => {
    const global = await rules();
    for (const kind of Object.keys(DEFAULT_IDS)) expect(ids(global[kind]), kind).toEqual(DEFAULT_IDS[kind]);
    expect(global.override[0]).toMatchObject({ rule_id: '.m.rule.master', enabled: false, default: true });
    expect(global.content[0]).toMatchObject({ pattern: 'alice', default: true, enabled: true });
    const invite = global.override.find((r: { rule_id: string }) => r.rule_id === '.m.rule.invite_for_me');
    expect(invite.conditions).toContainEqual({ kind: 'event_match', key: 'state_key', pattern: alice.userId });
    const mention = global.override.find((r: { rule_id: string }) => r.rule_id === '.m.rule.is_user_mention');
    expect(mention.conditions).toEqual([{ kind: 'event_property_contains', key: 'content.m\\.mentions.user_ids', value: alice.userId }]);
    expect((await server.call('GET', `${V3}/pushrules/global/`, undefined, alice.accessToken)).json).toEqual(global);
    expect((await server.call('GET', '/_matrix/client/r0/pushrules/', undefined, alice.accessToken)).json.global).toEqual(global);
  });

  it('adds user rules in priority order and keeps them in m.push_rules account data', async () => {
    const put = (kind: string, id: string, body: unknown, query = '') =>
      server.call('PUT', `${V3}/pushrules/global/${kind}/${encodeURIComponent(id)}${query}`, body, alice.accessToken);
    expect((await put('override', 'first', { actions: ['notify'], conditions: [{ kind: 'event_match', key: 'type', pattern: 'm.x' }] })).status).toBe(200);
    expect((await put('override', 'second', { actions: [] })).status).toBe(200);
    expect((await put('override', 'third', { actions: [] }, '?after=first')).status).toBe(200);
    expect((await put('override', 'zeroth', { actions: [] }, '?before=second')).status).toBe(200);
    expect((await put('content', 'cake', { actions: ['notify'], pattern: 'cake*lie' })).status).toBe(200);
    expect((await put('room', '!room:hs.test', { actions: [] })).status).toBe(200);

    const global = await rules();
    expect(ids(global.override).slice(0, 5)).toEqual(['.m.rule.master', 'zeroth', 'second', 'first', 'third']);
    expect(ids(global.content)).toEqual(['cake', '.m.rule.contains_user_name']);
    expect(global.room).toEqual([{ rule_id: '!room:hs.test', default: false, enabled: true, actions: [] }]);
    const stored = await server.storage.read((txn) => txn.accountData.get(alice.userId, 'm.push_rules'));
    expect(stored?.content).toEqual({ global });

    // Replacing a rule keeps its place.
    await put('override', 'first', { actions: ['notify', { set_tweak: 'sound', value: 'default' }] });
    expect(ids((await rules()).override).slice(0, 5)).toEqual(['.m.rule.master', 'zeroth', 'second', 'first', 'third']);
    const one = await server.call('GET', `${V3}/pushrules/global/override/first`, undefined, alice.accessToken);
    expect(one.json).toEqual({ rule_id: 'first', default: false, enabled: true, actions: ['notify', { set_tweak: 'sound', value: 'default' }], conditions: [] });

    expect((await server.call('DELETE', `${V3}/pushrules/global/override/first`, undefined, alice.accessToken)).status).toBe(200);
    const gone = await server.call('GET', `${V3}/pushrules/global/override/first`, undefined, alice.accessToken);
    expect([gone.status, gone.json.errcode]).toEqual([404, 'M_NOT_FOUND']);
  });

  it('enables, disables and re-actions default rules', async () => {
    const base = `${V3}/pushrules/global/override/.m.rule.master`;
    expect((await server.call('GET', `${base}/enabled`, undefined, alice.accessToken)).json).toEqual({ enabled: false });
    expect((await server.call('PUT', `${base}/enabled`, { enabled: true }, alice.accessToken)).status).toBe(200);
    expect((await server.call('GET', `${base}/enabled`, undefined, alice.accessToken)).json).toEqual({ enabled: true });
    const msg = `${V3}/pushrules/global/underride/.m.rule.message/actions`;
    expect((await server.call('PUT', msg, { actions: ['dont_notify'] }, alice.accessToken)).status).toBe(200);
    expect((await server.call('GET', msg, undefined, alice.accessToken)).json).toEqual({ actions: ['dont_notify'] });
    const before = await server.storage.read((txn) => txn.stream.current());
    const changes = await server.storage.read((txn) => txn.accountData.changes(alice.userId, { dir: 'f', from: before - 2 }));
    expect(changes.map((c) => c.type)).toEqual(['m.push_rules']);
  });
});
