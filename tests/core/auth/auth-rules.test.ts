/**
 * Runs the authorization-rule tables in fixtures/*.json. Each case names a room
 * version (or several), a base state from fixtures/bases.json (or explicit
 * auth events), the event to check and the expected outcome; the shape and the
 * normalisation done here are described in bases.json's "_about".
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkEventAuth, creatorsOf, pickAuthEvents, stateKeyOf, type AuthCheckOptions, type PDU } from '../../../src/core/index.js';

type Template = Record<string, unknown>;

interface Base {
  extends?: string;
  state: Template[];
}

interface Case {
  name: string;
  roomVersion: string | string[];
  base?: string;
  createSender?: string;
  createContent?: Record<string, unknown>;
  /** State events added over the base (replacing the same type/state_key). */
  state?: Template[];
  /** [type, state_key] pairs removed from the state. */
  remove?: [string, string][];
  /** Explicit auth events instead of picking them from the state; a string "type|state_key" names a state event. */
  authEvents?: (Template | string)[];
  /** Enables a fake third-party invite verifier: a signature "sig-by:<key>" is valid for <key>. */
  thirdPartyVerifier?: boolean;
  keepCreatorsInPowerLevels?: boolean;
  event: Template;
  allowed: boolean;
  reason?: string;
}

const FIXTURES = join(import.meta.dirname, 'fixtures');
const bases = JSON.parse(readFileSync(join(FIXTURES, 'bases.json'), 'utf8')) as Record<string, Base>;

const CREATOR = '@alice:a.test';

function ids(version: string): { roomId: string; createId: string } {
  return version === '12' ? { roomId: '!CREATEHASH', createId: '$CREATEHASH' } : { roomId: '!room:a.test', createId: '$create' };
}

/** Replaces {{room_id}} / {{create_id}} in every string of a template. */
function substitute<T>(value: T, version: string): T {
  const { roomId, createId } = ids(version);
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return v.replaceAll('{{room_id}}', roomId).replaceAll('{{create_id}}', createId);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return walk(value) as T;
}

/** Overlays `patch` on `target`; a null in the patch deletes the key. */
function overlay(target: Record<string, unknown>, patch: Record<string, unknown> | undefined): Record<string, unknown> {
  const out = { ...target };
  for (const [key, value] of Object.entries(patch ?? {})) {
    if (value === null) delete out[key];
    else out[key] = value;
  }
  return out;
}

let counter = 0;

function fill(template: Template, version: string): PDU {
  const { roomId } = ids(version);
  const defaults: Record<string, unknown> = {
    event_id: `$ev${++counter}`,
    room_id: roomId,
    origin_server_ts: 1_000 + counter,
    prev_events: ['$prev'],
    auth_events: [],
  };
  if (template.type === 'm.room.member' && template.sender === undefined && typeof template.state_key === 'string') {
    defaults.sender = template.state_key;
  }
  return overlay(defaults, substitute(template, version)) as unknown as PDU;
}

function createEventFor(c: Case, version: string): PDU {
  const { roomId, createId } = ids(version);
  const sender = c.createSender ?? CREATOR;
  const content = overlay({ room_version: version, ...(version === '10' ? { creator: sender } : {}) }, c.createContent);
  const event: Record<string, unknown> = {
    event_id: createId,
    type: 'm.room.create',
    state_key: '',
    sender,
    content,
    origin_server_ts: 1,
    prev_events: [],
    auth_events: [],
  };
  if (version !== '12') event.room_id = roomId;
  return event as unknown as PDU;
}

function baseState(name: string): Template[] {
  const base = bases[name];
  if (!base) throw new Error(`unknown base ${name}`);
  return [...(base.extends ? baseState(base.extends) : []), ...base.state];
}

/** In v12, creators must not be listed in power levels: drop them so shared tables mean the same in every version. */
function dropCreators(event: PDU, creators: string[]): PDU {
  const users = event.content.users;
  if (event.type !== 'm.room.power_levels' || !users || typeof users !== 'object' || Array.isArray(users)) return event;
  const kept = Object.fromEntries(Object.entries(users).filter(([userId]) => !creators.includes(userId)));
  return { ...event, content: { ...event.content, users: kept } };
}

function buildCase(c: Case, version: string): { event: PDU; authEvents: PDU[]; options: AuthCheckOptions } {
  const create = createEventFor(c, version);
  const creators = version === '12' && !c.keepCreatorsInPowerLevels ? creatorsOf(create, version) : [];
  const normalise = (event: PDU): PDU => (creators.length ? dropCreators(event, creators) : event);

  const state = new Map<string, PDU>([[stateKeyOf('m.room.create', ''), create]]);
  for (const template of [...(c.base ? baseState(c.base) : []), ...(c.state ?? [])]) {
    const event = normalise(fill(template, version));
    state.set(stateKeyOf(event.type, event.state_key as string), event);
  }
  for (const [type, stateKey] of c.remove ?? []) state.delete(stateKeyOf(type, stateKey));

  const event =
    c.event.type === 'm.room.create'
      ? (overlay(
          { ...(create as unknown as Record<string, unknown>), event_id: '$another-create' },
          substitute({ ...c.event, content: overlay(create.content, c.event.content as Record<string, unknown>) }, version),
        ) as unknown as PDU)
      : normalise(fill(c.event, version));

  const authEvents = c.authEvents
    ? c.authEvents.map((entry) => {
        if (typeof entry !== 'string') return normalise(fill(entry, version));
        const [type, stateKey] = entry.split('|') as [string, string];
        const found = state.get(stateKeyOf(type, stateKey));
        if (!found) throw new Error(`${c.name}: no state event ${entry}`);
        return found;
      })
    : pickAuthEvents(event, (type, stateKey) => state.get(stateKeyOf(type, stateKey)), version);

  const options: AuthCheckOptions = {};
  if (c.thirdPartyVerifier) {
    options.verifyThirdPartyInviteSignature = (signed, publicKey) => {
      const signatures = signed.signatures as Record<string, Record<string, string>> | undefined;
      return Object.values(signatures ?? {}).some((byKey) => Object.values(byKey).includes(`sig-by:${publicKey}`));
    };
  }
  return { event, authEvents, options };
}

const files = readdirSync(FIXTURES)
  .filter((name) => name.endsWith('.json') && name !== 'bases.json')
  .sort();

for (const file of files) {
  const { cases } = JSON.parse(readFileSync(join(FIXTURES, file), 'utf8')) as { cases: Case[] };
  describe(file, () => {
    for (const c of cases) {
      const versions = Array.isArray(c.roomVersion) ? c.roomVersion : [c.roomVersion];
      for (const version of versions) {
        it(`v${version}: ${c.name}`, () => {
          const { event, authEvents, options } = buildCase(c, version);
          const result = checkEventAuth(event, authEvents, version, options);
          if (c.allowed) {
            expect(result).toEqual({ allowed: true });
          } else {
            expect(result.allowed).toBe(false);
            if (c.reason !== undefined && !result.allowed) expect(result.reason).toContain(c.reason);
          }
        });
      }
    }
  });
}

it('every fixture case names an expected reason when it expects a denial', () => {
  for (const file of files) {
    const { cases } = JSON.parse(readFileSync(join(FIXTURES, file), 'utf8')) as { cases: Case[] };
    for (const c of cases) if (!c.allowed) expect(c.reason, `${file}: ${c.name}`).toBeTruthy();
  }
});
