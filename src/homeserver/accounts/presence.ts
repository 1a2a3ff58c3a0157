/**
 * Presence (spec "Presence"): each local user's state (online, unavailable,
 * offline) and status message, kept in memory only: presence is ephemeral and
 * a restarted server knows nothing of who was online. A user who never set a
 * presence counts as online, since a user of this server is the one whose tab
 * is running it.
 */
import type { Clock } from '../context.js';

/**
 * Longest status message kept, in UTF-16 code units (JavaScript's string
 * length, what a client's text box counts): ample for a status line, and it
 * bounds what one user can make the server hold and hand to everyone who
 * shares a room with them. Longer ones are refused with 400 M_INVALID_PARAM.
 */
export const MAX_STATUS_MSG_LENGTH = 1024;

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
    const entry = this.entries.get(userId) ?? { presence: 'online' as const, lastActiveTs: this.startedAt };
    const out: PresenceStatus = {
      presence: entry.presence,
      last_active_ago: Math.max(0, this.clock.now() - entry.lastActiveTs),
      currently_active: entry.presence === 'online',
    };
    if (entry.statusMsg !== undefined) out.status_msg = entry.statusMsg;
    return out;
  }

  /** Forgets the user (deactivation). */
  forget(userId: string): void {
    this.entries.delete(userId);
  }
}
