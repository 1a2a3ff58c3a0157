/**
 * Opt-in desktop notifications for new messages that arrive while the tab is hidden: the "Notifications"
 * switch asks the browser's permission once and remembers the choice per profile. A message notifies
 * when it arrives live from sync after the first sync (not history, not back-pagination), was sent by
 * someone else, and the user's push rules say notify (a muted room's rules say don't). Clicking a
 * notification focuses the tab and opens its room.
 */
import type { MatrixClient, MatrixEvent, Room } from 'matrix-js-sdk';
import { ROOM_TIMELINE } from './events.js';

export type Permission = 'default' | 'granted' | 'denied' | 'unsupported';

/** What of the browser's Notification API this uses (a fake in Node tests). */
export interface NotificationApi {
  readonly permission: 'default' | 'granted' | 'denied';
  requestPermission(): Promise<'default' | 'granted' | 'denied'>;
  new (title: string, options?: { body?: string; tag?: string }): { onclick: ((this: unknown, ev: Event) => unknown) | null; close(): void };
}

/** Where the opt-in is kept (localStorage in a tab). */
export interface PreferenceStore {
  get(key: string): string | null;
  set(key: string, value: string): void;
}

export interface NotificationsOptions {
  profile: string;
  /** Undefined where the browser has no Notification API. */
  api: NotificationApi | undefined;
  store: PreferenceStore;
  /** True while the page is hidden (document.visibilityState === 'hidden'). */
  hidden: () => boolean;
  /** Opens a room when its notification is clicked. */
  open?: (roomId: string) => void;
}

const MAX_BODY = 200;

export class NotificationsState {
  /** The user's opt-in (shown only as on when permission is granted as well). */
  enabled = $state(false);
  permission = $state<Permission>('unsupported');
  /** How many notifications this session has shown. */
  shown = $state(0);

  readonly #client: MatrixClient;
  readonly #options: NotificationsOptions;
  readonly #key: string;
  readonly #onTimeline = (event: MatrixEvent, room: Room | undefined, toStartOfTimeline: boolean | undefined, _removed: boolean, data: { liveEvent?: boolean } | undefined) => {
    if (!toStartOfTimeline && data?.liveEvent && room) this.#consider(event, room);
  };

  constructor(client: MatrixClient, options: NotificationsOptions) {
    this.#client = client;
    this.#options = options;
    this.#key = `hometab-notifications:${options.profile}`;
    this.permission = options.api ? options.api.permission : 'unsupported';
    this.enabled = this.permission === 'granted' && options.store.get(this.#key) === 'on';
    client.on(ROOM_TIMELINE, this.#onTimeline as never);
  }

  /** Turns notifications on, asking the browser's permission if it has not been given; resolves with whether they are on. */
  async enable(): Promise<boolean> {
    const api = this.#options.api;
    if (!api) return false;
    const permission = api.permission === 'default' ? await api.requestPermission() : api.permission;
    this.permission = permission;
    this.enabled = permission === 'granted';
    if (this.enabled) this.#options.store.set(this.#key, 'on');
    return this.enabled;
  }

  disable(): void {
    this.enabled = false;
    this.#options.store.set(this.#key, 'off');
  }

  #consider(event: MatrixEvent, room: Room): void {
    const api = this.#options.api;
    if (!this.enabled || !api || api.permission !== 'granted') return;
    if (!this.#client.isInitialSyncComplete() || !this.#options.hidden()) return;
    if (event.getType() !== 'm.room.message' || event.isRedacted() || event.status !== null) return;
    const sender = event.getSender();
    if (!sender || sender === this.#client.getUserId()) return;
    // A muted room (a room or override push rule without "notify") stays quiet.
    const actions = this.#client.getPushActionsForEvent(event);
    if (actions && !actions.notify) return;
    const content = event.getContent();
    const text = typeof content.body === 'string' ? content.body : '';
    const senderName = room.getMember(sender)?.name ?? sender;
    const body = `${senderName}: ${text}`.slice(0, MAX_BODY);
    const notification = new api(room.name || room.roomId, { body, tag: room.roomId });
    const roomId = room.roomId;
    const open = this.#options.open;
    notification.onclick = () => {
      globalThis.focus?.();
      open?.(roomId);
      notification.close();
    };
    this.shown += 1;
  }

  dispose(): void {
    this.#client.off(ROOM_TIMELINE, this.#onTimeline as never);
  }
}
