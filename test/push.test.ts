/**
 * Contract tests for the push bridge (SPEC: Push bridge, Fine points, Polling/push_mode;
 * PITFALLS: redirects, private targets): webhook configuration, delivery and signing, one
 * cursor across mode switches, retries and giving up, the attempt log, isolation between
 * consumers, the global toggle, and the SSRF guard. Real gateways on loopback ports over real
 * SQLite files, delivering to real node:http receivers (test/support/receiver.ts).
 *
 * Most gateways run on a FakeClock: the retry schedule, next-attempt sleeps and the give-up
 * deadline only move when a test advances that clock, so "nothing happens until then" is
 * deterministic. HTTP attempts still take real milliseconds, so every step waits (real time,
 * bounded) for the receiver or the attempt log to change before the next one. Tests about real
 * latency (isolation, the toggle) use the system clock. Signatures are checked with the
 * `standardwebhooks` library, never by recomputing the HMAC here.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import type { LookupAddress } from 'node:dns';
import type { Resolver } from '../src/push/targets.ts';
import { consumerOf, deliveriesOf, gatewayFor, startGateway, tempDir, waitForCursor, waitForDeliveries, webhookOf, type TestGateway, stepUntilGivenUp } from './support/gateway.ts';
import { FakeClock } from './support/fake-clock.ts';
import { ok, receiverFor, unusedPort, verify, type ReceivedRequest } from './support/receiver.ts';
import { assertErrorShape } from './support/assertions.ts';
import { sleep, waitUntil } from './support/wait.ts';

const WHSEC = /^whsec_[A-Za-z0-9+/]+={0,2}$/;
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const SCHEDULE = [5_000, 30_000, 120_000];

let tenantSeq = 0;
/** A tenant no other test uses. */
const freshTenant = (label = 't') => `push-${label}-${++tenantSeq}`;

const newSecret = () => `whsec_${randomBytes(32).toString('base64')}`;

// ---------------------------------------------------------------------------------------------
// API helpers. (Every gateway and receiver a test starts, with gatewayFor / receiverFor from
// test/support, is closed when the test ends.)

function putHook(g: TestGateway, id: string, body: unknown, key?: string) {
  return g.json(`/v1/consumers/${id}/webhook`, { method: 'PUT', body, ...(key ? { key } : {}) });
}

/** One poll that does not wait (limit 1000 unless the query sets one); answers the raw answer. */
function pollRaw(g: TestGateway, key: string, query = '') {
  const limit = query.includes('limit=') ? '' : '&limit=1000';
  return g.json(`/v1/events?wait=0${limit}${query}`, { key });
}

async function pollOnce(g: TestGateway, key: string, query = ''): Promise<{ events: any[]; cursor: string; more: boolean }> {
  const r = await pollRaw(g, key, query);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

async function publishMany(g: TestGateway, tenant: string, n: number, type = 'ticket.created', from = 1): Promise<any[]> {
  const events = Array.from({ length: n }, (_, i) => ({ tenant, type, data: { n: from + i } }));
  return (await g.publish(events)).events;
}

const idsOf = (list: Array<{ id: string }>) => list.map((e) => e.id);
const hookIds = (reqs: ReceivedRequest[]) => reqs.map((r) => String(r.headers['webhook-id']));

/** Moves the fake clock to an ISO instant (or not at all when it is already past). */
async function advanceTo(clock: FakeClock, iso: string): Promise<void> {
  await clock.advance(Math.max(0, Date.parse(iso) - clock.now()));
}

/** A short real-time pause to let anything that is (wrongly) about to happen, happen. */
const settle = () => sleep(300);

// ---------------------------------------------------------------------------------------------

describe('PUT/GET/DELETE /v1/consumers/:id/webhook', () => {
  test('create answers 201 with a whsec_ secret; GET never shows it', async (t) => {
    const g = await gatewayFor(t, { clock: new FakeClock() });
    const rx = await receiverFor(t);
    const c = await g.createConsumer({ tenant: freshTenant('create') });

    const r = await putHook(g, c.id, { url: rx.url });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.match(r.body.secret, WHSEC);
    assert.equal(r.body.url, rx.url);
    assert.equal(r.body.method, 'POST');
    assert.equal(r.body.timeout_ms, 10_000, 'timeout_ms defaults to 10 s');
    assert.equal(r.body.enabled, true);
    assert.deepEqual(r.body.headers, {});

    const got = await g.json(`/v1/consumers/${c.id}/webhook`);
    assert.equal(got.status, 200);
    assert.equal(got.body.url, rx.url);
    assert.equal(got.body.enabled, true);
    assert.ok(!('secret' in got.body), 'GET has no secret field');
    assert.ok(!JSON.stringify(got.body).includes(r.body.secret.slice(6)), 'GET shows the secret nowhere');

    const view = await consumerOf(g, c.id);
    assert.equal(view.mode, 'push');
    assert.ok(!JSON.stringify(view).includes(r.body.secret.slice(6)), 'the consumer view shows the secret nowhere');
    const list = await g.json(`/v1/consumers?tenant=${c.tenant}`);
    assert.ok(!JSON.stringify(list.body).includes(r.body.secret.slice(6)), 'the consumer list shows the secret nowhere');
    const own = await g.json('/v1/consumer', { key: c.key });
    assert.equal(own.status, 200);
    assert.ok(!JSON.stringify(own.body).includes(r.body.secret.slice(6)), "the consumer's own view shows the secret nowhere");
  });

  test('a PUT without secret keeps the old one (200, not shown); a PUT with a new secret shows it and signing switches', async (t) => {
    const g = await gatewayFor(t, { clock: new FakeClock() });
    const rx = await receiverFor(t);
    const tenant = freshTenant('secret');
    const c = await g.createConsumer({ tenant });

    const first = await putHook(g, c.id, { url: rx.url });
    assert.equal(first.status, 201);
    const oldSecret: string = first.body.secret;

    const again = await putHook(g, c.id, { url: rx.url, headers: { 'x-again': '1' } });
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.ok(!('secret' in again.body), `no secret on a PUT that keeps it: ${JSON.stringify(again.body)}`);

    const [e1] = await publishMany(g, tenant, 1);
    await rx.waitForCount(1);
    const req1 = rx.requests[0]!;
    assert.equal(req1.headers['x-again'], '1', 'the replacing PUT took effect');
    assert.deepEqual(verify(oldSecret, req1), e1, 'still signed with the original secret');

    const fresh = newSecret();
    const rotated = await putHook(g, c.id, { url: rx.url, secret: fresh });
    assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
    assert.equal(rotated.body.secret, fresh, 'the PUT that sets a new secret shows it');

    const [e2] = await publishMany(g, tenant, 1, 'ticket.created', 2);
    await rx.waitForCount(2);
    const req2 = rx.requests[1]!;
    assert.equal(req2.headers['webhook-id'], e2.id);
    assert.deepEqual(verify(fresh, req2), e2, 'signed with the new secret');
    assert.throws(() => verify(oldSecret, req2), 'the old secret no longer verifies');

    const same = await putHook(g, c.id, { url: rx.url, secret: fresh });
    assert.equal(same.status, 200);
    assert.ok(!('secret' in same.body), 'setting the same secret again is not a new secret');
  });

  test('validation: each bad field is a 400 naming it', async (t) => {
    const g = await gatewayFor(t, { clock: new FakeClock() });
    const c = await g.createConsumer({ tenant: freshTenant('valid') });
    const url = 'http://127.0.0.1:9/';
    const cases: Array<[string, unknown, string]> = [
      ['missing url', {}, 'url'],
      ['url not a string', { url: 42 }, 'url'],
      ['ftp url', { url: 'ftp://127.0.0.1/x' }, 'url'],
      ['relative url', { url: '/hooks' }, 'url'],
      ['url with credentials', { url: 'http://user:pw@127.0.0.1:9/' }, 'url'],
      ['url with user only', { url: 'http://user@127.0.0.1:9/' }, 'url'],
      ['timeout_ms 30001', { url, timeout_ms: 30_001 }, 'timeout_ms'],
      ['timeout_ms 0', { url, timeout_ms: 0 }, 'timeout_ms'],
      ['timeout_ms not an integer', { url, timeout_ms: 1.5 }, 'timeout_ms'],
      ['timeout_ms a string', { url, timeout_ms: '1000' }, 'timeout_ms'],
      ['method CONNECT', { url, method: 'CONNECT' }, 'method'],
      ['method HEAD', { url, method: 'HEAD' }, 'method'],
      ['method lower-case', { url, method: 'post' }, 'method'],
      ['reserved header webhook-signature', { url, headers: { 'webhook-signature': 'v1,forged' } }, 'headers'],
      ['reserved header Content-Type', { url, headers: { 'Content-Type': 'text/plain' } }, 'headers'],
      ['reserved header webhook-id', { url, headers: { 'webhook-id': 'x' } }, 'headers'],
      ['header value not a string', { url, headers: { 'x-n': 1 } }, 'headers'],
      ['header with a line break', { url, headers: { 'x-a': 'a\r\nx-b: b' } }, 'headers'],
      ['bad secret', { url, secret: 'not-a-secret' }, 'secret'],
      ['enabled not a boolean', { url, enabled: 'yes' }, 'enabled'],
    ];
    for (const [label, body, field] of cases) {
      const r = await putHook(g, c.id, body);
      assert.equal(r.status, 400, `${label}: ${JSON.stringify(r.body)}`);
      assertErrorShape(r, 400, undefined, field, 'field-or-message');
    }
    const notJson = await g.json(`/v1/consumers/${c.id}/webhook`, {
      method: 'PUT',
      raw: '{"url":',
      headers: { 'content-type': 'application/json' },
    });
    assertErrorShape(notJson, 400);

    // Nothing was configured by any of them.
    assertErrorShape(await g.json(`/v1/consumers/${c.id}/webhook`), 404, 'not_found');
    assert.equal((await consumerOf(g, c.id)).mode, 'pull');

    const max = await putHook(g, c.id, { url, timeout_ms: 30_000 });
    assert.equal(max.status, 201, `30000 ms is allowed: ${JSON.stringify(max.body)}`);
    assert.equal(max.body.timeout_ms, 30_000);
  });

  test('method PUT and PATCH are honoured and custom headers arrive', async (t) => {
    const g = await gatewayFor(t, { clock: new FakeClock() });
    const rx = await receiverFor(t);
    const tenant = freshTenant('method');
    const c = await g.createConsumer({ tenant });

    const r = await putHook(g, c.id, { url: rx.url, method: 'PUT', headers: { 'X-Api-Key': 'k-123', 'x-tenant-hint': 'acme' } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.method, 'PUT');
    assert.deepEqual(r.body.headers, { 'X-Api-Key': 'k-123', 'x-tenant-hint': 'acme' });
    await publishMany(g, tenant, 1);
    await rx.waitForCount(1);
    assert.equal(rx.requests[0]!.method, 'PUT');
    assert.equal(rx.requests[0]!.headers['x-api-key'], 'k-123');
    assert.equal(rx.requests[0]!.headers['x-tenant-hint'], 'acme');

    const p = await putHook(g, c.id, { url: rx.url, method: 'PATCH' });
    assert.equal(p.status, 200, JSON.stringify(p.body));
    await publishMany(g, tenant, 1, 'ticket.created', 2);
    await rx.waitForCount(2);
    assert.equal(rx.requests[1]!.method, 'PATCH');
    assert.equal(rx.requests[1]!.headers['x-api-key'], undefined, 'a PUT replaces the webhook, headers included');
  });

  test('unknown consumer is 404; a consumer key is 403 on every webhook route', async (t) => {
    const g = await gatewayFor(t, { clock: new FakeClock() });
    const rx = await receiverFor(t);
    const c = await g.createConsumer({ tenant: freshTenant('auth') });
    const other = await g.createConsumer({ tenant: freshTenant('auth') });

    assertErrorShape(await putHook(g, 'con_doesnotexist000', { url: rx.url }), 404, 'not_found');
    assertErrorShape(await g.json('/v1/consumers/con_doesnotexist000/webhook'), 404, 'not_found');
    assertErrorShape(await g.json('/v1/consumers/con_doesnotexist000/webhook', { method: 'DELETE' }), 404, 'not_found');
    assertErrorShape(await g.json('/v1/consumers/con_doesnotexist000/deliveries'), 404, 'not_found');

    // No webhook yet: GET and DELETE are 404.
    assertErrorShape(await g.json(`/v1/consumers/${c.id}/webhook`), 404, 'not_found');
    assertErrorShape(await g.json(`/v1/consumers/${c.id}/webhook`, { method: 'DELETE' }), 404, 'not_found');

    for (const key of [c.key, other.key]) {
      assertErrorShape(await putHook(g, c.id, { url: rx.url }, key), 403, 'forbidden');
      assertErrorShape(await g.json(`/v1/consumers/${c.id}/webhook`, { key }), 403, 'forbidden');
      assertErrorShape(await g.json(`/v1/consumers/${c.id}/webhook`, { method: 'DELETE', key }), 403, 'forbidden');
      assertErrorShape(await g.json(`/v1/consumers/${c.id}/deliveries`, { key }), 403, 'forbidden');
    }
    assertErrorShape(await g.json(`/v1/consumers/${c.id}/webhook`, { method: 'PUT', body: { url: rx.url }, key: null }), 401);
    assert.equal((await consumerOf(g, c.id)).mode, 'pull', 'nothing was configured');
    assert.equal(rx.requests.length, 0);
  });
});

describe('delivery', () => {
  test('a webhook created with enabled:false is stored but the consumer stays in pull mode', async (t) => {
    const g = await gatewayFor(t, { clock: new FakeClock() });
    const rx = await receiverFor(t);
    const tenant = freshTenant('created-off');
    const c = await g.createConsumer({ tenant });
    const r = await putHook(g, c.id, { url: rx.url, enabled: false });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.match(r.body.secret, WHSEC, 'the creating PUT shows the secret even when disabled');
    assert.equal(r.body.enabled, false);
    assert.equal((await consumerOf(g, c.id)).mode, 'pull');
    const evs = await publishMany(g, tenant, 2);
    await settle();
    assert.equal(rx.requests.length, 0);
    assert.deepEqual(idsOf((await pollOnce(g, c.key)).events), idsOf(evs));

    const on = await putHook(g, c.id, { url: rx.url });
    assert.equal(on.status, 200);
    await rx.waitForCount(2);
    assert.deepEqual(hookIds(rx.requests), idsOf(evs), 'enabling starts at the committed cursor');
    assert.deepEqual(verify(r.body.secret, rx.requests[0]!), evs[0]);
  });


  test('the receiver gets the exact envelopes of the poll path, in log order, signed', async (t) => {
    const g = await gatewayFor(t, { clock: new FakeClock() });
    const rx = await receiverFor(t);
    const tenant = freshTenant('envelope');
    const c = await g.createConsumer({ tenant });

    const published = (
      await g.publish([
        { tenant, type: 'ticket.created', data: { ticketId: 'ebcb7b53', nested: { a: [1, 2.5, null, true] }, s: 'héllo "q" \\ \u2028 😀' } },
        { tenant, type: 'ticket.updated', data: null },
        { tenant, type: 'message.create.request', data: 'just a string' },
        { tenant, type: 'ticket.closed', data: 42, id: 'custom:id-1' },
        { tenant, type: 'ticket.x_y-z', data: [] },
      ])
    ).events;
    // Read them on the poll path first (reading does not commit).
    const polled = await pollOnce(g, c.key);
    assert.deepEqual(polled.events, published);

    const put = await putHook(g, c.id, { url: rx.url });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    const secret: string = put.body.secret;
    await rx.waitForCount(5);

    const before = Math.floor(Date.now() / 1000);
    for (const [i, req] of rx.requests.entries()) {
      const envelope = polled.events[i];
      assert.equal(req.method, 'POST');
      assert.equal(req.path, '/');
      assert.equal(req.body, JSON.stringify(envelope), `request ${i + 1}: the body is the poll path's envelope, byte for byte`);
      assert.deepEqual(JSON.parse(req.body), envelope);
      assert.equal(req.headers['webhook-id'], envelope.id, 'webhook-id is the event id');
      assert.match(String(req.headers['webhook-timestamp']), /^\d+$/);
      assert.ok(Math.abs(Number(req.headers['webhook-timestamp']) - before) <= 60, 'webhook-timestamp is unix seconds, now');
      assert.match(String(req.headers['webhook-signature']), /^v1,[A-Za-z0-9+/]+={0,2}$/);
      assert.match(String(req.headers['user-agent']), /^pollgate\//);
      assert.match(String(req.headers['content-type']), /^application\/json(;|$)/);
      assert.deepEqual(verify(secret, req), envelope, 'standardwebhooks verifies the signature');
    }
    assert.deepEqual(hookIds(rx.requests), idsOf(published), 'log order');
    await waitForCursor(g, c.id, published[4].cursor);

    // Later events: the body equals the envelope the publish answered with.
    const single = await g.publish({ tenant, type: 'ticket.reopened', data: { why: 'customer replied' } });
    const batch = (await g.publish([{ tenant, type: 'a.b', data: { i: 1 } }, { tenant, type: 'a.c', data: { i: 2 } }])).events;
    await rx.waitForCount(8);
    assert.deepEqual(rx.requests.slice(5).map((r) => r.body), [single, ...batch].map((e) => JSON.stringify(e)));
    for (const req of rx.requests) verify(secret, req);
    await waitForCursor(g, c.id, batch[1].cursor);
    await settle();
    assert.equal(rx.requests.length, 8, 'each event once when the receiver says 2xx');

    const attempts = await deliveriesOf(g, c.id);
    assert.equal(attempts.length, 8);
    for (const a of attempts) {
      assert.equal(a.attempt, 1);
      assert.equal(a.status, 200);
      assert.equal(a.error, null);
    }
  });

  test("the consumer's filter applies; the cursor moves past skipped events", async (t) => {
    const g = await gatewayFor(t, { clock: new FakeClock() });
    const rx = await receiverFor(t);
    const tenant = freshTenant('filter');
    const c = await g.createConsumer({
      tenant,
      filter: { types: ['order.*'], where: [{ field: 'data.priority', op: 'ne', value: 'low' }] },
    });
    const put = await putHook(g, c.id, { url: rx.url });
    assert.equal(put.status, 201);

    const events = (
      await g.publish([
        { tenant, type: 'order.created', data: { priority: 'high' } },
        { tenant, type: 'user.created', data: { priority: 'high' } },
        { tenant, type: 'order.created', data: { priority: 'low' } },
        { tenant, type: 'order.paid', data: { priority: 'urgent' } },
        { tenant, type: 'user.deleted', data: {} },
        { tenant, type: 'order.created.extra', data: { priority: 'high' } },
      ])
    ).events;
    await rx.waitForCount(2);
    await waitForCursor(g, c.id, events[5].cursor);
    await settle();
    assert.deepEqual(hookIds(rx.requests), [events[0].id, events[3].id]);
    assert.deepEqual(
      (await deliveriesOf(g, c.id)).map((d) => d.event_id),
      [events[3].id, events[0].id],
      'only matching events are attempted',
    );

    // The same filter on the poll path after switching back: nothing is left.
    const del = await g.json(`/v1/consumers/${c.id}/webhook`, { method: 'DELETE' });
    assert.equal(del.status, 200);
    assert.equal(del.body.cursor, events[5].cursor);
    const polled = await pollOnce(g, c.key);
    assert.deepEqual(polled.events, []);
  });
});

describe('mode switching keeps one cursor', () => {
  test('pull → push → pull: nothing repeated, nothing lost; push_mode on poll and ack', async (t) => {
    const clock = new FakeClock();
    const g = await gatewayFor(t, { clock, config: { retryScheduleMs: SCHEDULE } });
    const rx = await receiverFor(t);
    const tenant = freshTenant('switch');
    const c = await g.createConsumer({ tenant });
    const evs = await publishMany(g, tenant, 10, 'ticket.created', 1);

    // Pull: read four, ack them.
    const first = await pollOnce(g, c.key, '&limit=4');
    assert.deepEqual(idsOf(first.events), idsOf(evs.slice(0, 4)));
    const acked = await g.json('/v1/ack', { key: c.key, body: { cursor: first.cursor } });
    assert.equal(acked.status, 200);
    assert.equal(acked.body.cursor, evs[3].cursor);
    // Read further without acking: not committed, so push must start after evs[3].
    assert.equal((await pollOnce(g, c.key, `&after=${evs[3].cursor}&limit=2`)).events.length, 2);

    const put = await putHook(g, c.id, { url: rx.url });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    await rx.waitForCount(6);
    await waitForCursor(g, c.id, evs[9].cursor);
    await settle();
    assert.deepEqual(hookIds(rx.requests), idsOf(evs.slice(4)), 'exactly the events after the committed cursor');

    // Push mode: polling and acking are refused.
    assertErrorShape(await pollRaw(g, c.key), 409, 'push_mode');
    assertErrorShape(await g.json(`/v1/events?wait=1`, { key: c.key }), 409, 'push_mode');
    assertErrorShape(await g.json('/v1/ack', { key: c.key, body: { cursor: evs[9].cursor } }), 409, 'push_mode');

    // Mode and health on both views.
    const own = await g.json('/v1/consumer', { key: c.key });
    assert.equal(own.status, 200);
    assert.equal(own.body.mode, 'push');
    assert.equal(own.body.cursor, evs[9].cursor);
    assert.match(own.body.webhook.health.last_success_at, ISO_MS);
    assert.equal(own.body.webhook.health.last_error, null);
    assert.equal(own.body.webhook.health.consecutive_failures, 0);
    assert.equal(own.body.webhook.health.next_attempt_at, null);
    const admin = await consumerOf(g, c.id);
    assert.equal(admin.mode, 'push');
    assert.equal(admin.lag, 0);
    assert.equal(admin.webhook.url, rx.url);

    // Some progress, then stuck: e13 fails.
    rx.behave((req) => ((JSON.parse(req.body).data.n as number) >= 13 ? { status: 500 } : { status: 200 }));
    const more = await publishMany(g, tenant, 8, 'ticket.created', 11);
    await rx.waitForCount(9);
    await waitUntil(
      async () => (await deliveriesOf(g, c.id))[0]?.event_id === more[2].id,
      5_000,
      () => 'the failed attempt on e13',
    );
    const stuck = await consumerOf(g, c.id);
    assert.equal(stuck.mode, 'push');
    assert.equal(stuck.cursor, more[1].cursor);
    assert.equal(stuck.webhook.health.consecutive_failures, 1);
    assert.match(stuck.webhook.health.last_error, /http_status/);
    assert.match(stuck.webhook.health.next_attempt_at, ISO_MS);
    assert.ok(Date.parse(stuck.webhook.health.next_attempt_at) > clock.now());
    // A poll carrying an ack is refused before the ack: the cursor is the bridge's alone.
    assertErrorShape(await g.json(`/v1/events?wait=0&ack=${more[7].cursor}`, { key: c.key }), 409, 'push_mode');
    assertErrorShape(await g.json('/v1/ack', { key: c.key, body: { cursor: more[7].cursor } }), 409, 'push_mode');
    assert.equal((await consumerOf(g, c.id)).cursor, more[1].cursor, 'a refused ack moves nothing');
    const ownStuck = (await g.json('/v1/consumer', { key: c.key })).body;
    assert.equal(ownStuck.webhook.health.consecutive_failures, 1);
    assert.equal(ownStuck.webhook.health.next_attempt_at, stuck.webhook.health.next_attempt_at);

    // Back to pull, at the cursor the bridge reached.
    const del = await g.json(`/v1/consumers/${c.id}/webhook`, { method: 'DELETE' });
    assert.equal(del.status, 200, JSON.stringify(del.body));
    assert.equal(del.body.id, c.id);
    assert.equal(del.body.mode, 'pull');
    assert.equal(del.body.cursor, more[1].cursor);
    assert.equal(del.body.webhook, null);
    assertErrorShape(await g.json(`/v1/consumers/${c.id}/webhook`), 404, 'not_found');

    const rest = await pollOnce(g, c.key);
    assert.deepEqual(idsOf(rest.events), idsOf(more.slice(2)), 'polling returns exactly the events after it');
    const ack2 = await g.json('/v1/ack', { key: c.key, body: { cursor: rest.cursor } });
    assert.equal(ack2.status, 200);

    // The retry that was scheduled does not happen: the webhook is gone.
    const seen = rx.requests.length;
    await clock.advance(15 * 60_000);
    await settle();
    assert.equal(rx.requests.length, seen);

    // Every event 1..18 reached exactly one side exactly once (plus the failed attempt on e13).
    const delivered = new Set(rx.requests.filter((r) => JSON.parse(r.body).data.n < 13).map((r) => r.headers['webhook-id']));
    const pulled = new Set([...idsOf(first.events), ...idsOf(rest.events)]);
    for (const e of [...evs, ...more]) {
      assert.ok(delivered.has(e.id) !== pulled.has(e.id), `${e.id} reached exactly one side`);
    }
  });

  test('a poll held when PUT switches to push ends with 409 push_mode', async (t) => {
    const g = await gatewayFor(t, { clock: new FakeClock() });
    const rx = await receiverFor(t);
    const tenant = freshTenant('held');
    const c = await g.createConsumer({ tenant });

    const held = g.json('/v1/events?wait=30', { key: c.key });
    held.catch(() => {});
    await waitUntil(async () => (await consumerOf(g, c.id)).polling === true, 5_000, () => 'the poll to be held');
    const put = await putHook(g, c.id, { url: rx.url });
    assert.equal(put.status, 201);
    const r = await Promise.race([held, sleep(5_000).then(() => null)]);
    assert.ok(r, 'the held poll ended');
    assertErrorShape(r, 409, 'push_mode');

    // And push works from the same cursor.
    const [e] = await publishMany(g, tenant, 1);
    await rx.waitForCount(1);
    assert.equal(rx.requests[0]!.headers['webhook-id'], e.id);
  });

  test('enabled:false returns to pull at the cursor and keeps the webhook; enabled:true resumes at the cursor', async (t) => {
    const g = await gatewayFor(t, { clock: new FakeClock() });
    const rx = await receiverFor(t);
    const tenant = freshTenant('disable');
    const c = await g.createConsumer({ tenant });
    const put = await putHook(g, c.id, { url: rx.url, headers: { 'x-keep': 'yes' } });
    assert.equal(put.status, 201);
    const secret: string = put.body.secret;

    const evs = await publishMany(g, tenant, 3);
    await rx.waitForCount(3);
    await waitForCursor(g, c.id, evs[2].cursor);

    const off = await putHook(g, c.id, { url: rx.url, headers: { 'x-keep': 'yes' }, enabled: false });
    assert.equal(off.status, 200, JSON.stringify(off.body));
    assert.equal(off.body.enabled, false);
    assert.ok(!('secret' in off.body));
    const hook = await webhookOf(g, c.id);
    assert.equal(hook.enabled, false, 'the webhook is kept, disabled');
    assert.equal(hook.url, rx.url);
    const view = await consumerOf(g, c.id);
    assert.equal(view.mode, 'pull');
    assert.equal(view.cursor, evs[2].cursor);
    assert.equal(view.webhook.enabled, false);

    const later = await publishMany(g, tenant, 4, 'ticket.created', 4);
    await settle();
    assert.equal(rx.requests.length, 3, 'nothing is pushed while disabled');

    const polled = await pollOnce(g, c.key);
    assert.deepEqual(idsOf(polled.events), idsOf(later));
    const ack = await g.json('/v1/ack', { key: c.key, body: { cursor: later[1].cursor } });
    assert.equal(ack.status, 200);

    const on = await putHook(g, c.id, { url: rx.url, headers: { 'x-keep': 'yes' }, enabled: true });
    assert.equal(on.status, 200, JSON.stringify(on.body));
    assert.equal(on.body.enabled, true);
    assert.ok(!('secret' in on.body));
    assert.equal((await consumerOf(g, c.id)).mode, 'push');
    assertErrorShape(await pollRaw(g, c.key), 409, 'push_mode');

    await rx.waitForCount(5);
    await waitForCursor(g, c.id, later[3].cursor);
    await settle();
    assert.deepEqual(hookIds(rx.requests.slice(3)), idsOf(later.slice(2)), 'push resumes after the acked cursor');
    for (const req of rx.requests) verify(secret, req);
  });
});

describe('retries (fake clock)', () => {
  test('500: attempt recorded, retried only when the clock says so, same webhook-id; attempts reset per event', async (t) => {
    const clock = new FakeClock();
    const g = await gatewayFor(t, { clock, config: { retryScheduleMs: SCHEDULE } });
    const rx = await receiverFor(t, () => ({ status: 500 }));
    const tenant = freshTenant('retry');
    const c = await g.createConsumer({ tenant });
    const put = await putHook(g, c.id, { url: rx.url });
    const secret: string = put.body.secret;
    const [e1] = await publishMany(g, tenant, 1);

    let log = await waitForDeliveries(g, c.id, 1);
    const a1 = log[0];
    assert.equal(a1.event_id, e1.id);
    assert.equal(a1.cursor, e1.cursor);
    assert.equal(a1.attempt, 1);
    assert.equal(a1.status, 500);
    assert.equal(a1.error, 'http_status');
    assert.equal(a1.at, new Date(clock.now()).toISOString());
    const delay1 = Date.parse(a1.next_attempt_at) - Date.parse(a1.at);
    assert.ok(delay1 >= 4_000 && delay1 <= 6_000, `first retry ≈ 5 s ± 20 %, got ${delay1} ms`);
    const health = (await webhookOf(g, c.id)).health;
    assert.equal(health.next_attempt_at, a1.next_attempt_at);
    assert.equal(health.consecutive_failures, 1);
    assert.equal(health.last_status, 500);
    assert.match(health.last_error, /http_status/);

    // Nothing more until the clock moves.
    await settle();
    assert.equal(rx.requests.length, 1);
    await clock.advance(delay1 - 1_000);
    await settle();
    assert.equal(rx.requests.length, 1, 'not before next_attempt_at');

    await advanceTo(clock, a1.next_attempt_at);
    await rx.waitForCount(2);
    log = await waitForDeliveries(g, c.id, 2);
    const a2 = log[0];
    assert.equal(a2.attempt, 2);
    assert.equal(a2.event_id, e1.id);
    const delay2 = Date.parse(a2.next_attempt_at) - Date.parse(a2.at);
    assert.ok(delay2 >= 24_000 && delay2 <= 36_000, `second retry ≈ 30 s ± 20 %, got ${delay2} ms`);
    assert.equal((await webhookOf(g, c.id)).health.consecutive_failures, 2);

    rx.behave(ok);
    await advanceTo(clock, a2.next_attempt_at);
    await rx.waitForCount(3);
    log = await waitForDeliveries(g, c.id, 3);
    assert.equal(log[0].attempt, 3);
    assert.equal(log[0].status, 200);
    assert.equal(log[0].error, null);
    assert.equal(log[0].next_attempt_at, null);
    assert.deepEqual(hookIds(rx.requests), [e1.id, e1.id, e1.id], 'the same webhook-id on every retry');
    for (const req of rx.requests) assert.deepEqual(verify(secret, req), e1);
    await waitForCursor(g, c.id, e1.cursor);
    const healed = (await webhookOf(g, c.id)).health;
    assert.equal(healed.consecutive_failures, 0);
    assert.equal(healed.next_attempt_at, null);
    assert.match(healed.last_success_at, ISO_MS);

    // The next event starts again at attempt 1.
    rx.behave(() => ({ status: 503 }));
    const [e2] = await publishMany(g, tenant, 1, 'ticket.created', 2);
    log = await waitForDeliveries(g, c.id, 4);
    assert.equal(log[0].event_id, e2.id);
    assert.equal(log[0].attempt, 1);
    assert.equal(log[0].status, 503);
    const d = Date.parse(log[0].next_attempt_at) - Date.parse(log[0].at);
    assert.ok(d >= 4_000 && d <= 6_000, `schedule restarts for a new event, got ${d} ms`);
  });

  test('429 with Retry-After: 120 → the next attempt ≈ +120 s, not the schedule', async (t) => {
    const clock = new FakeClock();
    const g = await gatewayFor(t, { clock, config: { retryScheduleMs: SCHEDULE } });
    const rx = await receiverFor(t, () => ({ status: 429, headers: { 'retry-after': '120' } }));
    const tenant = freshTenant('429');
    const c = await g.createConsumer({ tenant });
    await putHook(g, c.id, { url: rx.url });
    const [e] = await publishMany(g, tenant, 1);

    const [a1] = await waitForDeliveries(g, c.id, 1);
    assert.equal(a1.status, 429);
    assert.equal(a1.error, 'http_status');
    const delay = Date.parse(a1.next_attempt_at) - Date.parse(a1.at);
    assert.ok(Math.abs(delay - 120_000) <= 1_000, `Retry-After wins: ${delay} ms`);

    await clock.advance(60_000); // well past the 5 s schedule
    await settle();
    assert.equal(rx.requests.length, 1, 'no attempt before Retry-After');
    rx.behave(ok);
    await advanceTo(clock, a1.next_attempt_at);
    await rx.waitForCount(2);
    await waitForCursor(g, c.id, e.cursor);
    assert.deepEqual(hookIds(rx.requests), [e.id, e.id]);
  });

  test('timeout: a receiver that hangs past timeout_ms is a failed attempt with error timeout', async (t) => {
    const clock = new FakeClock();
    const g = await gatewayFor(t, { clock, config: { retryScheduleMs: SCHEDULE } });
    const rx = await receiverFor(t, () => ({ hang: true }));
    const tenant = freshTenant('timeout');
    const c = await g.createConsumer({ tenant });
    await putHook(g, c.id, { url: rx.url, timeout_ms: 300 });
    const [e] = await publishMany(g, tenant, 1);

    const [a1] = await waitForDeliveries(g, c.id, 1);
    assert.equal(a1.event_id, e.id);
    assert.equal(a1.error, 'timeout');
    assert.equal(a1.status, null);
    assert.ok(a1.duration_ms >= 250 && a1.duration_ms < 5_000, `duration ${a1.duration_ms} ms`);
    assert.match((await webhookOf(g, c.id)).health.last_error, /timeout/);

    rx.behave(ok);
    await advanceTo(clock, a1.next_attempt_at);
    await waitForCursor(g, c.id, e.cursor);
    const [a2] = await deliveriesOf(g, c.id);
    assert.equal(a2.attempt, 2);
    assert.equal(a2.status, 200);
  });

  test('connection reset → error reset; port not listening → error refused', async (t) => {
    const clock = new FakeClock();
    const g = await gatewayFor(t, { clock, config: { retryScheduleMs: SCHEDULE } });
    const rx = await receiverFor(t, () => ({ reset: true }));
    const tenant = freshTenant('reset');
    const c1 = await g.createConsumer({ tenant });
    const c2 = await g.createConsumer({ tenant });
    await putHook(g, c1.id, { url: rx.url });
    const dead = await unusedPort();
    await putHook(g, c2.id, { url: `http://127.0.0.1:${dead}/hook` });
    const [e] = await publishMany(g, tenant, 1);

    const [r1] = await waitForDeliveries(g, c1.id, 1);
    assert.equal(r1.event_id, e.id);
    assert.equal(r1.error, 'reset');
    assert.equal(r1.status, null);
    assert.ok(rx.requests.length >= 1, 'the reset receiver saw the request');

    const [r2] = await waitForDeliveries(g, c2.id, 1);
    assert.equal(r2.event_id, e.id);
    assert.equal(r2.error, 'refused');
    assert.equal(r2.status, null);
    assert.match((await webhookOf(g, c2.id)).health.last_error, /refused/);
    // Neither cursor moved.
    assert.equal((await consumerOf(g, c1.id)).cursor, c1.cursor);
    assert.equal((await consumerOf(g, c2.id)).cursor, c2.cursor);
  });

  test('a 3xx is a failed attempt and the redirect target is never contacted', async (t) => {
    const clock = new FakeClock();
    const g = await gatewayFor(t, { clock, config: { retryScheduleMs: SCHEDULE } });
    const target = await receiverFor(t);
    const codes = [302, 307, 308, 301];
    let i = 0;
    const rx = await receiverFor(t, () => ({ status: codes[Math.min(i++, codes.length - 1)]!, headers: { location: `${target.url}elsewhere` } }));
    const tenant = freshTenant('redirect');
    const c = await g.createConsumer({ tenant });
    await putHook(g, c.id, { url: rx.url });
    const [e] = await publishMany(g, tenant, 1);

    for (let n = 1; n <= codes.length; n++) {
      const [a] = await waitForDeliveries(g, c.id, n);
      assert.equal(a.attempt, n);
      assert.equal(a.event_id, e.id);
      assert.equal(a.status, codes[n - 1], `attempt ${n}`);
      assert.equal(a.error, 'http_status');
      if (n < codes.length) await advanceTo(clock, a.next_attempt_at);
    }
    await settle();
    assert.equal(rx.requests.length, codes.length);
    assert.equal(target.requests.length, 0, 'the Location was never contacted');
    assert.equal((await consumerOf(g, c.id)).cursor, c.cursor, 'a redirect does not move the cursor');
  });

  test('order is preserved: events after a stuck one wait for it', async (t) => {
    const clock = new FakeClock();
    const g = await gatewayFor(t, { clock, config: { retryScheduleMs: SCHEDULE } });
    let failing = true;
    const rx = await receiverFor(t, (req) => (failing && JSON.parse(req.body).data.n === 1 ? { status: 500 } : { status: 200 }));
    const tenant = freshTenant('order');
    const c = await g.createConsumer({ tenant });
    await putHook(g, c.id, { url: rx.url });

    const [stuck] = await publishMany(g, tenant, 1, 'ticket.created', 1);
    const later = await publishMany(g, tenant, 3, 'ticket.created', 2);
    let log = await waitForDeliveries(g, c.id, 1);
    assert.equal(log[0].event_id, stuck.id);
    await settle();
    assert.deepEqual(hookIds(rx.requests), [stuck.id], 'nothing after the stuck event');

    await advanceTo(clock, log[0].next_attempt_at);
    await waitUntil(async () => (log = await deliveriesOf(g, c.id))[0].attempt === 2, 5_000, () => 'attempt 2');
    await settle();
    assert.deepEqual(hookIds(rx.requests), [stuck.id, stuck.id], 'still nothing after it');

    failing = false;
    await advanceTo(clock, log[0].next_attempt_at);
    await waitForCursor(g, c.id, later[2].cursor);
    assert.deepEqual(hookIds(rx.requests), [stuck.id, stuck.id, stuck.id, ...idsOf(later)], 'the later events follow it, in order');
  });

  test('give-up: failing past retryMaxAge disables the webhook, returns to pull, appends pollgate.webhook.disabled, drops nothing', async (t) => {
    const clock = new FakeClock();
    const g = await gatewayFor(t, { clock, config: { retryScheduleMs: SCHEDULE, retryMaxAgeMs: 600_000 } });
    const rx = await receiverFor(t, () => ({ status: 500 }));
    const tenant = freshTenant('giveup');
    const c = await g.createConsumer({ tenant });
    const put = await putHook(g, c.id, { url: rx.url });
    const secret: string = put.body.secret;
    const [stuck] = await publishMany(g, tenant, 1, 'ticket.created', 1);
    const [first] = await waitForDeliveries(g, c.id, 1);
    const later = await publishMany(g, tenant, 2, 'ticket.created', 2);

    // Step the clock from attempt to attempt until the bridge gives up (bounded).
    let hook = await stepUntilGivenUp(g, clock, c.id, 30);
    assert.equal(hook.enabled, false, 'the webhook is disabled');
    assert.equal(typeof hook.disabled_reason, 'string');
    assert.ok(hook.disabled_reason.length > 0);
    assert.equal(hook.url, rx.url, 'still configured');

    const log = await deliveriesOf(g, c.id);
    assert.ok(log.every((d) => d.event_id === stuck.id && d.status === 500), 'every attempt was on the stuck event');
    assert.deepEqual(log.map((d) => d.attempt), log.map((_, i) => log.length - i), 'attempts numbered 1..n');
    const times = log.map((d) => Date.parse(d.at)).reverse();
    const gaps = times.slice(1).map((at, i) => at - times[i]!);
    gaps.forEach((gap, i) => {
      const base = SCHEDULE[Math.min(i, SCHEDULE.length - 1)]!;
      const last = i === gaps.length - 1; // clamped to the deadline
      assert.ok(gap <= base * 1.2 && (last || gap >= base * 0.8), `gap ${i + 1}: ${gap} ms for a ${base} ms step (the last step repeats)`);
    });
    const span = Date.parse(log[0].at) - Date.parse(first.at);
    assert.ok(span >= 600_000 && span <= 600_000 + 36_000, `gave up at retryMaxAge, after ${span} ms`);
    assert.equal(log[0].next_attempt_at, null, 'no attempt after the last one');
    assert.ok(hook.health.next_attempt_at === null, 'nothing scheduled');

    const view = await consumerOf(g, c.id);
    assert.equal(view.mode, 'pull');
    assert.equal(view.cursor, c.cursor, 'the stuck event was not acked');
    assert.equal(view.webhook.enabled, false);

    // Nothing more is attempted.
    const attempts = rx.requests.length;
    await clock.advance(3_600_000);
    await settle();
    assert.equal(rx.requests.length, attempts);

    // Nothing dropped: the stuck event, the later ones, the failing alert (3 failures), then the disabled notice.
    const polled = await pollOnce(g, c.key);
    assert.deepEqual(idsOf(polled.events.slice(0, 3)), [stuck.id, ...idsOf(later)]);
    assert.deepEqual(polled.events.slice(3).map((e: any) => e.type), ['pollgate.webhook.failing', 'pollgate.webhook.disabled']);
    const failing = polled.events[3];
    const notice = polled.events[4];
    assert.equal(notice.type, 'pollgate.webhook.disabled');
    assert.equal(notice.tenant, tenant);
    assert.ok(notice.cursor > later[1].cursor, 'appended after the stuck event and the later ones');
    assert.equal(notice.data.consumer_id, c.id);
    assert.equal(notice.data.event_id, stuck.id);

    // Re-enabling resumes at the cursor; the receiver now gets everything, the notice too.
    rx.behave(ok);
    const on = await putHook(g, c.id, { url: rx.url, enabled: true });
    assert.equal(on.status, 200, JSON.stringify(on.body));
    assert.equal((await webhookOf(g, c.id)).disabled_reason, null);
    await waitForCursor(g, c.id, notice.cursor);
    const after = rx.requests.slice(attempts);
    assert.deepEqual(hookIds(after), [stuck.id, ...idsOf(later), failing.id, notice.id]);
    for (const req of after) verify(secret, req);
  });
});

describe('retry state and the toggle', () => {
  test('retry state survives a restart: the next attempt keeps its time and its number', async (t) => {
    const dataDir = tempDir('pollgate-push-restart-');
    const config = { allowPrivateTargets: true, retryScheduleMs: SCHEDULE };
    const clock = new FakeClock();
    let g = await startGateway({ dataDir, clock, config });
    t.after(async () => {
      await g.close();
      rmSync(dataDir, { recursive: true, force: true });
    });
    const rx = await receiverFor(t, () => ({ status: 500 }));
    const tenant = freshTenant('restart');
    const c = await g.createConsumer({ tenant });
    const secret: string = (await putHook(g, c.id, { url: rx.url })).body.secret;
    const [e] = await publishMany(g, tenant, 1);
    const [a1] = await waitForDeliveries(g, c.id, 1);

    await g.close();
    const clock2 = new FakeClock(clock.now());
    g = await startGateway({ dataDir, clock: clock2, config });
    await settle();
    assert.equal(rx.requests.length, 1, 'no attempt before next_attempt_at after a restart');
    assert.equal((await webhookOf(g, c.id)).health.next_attempt_at, a1.next_attempt_at);

    rx.behave(ok);
    await advanceTo(clock2, a1.next_attempt_at);
    await waitForCursor(g, c.id, e.cursor);
    const [a2] = await deliveriesOf(g, c.id);
    assert.equal(a2.attempt, 2, 'attempts keep counting across the restart');
    assert.equal(a2.status, 200);
    assert.deepEqual(hookIds(rx.requests), [e.id, e.id]);
    assert.deepEqual(verify(secret, rx.requests[1]!), e);
  });

  test('paused, a due retry does not run; resumed, it runs at once', async (t) => {
    const clock = new FakeClock();
    const g = await gatewayFor(t, { clock, config: { retryScheduleMs: SCHEDULE } });
    const rx = await receiverFor(t, () => ({ status: 500 }));
    const tenant = freshTenant('pause-retry');
    const c = await g.createConsumer({ tenant });
    await putHook(g, c.id, { url: rx.url });
    const [e] = await publishMany(g, tenant, 1);
    await waitForDeliveries(g, c.id, 1);

    assert.equal((await g.json('/v1/bridge', { method: 'PUT', body: { enabled: false } })).status, 200);
    await clock.advance(10 * 60_000);
    await settle();
    assert.equal(rx.requests.length, 1, 'the retry waits for the bridge');
    assert.equal((await deliveriesOf(g, c.id)).length, 1);

    rx.behave(ok);
    assert.equal((await g.json('/v1/bridge', { method: 'PUT', body: { enabled: true } })).status, 200);
    await waitForCursor(g, c.id, e.cursor);
    assert.deepEqual(hookIds(rx.requests), [e.id, e.id]);
  });
});

describe('GET /v1/consumers/:id/deliveries', () => {
  test('newest first, every field, limit honoured, 400 on a bad limit', async (t) => {
    const clock = new FakeClock();
    const g = await gatewayFor(t, { clock, config: { retryScheduleMs: SCHEDULE } });
    let fail = true;
    const rx = await receiverFor(t, () => (fail ? { status: 500 } : { status: 200 }));
    const tenant = freshTenant('deliveries');
    const c = await g.createConsumer({ tenant });
    await putHook(g, c.id, { url: rx.url });

    assert.deepEqual(await deliveriesOf(g, c.id), [], 'empty before any attempt');
    const evs = await publishMany(g, tenant, 3);
    const [a1] = await waitForDeliveries(g, c.id, 1);
    fail = false;
    await advanceTo(clock, a1.next_attempt_at);
    await waitForCursor(g, c.id, evs[2].cursor);

    const all = await waitForDeliveries(g, c.id, 4);
    assert.equal(all.length, 4);
    assert.deepEqual(all.map((d) => [d.event_id, d.attempt, d.status, d.error]), [
      [evs[2].id, 1, 200, null],
      [evs[1].id, 1, 200, null],
      [evs[0].id, 2, 200, null],
      [evs[0].id, 1, 500, 'http_status'],
    ]);
    for (const d of all) {
      for (const k of ['event_id', 'cursor', 'attempt', 'status', 'error', 'duration_ms', 'at', 'next_attempt_at']) {
        assert.ok(k in d, `field ${k} in ${JSON.stringify(d)}`);
      }
      assert.match(d.at, ISO_MS);
      assert.ok(Number.isInteger(d.duration_ms) && d.duration_ms >= 0);
      assert.equal(typeof d.cursor, 'string');
    }
    assert.deepEqual(all.map((d) => d.cursor), [evs[2].cursor, evs[1].cursor, evs[0].cursor, evs[0].cursor]);
    assert.match(all[3].next_attempt_at, ISO_MS);
    assert.equal(all[0].next_attempt_at, null);
    assert.ok(Date.parse(all[0].at) >= Date.parse(all[3].at), 'newest first');

    const two = await g.json(`/v1/consumers/${c.id}/deliveries?limit=2`);
    assert.equal(two.status, 200);
    assert.deepEqual(two.body.deliveries, all.slice(0, 2));
    const one = await g.json(`/v1/consumers/${c.id}/deliveries?limit=1`);
    assert.deepEqual(one.body.deliveries, all.slice(0, 1));

    for (const bad of ['0', '-1', '1001', 'abc', '1.5', '']) {
      assertErrorShape(await g.json(`/v1/consumers/${c.id}/deliveries?limit=${bad}`), 400, 'invalid_request', 'limit');
    }
  });
});

describe('isolation', () => {
  test("a hanging receiver does not delay another consumer's deliveries", async (t) => {
    const g = await gatewayFor(t);
    const slow = await receiverFor(t, () => ({ hang: true }));
    const fast = await receiverFor(t);
    const tenant = freshTenant('iso');
    const cs = await g.createConsumer({ tenant, name: 'slow' });
    const cf = await g.createConsumer({ tenant, name: 'fast' });
    assert.equal((await putHook(g, cs.id, { url: slow.url, timeout_ms: 2_000 })).status, 201);
    assert.equal((await putHook(g, cf.id, { url: fast.url })).status, 201);

    await publishMany(g, tenant, 1);
    await slow.waitForCount(1); // the slow consumer is now stuck for up to 2 s
    const stuckSince = Date.now();
    await fast.waitForCount(1);

    const started = Date.now();
    const evs = await publishMany(g, tenant, 5, 'ticket.created', 2);
    await fast.waitForCount(6, 1_500);
    const took = Date.now() - started;
    const slowAttempts = await deliveriesOf(g, cs.id);
    assert.ok(took < 1_000, `the fast receiver got its events in ${took} ms`);
    assert.deepEqual(hookIds(fast.requests.slice(1)), idsOf(evs));
    if (Date.now() - stuckSince < 1_800) {
      assert.equal(slowAttempts.length, 0, 'the slow consumer is still stuck on its first attempt');
      assert.equal(slow.requests.length, 1);
    }
  });
});

describe('global bridge toggle', () => {
  test('pause stops every attempt and cursor, survives a restart; resume continues exactly where it stopped', async (t) => {
    const dataDir = tempDir('pollgate-push-toggle-');
    let g = await startGateway({ dataDir, config: { allowPrivateTargets: true } });
    t.after(async () => {
      await g.close();
      rmSync(dataDir, { recursive: true, force: true });
    });
    const rx = await receiverFor(t, () => ({ status: 200, delayMs: 20 }));
    const tenant = freshTenant('toggle');
    const c = await g.createConsumer({ tenant });
    const watcher = await g.createConsumer({ tenant, name: 'watcher' });

    const state = await g.json('/v1/bridge');
    assert.equal(state.status, 200);
    assert.equal(state.body.enabled, true);

    const put = await putHook(g, c.id, { url: rx.url });
    assert.equal(put.status, 201);
    const secret: string = put.body.secret;
    const early = await publishMany(g, tenant, 30, 'ticket.created', 1);
    await rx.waitForCount(5);

    // Pause while deliveries are flowing.
    const paused = await g.json('/v1/bridge', { method: 'PUT', body: { enabled: false } });
    const answeredAt = Date.now();
    assert.equal(paused.status, 200, JSON.stringify(paused.body));
    assert.equal(paused.body.enabled, false);
    assert.equal((await g.json('/v1/bridge')).body.enabled, false);

    // An attempt already in flight may finish: wait until the last request that arrived has
    // been answered and its cursor committed.
    await sleep(200);
    await waitUntil(
      async () => (await consumerOf(g, c.id)).cursor === JSON.parse(rx.requests[rx.requests.length - 1]!.body).cursor,
      5_000,
      () => 'the attempt in flight at the pause to settle',
    );
    const countAtPause = rx.requests.length;
    const cursorAtPause = (await consumerOf(g, c.id)).cursor;
    assert.ok(
      rx.requests.filter((r) => r.at > answeredAt + 5).length <= 1,
      'at most the attempt already in flight arrives after the answer',
    );
    const paused2 = await publishMany(g, tenant, 5, 'ticket.created', 31);
    await sleep(500);
    assert.equal(rx.requests.length, countAtPause, 'no attempt starts while paused');
    const viewPaused = await consumerOf(g, c.id);
    assert.equal(viewPaused.cursor, cursorAtPause, 'no cursor moves while paused');
    assert.ok(viewPaused.lag >= 5, 'the log keeps growing');
    assert.equal((await pollOnce(g, watcher.key)).events.length, 35, 'the log has every event');

    // Restart on the same data directory: still paused.
    await g.close();
    g = await startGateway({ dataDir, config: { allowPrivateTargets: true } });
    assert.equal((await g.json('/v1/bridge')).body.enabled, false, 'the pause survives a restart');
    const paused3 = await publishMany(g, tenant, 3, 'ticket.created', 36);
    await sleep(500);
    assert.equal(rx.requests.length, countAtPause, 'nothing is pushed after the restart either');
    assert.equal((await consumerOf(g, c.id)).cursor, cursorAtPause);
    assert.equal((await consumerOf(g, c.id)).mode, 'push');

    // Bad input and the wrong key.
    for (const body of [{}, { enabled: 'yes' }, { enabled: 1 }, { enabled: true, extra: 1 }, null, []]) {
      assertErrorShape(await g.json('/v1/bridge', { method: 'PUT', body }), 400);
    }
    assertErrorShape(await g.json('/v1/bridge', { method: 'PUT', raw: 'enabled=true', headers: { 'content-type': 'application/json' } }), 400);
    assertErrorShape(await g.json('/v1/bridge', { key: c.key }), 403, 'forbidden');
    assertErrorShape(await g.json('/v1/bridge', { method: 'PUT', body: { enabled: true }, key: c.key }), 403, 'forbidden');
    assert.equal((await g.json('/v1/bridge')).body.enabled, false, 'still paused after the refused calls');

    // Resume: exactly where it stopped, no gap, no repeat.
    const resumed = await g.json('/v1/bridge', { method: 'PUT', body: { enabled: true } });
    assert.equal(resumed.status, 200);
    assert.equal(resumed.body.enabled, true);
    const all = [...early, ...paused2, ...paused3];
    await waitForCursor(g, c.id, all[all.length - 1].cursor, 15_000);
    await settle();
    const ids = hookIds(rx.requests);
    assert.deepEqual([...new Set(ids)], idsOf(all), 'every event, in log order');
    const stopIndex = all.findIndex((e) => e.cursor === cursorAtPause);
    assert.deepEqual(
      ids.slice(countAtPause),
      idsOf(all.slice(stopIndex + 1)),
      'resumed right after the cursor it stopped at',
    );
    assert.equal(ids.length, new Set(ids).size, 'nothing repeated: nothing was in flight at the restart');
    for (const req of rx.requests) verify(secret, req);
  });
});

describe('SSRF guard (private targets not allowed)', () => {
  test('loopback, private, link-local and metadata URLs are refused with target_not_allowed', async (t) => {
    const g = await gatewayFor(t, { clock: new FakeClock(), config: { allowPrivateTargets: false } });
    const rx = await receiverFor(t);
    const c = await g.createConsumer({ tenant: freshTenant('ssrf') });
    const p = rx.port;
    const urls = [
      `http://127.0.0.1:${p}/`,
      `http://localhost:${p}/`,
      `http://LOCALHOST.:${p}/`,
      `http://foo.localhost:${p}/`,
      `http://[::1]:${p}/`,
      `http://127.1:${p}/`,
      `http://2130706433:${p}/`,
      `http://[::ffff:127.0.0.1]:${p}/`,
      'http://169.254.169.254/latest/meta-data/',
      'http://10.0.0.1/',
      'http://172.16.0.1/',
      'http://192.168.1.1/',
      'http://100.64.0.1/',
      'http://[::ffff:10.0.0.1]/',
      'http://[fd00::1]/',
      'http://[fe80::1]/',
      'http://[::]/',
      'http://0.0.0.0/',
      'https://0.0.0.0:8443/',
    ];
    for (const url of urls) {
      for (const enabled of [true, false]) {
        const r = await putHook(g, c.id, { url, enabled });
        assert.equal(r.status, 400, `${url}: ${JSON.stringify(r.body)}`);
        assertErrorShape(r, 400, 'target_not_allowed');
        assert.match(r.body.error.message, /POLLGATE_ALLOW_PRIVATE_TARGETS=1/, 'the refusal says how to allow it');
      }
    }
    assertErrorShape(await g.json(`/v1/consumers/${c.id}/webhook`), 404, 'not_found');
    assert.equal((await consumerOf(g, c.id)).mode, 'pull');
    await g.publish({ tenant: c.tenant, type: 'a.b', data: null });
    await settle();
    assert.equal(rx.requests.length, 0, 'the local receiver was never contacted');
  });

  test('a name that resolves to a private address at configure time is refused', async (t) => {
    const calls: string[] = [];
    const resolve: Resolver = async (host) => {
      calls.push(host);
      return [{ address: '10.0.0.5', family: 4 }];
    };
    const g = await gatewayFor(t, { clock: new FakeClock(), config: { allowPrivateTargets: false }, resolve });
    const c = await g.createConsumer({ tenant: freshTenant('ssrf-name') });
    assertErrorShape(await putHook(g, c.id, { url: 'http://internal.test/' }), 400, 'target_not_allowed');
    assert.deepEqual(calls, ['internal.test']);
  });

  test('DNS rebinding: a name public at configure time and loopback at connect time is never contacted', async (t) => {
    const rx = await receiverFor(t);
    const calls: Array<{ host: string; answer: string; duringPut: boolean }> = [];
    let duringPut = false;
    // Public (documentation) address only for the very first lookup, and only while the PUT
    // is being answered (configure time); every other lookup gets loopback. So a connection to
    // 203.0.113.10 can never be attempted, whatever the bridge does with the answers.
    const resolve: Resolver = async (host): Promise<LookupAddress[]> => {
      const answer = calls.length === 0 && duringPut ? '203.0.113.10' : '127.0.0.1';
      calls.push({ host, answer, duringPut });
      return [{ address: answer, family: 4 }];
    };
    const clock = new FakeClock();
    const g = await gatewayFor(t, { clock, config: { allowPrivateTargets: false, retryScheduleMs: SCHEDULE }, resolve });
    const tenant = freshTenant('rebind');
    const c = await g.createConsumer({ tenant });

    duringPut = true;
    const put = await putHook(g, c.id, { url: `http://rebind.test:${rx.port}/` });
    duringPut = false;
    assert.equal(put.status, 201, JSON.stringify(put.body));
    assert.ok(calls.length >= 1 && calls[0]!.duringPut && calls[0]!.answer === '203.0.113.10', `configure-time lookup: ${JSON.stringify(calls)}`);

    const [e] = await publishMany(g, tenant, 1);
    const [a1] = await waitForDeliveries(g, c.id, 1);
    assert.equal(a1.event_id, e.id);
    assert.equal(a1.error, 'target_not_allowed', JSON.stringify(a1));
    assert.equal(a1.status, null);
    assert.ok(calls.length >= 2, 'resolved again at connect time');
    assert.ok(calls.slice(1).every((x) => x.answer === '127.0.0.1'));

    // A retry is refused the same way.
    await advanceTo(clock, a1.next_attempt_at);
    const log = await waitForDeliveries(g, c.id, 2);
    assert.equal(log[0].error, 'target_not_allowed');
    await settle();
    assert.equal(rx.requests.length, 0, 'the local receiver was never contacted');
    assert.equal((await consumerOf(g, c.id)).cursor, c.cursor);
  });
});
