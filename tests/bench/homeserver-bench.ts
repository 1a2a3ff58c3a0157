/**
 * Homeserver benchmarks that run anywhere a `(Request) => Promise<Response>`
 * handler runs (in process in Chromium, or an HTTP client in Node): send →
 * own /sync wake-up latency, sequential and concurrent send rates, and the
 * time of an initial /sync over many rooms.
 */
import { percentile } from './report.js';

export type Handler = (request: Request) => Promise<Response>;

/**
 * One JSON request and its answer: how a benchmark client reaches a server
 * (a fetch handler in process, or a node:http connection in Node).
 */
export type Exchange = (method: string, path: string, body: string | undefined, headers: Record<string, string>) => Promise<{ status: number; json: any }>;

export interface Client {
  call(method: string, path: string, body?: unknown): Promise<any>;
  userId: string;
}

/** An Exchange over a `(Request) => Promise<Response>` handler. */
export function exchangeVia(handle: Handler, baseUrl: string): Exchange {
  return async (method, path, body, headers) => {
    const response = await handle(new Request(baseUrl + path, { method, headers, body }));
    return { status: response.status, json: await response.json() };
  };
}

export function registerBenchUser(handle: Handler, baseUrl: string, localpart: string): Promise<Client> {
  return registerBenchUserOver(exchangeVia(handle, baseUrl), localpart);
}

/** Registers `localpart` and returns a client whose every request goes through `exchange`. */
export async function registerBenchUserOver(exchange: Exchange, localpart: string): Promise<Client> {
  const raw = async (method: string, path: string, body: unknown, token?: string) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    const { status, json } = await exchange(method, path, body === undefined ? undefined : JSON.stringify(body), headers);
    if (status < 200 || status > 299) throw new Error(`${method} ${path}: ${status} ${JSON.stringify(json)}`);
    return json;
  };
  const registered = await raw('POST', '/_matrix/client/v3/register', { username: localpart, password: 'bench password', auth: { type: 'm.login.dummy' } });
  return {
    userId: registered.user_id,
    call: (method, path, body) => raw(method, path, body, registered.access_token),
  };
}

let txnCounter = 0;
export function sendMessage(client: Client, roomId: string, body: string): Promise<{ event_id: string }> {
  return client.call('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/bench${txnCounter++}`, { msgtype: 'm.text', body });
}

export async function createRoom(client: Client, name: string): Promise<string> {
  return (await client.call('POST', '/_matrix/client/v3/createRoom', { name, preset: 'private_chat' })).room_id;
}

/**
 * Latency from starting a send to the sender's own pending /sync long-poll
 * returning with it, in milliseconds (p50, p99), over `n` sends.
 */
export async function sendToSyncLatency(client: Client, roomId: string, n: number): Promise<{ p50: number; p99: number }> {
  let since = (await client.call('GET', '/_matrix/client/v3/sync?timeout=0')).next_batch as string;
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const sync = client.call('GET', `/_matrix/client/v3/sync?timeout=10000&since=${encodeURIComponent(since)}`);
    // Let the long-poll reach its wait before sending.
    await new Promise((r) => setTimeout(r, 0));
    const start = performance.now();
    const send = sendMessage(client, roomId, `latency ${i}`);
    const result = await sync;
    samples.push(performance.now() - start);
    await send;
    since = result.next_batch;
    // Catch up with anything the long-poll returned before the send committed.
    const joined = result.rooms?.join?.[roomId]?.timeline?.events ?? [];
    if (!joined.some((e: any) => e.content?.body === `latency ${i}`)) {
      since = (await client.call('GET', `/_matrix/client/v3/sync?timeout=10000&since=${encodeURIComponent(since)}`)).next_batch;
    }
  }
  samples.sort((a, b) => a - b);
  return { p50: percentile(samples, 50), p99: percentile(samples, 99) };
}

/** Sequential sends: messages per second and per-send latency percentiles. */
export async function sequentialSends(client: Client, roomId: string, n: number): Promise<{ rate: number; p50: number; p99: number }> {
  const samples: number[] = [];
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await sendMessage(client, roomId, `sequential ${i}`);
    samples.push(performance.now() - t);
  }
  const rate = (n * 1000) / (performance.now() - start);
  samples.sort((a, b) => a - b);
  return { rate, p50: percentile(samples, 50), p99: percentile(samples, 99) };
}

/** `senders` clients each sending `perSender` messages at once into one room. */
export async function concurrentSends(clients: Client[], roomId: string, perSender: number): Promise<{ rate: number; p50: number }> {
  const samples: number[] = [];
  const start = performance.now();
  await Promise.all(
    clients.map(async (client, s) => {
      for (let i = 0; i < perSender; i++) {
        const t = performance.now();
        await sendMessage(client, roomId, `concurrent ${s}/${i}`);
        samples.push(performance.now() - t);
      }
    }),
  );
  const rate = (clients.length * perSender * 1000) / (performance.now() - start);
  samples.sort((a, b) => a - b);
  return { rate, p50: percentile(samples, 50) };
}
