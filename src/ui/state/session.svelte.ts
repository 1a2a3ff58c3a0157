/**
 * The session: which phase the tab is in (starting, locked by another tab, taken over, onboarding, ready,
 * failed), the local user's Matrix ID and display name, and the matrix-js-sdk client once there is one.
 * Every other state class is built on `client`; components read `phase` to pick a screen.
 *
 * A cold start of a registered user is 'ready' before the client is: `provisionalRooms` is then the room
 * list read through the client-server API (provisional-rooms.ts), asked for at once, and `client` follows.
 */
import type { MatrixClient } from 'matrix-js-sdk';
import { afterFirstSync } from './events.js';
import type { ConnectionSource, SessionHost, SignedIn } from './host.js';
import { fetchProvisionalRooms } from './provisional-rooms.js';
import type { RoomSummary } from './rooms.svelte.js';

export type SessionPhase = 'starting' | 'locked' | 'taking-over' | 'taken-over' | 'onboarding' | 'ready' | 'failed';

export class SessionState {
  phase = $state<SessionPhase>('starting');
  serverName = $state('');
  userId = $state('');
  displayName = $state('');
  error = $state('');
  /** Not deeply reactive: the client is an object graph the SDK mutates itself. */
  client = $state.raw<MatrixClient | undefined>(undefined);
  connection = $state.raw<ConnectionSource | undefined>(undefined);
  /** The room list before the client's first sync (a cold start only); rejected if it could not be read. */
  provisionalRooms = $state.raw<Promise<RoomSummary[]> | undefined>(undefined);

  readonly #host: SessionHost;
  /** Counts starts and take-overs: an answer for an earlier one is dropped. */
  #generation = 0;

  constructor(host: SessionHost) {
    this.#host = host;
    host.onTakenOver(() => {
      this.#generation++;
      this.client = undefined;
      this.phase = 'taken-over';
    });
  }

  get profile(): string {
    return this.#host.profile;
  }

  async start(): Promise<void> {
    this.#generation++;
    this.phase = 'starting';
    try {
      const outcome = await this.#host.start();
      if (outcome.kind === 'locked') {
        this.phase = 'locked';
        return;
      }
      this.serverName = outcome.serverName;
      this.connection = outcome.connection;
      if (outcome.client) this.#ready(outcome.client);
      else if (outcome.signedIn) this.#signedIn(outcome.signedIn);
      else this.phase = 'onboarding';
    } catch (error) {
      this.#fail(error);
    }
  }

  /** Onboarding: registers the local user with this display name. */
  async onboard(displayName: string): Promise<void> {
    const name = displayName.trim();
    if (!name) return;
    try {
      this.#ready(await this.#host.register(name));
    } catch (error) {
      this.#fail(error);
    }
  }

  /** Asks the tab holding the profile to stop, then starts here. */
  async takeOver(): Promise<void> {
    this.phase = 'taking-over';
    try {
      await this.#host.takeOver();
    } catch (error) {
      this.#fail(error);
      return;
    }
    await this.start();
  }

  /** Ready with the room list from the server while the client starts; the client joins when it is up. */
  #signedIn(signedIn: SignedIn): void {
    const rooms = fetchProvisionalRooms(signedIn.api, signedIn.userId).finally(() => performance.mark('hometab:provisional-rooms-read'));
    // A list that could not be read is no failure: the client's own list comes anyway.
    rooms.catch((error: unknown) => console.warn('the room list could not be read before the client', error));
    this.provisionalRooms = rooms;
    this.userId = signedIn.userId;
    this.phase = 'ready';
    // A client that comes (or fails) after the tab was taken over, or started again, belongs to no screen.
    const generation = this.#generation;
    const current = () => this.#generation === generation && this.phase === 'ready';
    signedIn.client.then(
      (client) => {
        if (current()) this.#ready(client);
      },
      (error: unknown) => {
        if (current()) this.#fail(error);
      },
    );
  }

  #ready(client: MatrixClient): void {
    this.client = client;
    this.userId = client.getUserId() ?? '';
    this.displayName = client.getUser(this.userId)?.displayName ?? '';
    this.phase = 'ready';
    afterFirstSync(client, () =>
      void client.getProfileInfo(this.userId).then(
        (info) => (this.displayName = info.displayname ?? this.displayName),
        () => {},
      ),
    );
  }

  #fail(error: unknown): void {
    this.error = error instanceof Error ? error.message : String(error);
    this.phase = 'failed';
  }
}
