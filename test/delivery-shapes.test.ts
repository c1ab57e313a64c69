/**
 * Delivery shapes end to end (issue 12): what a real local receiver gets for each method, body
 * format and template, parsed with real parsers (JSON.parse, fast-xml-parser's XMLParser,
 * URLSearchParams, WHATWG URL); hostile values in `data` arrive exactly or are refused with a
 * recorded `render` error; JSON value positions; `missing: "fail"`; URL tags; the Standard
 * Webhooks signature over the bytes received for every shape; the SSRF check of a templated URL
 * at send time.
 *
 * Gateways run on a FakeClock so nothing is retried unless a test moves the clock; every wait
 * is for an arrival or a log row (real time, bounded). Both engines.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { LookupAddress } from 'node:dns';
import { XMLParser } from 'fast-xml-parser';
import { deliveriesOf, gatewayFor, waitForCursor, waitForDeliveries, webhookOf, type TestGateway } from './support/gateway.ts';
import { FakeClock } from './support/fake-clock.ts';
import { receiverFor, type Receiver, type ReceivedRequest } from './support/receiver.ts';
import { HOSTILE, LONG, mustPut, patchHook, verifyBytes } from './support/shapes.ts';
import { sleep, waitUntil } from './support/wait.ts';
import type { Resolver } from '../src/push/targets.ts';

let tenantSeq = 0;
const freshTenant = (label: string) => `shape-${label}-${++tenantSeq}`;

/** A real XML parser, keeping text and attributes as strings, untrimmed, references decoded. */
const xml = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  processEntities: true,
  // fast-xml-parser decodes numeric character references (&#13;) only with this on.
  htmlEntities: true,
});

const DATA = {
  s: HOSTILE,
  n: -12.5e3,
  f: false,
  t: true,
  z: null,
  o: { k: 'v', nested: [1, { q: HOSTILE }], empty: {} },
  a: ['x', 2],
  long: LONG,
};

/** Publishes one event and waits until the receiver has n requests in all; answers the event. */
async function publishAndWait(g: TestGateway, rx: Receiver, tenant: string, data: unknown, n: number, type = 'ticket.created'): Promise<any> {
  const event = await g.publish({ tenant, type, data });
  await rx.waitForCount(n).catch(async (error) => {
    // Say why: the consumers' attempt logs.
    const consumers = (await g.json(`/v1/consumers?tenant=${tenant}`)).body.consumers ?? [];
    const health = await Promise.all(consumers.map(async (c: any) => (await webhookOf(g, c.id)).health.last_error));
    throw new Error(`${(error as Error).message}; webhooks' last errors: ${JSON.stringify(health)}`);
  });
  return event;
}

/** A render failure: recorded as an attempt with error "render", nothing sent, health naming why. */
async function assertRenderFailure(g: TestGateway, rx: Receiver, consumerId: string, sentBefore: number, detail: RegExp): Promise<void> {
  const [attempt] = await waitForDeliveries(g, consumerId, 1);
  assert.equal(attempt.error, 'render', JSON.stringify(attempt));
  assert.equal(attempt.status, null);
  assert.equal(attempt.response, null);
  const health = (await webhookOf(g, consumerId)).health;
  assert.match(health.last_error, detail);
  await sleep(100);
  assert.equal(rx.requests.length, sentBefore, 'nothing was sent');
}

describe('methods', () => {
  test('every method arrives as configured; GET and DELETE without a body template send no body and no content-type; each is signed over what arrived', async (t) => {
    const g = await gatewayFor(t, { clock: new FakeClock() });
    const rx = await receiverFor(t);
    const tenant = freshTenant('methods');
    const secrets = new Map<string, string>();
    for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']) {
      const c = await g.createConsumer({ tenant });
      const view = await mustPut(g, c.id, { url: `${rx.url}m/${method}`, method });
      assert.equal(view.method, method);
      secrets.set(method, view.secret);
    }
    const event = await publishAndWait(g, rx, tenant, { k: 1 }, 5);
    const byMethod = new Map(rx.requests.map((r) => [r.method, r]));
    assert.deepEqual([...byMethod.keys()].sort(), ['DELETE', 'GET', 'PATCH', 'POST', 'PUT']);
    for (const [method, req] of byMethod) {
      assert.equal(req.path, `/m/${method}`);
      assert.equal(req.headers['webhook-id'], event.id);
      verifyBytes(secrets.get(method)!, req);
      if (method === 'GET' || method === 'DELETE') {
        assert.equal(req.body, '', `${method} has no body`);
        assert.equal(req.headers['content-type'], undefined, `${method} has no content-type`);
        assert.ok(req.headers['content-length'] === undefined || req.headers['content-length'] === '0', `${method}: ${req.headers['content-length']}`);
        assert.equal(req.headers['transfer-encoding'], undefined);
      } else {
        assert.equal(req.headers['content-type'], 'application/json');
        const body = JSON.parse(req.body);
        assert.equal(body.id, event.id);
        assert.deepEqual(body.data, { k: 1 });
      }
    }
  });

  test('GET and DELETE with a body template send it, with its content type; signing:false sends no signature headers', async (t) => {
    const g = await gatewayFor(t, { clock: new FakeClock() });
    const rx = await receiverFor(t);
    const tenant = freshTenant('methods-body');
    const get = await g.createConsumer({ tenant });
    const getHook = await mustPut(g, get.id, { url: `${rx.url}get`, method: 'GET', body: '{"id":"{{id}}"}' });
    const del = await g.createConsumer({ tenant });
    const delHook = await mustPut(g, del.id, { url: `${rx.url}delete`, method: 'DELETE', format: 'form', body: 'id={{id}}' });
    const unsigned = await g.createConsumer({ tenant });
    const off = await mustPut(g, unsigned.id, { url: `${rx.url}unsigned`, signing: false });
    assert.equal(off.signing, false);
    const event = await publishAndWait(g, rx, tenant, null, 3);
    const at = (path: string) => rx.requests.find((r) => r.path === path)!;
    assert.equal(at('/get').method, 'GET');
    assert.deepEqual(JSON.parse(at('/get').body), { id: event.id });
    assert.equal(at('/get').headers['content-type'], 'application/json');
    verifyBytes(getHook.secret, at('/get'));
    assert.equal(at('/delete').method, 'DELETE');
    assert.equal(new URLSearchParams(at('/delete').body).get('id'), event.id);
    assert.equal(at('/delete').headers['content-type'], 'application/x-www-form-urlencoded');
    verifyBytes(delHook.secret, at('/delete'));
    const plain = at('/unsigned');
    for (const h of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) assert.equal(plain.headers[h], undefined, `no ${h}`);
    assert.equal(JSON.parse(plain.body).id, event.id, 'the envelope as before');
  });
});

describe('bodies parsed by real parsers', () => {
  test('JSON: hostile strings (quotes, <, &, CR/LF, backslashes, astral unicode, {{ }}, 100 kB) arrive exactly; numbers, booleans, null, objects and arrays stand as JSON values; a missing path is null (a value) or "" (in a string)', async (t) => {
    const g = await gatewayFor(t, { clock: new FakeClock() });
    const rx = await receiverFor(t);
    const tenant = freshTenant('json');
    const c = await g.createConsumer({ tenant, name: 'crm-main.1' });
    const body =
      '{"text":"{{data.s}}","twice":"<{{data.s}}|{{data.s}}>","payload":{{data}},"n":{{data.n}},"f":{{data.f}},"t":{{data.t}},' +
      '"nul":{{data.z}},"obj":{{data.o}},"arr":{{data.a}},"first":{{data.a.0}},"nested":{{data.o.nested.1.q}},"missing":{{data.nope}},' +
      '"missingInString":"[{{data.nope}}]","objInString":"{{data.o.empty}}","long":"{{data.long}}",' +
      '"id":"{{id}}","type":"{{type}}","tenant":"{{tenant}}","cursor":"{{cursor}}","time":"{{time}}","who":"{{consumer.name}}","cid":"{{consumer.id}}"' +
      '{{! a comment renders nothing }}}';
    const hook = await mustPut(g, c.id, { url: rx.url, body });
    assert.equal(hook.body, body, 'GET shows the template as written');
    const event = await publishAndWait(g, rx, tenant, DATA, 1);
    const [req] = rx.requests as [ReceivedRequest];
    assert.equal(req.headers['content-type'], 'application/json');
    verifyBytes(hook.secret, req);
    const got = JSON.parse(req.body);
    assert.equal(got.text, HOSTILE);
    assert.equal(got.twice, `<${HOSTILE}|${HOSTILE}>`);
    assert.deepEqual(got.payload, DATA);
    assert.equal(got.n, -12500);
    assert.equal(got.f, false);
    assert.equal(got.t, true);
    assert.equal(got.nul, null);
    assert.deepEqual(got.obj, DATA.o);
    assert.deepEqual(got.arr, DATA.a);
    assert.equal(got.first, 'x');
    assert.equal(got.nested, HOSTILE);
    assert.equal(got.missing, null);
    assert.equal(got.missingInString, '[]');
    assert.equal(got.objInString, '{}', 'an object inside a string is its JSON text');
    assert.equal(got.long, LONG);
    assert.deepEqual(
      [got.id, got.type, got.tenant, got.cursor, got.time, got.who, got.cid],
      [event.id, 'ticket.created', tenant, event.cursor, event.time, 'crm-main.1', c.id],
    );
  });

  test('XML: hostile strings arrive exactly in text, attributes and CDATA (CR, LF and tab included); a character XML 1.0 cannot carry is refused: attempt error "render", nothing sent', async (t) => {
    const g = await gatewayFor(t, { clock: new FakeClock() });
    const rx = await receiverFor(t);
    const tenant = freshTenant('xml');
    const c = await g.createConsumer({ tenant });
    const body =
      '<?xml version="1.0" encoding="UTF-8"?>\n<ticket id="{{id}}" note="{{data.s}}" single=\'{{data.s}}\'>' +
      '<text>{{data.s}}</text><cdata><![CDATA[{{data.s}}]]></cdata><n>{{data.n}}</n><obj>{{data.o}}</obj><long>{{data.long}}</long><missing>[{{data.nope}}]</missing></ticket>';
    const hook = await mustPut(g, c.id, { url: rx.url, format: 'xml', body });
    const event = await publishAndWait(g, rx, tenant, DATA, 1);
    const [req] = rx.requests as [ReceivedRequest];
    assert.equal(req.headers['content-type'], 'application/xml; charset=utf-8');
    verifyBytes(hook.secret, req);
    const doc = xml.parse(req.body).ticket;
    assert.equal(doc['@_id'], event.id);
    assert.equal(doc['@_note'], HOSTILE, 'in a double-quoted attribute');
    assert.equal(doc['@_single'], HOSTILE, 'in a single-quoted attribute');
    assert.equal(doc.text, HOSTILE);
    assert.equal(doc.cdata, HOSTILE, 'in a CDATA section ("]]>" and CR included)');
    assert.equal(doc.n, '-12500');
    assert.deepEqual(JSON.parse(doc.obj), DATA.o);
    assert.equal(doc.long, LONG);
    assert.equal(doc.missing, '[]');

    for (const [label, bad] of [['U+0001', 'a\u0001b'], ['U+FFFE', 'a\uFFFEb'], ['NUL', 'a\u0000b']] as const) {
      const other = await g.createConsumer({ tenant: freshTenant('xml-bad') });
      await mustPut(g, other.id, { url: `${rx.url}bad`, format: 'xml', body: '<a>{{data.s}}</a>' });
      const before = rx.requests.length;
      await g.publish({ tenant: other.tenant, type: 'ticket.created', data: { s: bad } });
      await assertRenderFailure(g, rx, other.id, before, new RegExp(`^render: \\{\\{data\\.s\\}\\} holds ${label === 'NUL' ? 'U\\+0000' : label.replace('+', '\\+')}`));
    }
  });

  test('form: hostile strings arrive exactly through URLSearchParams (control characters too); values that cannot be percent-encoded (a lone surrogate) are refused with "render"', async (t) => {
    const g = await gatewayFor(t, { clock: new FakeClock() });
    const rx = await receiverFor(t);
    const tenant = freshTenant('form');
    const c = await g.createConsumer({ tenant });
    const body = 'text={{data.s}}&n={{data.n}}&obj={{data.o}}&long={{data.long}}&missing={{data.nope}}&ctl={{data.ctl}}&id={{id}}';
    const hook = await mustPut(g, c.id, { url: rx.url, method: 'PUT', format: 'form', body });
    const event = await publishAndWait(g, rx, tenant, { ...DATA, ctl: 'a\u0001\u0000b\u007f' }, 1);
    const [req] = rx.requests as [ReceivedRequest];
    assert.equal(req.method, 'PUT');
    assert.equal(req.headers['content-type'], 'application/x-www-form-urlencoded');
    verifyBytes(hook.secret, req);
    const form = new URLSearchParams(req.body);
    assert.deepEqual([...form.keys()], ['text', 'n', 'obj', 'long', 'missing', 'ctl', 'id'], 'no value added a field');
    assert.equal(form.get('text'), HOSTILE);
    assert.equal(form.get('n'), '-12500');
    assert.deepEqual(JSON.parse(form.get('obj')!), DATA.o);
    assert.equal(form.get('long'), LONG);
    assert.equal(form.get('missing'), '');
    assert.equal(form.get('ctl'), 'a\u0001\u0000b\u007f');
    assert.equal(form.get('id'), event.id);
    assert.doesNotMatch(req.body, /%20/, 'spaces are +');

    // A lone surrogate (valid in JSON text, so in `data`) has no UTF-8 form: refused, and the
    // worker goes on (it used to take the exception for a database failure and stall).
    const other = await g.createConsumer({ tenant: freshTenant('form-lone') });
    await mustPut(g, other.id, { url: `${rx.url}lone`, format: 'form', body: 'x={{data.v}}' });
    const before = rx.requests.length;
    const r = await g.call('/v1/events', { raw: `{"tenant":"${other.tenant}","type":"a.b","data":{"v":"a\\ud800b"}}`, headers: { 'content-type': 'application/json' } });
    assert.equal(r.status, 201, await r.text());
    await assertRenderFailure(g, rx, other.id, before, /^render: \{\{data\.v\}\} holds U\+D800/);
  });

  test('header values are templates, sent raw; a value that renders with CR/LF fails the attempt with "render" and sends nothing', async (t) => {
    const g = await gatewayFor(t, { clock: new FakeClock() });
    const rx = await receiverFor(t);
    const tenant = freshTenant('headers');
    const c = await g.createConsumer({ tenant });
    await mustPut(g, c.id, { url: rx.url, headers: { 'X-Ticket': 'T-{{data.ticket}}', 'X-Type': '{{type}}', 'X-Static': 'a {{! not sent }}b' } });
    await publishAndWait(g, rx, tenant, { ticket: `"q" <&> é {{x}} \\` }, 1);
    const [req] = rx.requests as [ReceivedRequest];
    assert.equal(req.headers['x-ticket'], 'T-"q" <&> \u00e9 {{x}} \\', 'raw, as the text is (Latin-1 carried as such)');
    assert.equal(req.headers['x-type'], 'ticket.created');
    assert.equal(req.headers['x-static'], 'a b');

    for (const bad of ['a\r\nX-Injected: 1', 'a\nb', 'a\u0000b', 'caf\u20ac']) {
      const other = await g.createConsumer({ tenant: freshTenant('headers-bad') });
      await mustPut(g, other.id, { url: `${rx.url}bad`, headers: { 'X-Ticket': '{{data.ticket}}' } });
      const before = rx.requests.length;
      await g.publish({ tenant: other.tenant, type: 'a.b', data: { ticket: bad } });
      await assertRenderFailure(g, rx, other.id, before, /^render: \{\{data\.ticket\}\} holds U\+[0-9A-F]{4}, which a header value cannot carry/);
    }
    assert.ok(rx.requests.every((r) => r.headers['x-injected'] === undefined));
  });
});

describe('missing paths', () => {
  test('missing:"fail": the attempt fails with error "render" naming the path and the event, nothing is sent, it is retried on the schedule; a PATCH to "empty" delivers it (null)', async (t) => {
    const clock = new FakeClock();
    const g = await gatewayFor(t, { clock, config: { retryScheduleMs: [60_000] } });
    const rx = await receiverFor(t);
    const tenant = freshTenant('missing');
    const c = await g.createConsumer({ tenant });
    await mustPut(g, c.id, { url: rx.url, missing: 'fail', body: '{"t":"{{data.title}}","x":{{data.ticket.id}}}' });
    assert.equal((await webhookOf(g, c.id)).missing, 'fail');
    const event = await g.publish({ tenant, type: 'ticket.created', data: { title: 'no id' } });
    const [first] = await waitForDeliveries(g, c.id, 1);
    assert.equal(first.error, 'render');
    assert.equal(first.event_id, event.id);
    const health = (await webhookOf(g, c.id)).health;
    assert.ok(health.last_error.includes('{{data.ticket.id}}') && health.last_error.includes(event.id), health.last_error);
    const gap = Date.parse(first.next_attempt_at) - Date.parse(first.at);
    assert.ok(gap >= 48_000 && gap <= 72_000, `retried on the schedule: ${gap} ms`);
    await sleep(100);
    assert.equal(rx.requests.length, 0, 'nothing sent');

    await clock.advance(gap);
    const log = await waitForDeliveries(g, c.id, 2);
    assert.equal(log[0].error, 'render');
    assert.equal(log[0].attempt, 2);
    assert.equal(rx.requests.length, 0);

    const patched = await patchHook(g, c.id, { missing: 'empty' });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    await waitForCursor(g, c.id, event.cursor);
    assert.deepEqual(JSON.parse(rx.requests[0]!.body), { t: 'no id', x: null });
  });
});

describe('URL templates', () => {
  test('tags in the path and query are percent-encoded: a value with /, ?, #, space, .., unicode arrives as one path segment / one query value; an api_key in the query is appended', async (t) => {
    const g = await gatewayFor(t, { clock: new FakeClock() });
    const rx = await receiverFor(t);
    const tenant = freshTenant('url');
    const c = await g.createConsumer({ tenant });
    const seg = 'a/b?c#d e/../ü😀%2F&x=1';
    const q = 'x&y=z #/? +é';
    await mustPut(g, c.id, {
      url: `${rx.url}tickets/{{data.seg}}/comments?q={{data.q}}&t={{type}}&fixed=1`,
      auth: { type: 'api_key', in: 'query', name: 'api key', value: 's3cr&t=1' },
    });
    await publishAndWait(g, rx, tenant, { seg, q }, 1);
    const got = new URL(rx.requests[0]!.path, rx.url);
    const segments = got.pathname.split('/');
    assert.equal(segments.length, 4, got.pathname);
    assert.equal(segments[1], 'tickets');
    assert.equal(decodeURIComponent(segments[2]!), seg);
    assert.equal(segments[3], 'comments');
    assert.deepEqual([...got.searchParams.keys()], ['q', 't', 'fixed', 'api key']);
    assert.equal(got.searchParams.get('q'), q);
    assert.equal(got.searchParams.get('t'), 'ticket.created');
    assert.equal(got.searchParams.get('api key'), 's3cr&t=1');
  });

  test('a value that would be a "." or ".." path segment (which URLs resolve away) is refused with "render"; in the query it is just text', async (t) => {
    const g = await gatewayFor(t, { clock: new FakeClock() });
    const rx = await receiverFor(t);
    for (const value of ['..', '.', '%2e%2E', '.%2e']) {
      const c = await g.createConsumer({ tenant: freshTenant('dots') });
      await mustPut(g, c.id, { url: `${rx.url}a/{{data.v}}/b` });
      const before = rx.requests.length;
      await g.publish({ tenant: c.tenant, type: 'a.b', data: { v: value } });
      if (value.includes('%')) {
        // Percent signs are encoded themselves: "%252e" is not a dot segment.
        await rx.waitForCount(before + 1);
        assert.equal(decodeURIComponent(rx.requests[before]!.path.split('/')[2]!), value);
        continue;
      }
      await assertRenderFailure(g, rx, c.id, before, /"\." or "\.\." segment/);
    }
    const q = await g.createConsumer({ tenant: freshTenant('dots-query') });
    await mustPut(g, q.id, { url: `${rx.url}a?v={{data.v}}` });
    const before = rx.requests.length;
    await publishAndWait(g, rx, q.tenant, { v: '..' }, before + 1);
    assert.equal(rx.requests[before]!.path, '/a?v=..');
  });

  test('a templated URL whose host resolves to a private address at send time is refused (error target_not_allowed), and nothing reaches it', async (t) => {
    const rx = await receiverFor(t);
    let privateNow = false;
    const resolve: Resolver = async (host) => {
      if (host !== 'hooks.example.test') throw Object.assign(new Error('no such name'), { code: 'ENOTFOUND' });
      return [{ address: privateNow ? '127.0.0.1' : '93.184.215.14', family: 4 } satisfies LookupAddress];
    };
    const g = await gatewayFor(t, { clock: new FakeClock(), resolve, config: { allowPrivateTargets: false } });
    const c = await g.createConsumer({ tenant: freshTenant('ssrf') });
    // Configuration sees the host (a public answer then); the tags never reach it.
    await mustPut(g, c.id, { url: `http://hooks.example.test:${rx.port}/t/{{data.id}}?x={{data.id}}` });
    privateNow = true;
    await g.publish({ tenant: c.tenant, type: 'a.b', data: { id: '1' } });
    const [attempt] = await waitForDeliveries(g, c.id, 1);
    assert.equal(attempt.error, 'target_not_allowed', JSON.stringify(attempt));
    assert.equal(attempt.status, null);
    assert.match((await webhookOf(g, c.id)).health.last_error, /127\.0\.0\.1/);
    await sleep(100);
    assert.equal(rx.requests.length, 0);
  });
});

describe('endpoint authentication', () => {
  test('basic, bearer, api_key (header and query) and secret_header are what the receiver sees; signed on top', async (t) => {
    const g = await gatewayFor(t, { clock: new FakeClock() });
    const rx = await receiverFor(t);
    const tenant = freshTenant('auth');
    const cases: Array<[string, unknown, (r: ReceivedRequest) => void]> = [
      ['basic', { auth: { type: 'basic', username: 'ann', password: 'pä$$ word:1' } }, (r) =>
        assert.equal(r.headers.authorization, `Basic ${Buffer.from('ann:pä$$ word:1').toString('base64')}`)],
      ['bearer', { auth: { type: 'bearer', token: 'tok_123.abc' } }, (r) => assert.equal(r.headers.authorization, 'Bearer tok_123.abc')],
      ['api-header', { auth: { type: 'api_key', in: 'header', name: 'X-Api-Key', value: 'k-1' } }, (r) => assert.equal(r.headers['x-api-key'], 'k-1')],
      ['api-query', { auth: { type: 'api_key', in: 'query', name: 'key', value: 'k 2' } }, (r) =>
        assert.equal(new URL(r.path, rx.url).searchParams.get('key'), 'k 2')],
      ['secret-header', { secret_header: { name: 'X-Shared', value: 'shh' } }, (r) => assert.equal(r.headers['x-shared'], 'shh')],
    ];
    const secrets = new Map<string, string>();
    for (const [label, fields] of cases) {
      const c = await g.createConsumer({ tenant });
      secrets.set(label, (await mustPut(g, c.id, { url: `${rx.url}${label}`, method: 'POST', ...(fields as object) })).secret);
    }
    await publishAndWait(g, rx, tenant, { k: 1 }, cases.length);
    for (const [label, , check] of cases) {
      const req = rx.requests.find((r) => r.path.startsWith(`/${label}`))!;
      assert.ok(req, label);
      check(req);
      verifyBytes(secrets.get(label)!, req);
    }
  });
});
