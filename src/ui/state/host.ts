/**
 * The contract between the UI and whatever runs the profile's server (src/app/boot.ts in a tab, a test
 * harness in Node): the UI asks it to start, to register the local user once, and to take the profile over
 * from another tab; it answers with a matrix-js-sdk client and a small connection-status source. Nothing of
 * the homeserver, the transports or the storage crosses this line: the UI speaks the client-server API only.
 */
import type { MatrixClient } from 'matrix-js-sdk';

/** What starting the profile led to. */
export type StartOutcome =
  /**
   * This tab runs the profile's server. When the local user is already registered, `client` is the started
   * client, or `signedIn` is there at once while the client is still on its way (a cold start).
   */
  | { kind: 'running'; serverName: string; client?: MatrixClient; signedIn?: SignedIn; connection: ConnectionSource }
  /** Another tab of this browser runs the profile. */
  | { kind: 'locked' };

/**
 * A GET of the client-server API as the local user (`path` under the server's root, e.g.
 * `/_matrix/client/v3/sync?…`), answered by the same server the client talks to, the same way.
 */
export type ClientApiGet = (path: string) => Promise<Response>;

/**
 * The registered user of a start whose matrix-js-sdk client is not ready yet: what the UI may show before it
 * (the room list, from one `GET /sync` through `api`) and the client, once started (its first sync asked).
 */
export interface SignedIn {
  userId: string;
  api: ClientApiGet;
  client: Promise<MatrixClient>;
}

/** Peers as the transport reports them; `change` fires on every peer event. */
export interface ConnectionSource {
  peerCount(): number;
  /** True while the libp2p node is running (false before it starts, or with no relay configured). */
  networkStarted(): boolean;
  readonly events: EventTarget;
  /** The connection panel's picture (absent where no replicator runs); `change` fires when it changes. */
  details?(): ConnectionDetails;
  /**
   * Servers this server's own event is still queued for (empty once every destination took it, or when it
   * was never queued); `delivery` fires on `events` when any event's answer changes.
   */
  pendingDestinations?(eventId: string): readonly string[];
}

/** One server this tab is linked to, or has something queued for. */
export interface PeerDetails {
  server: string;
  online: boolean;
  /** How the link runs: direct (WebRTC, WebSocket, another tab of this browser) or through the relay. */
  link: 'direct' | 'relayed' | 'same-browser' | 'none';
  /** Outbound records waiting for this server (capped; `more` says there are more). */
  queued: number;
  more: boolean;
  sending: boolean;
  failures: number;
}

/** The newest catch-up with one peer in one room. */
export interface CatchUpDetails {
  roomId: string;
  peer: string;
  fetched: number;
  state: 'running' | 'done' | 'failed';
}

export interface ConnectionDetails {
  /** The relay reservation: none configured, being made, held. */
  relay: 'none' | 'connecting' | 'connected';
  peers: PeerDetails[];
  catchUp: CatchUpDetails[];
}

export interface SessionHost {
  readonly profile: string;
  start(): Promise<StartOutcome>;
  /** Registers the profile's user (once), sets its display name, keeps the credentials, starts the client. */
  register(displayName: string): Promise<MatrixClient>;
  /** Asks the tab holding the profile to stop its server; resolves when this tab may start. */
  takeOver(): Promise<void>;
  /** Called when another tab took the profile over from this one (after this tab's server stopped). */
  onTakenOver(listener: () => void): void;
}
