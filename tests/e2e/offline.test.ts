// Offline, through the UI only: `npm start`'s server on a free port and two browsers (Alice, Bob) with
// their own profile directories. With Bob gone, Alice's page says it is offline and composes five
// messages that show as "Queued"; a reload and a second tab's take-over (then a reload) keep them all;
// when Bob returns they reach him and the markers go. Then each writes while the other is closed — a
// fork — and the next message merges it: the history graph shows both. Last, the server is stopped and
// the page reloads from the service worker's cache. The connection panel lists the peer and its link.
// Screenshots at 1280 px and 375 px go to test-results/e2e/.
import { expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { describeInChromium, inviteById, onboard, roomEntry, say as send, shoot, timeline, UI_TIMEOUT, useChatServer } from './support.js';

const ROOM = 'Offline club';

describeInChromium('the chat app offline, in Chromium', () => {
  const offline = useChatServer({ dirPrefix: 'hometab-e2e-offline-' });
  const { browser, open } = offline;

  const article = (page: Page, text: string) => timeline(page).getByRole('article').filter({ hasText: text });
  const peersOnline = (page: Page) => page.getByRole('status', { name: 'Connection' }).textContent().then((t) => Number(/(\d+) peers? online/.exec(t ?? '')?.[1] ?? -1));

  async function say(page: Page, text: string): Promise<void> {
    await send(page, text);
    await expect.poll(() => article(page, text).count(), { timeout: UI_TIMEOUT }).toBe(1);
  }

  async function openRoom(page: Page): Promise<void> {
    await expect.poll(() => page.getByLabel('Your Matrix ID').inputValue().catch(() => ''), { timeout: UI_TIMEOUT }).toMatch(/^@/);
    await roomEntry(page, ROOM).getByRole('button', { name: new RegExp(`^${ROOM}`) }).click();
    await expect.poll(() => page.getByRole('heading', { name: ROOM }).count(), { timeout: UI_TIMEOUT }).toBe(1);
  }

  it('queues while alone, survives reload and take-over, delivers on return, shows a fork and a merge, opens with the server gone', async () => {
    const [ca, cb] = [await browser(), await browser()];
    let pa = await open(ca, '/?profile=alice');
    let pb = await open(cb, '/?profile=bob');
    await onboard(pa, 'Alice');
    const bob = await onboard(pb, 'Bob');

    await pa.getByRole('button', { name: 'New room' }).click();
    const dialog = pa.getByRole('dialog', { name: 'New room' });
    await dialog.getByRole('textbox', { name: 'Room name' }).fill(ROOM);
    await dialog.getByRole('button', { name: 'Create' }).click();
    await expect.poll(() => pa.getByRole('heading', { name: ROOM }).count()).toBe(1);
    await inviteById(pa, bob);
    await expect.poll(() => roomEntry(pb, ROOM).getByRole('button', { name: 'Accept' }).count(), { timeout: UI_TIMEOUT }).toBe(1);
    await roomEntry(pb, ROOM).getByRole('button', { name: 'Accept' }).click();
    await expect.poll(() => pb.getByRole('heading', { name: ROOM }).count(), { timeout: UI_TIMEOUT }).toBe(1);
    await say(pb, 'Bob is here');
    await expect.poll(() => article(pa, 'Bob is here').count(), { timeout: UI_TIMEOUT }).toBe(1);

    // The connection panel: Bob's server, online, with its link and an empty queue.
    await pa.getByRole('button', { name: 'Connection details' }).click();
    const panel = pa.getByRole('dialog', { name: 'Connection details' });
    const peers = panel.getByRole('table', { name: 'Peers' });
    await expect.poll(() => peers.getByRole('row').filter({ hasText: bob.split(':')[1]!.slice(0, 8) }).textContent(), { timeout: UI_TIMEOUT }).toMatch(/direct|relayed/);
    expect(await panel.textContent()).toMatch(/Relay\s*connected/);
    await shoot(pa, 'connection-panel');
    await panel.getByRole('button', { name: 'Close' }).click();

    // Bob goes away: Alice is offline, and what she writes is queued.
    await pb.close();
    await expect.poll(() => pa.getByRole('alert', { name: 'Offline' }).count(), { timeout: UI_TIMEOUT }).toBe(1);
    expect(await peersOnline(pa)).toBe(0);
    const lines = [1, 2, 3, 4, 5].map((i) => `While Bob is away ${i}`);
    for (const line of lines) await say(pa, line);
    for (const line of lines) await expect.poll(() => article(pa, line).getByText('Queued', { exact: true }).count(), { timeout: UI_TIMEOUT }).toBe(1);
    expect(await article(pa, 'Bob is here').getByText('Queued', { exact: true }).count()).toBe(0);
    await shoot(pa, 'offline-queued');

    // A reload keeps them, still queued.
    await pa.reload();
    await openRoom(pa);
    for (const line of lines) await expect.poll(() => article(pa, line).getByText('Queued', { exact: true }).count(), { timeout: UI_TIMEOUT }).toBe(1);

    // A second tab takes over, then reloads: the store is whole.
    let second = await open(ca, '/?profile=alice');
    await second.getByRole('button', { name: 'Take over' }).click();
    await expect.poll(() => pa.getByText('taken over').count(), { timeout: UI_TIMEOUT }).toBe(1);
    await pa.close();
    await openRoom(second);
    await second.reload();
    await openRoom(second);
    for (const line of ['Bob is here', ...lines]) await expect.poll(() => article(second, line).count(), { timeout: UI_TIMEOUT }).toBe(1);
    for (const line of lines) expect(await article(second, line).getByText('Queued', { exact: true }).count()).toBe(1);
    pa = second;

    // Bob returns: the five reach him and Alice's markers go.
    pb = await open(cb, '/?profile=bob');
    await openRoom(pb);
    for (const line of lines) await expect.poll(() => article(pb, line).count(), { timeout: UI_TIMEOUT }).toBe(1);
    for (const line of lines) await expect.poll(() => article(pa, line).getByText('Queued', { exact: true }).count(), { timeout: UI_TIMEOUT }).toBe(0);
    await expect.poll(() => pa.getByRole('alert', { name: 'Offline' }).count(), { timeout: UI_TIMEOUT }).toBe(0);

    // A fork: Bob writes while Alice is closed, then Alice while Bob is closed; the next message merges.
    await pa.close();
    await say(pb, 'Bob alone on his branch');
    await pb.close();
    pa = await open(ca, '/?profile=alice');
    await openRoom(pa);
    await say(pa, 'Alice alone on hers');
    pb = await open(cb, '/?profile=bob');
    await openRoom(pb);
    await expect.poll(() => article(pa, 'Bob alone on his branch').count(), { timeout: UI_TIMEOUT }).toBe(1);
    await expect.poll(() => article(pb, 'Alice alone on hers').count(), { timeout: UI_TIMEOUT }).toBe(1);
    await say(pa, 'Both branches merged');
    await expect.poll(() => article(pb, 'Both branches merged').count(), { timeout: UI_TIMEOUT }).toBe(1);

    await pa.getByRole('button', { name: 'Show history graph' }).click();
    const figure = pa.getByRole('figure', { name: 'Event graph' });
    await expect.poll(() => figure.getByRole('img').getAttribute('aria-label').catch(() => ''), { timeout: UI_TIMEOUT }).toMatch(/from 2 servers, [1-9]\d* forks?, [1-9]\d* merges?/);
    expect(await figure.getByRole('list', { name: 'Servers' }).getByRole('listitem').count()).toBe(2);
    expect(await figure.locator('[data-fork]').count()).toBeGreaterThan(0);
    expect(await figure.locator('[data-merge]').count()).toBeGreaterThan(0);
    await shoot(pa, 'history-graph');
    await pa.getByRole('dialog', { name: 'History graph' }).getByRole('button', { name: 'Close' }).click();

    // The network cut: the server stops, and the page still opens from the service worker's cache.
    const registered = () => navigator.serviceWorker.getRegistration().then((r) => `${r?.active?.state ?? 'none'} ${navigator.serviceWorker.controller ? 'controlled' : 'uncontrolled'}`);
    await expect.poll(() => pa.evaluate(registered), { timeout: UI_TIMEOUT }).toBe('activated controlled');
    await pb.close();
    await offline.server.stop();
    await pa.reload();
    await openRoom(pa);
    await expect.poll(() => article(pa, 'Both branches merged').count(), { timeout: UI_TIMEOUT }).toBe(1);
    await say(pa, 'Written with the server gone');
    await expect.poll(() => article(pa, 'Written with the server gone').getByText('Queued', { exact: true }).count(), { timeout: UI_TIMEOUT }).toBe(1);
    await shoot(pa, 'offline-shell');
  }, 600_000);
});
