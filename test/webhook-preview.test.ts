/**
 * Preview and test-send (issue 12), and the answer kept in the attempt log:
 *
 * - POST …/webhook/preview renders the request one event would make (a sample, or an event of
 *   the tenant by cursor), with unsaved `webhook` changes, showing a render error, credentials
 *   as •••; nothing is sent.
 * - POST …/webhook/test sends it now and answers status, the first KiB of the body, headers and
 *   timing; nothing is recorded, no cursor moves, and it works while the webhook is disabled
 *   and the bridge paused.
 * - Each attempt in GET …/deliveries has `response`: the first KiB of the answer (bounded).
 *
 * Real gateways (both engines), real loopback receivers; FakeClock, so nothing is retried.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertErrorShape } from './support/assertions.ts';
import { FakeClock } from './support/fake-clock.ts';
import { consumerOf, deliveriesOf, gatewayFor, waitForDeliveries, webhookOf } from './support/gateway.ts';
import { receiverFor } from './support/receiver.ts';
import { hookPath, mustPut, verifyBytes } from './support/shapes.ts';
import { sleep } from './support/wait.ts';

let tenantSeq = 0;
const freshTenant = (label: string) => `preview-${label}-${++tenantSeq}`;
const TOKEN = 'tok-preview-never-shown';
const SHARED = 'shared-preview-never-shown';

const BODY = '{"ticket":"{{data.ticket}}","type":"{{type}}","n":{{data.n}}}';

describe('preview', () => {
  test('a sample, an event by cursor, unsaved changes, a render error; credentials as •••; nothing is sent or changed', async (t) => {
    const g = await gatewayFor(t, { clock: new FakeClock() });
    const rx = await receiverFor(t);
    const tenant = freshTenant('preview');
    const c = await g.createConsumer({ tenant });
    await mustPut(g, c.id, {
      url: `${rx.url}t/{{data.ticket}}`,
      method: 'PUT',
      body: BODY,
      auth: { type: 'bearer', token: TOKEN },
      secret_header: { name: 'X-Shared', value: SHARED },
      enabled: false,
    });
    const before = await webhookOf(g, c.id);
    const preview = (body: unknown) => g.json(`${hookPath(c.id)}/preview`, { body });

    // A sample event.
    const sample = await preview({ event: { type: 'ticket.created', data: { ticket: 'T 1', n: 7 } } });
    assert.equal(sample.status, 200, JSON.stringify(sample.body));
    assert.match(sample.body.event.id, /^evt_test_/);
    assert.equal(sample.body.event.cursor, null);
    assert.equal(sample.body.event.type, 'ticket.created');
    assert.equal(sample.body.error, null);
    const req = sample.body.request;
    assert.equal(req.method, 'PUT');
    assert.equal(req.url, `${rx.url}t/T%201`);
    assert.deepEqual(JSON.parse(req.body), { ticket: 'T 1', type: 'ticket.created', n: 7 });
    assert.equal(req.headers.authorization, 'Bearer •••');
    assert.equal(req.headers['X-Shared'], '•••');
    assert.equal(req.headers['content-type'], 'application/json');
    assert.equal(req.headers['webhook-id'], sample.body.event.id);
    assert.match(req.headers['webhook-signature'], /^v1,/);
    // The default sample.
    const plain = await preview({});
    assert.equal(plain.body.event.type, 'pollgate.webhook.test');

    // An event of the tenant, by its cursor.
    const event = await g.publish({ tenant, type: 'ticket.updated', data: { ticket: 'a/b', n: 1.5 } });
    const byCursor = await preview({ cursor: event.cursor });
    assert.equal(byCursor.status, 200, JSON.stringify(byCursor.body));
    assert.deepEqual(byCursor.body.event, { id: event.id, cursor: event.cursor, type: 'ticket.updated' });
    assert.equal(byCursor.body.request.url, `${rx.url}t/a%2Fb`);
    assert.deepEqual(JSON.parse(byCursor.body.request.body), { ticket: 'a/b', type: 'ticket.updated', n: 1.5 });
    assertErrorShape(await preview({ cursor: 't0000000000000099' }), 404, 'not_found');
    assertErrorShape(await preview({ cursor: 'nonsense' }), 400, 'invalid_request', 'cursor');

    // Unsaved changes: rendered, not saved; a change that would be refused is refused the same way.
    const draft = await preview({ cursor: event.cursor, webhook: { format: 'form', body: 'ticket={{data.ticket}}', method: 'POST' } });
    assert.equal(draft.status, 200, JSON.stringify(draft.body));
    assert.equal(draft.body.request.method, 'POST');
    assert.equal(draft.body.request.body, 'ticket=a%2Fb');
    assert.equal(draft.body.request.headers['content-type'], 'application/x-www-form-urlencoded');
    const refused = await preview({ webhook: { format: 'xml', body: '<a>' } });
    assert.equal(refused.status, 400, JSON.stringify(refused.body));
    assert.match(refused.body.error.message, /body/);

    // A render error is shown (the delivery would fail with "render").
    const failing = await preview({ event: { data: { n: 1 } }, webhook: { missing: 'fail' } });
    assert.equal(failing.status, 200, JSON.stringify(failing.body));
    assert.equal(failing.body.request, null);
    assert.match(failing.body.error, /\{\{data\.ticket\}\} is missing/);

    const everything = JSON.stringify([sample, plain, byCursor, draft, failing].map((r) => r.body));
    assert.ok(!everything.includes(TOKEN) && !everything.includes(SHARED), 'no credential is shown');
    await sleep(100);
    assert.equal(rx.requests.length, 0, 'a preview sends nothing');
    assert.deepEqual(await webhookOf(g, c.id), before, 'nothing saved');
  });

  test('without a stored webhook: 404, unless the preview gives one (with a url)', async (t) => {
    const g = await gatewayFor(t, { clock: new FakeClock() });
    const c = await g.createConsumer({ tenant: freshTenant('nohook') });
    assertErrorShape(await g.json(`${hookPath(c.id)}/preview`, { body: {} }), 404, 'not_found');
    const r = await g.json(`${hookPath(c.id)}/preview`, { body: { webhook: { url: 'http://127.0.0.1:9/x/{{type}}' } } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.request.url, 'http://127.0.0.1:9/x/pollgate.webhook.test');
    assertErrorShape(await g.json(hookPath(c.id)), 404, 'not_found');
  });
});

describe('test-send', () => {
  test('sends now and answers status, the first KiB of the body, headers and timing; records nothing, moves nothing; works while disabled and while the bridge is paused', async (t) => {
    const g = await gatewayFor(t, { clock: new FakeClock() });
    const rx = await receiverFor(t, () => ({ status: 201, headers: { 'X-Reply': 'yes' }, body: 'r'.repeat(10_000) }));
    const tenant = freshTenant('test');
    const c = await g.createConsumer({ tenant });
    const { secret } = await mustPut(g, c.id, { url: `${rx.url}hook`, body: BODY, auth: { type: 'bearer', token: TOKEN }, enabled: false });
    const paused = await g.json('/v1/bridge', { method: 'PUT', body: { enabled: false } });
    assert.equal(paused.status, 200);
    const before = await webhookOf(g, c.id);
    const event = await g.publish({ tenant, type: 'ticket.created', data: { ticket: 'T-9', n: 3 } });

    const r = await g.json(`${hookPath(c.id)}/test`, { body: { cursor: event.cursor } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.ok, true);
    assert.equal(r.body.status, 201);
    assert.equal(r.body.error, null);
    assert.equal(typeof r.body.duration_ms, 'number');
    assert.ok(r.body.duration_ms >= 0 && r.body.duration_ms < 5_000, `${r.body.duration_ms}`);
    assert.equal(r.body.response.body, 'r'.repeat(1024));
    assert.equal(r.body.response.truncated, true);
    assert.equal(r.body.response.headers['x-reply'], 'yes');
    assert.deepEqual(r.body.event, { id: event.id, cursor: event.cursor, type: 'ticket.created' });
    assert.equal(r.body.request.headers.authorization, 'Bearer •••');
    assert.ok(!JSON.stringify(r.body).includes(TOKEN));

    assert.equal(rx.requests.length, 1);
    const [sent] = rx.requests;
    assert.equal(sent!.headers.authorization, `Bearer ${TOKEN}`);
    assert.deepEqual(JSON.parse(sent!.body), { ticket: 'T-9', type: 'ticket.created', n: 3 });
    verifyBytes(secret, sent!);

    // A failing answer and a render error are reported the same way.
    rx.behave(() => ({ status: 503, body: 'busy' }));
    const down = await g.json(`${hookPath(c.id)}/test`, { body: { event: { data: { ticket: 'x', n: 1 } } } });
    assert.equal(down.body.ok, false);
    assert.equal(down.body.status, 503);
    assert.equal(down.body.error, 'http_status');
    assert.deepEqual([down.body.response.body, down.body.response.truncated], ['busy', false]);
    const unrendered = await g.json(`${hookPath(c.id)}/test`, { body: { webhook: { missing: 'fail' }, event: { data: {} } } });
    assert.equal(unrendered.body.ok, false);
    assert.equal(unrendered.body.error, 'render');
    assert.match(unrendered.body.detail, /\{\{data\.ticket\}\} is missing/);
    assert.equal(rx.requests.length, 2, 'the render error sent nothing');

    assert.deepEqual(await deliveriesOf(g, c.id), [], 'nothing recorded');
    assert.deepEqual(await webhookOf(g, c.id), before, 'health unchanged');
    assert.equal((await consumerOf(g, c.id)).cursor, c.cursor, 'no cursor moved');
    assert.equal((await g.json('/v1/bridge')).body.enabled, false, 'still paused');
  });

  test('the SSRF rules apply: an unsaved private target is refused when private targets are not allowed', async (t) => {
    const g = await gatewayFor(t, { clock: new FakeClock(), config: { allowPrivateTargets: false } });
    const c = await g.createConsumer({ tenant: freshTenant('test-ssrf') });
    const r = await g.json(`${hookPath(c.id)}/test`, { body: { webhook: { url: 'http://127.0.0.1:9/{{type}}' } } });
    assertErrorShape(r, 400, 'target_not_allowed', 'webhook.url');
  });

  test('a problem in the unsaved changes names its field under webhook (webhook.body, webhook.format)', async (t) => {
    const g = await gatewayFor(t, { clock: new FakeClock(), config: { allowPrivateTargets: true } });
    const c = await g.createConsumer({ tenant: freshTenant('draft-field') });
    await mustPut(g, c.id, { url: 'http://127.0.0.1:9/x' });
    for (const path of ['preview', 'test']) {
      const bad = await g.json(`${hookPath(c.id)}/${path}`, { body: { webhook: { body: '{"a": {{data.n}' } } });
      assertErrorShape(bad, 400, 'invalid_request', 'webhook.body');
      const xml = await g.json(`${hookPath(c.id)}/${path}`, { body: { webhook: { format: 'xml' } } });
      assertErrorShape(xml, 400, 'invalid_request', 'webhook.body');
    }
  });
});

describe('format: null returns to the default', () => {
  test('a PATCH can drop a stored format and body together (GET without a body); preview sees the same', async (t) => {
    const g = await gatewayFor(t, { clock: new FakeClock(), config: { allowPrivateTargets: true } });
    const rx = await receiverFor(t);
    const c = await g.createConsumer({ tenant: freshTenant('format-null') });
    await mustPut(g, c.id, { url: rx.url, format: 'json', body: '{"a":1}', enabled: false });
    const previewed = await g.json(`${hookPath(c.id)}/preview`, { body: { webhook: { method: 'GET', body: null, format: null } } });
    assert.equal(previewed.status, 200, JSON.stringify(previewed.body));
    assert.equal(previewed.body.request.method, 'GET');
    assert.equal(previewed.body.request.body, null);
    const refused = await g.json(hookPath(c.id), { method: 'PATCH', body: { method: 'GET', body: null } });
    assertErrorShape(refused, 400, 'invalid_request', 'format');
    const patched = await g.json(hookPath(c.id), { method: 'PATCH', body: { method: 'GET', body: null, format: null, enabled: true } });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.equal(patched.body.format, 'json');
    assert.equal(patched.body.body, null);
    await g.publish({ tenant: c.tenant, type: 'ticket.created', data: { n: 1 } });
    await rx.waitForCount(1);
    assert.equal(rx.requests[0]!.method, 'GET');
    assert.equal(rx.requests[0]!.body, '');
    assert.equal(rx.requests[0]!.headers['content-type'], undefined);
  });
});

describe('the attempt log keeps the first KiB of each answer', () => {
  test('a 10 kB answer gives 1024 bytes; a multi-byte character cut at the end is dropped; a short answer is kept whole', async (t) => {
    const g = await gatewayFor(t, { clock: new FakeClock() });
    const answers = ['a'.repeat(10_000), '中'.repeat(4_000), 'down'];
    const rx = await receiverFor(t, (req) => ({ status: req.n === 3 ? 500 : 200, body: answers[req.n - 1] ?? 'ok' }));
    const tenant = freshTenant('log');
    const c = await g.createConsumer({ tenant });
    await mustPut(g, c.id, { url: rx.url });
    await g.publish([1, 2, 3].map((n) => ({ tenant, type: 'a.b', data: { n } })));
    const log = await waitForDeliveries(g, c.id, 3);
    const [third, second, first] = log;
    assert.equal(first.response, 'a'.repeat(1024));
    assert.equal(second.response, '中'.repeat(341), '1023 bytes: the character cut at byte 1024 is dropped');
    assert.ok(Buffer.byteLength(second.response) <= 1024);
    assert.equal(third.status, 500);
    assert.equal(third.response, 'down');
  });
});
