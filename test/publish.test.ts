/**
 * HTTP contract tests for POST /v1/events (SPEC: Event envelope, Publishing, Errors),
 * against a real gateway on a loopback port over a real SQLite file.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { ADMIN_KEY, startGateway, type TestGateway } from './support/gateway.ts';
import { sleep } from './support/wait.ts';
import { appendedTotal } from './support/appended.ts';

const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const GENERATED_ID = /^evt_[A-Za-z0-9_-]{8,}$/;
const ENVELOPE_KEYS = ['cursor', 'data', 'id', 'tenant', 'time', 'type'];

let tenantSeq = 0;
/** A tenant no other test uses. */
const freshTenant = (label = 't') => `pub-${label}-${++tenantSeq}-${Date.now() % 100000}`;

/** Asserts an error answer: status, JSON shape {error:{code,message}}, optionally code and field. */
function assertError(
  r: { status: number; body: any; headers: Headers },
  status: number,
  opts: { code?: string | string[]; field?: string } = {},
): void {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${JSON.stringify(r.body)}`);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
  assert.ok(r.body && typeof r.body === 'object', 'error body is a JSON object');
  assert.ok(r.body.error && typeof r.body.error === 'object', `error body has "error": ${JSON.stringify(r.body)}`);
  assert.equal(typeof r.body.error.code, 'string');
  assert.match(r.body.error.code, /^[a-z][a-z0-9_]*$/, 'code is snake_case');
  assert.equal(typeof r.body.error.message, 'string');
  assert.ok(r.body.error.message.length > 0, 'message is not empty');
  if (opts.code !== undefined) {
    const codes = Array.isArray(opts.code) ? opts.code : [opts.code];
    assert.ok(codes.includes(r.body.error.code), `code ${r.body.error.code} not in ${codes.join(', ')}`);
  }
  if (opts.field !== undefined) {
    assert.equal(r.body.error.field, opts.field, `field of ${JSON.stringify(r.body)}`);
    assert.ok(r.body.error.message.includes(opts.field), `message names the field: ${r.body.error.message}`);
  }
}

/** Asserts a well-formed envelope; checks the given fields exactly. */
function assertEnvelope(e: any, expected: { tenant: string; type: string; data: unknown; id?: string }): void {
  assert.deepEqual(Object.keys(e).sort(), ENVELOPE_KEYS);
  if (expected.id !== undefined) assert.equal(e.id, expected.id);
  else assert.match(e.id, GENERATED_ID);
  assert.equal(typeof e.cursor, 'string');
  assert.ok(e.cursor.length > 0);
  assert.equal(e.tenant, expected.tenant);
  assert.equal(e.type, expected.type);
  assert.match(e.time, ISO_MS);
  assert.equal(new Date(e.time).toISOString(), e.time, 'time is a real UTC instant');
  assert.ok(Math.abs(Date.parse(e.time) - Date.now()) < 60_000, `time ${e.time} is the commit time (now)`);
  assert.deepEqual(e.data, expected.data);
}

function assertIncreasing(cursors: string[]): void {
  for (let i = 1; i < cursors.length; i++) {
    assert.ok(cursors[i - 1]! < cursors[i]!, `cursor ${cursors[i]} is not after ${cursors[i - 1]}`);
  }
}

function postRaw(g: TestGateway, raw: string | Buffer, contentType = 'application/json') {
  return g.json('/v1/events', { method: 'POST', raw, headers: { 'content-type': contentType } });
}

async function head(g: TestGateway): Promise<number> {
  return appendedTotal(g.url, ADMIN_KEY);
}

/** Every event of a tenant, in log order, read through a fresh consumer starting at earliest. */
async function readAll(g: TestGateway, tenant: string): Promise<any[]> {
  const c = await g.createConsumer({ tenant, start: 'earliest' });
  const out: any[] = [];
  let after: string | undefined;
  for (let i = 0; i < 100; i++) {
    const q = `wait=0&limit=1000${after ? `&after=${encodeURIComponent(after)}` : ''}`;
    const r = await g.json(`/v1/events?${q}`, { key: c.key });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    out.push(...r.body.events);
    after = r.body.cursor;
    if (!r.body.more) break;
  }
  const del = await g.call(`/v1/consumers/${c.id}`, { method: 'DELETE' });
  assert.equal(del.status, 204);
  return out;
}

describe('publish (default limits)', () => {
  let g: TestGateway;
  before(async () => {
    g = await startGateway();
  });
  after(async () => {
    await g?.close();
  });

  test('single event: 201 with the full envelope; a generated evt_ id; readable unchanged on the poll path', async () => {
    const tenant = freshTenant();
    const r = await g.json('/v1/events', { body: { tenant, type: 'ticket.created', data: { ticketId: 'ebcb7b53' } } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
    assertEnvelope(r.body, { tenant, type: 'ticket.created', data: { ticketId: 'ebcb7b53' } });
    const read = await readAll(g, tenant);
    assert.deepEqual(read, [r.body], 'the poll path shows the identical envelope');
  });

  test('generated ids are distinct', async () => {
    const tenant = freshTenant();
    const r = await g.json('/v1/events', { body: Array.from({ length: 50 }, () => ({ tenant, type: 'x', data: null })) });
    assert.equal(r.status, 201);
    const ids = r.body.events.map((e: any) => e.id);
    for (const id of ids) assert.match(id, GENERATED_ID);
    assert.equal(new Set(ids).size, 50);
  });

  test('generated ids increase with the log on one server (so appends stay at the end of the id index)', async () => {
    const tenant = freshTenant();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await g.json('/v1/events', { body: Array.from({ length: 20 }, () => ({ tenant, type: 'x', data: null })) });
      ids.push(...r.body.events.map((e: any) => e.id));
    }
    assert.equal(new Set(ids).size, 100);
    assert.deepEqual([...ids].sort(), ids, 'in cursor order, the ids sort ascending');
  });

  test('data round-trips any JSON value (null, numbers, strings with unicode, nested)', async () => {
    const tenant = freshTenant();
    const values: unknown[] = [
      null,
      0,
      -1.5,
      1e-7,
      1.7976931348623157e308,
      -9007199254740991,
      true,
      false,
      '',
      'héllo — 日本語 🎉 \u2028\u2029 "quoted" back\\slash\nnew line\t tab \u0000 nul',
      [],
      {},
      [1, 'two', null, [3, [4, { five: 5 }]]],
      { a: { b: [1, { c: null, d: 'ü' }] }, 'key with spaces': 1, 'ключ': 'значение', '': 'empty key' },
    ];
    const published: any[] = [];
    for (const data of values) {
      const r = await g.json('/v1/events', { body: { tenant, type: 'data.roundtrip', data } });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assertEnvelope(r.body, { tenant, type: 'data.roundtrip', data });
      published.push(r.body);
    }
    const read = await readAll(g, tenant);
    assert.deepEqual(read, published);
  });

  test('a "__proto__" key inside data is kept as plain data', async () => {
    const tenant = freshTenant();
    const r = await postRaw(g, `{"tenant":"${tenant}","type":"a","data":{"__proto__":{"polluted":true},"x":1}}`);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.deepEqual(Object.keys(r.body.data).sort(), ['__proto__', 'x']);
    assert.equal(({} as any).polluted, undefined);
    const [read] = await readAll(g, tenant);
    assert.deepEqual(read, r.body);
  });

  test('time is the commit time in ISO 8601 UTC with milliseconds, non-decreasing along the log', async () => {
    const tenant = freshTenant();
    const before = Date.now();
    const a = await g.publish({ tenant, type: 'a', data: 1 });
    await sleep(5);
    const b = await g.publish({ tenant, type: 'b', data: 2 });
    const afterT = Date.now();
    for (const e of [a, b]) {
      assert.match(e.time, ISO_MS);
      assert.ok(Date.parse(e.time) >= before - 5 && Date.parse(e.time) <= afterT + 5, `${e.time} within the request`);
    }
    assert.ok(Date.parse(b.time) > Date.parse(a.time), 'a later commit has a later time');
    assertIncreasing([a.cursor, b.cursor]);
  });

  test('array: 201 {events:[…]} in request order with increasing cursors', async () => {
    const tenant = freshTenant();
    const input = [
      { tenant, type: 'order.created', data: { n: 0 } },
      { tenant, type: 'order.paid', data: { n: 1 }, id: 'ord-1:paid' },
      { tenant, type: 'order.shipped', data: { n: 2 } },
    ];
    const r = await g.json('/v1/events', { body: input });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.deepEqual(Object.keys(r.body), ['events']);
    assert.equal(r.body.events.length, 3);
    input.forEach((e, i) => assertEnvelope(r.body.events[i], e));
    assertIncreasing(r.body.events.map((e: any) => e.cursor));
    assert.deepEqual(await readAll(g, tenant), r.body.events);
  });

  test('array of one event: 201 {events:[envelope]}', async () => {
    const tenant = freshTenant();
    const r = await g.json('/v1/events', { body: [{ tenant, type: 'one', data: 'only' }] });
    assert.equal(r.status, 201);
    assert.equal(r.body.events.length, 1);
    assertEnvelope(r.body.events[0], { tenant, type: 'one', data: 'only' });
  });

  test('array may mix tenants; each event lands in its own tenant', async () => {
    const t1 = freshTenant('mix');
    const t2 = freshTenant('mix');
    const r = await g.json('/v1/events', {
      body: [
        { tenant: t1, type: 'a', data: 1 },
        { tenant: t2, type: 'a', data: 2 },
        { tenant: t1, type: 'a', data: 3 },
      ],
    });
    assert.equal(r.status, 201);
    assert.deepEqual((await readAll(g, t1)).map((e) => e.data), [1, 3]);
    assert.deepEqual((await readAll(g, t2)).map((e) => e.data), [2]);
  });

  describe('producer id idempotency', () => {
    test('same id again: 200 with the ORIGINAL envelope, nothing new stored, even if data/type differ', async () => {
      const tenant = freshTenant('idem');
      const first = await g.json('/v1/events', { body: { tenant, type: 'invoice.paid', id: 'inv_42', data: { amount: 10 } } });
      assert.equal(first.status, 201);
      assertEnvelope(first.body, { tenant, type: 'invoice.paid', id: 'inv_42', data: { amount: 10 } });
      const h = await head(g);
      await sleep(3);
      const again = await g.json('/v1/events', { body: { tenant, type: 'invoice.voided', id: 'inv_42', data: { amount: 99 } } });
      assert.equal(again.status, 200, JSON.stringify(again.body));
      assert.deepEqual(again.body, first.body, 'the original envelope: same cursor, time, type and data');
      const same = await g.json('/v1/events', { body: { tenant, type: 'invoice.paid', id: 'inv_42', data: { amount: 10 } } });
      assert.equal(same.status, 200);
      assert.deepEqual(same.body, first.body);
      assert.equal(await head(g), h, 'nothing was appended');
      assert.deepEqual(await readAll(g, tenant), [first.body]);
    });

    test('the same id in another tenant is a different event', async () => {
      const t1 = freshTenant('idem');
      const t2 = freshTenant('idem');
      const a = await g.json('/v1/events', { body: { tenant: t1, type: 'x', id: 'shared-id', data: 'a' } });
      const b = await g.json('/v1/events', { body: { tenant: t2, type: 'x', id: 'shared-id', data: 'b' } });
      assert.equal(a.status, 201);
      assert.equal(b.status, 201, 'not a duplicate: another tenant');
      assert.equal(a.body.cursor, 't0000000000000001', 'positions are per tenant: each is its tenant\'s first event');
      assert.equal(b.body.cursor, 't0000000000000001');
      assert.equal(b.body.tenant, t2);
      assert.equal(b.body.data, 'b');
      assert.deepEqual((await readAll(g, t1)).map((e) => e.data), ['a']);
      assert.deepEqual((await readAll(g, t2)).map((e) => e.data), ['b']);
    });

    test('a duplicate inside one array maps to the original envelope; stored once', async () => {
      const tenant = freshTenant('idem');
      const h = await head(g);
      const r = await g.json('/v1/events', {
        body: [
          { tenant, type: 'a', id: 'd1', data: 1 },
          { tenant, type: 'b', id: 'd2', data: 2 },
          { tenant, type: 'c', id: 'd1', data: 3 },
        ],
      });
      assert.equal(r.status, 201);
      assert.equal(r.body.events.length, 3);
      assert.deepEqual(r.body.events[2], r.body.events[0]);
      assert.equal(r.body.events[2].data, 1);
      assert.equal(await head(g), h + 2);
      assert.deepEqual((await readAll(g, tenant)).map((e) => e.id), ['d1', 'd2']);
    });

    test('an array holding an already-stored id: 201; that entry is the original, the others are new', async () => {
      const tenant = freshTenant('idem');
      const original = await g.publish({ tenant, type: 'a', id: 'old', data: 'original' });
      const r = await g.json('/v1/events', {
        body: [
          { tenant, type: 'b', data: 'new-1' },
          { tenant, type: 'a', id: 'old', data: 'changed' },
          { tenant, type: 'c', id: 'fresh', data: 'new-2' },
        ],
      });
      assert.equal(r.status, 201);
      assert.deepEqual(r.body.events[1], original);
      assert.equal(r.body.events[0].data, 'new-1');
      assert.equal(r.body.events[2].id, 'fresh');
      assertIncreasing([original.cursor, r.body.events[0].cursor, r.body.events[2].cursor]);
      assert.deepEqual((await readAll(g, tenant)).map((e) => e.data), ['original', 'new-1', 'new-2']);
    });

    test('an array of only duplicates is still 201', async () => {
      const tenant = freshTenant('idem');
      const original = await g.publish({ tenant, type: 'a', id: 'k', data: 1 });
      const r = await g.json('/v1/events', { body: [{ tenant, type: 'a', id: 'k', data: 2 }] });
      assert.equal(r.status, 201);
      assert.deepEqual(r.body, { events: [original] });
    });

    test('concurrent publishes of one id store it once and all answer the same envelope', async () => {
      const tenant = freshTenant('idem');
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => g.json('/v1/events', { body: { tenant, type: 'race', id: 'race-1', data: i } })),
      );
      const created = results.filter((r) => r.status === 201);
      assert.equal(created.length, 1, `exactly one 201: ${results.map((r) => r.status).join(',')}`);
      for (const r of results) {
        assert.ok(r.status === 200 || r.status === 201);
        assert.deepEqual(r.body, created[0]!.body);
      }
      assert.equal((await readAll(g, tenant)).length, 1);
    });

    test('valid ids at the edges are accepted and kept verbatim', async () => {
      const tenant = freshTenant('idem');
      for (const id of ['a', 'x'.repeat(128), 'ord:2024.11_22-Z']) {
        const r = await g.json('/v1/events', { body: { tenant, type: 'a', id, data: null } });
        assert.equal(r.status, 201, `${id}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.id, id);
      }
    });
  });

  describe('batch size and atomicity', () => {
    test('a batch of 1000 is accepted, in order, and fully readable', async () => {
      const tenant = freshTenant('big');
      const input = Array.from({ length: 1000 }, (_, i) => ({ tenant, type: 'bulk.item', data: { i } }));
      const r = await g.json('/v1/events', { body: input });
      assert.equal(r.status, 201, JSON.stringify(r.body).slice(0, 300));
      assert.equal(r.body.events.length, 1000);
      r.body.events.forEach((e: any, i: number) => assert.equal(e.data.i, i));
      assertIncreasing(r.body.events.map((e: any) => e.cursor));
      const read = await readAll(g, tenant);
      assert.equal(read.length, 1000);
      assert.deepEqual(read, r.body.events);
    });

    test('a batch of 1001 is 400 and stores nothing', async () => {
      const tenant = freshTenant('big');
      const h = await head(g);
      const input = Array.from({ length: 1001 }, (_, i) => ({ tenant, type: 'bulk.item', data: { i } }));
      const r = await g.json('/v1/events', { body: input });
      assertError(r, 400);
      assert.match(r.body.error.message, /1000/);
      assert.equal(await head(g), h);
      assert.equal((await readAll(g, tenant)).length, 0);
    });

    test('an empty array is 400', async () => {
      const h = await head(g);
      const r = await g.json('/v1/events', { body: [] });
      assertError(r, 400);
      assert.equal(await head(g), h);
    });

    test('one invalid event in an array: 400 naming it ([2].type), nothing stored', async () => {
      const tenant = freshTenant('atomic');
      const h = await head(g);
      const r = await g.json('/v1/events', {
        body: [
          { tenant, type: 'ok.one', data: 1 },
          { tenant, type: 'ok.two', data: 2 },
          { tenant, type: 'a..b', data: 3 },
          { tenant, type: 'ok.four', data: 4 },
        ],
      });
      assertError(r, 400, { code: 'invalid_request', field: '[2].type' });
      assert.equal(await head(g), h);
      assert.equal((await readAll(g, tenant)).length, 0);
    });

    test('array element problems are named by index: missing data, unknown field, not an object, bad tenant', async () => {
      const tenant = freshTenant('atomic');
      const h = await head(g);
      const ok = { tenant, type: 'ok', data: 1 };
      const cases: Array<[unknown[], string]> = [
        [[ok, { tenant, type: 'x' }], '[1].data'],
        [[ok, ok, { tenant, type: 'x', data: 1, extra: true }], '[2].extra'],
        [[ok, 5], '[1]'],
        [[null], '[0]'],
        [[ok, ['nested']], '[1]'],
        [[{ tenant: 'bad tenant', type: 'x', data: 1 }, ok], '[0].tenant'],
        [[ok, { tenant, type: 'x', data: 1, id: 'has space' }], '[1].id'],
      ];
      for (const [body, field] of cases) {
        const r = await g.json('/v1/events', { body });
        assertError(r, 400, { field });
      }
      assert.equal(await head(g), h);
      assert.equal((await readAll(g, tenant)).length, 0);
    });
  });

  describe('validation (400 naming the field)', () => {
    test('missing data is 400 naming data; data:null is fine', async () => {
      const tenant = freshTenant('val');
      assertError(await g.json('/v1/events', { body: { tenant, type: 'a' } }), 400, { field: 'data' });
      const r = await g.json('/v1/events', { body: { tenant, type: 'a', data: null } });
      assert.equal(r.status, 201);
      assert.equal(r.body.data, null);
      assert.ok('data' in r.body);
      const [read] = await readAll(g, tenant);
      assert.equal(read.data, null);
      assert.ok('data' in read);
    });

    test('an unknown field is 400 naming it', async () => {
      const tenant = freshTenant('val');
      const h = await head(g);
      assertError(await g.json('/v1/events', { body: { tenant, type: 'a', data: 1, extra: 2 } }), 400, { field: 'extra' });
      assertError(await g.json('/v1/events', { body: { tenant, type: 'a', data: 1, cursor: 'x' } }), 400, { field: 'cursor' });
      assertError(await g.json('/v1/events', { body: { tenant, type: 'a', data: 1, time: '2026-01-01T00:00:00.000Z' } }), 400, { field: 'time' });
      assertError(await postRaw(g, `{"tenant":"${tenant}","type":"a","data":1,"__proto__":{}}`), 400, { field: '__proto__' });
      assert.equal(await head(g), h);
    });

    test('bad tenants are 400 naming tenant; 64 characters and the full alphabet are fine', async () => {
      const h = await head(g);
      const bad: unknown[] = ['', 'a'.repeat(65), 'has space', 'a/b', 'a\nb', 'ü', 'a:b', 5, null, ['a'], { t: 1 }];
      for (const tenant of bad) {
        const r = await g.json('/v1/events', { body: { tenant, type: 'a', data: 1 } });
        assertError(r, 400, { code: 'invalid_request', field: 'tenant' });
      }
      assertError(await g.json('/v1/events', { body: { type: 'a', data: 1 } }), 400, { field: 'tenant' });
      assert.equal(await head(g), h);
      for (const tenant of ['b'.repeat(64), 'Az09._-', 'x']) {
        const r = await g.json('/v1/events', { body: { tenant, type: 'a', data: 1 } });
        assert.equal(r.status, 201, `${tenant}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.tenant, tenant);
      }
    });

    test('bad types are 400 naming type; 200 characters and dotted segments are fine', async () => {
      const tenant = freshTenant('val');
      const h = await head(g);
      const bad: unknown[] = ['a..b', '.a', 'a.', '.', '', 'has space', 'x'.repeat(201), 'a/b', 'a.*', 'ü', 7, null];
      for (const type of bad) {
        const r = await g.json('/v1/events', { body: { tenant, type, data: 1 } });
        assertError(r, 400, { code: 'invalid_request', field: 'type' });
      }
      assertError(await g.json('/v1/events', { body: { tenant, data: 1 } }), 400, { field: 'type' });
      assert.equal(await head(g), h);
      const longest = `${'a'.repeat(99)}.${'b'.repeat(100)}`;
      assert.equal(longest.length, 200);
      for (const type of [longest, 'x'.repeat(200), 'A_b-9.c.D', 'single']) {
        const r = await g.json('/v1/events', { body: { tenant, type, data: 1 } });
        assert.equal(r.status, 201, `${type}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.type, type);
      }
    });

    test('bad ids are 400 naming id', async () => {
      const tenant = freshTenant('val');
      const h = await head(g);
      for (const id of ['x'.repeat(129), 'has space', '', 'a/b', 'ü', 'a"b', 12, null, true]) {
        const r = await g.json('/v1/events', { body: { tenant, type: 'a', id, data: 1 } });
        assertError(r, 400, { code: 'invalid_request', field: 'id' });
      }
      assert.equal(await head(g), h);
    });

    test('a body that is not JSON is 400 invalid_json', async () => {
      const h = await head(g);
      for (const raw of ['{tenant', '{"tenant":"a",}', 'not json', '{"a":1} trailing', '\u00ff\u00fe']) {
        assertError(await postRaw(g, raw), 400, { code: 'invalid_json' });
      }
      assert.equal(await head(g), h);
    });

    test('an empty body is 400', async () => {
      const h = await head(g);
      assertError(await postRaw(g, ''), 400, { code: ['invalid_json', 'invalid_request'] });
      assertError(await postRaw(g, '   \n'), 400, { code: ['invalid_json', 'invalid_request'] });
      assert.equal(await head(g), h);
    });

    test('JSON that is not an event or an array is 400', async () => {
      const h = await head(g);
      for (const raw of ['"hello"', '42', 'null', 'true', '{}', '[[]]']) {
        const r = await postRaw(g, raw);
        assertError(r, 400);
        assert.equal(typeof r.body.error.field, 'string', `names a field for ${raw}`);
      }
      assert.equal(await head(g), h);
    });

    test('a wrong content-type is 415; JSON media types with parameters are fine', async () => {
      const tenant = freshTenant('ct');
      const h = await head(g);
      const body = JSON.stringify({ tenant, type: 'a', data: 1 });
      for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'text/json']) {
        assertError(await postRaw(g, body, type), 415, { code: 'unsupported_media_type' });
      }
      assert.equal(await head(g), h);
      assert.equal((await postRaw(g, body, 'application/json; charset=utf-8')).status, 201);
      assert.equal((await postRaw(g, body, 'Application/JSON')).status, 201);
    });

    test('no input yields a 500: a table of hostile bodies', async () => {
      const tenant = freshTenant('fuzz');
      const bodies = [
        '{"tenant":1,"type":2,"data":3}',
        `{"tenant":"${tenant}","type":"a","data":1,"id":{}}`,
        `{"tenant":"${tenant}","type":["a"],"data":1}`,
        `[{"tenant":"${tenant}","type":"a","data":1},"x"]`,
        `{"tenant":"${tenant}","type":"a","data":1e999}`,
        `{"tenant":"${tenant}","type":"a","data":"\\ud800"}`,
        `{"tenant":"${tenant}","type":"a","data":{"constructor":{"prototype":{"x":1}}}}`,
        `{"tenant":"${tenant}","type":"a","data":1,"data":2}`,
        `{"tenant":"${tenant}","tenant":"x y","type":"a","data":1}`,
        '[' + '1,'.repeat(999) + '1]',
        '\ufeff{"tenant":"x","type":"a","data":1}',
        '{"tenant":"x","type":"a","data":' + '{"a":'.repeat(200) + '1' + '}'.repeat(200) + '}',
      ];
      for (const raw of bodies) {
        const r = await postRaw(g, raw);
        assert.ok(r.status < 500, `${raw.slice(0, 60)} → ${r.status} ${JSON.stringify(r.body)}`);
        if (r.status >= 400) assertError(r, r.status);
        else assert.ok(r.status === 200 || r.status === 201);
      }
    });

    test('a number outside the double range is kept or refused, never silently stored as null', async () => {
      const tenant = freshTenant('inf');
      const h = await head(g);
      const r = await postRaw(g, `{"tenant":"${tenant}","type":"big","data":{"n":1e999}}`);
      if (r.status === 201) {
        // Stored: the consumer must not get a different value than the producer sent.
        const [read] = await readAll(g, tenant);
        assert.notDeepEqual(read.data, { n: null }, 'data {"n":1e999} was silently rewritten to {"n":null}');
        assert.equal(read.data.n, Infinity);
      } else {
        assertError(r, 400);
        assert.equal(await head(g), h);
      }
    });

    test('deeply nested data is answered (201 or a 4xx), never a 500', async () => {
      const tenant = freshTenant('deep');
      const depth = 20_000; // 40 KB serialized: well under the 256 KiB data limit
      const raw = `{"tenant":"${tenant}","type":"deep","data":${'['.repeat(depth)}${']'.repeat(depth)}}`;
      const h = await head(g);
      const r = await postRaw(g, raw);
      assert.notEqual(r.status, 500, `deep data gave ${r.status} ${JSON.stringify(r.body)}`);
      if (r.status === 201) {
        assert.equal(r.body.tenant, tenant);
      } else {
        assertError(r, r.status);
        assert.ok(r.status === 400 || r.status === 413);
        assert.equal(await head(g), h, 'a refused event stores nothing');
      }
      // The server is still fine afterwards.
      assert.equal((await g.json('/v1/events', { body: { tenant, type: 'after', data: 1 } })).status, 201);
    });
  });

  test('200 concurrent publishes: all 201, distinct cursors in commit order, all readable', async () => {
    const tenant = freshTenant('conc');
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => g.json('/v1/events', { body: { tenant, type: 'conc.event', data: { i } } })),
    );
    for (const r of results) assert.equal(r.status, 201, JSON.stringify(r.body));
    const envelopes = results.map((r) => r.body);
    const cursors = envelopes.map((e) => e.cursor);
    assert.equal(new Set(cursors).size, 200, 'cursors are distinct');
    assert.equal(new Set(envelopes.map((e) => e.id)).size, 200, 'ids are distinct');
    envelopes.forEach((e, i) => assertEnvelope(e, { tenant, type: 'conc.event', data: { i } }));

    const read = await readAll(g, tenant);
    assert.equal(read.length, 200, 'every acknowledged event is readable');
    assertIncreasing(read.map((e) => e.cursor));
    for (let k = 1; k < read.length; k++) {
      assert.ok(read[k - 1].time <= read[k].time, 'time never decreases along the log');
    }
    const byCursor = new Map(envelopes.map((e) => [e.cursor, e]));
    for (const e of read) assert.deepEqual(e, byCursor.get(e.cursor), 'the log holds exactly what was acknowledged');
    const sortedAnswered = [...cursors].sort();
    assert.deepEqual(read.map((e) => e.cursor), sortedAnswered);
  });
});

describe('publish size limits (maxEventBytes 1024, maxBodyBytes 64 KiB)', () => {
  let g: TestGateway;
  const MAX_BODY = 64 * 1024;
  before(async () => {
    g = await startGateway({ config: { maxEventBytes: 1024, maxBodyBytes: MAX_BODY } });
  });
  after(async () => {
    await g?.close();
  });

  test('data at the limit is accepted; one byte over is 413 (bytes, not characters)', async () => {
    const tenant = freshTenant('lim');
    // Serialized "x…x" is the string plus two quotes.
    assert.equal((await g.json('/v1/events', { body: { tenant, type: 'a', data: 'x'.repeat(1022) } })).status, 201);
    const h = await head(g);
    const over = await g.json('/v1/events', { body: { tenant, type: 'a', data: 'x'.repeat(1023) } });
    assertError(over, 413, { code: 'payload_too_large' });
    assert.match(over.body.error.message, /data/);
    // 'é' is two bytes in UTF-8: 511 of them serialize to 1024 bytes, 512 to 1026.
    assert.equal((await g.json('/v1/events', { body: { tenant, type: 'a', data: 'é'.repeat(511) } })).status, 201);
    assertError(await g.json('/v1/events', { body: { tenant, type: 'a', data: 'é'.repeat(512) } }), 413, { code: 'payload_too_large' });
    assertError(await g.json('/v1/events', { body: { tenant, type: 'a', data: { list: Array(600).fill(1) } } }), 413);
    assert.equal(await head(g), h + 1);
    assert.equal((await readAll(g, tenant)).length, 2);
  });

  test('an oversized data in an array is 413 and the whole batch stores nothing', async () => {
    const tenant = freshTenant('lim');
    const h = await head(g);
    const r = await g.json('/v1/events', {
      body: [
        { tenant, type: 'a', data: 1 },
        { tenant, type: 'a', data: 'x'.repeat(2000) },
        { tenant, type: 'a', data: 3 },
      ],
    });
    assertError(r, 413, { code: 'payload_too_large' });
    assert.match(r.body.error.message, /\[1\]/);
    assert.equal(await head(g), h);
    assert.equal((await readAll(g, tenant)).length, 0);
  });

  test('a body of exactly maxBodyBytes is accepted; one byte more is 413', async () => {
    const tenant = freshTenant('lim');
    const json = JSON.stringify({ tenant, type: 'a', data: 'edge' });
    const exact = json + ' '.repeat(MAX_BODY - Buffer.byteLength(json));
    assert.equal(Buffer.byteLength(exact), MAX_BODY);
    const ok = await postRaw(g, exact);
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    const h = await head(g);
    assertError(await postRaw(g, exact + ' '), 413, { code: 'payload_too_large' });
    assert.equal(await head(g), h);
  });

  test('an oversized body with Content-Length: the client receives 413; nothing stored; the server answers next', async () => {
    const tenant = freshTenant('lim');
    const h = await head(g);
    const big = JSON.stringify([{ tenant, type: 'a', data: 1 }, { tenant, type: 'b', data: 'x'.repeat(1024 * 1024) }]);
    const r = await postRaw(g, big);
    assertError(r, 413, { code: 'payload_too_large' });
    assert.equal(await head(g), h);
    const next = await g.json('/v1/events', { body: { tenant, type: 'after', data: 1 } });
    assert.equal(next.status, 201);
    assert.deepEqual((await readAll(g, tenant)).map((e) => e.type), ['after']);
  });

  test('an oversized chunked body sent with fetch: 413 received; nothing stored; the server answers next', async () => {
    const tenant = freshTenant('lim');
    const h = await head(g);
    const enc = new TextEncoder();
    const chunk = enc.encode('x'.repeat(8192));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(enc.encode(`{"tenant":"${tenant}","type":"a","data":"`));
      },
      pull(c) {
        if (sent++ < 40) c.enqueue(chunk); // ~320 KiB in all
        else {
          c.enqueue(enc.encode('"}'));
          c.close();
        }
      },
    });
    const res = await fetch(`${g.url}/v1/events`, {
      method: 'POST',
      body: stream,
      duplex: 'half',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
    } as RequestInit & { duplex: 'half' });
    const text = await res.text();
    assertError({ status: res.status, body: JSON.parse(text), headers: res.headers }, 413, { code: 'payload_too_large' });
    assert.equal(await head(g), h);
    assert.equal((await g.json('/v1/events', { body: { tenant, type: 'after', data: 1 } })).status, 201);
    assert.deepEqual((await readAll(g, tenant)).map((e) => e.type), ['after']);
  });

  test('a chunked body under the limit is read whole and accepted', async () => {
    const tenant = freshTenant('lim');
    const enc = new TextEncoder();
    const parts = [`[{"tenant":"${tenant}",`, '"type":"chunked","data":"', 'z'.repeat(500), '"},', `{"tenant":"${tenant}","type":"chunked","data":{"k":[1,2,3]}}]`];
    let i = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        if (i < parts.length) c.enqueue(enc.encode(parts[i++]!));
        else c.close();
      },
    });
    const res = await fetch(`${g.url}/v1/events`, {
      method: 'POST',
      body: stream,
      duplex: 'half',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
    } as RequestInit & { duplex: 'half' });
    const body = JSON.parse(await res.text());
    assert.equal(res.status, 201, JSON.stringify(body));
    assert.equal(body.events.length, 2);
    assert.equal(body.events[0].data, 'z'.repeat(500));
    assert.deepEqual(body.events[1].data, { k: [1, 2, 3] });
  });

  test('an oversized chunked body written with node:http: 413 received (no reset); nothing stored', async () => {
    const tenant = freshTenant('lim');
    const h = await head(g);
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(`${g.url}/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      });
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      });
      req.on('error', reject);
      assert.equal(req.getHeader('content-length'), undefined, 'no Content-Length: chunked');
      req.write(`{"tenant":"${tenant}","type":"a","data":"`);
      let i = 0;
      const pump = () => {
        while (i < 40) {
          i++;
          if (!req.write('y'.repeat(8192))) {
            req.once('drain', pump);
            return;
          }
        }
        req.end('"}');
      };
      pump();
    });
    assert.equal(status, 413, body);
    const parsed = JSON.parse(body);
    assert.equal(parsed.error.code, 'payload_too_large');
    assert.equal(typeof parsed.error.message, 'string');
    assert.equal(await head(g), h);
    assert.equal((await g.json('/v1/events', { body: { tenant, type: 'after', data: 1 } })).status, 201);
  });

  test('a body over the limit declared by Content-Length but never fully sent still gets a 413', async () => {
    // The client declares a huge body, sends a little, and waits for the answer.
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(`${g.url}/v1/events`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${ADMIN_KEY}`,
          'content-type': 'application/json',
          'content-length': String(10 * 1024 * 1024),
        },
      });
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, body: text });
          req.destroy();
        });
      });
      req.on('error', reject);
      req.write('{"tenant":"x","type":"a","data":"');
    });
    assert.equal(status, 413, body);
    assert.equal(JSON.parse(body).error.code, 'payload_too_large');
    assert.equal((await g.json('/readyz', { key: null })).status, 200);
  });
});
