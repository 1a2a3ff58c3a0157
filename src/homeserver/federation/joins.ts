/**
 * Membership across servers, the local user's side (server-server API
 * "Joining rooms", "Inviting to a room", "Leaving rooms"): joining a room
 * this server is not in through one of the servers that is (make_join,
 * sign, send_join, then the room's state and auth chain checked and written
 * with the join in one write by the room engine), inviting a remote user
 * (invite v2: their server countersigns), and rejecting a remote invite
 * (make_leave / send_leave). A room where a local user is joined is handled
 * by the room engine alone: its events reach the other servers by the outbox.
 */
import { eventIdOf, serverNameOf, signEvent, SUPPORTED_ROOM_VERSIONS, validatePdu, type PDU } from '../../core/index.js';
import type { HomeserverContext } from '../context.js';
import { MatrixError, notFound } from '../http/errors.js';
import type { RoomEngine } from '../rooms/types.js';
import type { HistoryFetcher } from './backfill.js';
import type { RemoteServers } from './remote.js';

const enc = encodeURIComponent;
/** Events of recent history fetched right after a join over federation. @default 20 */
export const JOIN_HISTORY_PAGE = 20;
/** Longest a join waits for that first page of history. @default 5000 */
export const JOIN_HISTORY_WAIT_MS = 5_000;
const VER_QUERY = SUPPORTED_ROOM_VERSIONS.map((v) => `ver=${enc(v)}`).join('&');

export class FederatedMembership {
  constructor(
    private readonly ctx: HomeserverContext,
    private readonly rooms: RoomEngine,
    private readonly remote: RemoteServers,
    private readonly history?: HistoryFetcher,
  ) {}

  /** Whether a local user is joined to the room (this server holds it and writes into it itself). */
  async isResident(roomId: string): Promise<boolean> {
    const state = await this.rooms.currentState(roomId);
    if (!state) return false;
    for (const entry of state.values()) {
      const pdu = entry.pdu;
      if (pdu.type === 'm.room.member' && pdu.content.membership === 'join' && serverNameOf(pdu.state_key as string) === this.ctx.serverName) return true;
    }
    return false;
  }

  /**
   * POST /join: locally when resident, else through `via` (then the server of a pending invite's sender, then a
   * v10/11 room ID's server), first server that answers.
   */
  async join(roomId: string, userId: string, via: readonly string[], content: Record<string, unknown> = {}): Promise<void> {
    if (await this.isResident(roomId)) {
      await this.rooms.updateMembership(roomId, userId, userId, 'join', { content });
      return;
    }
    await this.firstThatAnswers(await this.candidateServers(roomId, userId, via), `join of ${userId} to ${roomId}`, (server) => this.joinVia(server, roomId, userId, content));
    await this.firstHistoryPage(roomId);
  }

  /** Tries `attempt` on each server in turn until one answers; every failure is logged, the last one thrown. */
  private async firstThatAnswers(servers: readonly string[], what: string, attempt: (server: string) => Promise<void>): Promise<void> {
    if (servers.length === 0) throw notFound('No known servers');
    let lastError: unknown;
    for (const server of servers) {
      try {
        await attempt(server);
        return;
      } catch (error) {
        lastError = error;
        this.ctx.log.warn(`${what} via ${server} failed`, error instanceof Error ? error.message : error);
      }
    }
    throw lastError;
  }

  /**
   * After joining over federation the timeline holds only our join: fetch a first page of recent history
   * (what the room's history visibility lets this server see), waiting at most JOIN_HISTORY_WAIT_MS so a
   * slow peer cannot hold up the join; the rest comes when the client pages back.
   */
  private async firstHistoryPage(roomId: string): Promise<void> {
    if (!this.history) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const waited = new Promise<void>((resolve) => (timer = setTimeout(resolve, JOIN_HISTORY_WAIT_MS)));
    const fetched = this.history.backfill(roomId, JOIN_HISTORY_PAGE).then(
      () => undefined,
      (error: unknown) => this.ctx.log.warn(`history after joining ${roomId} could not be fetched`, error),
    );
    await Promise.race([fetched, waited]);
    clearTimeout(timer);
  }

  private async candidateServers(roomId: string, userId: string, via: readonly string[]): Promise<string[]> {
    const out = new Set(via);
    const invite = await this.ctx.storage.read(async (t) => {
      const membership = await t.memberships.get(roomId, userId);
      return membership?.membership === 'invite' ? t.events.get(membership.eventId) : undefined;
    });
    if (invite) out.add(serverNameOf(invite.event.sender));
    const colon = roomId.indexOf(':');
    if (colon > 0) out.add(roomId.slice(colon + 1));
    out.delete(this.ctx.serverName);
    return [...out];
  }

  private async joinVia(server: string, roomId: string, userId: string, content: Record<string, unknown>): Promise<void> {
    // GET /_matrix/federation/v1/make_join/{roomId}/{userId}
    const made = await this.remote.call(server, 'join the room', { method: 'GET', path: `/_matrix/federation/v1/make_join/${enc(roomId)}/${enc(userId)}?${VER_QUERY}` });
    const version = made.room_version;
    const template = made.event as Record<string, unknown> | undefined;
    if (typeof version !== 'string' || !SUPPORTED_ROOM_VERSIONS.includes(version)) {
      throw new MatrixError(400, 'M_UNSUPPORTED_ROOM_VERSION', `${server} offers room version ${String(version)}`);
    }
    if (!template || typeof template !== 'object' || template.sender !== userId || template.state_key !== userId || template.type !== 'm.room.member') {
      throw new MatrixError(502, 'M_UNKNOWN', `${server} answered make_join with an event for someone else`);
    }
    const templateContent = (template.content ?? {}) as Record<string, unknown>;
    const { signatures: _s, hashes: _h, unsigned: _u, event_id: _e, ...fields } = template;
    const draft = {
      ...fields,
      room_id: roomId,
      origin_server_ts: this.ctx.clock.now(),
      content: { ...content, ...templateContent, membership: 'join' },
    } as unknown as PDU;
    const profile = await this.ctx.storage.read((t) => t.users.get(userId));
    if (profile?.displayname !== undefined && !('displayname' in draft.content)) draft.content.displayname = profile.displayname;
    if (profile?.avatarUrl !== undefined && !('avatar_url' in draft.content)) draft.content.avatar_url = profile.avatarUrl;
    const signed = await signEvent(draft, this.ctx.signer, version);
    validatePdu(signed, version);
    const eventId = eventIdOf(signed, version);

    // PUT /_matrix/federation/v2/send_join/{roomId}/{eventId}
    const joined = await this.remote.call(server, 'join the room', { method: 'PUT', path: `/_matrix/federation/v2/send_join/${enc(roomId)}/${enc(eventId)}`, body: signed });
    const state = joined.state;
    const authChain = joined.auth_chain;
    if (!Array.isArray(state) || !Array.isArray(authChain)) throw new MatrixError(502, 'M_UNKNOWN', `${server} answered send_join without state`);
    // A restricted join comes back countersigned by the resident; the same event, more signatures.
    const returned = joined.event;
    const join = returned !== undefined && eventIdOf(returned as object, version) === eventId ? returned : signed;
    await this.rooms.importJoin({ roomId, roomVersion: version, join, state, authChain, resident: server });
  }

  /**
   * POST /leave for a room this server is not in: rejecting a remote invite through its sender's server
   * (make_leave, send_leave), then keeping the leave as the user's membership.
   */
  async leave(roomId: string, userId: string, reason?: string): Promise<void> {
    if (await this.rooms.roomVersion(roomId)) {
      await this.rooms.updateMembership(roomId, userId, userId, 'leave', { reason });
      return;
    }
    const servers = await this.candidateServers(roomId, userId, []);
    if (servers.length === 0) throw notFound('Not a known room');
    const server = servers[0]!;
    // GET /_matrix/federation/v1/make_leave/{roomId}/{userId}
    const made = await this.remote.call(server, 'leave the room', { method: 'GET', path: `/_matrix/federation/v1/make_leave/${enc(roomId)}/${enc(userId)}` });
    const version = made.room_version;
    const template = made.event as Record<string, unknown> | undefined;
    if (typeof version !== 'string' || !SUPPORTED_ROOM_VERSIONS.includes(version) || !template || template.state_key !== userId || template.sender !== userId) {
      throw new MatrixError(502, 'M_UNKNOWN', `${server} answered make_leave with an unusable event`);
    }
    const { signatures: _s, hashes: _h, unsigned: _u, event_id: _e, ...fields } = template;
    const content: Record<string, unknown> = { membership: 'leave' };
    if (reason !== undefined) content.reason = reason;
    const signed = await signEvent({ ...fields, origin_server_ts: this.ctx.clock.now(), content } as unknown as PDU, this.ctx.signer, version);
    validatePdu(signed, version);
    const eventId = eventIdOf(signed, version);
    // PUT /_matrix/federation/v2/send_leave/{roomId}/{eventId}
    await this.remote.call(server, 'leave the room', { method: 'PUT', path: `/_matrix/federation/v2/send_leave/${enc(roomId)}/${enc(eventId)}`, body: signed });
    await this.rooms.storeOutlierMembership(roomId, version, eventId, signed, this.ctx.serverName);
  }

  /**
   * POST /knock for a room this server is not in: make_knock and send_knock v1 through `via` (then a v10/11
   * room ID's server), first server that answers; the knock is kept as the user's membership, with the
   * stripped state the resident sent.
   */
  async knock(roomId: string, userId: string, via: readonly string[], reason?: string): Promise<void> {
    await this.firstThatAnswers(await this.candidateServers(roomId, userId, via), `knock of ${userId} on ${roomId}`, (server) => this.knockVia(server, roomId, userId, reason));
  }

  private async knockVia(server: string, roomId: string, userId: string, reason?: string): Promise<void> {
    // GET /_matrix/federation/v1/make_knock/{roomId}/{userId}
    const made = await this.remote.call(server, 'knock on the room', { method: 'GET', path: `/_matrix/federation/v1/make_knock/${enc(roomId)}/${enc(userId)}?${VER_QUERY}` });
    const version = made.room_version;
    const template = made.event as Record<string, unknown> | undefined;
    if (typeof version !== 'string' || !SUPPORTED_ROOM_VERSIONS.includes(version)) {
      throw new MatrixError(400, 'M_UNSUPPORTED_ROOM_VERSION', `${server} offers room version ${String(version)}`);
    }
    if (!template || typeof template !== 'object' || template.sender !== userId || template.state_key !== userId || template.type !== 'm.room.member' || template.room_id !== roomId) {
      throw new MatrixError(502, 'M_UNKNOWN', `${server} answered make_knock with an unusable event`);
    }
    const { signatures: _s, hashes: _h, unsigned: _u, event_id: _e, ...fields } = template;
    const content: Record<string, unknown> = { membership: 'knock' };
    if (reason !== undefined) content.reason = reason;
    const profile = await this.ctx.storage.read((t) => t.users.get(userId));
    if (profile?.displayname !== undefined) content.displayname = profile.displayname;
    if (profile?.avatarUrl !== undefined) content.avatar_url = profile.avatarUrl;
    const signed = await signEvent({ ...fields, origin_server_ts: this.ctx.clock.now(), content } as unknown as PDU, this.ctx.signer, version);
    validatePdu(signed, version);
    const eventId = eventIdOf(signed, version);
    // PUT /_matrix/federation/v1/send_knock/{roomId}/{eventId}
    const answer = await this.remote.call(server, 'knock on the room', { method: 'PUT', path: `/_matrix/federation/v1/send_knock/${enc(roomId)}/${enc(eventId)}`, body: signed });
    const stripped = Array.isArray(answer.knock_room_state) ? answer.knock_room_state.slice(0, 50) : [];
    await this.rooms.storeOutlierMembership(roomId, version, eventId, { ...signed, unsigned: { knock_room_state: stripped } } as PDU, this.ctx.serverName);
  }

  /** The engine's remoteInvite hook: PUT /_matrix/federation/v2/invite to the invitee's server, which countersigns. */
  async invite(roomVersion: string, event: PDU, inviteRoomState: unknown[]): Promise<unknown> {
    const target = event.state_key as string;
    const eventId = eventIdOf(event, roomVersion);
    const answer = await this.remote.call(serverNameOf(target), `invite ${target}`, {
      method: 'PUT',
      path: `/_matrix/federation/v2/invite/${enc(event.room_id as string)}/${enc(eventId)}`,
      body: { room_version: roomVersion, event, invite_room_state: inviteRoomState },
    });
    return answer.event;
  }
}
