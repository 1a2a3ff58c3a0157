/**
 * The room list: joined rooms and pending invites, with names and unread counts, kept current from the
 * client's room, timeline, membership and unread events; which room is selected; and the room actions
 * of the list's dialogs (create, encrypted or not; direct chat, always encrypted; accept, decline, join by
 * link, invite).
 *
 * On a cold start the list can be shown before there is a client: `showProvisional` takes the rows read
 * from the server's own sync (provisional-rooms.ts), and the client, once `attach`ed, replaces them only
 * when its first sync is applied, never with the partial list it holds while that sync is processed. The
 * list is clickable meanwhile; an action (accept, decline, create…) waits for the client's first sync.
 */
import type { ICreateRoomOpts, MatrixClient, Preset, Room, Visibility } from 'matrix-js-sdk';
import { ROOM_ADDED, ROOM_DELETED, ROOM_MY_MEMBERSHIP, ROOM_NAME, ROOM_RECEIPT, ROOM_TIMELINE, SYNC } from './events.js';

export interface RoomSummary {
  id: string;
  name: string;
  membership: 'join' | 'invite';
  /** Notifications the server counts as unread (0 for invites). */
  unread: number;
  /** Who invited us, for invites: Matrix ID and display name (the ID when the invite carries no name). */
  inviter?: string;
  inviterName?: string;
  /** Origin time of the latest event, for ordering. */
  lastActive: number;
  /** The room has an m.room.encryption state event: its messages are end-to-end encrypted. */
  encrypted: boolean;
}

/** The state event that turns on end-to-end encryption (Megolm) for a room; it cannot be turned off. */
export const MEGOLM_ENCRYPTION = { type: 'm.room.encryption', state_key: '', content: { algorithm: 'm.megolm.v1.aes-sha2' } };

export interface NewRoom {
  name: string;
  topic?: string;
  encrypted?: boolean;
}

function summaryOf(room: Room, userId: string): RoomSummary | undefined {
  const membership = room.getMyMembership();
  if (membership !== 'join' && membership !== 'invite') return undefined;
  const events = room.getLiveTimeline().getEvents();
  const last = events[events.length - 1];
  const inviter = membership === 'invite' ? room.getMember(userId)?.events.member?.getSender() : undefined;
  return {
    id: room.roomId,
    name: room.name || room.roomId,
    membership,
    unread: membership === 'join' ? room.getUnreadNotificationCount() : 0,
    inviter,
    inviterName: inviter ? (room.getMember(inviter)?.name ?? inviter) : undefined,
    lastActive: last?.getTs() ?? 0,
    encrypted: room.hasEncryptionStateEvent(),
  };
}

/** Invites first, then the most recently active rooms. */
function compareRooms(a: RoomSummary, b: RoomSummary): number {
  if (a.membership !== b.membership) return a.membership === 'invite' ? -1 : 1;
  return b.lastActive - a.lastActive || a.name.localeCompare(b.name);
}

export class RoomsState {
  rooms = $state<RoomSummary[]>([]);
  selectedId = $state<string | undefined>(undefined);
  /** True once the client's first sync (local, from the in-tab server) has been applied. */
  loaded = $state(false);
  /** True while `rooms` are the provisional rows, shown before the client's first sync. */
  provisional = $state(false);

  #client: MatrixClient | undefined;
  readonly #synced = Promise.withResolvers<MatrixClient>();
  readonly #refresh = () => this.refresh();
  readonly #onSync = (state: string) => {
    if (state === 'PREPARED' || state === 'SYNCING') this.#markLoaded();
    this.refresh();
  };

  /** With no client yet, the list is empty (or provisional) until `attach`. */
  constructor(client?: MatrixClient) {
    if (client) this.attach(client);
  }

  /** The client the list follows from now on (once; a later call is ignored). */
  attach(client: MatrixClient): void {
    if (this.#client) return;
    this.#client = client;
    client.on(SYNC, this.#onSync);
    client.on(ROOM_ADDED, this.#refresh);
    client.on(ROOM_DELETED, this.#refresh);
    client.on(ROOM_TIMELINE, this.#refresh);
    client.on(ROOM_NAME, this.#refresh);
    client.on(ROOM_MY_MEMBERSHIP, this.#refresh);
    client.on(ROOM_RECEIPT, this.#refresh);
    if (client.isInitialSyncComplete()) this.#markLoaded();
    this.refresh();
  }

  /** Shows rows read before the client's first sync; ignored once that sync is in. */
  showProvisional(rows: RoomSummary[]): void {
    if (this.loaded) return;
    this.provisional = true;
    this.rooms = [...rows].sort(compareRooms);
  }

  /** True once the list says what the rooms are (provisionally or from the client). */
  get listed(): boolean {
    return this.loaded || this.provisional;
  }

  #markLoaded(): void {
    if (this.loaded || !this.#client) return;
    this.loaded = true;
    this.provisional = false;
    this.#synced.resolve(this.#client);
  }

  /** The client once its first sync is applied: what every action needs (the rooms it acts on). */
  #ready(): Promise<MatrixClient> {
    return this.#synced.promise;
  }

  get selected(): RoomSummary | undefined {
    return this.rooms.find((room) => room.id === this.selectedId);
  }

  get invites(): RoomSummary[] {
    return this.rooms.filter((room) => room.membership === 'invite');
  }

  refresh(): void {
    const client = this.#client;
    // While the client's first sync is processed its rooms are a part of the list: the provisional rows stay
    // (`provisional` ends when that sync is applied).
    if (!client || this.provisional) return;
    const userId = client.getUserId() ?? '';
    const list: RoomSummary[] = [];
    for (const room of client.getRooms()) {
      const summary = summaryOf(room, userId);
      if (summary) list.push(summary);
    }
    this.rooms = list.sort(compareRooms);
    if (this.selectedId && !list.some((room) => room.id === this.selectedId && room.membership === 'join')) this.selectedId = undefined;
  }

  select(roomId: string | undefined): void {
    this.selectedId = roomId;
  }

  async create(options: NewRoom): Promise<string> {
    const client = await this.#ready();
    const request: ICreateRoomOpts = {
      name: options.name.trim(),
      // Public join rule so an invite link works for anyone who has it; the room is not listed in the directory.
      preset: 'public_chat' as Preset,
      visibility: 'private' as Visibility,
    };
    const topic = options.topic?.trim();
    if (topic) request.topic = topic;
    if (options.encrypted) request.initial_state = [MEGOLM_ENCRYPTION];
    const { room_id: roomId } = await client.createRoom(request);
    await this.#waitForRoom(client, roomId);
    this.select(roomId);
    return roomId;
  }

  /** A direct chat: a private, end-to-end encrypted room with `userId` invited, marked as direct in m.direct. */
  async startDirect(userId: string): Promise<string> {
    const client = await this.#ready();
    const target = userId.trim();
    const { room_id: roomId } = await client.createRoom({
      preset: 'trusted_private_chat' as Preset,
      visibility: 'private' as Visibility,
      is_direct: true,
      invite: [target],
      initial_state: [MEGOLM_ENCRYPTION],
    });
    await this.#markDirect(client, target, roomId);
    await this.#waitForRoom(client, roomId);
    this.select(roomId);
    return roomId;
  }

  async invite(roomId: string, userId: string): Promise<void> {
    const client = await this.#ready();
    await client.invite(roomId, userId.trim());
  }

  /** Joins an invited room; an invite to a direct chat is marked direct with the inviter, as its creator did. */
  async accept(roomId: string): Promise<void> {
    const client = await this.#ready();
    const room = client.getRoom(roomId);
    const invite = room?.getMember(client.getUserId() ?? '')?.events.member;
    const inviter = invite?.getSender();
    const via = inviter ? [serverOf(inviter)] : [];
    await client.joinRoom(roomId, { viaServers: via });
    if (inviter && invite?.getContent().is_direct === true) await this.#markDirect(client, inviter, roomId);
    await this.#waitForRoom(client, roomId);
    this.select(roomId);
  }

  /** Adds the room to m.direct under `userId` (the account data every client reads direct chats from). */
  async #markDirect(client: MatrixClient, userId: string, roomId: string): Promise<void> {
    const direct = (client.getAccountData('m.direct' as never)?.getContent() ?? {}) as Record<string, string[]>;
    const next = new Map(Object.entries(direct));
    const rooms = next.get(userId) ?? [];
    if (rooms.includes(roomId)) return;
    next.set(userId, [...rooms, roomId]);
    await client.setAccountData('m.direct' as never, Object.fromEntries(next) as never);
  }

  async decline(roomId: string): Promise<void> {
    const client = await this.#ready();
    await client.leave(roomId);
    this.refresh();
  }

  /** Joins a room from an invite link, through the servers the link names. */
  async join(roomId: string, via: string[]): Promise<void> {
    const client = await this.#ready();
    await client.joinRoom(roomId, { viaServers: via });
    await this.#waitForRoom(client, roomId);
    this.select(roomId);
  }

  /** Resolves once the client's sync has brought the room in as joined. */
  #waitForRoom(client: MatrixClient, roomId: string): Promise<void> {
    const joined = () => client.getRoom(roomId)?.getMyMembership() === 'join';
    if (joined()) return Promise.resolve(this.refresh());
    return new Promise((resolve) => {
      const check = () => {
        if (!joined()) return;
        client.off(ROOM_MY_MEMBERSHIP, check);
        client.off(ROOM_ADDED, check);
        this.refresh();
        resolve();
      };
      client.on(ROOM_MY_MEMBERSHIP, check);
      client.on(ROOM_ADDED, check);
    });
  }

  dispose(): void {
    this.#synced.reject(new Error('the room list was closed'));
    this.#synced.promise.catch(() => {});
    const client = this.#client;
    if (!client) return;
    client.off(SYNC, this.#onSync);
    for (const name of [ROOM_ADDED, ROOM_DELETED, ROOM_TIMELINE, ROOM_NAME, ROOM_MY_MEMBERSHIP, ROOM_RECEIPT] as const) {
      client.off(name as typeof ROOM_TIMELINE, this.#refresh);
    }
  }
}

/** The server name of a Matrix ID (everything after the first colon). */
export function serverOf(matrixId: string): string {
  return matrixId.slice(matrixId.indexOf(':') + 1);
}

/** The invite link of a room: opening it in profile `profile` offers to join through `via`. */
export function inviteLink(origin: string, profile: string, roomId: string, via: string[]): string {
  const query = via.map((server) => `via=${encodeURIComponent(server)}`).join('&');
  return `${origin}/?profile=${encodeURIComponent(profile)}#/join/${encodeURIComponent(roomId)}?${query}`;
}
