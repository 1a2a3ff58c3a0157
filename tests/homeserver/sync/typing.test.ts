// TypingTracker: serials per change, refresh without a change, expiry, listeners, close.
import { afterEach, expect, test, vi } from 'vitest';
import { TypingTracker } from '../../../src/homeserver/sync/typing.js';

afterEach(() => {
  vi.useRealTimers();
});

test('each change bumps the serial and marks the room; refreshing changes nothing', () => {
  const typing = new TypingTracker();
  const changes: string[] = [];
  typing.onChange((roomId) => changes.push(roomId));
  expect(typing.serial).toBe(0);
  typing.set('!a', '@x', true);
  typing.set('!b', '@y', true);
  expect(typing.serial).toBe(2);
  expect(typing.changedSince(1)).toEqual(['!b']);
  typing.set('!a', '@x', true); // refresh
  expect(typing.serial).toBe(2);
  typing.set('!a', '@x', false);
  typing.set('!a', '@x', false); // already stopped
  expect(typing.serial).toBe(3);
  expect(typing.typingIn('!a')).toEqual([]);
  expect(typing.roomSerial('!a')).toBe(3);
  expect(changes).toEqual(['!a', '!b', '!a']);
  typing.close();
});

test('typing expires after its timeout', () => {
  vi.useFakeTimers();
  const typing = new TypingTracker();
  typing.set('!a', '@x', true, 1000);
  vi.advanceTimersByTime(999);
  expect(typing.typingIn('!a')).toEqual(['@x']);
  vi.advanceTimersByTime(1);
  expect(typing.typingIn('!a')).toEqual([]);
  expect(typing.serial).toBe(2);
  typing.close();
});

test('close clears timers and ignores later calls', () => {
  vi.useFakeTimers();
  const typing = new TypingTracker();
  typing.set('!a', '@x', true, 1000);
  typing.close();
  expect(vi.getTimerCount()).toBe(0);
  typing.set('!a', '@y', true);
  expect(typing.typingIn('!a')).toEqual([]);
});
