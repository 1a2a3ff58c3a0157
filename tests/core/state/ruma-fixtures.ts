/**
 * ruma's state resolution fixtures (copied from ../shared/vectors/ruma-state-res into ./fixtures, with ruma's MIT LICENSE), and the
 * three ways its test suite resolves a growing DAG: event by event along
 * prev_events, file by file, and all at once.
 */
import { readFileSync } from 'node:fs';
import { forwardExtremities, resolveState, stateKeyOf, topologicalOrder, type PDU, type StateMap } from '../../../src/core/index.js';

const ROOT = new URL('./fixtures/ruma-state-res/', import.meta.url);

function readJson<T>(relative: string): T {
  return JSON.parse(readFileSync(new URL(relative, ROOT), 'utf8')) as T;
}

export type Lookup = (eventId: string) => PDU | undefined | Promise<PDU | undefined>;

export interface BatchCase {
  name: string;
  files: string[];
}
export interface StateMapCase {
  name: string;
  stateMaps: string[];
  pdus: string;
}

export const BATCH_CASES: BatchCase[] = [
  { name: 'minimal_private_chat', files: ['bootstrap-private-chat'] },
  { name: 'minimal_public_chat', files: ['bootstrap-public-chat'] },
  { name: 'origin_server_ts_tiebreak', files: ['bootstrap-private-chat', 'origin-server-ts-tiebreak'] },
  { name: 'ban_vs_power_levels', files: ['bootstrap-public-chat', 'ban-vs-power-levels-alice', 'ban-vs-power-levels-bob'] },
  { name: 'topic_vs_power_levels', files: ['bootstrap-public-chat', 'topic-vs-power-levels-alice', 'topic-vs-power-levels-bob'] },
  { name: 'power_levels_admin_vs_mod', files: ['bootstrap-public-chat', 'power-levels-admin-vs-mod-alice', 'power-levels-admin-vs-mod-bob'] },
  { name: 'topic_vs_ban', files: ['bootstrap-public-chat', 'topic-vs-ban-common', 'topic-vs-ban-alice', 'topic-vs-ban-bob'] },
  { name: 'join_rules_vs_join', files: ['bootstrap-public-chat', 'join-rules-vs-join-common', 'join-rules-vs-join-alice', 'join-rules-vs-join-ella'] },
  { name: 'concurrent_joins', files: ['bootstrap-public-chat', 'concurrent-joins-charlie', 'concurrent-joins-ella'] },
];

export const STATE_MAP_CASES: StateMapCase[] = [
  { name: 'msc4297_problem_a_state_res_v2_0', stateMaps: ['MSC4297-problem-A/state-bob', 'MSC4297-problem-A/state-charlie'], pdus: 'MSC4297-problem-A/pdus-v11' },
  { name: 'msc4297_problem_a_state_res_v2_1', stateMaps: ['MSC4297-problem-A/state-bob', 'MSC4297-problem-A/state-charlie'], pdus: 'MSC4297-problem-A/pdus-v12' },
  { name: 'msc4297_problem_b_state_res_v2_0', stateMaps: ['MSC4297-problem-B/state-eve', 'MSC4297-problem-B/state-zara'], pdus: 'MSC4297-problem-B/pdus-v11' },
  { name: 'msc4297_problem_b_state_res_v2_1', stateMaps: ['MSC4297-problem-B/state-eve', 'MSC4297-problem-B/state-zara'], pdus: 'MSC4297-problem-B/pdus-v12' },
];

export function loadPdus(file: string): PDU[] {
  return readJson<PDU[]>(`fixtures/${file}.json`);
}

export function roomVersionOf(pdus: readonly PDU[]): string {
  const create = pdus[0]!;
  if (create.type !== 'm.room.create') throw new Error('first PDU of a case must be m.room.create');
  return String(create.content.room_version);
}

export function keyOf(event: PDU): string {
  return stateKeyOf(event.type, event.state_key!);
}

export function loadStateMap(file: string, byId: ReadonlyMap<string, PDU>): StateMap {
  return new Map(readJson<string[]>(`fixtures/${file}.json`).map((id) => [keyOf(byId.get(id)!), id]));
}

/** The snapshot's resolved state, as a state map. */
export function loadSnapshot(name: string): StateMap {
  const text = readFileSync(new URL(`snapshots/${name}@resolved_state.snap`, ROOT), 'utf8');
  const body = text.slice(text.indexOf('---', 3) + 3);
  const entries = JSON.parse(body) as { type: string; state_key: string; event_id: string }[];
  return new Map(entries.map((e) => [stateKeyOf(e.type, e.state_key), e.event_id]));
}

export function byIdOf(pdus: readonly PDU[]): Map<string, PDU> {
  return new Map(pdus.map((pdu) => [pdu.event_id!, pdu]));
}

/**
 * Event by event: the state before an event resolves the states after its
 * prev_events; the state after it resolves {before, before + event}, which
 * applies the event only if it passes the auth checks. The room's state is the
 * resolution of the states after its forward extremities.
 */
export async function resolveEventByEvent(
  roomVersion: string,
  pdus: readonly PDU[],
  getEvent: Lookup,
): Promise<{ final: StateMap; before: Map<string, StateMap>; after: Map<string, StateMap> }> {
  const before = new Map<string, StateMap>();
  const after = new Map<string, StateMap>();
  for (const event of topologicalOrder(pdus)) {
    const id = event.event_id!;
    const prior = await resolveState(roomVersion, event.prev_events.map((p) => after.get(p)!), getEvent);
    before.set(id, prior);
    if (event.state_key === undefined) {
      after.set(id, prior);
      continue;
    }
    const proposed = new Map(prior).set(keyOf(event), id);
    after.set(id, await resolveState(roomVersion, [prior, proposed], getEvent));
  }
  const final = await resolveState(roomVersion, forwardExtremities(pdus).map((id) => after.get(id)!), getEvent);
  return { final, before, after };
}

const single = (event: PDU): StateMap => new Map([[keyOf(event), event.event_id!]]);

/** File by file: each batch's events as one-event state sets, resolved with the previous result. */
export async function resolveFileByFile(roomVersion: string, batches: readonly PDU[][], getEvent: Lookup): Promise<StateMap> {
  let state: StateMap | undefined;
  for (const batch of batches) {
    state = await resolveState(roomVersion, [...(state ? [state] : []), ...batch.map(single)], getEvent);
  }
  return state!;
}

/** All at once: every event its own state set. */
export function resolveAllAtOnce(roomVersion: string, pdus: readonly PDU[], getEvent: Lookup): Promise<StateMap> {
  return resolveState(roomVersion, pdus.map(single), getEvent);
}

export function sorted(map: StateMap): [string, string][] {
  return [...map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
