// combineTransports with a transport added after creation (the app adds libp2p once the room list is up):
// requests route to the late transport, its peer events are forwarded, and the handler and topic
// subscriptions installed before it joined serve it too. Two in-memory networks stand in for the
// BroadcastChannel (present from the start) and libp2p (added late).
import { afterEach, describe, expect, it } from 'vitest';
import { combineTransports } from '../../src/p2p/combine.js';
import { P2PError } from '../../src/p2p/errors.js';
import { MemoryNetwork } from '../../src/p2p/memory-transport.js';
import type { FederationTransport, PeerInfo } from '../../src/p2p/transport.js';

const opened: FederationTransport[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((t) => t.close()));
});

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const C = 'c'.repeat(64);

describe('combineTransports.add (a transport that joins late)', () => {
  it('routes requests to it, forwards its peer events, and gives it the earlier handler and subscriptions', async () => {
    const early = new MemoryNetwork({ requestTimeoutMs: 200 });
    const late = new MemoryNetwork({ requestTimeoutMs: 200 });
    const earlyA = early.transport(A);
    const earlyC = early.transport(C);
    const combined = combineTransports([earlyA]);
    opened.push(combined, earlyC);

    const inbound: Array<[string, string]> = [];
    combined.handle(async (origin, request) => {
      inbound.push([origin, request.path]);
      return { status: 200, body: { served: 'a' } };
    });
    const topicMessages: string[] = [];
    combined.subscribe('room', (data, from) => topicMessages.push(`${new TextDecoder().decode(data)} from ${from.slice(0, 1)}`));
    const events: string[] = [];
    for (const name of ['peer:online', 'peer:offline', 'peer:link'] as const) {
      combined.events.addEventListener(name, (e) => events.push(`${name} ${(e as CustomEvent<PeerInfo>).detail.server.slice(0, 1)}`));
    }

    expect(combined.peers().map((p) => p.server)).toEqual([C]);
    const before = await combined.request(B, { method: 'GET', path: '/before' }).catch((error: unknown) => error);
    expect(before).toBeInstanceOf(P2PError);

    const lateB = late.transport(B);
    lateB.handle(async (origin, request) => ({ status: 200, body: { origin, path: request.path } }));
    const lateA = late.transport(A);
    opened.push(lateB);
    combined.add(lateA);

    expect(events).toEqual(['peer:online b']);
    expect(combined.peers().map((p) => p.server).sort()).toEqual([B, C]);
    const answer = await combined.request(B, { method: 'GET', path: '/after' });
    expect(answer).toEqual({ status: 200, body: { origin: A, path: '/after' } });

    // The handler installed before the late transport existed answers over it.
    expect((await lateB.request(A, { method: 'GET', path: '/from-b' })).body).toEqual({ served: 'a' });
    expect(inbound).toEqual([[B, '/from-b']]);

    // So does the subscription made before it joined.
    await lateB.publish('room', new TextEncoder().encode('hello'));
    await late.settle();
    expect(topicMessages).toEqual(['hello from b']);

    late.disconnect(A, B);
    expect(events).toEqual(['peer:online b', 'peer:offline b']);
    expect(combined.peers().map((p) => p.server)).toEqual([C]);
  });

  it('refuses a transport of another server identity', () => {
    const network = new MemoryNetwork();
    const combined = combineTransports([network.transport(A)]);
    opened.push(combined);
    expect(() => combined.add(new MemoryNetwork().transport(B))).toThrow(/one server identity/);
  });
});
