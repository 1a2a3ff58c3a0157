/**
 * Connection status for the "Connection" status element: peers online and whether the network (libp2p)
 * has started, refreshed on every `change` of the source src/app hands over.
 */
import type { ConnectionSource } from './host.js';

export class ConnectionState {
  peers = $state(0);
  networkStarted = $state(false);
  readonly #source: ConnectionSource;
  readonly #refresh = () => {
    this.peers = this.#source.peerCount();
    this.networkStarted = this.#source.networkStarted();
  };

  constructor(source: ConnectionSource) {
    this.#source = source;
    source.events.addEventListener('change', this.#refresh);
    this.#refresh();
  }

  get summary(): string {
    const peers = `${this.peers} ${this.peers === 1 ? 'peer' : 'peers'} online`;
    return this.networkStarted ? peers : `${peers} (network starting)`;
  }

  dispose(): void {
    this.#source.events.removeEventListener('change', this.#refresh);
  }
}
