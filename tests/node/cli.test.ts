/**
 * The Node entry end to end: `src/node/cli.ts` (what `npm run homeserver`
 * runs) is started as a child process on port 0, driven over real HTTP,
 * stopped with SIGTERM and started again from the same data directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const children = new Set<ChildProcess>();

interface Running {
  child: ChildProcess;
  url: string;
  exit: Promise<number | null>;
  /** Everything printed so far, stdout then stderr. */
  output(): string;
}

/** Starts the CLI and resolves once it prints its address. */
function start(command: string, args: string[], detached = false): Promise<Running> {
  const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached });
  children.add(child);
  const exit = new Promise<number | null>((done) => child.on('exit', (code) => {
    children.delete(child);
    done(code);
  }));
  return new Promise((ready, fail) => {
    let out = '';
    let err = '';
    child.stderr!.on('data', (chunk) => (err += chunk));
    child.stdout!.on('data', (chunk) => {
      out += chunk;
      const m = /^listening on (http:\/\/127\.0\.0\.1:(\d+))$/m.exec(out);
      if (m && m[2] !== '0') ready({ child, url: m[1]!, exit, output: () => out + err });
    });
    void exit.then((code) => fail(new Error(`exited with ${code} before listening\n${out}\n${err}`)));
  });
}

const startCli = (args: string[]) => start(process.execPath, ['--import', 'tsx', 'src/node/cli.ts', ...args]);

async function call(base: string, method: string, path: string, body?: unknown, token?: string) {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: response.status, json: (await response.json()) as any, headers: response.headers };
}

async function stop(running: Running, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  running.child.kill(signal);
  return running.exit;
}

afterAll(() => {
  // Only if a test failed half-way: these are the processes this file started.
  for (const child of children) child.kill('SIGKILL');
});

describe('npm run homeserver', () => {
  it('keeps its identity, users and tokens across a restart from the same data directory', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'hometab-hs-'));
    try {
      const first = await startCli(['--port', '0', '--data', dataDir]);
      expect((await call(first.url, 'GET', '/.well-known/matrix/client')).json).toEqual({ 'm.homeserver': { base_url: first.url } });
      const versions = await call(first.url, 'GET', '/_matrix/client/versions');
      expect(versions.status).toBe(200);
      expect(versions.headers.get('access-control-allow-origin')).toBe('*');
      const registered = await call(first.url, 'POST', '/_matrix/client/v3/register', {
        username: 'alice',
        password: 'secret words',
        auth: { type: 'm.login.dummy' },
      });
      expect(registered.status).toBe(200);
      const { user_id: userId, access_token: token, device_id: deviceId } = registered.json;
      const serverName = userId.slice(userId.indexOf(':') + 1);
      expect(serverName).toMatch(/^[0-9a-f]{64}$/);
      await call(first.url, 'PUT', `/_matrix/client/v3/profile/${encodeURIComponent(userId)}/displayname`, { displayname: 'Alice' }, token);
      await call(first.url, 'PUT', `/_matrix/client/v3/user/${encodeURIComponent(userId)}/account_data/org.example`, { kept: true }, token);
      expect(await stop(first)).toBe(0);

      const key = await stat(join(dataDir, 'signing.key'));
      expect(key.mode & 0o777).toBe(0o600);
      expect(await readFile(join(dataDir, 'signing.key'), 'utf8')).toMatch(/^ed25519 1 [A-Za-z0-9+/]{43}\n$/);

      const second = await startCli(['--port', '0', '--data', dataDir]);
      const whoami = await call(second.url, 'GET', '/_matrix/client/v3/account/whoami', undefined, token);
      expect(whoami.json).toEqual({ user_id: userId, device_id: deviceId, is_guest: false });
      expect((await call(second.url, 'GET', `/_matrix/client/v3/profile/${encodeURIComponent(userId)}`)).json).toEqual({ displayname: 'Alice' });
      const data = await call(second.url, 'GET', `/_matrix/client/v3/user/${encodeURIComponent(userId)}/account_data/org.example`, undefined, token);
      expect(data.json).toEqual({ kept: true });
      const login = await call(second.url, 'POST', '/_matrix/client/r0/login', { type: 'm.login.password', user: 'alice', password: 'secret words' });
      expect(login.json.user_id).toBe(userId);
      expect(await stop(second, 'SIGINT')).toBe(0);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('keeps its data directory 0700 and files 0600, tightening a 0755 directory, and publishes only its public URL', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'hometab-hs-'));
    try {
      await chmod(dataDir, 0o755);
      // A file an older version left readable by others.
      await writeFile(join(dataDir, 'homeserver.sqlite'), '', { mode: 0o644 });
      await chmod(join(dataDir, 'homeserver.sqlite'), 0o644);
      const running = await startCli(['--port', '0', '--data', dataDir, '--public-url', 'https://matrix.example.org/']);
      expect(running.output()).toMatch(/was mode 755; tightened to 700/);
      expect(running.output()).toMatch(/homeserver\.sqlite was mode 644; tightened to 600/);
      const registered = await call(running.url, 'POST', '/_matrix/client/v3/register', { username: 'alice', password: 'pw', auth: { type: 'm.login.dummy' } });
      expect(registered.status).toBe(200);
      expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
      for (const file of ['signing.key', 'homeserver.sqlite', 'homeserver.sqlite-wal', 'homeserver.sqlite-shm']) {
        expect({ file, mode: (await stat(join(dataDir, file))).mode & 0o777 }).toEqual({ file, mode: 0o600 });
      }
      // A hostile Host header is not echoed: .well-known names the configured URL.
      const wellKnown = await new Promise<string>((resolve, reject) => {
        const req = httpRequest(`${running.url}/.well-known/matrix/client`, { headers: { host: 'evil.example' } }, (res) => {
          let body = '';
          res.on('data', (chunk) => (body += chunk));
          res.on('end', () => resolve(body));
        });
        req.on('error', reject);
        req.end();
      });
      expect(JSON.parse(wellKnown)).toEqual({ 'm.homeserver': { base_url: 'https://matrix.example.org' } });
      expect(await stop(running)).toBe(0);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('runs without persistence under --memory and exits 0 on SIGTERM', async () => {
    const running = await startCli(['--memory', '--port', '0']);
    const registered = await call(running.url, 'POST', '/_matrix/client/v3/register', { auth: { type: 'm.login.dummy' } });
    expect(registered.status).toBe(200);
    const unknown = await call(running.url, 'GET', '/_matrix/client/v3/nothing/here');
    expect([unknown.status, unknown.json.errcode]).toEqual([404, 'M_UNRECOGNIZED']);
    expect(await stop(running)).toBe(0);
  });

  it('limits registrations per client address over HTTP (429 with Retry-After); --no-rate-limits lifts it', async () => {
    const register = (base: string, username: string) =>
      call(base, 'POST', '/_matrix/client/v3/register', { username, password: 'secret words', auth: { type: 'm.login.dummy' } });
    const limited = await startCli(['--port', '0', '--memory']);
    const statuses: number[] = [];
    let refused: Awaited<ReturnType<typeof register>> | undefined;
    for (let i = 0; i < 12; i++) {
      const res = await register(limited.url, `user${i}`);
      statuses.push(res.status);
      if (res.status === 429) refused ??= res;
    }
    // Every local client shares 127.0.0.1: the default burst of 10, then one about every 6 s.
    expect(statuses).toEqual([...Array(10).fill(200), 429, 429]);
    expect(refused!.json).toMatchObject({ errcode: 'M_LIMIT_EXCEEDED', retry_after_ms: expect.any(Number) });
    expect(refused!.headers.get('retry-after')).toBe(String(Math.ceil(refused!.json.retry_after_ms / 1000)));
    expect(await stop(limited)).toBe(0);

    const open = await startCli(['--port', '0', '--memory', '--no-rate-limits']);
    for (let i = 0; i < 12; i++) expect((await register(open.url, `user${i}`)).status).toBe(200);
    expect(await stop(open)).toBe(0);
    // 22 registrations hash at the CLI's real cost (PBKDF2, 600,000 iterations): seconds on an idle
    // machine, far more when the other test files share its two cores.
  }, 120_000);

  it('refuses conflicting options with a usage message', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/node/cli.ts', '--memory', '--data', '/tmp/x'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (chunk) => (err += chunk));
    const code = await new Promise((done) => child.on('exit', done));
    expect(code).toBe(2);
    expect(err).toContain('usage:');
  });

  it('is what `npm run homeserver` starts', async () => {
    // npm runs the script through `sh -c`, which does not pass signals on; a terminal's Ctrl-C
    // reaches the whole process group, so the test signals the group the same way.
    const running = await start('npm', ['run', '--silent', 'homeserver', '--', '--memory', '--port', '0'], true);
    expect((await call(running.url, 'GET', '/_matrix/client/versions')).status).toBe(200);
    process.kill(-running.child.pid!, 'SIGINT');
    await running.exit;
    // The server itself is a grandchild: wait for its port to close.
    await expect.poll(() => fetch(`${running.url}/_matrix/client/versions`).then(() => 'open', () => 'closed'), { timeout: 5000 }).toBe('closed');
  });
});
