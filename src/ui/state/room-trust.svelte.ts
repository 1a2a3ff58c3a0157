/**
 * Whether an encrypted room's messages also go to devices this user has not verified, as Element warns: for
 * each member (joined or invited) the devices whose keys the crypto holds and that are neither verified here
 * nor cross-signed by a verified owner. This device itself is never counted; the user's other devices are.
 * Kept current from the crypto's device and trust events and the room's memberships. Verifying is another
 * class's work; this one only re-reads the answer when the crypto says trust changed.
 */
import type { MatrixClient, Room, RoomMember } from 'matrix-js-sdk';
import { DEVICES_UPDATED, MEMBER_MEMBERSHIP, USER_TRUST_CHANGED } from './events.js';

export interface UnverifiedMember {
  userId: string;
  name: string;
  /** Devices of this member that are not verified. */
  devices: number;
}

export class RoomTrustState {
  /** Members with unverified devices, in the room's member order (empty for unencrypted rooms or without crypto). */
  unverified = $state<UnverifiedMember[]>([]);
  /** False until the first answer (the device lists may need fetching). */
  checked = $state(false);
  readonly roomId: string;

  readonly #client: MatrixClient;
  #generation = 0;
  #disposed = false;
  readonly #recheck = (() => void this.refresh()) as never;
  readonly #onMembership = (_event: unknown, member: RoomMember) => {
    if (member.roomId === this.roomId) void this.refresh();
  };

  constructor(client: MatrixClient, roomId: string) {
    this.#client = client;
    this.roomId = roomId;
    client.on(DEVICES_UPDATED, this.#recheck);
    client.on(USER_TRUST_CHANGED, this.#recheck);
    client.on(MEMBER_MEMBERSHIP, this.#onMembership);
    void this.refresh();
  }

  /** Reads the answer again; an older refresh still running is overtaken and its result dropped. */
  async refresh(): Promise<void> {
    const generation = ++this.#generation;
    const answer = await this.#unverifiedMembers().catch((error: unknown) => {
      console.warn('could not read the devices of the room\'s members', error);
      return undefined;
    });
    if (this.#disposed || generation !== this.#generation || !answer) return;
    this.unverified = answer;
    this.checked = true;
  }

  async #unverifiedMembers(): Promise<UnverifiedMember[]> {
    const crypto = this.#client.getCrypto();
    const room: Room | null = this.#client.getRoom(this.roomId);
    if (!crypto || !room?.hasEncryptionStateEvent()) return [];
    await room.loadMembersIfNeeded();
    const members = room.getMembers().filter((m) => m.membership === 'join' || m.membership === 'invite');
    const devices = await crypto.getUserDeviceInfo(
      members.map((m) => m.userId),
      true,
    );
    const ownUser = this.#client.getUserId();
    const ownDevice = this.#client.getDeviceId();
    const result: UnverifiedMember[] = [];
    for (const member of members) {
      let count = 0;
      for (const deviceId of devices.get(member.userId)?.keys() ?? []) {
        if (member.userId === ownUser && deviceId === ownDevice) continue;
        const status = await crypto.getDeviceVerificationStatus(member.userId, deviceId);
        if (!status?.isVerified()) count++;
      }
      if (count > 0) result.push({ userId: member.userId, name: member.name, devices: count });
    }
    return result;
  }

  dispose(): void {
    this.#disposed = true;
    this.#client.off(DEVICES_UPDATED, this.#recheck);
    this.#client.off(USER_TRUST_CHANGED, this.#recheck);
    this.#client.off(MEMBER_MEMBERSHIP, this.#onMembership);
  }
}
