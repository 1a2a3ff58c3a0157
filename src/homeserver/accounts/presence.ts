/**
 * Presence (spec "Presence"): each local user's state (online, unavailable,
 * offline) and status message, kept in memory only: presence is ephemeral and
 * a restarted server knows nothing of who was online. A user who never set a
 * presence counts as online, since a user of this server is the one whose tab
 * is running it. Other servers' users' presence, from their m.presence EDUs,
 * is kept beside it (bounded).
 */
import type { Clock } from '../context.js';

/**
 * Longest status message kept, in UTF-16 code units (JavaScript's string
 * length, what a client's text box counts): ample for a status line, and it
 * bounds what one user can make the server hold and hand to everyone who
 * shares a room with them. Longer ones are refused with 400 M_INVALID_PARAM.
 */
export const MAX_STATUS_MSG_LENGTH = 1024;

/** Other servers' users whose presence is remembered. @default 10000 */
export const MAX_REMOTE_PRESENCE = 10_000;

export type PresenceState = 'online' | 'unavailable' | 'offline';
export const PRESENCE_STATES: readonly PresenceState[] = ['online', 'unavailable', 'offline'];

export interface PresenceStatus {
  presence: PresenceState;
  last_active_ago?: number;
  status_msg?: string;
  currently_active?: boolean;
}

interface Entry {
  presence: PresenceState;
  statusMsg?: string;
  lastActiveTs: number;
}

export class PresenceTracker {
  private readonly entries = new Map<string, Entry>();
  /** Other servers' users, oldest update first. */
  private readonly remote = new Map<string, Entry>();
  private readonly startedAt: number;

  constructor(private readonly clock: Clock) {
    this.startedAt = clock.now();
  }

  /** Sets the user's presence; a missing `statusMsg` clears the message, as in Synapse. */
  set(userId: string, presence: PresenceState, statusMsg?: string): void {
    const entry: Entry = { presence, lastActiveTs: this.clock.now() };
    if (statusMsg !== undefined) entry.statusMsg = statusMsg;
    this.entries.set(userId, entry);
  }

  get(userId: string): PresenceStatus {
    return this.format(this.entries.get(userId) ?? { presence: 'online' as const, lastActiveTs: this.startedAt });
  }

  private format(entry: Entry): PresenceStatus {
    const out: PresenceStatus = {
      presence: entry.presence,
      last_active_ago: Math.max(0, this.clock.now() - entry.lastActiveTs),
      currently_active: entry.presence === 'online',
    };
    if (entry.statusMsg !== undefined) out.status_msg = entry.statusMsg;
    return out;
  }

  /**
   * Another server's user's presence from its m.presence EDU (the EDU handler has checked that the user is
   * of the sending server). Kept in memory like our own, at most MAX_REMOTE_PRESENCE users (oldest dropped).
   */
  setRemote(userId: string, presence: PresenceState, statusMsg: string | undefined, lastActiveAgo: number): void {
    this.remote.delete(userId);
    const entry: Entry = { presence, lastActiveTs: this.clock.now() - Math.max(0, Math.min(lastActiveAgo, 365 * 86_400_000)) };
    if (statusMsg !== undefined) entry.statusMsg = statusMsg;
    this.remote.set(userId, entry);
    if (this.remote.size > MAX_REMOTE_PRESENCE) this.remote.delete(this.remote.keys().next().value!);
  }

  /** A remote user's last known presence, if their server told us. */
  getRemote(userId: string): PresenceStatus | undefined {
    const entry = this.remote.get(userId);
    return entry && this.format(entry);
  }

  /** Forgets the user (deactivation). */
  forget(userId: string): void {
    this.entries.delete(userId);
  }
}
