// The rich timeline end to end, through the UI only: two profiles (Alice, Bob) in one room over
// `npm start`'s server. Markdown arrives formatted; each sees the other typing; Bob replies to Alice's
// message with "Reply"; Alice edits hers with Up in the empty composer (and Escape cancels an edit); both
// react, and a second click takes a reaction back; Alice deletes a message; read receipts show who has
// read up to where. Then Carol, a client of an always-on Node peer (`npm run homeserver -- --p2p`) on the
// same relay, sends a corpus of XSS payloads (tests/e2e/fixtures/xss-payloads.json) as formatted_body
// through the client-server API in one burst, and Bob's page is checked in one pass from the bottom of
// his virtualised timeline to the room's beginning: no payload ran (a window flag), no on* attribute, no
// javascript:/data: URL, no script/iframe/object/embed/form/style element, nothing outside the Matrix HTML
// subset, and every payload was rendered on the way. Screenshots at 1280 and 375 px.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import type { Locator, Page } from 'playwright-core';
import { describeInChromium, inviteById, onboard, roomEntry, say, shoot, timeline, UI_TIMEOUT, useChatServer } from './support.js';
import { HttpClientUser, killLeftoverHomeservers, startHomeserverProcess } from '../support/homeserver-process.js';
import { ADDED_ATTRIBUTES, ALLOWED_ATTRIBUTES, ALLOWED_ELEMENTS } from '../../src/ui/format/sanitize.js';

const PAYLOADS = resolve(import.meta.dirname, 'fixtures/xss-payloads.json');

describeInChromium('the rich timeline in Chromium', () => {
  afterAll(() => killLeftoverHomeservers());
  const pageErrors: string[] = [];
  const chat = useChatServer({
    watch: (page) => {
      page.on('pageerror', (e) => pageErrors.push(String(e)));
      page.on('dialog', (d) => void d.dismiss());
    },
  });

  /** A new profile's page at `/?profile=<profile>`. */
  const open = async (profile: string): Promise<Page> => chat.open(await chat.browser(), `/?profile=${profile}`);

  const article = (page: Page, text: string | RegExp) => timeline(page).getByRole('article').filter({ hasText: text });
  const box = (page: Page) => page.getByRole('textbox', { name: 'Message' });
  const count = (locator: Locator) => expect.poll(() => locator.count(), { timeout: UI_TIMEOUT });

  let pa: Page;
  let pb: Page;

  it('two profiles: formatting, typing, replies, edits, reactions, deletion, receipts', async () => {
    [pa, pb] = [await open('a'), await open('b')];
    await onboard(pa, 'Alice');
    const bob = await onboard(pb, 'Bob');

    await pa.getByRole('button', { name: 'New room' }).click();
    const dialog = pa.getByRole('dialog', { name: 'New room' });
    await dialog.getByRole('textbox', { name: 'Room name' }).fill('Kitchen');
    await dialog.getByRole('button', { name: 'Create' }).click();
    await count(pa.getByRole('heading', { name: 'Kitchen' })).toBe(1);
    await inviteById(pa, bob);
    const entry = pb.getByRole('list', { name: 'Rooms' }).getByRole('listitem').filter({ hasText: 'Kitchen' });
    await count(entry.getByRole('button', { name: 'Accept' })).toBe(1);
    await entry.getByRole('button', { name: 'Accept' }).click();
    await count(pb.getByRole('heading', { name: 'Kitchen' })).toBe(1);

    // Typing: Bob sees Alice typing, and stop when she sends. Markdown arrives formatted.
    await box(pa).fill('Soup tonight, **Bob**?');
    await expect.poll(() => pb.getByRole('status', { name: 'Typing' }).textContent(), { timeout: UI_TIMEOUT }).toBe('Alice is typing…');
    await box(pa).press('Enter');
    const soup = article(pb, 'Soup tonight');
    await count(soup).toBe(1);
    expect(await soup.locator('strong').textContent()).toBe('Bob');
    await expect.poll(() => pb.getByRole('status', { name: 'Typing' }).textContent(), { timeout: UI_TIMEOUT }).toBe('');
    // A day separator heads the day; sender names and initials avatars.
    expect(await timeline(pb).getByRole('separator').count()).toBeGreaterThanOrEqual(1);
    expect(await soup.textContent()).toContain('Alice');
    expect(await soup.locator('.avatar').first().textContent()).toBe('A');

    // Bob replies with the message's "Reply" button.
    await soup.hover();
    await soup.getByRole('button', { name: 'Reply' }).click();
    await expect.poll(() => pb.getByText('Replying to').count()).toBe(1);
    await say(pb, 'Yes please, with bread');
    const reply = article(pa, 'Yes please, with bread');
    await count(reply).toBe(1);
    await expect.poll(() => reply.locator('blockquote').textContent(), { timeout: UI_TIMEOUT }).toContain('Soup tonight, **Bob**?');
    expect(await reply.locator('blockquote').textContent()).toContain('Alice');

    // Alice: Up in the empty composer edits her last message; Escape cancels; then a real edit.
    await box(pa).focus();
    await box(pa).press('ArrowUp');
    await expect.poll(() => box(pa).inputValue()).toBe('Soup tonight, **Bob**?');
    await box(pa).press('Escape');
    await expect.poll(() => box(pa).inputValue()).toBe('');
    expect(await pa.getByText('Editing message').count()).toBe(0);
    await box(pa).press('ArrowUp');
    await expect.poll(() => pa.getByText('Editing message').count()).toBe(1);
    await say(pa, 'Soup tonight at **eight**, Bob?');
    const edited = article(pb, 'Soup tonight at eight');
    await count(edited).toBe(1);
    expect(await edited.textContent()).toContain('(edited)');
    await count(article(pb, 'Soup tonight, Bob?')).toBe(0);
    // The reply's quote follows the edit.
    await expect.poll(() => reply.locator('blockquote').textContent(), { timeout: UI_TIMEOUT }).toContain('eight');

    // Reactions: Bob picks 👍, Alice adds hers (2), then takes it back (1).
    await edited.hover();
    await edited.getByRole('button', { name: 'React', exact: true }).click();
    await edited.getByRole('button', { name: 'React with 👍' }).click();
    const soupAtAlice = article(pa, 'Soup tonight at eight');
    await count(soupAtAlice.getByRole('button', { name: '👍 1' })).toBe(1);
    await soupAtAlice.getByRole('button', { name: '👍 1' }).click();
    await count(edited.getByRole('button', { name: '👍 2' })).toBe(1);
    expect(await soupAtAlice.getByRole('button', { name: '👍 2' }).getAttribute('aria-pressed')).toBe('true');
    await shoot(pa, 'timeline-reactions', { dark: true });
    await soupAtAlice.getByRole('button', { name: '👍 2' }).click();
    await count(edited.getByRole('button', { name: '👍 1' })).toBe(1);
    expect(await soupAtAlice.getByRole('button', { name: '👍 1' }).getAttribute('aria-pressed')).toBe('false');

    // Deletion.
    await say(pa, 'oops, wrong room');
    await count(article(pb, 'oops, wrong room')).toBe(1);
    const oops = article(pa, 'oops, wrong room');
    await oops.hover();
    await oops.getByRole('button', { name: 'Delete' }).click();
    await count(article(pb, 'oops, wrong room')).toBe(0);
    await count(article(pb, 'Message deleted')).toBe(1);

    // Read receipts: Bob's open timeline reads Alice's messages; Alice sees it.
    await say(pa, 'see you then');
    await count(article(pb, 'see you then')).toBe(1);
    await count(article(pa, 'see you then').getByRole('img', { name: 'Read by Bob' })).toBe(1);
    await say(pb, 'bye');
    await count(article(pb, 'bye').getByRole('img', { name: 'Read by Alice' })).toBe(1);
    await shoot(pb, 'timeline', { dark: true });

    expect(pageErrors).toEqual([]);
  }, 400_000);

  it('an XSS corpus sent as formatted messages by another client renders inert', async () => {
    // Carol is a client of another homeserver: `npm run homeserver -- --p2p`, an always-on peer on the same
    // relay. She sends the whole corpus through the client-server API in one burst; Bob receives it.
    const payloads = JSON.parse(await readFile(PAYLOADS, 'utf8')) as string[];
    pb ??= await open('b');
    const bob = (await pb.getByLabel('Your Matrix ID').count()) > 0 ? await pb.getByLabel('Your Matrix ID').inputValue() : await onboard(pb, 'Bob');
    const peer = await startHomeserverProcess(['--memory', '--no-rate-limits', '--p2p', '--relay', new URL('/config.json', chat.server.url).toString()]);
    await expect.poll(() => /^server name [0-9a-f]{64}$/m.test(peer.output()), { timeout: UI_TIMEOUT }).toBe(true);
    const carol = new HttpClientUser(peer.url);
    await carol.register('carol', 'Carol');
    const roomId = await carol.createRoom('Corpus', [bob]);

    const entry = roomEntry(pb, 'Corpus');
    await count(entry.getByRole('button', { name: 'Accept' })).toBe(1);
    await entry.getByRole('button', { name: 'Accept' }).click();
    await count(pb.getByRole('heading', { name: 'Corpus' })).toBe(1);

    const sent = await Promise.all(payloads.map((html, i) => carol.send(roomId, { msgtype: 'm.text', body: `payload ${i}`, format: 'org.matrix.custom.html', formatted_body: html })));
    await carol.send(roomId, { msgtype: 'm.text', body: 'end of corpus' });
    await count(article(pb, 'end of corpus')).toBe(1);
    // Only a window of rows is rendered.
    expect(await timeline(pb).getByRole('article').count()).toBeLessThan(payloads.length);

    // One pass from the bottom to the room's beginning: each step hovers, focuses and clicks nothing but
    // fires the events inline handlers listen for on every rendered element, then scrolls up (older
    // messages load as the top comes near) and notes what is unsafe in the log.
    const report = (await pb.evaluate(`(${INSPECT_WHILE_SCROLLING})(${JSON.stringify([ALLOWED_ELEMENTS, [...ALLOWED_ATTRIBUTES, ...ADDED_ATTRIBUTES]])})`)) as {
      problems: string[];
      seen: string[];
      reachedStart: boolean;
    };
    expect(report.problems).toEqual([]);
    expect(report.reachedStart).toBe(true);
    const seen = new Set(report.seen);
    expect(sent.filter((id) => !seen.has(id))).toEqual([]);
    // A real pointer over the rows on screen too.
    for (const rich of await timeline(pb).locator('.body.rich').all()) await rich.hover({ timeout: 2_000 }).catch(() => {});
    expect(await pb.evaluate(() => (window as unknown as { __xss?: unknown }).__xss)).toBeUndefined();
    await shoot(pb, 'timeline-xss');
    expect(pageErrors).toEqual([]);
    await peer.stop();
  }, 240_000);
});

/**
 * In the page: scrolls the Timeline log from where it is to the room's beginning, a screen at a time, and
 * at each step dispatches the events inline handlers fire on (pointer, mouse, focus, animation, load and
 * error) to every element of the log, then checks the log: no payload ran (`window.__xss`), no `on*`
 * attribute, no javascript:/data:/vbscript: URL in href/src/xlink:href/action/srcset, no script, iframe,
 * object, embed, form, style, base, meta, link, svg or math element; and inside formatted bodies only the
 * sanitiser's elements and attributes. Returns the problems, the event IDs of every message rendered on
 * the way, and whether the beginning was reached (it gives up after 60 s).
 */
const INSPECT_WHILE_SCROLLING = `async ([elements, attributes]) => {
  const log = document.querySelector('[role="log"][aria-label="Timeline"]');
  const problems = new Set();
  const seen = new Set();
  const FORBIDDEN = 'script, iframe, frame, object, embed, form, style, base, meta, link, svg, math, template, noscript';
  const URL_ATTRIBUTES = ['href', 'src', 'xlink:href', 'action', 'formaction', 'srcset', 'poster', 'background'];
  const EVENTS = ['pointerover', 'pointerenter', 'mouseover', 'mouseenter', 'mousemove', 'focus', 'focusin', 'animationstart', 'transitionend', 'load', 'error'];
  const frame = () => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
  const inspect = () => {
    if (window.__xss !== undefined) problems.add('a payload ran: window.__xss is ' + String(window.__xss));
    for (const element of log.querySelectorAll(FORBIDDEN)) problems.add('element <' + element.tagName.toLowerCase() + '>');
    for (const element of log.querySelectorAll('*')) {
      const tag = element.tagName.toLowerCase();
      for (const { name, value } of element.attributes) {
        if (/^on/i.test(name)) problems.add('attribute ' + name + ' on <' + tag + '>');
        if (URL_ATTRIBUTES.includes(name.toLowerCase()) && /^[\\s\\u0000-\\u001f]*(javascript|data|vbscript):/i.test(value.replace(/[\\t\\n\\r]/g, ''))) problems.add(name + '=' + value + ' on <' + tag + '>');
      }
      for (const type of EVENTS) element.dispatchEvent(new Event(type, { bubbles: false }));
    }
    for (const body of log.querySelectorAll('.body.rich')) {
      const id = body.closest('article')?.getAttribute('data-event-id');
      if (id) seen.add(id);
      for (const element of body.querySelectorAll('*')) {
        const tag = element.tagName.toLowerCase();
        const placeholder = tag === 'span' && element.className === 'inline-image';
        if (!elements.includes(tag) && !placeholder) problems.add('element <' + tag + '> in a formatted body');
        for (const { name, value } of element.attributes) {
          if (!attributes.includes(name)) problems.add('attribute ' + name + ' on <' + tag + '> in a formatted body');
          if (name === 'href' && !/^(https?|ftp|mailto|magnet):/i.test(value)) problems.add('href ' + value);
          if (name === 'class' && !placeholder && !(tag === 'code' && /^language-[\\w+#-]+$/.test(value))) problems.add('class ' + value);
        }
        if (tag === 'a' && element.hasAttribute('href') && (element.getAttribute('rel') !== 'noopener noreferrer nofollow' || element.getAttribute('target') !== '_blank')) problems.add('link without rel/target');
      }
    }
    for (const article of log.querySelectorAll('article')) {
      const id = article.getAttribute('data-event-id');
      if (id) seen.add(id);
    }
  };
  const started = performance.now();
  let reachedStart = false;
  while (performance.now() - started < 60000) {
    inspect();
    const atStart = (log.textContent ?? '').includes('This is the beginning of the room.');
    if (log.scrollTop === 0 && atStart) {
      reachedStart = true;
      break;
    }
    log.scrollTop = Math.max(0, log.scrollTop - log.clientHeight * 0.8);
    log.dispatchEvent(new Event('scroll'));
    // Two frames for the rows of the new position to render (and a pagination to start), then a moment for it.
    await frame();
    await frame();
    if (log.scrollTop === 0) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await frame();
  inspect();
  return { problems: [...problems], seen: [...seen], reachedStart };
}`;
