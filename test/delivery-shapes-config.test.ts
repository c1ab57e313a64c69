/**
 * Delivery shapes (issue 12), configuration and policy:
 *
 * - Configuration-time 400s name the field (and the position in a template); a refused PUT or
 *   PATCH changes nothing.
 * - Credentials are write-only: GET shows their kind and names only; a PUT without them keeps
 *   them, null removes them; their values appear in no answer and no log line.
 * - A webhook's own retry schedule and give-up age, and its rate limit, on the fake clock.
 * - The upgrade path: a SQLite data directory made before migration 0004 delivers as before.
 *
 * Real gateways on both engines (the upgrade test: SQLite only), real loopback receivers.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { newConsumerKey } from '../src/auth/keys.ts';
import { migrate } from '../src/store/sqlite/db.ts';
import { assertErrorShape } from './support/assertions.ts';
import { SQLITE_ONLY } from './support/engine.ts';
import { FakeClock } from './support/fake-clock.ts';
import { consumerOf, deliveriesOf, gatewayFor, startGateway, tempDir, waitForCursor, waitForDeliveries, webhookOf, stepUntilGivenUp } from './support/gateway.ts';
import { ROOT } from './support/process.ts';
import { receiverFor, verify } from './support/receiver.ts';
import { capturedLogger, hookPath, mustPut, patchHook, putHook, verifyBytes } from './support/shapes.ts';
import { sleep, waitUntil } from './support/wait.ts';

let tenantSeq = 0;
const freshTenant = (label: string) => `shapecfg-${label}-${++tenantSeq}`;

describe('configuration-time checks', () => {
  /** [label, fields added to a valid webhook, the field the 400 names, what the message says]. */
  const refused: Array<[string, Record<string, unknown>, string, RegExp]> = [
    ['an unclosed tag', { body: '{"a":"{{data.x"}' }, 'body', /Unclosed tag.*at position \d+/],
    ['a section', { body: '{"a":"{{#data}}x{{/data}}"}' }, 'body', /sections .*at position 7/],
    ['an inverted section', { body: '{"a":"{{^data}}x{{/data}}"}' }, 'body', /inverted sections .*at position 7/],
    ['a triple mustache', { body: '{"a":"{{{data.x}}}"}' }, 'body', /unescaped tags .*at position 7/],
    ['a partial', { body: '{"a":"{{>p}}"}' }, 'body', /partials .*at position 7/],
    ['a delimiter change', { body: '{{=<% %>=}}{"a":1}' }, 'body', /delimiter changes .*at position 1/],
    ['an unknown root', { body: '{"a":"{{secret}}"}' }, 'body', /does not start with one of .*at position 7/],
    ['a path that is not dotted', { body: '{"a":"{{data..x}}"}' }, 'body', /not a dotted path.*at position 7/],
    ['a tag in the host', { url: 'http://{{data.host}}/x' }, 'url', /never in the scheme, host or port .*position 8/],
    ['a tag in part of the host', { url: 'http://api.{{data.host}}.example.com/x' }, 'url', /scheme, host or port .*position 12/],
    ['a tag in the port', { url: 'http://127.0.0.1:{{data.port}}/x' }, 'url', /scheme, host or port .*position 18/],
    ['a tag in the scheme', { url: '{{data.s}}://example.com/x' }, 'url', /scheme, host or port .*position 1/],
    ['a tag in the fragment', { url: 'http://127.0.0.1:9/a?b={{id}}#{{data.f}}' }, 'url', /fragment .*position 31/],
    ['a section in the URL', { url: 'http://127.0.0.1:9/{{#data}}x{{/data}}' }, 'url', /sections .*at position 20/],
    ['a template header value that does not parse', { headers: { 'X-T': '{{data.x' } }, 'headers.X-T', /Unclosed tag/],
    ['xml without a body', { format: 'xml' }, 'body', /needs a body template/],
    ['form without a body', { format: 'form' }, 'body', /needs a body template/],
    ['GET with a format but no body', { method: 'GET', format: 'json' }, 'format', /sends no body/],
    ['DELETE with a format but no body', { method: 'DELETE', format: 'json' }, 'format', /sends no body/],
    ['a JSON body that is not JSON', { body: '{"a": {{data.x}} "b": 1}' }, 'body', /not JSON .*at position 18/],
    ['a JSON body with a tag after a backslash', { body: '{"a":"\\{{data.x}}"}' }, 'body', /backslash .*at position 8/],
    ['an XML body that is not well-formed', { format: 'xml', body: '<a>\n  <b>{{data.x}}</a>' }, 'body', /not well-formed XML: .*\(line 2, column \d+\)/],
    ['a tag in an XML comment', { format: 'xml', body: '<a><!-- {{data.x}} --></a>' }, 'body', /XML comment.*at position 9/],
    ['a body over 64 KiB', { body: `"${'x'.repeat(64 * 1024)}"` }, 'body', /at most 65536/],
    ['an unknown method', { method: 'HEAD' }, 'method', /one of GET, POST, PUT, PATCH, DELETE/],
    ['an unknown format', { format: 'yaml' }, 'format', /one of json, xml, form/],
    ['basic auth beside an Authorization header', { headers: { Authorization: 'x' }, auth: { type: 'basic', username: 'u', password: 'p' } }, 'auth', /Authorization/],
    ['bearer auth beside an Authorization header', { headers: { authorization: 'x' }, auth: { type: 'bearer', token: 't' } }, 'auth', /Authorization/],
    ['an api_key header set by headers too', { headers: { 'X-Key': 'x' }, auth: { type: 'api_key', in: 'header', name: 'x-key', value: 'v' } }, 'auth.name', /already set/],
    ['a secret_header set by auth too', { auth: { type: 'api_key', in: 'header', name: 'X-Key', value: 'v' }, secret_header: { name: 'x-key', value: 's' } }, 'secret_header.name', /already set/],
    ['a basic username with ":"', { auth: { type: 'basic', username: 'a:b', password: 'p' } }, 'auth.username', /RFC 7617/],
    ['an unknown auth type', { auth: { type: 'digest' } }, 'auth.type', /basic.*bearer.*api_key/],
    ['an empty bearer token', { auth: { type: 'bearer', token: '' } }, 'auth.token', /must not be empty/],
    ['a secret_header value with CR/LF', { secret_header: { name: 'X-S', value: 'a\r\nb' } }, 'secret_header.value', /./],
    ['an unreadable retry delay', { retry: { schedule: ['soon'] } }, 'retry.schedule[0]', /./],
    ['a zero retry delay', { retry: { schedule: ['30m', '0s'] } }, 'retry.schedule[1]', /longer than 0/],
    ['an empty retry schedule', { retry: { schedule: [] } }, 'retry.schedule', /at least one/],
    ['an unreadable max age', { retry: { max_age: '1 day' } }, 'retry.max_age', /./],
    ['a number for a duration', { retry: { max_age: 60 } }, 'retry.max_age', /duration/],
    ['an unreadable alert window', { alerts: { window: 'x' } }, 'alerts.window', /./],
    ['zero alert failures', { alerts: { failures: 0 } }, 'alerts.failures', /at least 1/],
    ['rate_limit 0', { rate_limit: 0 }, 'rate_limit', /more than 0/],
    ['a negative rate_limit', { rate_limit: -1 }, 'rate_limit', /more than 0/],
    ['rate_limit over 10000', { rate_limit: 10_001 }, 'rate_limit', /at most 10000/],
    ['missing neither empty nor fail', { missing: 'skip' }, 'missing', /"empty" or "fail"/],
  ];

  test('a refused PUT or PATCH is a 400 naming the field (and the position); nothing changes', async (t) => {
    const g = await gatewayFor(t, { clock: new FakeClock() });
    const url = 'http://127.0.0.1:9/hook';
    const fresh = await g.createConsumer({ tenant: freshTenant('refused-put') });
    const existing = await g.createConsumer({ tenant: freshTenant('refused-patch') });
    await mustPut(g, existing.id, {
      url: `${url}/{{data.id}}`,
      enabled: false,
      method: 'PUT',
      format: 'form',
      body: 'a={{data.a}}',
      auth: { type: 'bearer', token: 'kept-token' },
      retry: { schedule: ['1m'] },
      rate_limit: 5,
    });
    const before = await webhookOf(g, existing.id);

    for (const [label, fields, field, message] of refused) {
      const put = await putHook(g, fresh.id, { url, enabled: false, ...fields });
      assert.equal(put.status, 400, `PUT with ${label}: ${JSON.stringify(put.body)}`);
      assertErrorShape(put, 400, 'invalid_request', field);
      assert.match(put.body.error.message, message, `PUT with ${label}`);
      // A PATCH over the stored form webhook: the method, format and body it would otherwise keep are reset too.
      const patchFields = { method: 'POST', format: 'json', body: null, ...fields };
      const patch = await patchHook(g, existing.id, patchFields);
      assert.equal(patch.status, 400, `PATCH with ${label}: ${JSON.stringify(patch.body)}`);
      assert.equal(patch.body.error.field, field, `PATCH with ${label}: ${JSON.stringify(patch.body)}`);
    }
    assertErrorShape(await g.json(hookPath(fresh.id)), 404, 'not_found');
    const after = await webhookOf(g, existing.id);
    assert.deepEqual(after, before, 'no refused PATCH changed anything');
  });

  test('the accepted shapes are shown by GET as given (durations as written, credentials without values)', async (t) => {
    const g = await gatewayFor(t, { clock: new FakeClock() });
    const c = await g.createConsumer({ tenant: freshTenant('view') });
    const view = await mustPut(g, c.id, {
      url: 'http://127.0.0.1:9/t/{{data.id}}?q={{type}}',
      method: 'PATCH',
      format: 'xml',
      body: '<a>{{data.x}}</a>',
      headers: { 'X-T': '{{type}}' },
      auth: { type: 'api_key', in: 'query', name: 'key', value: 'v-secret' },
      secret_header: { name: 'X-Shared', value: 'shared-secret' },
      signing: false,
      missing: 'fail',
      retry: { schedule: ['30s', '30m', '1800000ms'], max_age: '24h' },
      rate_limit: 0.5,
      alerts: { failures: 5, window: '2h' },
      enabled: false,
    });
    const got = await webhookOf(g, c.id);
    for (const v of [view, got]) {
      assert.equal(v.url, 'http://127.0.0.1:9/t/{{data.id}}?q={{type}}', 'a template is kept as written');
      assert.equal(v.method, 'PATCH');
      assert.equal(v.format, 'xml');
      assert.equal(v.body, '<a>{{data.x}}</a>');
      assert.deepEqual(v.headers, { 'X-T': '{{type}}' });
      assert.deepEqual(v.auth, { type: 'api_key', in: 'query', name: 'key' });
      assert.deepEqual(v.secret_header, { name: 'X-Shared' });
      assert.equal(v.signing, false);
      assert.equal(v.missing, 'fail');
      assert.deepEqual(v.retry, { schedule: ['30s', '30m', '30m'], max_age: '1d' });
      assert.equal(v.rate_limit, 0.5);
      assert.deepEqual(v.alerts, { enabled: null, failures: 5, window: '2h' });
      assert.equal(v.health.failing, false);
      assert.ok(!JSON.stringify(v).includes('v-secret') && !JSON.stringify(v).includes('shared-secret'));
    }
    // null clears the policies; defaults come back.
    const cleared = await patchHook(g, c.id, { retry: null, rate_limit: null, alerts: null, body: '<b/>', signing: true });
    assert.equal(cleared.status, 200, JSON.stringify(cleared.body));
    assert.equal(cleared.body.retry, null);
    assert.equal(cleared.body.rate_limit, null);
    assert.equal(cleared.body.alerts, null);
    assert.deepEqual(cleared.body.auth, { type: 'api_key', in: 'query', name: 'key' }, 'a PATCH without auth keeps it');
  });
});

describe('credentials are write-only', () => {
  test('GET never shows password, token or value; a PUT without auth keeps it, null removes it; the values appear in no answer, attempt log, preview, test answer or log line', async (t) => {
    const log = capturedLogger();
    const g = await gatewayFor(t, { clock: new FakeClock(), logger: log.logger, config: { logLevel: 'debug' } });
    // A receiver that echoes the request (headers and path) in a failing answer: what it says
    // lands in the attempt log and test answers, so credentials must be taken out of it.
    const rx = await receiverFor(t, (req) => ({ status: 500, body: JSON.stringify({ path: req.path, headers: req.headers }) }));
    const tenant = freshTenant('creds');
    const PASSWORD = 'pw-Zq81-never-shown';
    const TOKEN = 'tok-Yx72-never-shown';
    const SHARED = 'shared-Wv63-never-shown';
    const KEY = 'key-Ut54-never-shown';
    const secrets = [PASSWORD, TOKEN, SHARED, KEY, Buffer.from(`ann:${PASSWORD}`).toString('base64')];
    const answers: unknown[] = [];
    const record = <T>(r: T) => (answers.push(r), r);

    const basic = await g.createConsumer({ tenant });
    const made = record(await mustPut(g, basic.id, { url: `${rx.url}basic`, auth: { type: 'basic', username: 'ann', password: PASSWORD }, secret_header: { name: 'X-Shared', value: SHARED } }));
    assert.deepEqual(made.auth, { type: 'basic', username: 'ann' });
    assert.deepEqual(made.secret_header, { name: 'X-Shared' });
    const bearer = await g.createConsumer({ tenant });
    assert.deepEqual(record(await mustPut(g, bearer.id, { url: `${rx.url}bearer`, auth: { type: 'bearer', token: TOKEN } })).auth, { type: 'bearer' });
    const query = await g.createConsumer({ tenant });
    assert.deepEqual(record(await mustPut(g, query.id, { url: `${rx.url}query?a=1`, auth: { type: 'api_key', in: 'query', name: 'api_key', value: KEY } })).auth, {
      type: 'api_key', in: 'query', name: 'api_key',
    });

    // Failed attempts (logged at warn) on each.
    await g.publish({ tenant, type: 'a.b', data: { n: 1 } });
    await rx.waitForCount(3);
    for (const c of [basic, bearer, query]) {
      await waitForDeliveries(g, c.id, 1);
      record(await deliveriesOf(g, c.id));
      record(await webhookOf(g, c.id));
      record(await consumerOf(g, c.id));
      for (const body of [{}, { webhook: { headers: { 'X-More': '1' } } }]) {
        const preview = record(await g.json(`${hookPath(c.id)}/preview`, { body }));
        assert.equal(preview.status, 200, JSON.stringify(preview.body));
        const sent = record(await g.json(`${hookPath(c.id)}/test`, { body }));
        assert.equal(sent.status, 200, JSON.stringify(sent.body));
        assert.equal(sent.body.status, 500);
      }
    }
    const seen = (path: string) => rx.requests.find((r) => r.path.startsWith(path))!;
    assert.equal(seen('/basic').headers.authorization, `Basic ${Buffer.from(`ann:${PASSWORD}`).toString('base64')}`);
    assert.equal(seen('/basic').headers['x-shared'], SHARED);
    assert.equal(seen('/bearer').headers.authorization, `Bearer ${TOKEN}`);
    assert.equal(new URL(seen('/query').path, rx.url).searchParams.get('api_key'), KEY);
    const preview = (await g.json(`${hookPath(basic.id)}/preview`, { body: {} })).body.request;
    assert.equal(preview.headers.authorization, 'Basic •••');
    assert.equal(preview.headers['X-Shared'], '•••');
    assert.match((await g.json(`${hookPath(query.id)}/preview`, { body: {} })).body.request.url, /\?a=1&api_key=•••$/);

    // A PUT without auth keeps it (and the shared secret); null removes each.
    rx.behave(() => ({ status: 200 }));
    const kept = record(await mustPut(g, basic.id, { url: `${rx.url}basic2` }));
    assert.deepEqual(kept.auth, { type: 'basic', username: 'ann' });
    await waitUntil(() => rx.requests.some((r) => r.path === '/basic2'), 5_000, () => 'the retry after the PUT');
    assert.equal(seen('/basic2').headers.authorization, `Basic ${Buffer.from(`ann:${PASSWORD}`).toString('base64')}`);
    assert.equal(seen('/basic2').headers['x-shared'], SHARED);
    const removed = record(await mustPut(g, basic.id, { url: `${rx.url}basic3`, auth: null, secret_header: null }));
    assert.equal(removed.auth, null);
    assert.equal(removed.secret_header, null);
    await g.publish({ tenant, type: 'a.b', data: { n: 2 } });
    await waitUntil(() => rx.requests.some((r) => r.path === '/basic3'), 5_000, () => 'a delivery after auth was removed');
    assert.equal(seen('/basic3').headers.authorization, undefined);
    assert.equal(seen('/basic3').headers['x-shared'], undefined);

    const echoed = (await deliveriesOf(g, basic.id)).map((d) => d.response).find((r) => r?.includes('x-shared'));
    assert.ok(echoed, 'the echo is in the attempt log');
    assert.match(echoed, /"authorization":"Basic •••"/);
    assert.match(echoed, /"x-shared":"•••"/);
    await sleep(50); // the log lines of the last turn
    const everything = JSON.stringify(answers) + log.text();
    assert.ok(log.lines.some((l) => l.includes('webhook attempt failed')), 'failures were logged (the check below looks at real lines)');
    for (const s of secrets) assert.ok(!everything.includes(s), `${s} appears in an answer or a log line`);
  });
});

describe('per-webhook policies on the fake clock', () => {
  test('retry every 30m for 24h (over a global 5 s / 10 min): gaps 30m ±20%, disabled after 24h; GET shows the policy', async (t) => {
    const clock = new FakeClock();
    const g = await gatewayFor(t, { clock, config: { retryScheduleMs: [5_000], retryMaxAgeMs: 600_000 } });
    const rx = await receiverFor(t, () => ({ status: 503 }));
    const tenant = freshTenant('retry');
    const c = await g.createConsumer({ tenant });
    const view = await mustPut(g, c.id, { url: rx.url, retry: { schedule: ['30m'], max_age: '24h' } });
    assert.deepEqual(view.retry, { schedule: ['30m'], max_age: '1d' });
    await g.publish({ tenant, type: 'a.b', data: null });
    await waitForDeliveries(g, c.id, 1);
    const hook = await stepUntilGivenUp(g, clock, c.id, 80);
    assert.equal(hook.enabled, false, 'disabled');
    const log = await deliveriesOf(g, c.id);
    const times = log.map((d) => Date.parse(d.at)).reverse();
    const gaps = times.slice(1).map((at, i) => at - times[i]!);
    const HALF_HOUR = 1_800_000;
    gaps.forEach((gap, i) => {
      const last = i === gaps.length - 1; // clamped to the give-up deadline
      assert.ok(gap <= HALF_HOUR * 1.2 && (last || gap >= HALF_HOUR * 0.8), `gap ${i + 1}: ${gap} ms`);
    });
    const span = times[times.length - 1]! - times[0]!;
    assert.equal(span, 86_400_000, 'the last attempt is at the give-up age exactly');
    assert.ok(log.length >= 40 && log.length <= 61, `${log.length} attempts in 24 h`);
    assert.match(hook.disabled_reason, /failed for 86400 s/);
  });

  test('rate_limit 2/s: attempts start at least 500 ms apart on the clock; without it they do not wait for the clock', async (t) => {
    const clock = new FakeClock();
    const g = await gatewayFor(t, { clock });
    const rx = await receiverFor(t);
    const tenant = freshTenant('rate');
    const limited = await g.createConsumer({ tenant });
    await mustPut(g, limited.id, { url: `${rx.url}limited`, rate_limit: 2 });
    const free = await g.createConsumer({ tenant });
    await mustPut(g, free.id, { url: `${rx.url}free` });
    const events = (await g.publish(Array.from({ length: 5 }, (_, i) => ({ tenant, type: 'a.b', data: { i } })))).events;
    const arrived = (path: string) => rx.requests.filter((r) => r.path === path).length;

    await waitUntil(() => arrived('/free') === 5, 5_000, () => 'the unlimited webhook gets all five');
    await sleep(200);
    assert.equal(arrived('/limited'), 1, 'the limited one waits for the clock');
    for (let n = 2; n <= 5; n++) {
      await clock.advance(499);
      await sleep(100);
      assert.equal(arrived('/limited'), n - 1, `not before 500 ms (attempt ${n})`);
      await clock.advance(1);
      await waitUntil(() => arrived('/limited') === n, 3_000, () => `attempt ${n} at 500 ms`);
    }
    await waitForCursor(g, limited.id, events[4].cursor);
    const times = (await deliveriesOf(g, limited.id)).map((d) => Date.parse(d.at)).reverse();
    assert.deepEqual(times.slice(1).map((at, i) => at - times[i]!), [500, 500, 500, 500]);

    // null removes it.
    const off = await patchHook(g, limited.id, { rate_limit: null });
    assert.equal(off.body.rate_limit, null);
    const more = (await g.publish(Array.from({ length: 3 }, (_, i) => ({ tenant, type: 'a.b', data: { i } })))).events;
    await waitForCursor(g, limited.id, more[2].cursor);
  });
});

describe('the rate limit across a change of the webhook', () => {
  test('a PATCH (which starts the delivery loop again) keeps the spacing from the last delivery', async (t) => {
    const clock = new FakeClock();
    const g = await gatewayFor(t, { clock });
    const rx = await receiverFor(t);
    const tenant = freshTenant('rate-patch');
    const c = await g.createConsumer({ tenant });
    await mustPut(g, c.id, { url: rx.url, rate_limit: 0.5 });
    const first = await g.publish({ tenant, type: 'a.b', data: 1 });
    await waitForCursor(g, c.id, first.cursor);
    const patched = await patchHook(g, c.id, { headers: { 'X-After': 'patch' } });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    await g.publish({ tenant, type: 'a.b', data: 2 });
    await sleep(300);
    assert.equal(rx.requests.length, 1, 'not at once after the PATCH');
    await clock.advance(1_999);
    await sleep(100);
    assert.equal(rx.requests.length, 1, 'not before 2 s');
    await clock.advance(1);
    await rx.waitForCount(2);
    assert.equal(rx.requests[1]!.headers['x-after'], 'patch');
  });
});

describe('upgrade', () => {
  test('a SQLite data directory made before migration 0004 delivers as before: envelope, POST, JSON, signed with the stored secret', { skip: SQLITE_ONLY }, async (t) => {
    const rx = await receiverFor(t);
    const dataDir = tempDir('pollgate-shapes-upgrade-');
    const oldSchema = tempDir('pollgate-shapes-old-schema-');
    t.after(() => {
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(oldSchema, { recursive: true, force: true });
    });
    for (const f of readdirSync(join(ROOT, 'schema', 'sqlite')).filter((f) => /^000[123]_/.test(f))) {
      copyFileSync(join(ROOT, 'schema', 'sqlite', f), join(oldSchema, f));
    }
    mkdirSync(dataDir, { recursive: true });
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(join(dataDir, 'pollgate.db'));
    db.pragma('journal_mode = WAL');
    migrate(db, oldSchema);
    const secret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
    const k = newConsumerKey();
    db.prepare('INSERT INTO consumers (id, tenant, name, filter, cursor, key_id, key_hash, created_at, updated_at) VALUES (?, ?, NULL, NULL, 0, ?, ?, 0, 0)').run(
      'con_old', 'old-tenant', k.keyId, k.hash,
    );
    db.prepare(
      'INSERT INTO webhooks (consumer_id, url, method, headers, secret, timeout_ms, enabled, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 1, 0, 0)',
    ).run('con_old', `${rx.url}old`, 'POST', JSON.stringify({ 'X-Old': 'yes' }), secret, 5_000);
    db.prepare('INSERT INTO deliveries (consumer_id, event_id, pos, attempt, status, error, duration_ms, at, next_attempt_at) VALUES (?, ?, 0, 1, 500, ?, 3, ?, NULL)').run(
      'con_old', 'evt_before', 'http_status', Date.now(),
    );
    db.close();

    const g = await startGateway({ dataDir, config: { allowPrivateTargets: true } });
    t.after(() => g.close());
    const view = await webhookOf(g, 'con_old');
    assert.deepEqual(
      [view.method, view.format, view.body, view.auth, view.secret_header, view.signing, view.missing, view.retry, view.rate_limit, view.alerts, view.health.failing],
      ['POST', 'json', null, null, null, true, 'empty', null, null, null, false],
    );
    const [old] = await deliveriesOf(g, 'con_old');
    assert.equal(old.event_id, 'evt_before');
    assert.equal(old.response, null, 'an attempt logged before has no response');

    const event = await g.publish({ tenant: 'old-tenant', type: 'a.b', data: { still: 'works' } });
    await rx.waitForCount(1);
    const [req] = rx.requests;
    assert.equal(req!.method, 'POST');
    assert.equal(req!.path, '/old');
    assert.equal(req!.headers['content-type'], 'application/json');
    assert.equal(req!.headers['x-old'], 'yes');
    const envelope = verify(secret, req!) as any;
    assert.equal(envelope.id, event.id);
    assert.deepEqual(envelope.data, { still: 'works' });
    verifyBytes(secret, req!);
    await waitForCursor(g, 'con_old', event.cursor);
  });
});
