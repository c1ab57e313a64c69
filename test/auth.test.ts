/**
 * HTTP contract tests for authentication and scope (SPEC: Auth, Errors), against a real
 * gateway on a loopback port over a real SQLite file.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SQLITE_ONLY } from './support/engine.ts';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_KEY, startGateway, type CallInit, type TestGateway } from './support/gateway.ts';
import { assertError } from './support/assertions.ts';
import { appendedTotal } from './support/appended.ts';

const KEY_SHAPE = /^pgk_[A-Za-z0-9]{44}$/;
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

let tenantSeq = 0;
const freshTenant = (label = 't') => `auth-${label}-${++tenantSeq}`;

function randomAlnum(n: number): string {
  const bytes = randomBytes(n);
  let out = '';
  for (const b of bytes) out += ALNUM[b % ALNUM.length];
  return out;
}

/** Raw Authorization header variant of g.json. */
function withHeader(g: TestGateway, path: string, authorization: string | null, init: CallInit = {}) {
  const headers: Record<string, string> = { ...init.headers };
  if (authorization !== null) headers.authorization = authorization;
  return g.json(path, { ...init, key: null, headers });
}

async function head(g: TestGateway): Promise<number> {
  return appendedTotal(g.url, ADMIN_KEY);
}

/** Every route under /v1, with a valid body where one is needed. */
function allRoutes(consumerId: string, tenant: string): Array<{ name: string; path: string; init: CallInit; scope: 'admin' | 'consumer' }> {
  return [
    { name: 'POST /v1/events', path: '/v1/events', init: { body: { tenant, type: 'a', data: 1 } }, scope: 'admin' },
    { name: 'GET /v1/consumers', path: '/v1/consumers', init: {}, scope: 'admin' },
    { name: 'GET /v1/consumers?tenant', path: `/v1/consumers?tenant=${tenant}`, init: {}, scope: 'admin' },
    { name: 'POST /v1/consumers', path: '/v1/consumers', init: { body: { tenant, name: 'intruder' } }, scope: 'admin' },
    { name: 'GET /v1/consumers/:id', path: `/v1/consumers/${consumerId}`, init: {}, scope: 'admin' },
    { name: 'PATCH /v1/consumers/:id', path: `/v1/consumers/${consumerId}`, init: { method: 'PATCH', body: { name: 'renamed-by-intruder' } }, scope: 'admin' },
    { name: 'DELETE /v1/consumers/:id', path: `/v1/consumers/${consumerId}`, init: { method: 'DELETE' }, scope: 'admin' },
    { name: 'POST /v1/consumers/:id/seek', path: `/v1/consumers/${consumerId}/seek`, init: { body: { to: 'earliest' } }, scope: 'admin' },
    { name: 'POST /v1/consumers/:id/key', path: `/v1/consumers/${consumerId}/key`, init: { method: 'POST' }, scope: 'admin' },
    { name: 'GET /v1/events', path: '/v1/events?wait=0', init: {}, scope: 'consumer' },
    { name: 'POST /v1/ack', path: '/v1/ack', init: { body: { cursor: 't0000000000000000' } }, scope: 'consumer' },
    { name: 'GET /v1/consumer', path: '/v1/consumer', init: {}, scope: 'consumer' },
  ];
}

describe('auth', () => {
  let g: TestGateway;
  before(async () => {
    g = await startGateway();
  });
  after(async () => {
    await g?.close();
  });

  describe('401 unauthorized', () => {
    test('no Authorization header: 401 on every /v1 route, and nothing changes', async () => {
      const tenant = freshTenant('nokey');
      const c = await g.createConsumer({ tenant, name: 'victim' });
      const h = await head(g);
      for (const route of allRoutes(c.id, tenant)) {
        const r = await g.json(route.path, { ...route.init, key: null });
        assertError(r, 401, 'unauthorized');
      }
      assert.equal(await head(g), h, 'nothing was published');
      const after = await g.json(`/v1/consumers/${c.id}`);
      assert.equal(after.status, 200, 'the consumer still exists');
      assert.equal(after.body.name, 'victim');
      assert.equal(after.body.cursor, c.cursor);
      assert.equal((await g.json('/v1/consumer', { key: c.key })).status, 200, 'its key was not rotated');
      const list = await g.json(`/v1/consumers?tenant=${tenant}`);
      assert.equal(list.body.consumers.length, 1, 'no consumer was created');
    });

    test('malformed Authorization headers are 401', async () => {
      const c = await g.createConsumer({ tenant: freshTenant('malformed') });
      const headers = [
        '',
        'Bearer',
        'Bearer ',
        ADMIN_KEY,
        `Basic ${Buffer.from(`admin:${ADMIN_KEY}`).toString('base64')}`,
        `Token ${ADMIN_KEY}`,
        `Bearer ${ADMIN_KEY} extra`,
        `Bearer ${ADMIN_KEY},${ADMIN_KEY}`,
        `BearerX ${ADMIN_KEY}`,
        `Bearer "${ADMIN_KEY}"`,
        c.key,
        `Basic ${c.key}`,
        `Bearer ${c.key} ${c.key}`,
      ];
      for (const value of headers) {
        assertError(await withHeader(g, '/v1/consumers', value), 401, 'unauthorized');
        assertError(await withHeader(g, '/v1/events?wait=0', value), 401, 'unauthorized');
      }
    });

    test('the auth scheme is case-insensitive (RFC 7235): "bearer <key>" works', async () => {
      const r = await withHeader(g, '/v1/consumers', `bearer ${ADMIN_KEY}`);
      assert.equal(r.status, 200);
    });

    test('a wrong admin key is 401', async () => {
      for (const key of [`${ADMIN_KEY}x`, ADMIN_KEY.slice(0, -1), ADMIN_KEY.toUpperCase(), 'pga_wrong', 'x']) {
        assertError(await g.json('/v1/consumers', { key }), 401, 'unauthorized');
        assertError(await g.json('/v1/events', { key, body: { tenant: 'x', type: 'a', data: 1 } }), 401, 'unauthorized');
      }
    });

    test('an unknown, well-formed consumer key is 401', async () => {
      const tenant = freshTenant('unknown');
      const real = await g.createConsumer({ tenant });
      assert.match(real.key, KEY_SHAPE);
      const unknown = `pgk_${randomAlnum(44)}`;
      assert.match(unknown, KEY_SHAPE);
      // The real key's lookup part with a wrong secret must not pass either.
      const sameIdWrongSecret = real.key.slice(0, 16) + (real.key.slice(16, 17) === 'A' ? 'B' : 'A') + real.key.slice(17);
      assert.notEqual(sameIdWrongSecret, real.key);
      for (const key of [unknown, sameIdWrongSecret, real.key.slice(0, -1), `${real.key}A`, real.key.toLowerCase() === real.key ? `${real.key.slice(0, -1)}Z` : real.key.toLowerCase()]) {
        assertError(await g.json('/v1/events?wait=0', { key }), 401, 'unauthorized');
        assertError(await g.json('/v1/consumer', { key }), 401, 'unauthorized');
        assertError(await g.json('/v1/ack', { key, body: { cursor: real.cursor } }), 401, 'unauthorized');
      }
      assert.equal((await g.json('/v1/consumer', { key: real.key })).status, 200, 'the real key still works');
    });

    test("a deleted consumer's key is 401", async () => {
      const tenant = freshTenant('deleted');
      const c = await g.createConsumer({ tenant });
      assert.equal((await g.json('/v1/events?wait=0', { key: c.key })).status, 200);
      assert.equal((await g.call(`/v1/consumers/${c.id}`, { method: 'DELETE' })).status, 204);
      assertError(await g.json('/v1/events?wait=0', { key: c.key }), 401, 'unauthorized');
      assertError(await g.json('/v1/consumer', { key: c.key }), 401, 'unauthorized');
      assertError(await g.json('/v1/ack', { key: c.key, body: { cursor: c.cursor } }), 401, 'unauthorized');
    });

    test('a rotated (old) key is 401; the new one works', async () => {
      const tenant = freshTenant('rotated');
      const c = await g.createConsumer({ tenant });
      const rotated = await g.json(`/v1/consumers/${c.id}/key`, { method: 'POST' });
      assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
      assert.match(rotated.body.key, KEY_SHAPE);
      assert.notEqual(rotated.body.key, c.key);
      assertError(await g.json('/v1/events?wait=0', { key: c.key }), 401, 'unauthorized');
      assertError(await g.json('/v1/consumer', { key: c.key }), 401, 'unauthorized');
      assertError(await g.json('/v1/ack', { key: c.key, body: { cursor: c.cursor } }), 401, 'unauthorized');
      const me = await g.json('/v1/consumer', { key: rotated.body.key });
      assert.equal(me.status, 200);
      assert.equal(me.body.id, c.id);
    });
  });

  describe('a held poll whose key stops working', () => {
    /** Starts a held poll and waits (briefly) until the gateway holds it. */
    async function heldPoll(key: string, id: string) {
      const started = Date.now();
      const pending = g.json('/v1/events?wait=5', { key });
      for (let i = 0; i < 50; i++) {
        if ((await g.json(`/v1/consumers/${id}`)).body.polling === true) break;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      return { pending, started };
    }

    test('rotating the key ends a poll held with the old key: 401, at once, no data', async () => {
      const tenant = freshTenant('held-rot');
      const c = await g.createConsumer({ tenant });
      const { pending, started } = await heldPoll(c.key, c.id);
      const rotated = await g.json(`/v1/consumers/${c.id}/key`, { method: 'POST' });
      assert.equal(rotated.status, 200);
      await g.publish({ tenant, type: 'x', data: 'after-rotation' });
      const r = await pending;
      assertError(r, 401, 'unauthorized');
      assert.ok(Date.now() - started < 2_000, 'ended well before its 5 s wait');
    });

    test('deleting the consumer ends its held poll (401 or 404), at once, no data', async () => {
      const tenant = freshTenant('held-del');
      const c = await g.createConsumer({ tenant });
      const { pending, started } = await heldPoll(c.key, c.id);
      assert.equal((await g.call(`/v1/consumers/${c.id}`, { method: 'DELETE' })).status, 204);
      await g.publish({ tenant, type: 'x', data: 'after-delete' });
      const r = await pending;
      assert.ok(r.status === 401 || r.status === 404, `status ${r.status}: ${JSON.stringify(r.body)}`);
      assertError(r, r.status);
      assert.ok(Date.now() - started < 2_000, 'ended well before its 5 s wait');
    });
  });

  describe('403 forbidden: a valid key outside its scope', () => {
    test('a consumer key on admin routes is 403 and changes nothing', async () => {
      const tenant = freshTenant('scope');
      const own = await g.createConsumer({ tenant, name: 'own' });
      const other = await g.createConsumer({ tenant, name: 'other' });
      await g.publish({ tenant, type: 'seed', data: 1 });
      const h = await head(g);
      for (const target of [own, other]) {
        for (const route of allRoutes(target.id, tenant).filter((r) => r.scope === 'admin')) {
          const r = await g.json(route.path, { ...route.init, key: own.key });
          assertError(r, 403, 'forbidden');
          assert.ok(!JSON.stringify(r.body).includes(target.key), `${route.name}: no key leaks`);
          assert.ok(!('consumers' in r.body), `${route.name}: no data`);
        }
      }
      assert.equal(await head(g), h, 'a consumer key cannot publish');
      const list = await g.json(`/v1/consumers?tenant=${tenant}`);
      assert.deepEqual(list.body.consumers.map((x: any) => x.name).sort(), ['other', 'own'], 'nothing created or deleted');
      for (const c of [own, other]) {
        const view = await g.json(`/v1/consumers/${c.id}`);
        assert.equal(view.body.cursor, c.cursor, 'no seek happened');
        assert.equal((await g.json('/v1/consumer', { key: c.key })).status, 200, 'no key was rotated');
      }
    });

    test('the admin key on consumer routes is 403', async () => {
      for (const route of allRoutes('con_x', 'x').filter((r) => r.scope === 'consumer')) {
        const r = await g.json(route.path, route.init);
        assertError(r, 403, 'forbidden');
      }
      // A held poll is not possible with the admin key either.
      assertError(await g.json('/v1/events?wait=1'), 403, 'forbidden');
    });
  });

  describe('tenant isolation', () => {
    test("a consumer sees only its own tenant's events and only itself", async () => {
      const ta = freshTenant('iso-a');
      const tb = freshTenant('iso-b');
      const tPrefix = `${ta}.x`; // a tenant whose name starts with ta's
      const a = await g.createConsumer({ tenant: ta, name: 'reader', start: 'earliest' });
      const b = await g.createConsumer({ tenant: tb, name: 'reader', start: 'earliest' });
      const published = await g.publish([
        { tenant: ta, type: 'x', data: 'a1' },
        { tenant: tb, type: 'x', data: 'b1' },
        { tenant: tPrefix, type: 'x', data: 'p1' },
        { tenant: ta, type: 'x', data: 'a2' },
        { tenant: tb, type: 'x', data: 'b2' },
      ]);
      const pa = await g.json('/v1/events?wait=0', { key: a.key });
      const pb = await g.json('/v1/events?wait=0', { key: b.key });
      assert.equal(pa.status, 200);
      assert.equal(pb.status, 200);
      assert.deepEqual(pa.body.events.map((e: any) => e.data), ['a1', 'a2']);
      assert.deepEqual(pb.body.events.map((e: any) => e.data), ['b1', 'b2']);
      for (const e of pa.body.events) assert.equal(e.tenant, ta);
      for (const e of pb.body.events) assert.equal(e.tenant, tb);

      // Reading after an explicit position still stays in the tenant.
      const first = published.events[0].cursor;
      const after = await g.json(`/v1/events?wait=0&after=${first}`, { key: a.key });
      assert.deepEqual(after.body.events.map((e: any) => e.data), ['a2']);

      const meA = await g.json('/v1/consumer', { key: a.key });
      const meB = await g.json('/v1/consumer', { key: b.key });
      assert.equal(meA.status, 200);
      assert.equal(meA.body.id, a.id);
      assert.equal(meA.body.tenant, ta);
      assert.equal(meB.body.id, b.id);
      assert.equal(meB.body.tenant, tb);
      assert.ok(!JSON.stringify(meA.body).includes(b.id) && !JSON.stringify(meA.body).includes(tb));
      assert.equal(meA.body.lag, 2, "lag counts only the consumer's tenant");

      // A's key cannot look at B at all.
      const peek = await g.json(`/v1/consumers/${b.id}`, { key: a.key });
      assertError(peek, 403);
      assert.ok(!JSON.stringify(peek.body).includes(tb), 'no data of B');
    });

    test("acking with one consumer's key moves only that consumer", async () => {
      const ta = freshTenant('iso-ack');
      const a = await g.createConsumer({ tenant: ta, start: 'earliest' });
      const a2 = await g.createConsumer({ tenant: ta, start: 'earliest' });
      const e = await g.publish({ tenant: ta, type: 'x', data: 1 });
      const acked = await g.json('/v1/ack', { key: a.key, body: { cursor: e.cursor } });
      assert.equal(acked.status, 200);
      assert.equal(acked.body.cursor, e.cursor);
      assert.equal((await g.json(`/v1/consumers/${a.id}`)).body.cursor, e.cursor);
      assert.equal((await g.json(`/v1/consumers/${a2.id}`)).body.cursor, a2.cursor);
    });
  });

  describe('public and unknown routes', () => {
    test('/healthz and /readyz need no key (and ignore a bad one)', async () => {
      for (const path of ['/healthz', '/readyz']) {
        const r = await g.json(path, { key: null });
        assert.equal(r.status, 200, path);
        assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
        const bad = await g.json(path, { key: 'wrong' });
        assert.equal(bad.status, 200, `${path} with a bad key`);
      }
      assert.equal((await g.json('/readyz', { key: null })).body.status, 'ready');
    });

    test('an unknown route is 404 JSON', async () => {
      assertError(await g.json('/nope', { key: null }), 404, 'not_found');
      assertError(await g.json('/v1/nope'), 404, 'not_found');
      assertError(await g.json('/v1/events/extra/segments'), 404, 'not_found');
      assertError(await g.json('/v1/consumers/con_x/unknown', { method: 'POST' }), 404, 'not_found');
    });
  });

  describe('keys', () => {
    test('SQLite: the plaintext consumer key appears nowhere in the data directory', { skip: SQLITE_ONLY }, async () => {
      const tenant = freshTenant('secret');
      const c = await g.createConsumer({ tenant, name: 'secretive', start: 'earliest' });
      const e = await g.publish({ tenant, type: 'x', data: { hello: 'world' } });
      const polled = await g.json('/v1/events?wait=0', { key: c.key });
      assert.equal(polled.status, 200);
      assert.equal(polled.body.events.length, 1);
      assert.equal((await g.json('/v1/ack', { key: c.key, body: { cursor: e.cursor } })).status, 200);
      assert.equal((await g.json(`/v1/events?wait=0&ack=${e.cursor}`, { key: c.key })).status, 200);
      const rotated = (await g.json(`/v1/consumers/${c.id}/key`, { method: 'POST' })).body.key as string;
      assert.match(rotated, KEY_SHAPE);
      assert.equal((await g.json('/v1/consumer', { key: rotated })).status, 200);
      // Another consumer created and used, to have more writes in the WAL.
      const d = await g.createConsumer({ tenant, start: 'earliest' });
      assert.equal((await g.json('/v1/events?wait=0', { key: d.key })).status, 200);

      const files: string[] = [];
      const walk = (dir: string) => {
        for (const name of readdirSync(dir)) {
          const p = join(dir, name);
          if (statSync(p).isDirectory()) walk(p);
          else files.push(p);
        }
      };
      walk(g.dataDir);
      const names = files.map((f) => f.slice(g.dataDir.length + 1));
      assert.ok(names.includes('pollgate.db'), `files: ${names.join(', ')}`);
      const contents = files.map((f) => readFileSync(f));
      // Positive control: the search does see what the gateway wrote.
      assert.ok(contents.some((b) => b.includes(c.id)), 'the consumer id is found in the files');
      assert.ok(contents.some((b) => b.includes('secretive')), 'the consumer name is found in the files');
      for (const key of [c.key, rotated, d.key]) {
        const secret = key.slice(-32);
        for (const [i, bytes] of contents.entries()) {
          for (const needle of [key, secret]) {
            assert.ok(!bytes.includes(Buffer.from(needle, 'utf8')), `${needle} found in ${names[i]}`);
            assert.ok(!bytes.includes(Buffer.from(needle, 'utf16le')), `${needle} (UTF-16) found in ${names[i]}`);
          }
        }
      }
    });

    test('the key is shown only at creation and rotation', async () => {
      const tenant = freshTenant('shown');
      const created = await g.json('/v1/consumers', { body: { tenant, name: 'once' } });
      assert.equal(created.status, 201);
      assert.match(created.body.key, KEY_SHAPE);
      const id = created.body.id;
      const noKey = (body: any, where: string) => {
        const text = JSON.stringify(body);
        assert.ok(!('key' in body), `${where} has no key field`);
        assert.ok(!text.includes('pgk_'), `${where} shows no key`);
        assert.ok(!/key_hash|hash/.test(text), `${where} shows no hash`);
      };
      noKey((await g.json(`/v1/consumers/${id}`)).body, 'GET /v1/consumers/:id');
      const list = await g.json(`/v1/consumers?tenant=${tenant}`);
      assert.equal(list.body.consumers.length, 1);
      noKey(list.body.consumers[0], 'GET /v1/consumers');
      noKey((await g.json('/v1/consumer', { key: created.body.key })).body, 'GET /v1/consumer');
      noKey((await g.json(`/v1/consumers/${id}`, { method: 'PATCH', body: { name: 'twice' } })).body, 'PATCH');
      noKey((await g.json(`/v1/consumers/${id}/seek`, { body: { to: 'earliest' } })).body, 'seek');
      const rotated = await g.json(`/v1/consumers/${id}/key`, { method: 'POST' });
      assert.match(rotated.body.key, KEY_SHAPE);
      assert.equal(rotated.body.id, id);
      noKey((await g.json(`/v1/consumers/${id}`)).body, 'GET after rotation');
    });

    test('every consumer gets a distinct key', async () => {
      const tenant = freshTenant('distinct');
      const keys = new Set<string>();
      for (let i = 0; i < 10; i++) keys.add((await g.createConsumer({ tenant })).key);
      assert.equal(keys.size, 10);
    });
  });
});
