/**
 * Access tokens already checked, so an authenticated request costs no storage
 * read: every request carries a token, and a read transaction per request is
 * a large share of a send or a /sync in IndexedDB. Entries are keyed by the
 * token's at-rest hash (storage/token-hash.ts), the form revocations are
 * reported in, and follow the storage exactly: a revoked token (logout,
 * device deletion, password change, deactivation — all revoke through the
 * access token store) leaves the cache when its write commits, and a lookup
 * that raced a revocation is not cached. Without Storage.observe nothing is
 * cached.
 */
import { accessTokenHash } from '../../storage/token-hash.js';
import type { AccessTokenRecord, Storage } from '../../storage/types.js';
import { LruMap } from '../sync/lru.js';

/** Tokens remembered at most; older ones are read again when used. */
const CAPACITY = 4096;

export class TokenCache {
  private readonly entries = new LruMap<string, AccessTokenRecord>(CAPACITY);
  /** Counts revocations; a lookup that saw it change may have read a token revoked meanwhile. */
  private revocations = 0;
  private readonly stop: (() => void) | undefined;

  constructor(private readonly storage: Storage) {
    this.stop = storage.observe?.((written) => {
      if (written.revokedTokenHashes.length === 0) return;
      this.revocations++;
      for (const tokenHash of written.revokedTokenHashes) this.entries.delete(tokenHash);
    });
  }

  /** The token's record, from memory or from storage; undefined if it is not valid. */
  async get(token: string): Promise<AccessTokenRecord | undefined> {
    const tokenHash = accessTokenHash(token);
    const cached = this.entries.get(tokenHash);
    if (cached) return cached;
    const before = this.revocations;
    const record = await this.storage.read((txn) => txn.accessTokens.get(token));
    if (record && this.stop && this.revocations === before) this.entries.set(tokenHash, record);
    return record;
  }

  close(): void {
    this.stop?.();
    this.entries.clear();
  }
}
