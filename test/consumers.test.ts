/**
 * HTTP contract tests for consumer management (SPEC: Consumers, Filters, Polling basics),
 * against a real gateway on a loopback port over a real SQLite file.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_KEY, startGateway, type TestGateway } from './support/gateway.ts';
import { appendedTotal } from './support/appended.ts';
import { assertError } from './support/assertions.ts';
import { sleep } from './support/wait.ts';

const CONSUMER_ID = /^con_[A-Za-z0-9_-]+$/;
const KEY_SHAPE = /^pgk_[A-Za-z0-9]{44}$/;
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

let tenantSeq = 0;
const freshTenant = (label = 't') => `con-${label}-${++tenantSeq}`;

/** Shape of a consumer as the admin API shows it (no key). */
function assertConsumerView(c: any, expected: { tenant: string; name?: string | null; filter?: unknown }): void {
  assert.match(c.id, CONSUMER_ID);
  assert.equal(c.tenant, expected.tenant);
  if (expected.name !== undefined) assert.equal(c.name, expected.name);
  if (expected.filter !== undefined) assert.deepEqual(c.filter, expected.filter);
  assert.equal(c.mode, 'pull');
  assert.equal(typeof c.cursor, 'string');
  assert.ok(c.cursor.length > 0);
  assert.equal(typeof c.lag, 'number');
  assert.ok(Number.isInteger(c.lag) && c.lag >= 0);
}

describe('consumers', () => {
  let g: TestGateway;
  before(async () => {
    g = await startGateway();
  });
  after(async () => {
    await g?.close();
  });

  /** One non-waiting poll with the consumer key; answers the event data (or types). */
  async function poll(key: string, query = ''): Promise<{ events: any[]; cursor: string; more: boolean }> {
    const r = await g.json(`/v1/events?wait=0&limit=1000${query}`, { key });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body;
  }
  const dataOf = async (key: string, query = '') => (await poll(key, query)).events.map((e) => e.data);
  const typesOf = async (key: string) => (await poll(key)).events.map((e) => e.type);

  async function view(id: string): Promise<any> {
    const r = await g.json(`/v1/consumers/${id}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body;
  }

  async function consumersOf(tenant: string): Promise<any[]> {
    const r = await g.json(`/v1/consumers?tenant=${tenant}&limit=1000`);
    assert.equal(r.status, 200);
    return r.body.consumers;
  }

  /** Publishes events one by one, each with a commit time strictly after the previous one. */
  async function publishSpaced(tenant: string, datas: unknown[]): Promise<any[]> {
    const out: any[] = [];
    for (const data of datas) {
      if (out.length > 0) {
        const last = Date.parse(out[out.length - 1].time);
        while (Date.now() <= last + 1) await sleep(2);
      }
      out.push(await g.publish({ tenant, type: 'spaced', data }));
    }
    for (let i = 1; i < out.length; i++) assert.ok(out[i - 1].time < out[i].time, 'distinct, increasing times');
    return out;
  }

  /** A cursor this gateway never handed out: past its head. Made by another gateway with a longer log. */
  let pastHead: string;
  before(async () => {
    const other = await startGateway();
    try {
      const r = await other.publish(Array.from({ length: 1000 }, () => ({ tenant: 'other', type: 'x', data: null })));
      pastHead = r.events[999].cursor;
    } finally {
      await other.close();
    }
  });
  async function assertPastHead(): Promise<void> {
    // Precondition: this gateway's log is shorter than the other gateway's 1000 events.
    const head = await appendedTotal(g.url, ADMIN_KEY);
    assert.ok(head < 900, `precondition: head ${head} < 900`);
  }

  describe('POST /v1/consumers', () => {
    test('201 with id, tenant, name, filter, mode pull, cursor, lag and a pgk_ key', async () => {
      const tenant = freshTenant('create');
      const filter = { types: ['ticket.*'] };
      const r = await g.json('/v1/consumers', { body: { tenant, name: 'helpdesk-sync', filter } });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
      assertConsumerView(r.body, { tenant, name: 'helpdesk-sync', filter });
      assert.match(r.body.key, KEY_SHAPE);
      assert.equal(r.body.lag, 0);
      for (const k of ['id', 'tenant', 'name', 'filter', 'mode', 'cursor', 'lag', 'key']) assert.ok(k in r.body, `has ${k}`);
      if ('created_at' in r.body) assert.match(r.body.created_at, ISO_MS);

      const got = await view(r.body.id);
      const { key: _key, ...rest } = r.body;
      assert.deepEqual({ ...got, polling: rest.polling }, rest, 'GET shows the same consumer, minus the key');
    });

    test('name and filter are optional (null)', async () => {
      const tenant = freshTenant('create');
      const r = await g.json('/v1/consumers', { body: { tenant } });
      assert.equal(r.status, 201);
      assertConsumerView(r.body, { tenant, name: null, filter: null });
      const r2 = await g.json('/v1/consumers', { body: { tenant } });
      assert.equal(r2.status, 201, 'several unnamed consumers in one tenant are fine');
      assert.notEqual(r2.body.id, r.body.id);
      assert.notEqual(r2.body.key, r.body.key);
    });

    test('a consumer may be created for a tenant with no events yet, and then sees them', async () => {
      const tenant = freshTenant('empty');
      const c = await g.createConsumer({ tenant });
      assert.deepEqual(await dataOf(c.key), []);
      await g.publish({ tenant, type: 'first', data: 1 });
      assert.deepEqual(await dataOf(c.key), [1]);
    });

    test('bad bodies are 400 naming the field; nothing is created', async () => {
      const tenant = freshTenant('badbody');
      const cases: Array<[unknown, string]> = [
        [{}, 'tenant'],
        [{ tenant: '' }, 'tenant'],
        [{ tenant: 'has space' }, 'tenant'],
        [{ tenant: 'a'.repeat(65) }, 'tenant'],
        [{ tenant, extra: 1 }, 'extra'],
        [{ tenant, key: 'pgk_mine' }, 'key'],
        [{ tenant, name: 'has space' }, 'name'],
        [{ tenant, name: 'x'.repeat(129) }, 'name'],
        [{ tenant, name: '' }, 'name'],
        [{ tenant, name: 5 }, 'name'],
        [{ tenant, mode: 'push' }, 'mode'],
      ];
      for (const [body, field] of cases) {
        const r = await g.json('/v1/consumers', { body });
        assertError(r, 400, 'invalid_request');
        assert.equal(r.body.error.field, field, JSON.stringify(r.body));
        assert.ok(r.body.error.message.includes(field), r.body.error.message);
      }
      assertError(await g.json('/v1/consumers', { raw: 'nope', headers: { 'content-type': 'application/json' } }), 400, 'invalid_json');
      assertError(await g.json('/v1/consumers', { body: [{ tenant }] }), 400);
      assertError(await g.json('/v1/consumers', { raw: JSON.stringify({ tenant }), headers: { 'content-type': 'text/plain' } }), 415);
      assert.deepEqual(await consumersOf(tenant), []);
    });

    test('duplicate name in one tenant is 409 conflict; the same name in another tenant is fine', async () => {
      const t1 = freshTenant('dup');
      const t2 = freshTenant('dup');
      const first = await g.createConsumer({ tenant: t1, name: 'billing' });
      const dup = await g.json('/v1/consumers', { body: { tenant: t1, name: 'billing', start: 'earliest' } });
      assertError(dup, 409, 'conflict');
      assert.ok(dup.body.error.message.includes('billing'));
      assert.deepEqual((await consumersOf(t1)).map((c) => c.id), [first.id]);
      const other = await g.json('/v1/consumers', { body: { tenant: t2, name: 'billing' } });
      assert.equal(other.status, 201);
      assert.equal(other.body.name, 'billing');
    });

    test('concurrent creates with one name: exactly one 201, the rest 409', async () => {
      const tenant = freshTenant('dup-race');
      const results = await Promise.all(
        Array.from({ length: 10 }, () => g.json('/v1/consumers', { body: { tenant, name: 'same' } })),
      );
      const statuses = results.map((r) => r.status).sort();
      assert.deepEqual(statuses, [201, ...Array(9).fill(409)]);
      assert.equal((await consumersOf(tenant)).length, 1);
    });
  });

  describe('start positions', () => {
    test('default start is latest: older events are not seen, newer ones are', async () => {
      const tenant = freshTenant('start');
      await g.publish([
        { tenant, type: 'old', data: 'old-1' },
        { tenant, type: 'old', data: 'old-2' },
      ]);
      const c = await g.createConsumer({ tenant });
      assert.equal(c.lag, 0);
      assert.deepEqual(await dataOf(c.key), []);
      const explicit = await g.createConsumer({ tenant, start: 'latest' });
      assert.equal(explicit.cursor, c.cursor);
      assert.deepEqual(await dataOf(explicit.key), []);
      await g.publish({ tenant, type: 'new', data: 'new-1' });
      assert.deepEqual(await dataOf(c.key), ['new-1']);
      assert.deepEqual(await dataOf(explicit.key), ['new-1']);
    });

    test('earliest sees every event of the tenant, in order', async () => {
      const tenant = freshTenant('start');
      await g.publish([
        { tenant, type: 'a', data: 1 },
        { tenant: freshTenant('noise'), type: 'a', data: 'noise' },
        { tenant, type: 'a', data: 2 },
      ]);
      await g.publish({ tenant, type: 'a', data: 3 });
      const c = await g.createConsumer({ tenant, start: 'earliest' });
      assert.equal(c.lag, 3);
      assert.deepEqual(await dataOf(c.key), [1, 2, 3]);
    });

    test('{cursor} reads after that cursor', async () => {
      const tenant = freshTenant('start');
      const r = await g.publish([
        { tenant, type: 'a', data: 1 },
        { tenant, type: 'a', data: 2 },
        { tenant, type: 'a', data: 3 },
      ]);
      const [e1, e2, e3] = r.events;
      const c1 = await g.createConsumer({ tenant, start: { cursor: e1.cursor } });
      assert.equal(c1.cursor, e1.cursor);
      assert.equal(c1.lag, 2);
      assert.deepEqual(await dataOf(c1.key), [2, 3]);
      const c3 = await g.createConsumer({ tenant, start: { cursor: e3.cursor } });
      assert.deepEqual(await dataOf(c3.key), []);
      // Cursors are positions in the consumer's own tenant: another tenant's first event names
      // position 1 here too, and one past this tenant's head is refused.
      const noise = await g.publish({ tenant: freshTenant('noise'), type: 'x', data: 0 });
      await g.publish({ tenant, type: 'a', data: 4 });
      const cn = await g.createConsumer({ tenant, start: { cursor: noise.cursor } });
      assert.deepEqual(await dataOf(cn.key), [2, 3, 4]);
      assert.ok(e2);
    });

    test('{time} starts at the first event committed at or after that time', async () => {
      const tenant = freshTenant('time');
      const [e1, e2, e3] = await publishSpaced(tenant, [1, 2, 3]);
      const t2 = Date.parse(e2.time);

      const atE2 = await g.createConsumer({ tenant, start: { time: e2.time } });
      assert.deepEqual(await dataOf(atE2.key), [2, 3], 'at e2.time: e2 included');
      assert.equal(atE2.lag, 2);

      const justAfterE1 = new Date(Date.parse(e1.time) + 1).toISOString();
      assert.ok(justAfterE1 <= e2.time);
      const c = await g.createConsumer({ tenant, start: { time: justAfterE1 } });
      assert.deepEqual(await dataOf(c.key), [2, 3], 'between e1 and e2: from e2');

      const justAfterE2 = new Date(t2 + 1).toISOString();
      const c2 = await g.createConsumer({ tenant, start: { time: justAfterE2 } });
      assert.deepEqual(await dataOf(c2.key), [3]);

      const past = await g.createConsumer({ tenant, start: { time: '2000-01-01T00:00:00.000Z' } });
      assert.deepEqual(await dataOf(past.key), [1, 2, 3]);

      const future = await g.createConsumer({ tenant, start: { time: new Date(Date.now() + 3_600_000).toISOString() } });
      assert.deepEqual(await dataOf(future.key), []);
      await g.publish({ tenant, type: 'later', data: 4 });
      assert.deepEqual(await dataOf(future.key), [4], 'a future time reads what comes next');
      assert.ok(e3);
    });

    test('{time} accepts an offset and a time without milliseconds', async () => {
      const tenant = freshTenant('time');
      const [, e2] = await publishSpaced(tenant, [1, 2]);
      // e2.time written in +01:00.
      const d = new Date(Date.parse(e2.time) + 3_600_000).toISOString().replace('Z', '+01:00');
      const c = await g.createConsumer({ tenant, start: { time: d } });
      assert.deepEqual(await dataOf(c.key), [2]);
      const noMs = await g.json('/v1/consumers', { body: { tenant, start: { time: '2000-01-01T00:00:00Z' } } });
      assert.equal(noMs.status, 201, JSON.stringify(noMs.body));
      assert.deepEqual(await dataOf(noMs.body.key), [1, 2]);
    });

    test('a bad start is 400 and creates nothing', async () => {
      const tenant = freshTenant('badstart');
      const bad: unknown[] = [
        'middle',
        'EARLIEST',
        '',
        5,
        null,
        {},
        [],
        { cursor: 5 },
        { time: 'yesterday' },
        { time: '2026-01-01' },
        { time: '2026-01-01T00:00:00' },
        { time: 1700000000000 },
        { cursor: 'x', time: '2026-01-01T00:00:00Z' },
        { cursor: '0', extra: true },
        { position: 'earliest' },
      ];
      for (const start of bad) {
        const r = await g.json('/v1/consumers', { body: { tenant, start } });
        assertError(r, 400);
        assert.ok(String(r.body.error.field ?? r.body.error.message).startsWith('start'), JSON.stringify(r.body));
      }
      assert.deepEqual(await consumersOf(tenant), []);
    });

    test('a cursor past the head is 400 invalid_cursor; a malformed cursor is 400', async () => {
      const tenant = freshTenant('badcursor');
      await assertPastHead();
      const r = await g.json('/v1/consumers', { body: { tenant, start: { cursor: pastHead } } });
      assertError(r, 400, 'invalid_cursor');
      for (const cursor of ['abc', '', '-1', '1.5', ' ', 'evt_x', '9'.repeat(40)]) {
        const m = await g.json('/v1/consumers', { body: { tenant, start: { cursor } } });
        assertError(m, 400, ['invalid_cursor', 'invalid_request']);
      }
      assert.deepEqual(await consumersOf(tenant), []);
    });
  });

  describe('filters', () => {
    test('a bad filter is 400 invalid_filter naming the problem; nothing is created', async () => {
      const tenant = freshTenant('badfilter');
      const three = [
        { field: 'data.a', op: 'eq', value: 1 },
        { field: 'data.b', op: 'eq', value: 2 },
        { field: 'data.c', op: 'eq', value: 3 },
      ];
      const cases: Array<[unknown, RegExp]> = [
        [{ where: three, expression: '1 and 4' }, /condition 4 does not exist/],
        [{ where: three, expression: '(1 or 2) and 0' }, /condition 0 does not exist/],
        [{ where: three, expression: '(1 or 2' }, /parenthes/i],
        [{ where: three, expression: '1 xor 2' }, /xor/],
        [{ where: three, expression: '' }, /expression/],
        [{ expression: '1' }, /expression/],
        [{ types: 'ticket.*' }, /types/],
        [{ types: [] }, /types/],
        [{ types: ['a..b'] }, /types\[0\]/],
        [{ types: ['a.**.b'] }, /\*\*/],
        [{ types: ['ok', 'bad pattern'] }, /types\[1\]/],
        [{ where: [{ field: 'data.x', op: 'like', value: 'a' }] }, /like/],
        [{ where: [{ field: 'nope', op: 'eq', value: 'a' }] }, /nope/],
        [{ where: [{ field: 'data.x', op: 'in', value: 'not-a-list' }] }, /where\[0\]/],
        [{ where: [] }, /where/],
        [{ typez: ['a'] }, /typez/],
        ['ticket.*', /filter/],
        [[], /filter/],
      ];
      for (const [filter, pattern] of cases) {
        const r = await g.json('/v1/consumers', { body: { tenant, filter } });
        assertError(r, 400, 'invalid_filter');
        assert.match(r.body.error.message, pattern, `${JSON.stringify(filter)} → ${r.body.error.message}`);
      }
      assert.deepEqual(await consumersOf(tenant), []);
    });

    test('types: "ticket.*" matches exactly one segment after ticket', async () => {
      const tenant = freshTenant('types');
      const c = await g.createConsumer({ tenant, filter: { types: ['ticket.*'] }, start: 'earliest' });
      await g.publish(
        ['ticket.created', 'ticket', 'ticket.a.b', 'order.created', 'tickets.created', 'ticket.updated'].map((type) => ({ tenant, type, data: type })),
      );
      assert.deepEqual(await typesOf(c.key), ['ticket.created', 'ticket.updated']);
    });

    test('types: a final "a.**" matches one or more segments after a', async () => {
      const tenant = freshTenant('types');
      const c = await g.createConsumer({ tenant, filter: { types: ['a.**'] }, start: 'earliest' });
      await g.publish(['a', 'a.b', 'ab.c', 'a.b.c.d', 'b.a', 'a.x'].map((type) => ({ tenant, type, data: null })));
      assert.deepEqual(await typesOf(c.key), ['a.b', 'a.b.c.d', 'a.x']);
    });

    test('types: several patterns are ORed', async () => {
      const tenant = freshTenant('types');
      const c = await g.createConsumer({ tenant, filter: { types: ['ping', 'order.*.paid'] }, start: 'earliest' });
      await g.publish(['ping', 'pong', 'order.eu.paid', 'order.paid', 'order.eu.refunded'].map((type) => ({ tenant, type, data: null })));
      assert.deepEqual(await typesOf(c.key), ['ping', 'order.eu.paid']);
    });

    const tickets = (tenant: string) => [
      { tenant, type: 'ticket.created', data: { n: 1, priority: 'urgent', vip: false } },
      { tenant, type: 'ticket.created', data: { n: 2, priority: 'low', vip: true } },
      { tenant, type: 'ticket.created', data: { n: 3, priority: 'low', vip: false } },
      { tenant, type: 'ticket.closed', data: { n: 4, priority: 'urgent', vip: true } },
      { tenant, type: 'ticket.created', data: { n: 5 } },
      { tenant, type: 'ticket.created', data: { n: 6, priority: 'urgent', vip: true } },
    ];
    const conditions = [
      { field: 'data.priority', op: 'eq', value: 'urgent' },
      { field: 'data.vip', op: 'eq', value: true },
      { field: 'type', op: 'eq', value: 'ticket.created' },
    ];
    const ns = async (key: string) => (await poll(key)).events.map((e) => e.data.n);

    test('where with expression "(1 or 2) and 3"', async () => {
      const tenant = freshTenant('where');
      const c = await g.createConsumer({ tenant, filter: { where: conditions, expression: '(1 or 2) and 3' }, start: 'earliest' });
      await g.publish(tickets(tenant));
      assert.deepEqual(await ns(c.key), [1, 2, 6]);
    });

    test('expression precedence: "1 or 2 and 3" is 1 or (2 and 3); keywords are case-insensitive', async () => {
      const tenant = freshTenant('where');
      const c = await g.createConsumer({ tenant, filter: { where: conditions, expression: '1 OR 2 And 3' }, start: 'earliest' });
      await g.publish(tickets(tenant));
      assert.deepEqual(await ns(c.key), [1, 2, 4, 6]);
    });

    test('where without expression ANDs every condition', async () => {
      const tenant = freshTenant('where');
      const c = await g.createConsumer({ tenant, filter: { where: conditions.slice(0, 2) }, start: 'earliest' });
      await g.publish(tickets(tenant));
      assert.deepEqual(await ns(c.key), [4, 6]);
    });

    test('types and where combine; other operators work over HTTP', async () => {
      const tenant = freshTenant('where');
      const c = await g.createConsumer({
        tenant,
        filter: {
          types: ['ticket.*'],
          where: [
            { field: 'data.priority', op: 'in', value: ['urgent', 'low'] },
            { field: 'data.vip', op: 'exists', value: false },
            { field: 'data.n', op: 'gte', value: 3 },
          ],
          expression: '1 or (2 and 3)',
        },
        start: 'earliest',
      });
      await g.publish([...tickets(tenant), { tenant, type: 'other.created', data: { n: 7, priority: 'urgent' } }]);
      assert.deepEqual(await ns(c.key), [1, 2, 3, 4, 5, 6]);
      const c2 = await g.createConsumer({
        tenant,
        filter: { where: [{ field: 'data.priority', op: 'starts_with', value: 'urg' }, { field: 'data.n', op: 'lt', value: 5 }] },
        start: 'earliest',
      });
      assert.deepEqual(await ns(c2.key), [1, 4]);
    });

    test('the filter is shown back on the consumer', async () => {
      const tenant = freshTenant('where');
      const filter = { types: ['ticket.*'], where: conditions, expression: '(1 or 2) and 3' };
      const c = await g.createConsumer({ tenant, filter });
      assert.deepEqual(c.filter, filter);
      assert.deepEqual((await view(c.id)).filter, filter);
      assert.deepEqual((await g.json('/v1/consumer', { key: c.key })).body.filter, filter);
    });

    test('an empty poll on a filtered consumer returns a cursor that skips non-matching events when acked', async () => {
      const tenant = freshTenant('skip');
      const c = await g.createConsumer({ tenant, filter: { types: ['wanted'] }, start: 'earliest' });
      await g.publish([
        { tenant, type: 'unwanted', data: 1 },
        { tenant, type: 'unwanted', data: 2 },
      ]);
      const p = await poll(c.key);
      assert.deepEqual(p.events, []);
      assert.equal((await view(c.id)).lag, 2);
      const acked = await g.json('/v1/ack', { key: c.key, body: { cursor: p.cursor } });
      assert.equal(acked.status, 200);
      assert.equal((await view(c.id)).lag, 0);
    });
  });

  describe('GET /v1/consumers and /v1/consumers/:id', () => {
    test('last_poll_at: null until the consumer polls, then the time of its latest poll', async () => {
      const c = await g.createConsumer({ tenant: freshTenant('lastpoll') });
      assert.equal((await g.json(`/v1/consumers/${c.id}`)).body.last_poll_at, null);
      const before = Date.now();
      assert.equal((await g.json('/v1/events?wait=0', { key: c.key })).status, 200);
      const seen = (await g.json(`/v1/consumers/${c.id}`)).body.last_poll_at;
      assert.equal(typeof seen, 'string');
      const at = Date.parse(seen);
      assert.ok(at >= before - 5 && at <= Date.now(), `last_poll_at ${seen} is the poll's time`);
      assert.equal((await g.json('/v1/consumer', { key: c.key })).body.last_poll_at, seen, 'the consumer sees the same');
    });

    test('list by tenant shows only that tenant, without keys', async () => {
      const t1 = freshTenant('list');
      const t2 = freshTenant('list');
      const a = await g.createConsumer({ tenant: t1, name: 'a' });
      const b = await g.createConsumer({ tenant: t1, name: 'b' });
      const c = await g.createConsumer({ tenant: t2, name: 'c' });
      const r = await g.json(`/v1/consumers?tenant=${t1}`);
      assert.equal(r.status, 200);
      assert.deepEqual(r.body.consumers.map((x: any) => x.id).sort(), [a.id, b.id].sort());
      for (const x of r.body.consumers) {
        assertConsumerView(x, { tenant: t1 });
        assert.ok(!('key' in x));
      }
      assert.equal(r.body.next, null);
      const all = await g.json('/v1/consumers?limit=1000');
      assert.equal(all.status, 200);
      const ids = all.body.consumers.map((x: any) => x.id);
      for (const id of [a.id, b.id, c.id]) assert.ok(ids.includes(id));
      assert.deepEqual(await consumersOf(freshTenant('nobody')), []);
    });

    test('pagination with limit and after=next visits every consumer once', async () => {
      const tenant = freshTenant('page');
      const created: string[] = [];
      for (let i = 0; i < 5; i++) created.push((await g.createConsumer({ tenant, name: `p${i}` })).id);
      const seen: string[] = [];
      let after: string | null = null;
      const sizes: number[] = [];
      for (let i = 0; i < 10; i++) {
        const r: { status: number; body: any } = await g.json(`/v1/consumers?tenant=${tenant}&limit=2${after ? `&after=${after}` : ''}`);
        assert.equal(r.status, 200);
        sizes.push(r.body.consumers.length);
        seen.push(...r.body.consumers.map((x: any) => x.id));
        after = r.body.next;
        if (after === null) break;
        assert.equal(typeof after, 'string');
      }
      assert.deepEqual(sizes, [2, 2, 1]);
      assert.equal(new Set(seen).size, 5);
      assert.deepEqual([...seen].sort(), [...created].sort());
    });

    test('bad list parameters are 400', async () => {
      for (const q of ['limit=0', 'limit=1001', 'limit=abc', 'limit=1.5', 'limit=-1', 'tenant=', 'tenant=has%20space']) {
        assertError(await g.json(`/v1/consumers?${q}`), 400);
      }
    });

    test('GET one; unknown id is 404', async () => {
      const tenant = freshTenant('one');
      const c = await g.createConsumer({ tenant, name: 'single' });
      const r = await view(c.id);
      assertConsumerView(r, { tenant, name: 'single', filter: null });
      assert.equal(r.id, c.id);
      assert.equal(r.cursor, c.cursor);
      assertError(await g.json('/v1/consumers/con_doesnotexist00'), 404, 'not_found');
      assertError(await g.json('/v1/consumers/not-even-an-id'), 404, 'not_found');
      assertError(await g.json(`/v1/consumers/${c.id}x`), 404, 'not_found');
    });
  });

  describe('PATCH /v1/consumers/:id', () => {
    test('changes name and filter; the new filter applies to the next poll; cursor unchanged', async () => {
      const tenant = freshTenant('patch');
      const c = await g.createConsumer({ tenant, name: 'before', start: 'earliest' });
      await g.publish([
        { tenant, type: 'keep.me', data: 1 },
        { tenant, type: 'drop.me', data: 2 },
      ]);
      assert.deepEqual(await dataOf(c.key), [1, 2]);
      const r = await g.json(`/v1/consumers/${c.id}`, { method: 'PATCH', body: { name: 'after', filter: { types: ['keep.*'] } } });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assertConsumerView(r.body, { tenant, name: 'after', filter: { types: ['keep.*'] } });
      assert.equal(r.body.cursor, c.cursor);
      assert.ok(!('key' in r.body));
      assert.deepEqual(await view(c.id), { ...r.body, polling: (await view(c.id)).polling });
      assert.deepEqual(await dataOf(c.key), [1]);

      // Only the name: the filter stays.
      const n = await g.json(`/v1/consumers/${c.id}`, { method: 'PATCH', body: { name: 'again' } });
      assert.equal(n.status, 200);
      assert.deepEqual(n.body.filter, { types: ['keep.*'] });
      // filter null clears it.
      const cleared = await g.json(`/v1/consumers/${c.id}`, { method: 'PATCH', body: { filter: null } });
      assert.equal(cleared.status, 200);
      assert.equal(cleared.body.filter, null);
      assert.equal(cleared.body.name, 'again');
      assert.deepEqual(await dataOf(c.key), [1, 2]);
      // Renaming to its own current name is not a conflict.
      assert.equal((await g.json(`/v1/consumers/${c.id}`, { method: 'PATCH', body: { name: 'again' } })).status, 200);
      // An empty patch changes nothing.
      const empty = await g.json(`/v1/consumers/${c.id}`, { method: 'PATCH', body: {} });
      assert.equal(empty.status, 200);
      assert.equal(empty.body.name, 'again');
    });

    test('invalid patches are 400 and change nothing', async () => {
      const tenant = freshTenant('patch');
      const filter = { types: ['x.*'] };
      const c = await g.createConsumer({ tenant, name: 'stable', filter });
      const cases: Array<[unknown, string]> = [
        [{ name: 'has space' }, 'invalid_request'],
        [{ name: 'x'.repeat(129) }, 'invalid_request'],
        [{ name: 7 }, 'invalid_request'],
        [{ tenant: 'other' }, 'invalid_request'],
        [{ cursor: c.cursor }, 'invalid_request'],
        [{ filter: { types: ['a..b'] } }, 'invalid_filter'],
        [{ filter: { where: [{ field: 'data.a', op: 'eq', value: 1 }], expression: '1 and 2' } }, 'invalid_filter'],
        [{ name: 'fine', filter: { types: 'nope' } }, 'invalid_filter'],
      ];
      for (const [body, code] of cases) {
        assertError(await g.json(`/v1/consumers/${c.id}`, { method: 'PATCH', body }), 400, code);
      }
      const bad = await g.json(`/v1/consumers/${c.id}`, {
        method: 'PATCH',
        body: { filter: { where: [{ field: 'data.a', op: 'eq', value: 1 }], expression: '1 and 2' } },
      });
      assert.match(bad.body.error.message, /condition 2 does not exist/);
      const v = await view(c.id);
      assert.equal(v.name, 'stable');
      assert.deepEqual(v.filter, filter);
    });

    test('unknown id is 404; a taken name is 409 and changes nothing', async () => {
      const tenant = freshTenant('patch');
      assertError(await g.json('/v1/consumers/con_nope0000000000', { method: 'PATCH', body: { name: 'x' } }), 404, 'not_found');
      const a = await g.createConsumer({ tenant, name: 'alpha' });
      const b = await g.createConsumer({ tenant, name: 'beta' });
      assertError(await g.json(`/v1/consumers/${b.id}`, { method: 'PATCH', body: { name: 'alpha' } }), 409, 'conflict');
      assert.equal((await view(b.id)).name, 'beta');
      assert.equal((await view(a.id)).name, 'alpha');
      // A name taken in another tenant is free here.
      await g.createConsumer({ tenant: freshTenant('patch'), name: 'gamma' });
      assert.equal((await g.json(`/v1/consumers/${b.id}`, { method: 'PATCH', body: { name: 'gamma' } })).status, 200);
    });
  });

  describe('DELETE /v1/consumers/:id', () => {
    test('204, then GET is 404, its key is 401, a second DELETE is 404, and the name is free again', async () => {
      const tenant = freshTenant('del');
      const c = await g.createConsumer({ tenant, name: 'doomed' });
      const res = await g.call(`/v1/consumers/${c.id}`, { method: 'DELETE' });
      assert.equal(res.status, 204);
      assert.equal(await res.text(), '');
      assertError(await g.json(`/v1/consumers/${c.id}`), 404, 'not_found');
      assertError(await g.json('/v1/events?wait=0', { key: c.key }), 401, 'unauthorized');
      assertError(await g.json('/v1/consumer', { key: c.key }), 401, 'unauthorized');
      const again = await g.json(`/v1/consumers/${c.id}`, { method: 'DELETE' });
      assertError(again, 404, 'not_found');
      assertError(await g.json(`/v1/consumers/${c.id}/seek`, { body: { to: 'earliest' } }), 404, 'not_found');
      assertError(await g.json(`/v1/consumers/${c.id}/key`, { method: 'POST' }), 404, 'not_found');
      assertError(await g.json(`/v1/consumers/${c.id}`, { method: 'PATCH', body: { name: 'x' } }), 404, 'not_found');
      assert.deepEqual(await consumersOf(tenant), []);
      assert.equal((await g.json('/v1/consumers', { body: { tenant, name: 'doomed' } })).status, 201);
    });
  });

  describe('seek', () => {
    async function setup() {
      const tenant = freshTenant('seek');
      const events = await publishSpaced(tenant, [1, 2, 3]);
      const c = await g.createConsumer({ tenant, start: 'earliest' });
      return { tenant, events, c };
    }
    const seek = (id: string, to: unknown) => g.json(`/v1/consumers/${id}/seek`, { body: { to } });

    test('latest, earliest, {cursor} and {time} move where the next poll reads', async () => {
      const { events, c } = await setup();
      const [e1, e2, e3] = events;

      let r = await seek(c.id, 'latest');
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assertConsumerView(r.body, { tenant: c.tenant });
      assert.ok(!('key' in r.body));
      assert.equal(r.body.lag, 0);
      assert.deepEqual(await dataOf(c.key), []);

      r = await seek(c.id, 'earliest');
      assert.equal(r.status, 200);
      assert.equal(r.body.lag, 3);
      assert.deepEqual(await dataOf(c.key), [1, 2, 3]);

      r = await seek(c.id, { cursor: e1.cursor });
      assert.equal(r.status, 200);
      assert.equal(r.body.cursor, e1.cursor);
      assert.deepEqual(await dataOf(c.key), [2, 3]);

      r = await seek(c.id, { time: e3.time });
      assert.equal(r.status, 200);
      assert.deepEqual(await dataOf(c.key), [3]);

      r = await seek(c.id, { time: e2.time });
      assert.deepEqual(await dataOf(c.key), [2, 3]);
      assert.equal((await view(c.id)).cursor, r.body.cursor);
    });

    test('seek moves the committed cursor backwards too (after an ack)', async () => {
      const { events, c } = await setup();
      const [e1, , e3] = events;
      assert.equal((await g.json('/v1/ack', { key: c.key, body: { cursor: e3.cursor } })).status, 200);
      assert.deepEqual(await dataOf(c.key), []);
      const r = await seek(c.id, { cursor: e1.cursor });
      assert.equal(r.status, 200);
      assert.equal((await view(c.id)).cursor, e1.cursor);
      assert.deepEqual(await dataOf(c.key), [2, 3]);
    });

    test('a bad seek is 400 and changes nothing', async () => {
      const { events, c } = await setup();
      const [e1] = events;
      assert.equal((await g.json('/v1/ack', { key: c.key, body: { cursor: e1.cursor } })).status, 200);
      const before = await view(c.id);
      await assertPastHead();
      const bad: Array<[unknown, string[]]> = [
        [{}, ['invalid_request']],
        [{ to: 'middle' }, ['invalid_request']],
        [{ to: null }, ['invalid_request']],
        [{ to: { cursor: 'zzz' } }, ['invalid_cursor', 'invalid_request']],
        [{ to: { cursor: pastHead } }, ['invalid_cursor']],
        [{ to: { time: 'not a time' } }, ['invalid_request']],
        [{ to: 'earliest', extra: 1 }, ['invalid_request']],
      ];
      for (const [body, codes] of bad) {
        assertError(await g.json(`/v1/consumers/${c.id}/seek`, { body }), 400, codes);
      }
      assertError(await g.json(`/v1/consumers/${c.id}/seek`, { raw: '{', headers: { 'content-type': 'application/json' } }), 400, 'invalid_json');
      const afterBad = await view(c.id);
      assert.equal(afterBad.cursor, before.cursor);
      assert.equal(afterBad.lag, 2);
      assert.deepEqual(await dataOf(c.key), [2, 3]);
    });

    test('seek on an unknown consumer is 404', async () => {
      assertError(await seek('con_nope0000000000', 'earliest'), 404, 'not_found');
    });
  });

  describe('key rotation', () => {
    test('new key works, old key is 401, GET shows no key, cursor and settings are kept', async () => {
      const tenant = freshTenant('rotate');
      const c = await g.createConsumer({ tenant, name: 'rot', filter: { types: ['a'] }, start: 'earliest' });
      const e = await g.publish({ tenant, type: 'a', data: 1 });
      assert.equal((await g.json('/v1/ack', { key: c.key, body: { cursor: e.cursor } })).status, 200);

      const r = await g.json(`/v1/consumers/${c.id}/key`, { method: 'POST' });
      assert.ok(r.status === 200 || r.status === 201, JSON.stringify(r.body));
      assert.match(r.body.key, KEY_SHAPE);
      assert.notEqual(r.body.key, c.key);
      assert.equal(r.body.id, c.id);
      assert.equal(r.body.cursor, e.cursor);
      assert.equal(r.body.name, 'rot');

      assertError(await g.json('/v1/events?wait=0', { key: c.key }), 401, 'unauthorized');
      const me = await g.json('/v1/consumer', { key: r.body.key });
      assert.equal(me.status, 200);
      assert.equal(me.body.id, c.id);
      assert.equal(me.body.cursor, e.cursor);
      assert.deepEqual(me.body.filter, { types: ['a'] });
      await g.publish({ tenant, type: 'a', data: 2 });
      assert.deepEqual(await dataOf(r.body.key), [2]);

      const got = await view(c.id);
      assert.ok(!('key' in got));
      assert.ok(!JSON.stringify(got).includes(r.body.key));

      // Rotating again retires the second key as well.
      const r2 = await g.json(`/v1/consumers/${c.id}/key`, { method: 'POST' });
      assert.match(r2.body.key, KEY_SHAPE);
      assertError(await g.json('/v1/consumer', { key: r.body.key }), 401, 'unauthorized');
      assert.equal((await g.json('/v1/consumer', { key: r2.body.key })).status, 200);
    });

    test('rotating an unknown consumer is 404', async () => {
      assertError(await g.json('/v1/consumers/con_nope0000000000/key', { method: 'POST' }), 404, 'not_found');
    });
  });

  describe('lag', () => {
    test("lag counts the tenant's events after the committed cursor and drops on ack", async () => {
      const tenant = freshTenant('lag');
      const noise = freshTenant('lag-noise');
      const r = await g.publish(Array.from({ length: 5 }, (_, i) => ({ tenant, type: 'x', data: i })));
      const c = await g.createConsumer({ tenant, start: 'earliest' });
      const lagOf = async () => {
        const admin = await view(c.id);
        const own = await g.json('/v1/consumer', { key: c.key });
        assert.equal(own.status, 200);
        assert.equal(own.body.id, c.id);
        assert.equal(own.body.lag, admin.lag, 'both views agree');
        assert.equal(own.body.cursor, admin.cursor);
        return admin.lag as number;
      };
      assert.equal(c.lag, 5);
      assert.equal(await lagOf(), 5);

      await g.publish([{ tenant: noise, type: 'x', data: 0 }, { tenant: noise, type: 'x', data: 1 }]);
      assert.equal(await lagOf(), 5, "other tenants' events do not count");

      const p = await poll(c.key);
      assert.equal(p.events.length, 5);
      assert.equal(await lagOf(), 5, 'reading does not commit');

      const acked = await g.json('/v1/ack', { key: c.key, body: { cursor: r.events[1].cursor } });
      assert.equal(acked.status, 200);
      assert.equal(acked.body.cursor, r.events[1].cursor);
      assert.equal(await lagOf(), 3);

      // Acking behind the committed cursor is a no-op.
      const behind = await g.json('/v1/ack', { key: c.key, body: { cursor: r.events[0].cursor } });
      assert.equal(behind.status, 200);
      assert.equal(behind.body.cursor, r.events[1].cursor);
      assert.equal(await lagOf(), 3);

      // Ack through a poll's ack parameter.
      const q = await poll(c.key, `&ack=${r.events[4].cursor}`);
      assert.deepEqual(q.events, []);
      assert.equal(await lagOf(), 0);

      await g.publish({ tenant, type: 'x', data: 'late' });
      assert.equal(await lagOf(), 1);
      const list = await consumersOf(tenant);
      assert.equal(list.find((x) => x.id === c.id).lag, 1, 'the list shows the same lag');
    });

    test('a latest consumer starts with lag 0', async () => {
      const tenant = freshTenant('lag');
      await g.publish([{ tenant, type: 'x', data: 1 }, { tenant, type: 'x', data: 2 }]);
      const c = await g.createConsumer({ tenant });
      assert.equal(c.lag, 0);
      assert.equal((await view(c.id)).lag, 0);
    });
  });
});
