// NotificationsState against a real homeserver in process with a fake Notification API: nothing until the
// user opts in and the browser grants permission; then a message from someone else notifies only while the
// tab is hidden, never for one's own messages or a muted room; the opt-in survives a new session; a click
// opens the room; a denied permission leaves it off.
import { describe, expect, it } from 'vitest';
import type { MatrixClient } from 'matrix-js-sdk';
import { NotificationsState, type NotificationApi, type PreferenceStore } from '../../../src/ui/state/notifications.svelte.js';
import { eventually, serverPerTest } from './support.js';

const { states, client: user } = serverPerTest();

interface Shown {
  title: string;
  body?: string;
  tag?: string;
  instance: { onclick: ((ev: Event) => unknown) | null; closed: boolean };
}

/** A Notification API that records what is shown and answers permission requests with `answer`. */
function fakeNotifications(answer: 'granted' | 'denied') {
  const shown: Shown[] = [];
  let permission: 'default' | 'granted' | 'denied' = 'default';
  let requests = 0;
  class FakeNotification {
    onclick: ((ev: Event) => unknown) | null = null;
    closed = false;
    static get permission() {
      return permission;
    }
    static async requestPermission() {
      requests += 1;
      permission = answer;
      return permission;
    }
    constructor(title: string, options?: { body?: string; tag?: string }) {
      shown.push({ title, body: options?.body, tag: options?.tag, instance: this });
    }
    close() {
      this.closed = true;
    }
  }
  return { api: FakeNotification as unknown as NotificationApi, shown, requests: () => requests };
}

function memoryStore(): PreferenceStore {
  const values = new Map<string, string>();
  return { get: (key) => values.get(key) ?? null, set: (key, value) => void values.set(key, value) };
}

async function sharedRoom(ann: MatrixClient, ben: MatrixClient, name: string): Promise<string> {
  const { room_id: roomId } = await ann.createRoom({ name, invite: [ben.getUserId()!] });
  await eventually('ben invited', () => ben.getRoom(roomId)?.getMyMembership() === 'invite');
  await ben.joinRoom(roomId);
  await eventually('ann sees ben joined', () => ann.getRoom(roomId)?.getMember(ben.getUserId()!)?.membership === 'join');
  return roomId;
}

/** Waits until `client` has the message (so a notification, if any, has been decided). */
async function received(client: MatrixClient, roomId: string, body: string): Promise<void> {
  await eventually(`"${body}" arrives`, () => client.getRoom(roomId)?.getLiveTimeline().getEvents().some((e) => e.getContent().body === body) === true);
}

describe('NotificationsState', () => {
  it('is opt-in and notifies for others’ messages only while hidden, not for muted rooms; a click opens the room', async () => {
    const ann = await user('ann', 'Ann');
    const ben = await user('ben', 'Ben');
    const roomId = await sharedRoom(ann, ben, 'Garden club');
    const quiet = await sharedRoom(ann, ben, 'Quiet corner');
    const fake = fakeNotifications('granted');
    const store = memoryStore();
    let hidden = true;
    const opened: string[] = [];
    const options = { profile: 'ann', api: fake.api, store, hidden: () => hidden, open: (id: string) => opened.push(id) };
    const notifications = new NotificationsState(ann, options);
    states.push(notifications);
    expect(notifications).toMatchObject({ enabled: false, permission: 'default' });

    // Not opted in: nothing, and no permission prompt.
    await ben.sendTextMessage(roomId, 'before opting in');
    await received(ann, roomId, 'before opting in');
    expect(fake.shown).toEqual([]);
    expect(fake.requests()).toBe(0);

    expect(await notifications.enable()).toBe(true);
    expect(notifications).toMatchObject({ enabled: true, permission: 'granted' });
    await ben.sendTextMessage(roomId, 'tomatoes are ripe');
    await received(ann, roomId, 'tomatoes are ripe');
    await eventually('one notification', () => fake.shown.length === 1);
    expect(fake.shown[0]).toMatchObject({ title: 'Garden club', body: 'Ben: tomatoes are ripe', tag: roomId });

    // Own messages and messages while the tab is visible do not notify.
    await ann.sendTextMessage(roomId, 'my own words');
    await received(ann, roomId, 'my own words');
    hidden = false;
    await ben.sendTextMessage(roomId, 'while you look');
    await received(ann, roomId, 'while you look');
    hidden = true;

    // A muted room (a room push rule that does not notify) stays quiet.
    await ann.addPushRule('global' as never, 'room' as never, quiet, { actions: ['dont_notify'] } as never);
    await eventually('the mute rule has synced', () => ann.pushRules?.global.room?.some((rule) => rule.rule_id === quiet) === true);
    await ben.sendTextMessage(quiet, 'psst');
    await received(ann, quiet, 'psst');
    await ben.sendTextMessage(roomId, 'second in the garden');
    await received(ann, roomId, 'second in the garden');
    await eventually('two notifications', () => fake.shown.length === 2);
    expect(fake.shown.map((s) => s.body)).toEqual(['Ben: tomatoes are ripe', 'Ben: second in the garden']);
    expect(notifications.shown).toBe(2);

    fake.shown[1]!.instance.onclick?.(new Event('click'));
    expect(opened).toEqual([roomId]);
    expect(fake.shown[1]!.instance.closed).toBe(true);

    // The choice is kept for the profile: a new session starts enabled; turning it off stops them.
    notifications.dispose();
    const again = new NotificationsState(ann, options);
    states.push(again);
    expect(again.enabled).toBe(true);
    again.disable();
    expect(new NotificationsState(ann, options).enabled).toBe(false);
    await ben.sendTextMessage(roomId, 'after turning off');
    await received(ann, roomId, 'after turning off');
    expect(fake.shown).toHaveLength(2);
  });

  it('stays off when permission is denied, and where there is no Notification API', async () => {
    const ann = await user('ann', 'Ann');
    const fake = fakeNotifications('denied');
    const denied = new NotificationsState(ann, { profile: 'ann', api: fake.api, store: memoryStore(), hidden: () => true });
    states.push(denied);
    expect(await denied.enable()).toBe(false);
    expect(denied).toMatchObject({ enabled: false, permission: 'denied' });
    const none = new NotificationsState(ann, { profile: 'ann', api: undefined, store: memoryStore(), hidden: () => true });
    states.push(none);
    expect(none.permission).toBe('unsupported');
    expect(await none.enable()).toBe(false);
  });
});
