// Interactive verification with emoji (SAS) between two users on different tabs, through the UI only:
// `npm start`'s server, two Chromium profiles (each its own homeserver with Rust crypto), a direct chat
// between them. Alice presses "Verify Bob" in the chat's header; Bob's tab shows "Verification request
// from Alice" and he accepts; both "Verify …" dialogs list the same seven emoji with their names; both
// press "They match", both dialogs then say the other's device is verified, the chat's unverified-devices
// note goes, and Room settings shows Bob as verified on Alice's side. Screenshots of the emoji dialog at 1280 px and 375 px go to test-results/.
import { expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { describeInChromium, onboard, roomEntry, say, shoot, timeline, UI_TIMEOUT, useChatServer } from './support.js';

/** The seven emoji a "Verify <name>" dialog shows, each as "<emoji> <name>". */
async function emojiOf(page: Page, dialogName: string): Promise<string[]> {
  const list = page.getByRole('dialog', { name: dialogName }).getByRole('list', { name: 'Emoji to compare' });
  await expect.poll(() => list.getByRole('listitem').count(), { timeout: UI_TIMEOUT }).toBe(7);
  return (await list.getByRole('listitem').allTextContents()).map((text) => text.trim());
}

describeInChromium('SAS verification between two tabs', () => {
  const chat = useChatServer({ dirPrefix: 'hometab-e2e-sas-' });
  const { browser, open } = chat;

  it('Alice verifies Bob from their direct chat: same emoji on both tabs, both confirm, both verified', async () => {
    const [ca, cb] = [await browser(), await browser()];
    const [pa, pb] = [await open(ca, '/?profile=a'), await open(cb, '/?profile=b')];
    await onboard(pa, 'Alice');
    const bob = await onboard(pb, 'Bob');
    for (const page of [pa, pb]) {
      await expect.poll(() => page.getByRole('status', { name: 'Connection' }).textContent(), { timeout: UI_TIMEOUT }).toMatch(/\d+ peers? online/);
    }

    // Alice starts a direct chat with Bob; he accepts it.
    await pa.getByRole('button', { name: 'New direct chat' }).click();
    const direct = pa.getByRole('dialog', { name: 'New direct chat' });
    await direct.getByRole('textbox', { name: 'Matrix ID' }).fill(bob);
    await direct.getByRole('button', { name: 'Start chat' }).click();
    await expect.poll(() => roomEntry(pb, 'Alice').getByRole('button', { name: 'Accept' }).count(), { timeout: UI_TIMEOUT }).toBe(1);
    await roomEntry(pb, 'Alice').getByRole('button', { name: 'Accept' }).click();

    // They write to each other first: each message decrypting on the other side means each crypto has the
    // other's device (the Rust crypto ignores a verification request from a device it does not know yet).
    await expect.poll(() => pb.getByRole('heading', { name: 'Alice' }).count(), { timeout: UI_TIMEOUT }).toBe(1);
    await say(pb, 'Hi Alice, shall we verify?');
    await expect.poll(() => timeline(pa).getByRole('article').filter({ hasText: 'Hi Alice, shall we verify?' }).count(), { timeout: UI_TIMEOUT }).toBe(1);
    await say(pa, 'Yes, Bob');
    await expect.poll(() => timeline(pb).getByRole('article').filter({ hasText: 'Yes, Bob' }).count(), { timeout: UI_TIMEOUT }).toBe(1);

    await expect.poll(() => pa.getByRole('note', { name: 'Unverified devices' }).textContent(), { timeout: UI_TIMEOUT }).toMatch(/Bob/);

    // Alice asks from the chat's header.
    await pa.getByRole('button', { name: 'Verify Bob' }).click();
    const aliceDialog = pa.getByRole('dialog', { name: 'Verify Bob' });
    await expect.poll(() => aliceDialog.getByRole('status').textContent(), { timeout: UI_TIMEOUT }).toMatch(/Waiting for Bob to accept|Starting/);

    // Bob's tab shows the request; he accepts.
    const prompt = pb.getByRole('dialog', { name: 'Verification request from Alice' });
    await expect.poll(() => prompt.count(), { timeout: UI_TIMEOUT }).toBe(1);
    await shoot(pb, 'verification-request');
    await prompt.getByRole('button', { name: 'Accept' }).click();
    const bobDialog = pb.getByRole('dialog', { name: 'Verify Alice' });

    // The same seven emoji, with their names, on both tabs.
    const aliceSees = await emojiOf(pa, 'Verify Bob');
    const bobSees = await emojiOf(pb, 'Verify Alice');
    expect(bobSees).toEqual(aliceSees);
    for (const item of aliceSees) expect(item).toMatch(/\S+\s*[A-Z][a-z]/);
    await shoot(pa, 'verification-emoji');

    await aliceDialog.getByRole('button', { name: 'They match' }).click();
    await expect.poll(() => aliceDialog.getByRole('status').textContent(), { timeout: UI_TIMEOUT }).toMatch(/Waiting for Bob to confirm|verified/);
    await bobDialog.getByRole('button', { name: 'They match' }).click();
    await expect.poll(() => aliceDialog.getByRole('status').textContent(), { timeout: UI_TIMEOUT }).toBe('Bob’s device is verified.');
    await expect.poll(() => bobDialog.getByRole('status').textContent(), { timeout: UI_TIMEOUT }).toBe('Alice’s device is verified.');
    await aliceDialog.getByRole('button', { name: 'Close' }).click();
    await bobDialog.getByRole('button', { name: 'Close' }).click();

    // The chat's unverified-devices note no longer names Bob, and Room settings on Alice's side says he is verified.
    await expect.poll(() => pa.getByRole('note', { name: 'Unverified devices' }).count(), { timeout: UI_TIMEOUT }).toBe(0);
    await pa.getByRole('button', { name: 'Room settings' }).click();
    const settings = pa.getByRole('dialog', { name: 'Room settings' });
    await expect.poll(() => settings.getByLabel('Bob is verified').count(), { timeout: UI_TIMEOUT }).toBe(1);
  }, 300_000);
});
