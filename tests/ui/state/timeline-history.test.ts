// TimelineState reading far back in a long room against a real homeserver in process, with small bounds
// (the live timeline paged back to 20 events, a history window of 40, pages of 10): what the SDK holds for
// the reader stays bounded all the way to the room's creation (the messages read past are dropped from
// the room's timelines and the window alike), the shown messages are always a run without holes, paging
// back down returns every message once, and a message sent meanwhile, a reaction to a message far back
// and one sent after the reader is back all show.
import { describe, expect, it } from 'vitest';
import type { MatrixClient, Room } from 'matrix-js-sdk';
import { TimelineState, type TimelineBounds } from '../../../src/ui/state/timeline.svelte.js';
import { eventually, serverPerTest } from './support.js';

const world = serverPerTest();
const { keep, user } = world;

const MESSAGES = 150;
const PAGE = 10;
const BOUNDS: TimelineBounds = { live: 20, window: 40 };

/** Events the client's room holds in all its timeline sets, plus those of the state's history window. */
function eventsHeld(room: Room, timeline: TimelineState): number {
  let held = 0;
  for (const set of room.getTimelineSets()) for (const each of set.getTimelines()) held += each.getEvents().length;
  return held + timeline.historyEventCount;
}

/** The seeded messages' numbers as shown, checked to be consecutive (no hole, no repeat). */
function shownRun(timeline: TimelineState): number[] {
  const numbers = timeline.messages.map((m) => /^message (\d+)$/.exec(m.body)?.[1]).filter((n): n is string => n !== undefined).map(Number);
  numbers.forEach((n, i) => {
    if (i > 0) expect(n, `after message ${numbers[i - 1]}`).toBe(numbers[i - 1]! + 1);
  });
  return numbers;
}

function roomHolds(client: MatrixClient, roomId: string, body: string): boolean {
  const room = client.getRoom(roomId)!;
  return room.getUnfilteredTimelineSet().getTimelines().some((each) => each.getEvents().some((event) => event.getContent().body === body));
}

/** Ann writes `count` messages in a new room, then Ben joins it: his client has only the newest few. */
async function longRoom(count: number) {
  const ann = await user('ann', 'Ann');
  const roomId = await ann.rooms.create({ name: 'Long' });
  for (let i = 0; i < count; i++) await ann.client.sendTextMessage(roomId, `message ${i}`);
  const ben = await user('ben', 'Ben');
  await ann.rooms.invite(roomId, ben.client.getUserId()!);
  await eventually('invite', () => ben.rooms.invites.length === 1);
  await ben.rooms.accept(roomId);
  return { ann, ben, roomId };
}

describe('TimelineState: reading far back', () => {
  it('holds a bounded number of events all the way back and down again, and loses nothing sent meanwhile', async () => {
    const { ann, ben, roomId } = await longRoom(MESSAGES);
    const room = ben.client.getRoom(roomId)!;
    const timeline = keep(new TimelineState(ben.client, roomId, BOUNDS));
    await eventually('ben sees the newest', () => timeline.messages.some((m) => m.body === `message ${MESSAGES - 1}`));

    // Up to the room's creation, a page at a time, as the view does when its top comes near.
    const bound = BOUNDS.live + PAGE + BOUNDS.window + PAGE;
    let pages = 0;
    let mostHeld = 0;
    while (timeline.canLoadOlder) {
      expect(++pages, 'pages back').toBeLessThan(60);
      await timeline.loadOlder(PAGE);
      mostHeld = Math.max(mostHeld, eventsHeld(room, timeline));
      expect(eventsHeld(room, timeline)).toBeLessThanOrEqual(bound);
      expect(timeline.messages.length).toBeLessThanOrEqual(BOUNDS.window + PAGE);
      shownRun(timeline);
    }
    expect(shownRun(timeline)[0]).toBe(0);
    expect(timeline.canLoadNewer).toBe(true);
    // The first hundred messages were read, and neither the room nor anything else of the SDK's keeps them.
    for (const i of [0, 50, 99]) expect(roomHolds(ben.client, roomId, `message ${i}`)).toBe(false);
    expect(room.findEventById(timeline.messages.find((m) => m.body === 'message 120')?.id ?? '')).toBeUndefined();
    expect(mostHeld).toBeGreaterThan(BOUNDS.live);

    // Meanwhile Ann writes, and reacts to the first message, which Ben is looking at.
    await ann.client.sendTextMessage(roomId, 'while ben reads');
    const first = timeline.messages.find((m) => m.body === 'message 0')!;
    await ann.client.sendEvent(roomId, 'm.reaction' as never, { 'm.relates_to': { rel_type: 'm.annotation', event_id: first.id, key: '👍' } } as never);
    await eventually('the reaction shows in the history window', () => timeline.messages.find((m) => m.id === first.id)?.reactions[0]?.count === 1);
    expect(timeline.messages.some((m) => m.body === 'while ben reads')).toBe(false);

    // Back down: every message once, in order, until the window meets the live timeline.
    const seen = new Set<number>(shownRun(timeline));
    pages = 0;
    while (timeline.canLoadNewer) {
      expect(++pages, 'pages forward').toBeLessThan(60);
      await timeline.loadNewer(PAGE);
      expect(eventsHeld(room, timeline)).toBeLessThanOrEqual(bound + BOUNDS.window);
      expect(timeline.messages.length).toBeLessThanOrEqual(BOUNDS.window + BOUNDS.live + PAGE);
      for (const n of shownRun(timeline)) seen.add(n);
    }
    expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: MESSAGES }, (_, i) => i));
    expect(timeline.messages.at(-1)?.body).toBe('while ben reads');
    timeline.followLive();
    expect(timeline.historyEventCount).toBe(0);
    expect(timeline.messages.at(-1)?.body).toBe('while ben reads');

    await ann.client.sendTextMessage(roomId, 'after ben is back');
    await eventually('a new message shows', () => timeline.messages.at(-1)?.body === 'after ben is back');
    expect(eventsHeld(room, timeline)).toBeLessThanOrEqual(bound);
  });

  it('sending while reading history goes back to the newest messages', async () => {
    const { ben, roomId } = await longRoom(60);
    const timeline = keep(new TimelineState(ben.client, roomId, BOUNDS));
    await eventually('ben sees the newest', () => timeline.messages.some((m) => m.body === 'message 59'));
    for (let i = 0; i < 5; i++) await timeline.loadOlder(PAGE);
    expect(timeline.canLoadNewer).toBe(true);
    expect(timeline.messages.some((m) => m.body === 'message 59')).toBe(false);
    const jumps = timeline.liveJumps;
    await timeline.send('hello again');
    expect(timeline.liveJumps).toBe(jumps + 1);
    expect(timeline.canLoadNewer).toBe(false);
    expect(timeline.historyEventCount).toBe(0);
    await eventually('the sent message shows at the end', () => timeline.messages.at(-1)?.body === 'hello again');
    expect(timeline.messages.some((m) => m.body === 'message 59')).toBe(true);
  });
});
