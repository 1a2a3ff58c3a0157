/**
 * The "Room settings" panel of one room: its name and topic, its members (joined and invited) with their
 * roles from m.room.power_levels (Admin >= 100, Moderator >= 50, User below), what the local user may
 * change (the same rules the server's auth checks apply: enough power to send the state event; a role
 * can be changed only for members below one's own level, and only up to one's own level), and leaving.
 * Kept current from the room's state events, so a change made elsewhere shows here.
 */
import type { MatrixClient, Room, RoomMember } from 'matrix-js-sdk';
import { ROOM_MY_MEMBERSHIP, ROOM_STATE_UPDATE } from './events.js';

export type RoleName = 'Admin' | 'Moderator' | 'User';

export const ROLE_LEVELS: Record<RoleName, number> = { Admin: 100, Moderator: 50, User: 0 };

export function roleOf(level: number): RoleName {
  if (level >= ROLE_LEVELS.Admin) return 'Admin';
  if (level >= ROLE_LEVELS.Moderator) return 'Moderator';
  return 'User';
}

export interface MemberSummary {
  userId: string;
  name: string;
  membership: 'join' | 'invite';
  powerLevel: number;
  role: RoleName;
  /** Whether the local user may change this member's role (and to which roles). */
  canChangeRole: boolean;
  assignableRoles: RoleName[];
}

function memberOrder(a: MemberSummary, b: MemberSummary): number {
  return b.powerLevel - a.powerLevel || (a.membership === b.membership ? 0 : a.membership === 'join' ? -1 : 1) || a.name.localeCompare(b.name);
}

export class RoomSettingsState {
  name = $state('');
  topic = $state('');
  members = $state<MemberSummary[]>([]);
  canSetName = $state(false);
  canSetTopic = $state(false);
  myRole = $state<RoleName>('User');
  /** False once the local user has left (or was removed). */
  joined = $state(true);
  readonly roomId: string;

  readonly #client: MatrixClient;
  readonly #onState = (state: { roomId: string }) => {
    if (state.roomId === this.roomId) this.refresh();
  };
  readonly #onMembership = (room: Room) => {
    if (room.roomId === this.roomId) this.refresh();
  };

  constructor(client: MatrixClient, roomId: string) {
    this.#client = client;
    this.roomId = roomId;
    client.on(ROOM_STATE_UPDATE, this.#onState as never);
    client.on(ROOM_MY_MEMBERSHIP, this.#onMembership);
    this.refresh();
    // With lazy-loaded members the client knows only the members it has seen in the timeline.
    void this.#client.getRoom(roomId)?.loadMembersIfNeeded().then(() => this.refresh(), () => {});
  }

  refresh(): void {
    const room = this.#client.getRoom(this.roomId);
    if (!room) return;
    const me = this.#client.getUserId() ?? '';
    const state = room.currentState;
    this.name = room.name;
    const topic = state.getStateEvents('m.room.topic', '')?.getContent().topic;
    this.topic = typeof topic === 'string' ? topic : '';
    this.joined = room.getMyMembership() === 'join';
    this.canSetName = this.joined && state.maySendStateEvent('m.room.name', me);
    this.canSetTopic = this.joined && state.maySendStateEvent('m.room.topic', me);
    const myLevel = room.getMember(me)?.powerLevel ?? 0;
    this.myRole = roleOf(myLevel);
    const mayChangeLevels = this.joined && state.maySendStateEvent('m.room.power_levels', me);
    const assignable = (Object.keys(ROLE_LEVELS) as RoleName[]).filter((role) => ROLE_LEVELS[role] <= myLevel);
    const list: MemberSummary[] = [];
    for (const member of room.getMembers() as RoomMember[]) {
      if (member.membership !== 'join' && member.membership !== 'invite') continue;
      const level = member.powerLevel;
      const canChangeRole = mayChangeLevels && (member.userId === me || level < myLevel);
      list.push({
        userId: member.userId,
        name: member.name || member.userId,
        membership: member.membership,
        powerLevel: level,
        role: roleOf(level),
        canChangeRole,
        assignableRoles: canChangeRole ? assignable : [],
      });
    }
    this.members = list.sort(memberOrder);
  }

  async setName(name: string): Promise<void> {
    const next = name.trim();
    if (next && next !== this.name) await this.#client.setRoomName(this.roomId, next);
  }

  async setTopic(topic: string): Promise<void> {
    const next = topic.trim();
    if (next !== this.topic) await this.#client.setRoomTopic(this.roomId, next);
  }

  async setRole(userId: string, role: RoleName): Promise<void> {
    const member = this.members.find((m) => m.userId === userId);
    if (!member?.assignableRoles.includes(role)) throw new Error(`you cannot make ${userId} ${role}`);
    await this.#client.setPowerLevel(this.roomId, userId, ROLE_LEVELS[role]);
  }

  async leave(): Promise<void> {
    await this.#client.leave(this.roomId);
    this.refresh();
  }

  dispose(): void {
    this.#client.off(ROOM_STATE_UPDATE, this.#onState as never);
    this.#client.off(ROOM_MY_MEMBERSHIP, this.#onMembership);
  }
}
