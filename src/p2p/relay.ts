/**
 * The relay: a libp2p node that tabs reach over WebSockets and that relays
 * circuit-v2 connections between them, mostly to carry WebRTC signalling
 * until two tabs have their direct link (then it may go away). It has no
 * federation role and is never listed as a peer. Its key is its own (not a
 * homeserver's): stable across restarts when the caller passes a seed.
 */
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { circuitRelayServer } from '@libp2p/circuit-relay-v2';
import { identify } from '@libp2p/identify';
import { ping } from '@libp2p/ping';
import { webSockets } from '@libp2p/websockets';
import type { Libp2p } from '@libp2p/interface';
import { createLibp2p } from 'libp2p';
import { privateKeyFromSeed } from './identity.js';

export interface RelayInit {
  /** A 32-byte ed25519 seed for the relay's own key. @default a random key (a new PeerId each start) */
  seed?: Uint8Array;
  /** Listen addresses. @default ['/ip4/127.0.0.1/tcp/0/ws'] */
  listen?: string[];
  /** Addresses to announce instead (e.g. the public port when an HTTP server forwards upgrades). @default the listen addresses */
  announce?: string[];
  /** Reservations held at once: one per tab that wants to be reachable. @default 1024 (libp2p's 15 is too few for a room of tabs) */
  maxReservations?: number;
  /** How long one relayed connection may stay open, in ms. @default 600_000 */
  durationLimitMs?: number;
  /** How many bytes one relayed connection may carry. @default 67_108_864 (64 MiB; libp2p's 128 KiB ends a relayed federation exchange too soon) */
  dataLimitBytes?: bigint;
  /** Connections the relay keeps open at most. @default 2048 */
  maxConnections?: number;
}

export interface Relay {
  readonly node: Libp2p;
  /** Multiaddrs to give tabs, each ending in /p2p/<relay peer id>. */
  addresses(): string[];
  stop(): Promise<void>;
}

export async function createRelay(init: RelayInit = {}): Promise<Relay> {
  const node = await createLibp2p({
    ...(init.seed ? { privateKey: await privateKeyFromSeed(init.seed) } : {}),
    addresses: { listen: init.listen ?? ['/ip4/127.0.0.1/tcp/0/ws'], ...(init.announce ? { announce: init.announce } : {}) },
    transports: [webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { maxConnections: init.maxConnections ?? 2048 },
    services: {
      identify: identify(),
      ping: ping(),
      relay: circuitRelayServer({
        reservations: {
          maxReservations: init.maxReservations ?? 1024,
          defaultDurationLimit: init.durationLimitMs ?? 600_000,
          defaultDataLimit: init.dataLimitBytes ?? 64n << 20n,
        },
      }),
    },
  });
  return {
    node,
    addresses: () => node.getMultiaddrs().map((a) => a.toString()),
    async stop() {
      await node.stop();
    },
  };
}
