/**
 * PATCH /v1/consumers/:id/webhook (SPEC: Push bridge, Fine points): change some fields of an
 * existing webhook, keeping the others. The body is the PUT schema with every field optional.
 * `{"enabled":false}` is how one consumer is paused (the ops page's switch): the webhook keeps
 * its url, headers, method, timeout and secret, the consumer is in pull mode at its cursor, and
 * `{"enabled":true}` resumes pushing from the committed cursor, losing and repeating nothing.
 *
 * Real gateways on loopback ports over real SQLite files, delivering to real node:http
 * receivers; signatures are checked with the `standardwebhooks` library.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { consumerOf, gatewayFor, startGateway, tempDir, waitForCursor, webhookOf, type TestGateway } from './support/gateway.ts';
import { FakeClock } from './support/fake-clock.ts';
import { ok, receiverFor, verify, type ReceivedRequest } from './support/receiver.ts';
import { assertErrorShape } from './support/assertions.ts';
import { sleep, waitUntil } from './support/wait.ts';

let tenantSeq = 0;
const freshTenant = (label = 't') => `wpatch-${label}-${++tenantSeq}`;
/** A short real-time pause to let anything that is (wrongly) about to happen, happen. */
const settle = () => sleep(300);
const newSecret = () => `whsec_${randomBytes(32).toString('base64')}`;

const hookPath = (id: string) => `/v1/consumers/${id}/webhook`;
const putHook = (g: TestGateway, id: string, body: unknown, key?: string | null) =>
  g.json(hookPath(id), { method: 'PUT', body, ...(key !== undefined ? { key } : {}) });
const patchHook = (g: TestGateway, id: string, body: unknown, key?: string | null) =>
  g.json(hookPath(id), { method: 'PATCH', body, ...(key !== undefined ? { key } : {}) });

async function publishMany(g: TestGateway, tenant: string, n: number, from = 1): Promise<any[]> {
  return (await g.publish(Array.from({ length: n }, (_, i) => ({ tenant, type: 'ticket.created', data: { n: from + i } })))).events;
}

/** The webhook as configured, without the fields that change with time and health. */
const configOf = (hook: any) => ({ url: hook.url, method: hook.method, headers: hook.headers, timeout_ms: hook.timeout_ms, enabled: hook.enabled });

const idsOf = (list: Array<{ id: string }>) => list.map((e) => e.id);
const hookIds = (reqs: ReceivedRequest[]) => reqs.map((r) => String(r.headers['webhook-id']));

describe('PATCH /v1/consumers/:id/webhook', () => {
  test('{"enabled":false} pauses one consumer: config and secret kept, pull mode at the cursor; {"enabled":true} resumes from the cursor, nothing lost or repeated', async (t) => {
    const g = await gatewayFor(t);
    const rx = await receiverFor(t);
    const tenant = freshTenant('pause');
    const c = await g.createConsumer({ tenant });
    const put = await putHook(g, c.id, { url: rx.url, headers: { 'x-keep': 'yes' }, method: 'PUT', timeout_ms: 7_000 });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    const secret: string = put.body.secret;
    const configured = configOf(put.body);

    // Pushing: e1..e3 reach the receiver and the cursor follows.
    const first = await publishMany(g, tenant, 3, 1);
    await rx.waitForCount(3);
    await waitForCursor(g, c.id, first[2].cursor);

    // Pause.
    const off = await patchHook(g, c.id, { enabled: false });
    assert.equal(off.status, 200, JSON.stringify(off.body));
    assert.deepEqual(configOf(off.body), { ...configured, enabled: false }, 'only enabled changed');
    assert.ok(!('secret' in off.body), 'a PATCH that keeps the secret does not show it');
    assert.deepEqual(configOf(await webhookOf(g, c.id)), { ...configured, enabled: false });
    const own = await g.json('/v1/consumer', { key: c.key });
    assert.equal(own.status, 200);
    assert.equal(own.body.mode, 'pull', 'the consumer is in pull mode');
    assert.equal(own.body.cursor, first[2].cursor, 'at the cursor the bridge reached');
    assert.equal(own.body.webhook.enabled, false);

    // Paused: events are not pushed; the consumer polls and acks them itself.
    const during = await publishMany(g, tenant, 4, 4);
    await settle();
    assert.equal(rx.requests.length, 3, 'nothing is pushed while paused');
    const polled = await g.json('/v1/events?wait=0&limit=1000', { key: c.key });
    assert.equal(polled.status, 200, JSON.stringify(polled.body));
    assert.deepEqual(idsOf(polled.body.events), idsOf(during), 'polling works and starts at the cursor');
    const ack = await g.json('/v1/ack', { key: c.key, body: { cursor: during[1].cursor } });
    assert.equal(ack.status, 200);
    assert.equal(ack.body.cursor, during[1].cursor);

    // Resume: push mode again, from the committed cursor (after e5).
    const on = await patchHook(g, c.id, { enabled: true });
    assert.equal(on.status, 200, JSON.stringify(on.body));
    assert.deepEqual(configOf(on.body), configured, 'back to the configuration as it was');
    assert.ok(!('secret' in on.body));
    assert.equal((await g.json('/v1/consumer', { key: c.key })).body.mode, 'push');
    assertErrorShape(await g.json('/v1/events?wait=0', { key: c.key }), 409, 'push_mode');

    await rx.waitForCount(5);
    await waitForCursor(g, c.id, during[3].cursor);
    const last = await publishMany(g, tenant, 1, 8);
    await rx.waitForCount(6);
    await waitForCursor(g, c.id, last[0].cursor);
    await settle();

    const resumed = rx.requests.slice(3);
    assert.deepEqual(hookIds(resumed), [...idsOf(during.slice(2)), last[0].id], 'resumes after the acked cursor, in order');
    for (const req of resumed) {
      assert.deepEqual(verify(secret, req), JSON.parse(req.body), 'signed with the same secret');
      assert.equal(req.method, 'PUT', 'the method was kept');
      assert.equal(req.headers['x-keep'], 'yes', 'the headers were kept');
    }
    // Every event reached exactly one side: pushed, or acked while paused.
    const pushed = hookIds(rx.requests);
    assert.equal(new Set(pushed).size, pushed.length, 'no event pushed twice');
    const acked = idsOf(during.slice(0, 2));
    for (const e of [...first, ...during, ...last]) {
      assert.ok(pushed.includes(e.id) !== acked.includes(e.id), `${e.id} reached exactly one side`);
    }
  });

  test('changing one field keeps the others; a new secret is shown once and signs from then on', async (t) => {
    const g = await gatewayFor(t);
    const rx = await receiverFor(t);
    const tenant = freshTenant('fields');
    const c = await g.createConsumer({ tenant });
    const put = await putHook(g, c.id, { url: rx.url, headers: { 'x-a': '1' } });
    assert.equal(put.status, 201);
    const oldSecret: string = put.body.secret;

    const timeout = await patchHook(g, c.id, { timeout_ms: 2_500 });
    assert.equal(timeout.status, 200, JSON.stringify(timeout.body));
    assert.deepEqual(configOf(timeout.body), { ...configOf(put.body), timeout_ms: 2_500 });

    const headers = await patchHook(g, c.id, { headers: { 'x-b': '2' } });
    assert.equal(headers.status, 200);
    assert.deepEqual(headers.body.headers, { 'x-b': '2' }, 'headers are replaced as a whole, like a PUT');
    assert.equal(headers.body.timeout_ms, 2_500, 'the earlier PATCH stays');

    const empty = await patchHook(g, c.id, {});
    assert.equal(empty.status, 200, 'an empty PATCH changes nothing');
    assert.deepEqual(configOf(empty.body), configOf(headers.body));

    const [e1] = await publishMany(g, tenant, 1, 1);
    await rx.waitForCount(1);
    assert.deepEqual(verify(oldSecret, rx.requests[0]!), e1, 'still the secret of the PUT');
    assert.equal(rx.requests[0]!.headers['x-b'], '2');

    const fresh = newSecret();
    const rotated = await patchHook(g, c.id, { secret: fresh });
    assert.equal(rotated.status, 200);
    assert.equal(rotated.body.secret, fresh, 'the PATCH that sets a new secret shows it');
    assert.ok(!('secret' in (await webhookOf(g, c.id))), 'GET never does');
    const [e2] = await publishMany(g, tenant, 1, 2);
    await rx.waitForCount(2);
    assert.deepEqual(verify(fresh, rx.requests[1]!), e2);
    assert.throws(() => verify(oldSecret, rx.requests[1]!), 'the old secret no longer verifies');
  });

  test('{"enabled":true} ends a held poll with 409 push_mode', async (t) => {
    const g = await gatewayFor(t);
    const rx = await receiverFor(t);
    const tenant = freshTenant('held');
    const c = await g.createConsumer({ tenant });
    assert.equal((await putHook(g, c.id, { url: rx.url, enabled: false })).status, 201);
    const held = g.json('/v1/events?wait=30', { key: c.key });
    held.catch(() => {});
    await waitUntil(async () => (await consumerOf(g, c.id)).polling === true, 5_000, () => 'the poll to be held');
    assert.equal((await patchHook(g, c.id, { enabled: true })).status, 200);
    const r = await Promise.race([held, sleep(5_000).then(() => null)]);
    assert.ok(r, 'the held poll ended');
    assertErrorShape(r, 409, 'push_mode');
    const [e] = await publishMany(g, tenant, 1);
    await rx.waitForCount(1);
    assert.equal(rx.requests[0]!.headers['webhook-id'], e.id);
  });

  test('re-enables a webhook the bridge disabled after retryMaxAge, keeping its secret, and clears disabled_reason', async (t) => {
    const clock = new FakeClock();
    const g = await gatewayFor(t, { clock, config: { retryScheduleMs: [5_000], retryMaxAgeMs: 20_000 } });
    const rx = await receiverFor(t, () => ({ status: 500 }));
    const tenant = freshTenant('giveup');
    const c = await g.createConsumer({ tenant });
    const put = await putHook(g, c.id, { url: rx.url, headers: { 'x-keep': 'yes' } });
    const secret: string = put.body.secret;
    const [stuck] = await publishMany(g, tenant, 1);
    await rx.waitForCount(1);

    let hook = await webhookOf(g, c.id);
    for (let step = 0; hook.enabled && step < 20; step++) {
      const before = rx.requests.length;
      await waitUntil(async () => (hook = await webhookOf(g, c.id)).health.next_attempt_at !== null || !hook.enabled, 5_000, () => 'a next attempt');
      if (!hook.enabled) break;
      await clock.advance(Math.max(0, Date.parse(hook.health.next_attempt_at) - clock.now()));
      await rx.waitForCount(before + 1);
      await waitUntil(async () => {
        hook = await webhookOf(g, c.id);
        return !hook.enabled || hook.health.consecutive_failures >= before + 1;
      }, 5_000, () => `the state after attempt ${before + 1}`);
    }
    assert.equal(hook.enabled, false, 'the bridge gave up');
    assert.ok(hook.disabled_reason, 'and said why');
    assert.equal((await consumerOf(g, c.id)).mode, 'pull');

    rx.behave(ok);
    const attempts = rx.requests.length;
    const on = await patchHook(g, c.id, { enabled: true });
    assert.equal(on.status, 200, JSON.stringify(on.body));
    assert.equal(on.body.disabled_reason, null);
    assert.equal(on.body.headers['x-keep'], 'yes');
    await rx.waitForCount(attempts + 3);
    const after = rx.requests.slice(attempts);
    const failing = JSON.parse(after[1]!.body);
    const notice = JSON.parse(after[2]!.body);
    assert.deepEqual(hookIds(after), [stuck.id, failing.id, notice.id], 'the stuck event first, then the failing alert and the disabled notice');
    assert.equal(failing.type, 'pollgate.webhook.failing');
    assert.equal(notice.type, 'pollgate.webhook.disabled');
    await waitForCursor(g, c.id, notice.cursor);
    for (const req of after) verify(secret, req);
  });

  test('404 when the consumer has no webhook (nothing is created) or does not exist', async (t) => {
    const g = await gatewayFor(t);
    const c = await g.createConsumer({ tenant: freshTenant('404') });
    assertErrorShape(await patchHook(g, c.id, { enabled: false }), 404, 'not_found');
    assertErrorShape(await patchHook(g, c.id, { url: 'http://127.0.0.1:9/' }), 404, 'not_found');
    assertErrorShape(await g.json(hookPath(c.id)), 404, 'not_found');
    assert.equal((await consumerOf(g, c.id)).mode, 'pull');
    assertErrorShape(await patchHook(g, 'con_doesnotexist000', { enabled: true }), 404, 'not_found');

    assert.equal((await putHook(g, c.id, { url: 'http://127.0.0.1:9/', enabled: false })).status, 201);
    assert.equal((await g.json(hookPath(c.id), { method: 'DELETE' })).status, 200);
    assertErrorShape(await patchHook(g, c.id, { enabled: true }), 404, 'not_found', undefined);
    assert.equal((await consumerOf(g, c.id)).mode, 'pull', 'a PATCH after DELETE does not bring it back');
  });

  test('400 naming the field for bad values and unknown fields; nothing changes', async (t) => {
    const g = await gatewayFor(t);
    const c = await g.createConsumer({ tenant: freshTenant('valid') });
    const put = await putHook(g, c.id, { url: 'http://127.0.0.1:9/', enabled: false, headers: { 'x-a': '1' } });
    assert.equal(put.status, 201);
    const before = configOf(await webhookOf(g, c.id));
    const cases: Array<[string, unknown, string]> = [
      ['timeout_ms 40000', { timeout_ms: 40_000 }, 'timeout_ms'],
      ['timeout_ms 30001', { timeout_ms: 30_001 }, 'timeout_ms'],
      ['timeout_ms 0', { timeout_ms: 0 }, 'timeout_ms'],
      ['timeout_ms 1.5', { timeout_ms: 1.5 }, 'timeout_ms'],
      ['timeout_ms a string', { timeout_ms: '1000' }, 'timeout_ms'],
      ['an unknown field', { enabled: true, colour: 'red' }, 'colour'],
      ['enabled not a boolean', { enabled: 'yes' }, 'enabled'],
      ['enabled null', { enabled: null }, 'enabled'],
      ['url null', { url: null }, 'url'],
      ['ftp url', { url: 'ftp://127.0.0.1/x' }, 'url'],
      ['url with credentials', { url: 'http://user:pw@127.0.0.1:9/' }, 'url'],
      ['method OPTIONS', { method: 'OPTIONS' }, 'method'],
      ['reserved header', { headers: { 'webhook-signature': 'v1,forged' } }, 'headers.webhook-signature'],
      ['headers null', { headers: null }, 'headers'],
      ['bad secret', { secret: 'not-a-secret' }, 'secret'],
    ];
    for (const [label, body, field] of cases) {
      const r = await patchHook(g, c.id, body);
      assert.equal(r.status, 400, `${label}: ${JSON.stringify(r.body)}`);
      assertErrorShape(r, 400, 'invalid_request', field);
    }
    assertErrorShape(await patchHook(g, c.id, [{ enabled: true }]), 400, 'invalid_request');
    assertErrorShape(
      await g.json(hookPath(c.id), { method: 'PATCH', raw: '{"enabled":', headers: { 'content-type': 'application/json' } }),
      400,
      'invalid_json',
    );
    assertErrorShape(
      await g.json(hookPath(c.id), { method: 'PATCH', raw: '{"enabled":true}', headers: { 'content-type': 'text/plain' } }),
      415,
      'unsupported_media_type',
    );
    assert.deepEqual(configOf(await webhookOf(g, c.id)), before, 'no bad PATCH changed anything');
    assert.equal((await consumerOf(g, c.id)).mode, 'pull');

    const max = await patchHook(g, c.id, { timeout_ms: 30_000 });
    assert.equal(max.status, 200, `30000 ms is allowed: ${JSON.stringify(max.body)}`);
    assert.equal(max.body.timeout_ms, 30_000);
  });

  test('a new url is checked like a PUT: loopback refused (400 target_not_allowed) unless private targets are allowed', async (t) => {
    const rx = await receiverFor(t);
    const dataDir = tempDir('pollgate-wpatch-ssrf-');
    t.after(() => rmSync(dataDir, { recursive: true, force: true }));
    const tenant = freshTenant('ssrf');
    // Configure a disabled loopback webhook where that is allowed...
    const open = await startGateway({ dataDir, config: { allowPrivateTargets: true } });
    const c = await open.createConsumer({ tenant });
    assert.equal((await putHook(open, c.id, { url: rx.url, enabled: false })).status, 201);
    await open.close();
    // ...then run where it is not.
    const g = await gatewayFor(t, { dataDir, config: { allowPrivateTargets: false } });
    for (const url of ['http://127.0.0.1:9/', 'http://localhost:9/', 'http://[::1]:9/', 'http://169.254.169.254/latest/meta-data/']) {
      const r = await patchHook(g, c.id, { url });
      assertErrorShape(r, 400, 'target_not_allowed', 'url');
    }
    assert.equal((await webhookOf(g, c.id)).url, rx.url, 'unchanged');
    await publishMany(g, tenant, 1);
    await settle();
    assert.equal(rx.requests.length, 0);
  });

  test('the admin key only: 401 without a key or with a wrong one, 403 with a consumer key; nothing changes', async (t) => {
    const g = await gatewayFor(t);
    const c = await g.createConsumer({ tenant: freshTenant('auth') });
    const other = await g.createConsumer({ tenant: freshTenant('auth') });
    assert.equal((await putHook(g, c.id, { url: 'http://127.0.0.1:9/', enabled: false })).status, 201);
    const before = configOf(await webhookOf(g, c.id));

    assertErrorShape(await patchHook(g, c.id, { enabled: true }, null), 401, 'unauthorized');
    assertErrorShape(await patchHook(g, c.id, { enabled: true }, 'pga_wrong_key'), 401, 'unauthorized');
    assertErrorShape(await patchHook(g, c.id, { enabled: true }, `${c.key}x`), 401, 'unauthorized');
    assertErrorShape(await patchHook(g, c.id, { enabled: true }, c.key), 403, 'forbidden');
    assertErrorShape(await patchHook(g, c.id, { enabled: true }, other.key), 403, 'forbidden');
    // Scope is checked before anything else: a bad body or an unknown id tells a consumer nothing.
    assertErrorShape(await patchHook(g, c.id, { timeout_ms: 40_000 }, c.key), 403, 'forbidden');
    assertErrorShape(await patchHook(g, 'con_doesnotexist000', { enabled: true }, c.key), 403, 'forbidden');
    assert.deepEqual(configOf(await webhookOf(g, c.id)), before);
    assert.equal((await consumerOf(g, c.id)).mode, 'pull');
  });

  // Concurrency and a paused target that is no longer allowed.

  test('two concurrent PATCHes of different fields both take effect', async (t) => {
    const g = await gatewayFor(t);
    const c = await g.createConsumer({ tenant: freshTenant('race') });
    assert.equal((await putHook(g, c.id, { url: 'http://127.0.0.1:9/', enabled: false })).status, 201);
    for (let round = 0; round < 5; round++) {
      const [a, b] = await Promise.all([
        patchHook(g, c.id, { headers: { 'x-round': String(round) } }),
        patchHook(g, c.id, { timeout_ms: 1_000 + round }),
      ]);
      assert.equal(a.status, 200);
      assert.equal(b.status, 200);
      const hook = await webhookOf(g, c.id);
      assert.deepEqual(hook.headers, { 'x-round': String(round) }, `round ${round}: the headers PATCH was kept`);
      assert.equal(hook.timeout_ms, 1_000 + round, `round ${round}: the timeout PATCH was kept`);
    }
  });

  test('{"enabled":false} pauses a webhook whose url is no longer an allowed target', async (t) => {
    const rx = await receiverFor(t);
    const dataDir = tempDir('pollgate-wpatch-pause-');
    t.after(() => rmSync(dataDir, { recursive: true, force: true }));
    const open = await startGateway({ dataDir, config: { allowPrivateTargets: true } });
    const c = await open.createConsumer({ tenant: freshTenant('pause-blocked') });
    assert.equal((await putHook(open, c.id, { url: rx.url })).status, 201);
    await open.close();
    // Private targets are now refused; the bridge's attempts fail at connect time, and the
    // operator wants to pause this one consumer.
    const g = await gatewayFor(t, { dataDir, config: { allowPrivateTargets: false } });
    const off = await patchHook(g, c.id, { enabled: false });
    assert.equal(off.status, 200, JSON.stringify(off.body));
    assert.equal((await consumerOf(g, c.id)).mode, 'pull');
  });
});
