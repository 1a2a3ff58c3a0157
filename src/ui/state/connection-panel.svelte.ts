/**
 * The connection panel and the offline banner: the app's connection details (relay, peers and their
 * links, queues, catch-up) refreshed on every `change`, and whether this tab is offline — no peer
 * reachable — once a short grace after start has passed, so opening the app does not flash the banner
 * while the first peers are still being dialled.
 */
import type { ConnectionDetails, ConnectionSource } from './host.js';

export const OFFLINE_GRACE_MS = 3_000;

export class ConnectionPanelState {
  details = $state<ConnectionDetails>({ relay: 'none', peers: [], catchUp: [] });
  peers = $state(0);
  #graceOver = $state(false);
  /** True when the app exposes details (a replicator runs). */
  readonly available: boolean;
  readonly #source: ConnectionSource;
  readonly #timer: ReturnType<typeof setTimeout>;
  readonly #refresh = () => {
    this.peers = this.#source.peerCount();
    if (this.#source.details) this.details = this.#source.details();
  };

  constructor(source: ConnectionSource, graceMs = OFFLINE_GRACE_MS) {
    this.#source = source;
    this.available = typeof source.details === 'function';
    source.events.addEventListener('change', this.#refresh);
    this.#timer = setTimeout(() => (this.#graceOver = true), graceMs);
    this.#refresh();
  }

  /** No peer is reachable (after the grace period). */
  get offline(): boolean {
    return this.#graceOver && this.peers === 0;
  }

  /** Records waiting in all outbound queues. */
  get queuedTotal(): number {
    return this.details.peers.reduce((sum, p) => sum + p.queued, 0);
  }

  dispose(): void {
    clearTimeout(this.#timer);
    this.#source.events.removeEventListener('change', this.#refresh);
  }
}
