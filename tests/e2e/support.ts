// What the chat app's end-to-end tests share: `npm start`'s server (src/node/start.ts) on a free port for
// one describe block, Chromium profiles in their own temporary directories, pages opened on that server,
// onboarding through the UI, the locators every test reads, and screenshots at 1280 px and 375 px into
// test-results/e2e/. What a test checks stays in the test.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { chromiumAvailable, launchPersistentChromium } from '../support/chromium.js';
import { start, type Started } from '../../src/node/start.js';

export const RESULTS = resolve(import.meta.dirname, '../../test-results/e2e');
export const UI_TIMEOUT = 60_000;

/** `describe`, skipped where there is no Chromium unless on CI (where its absence must fail). */
export const describeInChromium = describe.skipIf(!chromiumAvailable() && !process.env.CI);

export interface ChatServer {
  /** The running server; set once beforeAll has run. */
  readonly server: Started;
  /** Every profile opened so far, in order. */
  readonly contexts: readonly BrowserContext[];
  /** Each profile's directory, in the order of `contexts`. */
  readonly dirs: readonly string[];
  /** A new Chromium profile in a fresh temporary directory, closed and removed after the block. */
  browser(): Promise<BrowserContext>;
  /** A new 1280 px page of `context` at `path` on the server. */
  open(context: BrowserContext, path: string): Promise<Page>;
}

export interface ChatServerOptions {
  /** Prefix of the profiles' temporary directories. */
  readonly dirPrefix?: string;
  /** Listens on each new page before it loads; by default page errors are logged. */
  readonly watch?: (page: Page) => void;
}

/** Starts the server before the enclosing describe block's tests and tears everything down after them. */
export function useChatServer(options: ChatServerOptions = {}): ChatServer {
  const { dirPrefix = 'hometab-e2e-', watch = (page: Page) => page.on('pageerror', (e) => console.error('page error:', e)) } = options;
  let server: Started | undefined;
  const contexts: BrowserContext[] = [];
  const dirs: string[] = [];

  beforeAll(async () => {
    server = await start({ port: 0, log: () => {} });
    await mkdir(RESULTS, { recursive: true });
  }, 180_000);

  afterAll(async () => {
    for (const context of contexts) await context.close().catch(() => {});
    await server?.stop();
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  const running = (): Started => {
    if (!server) throw new Error('the e2e server is not started yet (use it inside a test)');
    return server;
  };

  return {
    get server() {
      return running();
    },
    contexts,
    dirs,
    async browser() {
      const dir = await mkdtemp(join(tmpdir(), dirPrefix));
      dirs.push(dir);
      const context = await launchPersistentChromium(dir);
      context.setDefaultTimeout(UI_TIMEOUT);
      contexts.push(context);
      return context;
    },
    async open(context, path) {
      const page = await context.newPage();
      watch(page);
      await page.setViewportSize({ width: 1280, height: 800 });
      await page.goto(new URL(path, running().url).toString());
      return page;
    },
  };
}

/** Onboards through the UI under `name` and returns the Matrix ID the page then shows. */
export async function onboard(page: Page, name: string): Promise<string> {
  await page.getByRole('textbox', { name: 'Display name' }).fill(name);
  await page.getByRole('button', { name: 'Continue' }).click();
  const id = page.getByLabel('Your Matrix ID');
  await expect.poll(() => id.inputValue(), { timeout: UI_TIMEOUT }).toMatch(/^@.+:[0-9a-f]{64}$/);
  return id.inputValue();
}

export const roomEntry = (page: Page, name: string) => page.getByRole('list', { name: 'Rooms' }).getByRole('listitem').filter({ hasText: name });
export const timeline = (page: Page) => page.getByRole('log', { name: 'Timeline' });

export interface ShotOptions {
  /** Also shoot the 375 px view in the dark colour scheme. */
  readonly dark?: boolean;
  /** With `dark`, also shoot the 1280 px view dark (default: as `dark`). */
  readonly darkWide?: boolean;
}

/** Screenshots `name` at 1280 px and 375 px (and dark, if asked); leaves the page at 1280 px, light. */
export async function shoot(page: Page, name: string, options: ShotOptions = {}): Promise<void> {
  const { dark = false, darkWide = dark } = options;
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.screenshot({ path: join(RESULTS, `${name}-1280.png`) });
  await page.setViewportSize({ width: 375, height: 740 });
  await page.screenshot({ path: join(RESULTS, `${name}-375.png`) });
  if (dark) {
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.screenshot({ path: join(RESULTS, `${name}-375-dark.png`) });
    if (darkWide) {
      await page.setViewportSize({ width: 1280, height: 800 });
      await page.screenshot({ path: join(RESULTS, `${name}-1280-dark.png`) });
    }
    await page.emulateMedia({ colorScheme: 'light' });
  }
  await page.setViewportSize({ width: 1280, height: 800 });
}

/** Invites `userId` to the open room through its "Invite" dialog, and closes the dialog once it says so. */
export async function inviteById(page: Page, userId: string): Promise<void> {
  await page.getByRole('button', { name: 'Invite' }).click();
  const invite = page.getByRole('dialog', { name: 'Invite' });
  await invite.getByRole('textbox', { name: 'Matrix ID', exact: true }).fill(userId);
  await invite.getByRole('button', { name: 'Send invite' }).click();
  await expect.poll(() => invite.getByRole('status').textContent()).toContain('Invited');
  await invite.getByRole('button', { name: 'Close' }).click();
}

/** Types `text` into the composer and sends it with Enter; resolves once the composer has cleared. */
export async function say(page: Page, text: string): Promise<void> {
  const box = page.getByRole('textbox', { name: 'Message' });
  await box.fill(text);
  await box.press('Enter');
  await expect.poll(() => box.inputValue()).toBe('');
}
