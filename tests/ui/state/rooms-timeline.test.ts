// RoomsState and TimelineState against a real homeserver in process: the room list follows creates,
// invites, accepts, declines and link joins; the timeline shows sent and received messages with their
// senders' names, counts unread messages until read, and paginates back to the room's creation.
import { describe, expect, it } from 'vitest';
import { RoomsState, inviteLink, serverOf } from '../../../src/ui/state/rooms.svelte.js';
import { TimelineState } from '../../../src/ui/state/timeline.svelte.js';
import { annAndBenIn, eventually, serverPerTest, startedClient } from './support.js';

const world = serverPerTest();

/** Pages back (10 at a time, 20 pages at most) until the room's beginning is reached. */
async function loadToBeginning(timeline: TimelineState): Promise<void> {
  for (let page = 0; timeline.canLoadOlder && page < 20; page++) await timeline.loadOlder(10);
  expect(timeline.canLoadOlder).toBe(false);
}
const { clients, states, user } = world;

describe('RoomsState', () => {
  it('lists a created room, an invite (with its inviter) that can be accepted or declined, and a link join', async () => {
    const ann = await user('ann', 'Ann');
    const ben = await user('ben', 'Ben');
    const cat = await user('cat', 'Cat');
    expect(ann.rooms.loaded).toBe(true);
    expect(ann.rooms.rooms).toEqual([]);

    const roomId = await ann.rooms.create({ name: 'Book club', topic: 'Novels' });
    expect(ann.rooms.selectedId).toBe(roomId);
    expect(ann.rooms.rooms.map((r) => [r.name, r.membership])).toEqual([['Book club', 'join']]);
    expect(ann.rooms.rooms[0]!.encrypted).toBe(false);

    await ann.rooms.invite(roomId, ben.client.getUserId()!);
    await eventually('ben sees the invite', () => ben.rooms.invites.length === 1);
    expect(ben.rooms.invites[0]).toMatchObject({ id: roomId, name: 'Book club', membership: 'invite', inviter: ann.client.getUserId(), inviterName: 'Ann' });
    await ben.rooms.accept(roomId);
    expect(ben.rooms.rooms.map((r) => [r.id, r.membership])).toEqual([[roomId, 'join']]);
    expect(ben.rooms.selectedId).toBe(roomId);

    const second = await ann.rooms.create({ name: 'Not for Ben' });
    await ann.rooms.invite(second, ben.client.getUserId()!);
    await eventually('ben sees the second invite', () => ben.rooms.invites.length === 1);
    await ben.rooms.decline(second);
    await eventually('the declined invite leaves the list', () => ben.rooms.invites.length === 0);
    expect(ben.rooms.rooms.map((r) => r.id)).toEqual([roomId]);

    await cat.rooms.join(roomId, [serverOf(ann.client.getUserId()!)]);
    expect(cat.rooms.rooms.map((r) => r.name)).toEqual(['Book club']);
  });

  it('starts a direct chat: the other user is invited and m.direct names the room', async () => {
    const ann = await user('ann', 'Ann');
    const ben = await user('ben', 'Ben');
    const roomId = await ann.rooms.startDirect(` ${ben.client.getUserId()!} `);
    await eventually('ben is invited', () => ben.rooms.invites.some((r) => r.id === roomId));
    await eventually('m.direct', () => (ann.client.getAccountData('m.direct' as never)?.getContent() as Record<string, string[]> | undefined)?.[ben.client.getUserId()!]?.includes(roomId) === true);
  });

  it('builds invite links the join route reads back', async () => {
    expect(inviteLink('http://127.0.0.1:8080', 'b', '!abc:def', ['s1', 's2'])).toBe('http://127.0.0.1:8080/?profile=b#/join/!abc%3Adef?via=s1&via=s2');
    expect(serverOf('@a:b:8448')).toBe('b:8448');
  });
});

describe('TimelineState', () => {
  it('shows messages with sender names on both sides, counts unread until read, and paginates back to the start', async () => {
    const { ann, ben, roomId } = await annAndBenIn(world, 'Chat');

    const annTimeline = new TimelineState(ann.client, roomId);
    const benTimeline = new TimelineState(ben.client, roomId);
    states.push(annTimeline, benTimeline);
    await annTimeline.send('hello ben  \n');
    await annTimeline.send('   ');
    await eventually('ben receives', () => benTimeline.messages.some((m) => m.body === 'hello ben'));
    const received = benTimeline.messages.find((m) => m.body === 'hello ben')!;
    expect(received).toMatchObject({ sender: ann.client.getUserId(), senderName: 'Ann', pending: false });
    expect(benTimeline.messages.filter((m) => m.body.trim() === '')).toEqual([]);
    await eventually('ben has one unread', () => ben.rooms.rooms.find((r) => r.id === roomId)?.unread === 1);
    await benTimeline.markRead();
    await eventually('ben has read it', () => ben.rooms.rooms.find((r) => r.id === roomId)?.unread === 0);

    await benTimeline.send('hi ann');
    await eventually('ann receives', () => annTimeline.messages.some((m) => m.body === 'hi ann' && m.senderName === 'Ben'));

    // Many more messages than the initial sync limit: a new client's timeline starts partial.
    for (let i = 0; i < 40; i++) await ann.client.sendTextMessage(roomId, `message ${i}`);
    const late = await startedClient(world.server, 'cal');
    clients.push(late);
    await ann.rooms.invite(roomId, late.getUserId()!);
    const lateRooms = new RoomsState(late);
    states.push(lateRooms);
    await eventually('cal invited', () => lateRooms.invites.length === 1);
    await lateRooms.accept(roomId);
    const lateTimeline = new TimelineState(late, roomId);
    states.push(lateTimeline);
    await eventually('cal sees the latest', () => lateTimeline.messages.some((m) => m.body === 'message 39'));
    expect(lateTimeline.messages.some((m) => m.body === 'hello ben')).toBe(false);
    expect(lateTimeline.canLoadOlder).toBe(true);
    await loadToBeginning(lateTimeline);
    const bodies = lateTimeline.messages.map((m) => m.body);
    expect(bodies.slice(0, 2)).toEqual(['hello ben', 'hi ann']);
    expect(bodies.filter((b) => b.startsWith('message '))).toHaveLength(40);
    expect(await lateTimeline.loadOlder()).toBe(0);
  });

  it('after a gap (a limited sync starts a new live timeline) older messages load again and join those seen before', async () => {
    const { ann, ben, roomId } = await annAndBenIn(world, 'Burst');
    const benTimeline = new TimelineState(ben.client, roomId);
    states.push(benTimeline);
    await eventually('ben sees the room from its creation', () => !benTimeline.canLoadOlder);
    // A few Ben sees as they come; they stay in the timeline the limited sync leaves behind.
    for (let i = 0; i < 3; i++) await ann.client.sendTextMessage(roomId, `before ${i}`);
    await eventually('ben sees them', () => benTimeline.messages.some((m) => m.body === 'before 2'));

    // A burst while Ben's client is not syncing: his next sync is limited, and the SDK starts a new live timeline.
    ben.client.stopClient();
    for (let i = 0; i < 40; i++) await ann.client.sendTextMessage(roomId, `burst ${i}`);
    await ben.client.startClient({ initialSyncLimit: 10, pendingEventOrdering: 'detached' as never });
    await eventually('ben sees the end of the burst', () => benTimeline.messages.some((m) => m.body === 'burst 39'));
    expect(benTimeline.messages.some((m) => m.body === 'burst 0')).toBe(false);
    expect(benTimeline.canLoadOlder).toBe(true);
    // Pagination meets the earlier messages and joins the two timelines: everything is there, in order.
    await loadToBeginning(benTimeline);
    expect(benTimeline.messages.map((m) => m.body)).toEqual([...Array.from({ length: 3 }, (_, i) => `before ${i}`), ...Array.from({ length: 40 }, (_, i) => `burst ${i}`)]);
  });
});
