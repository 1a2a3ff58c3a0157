/**
 * A /sync whose storage read sees a commit before the commit's notice reaches the sync notifier (IndexedDB
 * runs a read created while a write is open after that write, and the write's completion is announced
 * later still): the notifier's "nothing new here" must not let the token step over what the read sees.
 * The case that lost Megolm room keys in the browser: a to-device message committed in that gap was left
 * out of the response, the token moved past it, and the next sync deleted it as delivered.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryStorage } from '../../../src/storage/memory/index.js';
import type { Commit, CommitListener, Storage } from '../../../src/storage/types.js';
import { startTestServer, type TestServer } from '../harness.js';

/**
 * The storage with its commit notices held back while `hold` is on, and without Storage.observe (so the
 * sync service reads storage rather than its memory, as it does whenever memory misses).
 */
function withLateNotices(inner: Storage): { storage: Storage; hold(): void; release(): void } {
  const listeners = new Set<CommitListener>();
  let held: Commit[] | undefined;
  const tell = (commit: Commit) => {
    for (const listener of [...listeners]) listener(commit);
  };
  inner.subscribe((commit) => (held ? held.push(commit) : tell(commit)));
  return {
    storage: {
      read: (fn) => inner.read(fn),
      write: (fn) => inner.write(fn),
      subscribe: (listener) => {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
      close: () => inner.close(),
    },
    hold: () => {
      held = [];
    },
    release: () => {
      const late = held ?? [];
      held = undefined;
      for (const commit of late) tell(commit);
    },
  };
}

let server: TestServer | undefined;
afterEach(() => server?.close());

describe('/sync with commit notices arriving after the read', () => {
  it('delivers a to-device message committed before its notice, once', async () => {
    const late = withLateNotices(createMemoryStorage());
    server = await startTestServer({ storage: late.storage });
    const alice = await server.register('alice');
    const bob = await server.register('bob');
    const sync = async (since?: string) => {
      const query = since ? `?timeout=0&since=${encodeURIComponent(since)}` : '?timeout=0';
      const res = await server!.call('GET', `/_matrix/client/v3/sync${query}`, undefined, bob.accessToken);
      expect(res.status).toBe(200);
      return res.json as { next_batch: string; to_device?: { events?: { sender: string; type: string; content: unknown }[] } };
    };
    const initial = await sync();
    const settled = await sync(initial.next_batch);

    late.hold();
    const sent = await server.call('PUT', '/_matrix/client/v3/sendToDevice/m.room.encrypted/txn1', { messages: { [bob.userId]: { [bob.deviceId]: { ciphertext: 'room key' } } } }, alice.accessToken);
    expect(sent.status).toBe(200);
    const racing = await sync(settled.next_batch);
    late.release();
    const after = await sync(racing.next_batch);

    const received = [...(racing.to_device?.events ?? []), ...(after.to_device?.events ?? [])];
    expect(received).toEqual([{ sender: alice.userId, type: 'm.room.encrypted', content: { ciphertext: 'room key' } }]);
  });
});
