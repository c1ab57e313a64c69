/**
 * The ops page's event browser, in Chromium (test/support/chromium.ts), against a real gateway
 * on either engine: a tenant's events newest first, a type filter with the consumer filters'
 * patterns, a payload opened and pretty-printed as text, paging back to the oldest event, and
 * a tenant nothing was published for. The page's list is compared with the API's answer.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { gatewayFor } from './support/gateway.ts';
import { browserFor, openSignedIn, pageFor, panelOf, rowOf, screenshot, textOf, waitForCount, waitForText } from './support/chromium.ts';

declare const document: { querySelectorAll(selector: string): ArrayLike<{ getAttribute(name: string): string | null }> };

const listed = (page: import('playwright-core').Page) =>
  page.evaluate(() => Array.from(document.querySelectorAll('#events-list li')).map((li) => [li.getAttribute('data-type'), li.getAttribute('data-cursor')]));

describe('the event browser on the ops page', () => {
  test('a tenant’s events, newest first, filtered by type; a payload opens pretty-printed, as text', { timeout: 120_000 }, async (t) => {
    const g = await gatewayFor(t);
    const browser = await browserFor(t);
    const { page, errors } = await pageFor(browser);
    const types = ['order.placed', 'order.shipped', 'note.added', 'order.refund.requested', 'order.placed'];
    const events = (await g.publish(types.map((type, i) => ({ tenant: 'shop', type, data: { i, html: '<img src=x onerror=alert(1)>', nested: { ok: true, list: [1, 2] } } })))).events;
    await g.publish({ tenant: 'elsewhere', type: 'order.placed', data: {} });
    await openSignedIn(page, g.url);

    // All types, newest first, this tenant only.
    await page.locator('#events-tenant').fill('shop');
    await page.locator('#events-form button[type=submit]').click();
    await waitForCount(page, '#events-list li', 5);
    assert.deepEqual(await listed(page), [...events].reverse().map((e) => [e.type, e.cursor]));
    await waitForText(page, '#events-note', '5 events of tenant shop, newest first. That is everything retained.');
    assert.equal(await page.locator('#events-older').isVisible(), false);

    // order.* (one segment): the placed and shipped ones, as the API answers.
    await page.locator('#events-type').fill('order.*');
    await page.locator('#events-form button[type=submit]').click();
    await waitForCount(page, '#events-list li', 3);
    const api = (await g.json('/v1/tenants/shop/events?type=order.*')).body.events;
    assert.deepEqual(await listed(page), api.map((e: any) => [e.type, e.cursor]), 'the page shows what the API answers');
    assert.deepEqual(api.map((e: any) => e.data.i), [4, 1, 0]);

    // Open the newest: its payload, pretty-printed, as text (the markup in it stays text).
    const first = '#events-list li:first-child';
    assert.equal(await page.locator(`${first} pre.payload`).isVisible(), false);
    await page.locator(`${first} button.event-head`).click();
    await page.locator(`${first} pre.payload`).waitFor({ state: 'visible' });
    assert.equal(await page.locator(`${first} pre.payload`).textContent(), JSON.stringify(events[4].data, null, 2));
    assert.equal(await page.locator(`${first} pre.payload img`).count(), 0, 'no element was made from the payload');
    assert.equal(await textOf(page, `${first} p.meta`), `cursor ${events[4].cursor} · ${events[4].time}`);
    assert.equal(await page.locator(`${first} button.event-head`).getAttribute('aria-expanded'), 'true');
    await screenshot(t, page, 'event-browser');

    // A pattern the gateway refuses: its message, naming the field.
    await page.locator('#events-type').fill('order..x');
    await page.locator('#events-form button[type=submit]').click();
    await waitForText(page, '#events-error', /^Could not load the events: 400: type: /);

    // A tenant nothing was published for.
    await page.locator('#events-type').fill('');
    await page.locator('#events-tenant').fill('ghost');
    await page.locator('#events-form button[type=submit]').click();
    await waitForText(page, '#events-note', 'Nothing was ever published for tenant ghost.');
    await waitForCount(page, '#events-list li', 0);

    assert.deepEqual(errors, [], 'no script errors, no CSP violations');
  });

  test('pages back with “Older events” to the oldest event; opened from a consumer’s panel', { timeout: 120_000 }, async (t) => {
    const g = await gatewayFor(t);
    const browser = await browserFor(t);
    const { page, errors } = await pageFor(browser);
    const c = await g.createConsumer({ tenant: 'busy', name: 'watcher' });
    const events = (await g.publish(Array.from({ length: 72 }, (_, i) => ({ tenant: 'busy', type: 'tick', data: { i } })))).events;
    await openSignedIn(page, g.url);

    await page.locator(`${rowOf('consumers', c.id)} button.manage`).click();
    await page.locator(`${panelOf(c.id)} button.browse`).click();
    await waitForCount(page, '#events-list li', 50);
    assert.equal(await page.locator('#events-tenant').inputValue(), 'busy');
    assert.equal(await page.locator('#events-older').isVisible(), true);
    await page.locator('#events-older').click();
    await waitForCount(page, '#events-list li', 72);
    assert.deepEqual((await listed(page)).map(([, cursor]) => cursor), [...events].reverse().map((e) => e.cursor), 'every event once, newest first');
    assert.equal(await page.locator('#events-older').isVisible(), false, 'nothing older');
    await waitForText(page, '#events-count', '72 shown');

    assert.deepEqual(errors, [], 'no script errors, no CSP violations');
  });
});
