/**
 * HTTP contract tests for the consumer poll path (SPEC: Polling (consumer key), Filters,
 * Errors): GET /v1/events, POST /v1/ack, GET /v1/consumer, long-poll holding and waking,
 * one held poll per consumer, client disconnects, consumer changes under a held poll, and a
 * graceful stop. Against real gateways on loopback ports over real SQLite files.
 *
 * Most tests run on a gateway driven by a FakeClock: a held poll's `wait` only runs out when
 * the test advances that clock, so "is it still held?" is deterministic and long waits cost
 * nothing. Tests that are about real time (wake latency, wait=0.2 expiry) use a gateway on
 * the system clock.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startGateway, type TestGateway } from './support/gateway.ts';
import { FakeClock } from './support/fake-clock.ts';
import { assertError } from './support/assertions.ts';
import { sleep, track, waitFor, within } from './support/wait.ts';

const ZERO = 't0000000000000000';
/** A well-formed cursor far past any head these tests reach. */
const FAR_FUTURE = '0000009999999999';

let tenantSeq = 0;
/** A tenant no other test uses. */
const freshTenant = (label = 't') => `poll-${label}-${++tenantSeq}`;

interface Answer {
  status: number;
  body: any;
  headers: Headers;
  /** Milliseconds from sending the request to having read the whole answer. */
  ms: number;
}

/** GET /v1/events with a consumer key; query without the leading '?'. */
async function poll(g: TestGateway, key: string, query = '', signal?: AbortSignal): Promise<Answer> {
  const start = performance.now();
  const r = await g.json(`/v1/events${query ? `?${query}` : ''}`, { key, ...(signal ? { signal } : {}) });
  return { ...r, ms: performance.now() - start };
}

/** GET /v1/consumer with the consumer's own key. */
async function me(g: TestGateway, key: string): Promise<any> {
  const r = await g.json('/v1/consumer', { key });
  assert.equal(r.status, 200, `GET /v1/consumer: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** Same view through the admin key (works after the consumer's key changed). */
async function adminView(g: TestGateway, id: string): Promise<any> {
  const r = await g.json(`/v1/consumers/${id}`);
  assert.equal(r.status, 200, `GET /v1/consumers/${id}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** Waits until the gateway reports a poll of this consumer as held. */
async function untilHeld(g: TestGateway, id: string): Promise<void> {
  await waitFor(async () => (await adminView(g, id)).polling === true, 3000, `a held poll for ${id}`);
}

async function untilNotHeld(g: TestGateway, id: string): Promise<void> {
  await waitFor(async () => (await adminView(g, id)).polling === false, 3000, `no held poll for ${id}`);
}

async function publishOne(g: TestGateway, tenant: string, type = 'ticket.created', data: unknown = null): Promise<any> {
  return g.publish({ tenant, type, data });
}

async function publishMany(g: TestGateway, tenant: string, n: number, type = 'ticket.created'): Promise<any[]> {
  const r = await g.publish(Array.from({ length: n }, (_, i) => ({ tenant, type, data: { i } })));
  return r.events;
}

/** A 200 poll answer with exactly these events (by id, in order). */
function assertEvents(r: Answer, ids: string[], more: boolean): void {
  assert.equal(r.status, 200, `poll: ${r.status} ${JSON.stringify(r.body)}`);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
  assert.deepEqual(Object.keys(r.body).sort(), ['cursor', 'events', 'more']);
  assert.deepEqual(
    r.body.events.map((e: any) => e.id),
    ids,
    `events of ${JSON.stringify(r.body)}`,
  );
  assert.equal(r.body.more, more, `more of ${JSON.stringify(r.body)}`);
  if (ids.length > 0) {
    assert.equal(r.body.cursor, r.body.events[r.body.events.length - 1].cursor, 'cursor is the last returned event\'s');
  }
}

/** A 200 poll answer with no events; answers its cursor. */
function assertEmpty(r: Answer): string {
  assert.equal(r.status, 200, `poll: ${r.status} ${JSON.stringify(r.body)}`);
  assert.deepEqual(r.body.events, [], JSON.stringify(r.body));
  assert.equal(r.body.more, false);
  assert.equal(typeof r.body.cursor, 'string');
  assert.ok(r.body.cursor.length > 0);
  return r.body.cursor;
}

const ids = (events: any[]) => events.map((e) => e.id as string);

// ---------------------------------------------------------------------------

describe('poll (FakeClock gateway: held polls expire only when the test advances time)', () => {
  let g: TestGateway;
  const clock = new FakeClock();
  before(async () => {
    g = await startGateway({ clock });
  });
  after(async () => {
    await g?.close();
  });

  describe('reading', () => {
    test('answers at once when events exist; pages by limit with cursor and more', async () => {
      const tenant = freshTenant('page');
      const c = await g.createConsumer({ tenant });
      const evs = await publishMany(g, tenant, 5);

      // wait=60 on a fake clock would hold forever: an answer proves it did not hold.
      const p1 = await within(poll(g, c.key, 'wait=60&limit=2'), 2000, 'first page');
      assertEvents(p1, ids(evs.slice(0, 2)), true);
      assert.equal(p1.body.cursor, evs[1].cursor);

      const p2 = await within(poll(g, c.key, `wait=60&limit=2&after=${p1.body.cursor}`), 2000, 'second page');
      assertEvents(p2, ids(evs.slice(2, 4)), true);

      const p3 = await within(poll(g, c.key, `wait=60&limit=2&after=${p2.body.cursor}`), 2000, 'last page');
      assertEvents(p3, ids(evs.slice(4)), false);
      assert.equal(p3.body.cursor, evs[4].cursor);

      // The envelope is the one publishing answered.
      assert.deepEqual(p1.body.events[0], evs[0]);
    });

    test('more is false when exactly limit matching events remain', async () => {
      const tenant = freshTenant('exact');
      const c = await g.createConsumer({ tenant });
      const evs = await publishMany(g, tenant, 4);
      const p1 = await poll(g, c.key, 'wait=0&limit=2');
      assertEvents(p1, ids(evs.slice(0, 2)), true);
      const p2 = await poll(g, c.key, `wait=0&limit=2&after=${p1.body.cursor}`);
      assertEvents(p2, ids(evs.slice(2)), false);
    });

    test('more counts only matching events: trailing non-matching events do not make it true', async () => {
      const tenant = freshTenant('more-filter');
      const c = await g.createConsumer({ tenant, filter: { types: ['ticket.*'] } });
      const r = await g.publish([
        { tenant, type: 'ticket.created', data: 1 },
        { tenant, type: 'ticket.closed', data: 2 },
        { tenant, type: 'note.added', data: 3 },
        { tenant, type: 'note.added', data: 4 },
      ]);
      const p = await poll(g, c.key, 'wait=0&limit=2');
      assertEvents(p, ids(r.events.slice(0, 2)), false);
    });

    test('default limit is 100', async () => {
      const tenant = freshTenant('deflimit');
      const c = await g.createConsumer({ tenant });
      const evs = await publishMany(g, tenant, 101);
      const p = await poll(g, c.key, 'wait=0');
      assertEvents(p, ids(evs.slice(0, 100)), true);
      const rest = await poll(g, c.key, `wait=0&after=${p.body.cursor}`);
      assertEvents(rest, [evs[100].id], false);
    });

    test('limit=1000 and limit=1 are accepted', async () => {
      const tenant = freshTenant('limits-ok');
      const c = await g.createConsumer({ tenant });
      const evs = await publishMany(g, tenant, 3);
      assertEvents(await poll(g, c.key, 'wait=0&limit=1000'), ids(evs), false);
      assertEvents(await poll(g, c.key, 'wait=0&limit=1'), [evs[0].id], true);
    });

    test('only the consumer\'s own tenant is read', async () => {
      const tenant = freshTenant('own');
      const other = freshTenant('other');
      const c = await g.createConsumer({ tenant });
      await publishMany(g, other, 3);
      const mine = await publishOne(g, tenant);
      await publishMany(g, other, 2);
      const p = await poll(g, c.key, 'wait=0');
      assertEvents(p, [mine.id], false);
      for (const e of p.body.events) assert.equal(e.tenant, tenant);
    });

    test('the admin key is not a consumer: 403 on GET /v1/events, /v1/ack, /v1/consumer', async () => {
      assertError(await g.json('/v1/events?wait=0'), 403, 'forbidden');
      assertError(await g.json('/v1/ack', { body: { cursor: ZERO } }), 403, 'forbidden');
      assertError(await g.json('/v1/consumer'), 403, 'forbidden');
    });

    test('a consumer that reads a long non-matching backlog by following cursor reaches the match', async () => {
      // More than one scan's worth of non-matching events, then one match; a client that
      // follows `cursor` while `more` is true must get there without skipping it.
      const tenant = freshTenant('backlog');
      const c = await g.createConsumer({ tenant, filter: { types: ['wanted'] } });
      for (let i = 0; i < 11; i++) {
        await g.publish(Array.from({ length: 1000 }, () => ({ tenant, type: 'noise', data: null })));
      }
      const wanted = await publishOne(g, tenant, 'wanted');
      let after: string | undefined;
      const got: any[] = [];
      for (let i = 0; i < 20 && got.length === 0; i++) {
        const p = await within(poll(g, c.key, `wait=60${after ? `&after=${after}` : ''}`), 5000, 'backlog page');
        assert.equal(p.status, 200, JSON.stringify(p.body));
        got.push(...p.body.events);
        if (p.body.events.length === 0) assert.equal(p.body.more, true, 'an early-stopped scan says more');
        after = p.body.cursor;
      }
      assert.deepEqual(ids(got), [wanted.id]);
    });
  });

  describe('acking', () => {
    test('reading does not commit: the same events come again until acked', async () => {
      const tenant = freshTenant('nocommit');
      const c = await g.createConsumer({ tenant });
      const before = (await me(g, c.key)).cursor;
      const evs = await publishMany(g, tenant, 3);
      const a = await poll(g, c.key, 'wait=0');
      const b = await poll(g, c.key, 'wait=0');
      assertEvents(a, ids(evs), false);
      assert.deepEqual(b.body, a.body);
      const view = await me(g, c.key);
      assert.equal(view.cursor, before, 'polling did not move the committed cursor');
      assert.equal(view.lag, 3);
    });

    test('ack=C in the poll commits first: the poll reads after C and the cursor is C', async () => {
      const tenant = freshTenant('ackparam');
      const c = await g.createConsumer({ tenant });
      const evs = await publishMany(g, tenant, 4);
      const p = await poll(g, c.key, `wait=0&ack=${evs[1].cursor}`);
      assertEvents(p, ids(evs.slice(2)), false);
      const view = await me(g, c.key);
      assert.equal(view.cursor, evs[1].cursor);
      assert.equal(view.lag, 2);
      // And the next plain poll starts after C too.
      assertEvents(await poll(g, c.key, 'wait=0'), ids(evs.slice(2)), false);
    });

    test('ack=C on a poll that then holds is committed before holding, and stays committed if superseded', async () => {
      const tenant = freshTenant('ackhold');
      const c = await g.createConsumer({ tenant });
      const evs = await publishMany(g, tenant, 2);
      const held = track(poll(g, c.key, `wait=60&ack=${evs[1].cursor}`));
      await untilHeld(g, c.id);
      const view = await me(g, c.key);
      assert.equal(view.cursor, evs[1].cursor, 'committed while the poll is held');
      assert.equal(view.lag, 0);
      assertEmpty(await poll(g, c.key, 'wait=0'));
      assertError(await within(held.promise, 2000, 'held poll'), 409, 'superseded');
      assert.equal((await me(g, c.key)).cursor, evs[1].cursor);
    });

    test('ack=C behind the committed cursor is a no-op; the poll reads after the committed one', async () => {
      const tenant = freshTenant('ackback');
      const c = await g.createConsumer({ tenant });
      const evs = await publishMany(g, tenant, 3);
      assert.equal((await g.json('/v1/ack', { key: c.key, body: { cursor: evs[1].cursor } })).status, 200);
      const p = await poll(g, c.key, `wait=0&ack=${evs[0].cursor}`);
      assertEvents(p, [evs[2].id], false);
      assert.equal((await me(g, c.key)).cursor, evs[1].cursor);
    });

    test('POST /v1/ack: 200 {cursor}; next poll starts after it', async () => {
      const tenant = freshTenant('ack');
      const c = await g.createConsumer({ tenant });
      const evs = await publishMany(g, tenant, 3);
      const r = await g.json('/v1/ack', { key: c.key, body: { cursor: evs[0].cursor } });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
      assert.deepEqual(r.body, { cursor: evs[0].cursor });
      assert.equal((await me(g, c.key)).cursor, evs[0].cursor);
      assertEvents(await poll(g, c.key, 'wait=0'), ids(evs.slice(1)), false);
    });

    test('ack at or behind the committed cursor: 200 no-op answering the committed cursor', async () => {
      const tenant = freshTenant('ackidem');
      const c = await g.createConsumer({ tenant });
      const evs = await publishMany(g, tenant, 3);
      assert.equal((await g.json('/v1/ack', { key: c.key, body: { cursor: evs[2].cursor } })).status, 200);
      const same = await g.json('/v1/ack', { key: c.key, body: { cursor: evs[2].cursor } });
      assert.equal(same.status, 200);
      assert.deepEqual(same.body, { cursor: evs[2].cursor });
      const behind = await g.json('/v1/ack', { key: c.key, body: { cursor: evs[0].cursor } });
      assert.equal(behind.status, 200, JSON.stringify(behind.body));
      assert.deepEqual(behind.body, { cursor: evs[2].cursor }, 'answers the committed (higher) cursor');
      const zero = await g.json('/v1/ack', { key: c.key, body: { cursor: ZERO } });
      assert.equal(zero.status, 200);
      assert.deepEqual(zero.body, { cursor: evs[2].cursor });
      assert.equal((await me(g, c.key)).cursor, evs[2].cursor, 'never moved backwards');
    });

    test('cursors are positions in the consumer\'s own tenant: another tenant\'s volume shows nowhere', async () => {
      const tenant = freshTenant('ackhead');
      const c = await g.createConsumer({ tenant });
      const other = freshTenant('ackhead-other');
      for (let i = 0; i < 3; i++) await publishOne(g, other);
      const mine = await publishOne(g, tenant);
      assert.equal(mine.cursor, 't0000000000000001', 'the first event of the tenant is position 1, whatever others published');
      const empty = await poll(g, (await g.createConsumer({ tenant: freshTenant('ackhead-empty') })).key, 'wait=0');
      assert.equal(empty.body.cursor, 't0000000000000000', "an empty tenant's poll reveals no other tenant's volume");
      const third = (await g.publish({ tenant: other, type: 't.x', data: null })).cursor;
      assertError(await g.json('/v1/ack', { key: c.key, body: { cursor: third } }), 400, 'invalid_cursor', 'cursor');
      const r = await g.json('/v1/ack', { key: c.key, body: { cursor: mine.cursor } });
      assert.deepEqual(r.body, { cursor: mine.cursor });
      assert.equal((await me(g, c.key)).lag, 0);
    });

    test('ack past the head of the log: 400 invalid_cursor; the cursor did not move', async () => {
      const tenant = freshTenant('ackpast');
      const c = await g.createConsumer({ tenant });
      const ev = await publishOne(g, tenant);
      const before = (await me(g, c.key)).cursor;
      const r = await g.json('/v1/ack', { key: c.key, body: { cursor: FAR_FUTURE } });
      assertError(r, 400, 'invalid_cursor', 'cursor');
      const p = await poll(g, c.key, `wait=0&ack=${FAR_FUTURE}`);
      assertError(p, 400, 'invalid_cursor', 'ack');
      const a = await poll(g, c.key, `wait=0&after=${FAR_FUTURE}`);
      assertError(a, 400, 'invalid_cursor', 'after');
      assert.equal((await me(g, c.key)).cursor, before);
      assertEvents(await poll(g, c.key, 'wait=0'), [ev.id], false);
    });

    const MALFORMED: Array<[string, string]> = [
      ['abc', 'letters'],
      ['-1', 'negative'],
      ['00000000000000001', '17 digits'],
      ['', 'empty'],
      ['000000000000001', '15 digits'],
      [' 000000000000001', 'leading space'],
    ];

    for (const [cursor, label] of MALFORMED) {
      test(`malformed cursor (${label}) in the ack body, ack= and after=: 400 naming the field; nothing moved`, async () => {
        const tenant = freshTenant('malformed');
        const c = await g.createConsumer({ tenant });
        const ev = await publishOne(g, tenant);
        const before = (await me(g, c.key)).cursor;

        assertError(await g.json('/v1/ack', { key: c.key, body: { cursor } }), 400, undefined, 'cursor');
        assertError(await poll(g, c.key, `wait=0&ack=${encodeURIComponent(cursor)}`), 400, undefined, 'ack');
        assertError(await poll(g, c.key, `wait=0&after=${encodeURIComponent(cursor)}`), 400, undefined, 'after');

        assert.equal((await me(g, c.key)).cursor, before, 'the committed cursor did not move');
        assertEvents(await poll(g, c.key, 'wait=0'), [ev.id], false);
      });
    }

    test('ack body that is not JSON, lacks cursor, has an extra field or a non-string cursor: 400', async () => {
      const tenant = freshTenant('ackbody');
      const c = await g.createConsumer({ tenant });
      const ev = await publishOne(g, tenant);
      const before = (await me(g, c.key)).cursor;

      const notJson = await g.json('/v1/ack', {
        key: c.key,
        raw: '{"cursor":',
        method: 'POST',
        headers: { 'content-type': 'application/json' },
      });
      assertError(notJson, 400);
      const empty = await g.json('/v1/ack', { key: c.key, raw: '', method: 'POST', headers: { 'content-type': 'application/json' } });
      assertError(empty, 400);
      assertError(await g.json('/v1/ack', { key: c.key, body: {} }), 400, undefined, 'cursor');
      assertError(await g.json('/v1/ack', { key: c.key, body: { cursor: ev.cursor, extra: 1 } }), 400, undefined, 'extra');
      assertError(await g.json('/v1/ack', { key: c.key, body: { cursor: 5 } }), 400, undefined, 'cursor');
      assertError(await g.json('/v1/ack', { key: c.key, body: { cursor: null } }), 400, undefined, 'cursor');
      assertError(await g.json('/v1/ack', { key: c.key, body: [ev.cursor] }), 400);
      assertError(await g.json('/v1/ack', { key: c.key, body: ev.cursor }), 400);

      assert.equal((await me(g, c.key)).cursor, before, 'no bad ack moved the cursor');
    });

    test('after=C reads after C without changing the committed cursor (replay)', async () => {
      const tenant = freshTenant('replay');
      const c = await g.createConsumer({ tenant });
      const evs = await publishMany(g, tenant, 4);
      await g.json('/v1/ack', { key: c.key, body: { cursor: evs[3].cursor } });
      assertEmpty(await poll(g, c.key, 'wait=0'));

      const replay = await poll(g, c.key, `wait=0&after=${evs[0].cursor}`);
      assertEvents(replay, ids(evs.slice(1)), false);
      const fromStart = await poll(g, c.key, `wait=0&after=${ZERO}`);
      assertEvents(fromStart, ids(evs), false);
      assert.equal((await me(g, c.key)).cursor, evs[3].cursor, 'replay did not change the committed cursor');
    });

    test('after=C ahead of the committed cursor reads from C and commits nothing', async () => {
      const tenant = freshTenant('ahead');
      const c = await g.createConsumer({ tenant });
      const before = (await me(g, c.key)).cursor;
      const evs = await publishMany(g, tenant, 3);
      assertEvents(await poll(g, c.key, `wait=0&after=${evs[1].cursor}`), [evs[2].id], false);
      assert.equal((await me(g, c.key)).cursor, before);
    });

    test('ack= and after= together: ack commits, reading starts after `after`', async () => {
      const tenant = freshTenant('ackafter');
      const c = await g.createConsumer({ tenant });
      const evs = await publishMany(g, tenant, 4);
      const p = await poll(g, c.key, `wait=0&ack=${evs[2].cursor}&after=${evs[0].cursor}`);
      assertEvents(p, ids(evs.slice(1)), false);
      assert.equal((await me(g, c.key)).cursor, evs[2].cursor);
    });
  });

  describe('parameters', () => {
    test('wait out of range or not a number: 400 naming wait; no poll held', async () => {
      const c = await g.createConsumer({ tenant: freshTenant('badwait') });
      for (const wait of ['61', '-1', 'abc', '60.5', '1e1', '', 'Infinity', 'NaN', '0x10']) {
        const r = await within(poll(g, c.key, `wait=${encodeURIComponent(wait)}`), 2000, `wait=${wait}`);
        assertError(r, 400, undefined, 'wait');
      }
      assert.equal((await adminView(g, c.id)).polling, false);
    });

    test('limit 0, 1001, 1.5, -1, abc: 400 naming limit', async () => {
      const c = await g.createConsumer({ tenant: freshTenant('badlimit') });
      for (const limit of ['0', '1001', '1.5', '-1', 'abc', '']) {
        const r = await within(poll(g, c.key, `wait=0&limit=${encodeURIComponent(limit)}`), 2000, `limit=${limit}`);
        assertError(r, 400, undefined, 'limit');
      }
    });

    test('wait=0 answers at once with an empty list, cursor and more:false', async () => {
      const c = await g.createConsumer({ tenant: freshTenant('wait0') });
      const p = await within(poll(g, c.key, 'wait=0'), 2000, 'wait=0');
      assertEmpty(p);
      assert.ok(p.ms < 500, `wait=0 took ${p.ms} ms`);
      assert.equal((await adminView(g, c.id)).polling, false);
    });

    test('wait=60 (the maximum) is accepted and holds', async () => {
      const c = await g.createConsumer({ tenant: freshTenant('wait60') });
      const held = track(poll(g, c.key, 'wait=60'));
      await untilHeld(g, c.id);
      assert.equal(held.settled, false);
      await clock.advance(60_000);
      assertEmpty(await within(held.promise, 2000, 'wait=60 expiry'));
    });

    test('wait expiry (FakeClock, wait=50): nothing before 50 s, then 200 {events:[],cursor,more:false}', async () => {
      const tenant = freshTenant('expiry');
      const c = await g.createConsumer({ tenant });
      const held = track(poll(g, c.key, 'wait=50'));
      await untilHeld(g, c.id);
      assert.equal((await me(g, c.key)).polling, true, 'GET /v1/consumer says polling while held');
      await clock.advance(49_000);
      await sleep(50);
      assert.equal(held.settled, false, 'still held at 49 s');
      await clock.advance(1_000);
      const r = await within(held.promise, 2000, 'expired poll');
      const cursor = assertEmpty(r);
      assert.deepEqual(Object.keys(r.body).sort(), ['cursor', 'events', 'more']);
      assert.ok(cursor >= (await me(g, c.key)).cursor, 'the empty answer\'s cursor is not behind the read position');
      assert.equal((await me(g, c.key)).polling, false, 'not polling after the answer');
    });

    test('wait with decimals on the FakeClock: wait=1.5 expires at 1.5 s, not 1 s', async () => {
      const c = await g.createConsumer({ tenant: freshTenant('decimal-fake') });
      const held = track(poll(g, c.key, 'wait=1.5'));
      await untilHeld(g, c.id);
      await clock.advance(1_000);
      await sleep(50);
      assert.equal(held.settled, false, 'still held at 1 s');
      await clock.advance(500);
      assertEmpty(await within(held.promise, 2000, 'wait=1.5'));
    });
  });

  describe('long-poll and filters', () => {
    test('a held poll is woken by a matching commit and returns exactly it', async () => {
      const tenant = freshTenant('wake');
      const c = await g.createConsumer({ tenant });
      const before = (await me(g, c.key)).cursor;
      const held = track(poll(g, c.key, 'wait=60'));
      await untilHeld(g, c.id);
      const ev = await publishOne(g, tenant, 'ticket.created', { n: 1 });
      const r = await within(held.promise, 2000, 'woken poll');
      assertEvents(r, [ev.id], false);
      assert.deepEqual(r.body.events[0], ev);
      await untilNotHeld(g, c.id);
      assert.equal((await me(g, c.key)).cursor, before, 'waking did not commit');
    });

    test('a woken poll respects limit: a batch larger than limit answers limit events with more:true', async () => {
      const tenant = freshTenant('wakelimit');
      const c = await g.createConsumer({ tenant });
      const held = track(poll(g, c.key, 'wait=60&limit=2'));
      await untilHeld(g, c.id);
      const evs = await publishMany(g, tenant, 3);
      const r = await within(held.promise, 2000, 'woken poll');
      assertEvents(r, ids(evs.slice(0, 2)), true);
      assertEvents(await poll(g, c.key, `wait=0&limit=2&after=${r.body.cursor}`), [evs[2].id], false);
    });

    test('a held poll is not woken by non-matching events of its tenant nor by other tenants; a match wakes it', async () => {
      const tenant = freshTenant('filt');
      const c = await g.createConsumer({
        tenant,
        filter: {
          types: ['ticket.*'],
          where: [{ field: 'data.priority', op: 'eq', value: 'urgent' }],
        },
      });
      const held = track(poll(g, c.key, 'wait=60'));
      await untilHeld(g, c.id);

      await publishOne(g, tenant, 'note.added', { priority: 'urgent' }); // wrong type
      await publishOne(g, tenant, 'ticket.created', { priority: 'low' }); // wrong data
      await publishOne(g, tenant, 'ticket.created.sub', { priority: 'urgent' }); // * is one segment
      await publishOne(g, freshTenant('filt-other'), 'ticket.created', { priority: 'urgent' }); // other tenant
      await g.publish([
        { tenant: freshTenant('filt-other2'), type: 'ticket.created', data: { priority: 'urgent' } },
        { tenant, type: 'note.added', data: null },
      ]);
      await sleep(100);
      assert.equal(held.settled, false, 'no non-matching event woke the poll');
      assert.equal((await me(g, c.key)).polling, true);

      const r0 = await g.publish([
        { tenant, type: 'note.added', data: { priority: 'urgent' } },
        { tenant, type: 'ticket.updated', data: { priority: 'urgent' } },
        { tenant, type: 'ticket.updated', data: { priority: 'low' } },
      ]);
      const r = await within(held.promise, 2000, 'woken by the match');
      assertEvents(r, [r0.events[1].id], false);
    });

    test('a held poll on an unfiltered consumer is not woken by another tenant\'s events', async () => {
      const tenant = freshTenant('iso');
      const c = await g.createConsumer({ tenant });
      const held = track(poll(g, c.key, 'wait=60'));
      await untilHeld(g, c.id);
      await publishMany(g, freshTenant('iso-other'), 5);
      await sleep(100);
      assert.equal(held.settled, false);
      const ev = await publishOne(g, tenant);
      assertEvents(await within(held.promise, 2000, 'woken'), [ev.id], false);
    });

    test('an immediate empty answer\'s cursor lies past the non-matching events it scanned; acking it clears the lag', async () => {
      const tenant = freshTenant('skip');
      const c = await g.createConsumer({ tenant, filter: { types: ['wanted'] } });
      const noise = await publishMany(g, tenant, 3, 'noise');
      assert.equal((await me(g, c.key)).lag, 3);

      const p = await poll(g, c.key, 'wait=0');
      const cursor = assertEmpty(p);
      assert.ok(cursor >= noise[2].cursor, `empty answer's cursor ${cursor} lies past the scanned ${noise[2].cursor}`);
      // Not committed yet.
      assert.equal((await me(g, c.key)).lag, 3);

      const ack = await g.json('/v1/ack', { key: c.key, body: { cursor } });
      assert.equal(ack.status, 200, JSON.stringify(ack.body));
      assert.equal((await me(g, c.key)).lag, 0, 'lag accounts for the skipped events');
      // Even without the filter the skipped events lie behind the cursor now.
      assertEvents(await poll(g, c.key, `wait=0&after=${cursor}`), [], false);

      const wanted = await publishOne(g, tenant, 'wanted');
      assertEvents(await poll(g, c.key, 'wait=0'), [wanted.id], false);
    });

    test('an expired held poll\'s cursor lies past non-matching events committed while it was held', async () => {
      const tenant = freshTenant('skipheld');
      const c = await g.createConsumer({ tenant, filter: { types: ['wanted'] } });
      const held = track(poll(g, c.key, 'wait=30'));
      await untilHeld(g, c.id);
      const noise = await publishMany(g, tenant, 4, 'noise');
      await sleep(50);
      assert.equal(held.settled, false);
      await clock.advance(30_000);
      const r = await within(held.promise, 2000, 'expired poll');
      const cursor = assertEmpty(r);
      assert.ok(cursor >= noise[3].cursor, `cursor ${cursor} lies past ${noise[3].cursor}`);

      assert.equal((await me(g, c.key)).lag, 4);
      const next = await poll(g, c.key, `wait=0&ack=${cursor}`);
      assertEmpty(next);
      assert.equal((await me(g, c.key)).lag, 0);
    });

    test('a held poll with after=C is woken by events after C and commits nothing', async () => {
      const tenant = freshTenant('afterheld');
      const c = await g.createConsumer({ tenant });
      const first = await publishOne(g, tenant);
      const before = (await me(g, c.key)).cursor;
      const held = track(poll(g, c.key, `wait=60&after=${first.cursor}`));
      await untilHeld(g, c.id);
      const ev = await publishOne(g, tenant);
      assertEvents(await within(held.promise, 2000, 'woken'), [ev.id], false);
      assert.equal((await me(g, c.key)).cursor, before);
    });
  });

  describe('one held poll per consumer', () => {
    test('a second poll with wait=0 ends the held one with 409 superseded and answers normally', async () => {
      const tenant = freshTenant('sup0');
      const c = await g.createConsumer({ tenant });
      const first = track(poll(g, c.key, 'wait=60'));
      await untilHeld(g, c.id);
      const second = await within(poll(g, c.key, 'wait=0'), 2000, 'second poll');
      assertEmpty(second);
      const r = await within(first.promise, 2000, 'superseded poll');
      assertError(r, 409, 'superseded');
      assert.deepEqual(Object.keys(r.body), ['error']);
    });

    test('a second held poll ends the first (409) and then receives the next event itself', async () => {
      const tenant = freshTenant('sup60');
      const c = await g.createConsumer({ tenant });
      const first = track(poll(g, c.key, 'wait=60'));
      await untilHeld(g, c.id);
      const second = track(poll(g, c.key, 'wait=60'));
      assertError(await within(first.promise, 2000, 'first poll'), 409, 'superseded');
      await untilHeld(g, c.id);
      assert.equal(second.settled, false);
      const ev = await publishOne(g, tenant);
      assertEvents(await within(second.promise, 2000, 'second poll'), [ev.id], false);
    });

    test('a second poll that finds events at once still supersedes the held one', async () => {
      const tenant = freshTenant('supev');
      const c = await g.createConsumer({ tenant });
      const ev = await publishOne(g, tenant);
      await g.json('/v1/ack', { key: c.key, body: { cursor: ev.cursor } });
      const first = track(poll(g, c.key, 'wait=60'));
      await untilHeld(g, c.id);
      const second = await within(poll(g, c.key, `wait=60&after=${ZERO}`), 2000, 'second (immediate)');
      assertEvents(second, [ev.id], false);
      assertError(await within(first.promise, 2000, 'held poll'), 409, 'superseded');
    });

    test('an invalid poll (400) does not supersede the held one', async () => {
      const tenant = freshTenant('supbad');
      const c = await g.createConsumer({ tenant });
      const first = track(poll(g, c.key, 'wait=60'));
      await untilHeld(g, c.id);
      assertError(await poll(g, c.key, 'wait=abc'), 400, undefined, 'wait');
      assertError(await poll(g, c.key, 'wait=0&limit=0'), 400, undefined, 'limit');
      assertError(await poll(g, c.key, `wait=0&after=${FAR_FUTURE}`), 400, undefined, 'after');
      await sleep(50);
      assert.equal(first.settled, false, 'the held poll is still held');
      const ev = await publishOne(g, tenant);
      assertEvents(await within(first.promise, 2000, 'held poll'), [ev.id], false);
    });

    test('polls of different consumers (same tenant) do not supersede each other', async () => {
      const tenant = freshTenant('nosup');
      const a = await g.createConsumer({ tenant, name: 'a' });
      const b = await g.createConsumer({ tenant, name: 'b' });
      const pa = track(poll(g, a.key, 'wait=60'));
      await untilHeld(g, a.id);
      const pb = track(poll(g, b.key, 'wait=60'));
      await untilHeld(g, b.id);
      const wait0 = await poll(g, b.key, 'wait=0'); // supersedes b's poll only
      assertEmpty(wait0);
      assertError(await within(pb.promise, 2000, 'b'), 409, 'superseded');
      await sleep(50);
      assert.equal(pa.settled, false, 'a is still held');
      const ev = await publishOne(g, tenant);
      assertEvents(await within(pa.promise, 2000, 'a'), [ev.id], false);
    });
  });

  describe('client disconnect', () => {
    test('aborting a held poll frees the waiter, moves nothing, and loses nothing', async () => {
      const tenant = freshTenant('abort');
      const c = await g.createConsumer({ tenant });
      const before = (await me(g, c.key)).cursor;
      const ac = new AbortController();
      const held = track(poll(g, c.key, 'wait=60', ac.signal));
      await untilHeld(g, c.id);
      assert.equal((await me(g, c.key)).polling, true);
      ac.abort();
      await assert.rejects(within(held.promise, 2000, 'aborted poll'), (e: any) => e?.name === 'AbortError');
      await untilNotHeld(g, c.id);
      assert.equal((await me(g, c.key)).polling, false, 'GET /v1/consumer: polling false after the abort');
      assert.equal((await me(g, c.key)).cursor, before, 'the cursor did not move');

      const ev = await publishOne(g, tenant);
      const next = await within(poll(g, c.key, 'wait=60'), 2000, 'next poll');
      assertEvents(next, [ev.id], false);
    });

    test('after an abort a new poll holds normally (no 409 from a ghost waiter) and is woken', async () => {
      const tenant = freshTenant('ghost');
      const c = await g.createConsumer({ tenant });
      const ac = new AbortController();
      const held = track(poll(g, c.key, 'wait=60', ac.signal));
      await untilHeld(g, c.id);
      ac.abort();
      await held.promise.catch(() => {});
      await untilNotHeld(g, c.id);

      const fresh = track(poll(g, c.key, 'wait=60'));
      await untilHeld(g, c.id);
      const ev = await publishOne(g, tenant);
      const r = await within(fresh.promise, 2000, 'new poll');
      assertEvents(r, [ev.id], false);
      // Nothing was committed by the aborted poll or the answered one.
      assert.equal((await me(g, c.key)).lag, 1);
    });

    test('an event committed right after the abort is returned to the next poll', async () => {
      const tenant = freshTenant('abortpub');
      const c = await g.createConsumer({ tenant });
      const ac = new AbortController();
      const held = track(poll(g, c.key, 'wait=60', ac.signal));
      await untilHeld(g, c.id);
      ac.abort();
      const ev = await publishOne(g, tenant); // possibly before the server noticed the abort
      await held.promise.catch(() => {});
      await untilNotHeld(g, c.id);
      assertEvents(await within(poll(g, c.key, 'wait=0'), 2000, 'next poll'), [ev.id], false);
    });
  });

  describe('many waiters', () => {
    test('200 consumers of one tenant all held; one publish wakes each exactly once with that event', async () => {
      const tenant = freshTenant('many');
      const N = 200;
      const consumers = await Promise.all(
        Array.from({ length: N }, (_, i) => g.createConsumer({ tenant, name: `c${i}` })),
      );
      const polls = consumers.map((c) => track(poll(g, c.key, 'wait=60')));
      await waitFor(
        async () => {
          const r = await g.json(`/v1/consumers?tenant=${tenant}&limit=1000`);
          return r.body.consumers.length === N && r.body.consumers.every((c: any) => c.polling === true);
        },
        10_000,
        'all 200 polls held',
      );
      await sleep(20);
      assert.equal(polls.filter((p) => p.settled).length, 0, 'none answered before the publish');

      const ev = await publishOne(g, tenant, 'ticket.created', { fanout: true });
      const answers = await within(Promise.all(polls.map((p) => p.promise)), 10_000, '200 woken polls');
      for (const r of answers) {
        assertEvents(r, [ev.id], false);
        assert.deepEqual(r.body.events[0], ev);
      }
      const r = await g.json(`/v1/consumers?tenant=${tenant}&limit=1000`);
      assert.ok(r.body.consumers.every((c: any) => c.polling === false), 'no poll is held any more');
      // Each saw it exactly once: the next poll answers it again only because nothing was acked.
      const again = await poll(g, consumers[0]!.key, 'wait=0');
      assertEvents(again, [ev.id], false);
    });
  });

  describe('consumer changes under a held poll', () => {
    test('seek ends the held poll with 409 superseded; the next poll reads from the new position', async () => {
      const tenant = freshTenant('seek');
      const c = await g.createConsumer({ tenant });
      const evs = await publishMany(g, tenant, 2);
      await g.json('/v1/ack', { key: c.key, body: { cursor: evs[1].cursor } });
      const held = track(poll(g, c.key, 'wait=60'));
      await untilHeld(g, c.id);
      const seek = await g.json(`/v1/consumers/${c.id}/seek`, { body: { to: 'earliest' } });
      assert.equal(seek.status, 200, JSON.stringify(seek.body));
      assertError(await within(held.promise, 2000, 'held poll'), 409, 'superseded');
      await untilNotHeld(g, c.id);
      assertEvents(await poll(g, c.key, 'wait=0'), ids(evs), false);
    });

    test('PATCH filter ends the held poll with 409 superseded; the next poll uses the new filter', async () => {
      const tenant = freshTenant('patch');
      const c = await g.createConsumer({ tenant, filter: { types: ['a'] } });
      const held = track(poll(g, c.key, 'wait=60'));
      await untilHeld(g, c.id);
      const patch = await g.json(`/v1/consumers/${c.id}`, { method: 'PATCH', body: { filter: { types: ['b'] } } });
      assert.equal(patch.status, 200, JSON.stringify(patch.body));
      assertError(await within(held.promise, 2000, 'held poll'), 409, 'superseded');
      const r = await g.publish([
        { tenant, type: 'a', data: null },
        { tenant, type: 'b', data: null },
      ]);
      assertEvents(await poll(g, c.key, 'wait=0'), [r.events[1].id], false);
    });

    test('PATCH of the name only leaves the held poll alone', async () => {
      const tenant = freshTenant('patchname');
      const c = await g.createConsumer({ tenant, name: 'before' });
      const held = track(poll(g, c.key, 'wait=60'));
      await untilHeld(g, c.id);
      const patch = await g.json(`/v1/consumers/${c.id}`, { method: 'PATCH', body: { name: 'after' } });
      assert.equal(patch.status, 200, JSON.stringify(patch.body));
      await sleep(50);
      assert.equal(held.settled, false);
      const ev = await publishOne(g, tenant);
      assertEvents(await within(held.promise, 2000, 'held poll'), [ev.id], false);
    });

    test('rotating the key ends the held poll with 401; the old key is refused, the new one polls', async () => {
      const tenant = freshTenant('rotate');
      const c = await g.createConsumer({ tenant });
      const held = track(poll(g, c.key, 'wait=60'));
      await untilHeld(g, c.id);
      const rot = await g.json(`/v1/consumers/${c.id}/key`, { method: 'POST' });
      assert.equal(rot.status, 200, JSON.stringify(rot.body));
      assertError(await within(held.promise, 2000, 'held poll'), 401, 'unauthorized');
      assertError(await poll(g, c.key, 'wait=0'), 401, 'unauthorized');
      const ev = await publishOne(g, tenant);
      assertEvents(await poll(g, rot.body.key, 'wait=0'), [ev.id], false);
    });

    test('deleting the consumer ends the held poll with 404', async () => {
      const tenant = freshTenant('delete');
      const c = await g.createConsumer({ tenant });
      const held = track(poll(g, c.key, 'wait=60'));
      await untilHeld(g, c.id);
      const del = await g.call(`/v1/consumers/${c.id}`, { method: 'DELETE' });
      assert.equal(del.status, 204);
      assertError(await within(held.promise, 2000, 'held poll'), 404, 'not_found');
      assertError(await poll(g, c.key, 'wait=0'), 401);
    });
  });
});

// ---------------------------------------------------------------------------

describe('poll (system clock: real waits)', () => {
  let g: TestGateway;
  before(async () => {
    g = await startGateway();
  });
  after(async () => {
    await g?.close();
  });

  test('a held poll answers within milliseconds of a matching commit', async () => {
    const tenant = freshTenant('latency');
    const c = await g.createConsumer({ tenant });
    const start = performance.now();
    const held = track(poll(g, c.key, 'wait=10'));
    let publishedAt = 0;
    const publishing = sleep(100).then(async () => {
      publishedAt = performance.now();
      return publishOne(g, tenant, 'ticket.created', { fast: true });
    });
    const r = await within(held.promise, 3000, 'woken poll');
    const answeredAt = performance.now();
    const ev = await publishing;
    assertEvents(r, [ev.id], false);
    assert.ok(answeredAt - start < 1000, `answered ${answeredAt - start} ms after the start`);
    assert.ok(answeredAt - start >= 90, `answered after ${answeredAt - start} ms: it held until the publish`);
    assert.ok(answeredAt - publishedAt < 800, `answered ${answeredAt - publishedAt} ms after the publish began`);
  });

  test('a woken poll (answered straight from the wake-up) is a complete answer: JSON type, length, the caller\'s request id; the connection is reused', async () => {
    const tenant = freshTenant('woken-headers');
    const c = await g.createConsumer({ tenant });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const get = (requestId: string, query = '') =>
      new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string; socket: unknown }>((resolve, reject) => {
        const req = http.get(`${g.url}/v1/events?wait=10${query}`, { agent, headers: { authorization: `Bearer ${c.key}`, 'x-request-id': requestId } }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, socket: req.socket }));
        });
        req.on('error', reject);
      });
    try {
      const held = get('woken-1');
      await sleep(100);
      const ev = await publishOne(g, tenant, 'ticket.created', { n: 1 });
      const r = await within(held, 3000, 'woken poll');
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-type'], 'application/json');
      assert.equal(r.headers['x-request-id'], 'woken-1');
      assert.equal(Number(r.headers['content-length']), Buffer.byteLength(r.body));
      assert.deepEqual(JSON.parse(r.body), { events: [ev], cursor: ev.cursor, more: false });
      // The same keep-alive connection carries the next poll (acking the first page), held and woken too.
      const next = get('woken-2', `&ack=${ev.cursor}`);
      await sleep(100);
      const ev2 = await publishOne(g, tenant, 'ticket.created', { n: 2 });
      const r2 = await within(next, 3000, 'second woken poll');
      assert.equal(r2.socket, r.socket, 'one connection for both polls');
      assert.equal(r2.headers['x-request-id'], 'woken-2');
      assert.deepEqual(JSON.parse(r2.body), { events: [ev2], cursor: ev2.cursor, more: false });
    } finally {
      agent.destroy();
    }
  });

  test('wait=0.2 expires after about 200 ms with {events:[],cursor,more:false}', async () => {
    const c = await g.createConsumer({ tenant: freshTenant('real-expiry') });
    const r = await within(poll(g, c.key, 'wait=0.2'), 3000, 'wait=0.2');
    assertEmpty(r);
    assert.ok(r.ms >= 180, `answered after ${r.ms} ms, before the wait ran out`);
    assert.ok(r.ms < 1000, `answered after ${r.ms} ms`);
  });

  test('wait with decimals (0.05) is accepted', async () => {
    const c = await g.createConsumer({ tenant: freshTenant('real-decimal') });
    const r = await within(poll(g, c.key, 'wait=0.05'), 3000, 'wait=0.05');
    assertEmpty(r);
    assert.ok(r.ms >= 40 && r.ms < 1000, `answered after ${r.ms} ms`);
  });

  test('wait=0 answers at once', async () => {
    const c = await g.createConsumer({ tenant: freshTenant('real-wait0') });
    const r = await poll(g, c.key, 'wait=0');
    assertEmpty(r);
    assert.ok(r.ms < 1000, `wait=0 took ${r.ms} ms: it held instead of answering at once`);
  });
});

describe('POLLGATE_MAX_WAIT', () => {
  let g: TestGateway;
  const clock = new FakeClock();
  before(async () => {
    g = await startGateway({ clock, config: { maxWaitMs: 5000 } });
  });
  after(async () => {
    await g?.close();
  });

  test('maxWaitMs=5000: wait=6 and wait=5.5 are 400 naming wait; wait=5 holds', async () => {
    const c = await g.createConsumer({ tenant: freshTenant('maxwait') });
    assertError(await poll(g, c.key, 'wait=6'), 400, undefined, 'wait');
    assertError(await poll(g, c.key, 'wait=5.5'), 400, undefined, 'wait');
    assertError(await poll(g, c.key, 'wait=60'), 400, undefined, 'wait');
    const held = track(poll(g, c.key, 'wait=5'));
    await untilHeld(g, c.id);
    await clock.advance(5000);
    assertEmpty(await within(held.promise, 2000, 'wait=5'));
  });

  test('the default wait (25 s) is capped by a lower maximum: no poll is held longer than POLLGATE_MAX_WAIT', async () => {
    // Interpretation: `wait` may not exceed the maximum, so a poll without `wait` holds
    // min(25 s, POLLGATE_MAX_WAIT) rather than being refused or held past the maximum.
    const c = await g.createConsumer({ tenant: freshTenant('maxwait-default') });
    const held = track(poll(g, c.key, ''));
    await untilHeld(g, c.id);
    await clock.advance(5000);
    await waitFor(() => held.settled, 300, 'the poll without wait ends at the 5 s maximum').catch(() => {});
    const settledAtMax = held.settled;
    if (!settledAtMax) await clock.advance(20_000); // let it end, whatever the verdict
    const r = await within(held.promise, 2000, 'poll without wait');
    assert.ok(settledAtMax, 'a poll without `wait` is still held after POLLGATE_MAX_WAIT=5s (the 25 s default is not capped)');
    assertEmpty(r);
  });
});

describe('push mode on the poll path', () => {
  let g: TestGateway;
  let receiver: http.Server;
  let receiverUrl = '';
  const received: string[] = [];
  before(async () => {
    receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => (body += chunk));
      req.on('end', () => {
        try {
          received.push(JSON.parse(body).id);
        } catch {
          // not ours
        }
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    g = await startGateway({ config: { allowPrivateTargets: true } });
  });
  after(async () => {
    await g?.close();
    receiver.closeAllConnections();
    await new Promise((resolve) => receiver.close(resolve));
  });

  test('switching to push ends the held poll with 409 push_mode; polls and acks are 409 push_mode; back to pull works', async () => {
    const tenant = freshTenant('push');
    const c = await g.createConsumer({ tenant });
    const held = track(poll(g, c.key, 'wait=10'));
    await untilHeld(g, c.id);
    const put = await g.json(`/v1/consumers/${c.id}/webhook`, { method: 'PUT', body: { url: receiverUrl } });
    assert.ok(put.status === 200 || put.status === 201, `PUT webhook: ${put.status} ${JSON.stringify(put.body)}`);
    assertError(await within(held.promise, 2000, 'held poll'), 409, 'push_mode');

    assertError(await poll(g, c.key, 'wait=0'), 409, 'push_mode');
    assertError(await g.json('/v1/ack', { key: c.key, body: { cursor: ZERO } }), 409, 'push_mode');

    const ev = await publishOne(g, tenant);
    await waitFor(() => received.includes(ev.id), 3000, 'the bridge delivered the event');
    await waitFor(async () => (await me(g, c.key)).cursor === ev.cursor, 3000, 'the bridge moved the cursor');

    const del = await g.call(`/v1/consumers/${c.id}/webhook`, { method: 'DELETE' });
    assert.ok(del.status === 200 || del.status === 204, `DELETE webhook: ${del.status}`);
    const ev2 = await publishOne(g, tenant);
    assertEvents(await poll(g, c.key, 'wait=0'), [ev2.id], false);
  });
});

describe('graceful stop', () => {
  test('stop() while a poll is held: that poll gets 200 with events:[], then requests are refused', async () => {
    const g = await startGateway();
    try {
      const tenant = freshTenant('stop');
      const c = await g.createConsumer({ tenant });
      const f = await g.createConsumer({ tenant, filter: { types: ['wanted'] } });
      const held = track(poll(g, c.key, 'wait=30'));
      const heldFiltered = track(poll(g, f.key, 'wait=30'));
      await untilHeld(g, c.id);
      await untilHeld(g, f.id);
      const noise = await publishOne(g, tenant, 'noise');
      const r0 = await within(held.promise, 2000, 'unfiltered poll woken by the event');
      assertEvents(r0, [noise.id], false);
      const again = track(poll(g, c.key, `wait=30&after=${noise.cursor}`));
      await untilHeld(g, c.id);

      const t0 = performance.now();
      const stopping = g.gateway.stop();
      const r = await within(again.promise, 3000, 'held poll at stop');
      assertEmpty(r);
      const rf = await within(heldFiltered.promise, 3000, 'held filtered poll at stop');
      const cursor = assertEmpty(rf);
      assert.ok(cursor >= noise.cursor, 'its cursor lies past the non-matching event it passed over');
      assert.ok(performance.now() - t0 < 2000, 'held polls are answered promptly, not at their deadline');
      await within(stopping, 6000, 'stop()');

      let refused = false;
      try {
        const late = await g.json('/v1/events?wait=0', { key: c.key });
        refused = late.status === 503;
      } catch {
        refused = true; // connection refused: the server no longer listens
      }
      assert.ok(refused, 'a request after stop is refused');
    } finally {
      await g.close();
    }
  });
});
