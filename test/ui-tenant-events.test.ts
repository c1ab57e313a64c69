/**
 * GET /v1/tenants/:tenant/events: the admin's view of one tenant's log, newest first, for the
 * ops page's event browser (src/http/tenant-events.ts). Real gateways on both engines.
 *
 * Paging backwards with `before` neither skips nor repeats an event; `type` uses the consumer
 * filters' patterns; one request examines a bounded number of events; `at` names one event;
 * reading moves no cursor; every bad input is a 400 naming its field, an unknown tenant a 404.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_KEY, consumerOf, gatewayFor } from './support/gateway.ts';
import { FakeClock } from './support/fake-clock.ts';
import { SCAN_BUDGET } from '../src/http/tenant-events.ts';

const DAY = 86_400_000;

describe('GET /v1/tenants/:tenant/events', () => {
  test('newest first; `before` pages back without skipping or repeating; next is null at the start of the log', async (t) => {
    const g = await gatewayFor(t);
    const published = (await g.publish(Array.from({ length: 23 }, (_, i) => ({ tenant: 'acme', type: 'ticket.created', data: { i } })))).events;
    await g.publish({ tenant: 'other', type: 'ticket.created', data: { other: true } });

    const seen: any[] = [];
    let before: string | null = null;
    let pages = 0;
    do {
      const r: any = await g.json(`/v1/tenants/acme/events?limit=10${before ? `&before=${before}` : ''}`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.ok(r.body.events.length <= 10);
      assert.equal(r.body.head, published[22].cursor, 'head: the newest event');
      assert.equal(r.body.earliest, 't0000000000000000', 'nothing trimmed');
      seen.push(...r.body.events);
      before = r.body.next;
      pages += 1;
    } while (before !== null);
    assert.equal(pages, 3);
    assert.deepEqual(seen, [...published].reverse(), 'every event once, newest first, as published');
    assert.ok(seen.every((e) => e.tenant === 'acme'), 'only the tenant asked for');

    // The page that ends exactly at the first event says there is nothing older.
    const last = await g.json(`/v1/tenants/acme/events?limit=3&before=${published[3]!.cursor}`);
    assert.deepEqual(last.body.events.map((e: any) => e.data.i), [2, 1, 0]);
    assert.equal(last.body.next, null);
    const first = await g.json('/v1/tenants/acme/events');
    assert.equal(first.body.events.length, 23, 'default limit 50');
  });

  test('`type` takes the patterns of consumer filters, several comma-separated', async (t) => {
    const g = await gatewayFor(t);
    await g.publish(
      ['ticket.created', 'ticket.closed', 'ticket.note.added', 'message.create.request.channel.web', 'billing.paid', 'ticket.created'].map((type, i) => ({
        tenant: 'acme',
        type,
        data: { i },
      })),
    );
    const types = async (q: string) => {
      const r = await g.json(`/v1/tenants/acme/events?type=${encodeURIComponent(q)}`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body.events.map((e: any) => `${e.data.i}:${e.type}`);
    };
    assert.deepEqual(await types('ticket.*'), ['5:ticket.created', '1:ticket.closed', '0:ticket.created'], '* is one segment');
    assert.deepEqual(await types('ticket.**'), ['5:ticket.created', '2:ticket.note.added', '1:ticket.closed', '0:ticket.created']);
    assert.deepEqual(await types('billing.paid, message.create.**'), ['4:billing.paid', '3:message.create.request.channel.web']);
    assert.deepEqual(await types('nothing.here'), []);
    assert.deepEqual(await types(''), ['5:ticket.created', '4:billing.paid', '3:message.create.request.channel.web', '2:ticket.note.added', '1:ticket.closed', '0:ticket.created'], 'empty: all types');

    // Paging with a filter: the second page goes on behind the first one's last match.
    const p1 = await g.json('/v1/tenants/acme/events?type=ticket.*&limit=2');
    assert.deepEqual(p1.body.events.map((e: any) => e.data.i), [5, 1]);
    const p2 = await g.json(`/v1/tenants/acme/events?type=ticket.*&limit=2&before=${p1.body.next}`);
    assert.deepEqual(p2.body.events.map((e: any) => e.data.i), [0]);
    assert.equal(p2.body.next, null);
  });

  test('one request examines a bounded stretch of the log: a rare type comes back short, with a next to go on from', { timeout: 120_000 }, async (t) => {
    const g = await gatewayFor(t);
    await g.publish({ tenant: 'acme', type: 'rare.thing', data: { first: true } });
    const noise = SCAN_BUDGET + 700;
    for (let done = 0; done < noise; done += 1000) {
      await g.publish(Array.from({ length: Math.min(1000, noise - done) }, () => ({ tenant: 'acme', type: 'common.thing', data: null })));
    }
    await g.publish({ tenant: 'acme', type: 'rare.thing', data: { last: true } });

    const r1 = await g.json('/v1/tenants/acme/events?type=rare.*&limit=10');
    assert.equal(r1.status, 200);
    assert.deepEqual(r1.body.events.map((e: any) => e.data), [{ last: true }], 'the newest match');
    assert.notEqual(r1.body.next, null, 'the scan stopped before the start of the log');
    let next = r1.body.next;
    const found: any[] = [];
    let requests = 0;
    while (next !== null) {
      const r = await g.json(`/v1/tenants/acme/events?type=rare.*&limit=10&before=${next}`);
      found.push(...r.body.events.map((e: any) => e.data));
      next = r.body.next;
      requests += 1;
      assert.ok(requests < 5, 'each request moves back by the scan budget');
    }
    assert.deepEqual(found, [{ first: true }], 'the older match is found by going on');
  });

  test('`at` names one event by its cursor; reading moves no cursor and wakes no one', async (t) => {
    const g = await gatewayFor(t);
    const c = await g.createConsumer({ tenant: 'acme', start: 'earliest' });
    const [a, b] = (await g.publish([
      { tenant: 'acme', type: 'ticket.created', data: { text: 'héllo <b>&amp;</b> ✓', nested: { list: [1, null, true] } } },
      { tenant: 'acme', type: 'ticket.closed', data: null },
    ])).events;

    const one = await g.json(`/v1/tenants/acme/events?at=${a.cursor}`);
    assert.equal(one.status, 200);
    assert.deepEqual(one.body.events, [a], 'the envelope, data exactly as published');
    assert.equal(one.body.next, null);
    assert.deepEqual((await g.json(`/v1/tenants/acme/events?at=${b.cursor}&type=ticket.created`)).body.events, [], 'a type that does not match: nothing');
    assert.deepEqual((await g.json('/v1/tenants/acme/events?at=t0000000000000000')).body.events, [], 'the position before the first event holds none');

    const view = await consumerOf(g, c.id);
    assert.equal(view.cursor, c.cursor, 'the consumer’s cursor did not move');
    assert.equal(view.lag, 2);
    const polled = await g.json('/v1/events?wait=0', { key: c.key });
    assert.equal(polled.body.events.length, 2, 'the consumer still gets both');
  });

  test('retention: the browser starts at the trim mark and says where it is', async (t) => {
    const clock = new FakeClock();
    const g = await gatewayFor(t, { clock, config: { retentionMs: DAY } });
    await g.publish([1, 2, 3].map((i) => ({ tenant: 'acme', type: 'old', data: { i } })));
    await clock.advance(2 * DAY);
    await g.publish({ tenant: 'acme', type: 'new', data: { i: 4 } });
    // Retention runs on the clock: move it on until the old events are gone.
    let r: any;
    for (let i = 0; i < 100; i++) {
      await clock.advance(31_000);
      r = await g.json('/v1/tenants/acme/events');
      if (r.body.earliest !== 't0000000000000000') break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(r.body.earliest, 't0000000000000003', 'three events trimmed');
    assert.deepEqual(r.body.events.map((e: any) => e.data.i), [4]);
    assert.equal(r.body.next, null, 'nothing older is retained');
    const at = await g.json('/v1/tenants/acme/events?at=t0000000000000002');
    assert.equal(at.status, 200);
    assert.deepEqual(at.body.events, [], 'a trimmed event is simply not there');
  });

  test('bad input is a 400 naming the field; an unknown tenant 404; the admin key only', async (t) => {
    const g = await gatewayFor(t);
    const [e] = (await g.publish([{ tenant: 'acme', type: 'a.b', data: 1 }])).events;
    const c = await g.createConsumer({ tenant: 'acme' });
    const cases: Array<[string, number, string, string?]> = [
      ['/v1/tenants/acme/events?limit=0', 400, 'limit'],
      ['/v1/tenants/acme/events?limit=101', 400, 'limit'],
      ['/v1/tenants/acme/events?limit=ten', 400, 'limit'],
      ['/v1/tenants/acme/events?type=ticket..x', 400, 'type'],
      ['/v1/tenants/acme/events?type=a.**.b', 400, 'type'],
      ['/v1/tenants/acme/events?before=nope', 400, 'before', 'invalid_cursor'],
      ['/v1/tenants/acme/events?before=t0000000000000009', 400, 'before', 'invalid_cursor'],
      ['/v1/tenants/acme/events?at=t0000000000000009', 400, 'at', 'invalid_cursor'],
      [`/v1/tenants/acme/events?at=${e.cursor}&before=${e.cursor}`, 400, 'at'],
      ['/v1/tenants/no%20such/events', 400, 'tenant'],
      [`/v1/tenants/${'x'.repeat(65)}/events`, 400, 'tenant'],
    ];
    for (const [path, status, field, code] of cases) {
      const r = await g.json(path);
      assert.equal(r.status, status, `${path}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.field, field, `${path} names ${field}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, code ?? 'invalid_request', path);
    }
    const unknown = await g.json('/v1/tenants/nobody/events');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'not_found');
    assert.match(unknown.body.error.message, /nothing was ever published for tenant "nobody"/);
    assert.equal((await g.json('/v1/tenants/acme/events', { key: c.key })).status, 403, 'a consumer key cannot browse, not even its own tenant');
    assert.equal((await g.json('/v1/tenants/acme/events', { key: null })).status, 401);
    assert.equal((await g.json('/v1/tenants/acme/events', { key: `${ADMIN_KEY}x` })).status, 401);
  });
});
