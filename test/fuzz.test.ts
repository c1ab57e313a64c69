/**
 * A seeded, bounded fuzz run over every route: valid requests of each route, mutated (fields
 * dropped, replaced by odd values, unknown fields, raw bodies that are not JSON or not UTF-8,
 * wrong content types and methods, garbage cursors and ids, every kind of key), sent one at a
 * time to a real gateway. It asserts that
 * - no request gets a 5xx, and every 4xx is the JSON error shape with a code and a message;
 * - a refused request changes nothing: the state that matters (consumers with their cursors,
 *   names, filters and webhooks, their tenants' heads through their lag, the bridge switch) is
 *   compared before and after every refused request that could have changed it;
 * - the gateway stays alive: every 250 requests a publish is read back by a poll.
 * The same seed sends the same requests (FUZZ_SEEDS=1,2 FUZZ_REQUESTS=1500 to change them); a
 * failure prints the seed, the request number and the request.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_KEY, gatewayFor, type TestGateway } from './support/gateway.ts';

const SEEDS = (process.env.FUZZ_SEEDS ?? '1,2').split(',').map(Number);
const REQUESTS = Number(process.env.FUZZ_REQUESTS ?? 1000);

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const chance = (p: number) => next() < p;
  return { next, int, pick, chance };
}
type Rng = ReturnType<typeof prng>;

const ODD_STRINGS = [
  '', ' ', 'a'.repeat(300), '\u0000', 'x\r\ny', '\u202e', 'ü', '😀', '\ud800', '../../etc/passwd', '%00', '{{id}}',
  '__proto__', 'constructor', 'null', '1e400', '-0', 'SELECT 1;--', '<x/>', 'ticket.*', 't00000000000000001', '9'.repeat(40),
];
const ODD_NUMBERS = [0, -1, 1.5, -0, 2 ** 53 + 2, 1e308, -1e308, Number.MAX_SAFE_INTEGER, 1e-320, 86_400_001];

function oddValue(r: Rng, depth = 0): unknown {
  switch (r.int(depth > 2 ? 4 : 7)) {
    case 0:
      return null;
    case 1:
      return r.chance(0.5);
    case 2:
      return r.pick(ODD_NUMBERS);
    case 3:
      return r.pick(ODD_STRINGS);
    case 4:
      return Array.from({ length: r.int(4) }, () => oddValue(r, depth + 1));
    case 5:
      return Object.fromEntries(Array.from({ length: r.int(4) }, () => [r.pick(['a', 'type', 'tenant', '__proto__', 'data', '']), oddValue(r, depth + 1)]));
    default:
      return JSON.parse('{"__proto__":{"polluted":1},"constructor":{"prototype":{"x":1}}}');
  }
}

/** Bodies that are not a JSON document, or not one in UTF-8. */
const RAW_BODIES: Array<string | Buffer> = [
  '',
  '{',
  '{"tenant":',
  'null',
  '[]',
  '"x"',
  '{"a":1}{"b":2}',
  '\ufeff{"tenant":"t1","type":"a.b","data":1}',
  Buffer.from([0x7b, 0x22, 0x74, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]),
  Buffer.from('{"tenant":"t1","type":"a.b","data":"\u0000"}'),
  '['.repeat(5000) + ']'.repeat(5000),
  `{"tenant":"t1","type":"a.b","data":${'9'.repeat(4000)}}`,
  `{"tenant":"t1","type":"a.b","data":1e999}`,
  `{"cursor":"${'0'.repeat(5000)}"}`,
  'x'.repeat(70_000),
];

interface FuzzRequest {
  method: string;
  path: string;
  key: string | null;
  contentType?: string;
  body?: string | Buffer;
}

interface World {
  consumers: Array<{ id: string; key: string; tenant: string }>;
  goneKeys: string[];
  cursors: string[];
}

const TENANTS = ['t1', 't2', 't3'];

function cursorLike(r: Rng, w: World): string {
  return r.chance(0.6) && w.cursors.length > 0
    ? r.pick(w.cursors)
    : r.pick(['t0000000000000000', 't9999999999999999', '0000000000000001', 'zzz', '', 't-1', 't00000000000000001', '%20']);
}

function validBody(r: Rng, route: string, w: World): Record<string, unknown> | unknown[] {
  const tenant = r.pick(TENANTS);
  switch (route) {
    case 'publish':
      return r.chance(0.3)
        ? Array.from({ length: 1 + r.int(4) }, (_, i) => ({ tenant, type: `fuzz.e${i}`, data: { i } }))
        : { tenant, type: r.pick(['ticket.created', 'message.create', 'a']), data: { n: r.int(100) }, ...(r.chance(0.3) ? { id: `p-${r.int(50)}` } : {}) };
    case 'ack':
      return { cursor: cursorLike(r, w) };
    case 'create':
      return {
        tenant,
        ...(r.chance(0.5) ? { name: `n${r.int(30)}` } : {}),
        ...(r.chance(0.4) ? { filter: { types: [r.pick(['ticket.*', 'a', 'message.**'])], where: [{ field: 'data.n', op: r.pick(['eq', 'gt', 'in']), value: r.chance(0.5) ? 3 : [1, 2] }] } } : {}),
        ...(r.chance(0.4) ? { start: r.pick(['earliest', 'latest', { cursor: cursorLike(r, w) }, { time: '2026-01-01T00:00:00Z' }]) } : {}),
      };
    case 'patch':
      return r.pick([{ name: `m${r.int(30)}` }, { filter: null }, { filter: { types: ['x.*'] } }]);
    case 'seek':
      return { to: r.pick(['earliest', 'latest', { cursor: cursorLike(r, w) }, { time: new Date(Date.now() - r.int(100_000)).toISOString() }]) };
    case 'webhook':
      return {
        url: r.pick(['https://hooks.example.com/a', 'http://127.0.0.1/x', 'https://[::1]/', 'https://2130706433/', 'ftp://x.example.com/']),
        ...(r.chance(0.3) ? { headers: r.pick([{ 'x-a': 'b' }, { 'X-A': '1', 'x-a': '2' }, { 'bad header': 'v' }, { 'x-v': 'caf\u00e9\u2603' }]) } : {}),
        ...(r.chance(0.3) ? { timeout_ms: r.pick([1000, 0, 30_001, 10_000]) } : {}),
        ...(r.chance(0.2) ? { method: r.pick(['POST', 'PUT', 'GET', 'TRACE']) } : {}),
        ...(r.chance(0.2) ? { enabled: r.chance(0.5) } : {}),
      };
    case 'bridge':
      // Pushing stays off: no delivery can succeed here anyway (no public target answers).
      return { enabled: false };
    default:
      return {};
  }
}

function mutate(r: Rng, body: unknown): unknown {
  if (Array.isArray(body)) {
    if (r.chance(0.3)) return [];
    if (r.chance(0.2)) return Array.from({ length: 1001 }, () => body[0]);
    return body.map((item) => (r.chance(0.5) ? mutate(r, item) : item));
  }
  if (body === null || typeof body !== 'object') return oddValue(r);
  const copy: Record<string, unknown> = { ...(body as Record<string, unknown>) };
  const keys = Object.keys(copy);
  switch (r.int(4)) {
    case 0:
      if (keys.length > 0) delete copy[r.pick(keys)];
      break;
    case 1:
      if (keys.length > 0) copy[r.pick(keys)] = oddValue(r);
      break;
    case 2:
      copy[r.pick(['unknown', 'extra', '__proto__', 'constructor'])] = oddValue(r);
      break;
    default:
      return oddValue(r);
  }
  return copy;
}

function generate(r: Rng, w: World): FuzzRequest {
  const consumer = w.consumers.length > 0 && r.chance(0.85) ? r.pick(w.consumers) : undefined;
  const id = consumer && r.chance(0.9) ? consumer.id : r.pick(['con_nope0000000000', '..', 'x'.repeat(300), '%2F', 'con_%00']);
  const anyKey = (): string | null =>
    r.pick([ADMIN_KEY, ADMIN_KEY, consumer?.key ?? null, null, 'pgc_garbage', `${ADMIN_KEY}x`, w.goneKeys.at(-1) ?? 'pgc_x.y', 'Bearer']);
  const consumerKey = (): string | null => (r.chance(0.85) ? (consumer?.key ?? null) : anyKey());
  const adminKey = (): string | null => (r.chance(0.85) ? ADMIN_KEY : anyKey());
  const q = (pairs: Array<[string, string | undefined]>) => {
    const parts = pairs.filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${encodeURIComponent(v!)}`);
    return parts.length > 0 ? `?${parts.join('&')}` : '';
  };
  const oddParam = () => r.pick(['-1', '0', '1', '1e3', 'NaN', '', '0x10', '99999999999999999999', ' 5', '1001', '0.01']);

  const routes = ['publish', 'poll', 'ack', 'me', 'create', 'list', 'get', 'patch', 'delete', 'seek', 'rotate', 'webhook-put', 'webhook-patch', 'webhook-get', 'webhook-delete', 'deliveries', 'bridge-get', 'bridge-put', 'ops', 'random'];
  const route = r.pick(routes);
  let req: FuzzRequest;
  let bodyRoute: string | undefined;
  switch (route) {
    case 'publish':
      req = { method: 'POST', path: '/v1/events', key: adminKey() };
      bodyRoute = 'publish';
      break;
    case 'poll':
      req = {
        method: 'GET',
        key: consumerKey(),
        path: `/v1/events${q([
          ['wait', r.pick(['0', '0.01', '0.02', oddParam()])],
          ['limit', r.chance(0.5) ? oddParam() : undefined],
          ['after', r.chance(0.4) ? cursorLike(r, w) : undefined],
          ['ack', r.chance(0.4) ? cursorLike(r, w) : undefined],
        ])}`,
      };
      // Only short waits: a held poll would only slow the run.
      if (!/wait=(0|0\.01|0\.02)(&|$)/.test(req.path)) req.path = req.path.replace(/wait=[^&]*/, 'wait=0');
      break;
    case 'ack':
      req = { method: 'POST', path: '/v1/ack', key: consumerKey() };
      bodyRoute = 'ack';
      break;
    case 'me':
      req = { method: 'GET', path: '/v1/consumer', key: consumerKey() };
      break;
    case 'create':
      req = { method: 'POST', path: '/v1/consumers', key: adminKey() };
      bodyRoute = 'create';
      break;
    case 'list':
      req = { method: 'GET', path: `/v1/consumers${q([['tenant', r.chance(0.5) ? r.pick(TENANTS) : undefined], ['limit', r.chance(0.5) ? oddParam() : undefined], ['after', r.chance(0.3) ? id : undefined]])}`, key: adminKey() };
      break;
    case 'get':
      req = { method: 'GET', path: `/v1/consumers/${id}`, key: adminKey() };
      break;
    case 'patch':
      req = { method: 'PATCH', path: `/v1/consumers/${id}`, key: adminKey() };
      bodyRoute = 'patch';
      break;
    case 'delete':
      // Rarely valid, so consumers stay around long enough to be polled and changed.
      req = { method: 'DELETE', path: `/v1/consumers/${r.chance(0.15) ? id : 'con_nope0000000000'}`, key: adminKey() };
      break;
    case 'seek':
      req = { method: 'POST', path: `/v1/consumers/${id}/seek`, key: adminKey() };
      bodyRoute = 'seek';
      break;
    case 'rotate':
      req = { method: 'POST', path: `/v1/consumers/${id}/key`, key: adminKey() };
      break;
    case 'webhook-put':
      req = { method: 'PUT', path: `/v1/consumers/${id}/webhook`, key: adminKey() };
      bodyRoute = 'webhook';
      break;
    case 'webhook-patch':
      req = { method: 'PATCH', path: `/v1/consumers/${id}/webhook`, key: adminKey() };
      bodyRoute = 'webhook';
      break;
    case 'webhook-get':
      req = { method: 'GET', path: `/v1/consumers/${id}/webhook`, key: adminKey() };
      break;
    case 'webhook-delete':
      req = { method: 'DELETE', path: `/v1/consumers/${id}/webhook`, key: adminKey() };
      break;
    case 'deliveries':
      req = { method: 'GET', path: `/v1/consumers/${id}/deliveries${q([['limit', r.chance(0.5) ? oddParam() : undefined], ['before', r.chance(0.3) ? oddParam() : undefined]])}`, key: adminKey() };
      break;
    case 'bridge-get':
      req = { method: 'GET', path: '/v1/bridge', key: adminKey() };
      break;
    case 'bridge-put':
      req = { method: 'PUT', path: '/v1/bridge', key: adminKey() };
      bodyRoute = 'bridge';
      break;
    case 'ops':
      req = { method: 'GET', path: r.pick(['/healthz', '/readyz', '/metrics', '/openapi.json', '/ui', '/ui/app.js']), key: anyKey() };
      break;
    default:
      req = {
        method: r.pick(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD']),
        path: r.pick(['/', '/v1', '/v1/', '/v1/events/', '/v1/consumers/x/y/z', '/v1/bridge/x', `/v1/${'a'.repeat(2000)}`, '/%ff', '/v1/events?wait=0&wait=1']),
        key: anyKey(),
      };
  }
  if (bodyRoute) {
    const valid = validBody(r, bodyRoute, w);
    if (r.chance(0.12)) {
      req.body = r.pick(RAW_BODIES);
    } else {
      req.body = JSON.stringify(r.chance(0.55) ? mutate(r, valid) : valid);
    }
    req.contentType = r.chance(0.9)
      ? 'application/json'
      : r.pick(['text/plain', 'application/json; charset=latin1', 'application/x-www-form-urlencoded', 'application/jsonx', 'application/json; charset=utf-8']);
  } else if (r.chance(0.05)) {
    req.body = JSON.stringify(oddValue(r)); // a body where none is expected
    req.contentType = 'application/json';
  }
  if (r.chance(0.03) && req.method === 'GET') req.method = r.pick(['POST', 'PUT', 'DELETE']);
  return req;
}

/** What must not change when a request is refused. */
async function snapshot(g: TestGateway): Promise<string> {
  const consumers: unknown[] = [];
  for (let after: string | null = null; ; ) {
    const page: { status: number; body: any } = await g.json(`/v1/consumers?limit=1000${after ? `&after=${after}` : ''}`);
    assert.equal(page.status, 200, JSON.stringify(page.body));
    for (const c of page.body.consumers) {
      const webhook = c.webhook && { url: c.webhook.url, method: c.webhook.method, headers: c.webhook.headers, timeout_ms: c.webhook.timeout_ms, enabled: c.webhook.enabled };
      // lag = the tenant's head - cursor: an event appended to a consumer's tenant shows here.
      consumers.push({ id: c.id, tenant: c.tenant, name: c.name, filter: c.filter, mode: c.mode, cursor: c.cursor, lag: c.lag, webhook });
    }
    after = page.body.next;
    if (!after) break;
  }
  const bridge = (await g.json('/v1/bridge')).body.enabled;
  return JSON.stringify({ consumers, bridge });
}

function describeRequest(req: FuzzRequest): string {
  const body = req.body === undefined ? '' : ` body=${(typeof req.body === 'string' ? req.body : req.body.toString('latin1')).slice(0, 300)}`;
  return `${req.method} ${req.path.slice(0, 300)} key=${req.key === ADMIN_KEY ? 'admin' : (req.key ?? 'none').slice(0, 12)} type=${req.contentType ?? '-'}${body}`;
}

for (const seed of SEEDS) {
  test(`fuzz seed ${seed}: ${REQUESTS} mutated requests over every route; no 5xx, error shape, no state change on refusal, alive`, { timeout: 300_000 }, async (t) => {
    // Private targets refused: no webhook the fuzzer configures can ever get a delivery through.
    const g = await gatewayFor(t, { config: { maxWaitMs: 5_000, allowPrivateTargets: false } });
    const r = prng(seed);
    const w: World = { consumers: [], goneKeys: [], cursors: [] };
    for (const tenant of TENANTS) {
      const c = await g.createConsumer({ tenant, start: 'earliest' });
      w.consumers.push({ id: c.id, key: c.key, tenant });
      const published = await g.publish([1, 2, 3].map((n) => ({ tenant, type: 'seed.e', data: n })));
      w.cursors.push(...published.events.map((e: any) => e.cursor));
    }
    assert.equal((await g.json('/v1/bridge', { method: 'PUT', body: { enabled: false } })).status, 200);
    const livenessTenant = 'fuzz-liveness';
    const watcher = await g.createConsumer({ tenant: livenessTenant, start: 'latest' });

    let before = await snapshot(g);
    const statuses = new Map<number, number>();
    let unsent = 0;
    for (let n = 1; n <= REQUESTS; n++) {
      const req = generate(r, w);
      const where = `seed ${seed}, request ${n}: ${describeRequest(req)}`;
      let res: Response;
      try {
        res = await fetch(g.url + req.path, {
          method: req.method,
          headers: { ...(req.key !== null ? { authorization: `Bearer ${req.key}` } : {}), ...(req.contentType ? { 'content-type': req.contentType } : {}) },
          ...(req.body !== undefined && !['GET', 'HEAD'].includes(req.method) ? { body: req.body } : {}),
        });
      } catch (error) {
        // The client refused to send it (e.g. a header it cannot encode): not the server's doing,
        // but the server must still be alive.
        unsent++;
        assert.equal((await g.json('/healthz', { key: null })).status, 200, `${where}: alive after ${String(error)}`);
        continue;
      }
      const text = await res.text();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      assert.ok(res.status < 500, `${where}: ${res.status} ${text.slice(0, 300)}`);
      if (res.status >= 400 && req.method !== 'HEAD') {
        let parsed: any;
        assert.doesNotThrow(() => (parsed = JSON.parse(text)), `${where}: a 4xx answers JSON, got ${text.slice(0, 200)}`);
        assert.equal(typeof parsed?.error?.code, 'string', `${where}: error.code in ${text.slice(0, 200)}`);
        assert.equal(typeof parsed?.error?.message, 'string', `${where}: error.message in ${text.slice(0, 200)}`);
        if (req.method !== 'GET' || /[?&]ack=/.test(req.path)) {
          const after = await snapshot(g);
          assert.equal(after, before, `${where}: a refused request (${res.status} ${text.slice(0, 200)}) changed state`);
        }
      } else if (res.status < 300 && req.method !== 'GET') {
        before = await snapshot(g);
      } else if (res.status < 300 && /[?&]ack=/.test(req.path)) {
        before = await snapshot(g); // an accepted poll with ack= commits its cursor
      }
      // Learn from what was accepted: new consumers, rotated keys, cursors.
      if (res.status < 300 && text.startsWith('{')) {
        const body = JSON.parse(text);
        if (req.path === '/v1/consumers' && req.method === 'POST') w.consumers.push({ id: body.id, key: body.key, tenant: body.tenant });
        if (/\/key$/.test(req.path) && body.key) {
          const c = w.consumers.find((x) => x.id === body.id);
          if (c) {
            w.goneKeys.push(c.key);
            c.key = body.key;
          }
        }
        if (req.method === 'DELETE' && /^\/v1\/consumers\/[^/]+$/.test(req.path)) {
          const i = w.consumers.findIndex((x) => req.path.endsWith(x.id));
          if (i >= 0) w.goneKeys.push(w.consumers.splice(i, 1)[0]!.key);
        }
        for (const e of body.events ?? (body.cursor && typeof body.cursor === 'string' ? [body] : [])) {
          if (typeof e.cursor === 'string' && w.cursors.length < 200) w.cursors.push(e.cursor);
        }
      }
      if (n % 250 === 0) {
        const event = await g.publish({ tenant: livenessTenant, type: 'alive.check', data: n });
        const read = await g.json(`/v1/events?wait=1&ack=${encodeURIComponent(event.cursor)}`, { key: watcher.key });
        assert.equal(read.status, 200, `${where}: liveness poll ${JSON.stringify(read.body)}`);
        const again = await g.json('/v1/events?wait=0', { key: watcher.key });
        assert.deepEqual(again.body.events, [], 'the liveness event was acked');
        before = await snapshot(g);
      }
    }
    const summary = [...statuses].sort(([a], [b]) => a - b).map(([s, n]) => `${s}×${n}`).join(' ');
    t.diagnostic(`seed ${seed}: ${REQUESTS} requests (${unsent} not sendable by the client); statuses ${summary}`);
    assert.ok((statuses.get(200) ?? 0) + (statuses.get(201) ?? 0) > REQUESTS / 10, 'enough requests were valid to reach deep paths');
    assert.ok([...statuses.keys()].filter((s) => s >= 400).length >= 4, 'many kinds of refusal were exercised');
  });
}
