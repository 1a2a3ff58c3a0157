// The virtualised timeline creates a Message row for every message that scrolls into view, so what a row
// costs to create bounds how fast a long room scrolls. Rendering rows (server-side, which runs the same
// component script) must not construct an Intl.DateTimeFormat per row: constructing one costs about as
// much as the rest of the row, and it was most of the scroll's script time in the app benchmark.
import { readFileSync } from 'node:fs';
import { render } from 'svelte/server';
import { afterEach, expect, test, vi } from 'vitest';
import Message from '../../../src/ui/components/Message.svelte';
import type { TimelineMessage, TimelineState } from '../../../src/ui/state/timeline.svelte.js';

const fixture = JSON.parse(readFileSync(new URL('../fixtures/timeline-message.json', import.meta.url), 'utf8')) as TimelineMessage;
const timeline = { userId: '@bob:hs.test', nameOf: (id: string) => id, avatarOf: () => undefined } as unknown as TimelineState;

afterEach(() => vi.restoreAllMocks());

test('rendering message rows constructs no date formatter per row', () => {
  const constructed = vi.spyOn(Intl, 'DateTimeFormat');
  const rows = 40;
  let html = '';
  for (let i = 0; i < rows; i++) {
    html += render(Message, { props: { message: { ...fixture, id: `$row${i}`, ts: fixture.ts + i * 60_000 }, timeline } }).body;
  }
  // The rows did render, each with its time.
  expect(html.match(/<article/g)?.length).toBe(rows);
  expect(html.match(/<time /g)?.length).toBe(rows);
  expect(constructed).not.toHaveBeenCalled();
});
