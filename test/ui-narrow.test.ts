/**
 * The ops page at 420 px wide, in Chromium (test/support/chromium.ts): with every section
 * filled and opened (a consumer's panel, a failing webhook's attempts, an event's payload, the
 * charts with a sample, each dialog), the document never scrolls sideways and the controls an
 * operator needs lie inside the screen. Tables turn into one labelled card per row there.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { gatewayFor } from './support/gateway.ts';
import { receiverFor } from './support/receiver.ts';
import { browserFor, openSignedIn, pageFor, panelOf, rowOf, screenshot, sidewaysScroll, UI_WAIT, waitForCount } from './support/chromium.ts';
import { waitUntil } from './support/wait.ts';

const WIDTH = 420;

declare const document: { querySelectorAll(selector: string): ArrayLike<{ tagName: string; className: string; getBoundingClientRect(): { right: number } }> };

async function assertFits(page: Page, what: string): Promise<void> {
  const { scrollWidth, clientWidth } = await sidewaysScroll(page);
  assert.equal(clientWidth, WIDTH, 'the viewport is 420 px');
  if (scrollWidth <= clientWidth) return;
  const wide = await page.evaluate((width) =>
    Array.from(document.querySelectorAll('body *'))
      .filter((e) => e.getBoundingClientRect().right > width + 1)
      .slice(0, 5)
      .map((e) => `${e.tagName.toLowerCase()}.${e.className} (right edge ${Math.round(e.getBoundingClientRect().right)})`),
  WIDTH);
  assert.fail(`${what}: the page scrolls sideways (${scrollWidth} px wide in ${clientWidth}); too wide: ${wide.join(', ')}`);
}

/** The element lies within the screen's width. */
async function assertInside(page: Page, selector: string): Promise<void> {
  const box = await page.locator(selector).first().boundingBox();
  assert.ok(box, `${selector} is shown`);
  assert.ok(box.x >= 0 && box.x + box.width <= WIDTH, `${selector} lies inside 420 px: x ${box.x}, width ${box.width}`);
}

describe('the ops page at 420 px', () => {
  test('no sideways scroll with every section filled and open; controls within reach', { timeout: 120_000 }, async (t) => {
    // One failed attempt and no retry during the test: the attempts list holds exactly one row.
    const g = await gatewayFor(t, { config: { retryScheduleMs: [600_000] } });
    const bad = await receiverFor(t, () => ({ status: 500 }));
    const browser = await browserFor(t);
    const { page, errors } = await pageFor(browser, { viewport: { width: WIDTH, height: 860 } });

    const longName = 'a-consumer-with-a-rather-long-name-that-does-not-break-easily';
    const c = await g.createConsumer({
      tenant: 'a-tenant-with-a-long-name.example',
      name: longName,
      filter: { types: ['ticket.*', 'message.create.request.channel.**'], where: [{ field: 'data.priority', op: 'in', value: ['urgent', 'high'] }] },
      start: 'earliest',
    });
    const hooked = await g.createConsumer({ tenant: 'a-tenant-with-a-long-name.example', name: 'hook', start: 'earliest' });
    const url = `${bad.url}a/very/long/path/that/goes/on/and/on?with=a&query=string&that=is&long=too`;
    assert.equal((await g.json(`/v1/consumers/${hooked.id}/webhook`, { method: 'PUT', body: { url, headers: { 'X-Long-Header-Name': 'v'.repeat(80) } } })).status, 201);
    await g.publish([
      { tenant: 'a-tenant-with-a-long-name.example', type: 'message.create.request.channel.web.with.many.segments', data: { text: 'x'.repeat(300), unbroken: 'y'.repeat(200) } },
      { tenant: 'a-tenant-with-a-long-name.example', type: 'ticket.created', data: { priority: 'urgent' } },
    ]);
    await bad.waitForCount(1);

    await openSignedIn(page, g.url);
    await waitForCount(page, `${rowOf('consumers', c.id)}`, 1);
    await assertFits(page, 'signed in');
    for (const control of ['#bridge-toggle', '#new-consumer', '#tenant', '#sign-out', `${rowOf('consumers', c.id)} button.manage`]) await assertInside(page, control);

    // A consumer's panel, a webhook's attempts, an event's payload.
    await page.locator(`${rowOf('consumers', c.id)} button.manage`).click();
    for (const control of [`${panelOf(c.id)} button.seek-submit`, `${panelOf(c.id)} button.delete`, `${panelOf(c.id)} select.seek-to`]) await assertInside(page, control);
    await page.locator(`${rowOf('webhooks', hooked.id)} button.attempts-toggle`).click();
    await waitForCount(page, `#webhooks tr[data-attempts-for="${hooked.id}"] table.inner tbody tr`, 1, UI_WAIT);
    for (const control of [`${rowOf('webhooks', hooked.id)} button.switch`, `${rowOf('webhooks', hooked.id)} button.edit`, `#webhooks tr[data-attempts-for="${hooked.id}"] button.detail`]) {
      await assertInside(page, control);
    }
    await page.locator('#events-tenant').fill('a-tenant-with-a-long-name.example');
    await page.locator('#events-form button[type=submit]').click();
    await waitForCount(page, '#events-list li', 2);
    await page.locator('#events-list li:last-child button.event-head').click();
    await page.locator('#events-list li:last-child pre.payload').waitFor({ state: 'visible' });
    // The charts with a sample drawn (the first comes 5 s after the node started).
    await waitUntil(async () => (await page.locator('#chart-publish svg [data-key="published"]').count()) === 1, 15_000, () => 'a sample on the chart');
    await assertInside(page, '#chart-lag svg');
    await assertFits(page, 'every section open');
    await screenshot(t, page, 'narrow-420-everything-open');

    // Each dialog fits too.
    await page.locator(`#webhooks tr[data-attempts-for="${hooked.id}"] button.detail`).first().click();
    await page.locator('#attempt-event').click();
    await page.locator('#attempt-payload').waitFor({ state: 'visible' });
    await assertFits(page, 'an attempt’s detail');
    await assertInside(page, '#attempt-dialog button[data-close]');
    await screenshot(t, page, 'narrow-420-attempt');
    await page.locator('#attempt-dialog button[data-close]').click();
    await page.locator(`${rowOf('webhooks', hooked.id)} button.edit`).click();
    await assertFits(page, 'the webhook form');
    await assertInside(page, '#webhook-submit');
    await page.locator('#webhook-dialog button[data-close]').click();
    await page.locator('#new-consumer').click();
    await assertFits(page, 'the consumer form');
    await assertInside(page, '#consumer-submit');
    await page.locator('#consumer-dialog button[data-close]').click();
    await page.locator(`${panelOf(c.id)} button.delete`).click();
    await assertFits(page, 'a confirmation');
    await assertInside(page, '#confirm-cancel');
    await assertInside(page, '#confirm-ok');
    await screenshot(t, page, 'narrow-420-confirm');
    await page.locator('#confirm-cancel').click();

    assert.deepEqual(errors, [], 'no script errors, no CSP violations');
  });
});
