/**
 * `--auto-join`: the always-on peer's one local account (`@peer:<server>` by
 * default) accepts room invites from the inviters the policy allows, so that
 * inviting it into a room makes this server a member that stores the room and
 * serves catch-up to tabs returning while the authors are offline (store and
 * forward; in encrypted rooms it only ever holds ciphertext, having no keys).
 *
 * It is a client of the homeserver like any other: it registers (first
 * start) or logs in through the client-server API, long-polls /sync and
 * POSTs /join for allowed invites. Its credentials are kept in the storage
 * meta store, so a restart with the same --data is the same account. It
 * never touches rooms it was not invited to.
 */
import { randomBytes } from 'node:crypto';
import type { Storage } from '../storage/types.js';

export type AutoJoinPolicy = { kind: 'none' } | { kind: 'any' } | { kind: 'users'; users: ReadonlySet<string> };

/** `any`, `none`, or a comma-separated list of Matrix user IDs (whose invites are accepted). */
export function parseAutoJoin(value: string): AutoJoinPolicy {
  const trimmed = value.trim();
  if (trimmed === 'none' || trimmed === '') return { kind: 'none' };
  if (trimmed === 'any') return { kind: 'any' };
  const users = trimmed.split(',').map((u) => u.trim()).filter((u) => u.length > 0);
  for (const user of users) if (!/^@[^:\s]+:[^\s]+$/.test(user)) throw new Error(`--auto-join: ${user} is not a user ID (@user:server), any or none`);
  return { kind: 'users', users: new Set(users) };
}

export function allows(policy: AutoJoinPolicy, inviter: string | undefined): boolean {
  if (policy.kind === 'any') return true;
  if (policy.kind === 'none' || inviter === undefined) return false;
  return policy.users.has(inviter);
}

export interface AutoJoinerInit {
  handleClient(request: Request): Promise<Response>;
  storage: Storage;
  policy: AutoJoinPolicy;
  /** Localpart of the account that accepts invites. @default 'peer' */
  localpart?: string;
  /** /sync long-poll timeout, ms. @default 30_000 */
  syncTimeoutMs?: number;
  /** Wait after a failed /sync before the next. @default 1_000 */
  retryMs?: number;
  log?: { warn(message: string, detail?: unknown): void; debug(message: string, detail?: unknown): void };
}

export interface AutoJoiner {
  /** Registers or logs in, then starts the /sync loop; resolves with the account's user ID. */
  start(): Promise<string>;
  stop(): void;
  /** Rooms joined by this joiner so far. */
  readonly joined: ReadonlySet<string>;
}

interface Credentials {
  userId: string;
  accessToken: string;
  password: string;
}

const META_KEY = 'node/auto-join';
const BASE = 'http://localhost';

export function createAutoJoiner(init: AutoJoinerInit): AutoJoiner {
  const localpart = init.localpart ?? 'peer';
  const syncTimeoutMs = init.syncTimeoutMs ?? 30_000;
  const retryMs = init.retryMs ?? 1_000;
  const log = init.log ?? { warn: () => {}, debug: () => {} };
  const joined = new Set<string>();
  const controller = new AbortController();
  let credentials: Credentials | undefined;

  async function call(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; json: Record<string, unknown> }> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    const request = new Request(BASE + path, { method, headers, signal: controller.signal, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    const response = await init.handleClient(request);
    const text = await response.text();
    return { status: response.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  }

  async function signIn(): Promise<Credentials> {
    const stored = await init.storage.read((txn) => txn.meta.get<Credentials>(META_KEY));
    if (stored) {
      const whoami = await call('GET', '/_matrix/client/v3/account/whoami', undefined, stored.accessToken);
      if (whoami.status === 200) return stored;
      const login = await call('POST', '/_matrix/client/v3/login', { type: 'm.login.password', identifier: { type: 'm.id.user', user: localpart }, password: stored.password });
      if (login.status !== 200) throw new Error(`auto-join: login as ${localpart} failed (${login.status})`);
      const fresh = { ...stored, accessToken: String(login.json.access_token) };
      await init.storage.write((txn) => txn.meta.put(META_KEY, fresh));
      return fresh;
    }
    const password = randomBytes(24).toString('base64url');
    const registered = await call('POST', '/_matrix/client/v3/register', { username: localpart, password, auth: { type: 'm.login.dummy' }, initial_device_display_name: 'auto-join' });
    if (registered.status !== 200) throw new Error(`auto-join: registering ${localpart} failed (${registered.status} ${JSON.stringify(registered.json)})`);
    const created = { userId: String(registered.json.user_id), accessToken: String(registered.json.access_token), password };
    await init.storage.write((txn) => txn.meta.put(META_KEY, created));
    return created;
  }

  function inviterOf(room: unknown, userId: string): string | undefined {
    const events = (room as { invite_state?: { events?: unknown[] } })?.invite_state?.events ?? [];
    for (const event of events) {
      const e = event as { type?: unknown; state_key?: unknown; sender?: unknown };
      if (e.type === 'm.room.member' && e.state_key === userId && typeof e.sender === 'string') return e.sender;
    }
    return undefined;
  }

  async function loop(): Promise<void> {
    let since: string | undefined;
    while (!controller.signal.aborted) {
      try {
        const query = new URLSearchParams({ timeout: String(since ? syncTimeoutMs : 0) });
        if (since) query.set('since', since);
        const sync = await call('GET', `/_matrix/client/v3/sync?${query}`, undefined, credentials!.accessToken);
        if (sync.status !== 200) throw new Error(`sync answered ${sync.status}`);
        since = String(sync.json.next_batch);
        const invites = ((sync.json.rooms as { invite?: Record<string, unknown> } | undefined)?.invite ?? {}) as Record<string, unknown>;
        for (const [roomId, room] of Object.entries(invites)) {
          const inviter = inviterOf(room, credentials!.userId);
          if (!allows(init.policy, inviter)) {
            log.debug(`auto-join: invite to ${roomId} from ${inviter ?? 'unknown'} not accepted (policy)`);
            continue;
          }
          const join = await call('POST', `/_matrix/client/v3/join/${encodeURIComponent(roomId)}`, {}, credentials!.accessToken);
          if (join.status === 200) joined.add(roomId);
          else log.warn(`auto-join: joining ${roomId} failed (${join.status})`, join.json);
        }
      } catch (error) {
        if (controller.signal.aborted) return;
        log.warn('auto-join: sync failed', error);
        await new Promise((r) => setTimeout(r, retryMs).unref());
      }
    }
  }

  return {
    joined,
    async start() {
      credentials = await signIn();
      if (init.policy.kind !== 'none') void loop();
      return credentials.userId;
    },
    stop() {
      controller.abort();
    },
  };
}
