/**
 * `npm run homeserver` as a child process for tests: started in its own
 * process group on port 0, ready once it prints its address, stopped by
 * signalling the group (npm runs the script through a shell that does not
 * forward signals, exactly as Ctrl-C reaches the whole group in a terminal).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
const running = new Set<ChildProcess>();

export interface HomeserverProcess {
  url: string;
  output(): string;
  /**
   * Signals the process group and resolves once npm has exited: true when it
   * exited 0 or was ended by that very signal (npm itself dies of the signal
   * that the server handles; tests/node/cli.test.ts checks the server's own exit code).
   */
  stop(signal?: NodeJS.Signals): Promise<boolean>;
}

export function startHomeserverProcess(args: string[]): Promise<HomeserverProcess> {
  const child = spawn('npm', ['run', '--silent', 'homeserver', '--', '--port', '0', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  running.add(child);
  let out = '';
  let err = '';
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.on('exit', (code, signal) => {
      running.delete(child);
      done({ code, signal });
    }),
  );
  child.stderr!.on('data', (chunk) => (err += chunk));
  return new Promise((ready, fail) => {
    child.stdout!.on('data', (chunk) => {
      out += chunk;
      const m = /^listening on (http:\/\/127\.0\.0\.1:(\d+))$/m.exec(out);
      if (m && m[2] !== '0') {
        ready({
          url: m[1]!,
          output: () => out + err,
          async stop(signal = 'SIGTERM') {
            if (child.exitCode === null) process.kill(-child.pid!, signal);
            const { code, signal: endedBy } = await exit;
            return code === 0 || endedBy === signal;
          },
        });
      }
    });
    void exit.then(({ code }) => fail(new Error(`homeserver exited with ${code} before listening\n${out}\n${err}`)));
  });
}

/** Kills whatever a failed test left running (only processes started here). */
export function killLeftoverHomeservers(): void {
  for (const child of running) {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

export async function httpCall(base: string, method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; json: any }> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: response.status, json: await response.json() };
}

/** One registered user of a homeserver's client-server API over HTTP: a second client beside a UI under test. */
export class HttpClientUser {
  #token: string | undefined;
  #transaction = 0;
  userId = '';

  constructor(readonly base: string) {}

  /** Calls the API as this user (once registered); throws on an error answer. */
  async call(method: string, path: string, body?: unknown): Promise<any> {
    const { status, json } = await httpCall(this.base, method, path, body, this.#token);
    if (status < 200 || status >= 300) throw new Error(`${method} ${path}: ${status} ${JSON.stringify(json)}`);
    return json;
  }

  async register(username: string, displayName: string): Promise<string> {
    const registered = await this.call('POST', '/_matrix/client/v3/register', { username, password: `${username}-password`, auth: { type: 'm.login.dummy' } });
    this.#token = registered.access_token as string;
    this.userId = registered.user_id as string;
    await this.call('PUT', `/_matrix/client/v3/profile/${encodeURIComponent(this.userId)}/displayname`, { displayname: displayName });
    return this.userId;
  }

  /** Creates a private room named `name` and invites `invitees`; resolves with the room ID. */
  async createRoom(name: string, invitees: readonly string[] = []): Promise<string> {
    const { room_id: roomId } = await this.call('POST', '/_matrix/client/v3/createRoom', { name, preset: 'private_chat' });
    for (const user of invitees) await this.call('POST', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/invite`, { user_id: user });
    return roomId as string;
  }

  /** Sends an m.room.message; resolves with its event ID. */
  async send(roomId: string, content: Record<string, unknown>): Promise<string> {
    const txn = `t${Date.now()}-${this.#transaction++}`;
    const { event_id: eventId } = await this.call('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${txn}`, content);
    return eventId as string;
  }
}
