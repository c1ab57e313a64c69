/**
 * Driving the ops page in a real browser: Debian's Chromium (/usr/bin/chromium) through
 * playwright-core, which downloads nothing. Without that Chromium the tests fail with a message
 * saying how to install it (.ci/run installs it). Chromium runs with networking extras off,
 * against a gateway on a loopback port.
 *
 * Waiting is always for a condition (text in the page, a value from the API), bounded by a
 * timeout that names what was awaited; the page refreshes every ~2 s, so bounds are 10 s.
 * Screenshots go to one temporary directory per test process (kept: they are the artifacts
 * to look at), and each path is printed with t.diagnostic.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { chromium, type Browser, type BrowserContextOptions, type Page } from 'playwright-core';
import { ADMIN_KEY } from './gateway.ts';
import { TEST_ENGINE } from './engine.ts';
import { waitUntil } from './wait.ts';

// Functions given to page.evaluate run in the page; the project compiles without the DOM lib,
// so the browser globals they use are declared here (test files declare their own).
declare const document: {
  querySelector(selector: string): { textContent: string | null } | null;
  documentElement: { scrollWidth: number; clientWidth: number };
};

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** The page polls every ~2 s; anything it shows should be there well within this. */
export const UI_WAIT = 10_000;

export async function browserFor(t: TestContext): Promise<Browser> {
  assert.ok(
    existsSync(CHROMIUM),
    `${CHROMIUM} is missing, so the ops page cannot be tested. Install Debian's Chromium: ` +
      'apt-get update && apt-get install -y --no-install-recommends chromium (.ci/run does this). ' +
      'Do not use `npx playwright install`.',
  );
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 });
  t.after(() => browser.close());
  return browser;
}

/**
 * A fresh page that records script errors and console errors (CSP violations show up there).
 * "Failed to load resource" is Chromium noting an HTTP error answer, e.g. the 401 a wrong key gets.
 */
export async function pageFor(browser: Browser, options: BrowserContextOptions = {}): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) errors.push(`console: ${msg.text()}`);
  });
  return { page, errors };
}

export const textOf = (page: Page, selector: string) =>
  page.evaluate((sel) => document.querySelector(sel)?.textContent?.trim() ?? null, selector);

export async function waitForText(page: Page, selector: string, want: string | RegExp, timeoutMs = UI_WAIT): Promise<void> {
  let seen: string | null = null;
  await waitUntil(
    async () => {
      seen = await textOf(page, selector);
      return seen !== null && (typeof want === 'string' ? seen === want : want.test(seen));
    },
    timeoutMs,
    () => `${selector} to read ${String(want)}; it reads ${JSON.stringify(seen)}`,
  );
}

export async function waitForCount(page: Page, selector: string, n: number, timeoutMs = UI_WAIT): Promise<void> {
  let seen = -1;
  await waitUntil(
    async () => (seen = await page.locator(selector).count()) === n,
    timeoutMs,
    () => `${n} × ${selector}; there are ${seen}`,
  );
}

export async function signIn(page: Page, key: string = ADMIN_KEY): Promise<void> {
  await page.locator('#key').fill(key);
  await page.locator('#login-submit').click();
}

/** Opens the page at url and signs in with the admin key; resolves once the dashboard shows. */
export async function openSignedIn(page: Page, url: string): Promise<void> {
  await page.goto(`${url}/ui`);
  await signIn(page);
  await page.locator('#dashboard').waitFor({ state: 'visible' });
}

export const rowOf = (table: string, id: string) => `#${table} tr[data-id="${id}"]`;
export const panelOf = (id: string) => `#consumers tr[data-detail-for="${id}"]`;

let shots: string | null = null;

/** Saves a full-page screenshot as a test artifact and says where it is. */
export async function screenshot(t: TestContext, page: Page, name: string): Promise<string> {
  shots ??= mkdtempSync(join(tmpdir(), 'pollgate-ui-shots-'));
  const path = join(shots, `${TEST_ENGINE}-${name}.png`);
  await page.screenshot({ path, fullPage: true });
  t.diagnostic(`screenshot: ${path}`);
  return path;
}

/** Does the page scroll sideways? (The document, not a scroll box inside it.) */
export async function sidewaysScroll(page: Page): Promise<{ scrollWidth: number; clientWidth: number }> {
  return page.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, clientWidth: document.documentElement.clientWidth }));
}
