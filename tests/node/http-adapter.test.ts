import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { serveHttp, type HttpServerHandle } from '../../src/node/http-adapter.js';

let handle: HttpServerHandle | undefined;
afterEach(async () => {
  await handle?.close();
  handle = undefined;
});

describe('serveHttp', () => {
  it('listens on 127.0.0.1, on a free port when asked for 0', async () => {
    handle = await serveHttp(async () => Response.json({ ok: true }), { port: 0 });
    expect(handle.url).toBe(`http://127.0.0.1:${handle.port}`);
    expect(handle.port).toBeGreaterThan(0);
  });

  it('passes method, path, query, headers and body through, and the response back', async () => {
    handle = await serveHttp(async (request) => {
      const body = await request.text();
      return new Response(JSON.stringify({ method: request.method, url: request.url, auth: request.headers.get('authorization'), body }), {
        status: 201,
        headers: { 'content-type': 'application/json', 'x-extra': 'yes' },
      });
    }, { port: 0 });
    const response = await fetch(`${handle.url}/a/b?c=d`, { method: 'PUT', headers: { authorization: 'Bearer t' }, body: 'hello' });
    expect(response.status).toBe(201);
    expect(response.headers.get('x-extra')).toBe('yes');
    expect(await response.json()).toEqual({ method: 'PUT', url: `${handle.url}/a/b?c=d`, auth: 'Bearer t', body: 'hello' });
  });

  it("gives the handler the client's address from the socket (per-address rate limits)", async () => {
    handle = await serveHttp(async (_request, connection) => Response.json({ remoteAddress: connection.remoteAddress }), { port: 0 });
    const response = await fetch(`${handle.url}/whoami`);
    expect(await response.json()).toEqual({ remoteAddress: '127.0.0.1' });
  });

  it('streams large bodies both ways', async () => {
    const size = 8 * 1024 * 1024;
    handle = await serveHttp(async (request) => {
      const bytes = new Uint8Array(await request.arrayBuffer());
      return new Response(bytes, { headers: { 'content-type': 'application/octet-stream' } });
    }, { port: 0 });
    const sent = new Uint8Array(size).map((_, i) => i % 251);
    const response = await fetch(handle.url, { method: 'POST', body: sent });
    const received = new Uint8Array(await response.arrayBuffer());
    expect(received.length).toBe(size);
    expect(received[size - 1]).toBe((size - 1) % 251);
  });

  it('can answer before reading the whole body, and the connection still works', async () => {
    handle = await serveHttp(async (request) => {
      const reader = request.body!.getReader();
      await reader.read();
      await reader.cancel();
      return Response.json({ errcode: 'M_TOO_LARGE' }, { status: 413 });
    }, { port: 0 });
    const response = await fetch(handle.url, { method: 'POST', body: new Uint8Array(4 * 1024 * 1024) });
    expect(response.status).toBe(413);
    expect((await fetch(handle.url, { method: 'POST', body: 'x' })).status).toBe(413);
  });

  it('aborts the request signal when the client goes away', async () => {
    let aborted: () => void;
    let arrived: () => void;
    const wasAborted = new Promise<void>((resolve) => (aborted = resolve));
    const handlerRunning = new Promise<void>((resolve) => (arrived = resolve));
    handle = await serveHttp((request) => {
      request.signal.addEventListener('abort', () => aborted());
      arrived();
      return new Promise<Response>(() => {}); // a long-poll that never answers
    }, { port: 0 });
    const client = new AbortController();
    const pending = fetch(handle.url, { signal: client.signal }).catch(() => undefined);
    // Under load a fixed pause can end before the request reaches the handler; the abort must come while it waits.
    await handlerRunning;
    client.abort();
    await pending;
    await wasAborted;
  });

  it('turns a handler failure into a 500 JSON error', async () => {
    handle = await serveHttp(async () => {
      throw new Error('boom');
    }, { port: 0, onError: () => {} });
    const response = await fetch(handle.url);
    expect(response.status).toBe(500);
    expect((await response.json()).errcode).toBe('M_UNKNOWN');
  });

  it('closes with connections still open', async () => {
    handle = await serveHttp(() => new Promise<Response>(() => {}), { port: 0 });
    const pending = fetch(handle.url).catch((e) => e);
    await new Promise((r) => setTimeout(r, 50));
    await handle.close();
    expect(await pending).toBeInstanceOf(Error);
    handle = undefined;
  });
});

/** A raw TCP client: what it received, and a promise of its close. */
function rawClient(port: number): { socket: Socket; received: () => string; closed: Promise<void>; connected: Promise<void> } {
  const socket = connect(port, '127.0.0.1');
  let received = '';
  socket.on('data', (chunk) => (received += chunk));
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  const connected = new Promise<void>((resolve) => socket.on('connect', () => resolve()));
  return { socket, received: () => received, closed, connected };
}

describe('serveHttp against slow and many clients', () => {
  it('cuts off a body trickled in slowly once the request timeout passes', async () => {
    let bodyFailed!: (error: unknown) => void;
    const failure = new Promise<unknown>((resolve) => (bodyFailed = resolve));
    handle = await serveHttp(async (request) => {
      await request.arrayBuffer().then(() => bodyFailed(undefined), bodyFailed);
      return Response.json({});
    }, { port: 0, headersTimeoutMs: 200, requestTimeoutMs: 500, idleTimeoutMs: 10_000, onError: () => {} });
    const client = rawClient(handle.port);
    await client.connected;
    client.socket.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n');
    // A byte every 20 ms: never idle, but it would take over five hours.
    let sent = 0;
    const trickle = setInterval(() => {
      if (!client.socket.destroyed) client.socket.write('x', () => sent++);
    }, 20);
    await client.closed;
    clearInterval(trickle);
    expect(sent).toBeLessThan(500);
    expect(client.received()).toMatch(/^HTTP\/1\.1 408/);
    // The handler's body stream fails too, so whatever it was writing (an upload) is abandoned, not left hanging.
    expect(await failure).toBeInstanceOf(Error);
  });

  it('closes a connection that goes silent, but answers a long-poll shorter than the idle limit', async () => {
    handle = await serveHttp(async (request) => {
      if (new URL(request.url).pathname === '/poll') await new Promise((r) => setTimeout(r, 300));
      if (request.method === 'POST') await request.arrayBuffer();
      return Response.json({ ok: true });
    }, { port: 0, idleTimeoutMs: 800, requestTimeoutMs: 60_000 });
    const poll = await fetch(`${handle.url}/poll`);
    expect(await poll.json()).toEqual({ ok: true });

    const silent = rawClient(handle.port);
    await silent.connected;
    silent.socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nabc');
    const started = Date.now();
    await silent.closed;
    expect(silent.received()).not.toMatch(/200 OK/);
    // Closed by the idle limit, not by the two-minute-long request timeout.
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it('refuses connections past maxConnections and serves the ones it holds', async () => {
    handle = await serveHttp(async () => Response.json({ ok: true }), { port: 0, maxConnections: 2 });
    const held = [rawClient(handle.port), rawClient(handle.port)];
    await Promise.all(held.map((c) => c.connected));
    // Let the server accept both before the third arrives.
    await new Promise((r) => setTimeout(r, 50));
    const extra = rawClient(handle.port);
    await extra.closed;
    expect(extra.received()).toBe('');
    for (const client of held) {
      expect(client.socket.destroyed).toBe(false);
      client.socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      await client.closed;
      expect(client.received()).toMatch(/^HTTP\/1\.1 200/);
    }
  });
});
