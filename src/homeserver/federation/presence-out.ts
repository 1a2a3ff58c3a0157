/**
 * Outbound presence (server-server API "Presence"): when a local user sets
 * their presence, an m.presence EDU goes through the outbox to every other
 * server with a member joined to a room the user is joined to (the people
 * allowed to see it, as access/people.ts decides locally). Presence is
 * ephemeral: a server that is offline gets it when it returns, like any EDU,
 * and the receiver keeps only the newest.
 */
import type { PresenceStatus } from '../accounts/presence.js';
import type { HomeserverContext } from '../context.js';
import { joinedServers } from './edus.js';

export class PresenceSender {
  constructor(private readonly ctx: HomeserverContext) {}

  /** Queues the user's presence for every server sharing a room with them; failures are logged, never thrown. */
  async announce(userId: string, status: PresenceStatus): Promise<void> {
    const push: Record<string, unknown> = {
      user_id: userId,
      presence: status.presence,
      last_active_ago: status.last_active_ago ?? 0,
      currently_active: status.currently_active ?? false,
    };
    if (status.status_msg !== undefined) push.status_msg = status.status_msg;
    try {
      await this.ctx.storage.write(async (t) => {
        const servers = new Set<string>();
        for (const { roomId } of await t.memberships.forUser(userId, 'join')) {
          for (const server of await joinedServers(t, roomId, this.ctx.serverName)) servers.add(server);
        }
        for (const server of servers) await t.outbound.enqueue(server, { edu: { edu_type: 'm.presence', content: { push: [push] } } } as never);
      });
    } catch (error) {
      this.ctx.log.warn(`presence of ${userId} not queued for other servers`, error);
    }
  }
}
