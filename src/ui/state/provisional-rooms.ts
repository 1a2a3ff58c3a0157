/**
 * The room list before matrix-js-sdk is up (local first, as Hydrogen does): one `GET /sync` without `since`
 * through the client-server API, with a small filter (the newest event of each room, lazy-loaded members,
 * no presence or account data), read into the same RoomSummary rows RoomsState makes from the SDK's rooms:
 * the names follow the SDK's rules (m.room.name, the canonical alias, then the heroes), so that the list
 * does not change under the user's pointer when the SDK's first sync replaces it.
 *
 * A sync without `since` acknowledges nothing: the server deletes to-device messages (room keys) only when
 * a later sync names a token after them, and this one's `next_batch` is thrown away, so the SDK's own first
 * sync still receives them. The response is read as untrusted JSON: anything of the wrong shape is skipped.
 */
import type { ClientApiGet } from './host.js';
import type { RoomSummary } from './rooms.svelte.js';

/** The newest event per room, the members of its sender, the room's heroes and the user; nothing else. */
export const PROVISIONAL_SYNC_FILTER = {
  presence: { not_types: ['*'] },
  account_data: { not_types: ['*'] },
  room: {
    timeline: { limit: 1 },
    state: { lazy_load_members: true },
    ephemeral: { not_types: ['*'] },
    account_data: { not_types: ['*'] },
  },
};

/** The rooms the user is in or invited to, as the server answers one `GET /sync` without `since`. */
export async function fetchProvisionalRooms(get: ClientApiGet, userId: string): Promise<RoomSummary[]> {
  const query = new URLSearchParams({ filter: JSON.stringify(PROVISIONAL_SYNC_FILTER), timeout: '0' });
  const response = await get(`/_matrix/client/v3/sync?${query}`);
  if (!response.ok) throw new Error(`the room list could not be read (${response.status})`);
  return provisionalRoomsOf(await response.json(), userId);
}

interface StateEvent {
  type: string;
  stateKey: string;
  sender: string;
  content: Map<string, unknown>;
}

/** The summary rows of a sync response body (joined rooms and invites); anything malformed is left out. */
export function provisionalRoomsOf(body: unknown, userId: string): RoomSummary[] {
  const rooms = entriesOf(field(body, 'rooms'));
  const list: RoomSummary[] = [];
  for (const [roomId, room] of entriesOf(rooms.get('join'))) {
    const state = currentState([...eventsOf(field(room, 'state')), ...eventsOf(field(room, 'timeline'))]);
    const timeline = eventsOf(field(room, 'timeline'));
    const last = timeline[timeline.length - 1];
    const summary = entriesOf(field(room, 'summary'));
    const count = field(field(room, 'unread_notifications'), 'notification_count');
    list.push({
      id: roomId,
      name: roomName(state, userId, summary) || roomId,
      membership: 'join',
      unread: typeof count === 'number' && Number.isSafeInteger(count) && count > 0 ? count : 0,
      lastActive: numberOr(field(last, 'origin_server_ts'), 0),
      encrypted: state.has(stateKeyOf('m.room.encryption', '')),
    });
  }
  for (const [roomId, room] of entriesOf(rooms.get('invite'))) {
    const state = currentState(eventsOf(field(room, 'invite_state')));
    const inviter = state.get(stateKeyOf('m.room.member', userId))?.sender;
    list.push({
      id: roomId,
      name: roomName(state, userId, new Map()) || roomId,
      membership: 'invite',
      unread: 0,
      inviter,
      inviterName: inviter ? memberName(state, inviter) : undefined,
      // The SDK keeps an invite's stripped state out of the timeline: no latest event to order by.
      lastActive: 0,
      encrypted: state.has(stateKeyOf('m.room.encryption', '')),
    });
  }
  return list;
}

/**
 * The room's name as matrix-js-sdk computes it (Room.name, with its default name generator): m.room.name,
 * else the canonical alias, else the names of the heroes (the summary's, or the first five other joined or
 * invited members by user ID) counted against the members, else "Empty room".
 */
function roomName(state: Map<string, StateEvent>, userId: string, summary: Map<string, unknown>): string {
  const name = state.get(stateKeyOf('m.room.name', ''))?.content.get('name');
  if (typeof name === 'string' && name) return name;
  const alias = state.get(stateKeyOf('m.room.canonical_alias', ''))?.content.get('alias');
  if (typeof alias === 'string' && alias) return alias;

  const members = [...state.values()].filter((event) => event.type === 'm.room.member');
  const membershipOf = (event: StateEvent) => event.content.get('membership');
  const joined = numberOr(summary.get('m.joined_member_count'), members.filter((m) => membershipOf(m) === 'join').length);
  const invited = numberOr(summary.get('m.invited_member_count'), members.filter((m) => membershipOf(m) === 'invite').length);
  const others = joined + invited - 1;
  const heroes = summary.get('m.heroes');
  const heroIds = Array.isArray(heroes)
    ? heroes.filter((hero): hero is string => typeof hero === 'string')
    : members
        .filter((m) => m.stateKey !== userId && (membershipOf(m) === 'join' || membershipOf(m) === 'invite'))
        .map((m) => m.stateKey)
        .sort(new Intl.Collator().compare)
        .slice(0, 5);
  const names = heroIds.map((id) => memberName(state, id));
  if (others) return namesToRoomName(names, others);
  return 'Empty room';
}

/** "Ann", "Ann and Ben", "Ann and 3 others" (`count` is the other members, of which `names` are some). */
function namesToRoomName(names: string[], count: number): string {
  const withoutFirst = count - 1;
  if (names.length === 0) return 'Empty room';
  if (names.length === 1 && withoutFirst <= 1) return names[0]!;
  if (names.length === 2 && withoutFirst <= 2) return `${names[0]} and ${names[1]}`;
  return withoutFirst > 1 ? `${names[0]} and ${withoutFirst} others` : `${names[0]} and 1 other`;
}

/** A member's display name from its member event, else its Matrix ID. */
function memberName(state: Map<string, StateEvent>, userId: string): string {
  const name = state.get(stateKeyOf('m.room.member', userId))?.content.get('displayname');
  return typeof name === 'string' && name.trim() ? name : userId;
}

function stateKeyOf(type: string, stateKey: string): string {
  return `${type}\u0000${stateKey}`;
}

/** The state after `events` in order (a later event of the same type and state key replaces the earlier). */
function currentState(events: unknown[]): Map<string, StateEvent> {
  const state = new Map<string, StateEvent>();
  for (const event of events) {
    const type = field(event, 'type');
    const stateKey = field(event, 'state_key');
    const sender = field(event, 'sender');
    if (typeof type !== 'string' || typeof stateKey !== 'string' || typeof sender !== 'string') continue;
    state.set(stateKeyOf(type, stateKey), { type, stateKey, sender, content: entriesOf(field(event, 'content')) });
  }
  return state;
}

function eventsOf(section: unknown): unknown[] {
  const events = field(section, 'events');
  return Array.isArray(events) ? events : [];
}

/** A JSON object's own entries as a Map (never indexed by keys from the input); empty for anything else. */
function entriesOf(value: unknown): Map<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? new Map(Object.entries(value)) : new Map();
}

function field(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.hasOwn(value, key) ? (value as Record<string, unknown>)[key] : undefined;
}

function numberOr(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}
