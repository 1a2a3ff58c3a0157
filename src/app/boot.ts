/**
 * The chat app's session host (src/ui/state/host.ts) in a browser tab: the profile from `?profile=NAME`,
 * the relays from `/config.json` on the page's own origin, the profile's peer through bootPeer (Web Lock,
 * IndexedDB, identity, homeserver, transports, replicator), the local user registered once per profile
 * with its access token and device ID kept in the profile's storage (so a reload is the same user and
 * device), and a matrix-js-sdk client whose `fetchFn` calls `homeserver.handleClient`: no HTTP in between.
 *
 * A second tab of a profile finds the profile's Web Lock held and says so; "Take over" asks the running tab
 * over a BroadcastChannel to stop its server, which releases the lock, and then starts here.
 *
 * Cold start, local first: the peer's chunk is imported lazily (requested as soon as the host exists: see
 * loadStartChunks), so the first paint needs neither it nor the SDK. A registered user's start answers as
 * soon as the peer is booted, with the client-server API as that user: the UI reads the room list through it
 * (one GET /sync) and shows it; only then are the SDK's chunk and the crypto WASM (src/app/crypto.ts) loaded,
 * whose evaluation and compilation would hold the main thread while the list is read. The client's Rust
 * crypto starts before its first sync, and the peer's replicator and libp2p node (its own chunk) once that
 * sync is applied and painted. Each step leaves a `hometab:*` performance mark (README, "App" figures).
 */
import type { MatrixClient } from 'matrix-js-sdk';
import type { ClientApiGet, SessionHost, StartOutcome } from '../ui/state/host.js';
import type { BootedPeer } from './boot-peer.js';
import type { ConnectionParts, LiveConnectionSource } from './connection.js';
import { warmIdbDatabase } from '../storage/idb/warm.js';
import { enableCrypto, warmCrypto } from './crypto.js';
import { profileDatabase } from './profile-names.js';

/** Meta-store key of the local user's credentials. */
export const SESSION_KEY = 'app/session';
const CONTROL_CHANNEL = 'hometab-control/1';
const TAKE_OVER_TIMEOUT_MS = 15_000;
/** A reload's previous document may still hold the lock for a moment while it unloads. */
const RELOAD_GRACE_MS = 2_000;

interface StoredSession {
  userId: string;
  accessToken: string;
  deviceId: string;
}

function isStoredSession(value: unknown): value is StoredSession {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.userId === 'string' && typeof v.accessToken === 'string' && typeof v.deviceId === 'string';
}

/** The profile named by `?profile=`: letters, digits, '-' and '_' only, else 'default'. */
export function profileFromLocation(search: string): string {
  const name = new URLSearchParams(search).get('profile') ?? '';
  return /^[A-Za-z0-9_-]{1,64}$/.test(name) ? name : 'default';
}

/** Relay multiaddrs from /config.json (hostile until checked: strings only, at most 8). */
export async function fetchRelays(origin: string): Promise<string[]> {
  try {
    const response = await fetch(new URL('/config.json', origin), { cache: 'no-cache' });
    if (!response.ok) return [];
    const config: unknown = await response.json();
    const relays = typeof config === 'object' && config !== null ? (config as { relays?: unknown }).relays : undefined;
    if (!Array.isArray(relays)) return [];
    return relays.filter((r): r is string => typeof r === 'string' && r.startsWith('/') && r.length < 1024).slice(0, 8);
  } catch {
    return [];
  }
}

/** A localpart from a display name: lower case, [a-z0-9._=-], never empty. */
export function localpartFor(displayName: string): string {
  const base = displayName
    .normalize('NFKD')
    .toLowerCase()
    .replace(/[^a-z0-9._=-]+/g, '')
    .slice(0, 32);
  return base || 'user';
}

async function profileLockHeld(profile: string): Promise<boolean> {
  const locks = navigator.locks;
  if (!locks?.query) return false;
  const snapshot = await locks.query();
  return (snapshot.held ?? []).some((lock) => lock.name === `hometab-profile:${profile}`);
}

async function connectionOf(peer: BootedPeer, chunk: Promise<typeof import('./connection.js')>): Promise<LiveConnectionSource> {
  const { createConnectionSource } = await chunk;
  return createConnectionSource({ storage: peer.storage, transport: peer.transport, replicator: peer.replicator, libp2p: peer.libp2p as ConnectionParts['libp2p'] });
}

export interface AppHostOptions {
  profile: string;
  origin: string;
}

/**
 * The chunks a start needs: the peer's (storage, homeserver) and the connection source's, requested
 * together as soon as the host exists, before the UI mounts and before the lock is checked (a locked tab
 * has fetched them for nothing, which is cheap next to making every start wait); and matrix-js-sdk's, asked
 * for by `sdk()`. Evaluating the SDK's 700 KB holds the main thread for a few hundred ms on a busy machine,
 * which a registered user's room list (read from the server before the client) must not wait behind: that
 * start asks for it once the list is on screen, onboarding at once.
 */
function loadStartChunks() {
  let sdk: Promise<typeof import('./matrix-client.js')> | undefined;
  return {
    peer: import('./boot-peer.js').finally(() => performance.mark('hometab:peer-chunk-loaded')),
    connection: import('./connection.js'),
    sdk: () => (sdk ??= import('./matrix-client.js')),
  };
}

export function createAppHost(options: AppHostOptions): SessionHost {
  const { profile, origin } = options;
  const chunks = loadStartChunks();
  // The browser loads the profile's database while the chunks load; released once the peer's storage is open.
  const releaseWarmDatabase = warmIdbDatabase(profileDatabase(profile));
  // A failed chunk is reported where it is awaited; this only keeps it from counting as unhandled meanwhile.
  for (const chunk of [chunks.peer, chunks.connection]) chunk.catch(() => {});
  let peer: BootedPeer | undefined;
  let client: MatrixClient | undefined;
  let connection: LiveConnectionSource | undefined;
  const takenOverListeners: Array<() => void> = [];
  const control = new BroadcastChannel(`${CONTROL_CHANNEL}:${profile}`);

  control.addEventListener('message', (event: MessageEvent) => {
    const type = (event.data as { type?: unknown } | null)?.type;
    if (type !== 'take-over' || !peer) return;
    void stopHere().then(() => {
      control.postMessage({ type: 'released' });
      for (const listener of takenOverListeners) listener();
    });
  });

  async function stopHere(): Promise<void> {
    client?.stopClient();
    client = undefined;
    connection?.close();
    connection = undefined;
    const running = peer;
    peer = undefined;
    await running?.close();
  }

  /** Until the first sync is done, each SDK request leaves a `hometab:request …` measure (the cold-start breakdown); none after, so the timeline buffer stays small. */
  let measuringRequests = true;

  function fetchFnOf(booted: BootedPeer): typeof fetch {
    // A streamed body (an upload whose progress counts the bytes the server reads) must be half duplex.
    return ((input: RequestInfo | URL, init?: RequestInit) => {
      const answer = booted.homeserver.handleClient(new Request(input, init?.body instanceof ReadableStream ? { ...init, duplex: 'half' } as RequestInit : init));
      if (measuringRequests) {
        const start = performance.now();
        const url = new URL(input instanceof Request ? input.url : String(input));
        void answer.finally(() => performance.measure(`hometab:request ${init?.method ?? 'GET'} ${url.pathname.replace(/^\/_matrix\/client\//, '')}`, { start, end: performance.now() })).catch(() => {});
      }
      return answer;
    }) as typeof fetch;
  }

  /**
   * GETs of the client-server API as the local user, through the same in-process fetch the SDK's client
   * uses. `shown` settles once the first answer has been handed over and a frame painted after it (what the
   * UI shows before the client is then on screen), or after a frame if the UI asked nothing by then.
   */
  function earlyClientApi(booted: BootedPeer, session: StoredSession): { get: ClientApiGet; shown: Promise<void> } {
    const fetchFn = fetchFnOf(booted);
    const shown = Promise.withResolvers<void>();
    let asked = false;
    void afterPaint().then(() => {
      if (!asked) shown.resolve();
    });
    return {
      get(path) {
        const answer = fetchFn(`https://${booted.serverName}${path}`, { headers: { authorization: `Bearer ${session.accessToken}` } });
        if (!asked) void answer.then(afterPaint, afterPaint).then(shown.resolve);
        asked = true;
        return answer;
      },
      shown: shown.promise,
    };
  }

  /** The replicator and libp2p start once the first sync's rooms are painted (a frame, then a task), never before. */
  function startNetworkAfterPaint(booted: BootedPeer): void {
    void afterPaint().then(() => startNetwork(booted));
  }

  function startNetwork(booted: BootedPeer): void {
    if (peer !== booted) return;
    void booted
      .startNetwork()
      .then((libp2p) => {
        if (libp2p && peer === booted) connection?.attachLibp2p(libp2p as ConnectionParts['libp2p'] & object);
      })
      .catch((error: unknown) => console.error('the network did not start', error));
  }

  /** `before` (if given) settles before the SDK and the crypto, which take the main thread for a while, load. */
  async function startClient(booted: BootedPeer, session: StoredSession, before?: () => Promise<void> | undefined): Promise<MatrixClient> {
    await before?.();
    const { createClient } = await chunks.sdk();
    performance.mark('hometab:sdk-loaded');
    const started = createClient({
      baseUrl: `https://${booted.serverName}`,
      fetchFn: fetchFnOf(booted),
      userId: session.userId,
      accessToken: session.accessToken,
      deviceId: session.deviceId,
      timelineSupport: true,
      // No calls in this app: no TURN server polling and no call event handlers.
      disableVoip: true,
    });
    // Before the first sync, which carries the to-device messages (room keys) that only the crypto can take.
    await enableCrypto(started, profile);
    // Another tab may have taken the profile over while the SDK loaded (this tab's server is then closed).
    if (peer !== booted) throw new Error('the profile was taken over by another tab');
    started.once('sync' as never, (() => {
      performance.mark('hometab:first-sync-done');
      measuringRequests = false;
      startNetworkAfterPaint(booted);
    }) as never);
    await started.startClient({ initialSyncLimit: 30, lazyLoadMembers: true, pendingEventOrdering: 'detached' as never });
    performance.mark('hometab:client-started');
    client = started;
    return started;
  }

  return {
    profile,

    async start(): Promise<StartOutcome> {
      performance.mark('hometab:host-start');
      const graceEnd = Date.now() + RELOAD_GRACE_MS;
      while (await profileLockHeld(profile)) {
        if (Date.now() > graceEnd) {
          releaseWarmDatabase();
          return { kind: 'locked' };
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const [{ bootPeer }, relays] = await Promise.all([chunks.peer, fetchRelays(origin)]);
      try {
        peer = await bootPeer({ profile, relays, deferNetwork: true, mark: (name) => performance.mark(name), log: quietDebug() });
      } catch (error) {
        if (await profileLockHeld(profile)) return { kind: 'locked' };
        throw error;
      } finally {
        releaseWarmDatabase();
      }
      const booted = peer;
      performance.mark('hometab:peer-booted');
      const stored = await booted.storage.read((txn) => txn.meta.get<unknown>(SESSION_KEY));
      performance.mark('hometab:session-read');
      connection = await connectionOf(booted, chunks.connection);
      if (!isStoredSession(stored)) {
        // Onboarding: no room list to wait for.
        startNetwork(booted);
        chunks.sdk().catch(() => {});
        void afterPaint().then(() => warmCrypto().catch(() => {}));
        return { kind: 'running', serverName: booted.serverName, connection };
      }
      // The UI shows the room list from the server through `api` while the SDK loads and starts (its chunk is
      // most of a cold start); the client follows. Compiling the crypto's WASM holds the main thread for most
      // of a second on a busy machine, and evaluating the SDK a few hundred ms: both start once that list is
      // on screen, not while it is read.
      const api = earlyClientApi(booted, stored);
      const client = startClient(booted, stored, () => api.shown);
      client.catch(() => {});
      void api.shown.then(() => warmCrypto().catch(() => {}));
      return { kind: 'running', serverName: booted.serverName, connection, signedIn: { userId: stored.userId, api: api.get, client } };
    },

    async register(displayName: string): Promise<MatrixClient> {
      const booted = peer;
      if (!booted) throw new Error('the profile is not running in this tab');
      const existing = await booted.storage.read((txn) => txn.meta.get<unknown>(SESSION_KEY));
      if (isStoredSession(existing)) return client ?? startClient(booted, existing);
      const session = await registerLocalUser(booted, localpartFor(displayName));
      await booted.storage.write((txn) => txn.meta.put(SESSION_KEY, { ...session }));
      const started = await startClient(booted, session);
      await started.setDisplayName(displayName);
      return started;
    },

    async takeOver(): Promise<void> {
      const released = new Promise<void>((resolve) => {
        const onMessage = (event: MessageEvent) => {
          if ((event.data as { type?: unknown } | null)?.type !== 'released') return;
          control.removeEventListener('message', onMessage);
          resolve();
        };
        control.addEventListener('message', onMessage);
      });
      control.postMessage({ type: 'take-over' });
      const deadline = Date.now() + TAKE_OVER_TIMEOUT_MS;
      await Promise.race([released, new Promise((resolve) => setTimeout(resolve, TAKE_OVER_TIMEOUT_MS))]);
      // The lock is released a moment after the other tab's storage closes.
      while (await profileLockHeld(profile)) {
        if (Date.now() > deadline) throw new Error('the other tab did not let go of the profile');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },

    onTakenOver(listener: () => void): void {
      takenOverListeners.push(listener);
    },
  };
}

/** Registers the local user through the client-server API (m.login.dummy), trying another localpart if taken. */
async function registerLocalUser(peer: BootedPeer, localpart: string): Promise<StoredSession> {
  for (let attempt = 0; attempt < 8; attempt++) {
    const username = attempt === 0 ? localpart : `${localpart}${Math.floor(Math.random() * 10_000)}`;
    const response = await peer.homeserver.handleClient(
      new Request(`https://${peer.serverName}/_matrix/client/v3/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username, auth: { type: 'm.login.dummy' }, initial_device_display_name: 'Hometab' }),
      }),
    );
    const body = (await response.json()) as { user_id?: unknown; access_token?: unknown; device_id?: unknown; errcode?: unknown; error?: unknown };
    if (response.ok && typeof body.user_id === 'string' && typeof body.access_token === 'string' && typeof body.device_id === 'string') {
      return { userId: body.user_id, accessToken: body.access_token, deviceId: body.device_id };
    }
    if (body.errcode !== 'M_USER_IN_USE') throw new Error(`registration failed: ${String(body.error ?? response.status)}`);
  }
  throw new Error('registration failed: no free user name');
}

/** Settles after the next frame is painted (a frame, then a task). */
function afterPaint(): Promise<void> {
  return new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
}

function quietDebug() {
  return { debug() {}, warn: console.warn.bind(console), error: console.error.bind(console) };
}
