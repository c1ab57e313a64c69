/**
 * Managing consumers from the ops page, in Chromium (test/support/chromium.ts), against a real
 * gateway on either engine: create one and see its key once (and copy it), seek it to the
 * latest event, a cursor, a time and the earliest event, rotate its key, delete it, each
 * asking first where it cannot be undone, and Cancel changing nothing. Every result is checked
 * through the API, not only on the page.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { consumerOf, gatewayFor, type TestGateway } from './support/gateway.ts';
import { browserFor, openSignedIn, pageFor, panelOf, rowOf, screenshot, textOf, UI_WAIT, waitForText } from './support/chromium.ts';
import { waitUntil } from './support/wait.ts';

declare const document: {
  documentElement: { outerHTML: string };
  querySelectorAll(selector: string): ArrayLike<{ value: string }>;
};
declare const navigator: { clipboard: { readText(): Promise<string> } };

/** Is the text anywhere in the page: its markup or a field's value? */
function pageHolds(page: Page, text: string): Promise<boolean> {
  return page.evaluate(
    (t) => document.documentElement.outerHTML.includes(t) || Array.from(document.querySelectorAll('input, textarea')).some((i) => i.value.includes(t)),
    text,
  );
}

/** A time as a datetime-local field takes it, in this machine's zone (the browser's too). */
function localMinute(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

async function waitForApi(g: TestGateway, id: string, ok: (view: any) => boolean, what: string): Promise<any> {
  let view: any = null;
  await waitUntil(async () => ok((view = await consumerOf(g, id))), UI_WAIT, () => `${what}; the consumer is ${JSON.stringify(view)}`);
  return view;
}

async function confirm(page: Page, title: RegExp): Promise<void> {
  await page.locator('#confirm-dialog').waitFor({ state: 'visible' });
  assert.match((await textOf(page, '#confirm-title')) ?? '', title);
  await page.locator('#confirm-ok').click();
  await page.locator('#confirm-dialog').waitFor({ state: 'hidden' });
}

async function cancel(page: Page, title: RegExp): Promise<void> {
  await page.locator('#confirm-dialog').waitFor({ state: 'visible' });
  assert.match((await textOf(page, '#confirm-title')) ?? '', title);
  await page.locator('#confirm-cancel').click();
  await page.locator('#confirm-dialog').waitFor({ state: 'hidden' });
}

describe('consumers on the ops page', () => {
  test('create a consumer: the key is shown once, copies, works, and is gone from the page when closed; bad input is named', { timeout: 120_000 }, async (t) => {
    const g = await gatewayFor(t);
    const browser = await browserFor(t);
    const { page, errors } = await pageFor(browser, { permissions: ['clipboard-read', 'clipboard-write'] });
    const [first] = (await g.publish([{ tenant: 'acme', type: 'ticket.created', data: { n: 1 } }, { tenant: 'acme', type: 'note.added', data: { n: 2 } }])).events;
    await openSignedIn(page, g.url);

    // A bad tenant: the form stays, the gateway's message names the field.
    await page.locator('#new-consumer').click();
    await page.locator('#consumer-dialog').waitFor({ state: 'visible' });
    await page.locator('#new-tenant').fill('no spaces allowed');
    await page.locator('#consumer-submit').click();
    await waitForText(page, '#consumer-error', /^400: tenant: must be 1 to 64 characters/);
    assert.equal((await g.json('/v1/consumers')).body.consumers.length, 0, 'nothing was created');

    // The real thing: a name, a type filter, reading from the earliest event.
    await page.locator('#new-tenant').fill('acme');
    await page.locator('#new-name').fill('billing');
    await page.locator('#new-types').fill('ticket.*, billing.**');
    await page.locator('#new-start').selectOption('earliest');
    await page.locator('#consumer-submit').click();
    await page.locator('#secret-dialog').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#consumer-dialog').isVisible(), false, 'the form closed');
    assert.match((await textOf(page, '#secret-title')) ?? '', /^Key of billing \(con_\w+\)$/);
    assert.match((await textOf(page, '#secret-note')) ?? '', /Shown only now/);
    const key = await page.locator('#secret-value').inputValue();
    assert.match(key, /^pgk_/);
    await screenshot(t, page, 'consumer-key-shown-once');

    await page.locator('#secret-copy').click();
    await waitForText(page, '#secret-copied', 'Copied to the clipboard.');
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), key, 'Copy puts the key on the clipboard');

    // The key is the consumer's: it reads the filtered events from the earliest one.
    const own = await g.json('/v1/consumer', { key });
    assert.equal(own.status, 200);
    assert.equal(own.body.name, 'billing');
    assert.deepEqual(own.body.filter, { types: ['ticket.*', 'billing.**'] });
    const polled = await g.json('/v1/events?wait=0', { key });
    assert.deepEqual(polled.body.events.map((e: any) => e.id), [first.id], 'earliest, filtered');

    await page.locator('#secret-done').click();
    await page.locator('#secret-dialog').waitFor({ state: 'hidden' });
    await page.locator('#secret-dialog').waitFor({ state: 'hidden' });
    assert.equal(await pageHolds(page, key), false, 'once closed, the key is nowhere in the page');

    // Its row, with the filter in words.
    const row = rowOf('consumers', own.body.id);
    await waitForText(page, `${row} td.name`, 'billing');
    assert.equal(await textOf(page, `${row} td.filter-cell`), 'types ticket.*, billing.**');
    assert.equal(await textOf(page, `${row} td.lag`), '2');
    assert.equal(await pageHolds(page, key), false, 'nor after a refresh');

    // The same name again: 409, said in the form.
    await page.locator('#new-consumer').click();
    await page.locator('#new-tenant').fill('acme');
    await page.locator('#new-name').fill('billing');
    await page.locator('#consumer-submit').click();
    await waitForText(page, '#consumer-error', /^409: /);
    await page.locator('#consumer-dialog button[data-close]').click();
    assert.equal((await g.json('/v1/consumers')).body.consumers.length, 1);

    assert.deepEqual(errors, [], 'no script errors, no CSP violations');
  });

  test('seek to latest, a cursor, a time and earliest, each confirmed; Cancel moves nothing', { timeout: 120_000 }, async (t) => {
    const g = await gatewayFor(t);
    const browser = await browserFor(t);
    const { page, errors } = await pageFor(browser);
    const events = (await g.publish(Array.from({ length: 5 }, (_, i) => ({ tenant: 'acme', type: 'a.b', data: { i } })))).events;
    const c = await g.createConsumer({ tenant: 'acme', name: 'reader', start: 'earliest' });
    await openSignedIn(page, g.url);
    await waitForText(page, `${rowOf('consumers', c.id)} td.lag`, '5');
    await page.locator(`${rowOf('consumers', c.id)} button.manage`).click();
    const panel = panelOf(c.id);
    await page.locator(panel).waitFor({ state: 'visible' });
    assert.equal(await textOf(page, `${panel} dd.filter-text`), 'every event');

    // Latest, cancelled: nothing moves.
    await page.locator(`${panel} select.seek-to`).selectOption('latest');
    await page.locator(`${panel} button.seek-submit`).click();
    await cancel(page, /^Move the cursor of reader \(con_\w+\)\?$/);
    assert.equal((await consumerOf(g, c.id)).lag, 5, 'cancelled: the cursor stayed');

    // Latest, confirmed (the dialog says how many events it skips).
    await page.locator(`${panel} button.seek-submit`).click();
    await page.locator('#confirm-dialog').waitFor({ state: 'visible' });
    assert.match((await textOf(page, '#confirm-body')) ?? '', /skips the 5 events it has not read yet/);
    await screenshot(t, page, 'seek-confirmation');
    await confirm(page, /^Move the cursor/);
    await waitForApi(g, c.id, (v) => v.cursor === events[4].cursor && v.lag === 0, 'at the latest event');
    await waitForText(page, '#notice', /Cursor of reader \(con_\w+\) moved to t0+5: 0 events to read\./);

    // After a cursor.
    await page.locator(`${panel} select.seek-to`).selectOption('cursor');
    await page.locator(`${panel} input.seek-value`).fill(events[1].cursor);
    await page.locator(`${panel} button.seek-submit`).click();
    await confirm(page, /^Move the cursor/);
    await waitForApi(g, c.id, (v) => v.cursor === events[1].cursor && v.lag === 3, 'after the second event');
    await waitForText(page, `${rowOf('consumers', c.id)} td.lag`, '3');

    // A cursor that is not one: the gateway's 400, shown in the panel; nothing moves.
    await page.locator(`${panel} input.seek-value`).fill('not-a-cursor');
    await page.locator(`${panel} button.seek-submit`).click();
    await confirm(page, /^Move the cursor/);
    await waitForText(page, `${panel} .panel-error`, /^400: to\.cursor: "not-a-cursor" is not a cursor of this gateway/);
    assert.equal((await consumerOf(g, c.id)).cursor, events[1].cursor);

    // A time a minute before the first event: everything is read again.
    await page.locator(`${panel} select.seek-to`).selectOption('time');
    await page.locator(`${panel} input.seek-value`).fill(localMinute(Date.parse(events[0].time) - 60_000));
    await page.locator(`${panel} button.seek-submit`).click();
    await confirm(page, /^Move the cursor/);
    await waitForApi(g, c.id, (v) => v.lag === 5, 'before the first event');

    // Latest again, then earliest.
    await page.locator(`${panel} select.seek-to`).selectOption('latest');
    await page.locator(`${panel} button.seek-submit`).click();
    await confirm(page, /^Move the cursor/);
    await waitForApi(g, c.id, (v) => v.lag === 0, 'at the latest event');
    await page.locator(`${panel} select.seek-to`).selectOption('earliest');
    await page.locator(`${panel} button.seek-submit`).click();
    await confirm(page, /^Move the cursor/);
    await waitForApi(g, c.id, (v) => v.lag === 5 && v.cursor === 't0000000000000000', 'at the earliest event');

    assert.deepEqual(errors, [], 'no script errors, no CSP violations');
  });

  test('rotate the key (the old one stops, the new one is shown once), delete with confirmation (Cancel keeps it)', { timeout: 120_000 }, async (t) => {
    const g = await gatewayFor(t);
    const browser = await browserFor(t);
    const { page, errors } = await pageFor(browser);
    const c = await g.createConsumer({ tenant: 'acme', name: 'ledger' });
    const keep = await g.createConsumer({ tenant: 'acme', name: 'bystander' });
    await openSignedIn(page, g.url);
    await page.locator(`${rowOf('consumers', c.id)} button.manage`).click();
    const panel = panelOf(c.id);

    // Rotate, cancelled: the key still works.
    await page.locator(`${panel} button.rotate`).click();
    await cancel(page, /^Rotate the key of ledger/);
    assert.equal((await g.json('/v1/consumer', { key: c.key })).status, 200);

    // Rotate, confirmed: a new key, shown once; the old one is refused.
    await page.locator(`${panel} button.rotate`).click();
    await confirm(page, /^Rotate the key of ledger/);
    await page.locator('#secret-dialog').waitFor({ state: 'visible' });
    const key = await page.locator('#secret-value').inputValue();
    assert.match(key, /^pgk_/);
    assert.notEqual(key, c.key);
    assert.equal((await g.json('/v1/consumer', { key: c.key })).status, 401, 'the old key stopped working');
    assert.equal((await g.json('/v1/consumer', { key })).status, 200, 'the new key works');
    await page.locator('#secret-done').click();
    await page.locator('#secret-dialog').waitFor({ state: 'hidden' });
    assert.equal(await pageHolds(page, key), false, 'the new key is gone from the page once closed');

    // Delete, cancelled: still there, on the page and in the API.
    await page.locator(`${panel} button.delete`).click();
    await page.locator('#confirm-dialog').waitFor({ state: 'visible' });
    assert.match((await textOf(page, '#confirm-body')) ?? '', /Consumer ledger \(con_\w+\) of tenant acme will be deleted: its key stops working/);
    assert.match((await textOf(page, '#confirm-body')) ?? '', /This cannot be undone\./);
    assert.equal(await page.locator('#confirm-cancel').evaluate((b) => b === (b as any).ownerDocument.activeElement), true, 'Cancel has the focus');
    await screenshot(t, page, 'delete-confirmation');
    await cancel(page, /^Delete ledger \(con_\w+\)\?$/);
    assert.equal((await g.json(`/v1/consumers/${c.id}`)).status, 200, 'cancelled: the consumer is kept');
    assert.equal(await page.locator(rowOf('consumers', c.id)).count(), 1);

    // Delete, confirmed: gone from the API and the page; the other consumer is untouched.
    await page.locator(`${panel} button.delete`).click();
    await confirm(page, /^Delete ledger/);
    await waitForText(page, '#notice', /^Deleted consumer ledger \(con_\w+\)\.$/);
    assert.equal((await g.json(`/v1/consumers/${c.id}`)).status, 404);
    assert.equal((await g.json('/v1/consumer', { key })).status, 401, 'its key is gone too');
    assert.equal(await page.locator(rowOf('consumers', c.id)).count(), 0, 'its row is gone');
    await page.waitForTimeout(2500); // a refresh or more later
    assert.equal(await page.locator(rowOf('consumers', c.id)).count(), 0, 'and stays gone');
    assert.equal(await page.locator(rowOf('consumers', keep.id)).count(), 1);
    assert.equal((await g.json(`/v1/consumers/${keep.id}`)).status, 200);

    assert.deepEqual(errors, [], 'no script errors, no CSP violations');
  });
});
