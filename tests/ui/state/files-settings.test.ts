// UploadsState, MediaState and RoomSettingsState against a real homeserver in process: an attached image is
// uploaded with progress and arrives as m.image with its size and type, a text file as m.file, both
// downloadable by the other member with their exact bytes; hostile media content is refused; the settings
// panel follows name, topic, role and membership changes made on either side and enforces who may change
// what.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startTestServer } from '../../homeserver/harness.js';
import { TimelineState } from '../../../src/ui/state/timeline.svelte.js';
import { UploadsState, measureWithImageBitmap } from '../../../src/ui/state/uploads.svelte.js';
import { MAX_PREVIEW_BYTES, MediaState, mediaOf } from '../../../src/ui/state/media.svelte.js';
import { RoomSettingsState, roleOf } from '../../../src/ui/state/room-settings.svelte.js';
import { eventually, serverPerTest, startedClient } from './support.js';

const FIXTURES = resolve(import.meta.dirname, '../fixtures');

const { clients, keep, user } = serverPerTest();

/** Ann's room with Ben joined. */
async function sharedRoom() {
  const ann = await user('ann', 'Ann');
  const ben = await user('ben', 'Ben');
  const roomId = await ann.rooms.create({ name: 'Garden club', topic: 'Tomatoes' });
  await ann.rooms.invite(roomId, ben.client.getUserId()!);
  await eventually('ben invited', () => ben.rooms.invites.length === 1);
  await ben.rooms.accept(roomId);
  return { ann, ben, roomId };
}

/** The PNG header's width and height: the Node stand-in for the browser's image decoder. */
async function pngSize(file: Blob): Promise<{ w: number; h: number } | undefined> {
  const view = new DataView(await file.slice(0, 24).arrayBuffer());
  return view.getUint32(0) === 0x89504e47 ? { w: view.getUint32(16), h: view.getUint32(20) } : undefined;
}

describe('UploadsState and MediaState', () => {
  it('uploads an image with progress, sends m.image with its info, and the other member previews the same bytes', async () => {
    const { ann, ben, roomId } = await sharedRoom();
    const png = await readFile(resolve(FIXTURES, 'garden.png'));
    const uploads = keep(new UploadsState(ann.client, roomId, { measureImage: pngSize }));
    const benTimeline = keep(new TimelineState(ben.client, roomId));

    const eventId = await uploads.attach(new File([png], 'garden.png', { type: 'image/png' }));
    expect(eventId).toMatch(/^\$/);
    expect(uploads.uploads).toEqual([]);
    await eventually('ben gets the image', () => benTimeline.messages.some((m) => m.id === eventId));
    const message = benTimeline.messages.find((m) => m.id === eventId)!;
    expect(message.body).toBe('garden.png');
    expect(message.media).toMatchObject({ kind: 'image', name: 'garden.png', mimetype: 'image/png', size: png.byteLength, previewable: true, width: 160, height: 120 });
    const event = ben.client.getRoom(roomId)!.findEventById(eventId)!;
    expect(event.getContent()).toMatchObject({ msgtype: 'm.image', info: { w: 160, h: 120, mimetype: 'image/png', size: png.byteLength } });

    const media = keep(new MediaState(ben.client));
    await media.loadPreview(message.media!);
    const preview = media.previews.get(message.media!.mxc);
    expect(preview?.state).toBe('ready');
    const url = (preview as { url: string }).url;
    expect(url).toMatch(/^blob:/);
    const blob = await media.download(message.media!);
    expect(new Uint8Array(await blob.arrayBuffer())).toEqual(new Uint8Array(png));
  });

  it('sends a text file as m.file with progress steps up to its size, downloadable byte for byte', async () => {
    const { ann, ben, roomId } = await sharedRoom();
    const uploads = keep(new UploadsState(ann.client, roomId));
    const benTimeline = keep(new TimelineState(ben.client, roomId));
    // Large enough to arrive in many chunks: progress is seen climbing while the server reads.
    const bytes = new Uint8Array(3 * 1024 * 1024).map((_, i) => (i * 7) % 251);
    // The file's stream notes what the state reports each time the server pulls the next chunk.
    const seen: number[] = [];
    const observed = new ObservedFile(bytes, 'seeds.bin', () => seen.push(uploads.uploads[0]?.loaded ?? -1));
    const eventId = await uploads.attach(observed);
    // Every chunk is counted once the server has read it: the figure climbs in steps and never passes the size.
    const steps = [...new Set(seen)];
    expect(steps.length).toBeGreaterThan(5);
    expect(steps).toEqual([...steps].sort((a, b) => a - b));
    expect(Math.max(...steps)).toBeLessThanOrEqual(bytes.byteLength);
    expect(Math.max(...steps)).toBeGreaterThan(bytes.byteLength / 2);

    const notes = await readFile(resolve(FIXTURES, 'notes.txt'));
    const notesId = await uploads.attach(new File([notes], 'notes.txt', { type: 'text/plain' }));
    await eventually('ben gets both files', () => benTimeline.messages.some((m) => m.id === notesId) && benTimeline.messages.some((m) => m.id === eventId));
    const file = benTimeline.messages.find((m) => m.id === notesId)!.media!;
    expect(file).toMatchObject({ kind: 'file', name: 'notes.txt', mimetype: 'text/plain', size: notes.byteLength, previewable: false });
    const media = keep(new MediaState(ben.client));
    expect(await (await media.download(file)).text()).toBe(notes.toString('utf8'));
    await media.loadPreview(file);
    expect(media.previews.has(file.mxc)).toBe(false);
  });

  it('sends an image the platform cannot decode as m.file, and reports a failed upload', async () => {
    const { ann, roomId } = await sharedRoom();
    const png = await readFile(resolve(FIXTURES, 'garden.png'));
    // Node has no image decoder: the default measure says "unknown".
    expect(await measureWithImageBitmap(new Blob([png]))).toBeUndefined();
    const uploads = keep(new UploadsState(ann.client, roomId));
    const eventId = await uploads.attach(new File([png], 'garden.png', { type: 'image/png' }));
    expect(ann.client.getRoom(roomId)!.findEventById(eventId)?.getContent().msgtype ?? 'm.file').toBe('m.file');

    const small = await startTestServer({ config: { maxUploadBytes: 100 } });
    try {
      const user = await startedClient(small, 'dan');
      clients.push(user);
      const { room_id: room } = await user.createRoom({ name: 'tiny' });
      const limited = keep(new UploadsState(user, room));
      await expect(limited.attach(new File([png], 'garden.png', { type: 'image/png' }))).rejects.toThrow();
      expect(limited.uploads).toMatchObject([{ name: 'garden.png', phase: 'failed' }]);
      limited.dismiss(limited.uploads[0]!.id);
      expect(limited.uploads).toEqual([]);
    } finally {
      clients.pop()?.stopClient();
      await small.close();
    }
  });

  it('reads media content as hostile: bad URIs, names, sizes and types', () => {
    expect(mediaOf({ msgtype: 'm.text', body: 'x', url: 'mxc://a/b' })).toBeUndefined();
    expect(mediaOf({ msgtype: 'm.image', body: 'x', url: 'https://evil/x.png' })).toBeUndefined();
    expect(mediaOf({ msgtype: 'm.image', body: 'x', url: 'mxc://a/../b' })).toBeUndefined();
    expect(mediaOf({ msgtype: 'm.file', body: '../../etc/passwd\u0000', url: 'mxc://hs/abc' })?.name).toBe('....etcpasswd');
    const svg = mediaOf({ msgtype: 'm.image', body: 'a.svg', url: 'mxc://hs/abc', info: { mimetype: 'image/svg+xml' } })!;
    expect(svg.previewable).toBe(false);
    const huge = mediaOf({ msgtype: 'm.image', body: 'a.png', url: 'mxc://hs/abc', info: { mimetype: 'image/png', size: MAX_PREVIEW_BYTES + 1 } })!;
    expect(huge.previewable).toBe(false);
    const wide = mediaOf({ msgtype: 'm.image', body: 'a.png', url: 'mxc://hs/abc', info: { w: 6400, h: 800, size: -1 } })!;
    expect(wide).toMatchObject({ width: 320, height: 40, previewable: true });
    expect(wide.size).toBeUndefined();
    expect(mediaOf({ msgtype: 'm.image', body: 'a.png', url: 'mxc://hs/abc', info: { w: 'big', h: 1e12 } })?.width).toBeUndefined();
  });
});

describe('RoomSettingsState', () => {
  it('shows name, topic and members with roles; changes made on either side show on the other', async () => {
    const { ann, ben, roomId } = await sharedRoom();
    const annSettings = keep(new RoomSettingsState(ann.client, roomId));
    const benSettings = keep(new RoomSettingsState(ben.client, roomId));
    const annId = ann.client.getUserId()!;
    const benId = ben.client.getUserId()!;
    await eventually('both members listed', () => benSettings.members.length === 2 && annSettings.members.length === 2);
    expect(annSettings).toMatchObject({ name: 'Garden club', topic: 'Tomatoes', canSetName: true, canSetTopic: true, myRole: 'Admin' });
    expect(benSettings).toMatchObject({ canSetName: false, canSetTopic: false, myRole: 'User' });
    expect(annSettings.members.map((m) => [m.name, m.role, m.canChangeRole])).toEqual([
      ['Ann', 'Admin', true],
      ['Ben', 'User', true],
    ]);
    expect(annSettings.members[1]!.assignableRoles).toEqual(['Admin', 'Moderator', 'User']);
    expect(benSettings.members.every((m) => !m.canChangeRole)).toBe(true);
    await expect(benSettings.setRole(annId, 'User')).rejects.toThrow(/cannot/);

    await annSettings.setName('Allotment');
    await annSettings.setTopic('Beans too');
    await eventually('ben sees the new name and topic', () => benSettings.name === 'Allotment' && benSettings.topic === 'Beans too');
    await eventually('ben room list has the new name', () => ben.rooms.rooms[0]?.name === 'Allotment');

    await annSettings.setRole(benId, 'Moderator');
    await eventually('ben is a moderator', () => benSettings.myRole === 'Moderator');
    // The room's power levels let moderators set the topic, not the power levels of others.
    expect(benSettings.members.find((m) => m.userId === benId)?.role).toBe('Moderator');
    expect(benSettings.canSetTopic).toBe(true);
    expect(annSettings.members.find((m) => m.userId === benId)?.role).toBe('Moderator');

    await benSettings.leave();
    await eventually('ben has left', () => !benSettings.joined);
    await eventually('ben is gone from the list', () => !ben.rooms.rooms.some((r) => r.id === roomId));
    await eventually('ann sees ben gone', () => annSettings.members.map((m) => m.name).join() === 'Ann');
  });

  it('names roles from power levels', () => {
    expect([100, 150, 99, 50, 49, 0, -5].map(roleOf)).toEqual(['Admin', 'Admin', 'Moderator', 'Moderator', 'User', 'User', 'User']);
  });
});

/** A file whose stream hands out 256 KiB chunks and calls `onPull` before each. */
class ObservedFile extends File {
  readonly #bytes: Uint8Array<ArrayBuffer>;
  readonly #onPull: () => void;
  constructor(bytes: Uint8Array<ArrayBuffer>, name: string, onPull: () => void) {
    super([bytes], name, { type: 'application/octet-stream' });
    this.#bytes = bytes;
    this.#onPull = onPull;
  }
  override stream(): ReadableStream<Uint8Array<ArrayBuffer>> {
    let offset = 0;
    const bytes = this.#bytes;
    const onPull = this.#onPull;
    return new ReadableStream({
      pull(controller) {
        onPull();
        if (offset >= bytes.byteLength) return controller.close();
        controller.enqueue(bytes.slice(offset, (offset += 256 * 1024)));
      },
    });
  }
}
