// End-to-end encryption in the chat app, through the UI only: `npm start`'s server on a free port, Alice in
// one browser, Bob and Carol as two profiles of a second browser (so their crypto stores must stay apart).
// - Alice starts a direct chat with Bob: it is encrypted without being asked (the header's "Encrypted"
//   lock), and each message decrypts on both sides.
// - Alice creates a room with "Encrypted" ticked and invites Bob and Carol: every message decrypts on every
//   member's side; the room warns that the members' devices are not verified.
// - Every tab's IndexedDB, the crypto stores aside, holds none of the encrypted messages' text, while an
//   unencrypted control message is found by the same scan (so the scan can fail).
// - Carol, closed while Bob shares his first room key and writes, reads everything when she comes back.
// Screenshots at 1280 px and 375 px go to test-results/e2e/.
import { expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { describeInChromium, inviteById, onboard, roomEntry, say, shoot, timeline, UI_TIMEOUT, useChatServer } from './support.js';

const CRYPTO_STORE_PREFIX = 'hometab-crypto:';

const article = (page: Page, text: string) => timeline(page).getByRole('article').filter({ hasText: text });
const header = (page: Page) => page.locator('.room-header');

/** Waits for the message on the page; on a timeout the error says what the page's timeline showed instead. */
async function sees(page: Page, text: string): Promise<void> {
  try {
    await expect.poll(() => article(page, text).count(), { timeout: UI_TIMEOUT }).toBe(1);
  } catch (error) {
    const shown = await timeline(page).getByRole('article').allInnerTexts().catch(() => ['(no timeline)']);
    const reasons = await timeline(page).locator('[data-key-problem]').evaluateAll((nodes) => nodes.map((n) => n.getAttribute('data-key-problem')));
    shown.push(`key problems: ${reasons.join(', ')}`);
    throw new Error(`${new URL(page.url()).search} did not show "${text}"; its timeline: ${JSON.stringify(shown)}`, { cause: error });
  }
}

async function acceptInvite(page: Page): Promise<void> {
  const accept = page.getByRole('list', { name: 'Rooms' }).getByRole('button', { name: 'Accept' });
  await expect.poll(() => accept.count(), { timeout: UI_TIMEOUT }).toBeGreaterThan(0);
  await accept.first().click();
  await expect.poll(() => page.getByRole('log', { name: 'Timeline' }).count(), { timeout: UI_TIMEOUT }).toBe(1);
}

async function openRoom(page: Page, name: string): Promise<void> {
  await roomEntry(page, name).getByRole('button', { name: new RegExp(`^${name}`) }).click();
  await expect.poll(() => page.getByRole('heading', { name }).count(), { timeout: UI_TIMEOUT }).toBe(1);
}

/**
 * Every IndexedDB database of the page's browser profile but the crypto stores, every record of every
 * object store, as text: JSON, with byte arrays decoded as UTF-8 (media chunks, anything kept as bytes).
 */
function storedText(page: Page): Promise<{ databases: string[]; text: string }> {
  return page.evaluate(async (skipPrefix: string) => {
    const request = <T>(r: IDBRequest<T>) => new Promise<T>((resolve, reject) => ((r.onsuccess = () => resolve(r.result)), (r.onerror = () => reject(r.error))));
    const decoder = new TextDecoder();
    const asText = (_key: string, value: unknown) => (value instanceof Uint8Array ? decoder.decode(value) : value instanceof ArrayBuffer ? decoder.decode(new Uint8Array(value)) : value);
    const databases: string[] = [];
    const parts: string[] = [];
    for (const { name } of await indexedDB.databases()) {
      if (!name || name.startsWith(skipPrefix)) continue;
      databases.push(name);
      const db = await request(indexedDB.open(name));
      for (const store of db.objectStoreNames) {
        const records = await request(db.transaction(store, 'readonly').objectStore(store).getAll());
        parts.push(JSON.stringify(records, asText));
      }
      db.close();
    }
    return { databases, text: parts.join('\n') };
  }, CRYPTO_STORE_PREFIX);
}

const databaseNames = (page: Page) => page.evaluate(async () => (await indexedDB.databases()).map((d) => d.name ?? ''));

describeInChromium('end-to-end encryption in the chat app, in Chromium', () => {
  // Page errors, and what the servers say about EDUs they drop (a lost room key shows there first).
  const watch = (page: Page) => {
    page.on('pageerror', (e) => console.error('page error:', e));
    page.on('console', (m) => {
      if (m.type() !== 'debug' && /EDU|to-device|dropped|withheld/i.test(m.text())) console.error(`console ${m.type()} ${new URL(page.url()).search}: ${m.text().slice(0, 500)}`);
    });
  };
  const chat = useChatServer({ dirPrefix: 'hometab-e2e-crypto-', watch });
  const { browser, open } = chat;

  it('an encrypted direct chat and an encrypted room of three decrypt everywhere; IndexedDB holds no plaintext; a member away reads everything on return', async () => {
    const [first, second] = [await browser(), await browser()];
    const pa = await open(first, '/?profile=a');
    const pb = await open(second, '/?profile=b');
    const pc = await open(second, '/?profile=c');
    await onboard(pa, 'Alice');
    const bob = await onboard(pb, 'Bob');
    const carol = await onboard(pc, 'Carol');
    const secrets: string[] = [];
    const secretly = async (page: Page, text: string) => {
      secrets.push(text);
      await say(page, text);
    };

    // A direct chat is encrypted without being asked.
    await pa.getByRole('button', { name: 'New direct chat' }).click();
    const direct = pa.getByRole('dialog', { name: 'New direct chat' });
    await direct.getByRole('textbox', { name: 'Matrix ID' }).fill(bob);
    await direct.getByRole('button', { name: 'Start chat' }).click();
    await expect.poll(() => header(pa).getByRole('img', { name: 'Encrypted' }).count(), { timeout: UI_TIMEOUT }).toBe(1);
    await acceptInvite(pb);
    await expect.poll(() => header(pb).getByRole('img', { name: 'Encrypted' }).count(), { timeout: UI_TIMEOUT }).toBe(1);
    await secretly(pa, 'Only Bob may read this, from Alice');
    await secretly(pb, 'And only Alice this, from Bob');
    for (const page of [pa, pb]) for (const text of secrets) await sees(page, text);
    await shoot(pa, 'encrypted-direct-chat');

    // A room of three with "Encrypted" ticked.
    await pa.getByRole('button', { name: 'New room' }).click();
    const dialog = pa.getByRole('dialog', { name: 'New room' });
    await dialog.getByRole('textbox', { name: 'Room name' }).fill('Cipher club');
    await dialog.getByRole('checkbox', { name: 'Encrypted' }).check();
    await dialog.getByRole('button', { name: 'Create' }).click();
    await expect.poll(() => pa.getByRole('heading', { name: 'Cipher club' }).count(), { timeout: UI_TIMEOUT }).toBe(1);
    expect(await header(pa).getByRole('img', { name: 'Encrypted' }).count()).toBe(1);
    await inviteById(pa, bob);
    await inviteById(pa, carol);
    await acceptInvite(pb);
    await acceptInvite(pc);
    for (const page of [pb, pc]) await expect.poll(() => page.getByRole('heading', { name: 'Cipher club' }).count(), { timeout: UI_TIMEOUT }).toBe(1);
    const group = ['Cipher club: Alice opens', 'Cipher club: Carol answers'];
    await secretly(pa, group[0]!);
    await secretly(pc, group[1]!);
    for (const page of [pa, pb, pc]) {
      for (const text of group) await sees(page, text);
      expect(await page.getByText('Waiting for the key to this message').count()).toBe(0);
      // Nobody verified anybody: the room says so, naming the others.
      const note = page.getByRole('note', { name: 'Unverified devices' });
      await expect.poll(() => note.textContent(), { timeout: UI_TIMEOUT }).toMatch(/Not verified:/);
    }
    expect(await pa.getByRole('note', { name: 'Unverified devices' }).textContent()).toMatch(/Bob.*Carol|Carol.*Bob/);
    await shoot(pc, 'encrypted-room');

    // Carol closes her tab (her server goes with it); Bob writes his first messages in the room: his new
    // Megolm session's key for Carol waits in his server's outbox until hers is back.
    await pc.close();
    const whileAway = ['Cipher club: Bob, while Carol is away', 'Cipher club: Bob again'];
    for (const text of whileAway) await secretly(pb, text);
    for (const text of whileAway) await sees(pa, text);
    const pc2 = await open(second, '/?profile=c');
    await openRoom(pc2, 'Cipher club');
    for (const text of [...group, ...whileAway]) await sees(pc2, text);
    await expect.poll(() => pc2.getByText('Waiting for the key to this message').count(), { timeout: UI_TIMEOUT }).toBe(0);
    await secretly(pc2, 'Cipher club: Carol is back');
    for (const page of [pa, pb]) await sees(page, 'Cipher club: Carol is back');

    // Two profiles of one browser keep two crypto stores.
    const names = await databaseNames(pb);
    for (const profile of ['b', 'c']) expect(names.some((n) => n.startsWith(`${CRYPTO_STORE_PREFIX}${profile}::`)), `crypto store of ${profile} in ${names.join(', ')}`).toBe(true);

    // A control in the clear: an unencrypted room's message, which the scan must find.
    const control = 'A plaintext control line, in the clear';
    await pa.getByRole('button', { name: 'New room' }).click();
    await pa.getByRole('dialog', { name: 'New room' }).getByRole('textbox', { name: 'Room name' }).fill('Open air');
    await pa.getByRole('dialog', { name: 'New room' }).getByRole('button', { name: 'Create' }).click();
    await expect.poll(() => pa.getByRole('heading', { name: 'Open air' }).count(), { timeout: UI_TIMEOUT }).toBe(1);
    expect(await header(pa).getByRole('img', { name: 'Encrypted' }).count()).toBe(0);
    await say(pa, control);
    await sees(pa, control);

    // Every tab's IndexedDB (the crypto stores aside) holds none of the encrypted text. The same scan finds
    // Alice's unencrypted control message, and in the second browser both profiles' display names (what the
    // servers keep in the clear), so it does read every record of both profiles' databases.
    const scans = [
      { page: pa, profiles: ['a'], clear: [control, 'Alice'] },
      { page: pb, profiles: ['b', 'c'], clear: ['"displayname":"Bob"', '"displayname":"Carol"'] },
    ];
    for (const { page, profiles, clear } of scans) {
      const { databases, text } = await storedText(page);
      for (const profile of profiles) expect(databases).toContain(`hometab:${profile}`);
      for (const secret of secrets) expect(text.includes(secret), `"${secret}" stored in the clear in ${databases.join(', ')}`).toBe(false);
      for (const expected of clear) expect(text).toContain(expected);
    }
  }, 400_000);
});
