/**
 * Homeservers in one process, wired to each other directly: each gets a tiny
 * FederationClient that calls the other server's handleFederation with its
 * own name as the authenticated origin (what the libp2p transport does after
 * Noise), and `flush` plays p2p's outbox sender: it reads every server's
 * outbox, delivers it as PUT /send transactions and acks what was answered.
 * Links can be cut (`partition`) and healed to make forks. The p2p side may
 * reuse this for tests that need no network.
 */
import { createSigner, type Signer } from '../../src/core/index.js';
import type { FederationClient, HomeserverSettings } from '../../src/homeserver/index.js';
import { startTestServer, type TestServer } from '../homeserver/harness.js';
import type { Logger } from '../../src/homeserver/context.js';
import type { Storage } from '../../src/storage/index.js';

/** A signer whose server name is the hex of its public key, as Hometab servers are named. */
export async function hexSigner(seedByte: number): Promise<Signer> {
  const seed = new Uint8Array(32).fill(seedByte);
  const probe = await createSigner(seed, 'probe', 'ed25519:1');
  const name = Buffer.from(probe.publicKey).toString('hex');
  return createSigner(seed, name, 'ed25519:1');
}

export interface FederatedNetwork {
  servers: TestServer[];
  /** Cuts (false) or restores (true) the link between two servers, both directions. */
  link(a: TestServer, b: TestServer, up: boolean): void;
  /** Delivers every outbox until all are empty (or only unreachable destinations are left); returns PDUs+EDUs sent. */
  flush(): Promise<number>;
  /**
   * Delivers outboxes as soon as anything is queued (a stand-in for p2p's outbox sender, for tests that
   * drive real clients); returns the stop function. Failures are kept in `pumpErrors`.
   */
  pump(): () => void;
  readonly pumpErrors: unknown[];
  /** Requests made, by `METHOD path` without query (for assertions). */
  readonly log: string[];
  close(): Promise<void>;
}

export const quietLogger: Logger = { debug() {}, warn() {}, error() {} };

export async function startFederation(count: number, options: { log?: Logger; firstSeed?: number; config?: HomeserverSettings; storage?: (index: number) => Promise<Storage> } = {}): Promise<FederatedNetwork> {
  const servers: TestServer[] = [];
  for (let i = 0; i < count; i++) {
    servers.push(await startTestServer({ ...(options.storage ? { storage: await options.storage(i) } : {}), signer: await hexSigner((options.firstSeed ?? 11) + i), log: options.log ?? quietLogger, ...(options.config ? { config: options.config } : {}) }));
  }
  const byName = new Map(servers.map((s) => [s.serverName, s]));
  const down = new Set<string>();
  const pair = (a: string, b: string) => (a < b ? `${a}|${b}` : `${b}|${a}`);
  const log: string[] = [];

  const clientFor = (self: TestServer): FederationClient => ({
    async request(server, request) {
      const target = byName.get(server);
      if (!target || down.has(pair(self.serverName, server))) throw new Error(`${server} is not reachable`);
      log.push(`${request.method} ${request.path.split('?')[0]}`);
      const init: RequestInit = { method: request.method };
      if (request.body !== undefined) {
        init.body = JSON.stringify(request.body);
        init.headers = { 'content-type': 'application/json' };
      }
      const response = await target.homeserver.handleFederation(new Request(`http://${server}${request.path}`, init), self.serverName);
      const text = await response.text();
      let body: unknown;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        body = text;
      }
      return { status: response.status, body };
    },
  });
  const clients = new Map(servers.map((s) => [s.serverName, clientFor(s)]));
  for (const server of servers) server.homeserver.replication.setClient(clients.get(server.serverName));

  let txnCounter = 0;
  async function flushOnce(): Promise<number> {
    let sent = 0;
    for (const server of servers) {
      const destinations = await server.storage.read((t) => t.outbound.destinations());
      for (const destination of destinations) {
        if (down.has(pair(server.serverName, destination))) continue;
        const items = await server.storage.read((t) => t.outbound.peek(destination, 100));
        if (items.length === 0) continue;
        const pdus = items.map((i) => (i.payload as { pdu?: unknown }).pdu).filter((p) => p !== undefined);
        const edus = items.map((i) => (i.payload as { edu?: unknown }).edu).filter((e) => e !== undefined);
        const answer = await clients.get(server.serverName)!.request(destination, {
          method: 'PUT',
          path: `/_matrix/federation/v1/send/t${++txnCounter}`,
          body: { origin: server.serverName, origin_server_ts: Date.now(), pdus, edus },
        });
        if (answer.status !== 200) throw new Error(`send to ${destination} failed: ${answer.status} ${JSON.stringify(answer.body)}`);
        await server.storage.write((t) => t.outbound.ack(destination, items[items.length - 1]!.seq));
        sent += items.length;
      }
    }
    return sent;
  }

  const pumpErrors: unknown[] = [];
  let chain: Promise<unknown> = Promise.resolve();
  let scheduled = false;
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    chain = chain.then(async () => {
      scheduled = false;
      try {
        while ((await flushOnce()) > 0);
      } catch (error) {
        pumpErrors.push(error);
      }
    });
  };

  return {
    servers,
    log,
    pumpErrors,
    pump() {
      const stops = servers.map((s) => s.storage.subscribe((commit) => {
        if (commit.changes.some((c) => c.kind === 'outbound')) schedule();
      }));
      schedule();
      return () => {
        for (const stop of stops) stop();
      };
    },
    link(a, b, up) {
      if (up) down.delete(pair(a.serverName, b.serverName));
      else down.add(pair(a.serverName, b.serverName));
    },
    async flush() {
      let total = 0;
      for (let round = 0; round < 20; round++) {
        const sent = await flushOnce();
        total += sent;
        if (sent === 0) return total;
      }
      return total;
    },
    async close() {
      await chain;
      for (const server of servers) await server.close();
    },
  };
}
