/**
 * Webhooks from the ops page, in Chromium (test/support/chromium.ts), against a real gateway on
 * either engine and real receivers: add one (its signing secret shown once, and it verifies a
 * real delivery), edit url, method, headers and timeout, pause and resume it (a paused webhook
 * reads "paused" and plans no attempt), remove it with confirmation (Cancel keeps it), and open
 * a failed attempt's detail with the event it carried. Results are checked through the API and
 * at the receivers.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { consumerOf, gatewayFor, webhookOf } from './support/gateway.ts';
import { receiverFor, verify } from './support/receiver.ts';
import { browserFor, openSignedIn, pageFor, panelOf, rowOf, screenshot, textOf, UI_WAIT, waitForCount, waitForText } from './support/chromium.ts';
import { waitUntil } from './support/wait.ts';

declare const document: { querySelectorAll(selector: string): ArrayLike<{ textContent: string | null }> };

describe('webhooks on the ops page', () => {
  test('add (secret shown once), edit, pause and resume, remove with confirmation', { timeout: 120_000 }, async (t) => {
    const g = await gatewayFor(t);
    const rx = await receiverFor(t);
    const browser = await browserFor(t);
    const { page, errors } = await pageFor(browser);
    const c = await g.createConsumer({ tenant: 'acme', name: 'orders-hook' });
    await openSignedIn(page, g.url);

    // Add it from the consumer's panel.
    await page.locator(`${rowOf('consumers', c.id)} button.manage`).click();
    await page.locator(`${panelOf(c.id)} button.webhook-edit`).click();
    await page.locator('#webhook-dialog').waitFor({ state: 'visible' });
    assert.equal(await textOf(page, '#webhook-title'), `Add a webhook to orders-hook (${c.id})`);
    await page.locator('#hook-url').fill('ftp://nowhere');
    await page.locator('#webhook-submit').click();
    await waitForText(page, '#hook-url-error', /^400: url: must be an absolute http:\/\/ or https:\/\/ URL/);
    assert.equal(await page.locator('#hook-url').getAttribute('aria-invalid'), 'true', 'the refusal is shown under the field it names');
    await page.locator('#hook-url').fill(`${rx.url}orders`);
    await page.locator('#hook-headers').fill('X-Team: ops\nX-Env: test');
    await page.locator('#hook-timeout').fill('5000');
    await page.locator('#webhook-submit').click();
    await page.locator('#secret-dialog').waitFor({ state: 'visible' });
    const secret = await page.locator('#secret-value').inputValue();
    assert.match(secret, /^whsec_/);
    await page.locator('#secret-done').click();
    await page.locator('#secret-dialog').waitFor({ state: 'hidden' });

    let hook = await webhookOf(g, c.id);
    assert.equal(hook.url, `${rx.url}orders`);
    assert.deepEqual(hook.headers, { 'X-Team': 'ops', 'X-Env': 'test' });
    assert.equal(hook.timeout_ms, 5000);
    assert.equal(hook.enabled, true);

    // A real delivery, signed with the secret the page showed.
    const [event] = (await g.publish([{ tenant: 'acme', type: 'order.placed', data: { n: 1 } }])).events;
    await rx.waitForCount(1);
    assert.equal(rx.requests[0]!.headers['x-team'], 'ops');
    assert.doesNotThrow(() => verify(secret, rx.requests[0]!), 'the secret shown verifies the signature');
    const row = rowOf('webhooks', c.id);
    await waitForText(page, `${row} td.health`, 'healthy');
    assert.match((await textOf(page, `${row} td.consumer`)) ?? '', new RegExp(`^orders-hook${c.id} · acme$`), 'named by the consumer’s name');
    assert.equal(await textOf(page, `${rowOf('consumers', c.id)} td.mode`), 'push');

    // Edit: url, method, timeout, headers. No new secret, so none is shown.
    await page.locator(`${row} button.edit`).click();
    await page.locator('#webhook-dialog').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#hook-url').inputValue(), `${rx.url}orders`, 'the form starts from the webhook as it is');
    assert.equal(await page.locator('#hook-headers').inputValue(), 'X-Team: ops\nX-Env: test');
    await page.locator('#hook-url').fill(`${rx.url}orders/v2`);
    await page.locator('#hook-method').selectOption('PUT');
    await page.locator('#hook-timeout').fill('7000');
    await page.locator('#hook-headers').fill('X-Team: platform');
    await screenshot(t, page, 'webhook-edit');
    await page.locator('#webhook-submit').click();
    await page.locator('#webhook-dialog').waitFor({ state: 'hidden' });
    assert.equal(await page.locator('#secret-dialog').isVisible(), false);
    hook = await webhookOf(g, c.id);
    assert.deepEqual([hook.url, hook.method, hook.timeout_ms, hook.headers], [`${rx.url}orders/v2`, 'PUT', 7000, { 'X-Team': 'platform' }]);
    await waitForText(page, `${row} td.url`, `PUT ${rx.url}orders/v2`);
    await g.publish({ tenant: 'acme', type: 'order.placed', data: { n: 2 } });
    await rx.waitForCount(2);
    assert.deepEqual([rx.requests[1]!.method, rx.requests[1]!.path, rx.requests[1]!.headers['x-team']], ['PUT', '/orders/v2', 'platform']);

    // Pause this one webhook: paused in the API, "paused" and no next attempt on the page.
    await page.locator(`${row} button.switch`).click();
    await waitUntil(async () => (await webhookOf(g, c.id)).enabled === false, UI_WAIT, () => 'the webhook paused');
    await waitForText(page, `${row} td.health`, 'paused');
    assert.equal(await textOf(page, `${row} td.next`), '—');
    await waitForText(page, `${rowOf('consumers', c.id)} td.mode`, 'pull');
    await g.publish({ tenant: 'acme', type: 'order.placed', data: { n: 3 } });
    await page.waitForTimeout(500);
    assert.equal(rx.requests.length, 2, 'nothing is delivered while paused');
    // Resume: it delivers what waited.
    await page.locator(`${row} button.switch`).click();
    await rx.waitForCount(3);
    await waitForText(page, `${row} td.health`, 'healthy');

    // Remove: Cancel keeps it; confirmed, the consumer is back in pull mode at the bridge's cursor.
    await page.locator(`${row} button.remove`).click();
    await page.locator('#confirm-dialog').waitFor({ state: 'visible' });
    assert.match((await textOf(page, '#confirm-body')) ?? '', /goes back to pull mode at the cursor the bridge reached/);
    await page.locator('#confirm-cancel').click();
    assert.equal((await g.json(`/v1/consumers/${c.id}/webhook`)).status, 200, 'cancelled: the webhook is kept');
    await page.locator(`${row} button.remove`).click();
    await page.locator('#confirm-ok').click();
    await waitUntil(async () => (await g.json(`/v1/consumers/${c.id}/webhook`)).status === 404, UI_WAIT, () => 'the webhook removed');
    await waitForCount(page, row, 0);
    await waitForText(page, `${rowOf('consumers', c.id)} td.mode`, 'pull');
    const view = await consumerOf(g, c.id);
    assert.equal(view.lag, 0, 'the cursor the bridge reached: past the three delivered events');
    assert.ok(event);

    assert.deepEqual(errors, [], 'no script errors, no CSP violations');
  });

  test('a failed attempt’s detail: status, error, timing, the receiver’s answer, the event it carried', { timeout: 120_000 }, async (t) => {
    const g = await gatewayFor(t);
    const bad = await receiverFor(t, () => ({ status: 503, body: 'upstream down' }));
    const browser = await browserFor(t);
    const { page, errors } = await pageFor(browser);
    const c = await g.createConsumer({ tenant: 'acme', name: 'flaky' });
    assert.equal((await g.json(`/v1/consumers/${c.id}/webhook`, { method: 'PUT', body: { url: `${bad.url}in`, timeout_ms: 3000 } })).status, 201);
    const [event] = (await g.publish([{ tenant: 'acme', type: 'invoice.failed', data: { invoice: 'inv_42', note: '<b>not markup</b>' } }])).events;
    await bad.waitForCount(1);
    let deliveries: any[] = [];
    await waitUntil(async () => (deliveries = (await g.json(`/v1/consumers/${c.id}/deliveries`)).body.deliveries).length > 0, UI_WAIT, () => 'an attempt recorded');
    const attempt = deliveries[0];

    await openSignedIn(page, g.url);
    const row = rowOf('webhooks', c.id);
    // One failed attempt of the three that make a failing episode (the default): retrying, not failing.
    await waitForText(page, `${row} td.health`, 'retrying');
    assert.equal((await webhookOf(g, c.id)).health.failing, false);
    await page.locator(`${row} button.attempts-toggle`).click();
    const attempts = `#webhooks tr[data-attempts-for="${c.id}"] table.inner tbody tr`;
    await waitForCount(page, `${attempts}[data-delivery="${attempt.id}"]`, 1);
    await page.locator(`${attempts}[data-delivery="${attempt.id}"] button.detail`).click();
    await page.locator('#attempt-dialog').waitFor({ state: 'visible' });

    const facts = await page.evaluate(() => Array.from(document.querySelectorAll('#attempt-facts dt, #attempt-facts dd')).map((n) => n.textContent));
    const fact = (name: string) => facts[facts.indexOf(name) + 1];
    assert.equal(fact('Consumer'), `flaky (${c.id}) · tenant acme`);
    assert.equal(fact('Event'), event.id);
    assert.equal(fact('Cursor'), event.cursor);
    assert.equal(fact('Attempt'), '1 for this event');
    assert.equal(fact('Status'), '503: the receiver answered, but not with 2xx');
    assert.equal(fact('Error class'), 'http_status');
    assert.equal(fact('Took'), `${attempt.duration_ms} ms (timeout 3000 ms)`);
    assert.match(fact('At') ?? '', new RegExp(`\\(${attempt.at.replace(/[.]/g, '\\.')}\\)$`));
    assert.match(fact('Next attempt') ?? '', /\((in \d+ s|due)\)$/, 'the retry it planned');
    assert.equal(await textOf(page, '#attempt-response'), 'upstream down', 'the first KiB of what the receiver answered');
    assert.equal(await textOf(page, `${attempts}[data-delivery="${attempt.id}"] td.answer`), 'upstream down');

    await page.locator('#attempt-event').click();
    await waitForText(page, '#attempt-payload', /"invoice": "inv_42"/);
    assert.deepEqual(JSON.parse((await textOf(page, '#attempt-payload'))!), event, 'the event as it is in the log, shown as text');
    await screenshot(t, page, 'failed-attempt-detail');
    await page.locator('#attempt-dialog button[data-close]').click();
    await page.locator('#attempt-dialog').waitFor({ state: 'hidden' });

    assert.deepEqual(errors, [], 'no script errors, no CSP violations');
  });
});
