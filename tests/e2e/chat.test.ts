// The chat app end to end, through the UI only: `npm start`'s server (built app, /config.json, relay) on a
// free port, three browsers with their own profile directories. Each onboards; the first creates a room,
// invites the second by Matrix ID and the third by invite link; they accept / join; messages typed in each
// page appear in every page's timeline. A second tab of a profile does not start a second server and can
// take over. Screenshots at 1280 px and 375 px go to test-results/.
import { expect, it } from 'vitest';
import { describeInChromium, onboard, roomEntry, say, shoot, timeline, UI_TIMEOUT, useChatServer } from './support.js';

describeInChromium('the chat app in Chromium', () => {
  const chat = useChatServer();
  const { browser, open } = chat;

  it('three profiles: invite by ID and by link, accept, join, and chat through the UI', async () => {
    const [ca, cb, cc] = [await browser(), await browser(), await browser()];
    const [pa, pb] = [await open(ca, '/?profile=a'), await open(cb, '/?profile=b')];
    const pc = await open(cc, '/?profile=c');
    await shoot(pa, 'onboarding');
    const alice = await onboard(pa, 'Alice');
    const bob = await onboard(pb, 'Bob');
    await onboard(pc, 'Carol');
    for (const page of [pa, pb, pc]) {
      await expect.poll(() => page.getByRole('status', { name: 'Connection' }).textContent()).toMatch(/\d+ peers? online/);
    }

    // Alice creates a room.
    await pa.getByRole('button', { name: 'New room' }).click();
    const dialog = pa.getByRole('dialog', { name: 'New room' });
    await dialog.getByRole('textbox', { name: 'Room name' }).fill('Garden club');
    await dialog.getByRole('textbox', { name: 'Topic' }).fill('Tomatoes and such');
    expect(await dialog.getByRole('checkbox', { name: 'Encrypted' }).count()).toBe(1);
    await shoot(pa, 'new-room-dialog');
    await dialog.getByRole('button', { name: 'Create' }).click();
    await expect.poll(() => pa.getByRole('heading', { name: 'Garden club' }).count()).toBe(1);
    expect(await roomEntry(pa, 'Garden club').getByRole('button', { name: /^Garden club/ }).count()).toBe(1);

    // … invites Bob by Matrix ID and copies the invite link for Carol.
    await pa.getByRole('button', { name: 'Invite' }).click();
    const invite = pa.getByRole('dialog', { name: 'Invite' });
    await invite.getByRole('textbox', { name: 'Matrix ID', exact: true }).fill(bob);
    await invite.getByRole('button', { name: 'Send invite' }).click();
    await expect.poll(() => invite.getByRole('status').textContent()).toContain('Invited');
    const link = await invite.getByRole('textbox', { name: 'Invite link' }).inputValue();
    expect(invite.getByRole('button', { name: 'Copy invite link' })).toBeTruthy();
    await invite.getByRole('button', { name: 'Close' }).click();
    const parsed = new URL(link);
    expect(parsed.hash).toMatch(/^#\/join\/!.+\?via=[0-9a-f]{64}$/);

    // Bob sees the invite in his room list and accepts it.
    await expect.poll(() => roomEntry(pb, 'Garden club').getByRole('button', { name: 'Accept' }).count(), { timeout: UI_TIMEOUT }).toBe(1);
    await shoot(pb, 'invite');
    await roomEntry(pb, 'Garden club').getByRole('button', { name: 'Accept' }).click();
    await expect.poll(() => pb.getByRole('heading', { name: 'Garden club' }).count(), { timeout: UI_TIMEOUT }).toBe(1);

    // Carol opens the link in her own profile and joins.
    await pc.goto(new URL(`/?profile=c${parsed.hash}`, chat.server.url).toString());
    await pc.getByRole('button', { name: 'Join' }).click();
    await expect.poll(() => pc.getByRole('heading', { name: 'Garden club' }).count(), { timeout: UI_TIMEOUT }).toBe(1);

    await say(pa, 'Hello from Alice');
    await say(pb, 'Hi Alice, Bob here');
    await say(pc, 'Carol joined by link');
    const lines = ['Hello from Alice', 'Hi Alice, Bob here', 'Carol joined by link'];
    for (const page of [pa, pb, pc]) {
      for (const line of lines) {
        await expect.poll(() => timeline(page).getByRole('article').filter({ hasText: line }).count(), { timeout: UI_TIMEOUT }).toBe(1);
      }
      // Each article names its sender.
      const first = timeline(page).getByRole('article').filter({ hasText: 'Hello from Alice' });
      expect(await first.textContent()).toContain('Alice');
    }
    expect(alice).not.toBe(bob);
    await expect.poll(() => pa.getByRole('status', { name: 'Connection' }).textContent(), { timeout: UI_TIMEOUT }).toMatch(/[1-9]\d* peers? online/);
    await shoot(pa, 'room', { dark: true });
    await shoot(pc, 'room-carol');

    // A reload is the same user and device, with the room list and timeline from IndexedDB.
    await pb.reload();
    await expect.poll(() => pb.getByLabel('Your Matrix ID').inputValue().catch(() => ''), { timeout: UI_TIMEOUT }).toBe(bob);
    await roomEntry(pb, 'Garden club').getByRole('button', { name: /^Garden club/ }).click();
    await expect.poll(() => timeline(pb).getByRole('article').filter({ hasText: 'Carol joined by link' }).count(), { timeout: UI_TIMEOUT }).toBe(1);
    await say(pb, 'Bob after a reload');
    await expect.poll(() => timeline(pa).getByRole('article').filter({ hasText: 'Bob after a reload' }).count(), { timeout: UI_TIMEOUT }).toBe(1);

    // A second tab of Alice's profile does not start a second server; it can take over.
    const second = await open(ca, '/?profile=a');
    await expect.poll(() => second.getByRole('button', { name: 'Take over' }).count(), { timeout: UI_TIMEOUT }).toBe(1);
    await shoot(second, 'second-tab');
    await second.getByRole('button', { name: 'Take over' }).click();
    await expect.poll(() => pa.getByText('taken over').count(), { timeout: UI_TIMEOUT }).toBe(1);
    // The same user, with the room and its history, from IndexedDB.
    await expect.poll(() => second.getByLabel('Your Matrix ID').inputValue().catch(() => ''), { timeout: UI_TIMEOUT }).toBe(alice);
    await roomEntry(second, 'Garden club').getByRole('button', { name: /^Garden club/ }).click();
    await expect.poll(() => timeline(second).getByRole('article').filter({ hasText: 'Carol joined by link' }).count(), { timeout: UI_TIMEOUT }).toBe(1);
  }, 300_000);
});
