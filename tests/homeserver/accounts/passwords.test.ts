// Password hashing at rest: the default cost, and the transparent upgrade of weaker hashes at login.
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../../../src/homeserver/index.js';
import { hashPassword, needsRehash, verifyPassword } from '../../../src/homeserver/accounts/passwords.js';
import { createMemoryStorage } from '../../../src/storage/memory/index.js';
import type { Storage } from '../../../src/storage/types.js';
import { startTestServer, type TestServer } from '../harness.js';

const V3 = '/_matrix/client/v3';
const randomBytes = (n: number) => crypto.getRandomValues(new Uint8Array(n));
const iterationsOf = (hash: string | undefined) => Number(hash?.split('$')[1]);

describe('password hashes', () => {
  it('use PBKDF2-SHA256 with 600,000 iterations by default', async () => {
    expect(DEFAULT_CONFIG.passwordHashIterations).toBe(600_000);
    const hash = await hashPassword({ config: DEFAULT_CONFIG, randomBytes }, 'hunter2');
    expect(hash).toMatch(/^pbkdf2-sha256\$600000\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
    expect(await verifyPassword(hash, 'hunter2')).toBe(true);
    expect(await verifyPassword(hash, 'hunter3')).toBe(false);
    expect(needsRehash({ config: DEFAULT_CONFIG }, hash)).toBe(false);
  });

  it('call weaker or foreign hashes in need of a rehash', () => {
    const config = { ...DEFAULT_CONFIG, passwordHashIterations: 1000 };
    expect(needsRehash({ config }, 'pbkdf2-sha256$999$c2FsdA$aGFzaA')).toBe(true);
    expect(needsRehash({ config }, 'pbkdf2-sha256$1000$c2FsdA$aGFzaA')).toBe(false);
    expect(needsRehash({ config }, 'pbkdf2-sha256$5000$c2FsdA$aGFzaA')).toBe(false);
    expect(needsRehash({ config }, 'bcrypt$12$x')).toBe(true);
    expect(needsRehash({ config }, 'garbage')).toBe(true);
  });
});

describe('POST /login with a hash weaker than configured', () => {
  let storage: Storage;
  const servers: TestServer[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) await server.close();
    await storage.close();
  });

  const storedHash = (userId: string) => storage.read(async (txn) => (await txn.users.get(userId))?.passwordHash);
  const login = (server: TestServer, password: string) =>
    server.call('POST', `${V3}/login`, { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'alice' }, password });

  it('rehashes the password with the configured cost, once, and keeps it working', async () => {
    storage = createMemoryStorage();
    // An account from a server that hashed with 1,000 iterations...
    const before = await startTestServer({ storage, config: { passwordHashIterations: 1000 } });
    servers.push(before);
    const { userId } = await before.register('alice', 'old but fine');
    const weak = await storedHash(userId);
    expect(iterationsOf(weak)).toBe(1000);
    await before.close();
    servers.pop();

    // ...meets the default configuration after an upgrade.
    const after = await startTestServer({ storage, config: { passwordHashIterations: DEFAULT_CONFIG.passwordHashIterations } });
    servers.push(after);
    expect((await login(after, 'wrong')).status).toBe(403);
    expect(await storedHash(userId)).toBe(weak);

    expect((await login(after, 'old but fine')).status).toBe(200);
    const strong = await storedHash(userId);
    expect(iterationsOf(strong)).toBe(600_000);
    expect(await verifyPassword(strong, 'old but fine')).toBe(true);

    expect((await login(after, 'old but fine')).status).toBe(200);
    expect(await storedHash(userId)).toBe(strong);
  });
});
