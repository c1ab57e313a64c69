/**
 * Delivery shapes on the ops page, in Chromium (test/support/chromium.ts), against a real
 * gateway on either engine and a real receiver: edit a webhook's whole shape (method, URL and
 * body templates, headers, basic auth, a shared-secret header, retries, rate limit, alerts),
 * preview it unsaved (credentials shown as •••, nothing sent), send a test event and read the
 * receiver's answer, save it and see a real delivery and each attempt's answer; health reads
 * "retrying" before the failing episode and "failing" in it. Refusals: a body template that is
 * not well-formed (XML, with its line and column) or not a template pollgate accepts (with its
 * position) is shown under the body field, on saving and on previewing, and nothing is saved.
 * Results are checked through the API and at the receiver.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { gatewayFor, webhookOf } from './support/gateway.ts';
import { receiverFor } from './support/receiver.ts';
import { browserFor, openSignedIn, pageFor, rowOf, screenshot, textOf, UI_WAIT, waitForCount, waitForText } from './support/chromium.ts';
import { waitUntil } from './support/wait.ts';

declare const document: { querySelectorAll(selector: string): ArrayLike<{ textContent: string | null }> };

/** A <dl> on the page as name → value. */
async function factsOf(page: Page, selector: string): Promise<Record<string, string>> {
  const texts = await page.evaluate(
    (sel) => Array.from(document.querySelectorAll(`${sel} dt, ${sel} dd`)).map((n) => n.textContent ?? ''),
    selector,
  );
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < texts.length; i += 2) out[texts[i]!] = texts[i + 1]!;
  return out;
}

const TEMPLATE = '{"text":"new request: {{data.subject}}","id":"{{id}}","payload":{{data}}}';

describe('delivery shapes on the ops page', () => {
  test('edit a shape, preview it, send a test event, save it; each attempt’s answer; retrying, then failing', { timeout: 150_000 }, async (t) => {
    const g = await gatewayFor(t);
    const rx = await receiverFor(t, () => ({ status: 201, headers: { 'x-receiver': 'crm' }, body: '{"comment":"C-7"}' }));
    const browser = await browserFor(t);
    const { page, errors } = await pageFor(browser);
    const c = await g.createConsumer({ tenant: 'acme', name: 'crm' });
    assert.equal((await g.json(`/v1/consumers/${c.id}/webhook`, { method: 'PUT', body: { url: `${rx.url}plain` } })).status, 201);
    await openSignedIn(page, g.url);
    const row = rowOf('webhooks', c.id);
    await waitForText(page, `${row} td.url`, `POST ${rx.url}plain`);

    // The shape, filled in on the page.
    await page.locator(`${row} button.edit`).click();
    await page.locator('#webhook-dialog').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#hook-auth').inputValue(), 'none', 'no credentials yet');
    await page.locator('#hook-method').selectOption('PUT');
    await page.locator('#hook-url').fill(`${rx.url}tickets/{{data.ticket}}/comments?by={{consumer.name}}`);
    await page.locator('#hook-format').selectOption('json');
    await page.locator('#hook-body').fill(TEMPLATE);
    await page.locator('#hook-headers').fill('X-Kind: {{type}}');
    await page.locator('#hook-auth-section summary').click();
    await page.locator('#hook-auth').selectOption('basic');
    await page.locator('#hook-auth-username').fill('alice');
    await page.locator('#hook-auth-password').fill('s3cret-pw');
    await page.locator('#hook-sh').selectOption('set');
    await page.locator('#hook-sh-name').fill('X-Shared');
    await page.locator('#hook-sh-value').fill('hunter2');
    await page.locator('#hook-policy-section summary').click();
    await page.locator('#hook-retry-schedule').fill('6s, 6s');
    await page.locator('#hook-retry-max-age').fill('1h');
    await page.locator('#hook-rate-limit').fill('5');
    await page.locator('#hook-alerts').selectOption('on');
    await page.locator('#hook-alert-failures').fill('2');
    await page.locator('#hook-alert-window').fill('1h');

    // Preview, unsaved: the request as rendered, credentials as •••, nothing sent.
    await page.locator('#hook-try-section summary').click();
    await page.locator('#hook-try-type').fill('ticket.created');
    const data = { ticket: 'T 42/x', subject: 'VPN <down> & "out"' };
    await page.locator('#hook-try-data').fill(JSON.stringify(data));
    await page.locator('#hook-preview').click();
    await waitForText(page, '#hook-try-result .request-line', `PUT ${rx.url}tickets/T%2042%2Fx/comments?by=crm`);
    assert.match((await textOf(page, '#hook-try-result h3')) ?? '', /^Preview: the request for the sample event evt_test_\S+ \(ticket\.created\), not sent$/);
    const previewHeaders = await factsOf(page, '#hook-try-result .try-headers');
    assert.equal(previewHeaders['authorization'], 'Basic •••', 'the password is never shown');
    assert.equal(previewHeaders['X-Shared'], '•••');
    assert.equal(previewHeaders['X-Kind'], 'ticket.created');
    assert.equal(previewHeaders['content-type'], 'application/json');
    const previewBody = JSON.parse((await textOf(page, '#hook-try-result .try-body'))!);
    assert.deepEqual(previewBody.payload, data);
    assert.equal(previewBody.text, `new request: ${data.subject}`);
    const shown = await page.locator('#webhook-dialog').textContent();
    assert.ok(!shown?.includes('s3cret-pw') && !shown?.includes('hunter2'), 'no credential value in the dialog’s text');
    assert.equal(rx.requests.length, 0, 'a preview sends nothing');
    assert.equal((await webhookOf(g, c.id)).url, `${rx.url}plain`, 'nor saves anything');
    await screenshot(t, page, 'shape-preview');

    // Send a test event: the receiver gets it as shaped, and its answer is shown.
    await page.locator('#hook-test').click();
    await waitForText(page, '#hook-try-result .try-status', '201');
    await rx.waitForCount(1);
    const sent = rx.requests[0]!;
    assert.deepEqual([sent.method, sent.path], ['PUT', '/tickets/T%2042%2Fx/comments?by=crm']);
    assert.equal(sent.headers.authorization, `Basic ${Buffer.from('alice:s3cret-pw').toString('base64')}`);
    assert.equal(sent.headers['x-shared'], 'hunter2');
    assert.deepEqual(JSON.parse(sent.body).payload, data);
    assert.match((await textOf(page, '#hook-try-result .try-outcome')) ?? '', /^201 in \d+ ms$/);
    assert.equal(await textOf(page, '#hook-try-result .try-response-body'), '{"comment":"C-7"}');
    assert.equal((await factsOf(page, '#hook-try-result .try-response-headers'))['x-receiver'], 'crm');
    assert.equal((await webhookOf(g, c.id)).url, `${rx.url}plain`, 'a test saves nothing');
    await screenshot(t, page, 'shape-test');

    // Save: the webhook is what the form says; the credentials are set, shown by kind and name only.
    await page.locator('#webhook-submit').click();
    await page.locator('#webhook-dialog').waitFor({ state: 'hidden' });
    const hook = await webhookOf(g, c.id);
    assert.deepEqual(
      {
        method: hook.method, url: hook.url, format: hook.format, body: hook.body, headers: hook.headers, auth: hook.auth,
        secret_header: hook.secret_header, signing: hook.signing, missing: hook.missing, retry: hook.retry, rate_limit: hook.rate_limit,
        alerts: hook.alerts, enabled: hook.enabled,
      },
      {
        method: 'PUT', url: `${rx.url}tickets/{{data.ticket}}/comments?by={{consumer.name}}`, format: 'json', body: TEMPLATE,
        headers: { 'X-Kind': '{{type}}' }, auth: { type: 'basic', username: 'alice' }, secret_header: { name: 'X-Shared' }, signing: true,
        missing: 'empty', retry: { schedule: ['6s', '6s'], max_age: '1h' }, rate_limit: 5, alerts: { enabled: true, failures: 2, window: '1h' },
        enabled: true,
      },
    );
    await waitForText(page, `${row} td.url`, `PUT ${hook.url}`);

    // Opened again: the credentials read "set", their values are not in the page, and kept on save.
    await page.locator(`${row} button.edit`).click();
    await page.locator('#webhook-dialog').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#hook-auth').inputValue(), 'keep');
    assert.match((await textOf(page, '#hook-auth-state')) ?? '', /^Set: basic, username alice, password set\./);
    assert.match((await textOf(page, '#hook-sh-state')) ?? '', /^Set: X-Shared, value set\./);
    assert.equal(await page.locator('#hook-auth-password').inputValue(), '');
    assert.equal(await page.locator('#hook-body').inputValue(), TEMPLATE);
    assert.equal(await page.locator('#hook-retry-schedule').inputValue(), '6s, 6s');
    await page.locator('#hook-timeout').fill('4000');
    await page.locator('#webhook-submit').click();
    await page.locator('#webhook-dialog').waitFor({ state: 'hidden' });
    const kept = await webhookOf(g, c.id);
    assert.deepEqual([kept.timeout_ms, kept.auth, kept.secret_header], [4000, { type: 'basic', username: 'alice' }, { name: 'X-Shared' }]);

    // A real delivery, with the stored credentials; the attempt shows what the receiver answered.
    await g.publish({ tenant: 'acme', type: 'ticket.created', data: { ticket: 'T-1', subject: 'printer' } });
    await rx.waitForCount(2);
    assert.equal(rx.requests[1]!.headers.authorization, `Basic ${Buffer.from('alice:s3cret-pw').toString('base64')}`, 'the kept password');
    assert.equal(rx.requests[1]!.path, '/tickets/T-1/comments?by=crm');
    await waitForText(page, `${row} td.health`, 'healthy');
    await page.locator(`${row} button.attempts-toggle`).click();
    const attempts = `#webhooks tr[data-attempts-for="${c.id}"] table.inner tbody tr`;
    await waitForCount(page, attempts, 1);
    assert.equal(await textOf(page, `${attempts} td.answer`), '{"comment":"C-7"}');

    // Failures: the first reads "retrying"; the second within the window starts the failing episode.
    rx.behave(() => ({ status: 503, body: 'queue full, try later' }));
    await g.publish({ tenant: 'acme', type: 'ticket.created', data: { ticket: 'T-2', subject: 'mouse' } });
    await rx.waitForCount(3);
    await waitForText(page, `${row} td.health`, 'retrying');
    assert.equal((await webhookOf(g, c.id)).health.failing, false);
    await rx.waitForCount(4, 15_000);
    await waitForText(page, `${row} td.health`, 'failing');
    assert.equal((await webhookOf(g, c.id)).health.failing, true);
    assert.notEqual(await page.locator(`${row} td.health .badge.bad`).count(), 0, 'failing reads as bad');
    await waitForCount(page, attempts, 3);
    assert.equal(await textOf(page, `${attempts}:first-child td.answer`), 'queue full, try later');
    await page.locator(`${attempts}:first-child button.detail`).click();
    await page.locator('#attempt-dialog').waitFor({ state: 'visible' });
    assert.equal(await textOf(page, '#attempt-response'), 'queue full, try later');
    await screenshot(t, page, 'shape-attempt-answer');
    await page.locator('#attempt-dialog button[data-close]').click();
    await page.locator('#attempt-dialog').waitFor({ state: 'hidden' });

    assert.deepEqual(errors, [], 'no script errors, no CSP violations');
  });

  test('a bad body template shows the server’s message under the body, with its position; nothing is saved', { timeout: 120_000 }, async (t) => {
    const g = await gatewayFor(t);
    const rx = await receiverFor(t);
    const browser = await browserFor(t);
    const { page, errors } = await pageFor(browser);
    const c = await g.createConsumer({ tenant: 'acme', name: 'xml-hook' });
    const put = await g.json(`/v1/consumers/${c.id}/webhook`, { method: 'PUT', body: { url: `${rx.url}in`, auth: { type: 'bearer', token: 'tok-123' } } });
    assert.equal(put.status, 201);
    const before = await webhookOf(g, c.id);
    await openSignedIn(page, g.url);
    const row = rowOf('webhooks', c.id);
    await waitForCount(page, row, 1);
    await page.locator(`${row} button.edit`).click();
    await page.locator('#webhook-dialog').waitFor({ state: 'visible' });

    // XML that is not well-formed: the gateway's message, with line and column, under the body.
    await page.locator('#hook-format').selectOption('xml');
    await page.locator('#hook-body').fill('<ticket>\n  <id>{{id}}</id>\n  <subject>{{data.subject}}</ticket>');
    await page.locator('#webhook-submit').click();
    await waitForText(page, '#hook-body-error', /^400: body: is not well-formed XML: .+ \(line 3, column \d+\)$/);
    assert.equal(await page.locator('#hook-body').getAttribute('aria-invalid'), 'true');
    assert.ok(await page.locator('#webhook-dialog').isVisible(), 'the editor stays open');
    assert.equal((await webhookOf(g, c.id)).updated_at, before.updated_at, 'nothing saved');

    // A tag pollgate does not take (a section), at its position; previewing says the same.
    await page.locator('#hook-format').selectOption('json');
    const body = '{"items": [{{#data.items}}"x"{{/data.items}}]}';
    await page.locator('#hook-body').fill(body);
    assert.equal(await page.locator('#hook-body-error').isVisible(), false, 'editing the body takes the old refusal away');
    assert.equal(await page.locator('#hook-body').getAttribute('aria-invalid'), null);
    await page.locator('#webhook-submit').click();
    await waitForText(page, '#hook-body-error', /^400: body: .*\(at position 12\)$/);
    const selected = await page.locator('#hook-body').evaluate((n) => [(n as any).selectionStart, (n as any).selectionEnd]);
    assert.deepEqual(selected, [11, 12], 'the position is selected in the body');
    await screenshot(t, page, 'shape-bad-body');
    await page.locator('#hook-try-section summary').click();
    await page.locator('#hook-body').fill('{"n": {{data.n}}, }');
    await page.locator('#hook-preview').click();
    await waitForText(page, '#hook-body-error', /^400: webhook\.body: is not JSON once its tags are filled in/);
    assert.equal(rx.requests.length, 0);

    // A missing path with "fail": the preview says why it cannot render.
    await page.locator('#hook-body').fill('{"who": "{{data.customer.name}}"}');
    await page.locator('#hook-policy-section summary').click();
    await page.locator('#hook-missing').selectOption('fail');
    await page.locator('#hook-preview').click();
    await waitForText(page, '#hook-try-result .try-error', /^Cannot render: .*data\.customer\.name/);
    assert.equal(await page.locator('#hook-body-error').isVisible(), false, 'a fixed body clears its refusal');

    // A retry delay that is not a duration: under the schedule.
    await page.locator('#hook-missing').selectOption('empty');
    await page.locator('#hook-retry-schedule').fill('30m, soon');
    await page.locator('#webhook-submit').click();
    await waitForText(page, '#hook-retry-schedule-error', /^400: retry\.schedule\[1\]: /);

    // Remove the credentials: saved without them.
    await page.locator('#hook-retry-schedule').fill('');
    assert.match((await textOf(page, '#hook-auth-state')) ?? '', /^Set: bearer token set\./);
    await page.locator('#hook-auth').selectOption('none');
    await page.locator('#webhook-submit').click();
    await page.locator('#webhook-dialog').waitFor({ state: 'hidden' });
    const after = await webhookOf(g, c.id);
    assert.deepEqual([after.auth, after.body, after.missing, after.retry], [null, '{"who": "{{data.customer.name}}"}', 'empty', null]);

    assert.deepEqual(errors, [], 'no script errors, no CSP violations');
  });
});
