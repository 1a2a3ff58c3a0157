// ProfileState against a real homeserver in process: "Change avatar" uploads a picture and sets it as the
// profile's avatar_url; the other member of a shared room then has it as Ann's avatar in the timeline (the
// server carried it into her member event) and MediaState fetches the same bytes for it. Files that are not
// small pictures (SVG, text, too large) are refused before anything is uploaded.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ProfileState, MAX_AVATAR_BYTES } from '../../../src/ui/state/profile.svelte.js';
import { TimelineState } from '../../../src/ui/state/timeline.svelte.js';
import { MediaState, parseMxc } from '../../../src/ui/state/media.svelte.js';
import { annAndBenIn, eventually, serverPerTest } from './support.js';

const FIXTURES = resolve(import.meta.dirname, '../fixtures');
const world = serverPerTest();

describe('ProfileState', () => {
  it('sets an uploaded picture as the avatar, which the other member sees beside her messages', async () => {
    const { ann, ben, roomId } = await annAndBenIn(world, 'Portraits');
    const profile = world.keep(new ProfileState(ann.client));
    const benTimeline = world.keep(new TimelineState(ben.client, roomId));
    expect(profile.avatarUrl).toBeUndefined();
    expect(benTimeline.avatarOf(ann.client.getUserId()!)).toBeUndefined();

    const png = await readFile(resolve(FIXTURES, 'garden.png'));
    await profile.setAvatar(new File([png], 'me.png', { type: 'image/png' }));
    expect(profile.error).toBe('');
    expect(profile.busy).toBe(false);
    const uri = profile.avatarUrl!;
    expect(parseMxc(uri)).toBeDefined();
    expect((await ann.client.getProfileInfo(ann.client.getUserId()!)).avatar_url).toBe(uri);

    await eventually("Ann's avatar in Ben's view of the room", () => benTimeline.avatarOf(ann.client.getUserId()!) === uri);
    const media = world.keep(new MediaState(ben.client));
    const blob = await media.download(parseMxc(uri)!);
    expect(new Uint8Array(await blob.arrayBuffer())).toEqual(new Uint8Array(png));

    // A second state of the same user starts from the server's profile.
    const again = world.keep(new ProfileState(ann.client));
    await eventually('the profile read back', () => again.avatarUrl === uri);
  });

  it('refuses what is not a small picture, before uploading anything', async () => {
    const { ann } = await annAndBenIn(world, 'Refusals');
    const profile = world.keep(new ProfileState(ann.client));
    const svg = new File(['<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'], 'x.svg', { type: 'image/svg+xml' });
    const text = new File(['hello'], 'x.txt', { type: 'text/plain' });
    const huge = new File([new Uint8Array(MAX_AVATAR_BYTES + 1)], 'big.png', { type: 'image/png' });
    for (const file of [svg, text, huge]) {
      await profile.setAvatar(file);
      expect(profile.error, file.name).not.toBe('');
      expect(profile.avatarUrl).toBeUndefined();
    }
    expect((await ann.client.getProfileInfo(ann.client.getUserId()!)).avatar_url).toBeUndefined();
  });
});
