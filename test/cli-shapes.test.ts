/**
 * Delivery shapes from the command line (issue 12), spawned for real against a real gateway and
 * a real receiver: `webhooks put|patch` with the shape flags (method, format, body and
 * --body-file, auth from flags and files, shared-secret header, signing, missing, retry, rate
 * limit, alerts), `webhooks preview|test` (a cursor or a sample, unsaved changes; JSON and
 * tables), the answer in `deliveries`, and usage errors (exit 2) that change nothing.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADMIN_KEY, gatewayFor, waitForDeliveries } from './support/gateway.ts';
import { receiverFor } from './support/receiver.ts';
import { killChildren, run } from './support/cli.ts';

after(killChildren);

const TOKEN = 'cli-bearer-token-0123';
const SHARED = 'cli-shared-secret-4567';

async function json(args: string[], env: Record<string, string>): Promise<any> {
  const r = await run([...args, '--json'], env);
  assert.equal(r.code, 0, `${args.join(' ')} → ${r.code}\n${r.stderr}`);
  return JSON.parse(r.stdout);
}

async function tableOf(args: string[], env: Record<string, string>): Promise<string> {
  const r = await run([...args, '--table'], env);
  assert.equal(r.code, 0, `${args.join(' ')} → ${r.code}\n${r.stderr}`);
  return r.stdout;
}

test('webhooks put|patch with shape flags, preview and test, the answer in deliveries', async (t) => {
  const g = await gatewayFor(t);
  const rx = await receiverFor(t, (req) => ({ status: 201, headers: { 'x-receipt': `r-${req.n}` }, body: `stored ${req.n}\nline two` }));
  const env = { POLLGATE_URL: g.url, POLLGATE_ADMIN_KEY: ADMIN_KEY };
  const dir = mkdtempSync(join(tmpdir(), 'pollgate-cli-shapes-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, `${TOKEN}\n`);
  const bodyFile = join(dir, 'body.tmpl');
  writeFileSync(bodyFile, 'text={{data.text}}&ref={{id}}\n');

  const consumer = await g.createConsumer({ tenant: 'cli-shapes', name: 'crm-sync', start: 'earliest' });
  const event = await g.publish({ tenant: 'cli-shapes', type: 'comment.created', data: { ticket: { id: 'T 42/7' }, text: 'Printer on fire & "smoking" <now>' } });
  const id = consumer.id;

  const put = await run(
    [
      'webhooks', 'put', id,
      '--target', `${rx.url}tickets/{{data.ticket.id}}/comments`,
      '--method', 'put',
      '--format', 'form',
      '--body-file', bodyFile,
      '--header', 'X-Event-Type: {{type}}',
      '--auth-bearer-file', tokenFile,
      '--secret-header', `X-Hook-Secret=${SHARED}`,
      '--missing', 'fail',
      '--retry-schedule', '30m,1h',
      '--retry-max-age', '24h',
      '--rate-limit', '5',
      '--alert-failures', '2',
      '--alert-window', '1h',
      '--disable',
    ],
    env,
  );
  assert.equal(put.code, 0, put.stderr);
  const created = JSON.parse(put.stdout);
  assert.match(created.secret, /^whsec_/);
  assert.equal(created.method, 'PUT');
  assert.equal(created.format, 'form');
  assert.equal(created.body, 'text={{data.text}}&ref={{id}}', 'the file, its final newline dropped');
  assert.deepEqual(created.auth, { type: 'bearer' });
  assert.deepEqual(created.secret_header, { name: 'X-Hook-Secret' });
  assert.equal(created.missing, 'fail');
  assert.deepEqual(created.retry, { schedule: ['30m', '1h'], max_age: '1d' });
  assert.equal(created.rate_limit, 5);
  assert.deepEqual(created.alerts, { enabled: null, failures: 2, window: '1h' });
  assert.doesNotMatch(put.stdout, new RegExp(`${TOKEN}|${SHARED}`), 'credentials are never printed');

  const shown = await tableOf(['webhooks', 'get', id], env);
  assert.match(shown, /target:\s+PUT http:\/\/127\.0\.0\.1:\d+\/tickets\/\{\{data\.ticket\.id\}\}\/comments/);
  assert.match(shown, /state:\s+paused/);
  assert.match(shown, /format:\s+form/);
  assert.match(shown, /body:\s+text=\{\{data\.text\}\}&ref=\{\{id\}\}/);
  assert.match(shown, /auth:\s+bearer token/);
  assert.match(shown, /secret header:\s+X-Hook-Secret/);
  assert.match(shown, /signing:\s+on/);
  assert.match(shown, /missing tags:\s+fail the attempt/);
  assert.match(shown, /retry:\s+every 30m, 1h for 1d/);
  assert.match(shown, /rate limit:\s+5\/s/);
  assert.match(shown, /alerts:\s+2 failures within 1h/);
  assert.doesNotMatch(shown, new RegExp(`${TOKEN}|${SHARED}`));

  // A PATCH of one part of retry or alerts keeps the other parts.
  const longer = await json(['webhooks', 'patch', id, '--retry-max-age', '12h'], env);
  assert.deepEqual(longer.retry, { schedule: ['30m', '1h'], max_age: '12h' });
  const quiet = await json(['webhooks', 'patch', id, '--alerts', 'off'], env);
  assert.deepEqual(quiet.alerts, { enabled: false, failures: 2, window: '1h' });
  assert.match(await tableOf(['webhooks', 'get', id], env), /alerts:\s+off/);

  // preview: the request for the event, credentials hidden, nothing sent.
  const preview = await json(['webhooks', 'preview', id, '--cursor', event.cursor], env);
  assert.deepEqual(preview.event, { id: event.id, cursor: event.cursor, type: 'comment.created' });
  assert.equal(preview.request.url, `${rx.url}tickets/T%2042%2F7/comments`);
  assert.equal(preview.request.body, `text=Printer+on+fire+%26+%22smoking%22+%3Cnow%3E&ref=${event.id}`);
  const previewTable = await tableOf(['webhooks', 'preview', id, '--cursor', event.cursor], env);
  assert.match(previewTable, new RegExp(`event:\\s+${event.id} comment\\.created at ${event.cursor}`));
  assert.match(previewTable, /^PUT http:\/\/127\.0\.0\.1:\d+\/tickets\/T%2042%2F7\/comments$/m);
  assert.match(previewTable, /^authorization: Bearer •••$/im);
  assert.match(previewTable, /^text=Printer\+on\+fire/m);
  assert.doesNotMatch(previewTable + JSON.stringify(preview), new RegExp(`${TOKEN}|${SHARED}`));
  assert.equal(rx.requests.length, 0, 'a preview sends nothing');

  // A sample event with unsaved changes; a sample missing the paths is the render error.
  const draft = await json(['webhooks', 'preview', id, '--type', 'ticket.created', '--data', '{"ticket":{"id":"X-1"},"text":"hi \\"there\\""}', '--format', 'json', '--body', '{"t": {{data.text}}, "type": "{{type}}"}'], env);
  assert.equal(draft.event.cursor, null);
  assert.equal(draft.request.body, '{"t": "hi \\"there\\"", "type": "ticket.created"}');
  assert.equal((await json(['webhooks', 'get', id], env)).format, 'form', 'a preview saves nothing');
  const broken = await tableOf(['webhooks', 'preview', id, '--data', '{}'], env);
  assert.match(broken, /\(a sample\)/);
  assert.match(broken, /error:\s+render: .*data\.(ticket\.id|text)/);

  // test: sent now, with the real credentials; the receiver's answer shown.
  const sent = await tableOf(['webhooks', 'test', id, '--cursor', event.cursor], env);
  assert.match(sent, /result:\s+ok/);
  assert.match(sent, /status:\s+201/);
  assert.match(sent, /took:\s+\d+ ms/);
  assert.match(sent, /^x-receipt: r-1$/m);
  assert.match(sent, /^stored 1\nline two$/m);
  const got = rx.requests[0]!;
  assert.equal(got.method, 'PUT');
  assert.equal(got.path, '/tickets/T%2042%2F7/comments');
  assert.equal(new URLSearchParams(got.body).get('text'), 'Printer on fire & "smoking" <now>');
  assert.equal(got.headers.authorization, `Bearer ${TOKEN}`, 'the token from the file');
  assert.equal(got.headers['x-hook-secret'], SHARED);
  assert.equal(got.headers['x-event-type'], 'comment.created');
  const sentJson = await json(['webhooks', 'test', id], env);
  assert.equal(sentJson.ok, false, 'a sample without the paths fails to render (missing: fail)');
  assert.equal(sentJson.error, 'render');
  assert.equal(rx.requests.length, 1, 'nothing sent for a render error');
  assert.equal((await g.json(`/v1/consumers/${id}`)).body.cursor, consumer.cursor, 'a test moves no cursor');

  // Enabled: the bridge delivers, and deliveries shows the answer (one line, cut short in a table).
  assert.equal((await run(['webhooks', 'patch', id, '--enable'], env)).code, 0);
  const [attempt] = await waitForDeliveries(g, id, 1, 10_000);
  assert.equal(attempt.status, 201);
  const listed = await tableOf(['deliveries', id], env);
  assert.match(listed, /^AT\s+EVENT\s+ATTEMPT\s+STATUS\s+RESULT\s+TOOK\s+NEXT ATTEMPT\s+RESPONSE$/m);
  assert.match(listed, /\s201\s+ok\s.*\sstored 2 line two$/m);
  assert.equal((await json(['deliveries', id], env)).deliveries[0].response, 'stored 2\nline two');

  // Removing credentials and overrides.
  const plain = await json(['webhooks', 'patch', id, '--no-auth', '--no-secret-header', '--no-signing', '--retry-default', '--rate-limit', 'none', '--alerts', 'default', '--disable'], env);
  assert.deepEqual(
    [plain.auth, plain.secret_header, plain.signing, plain.retry, plain.rate_limit, plain.alerts],
    [null, null, false, null, null, null],
  );
  const sentPlain = await json(['webhooks', 'test', id, '--cursor', event.cursor], env);
  assert.equal(sentPlain.ok, true);
  const last = rx.requests.at(-1)!;
  assert.equal(last.headers.authorization, undefined);
  assert.equal(last.headers['x-hook-secret'], undefined);
  assert.equal(last.headers['webhook-signature'], undefined, '--no-signing');

  // Other auth kinds from flags reach the receiver.
  await json(['webhooks', 'patch', id, '--auth-basic', 'ana:pa:ss'], env);
  await json(['webhooks', 'test', id, '--cursor', event.cursor], env);
  assert.equal(rx.requests.at(-1)!.headers.authorization, `Basic ${Buffer.from('ana:pa:ss').toString('base64')}`);
  await json(['webhooks', 'patch', id, '--api-key-query', 'api_key=k=1'], env);
  await json(['webhooks', 'test', id, '--cursor', event.cursor], env);
  assert.equal(new URL(rx.requests.at(-1)!.path, 'http://x').searchParams.get('api_key'), 'k=1');
  await json(['webhooks', 'patch', id, '--api-key-header', 'X-Api-Key=hk-9'], env);
  await json(['webhooks', 'test', id, '--cursor', event.cursor], env);
  assert.equal(rx.requests.at(-1)!.headers['x-api-key'], 'hk-9');

  // The server's refusals: exit 1, the field named, nothing changed.
  const before = await json(['webhooks', 'get', id], env);
  const noBody = await run(['webhooks', 'patch', id, '--no-body'], env);
  assert.equal(noBody.code, 1, noBody.stderr);
  assert.match(noBody.stderr, /400 invalid_request: .*body/);
  const badTemplate = await run(['webhooks', 'patch', id, '--format', 'json', '--body', '{"a": {{#data}}x{{/data}}}'], env);
  assert.equal(badTemplate.code, 1, badTemplate.stderr);
  assert.match(badTemplate.stderr, /400 invalid_request: .*body/);
  assert.deepEqual(await json(['webhooks', 'get', id], env), before, 'nothing changed');
});

test('shape flags refused on the command line: exit 2, nothing configured', async (t) => {
  const g = await gatewayFor(t);
  const env = { POLLGATE_URL: g.url, POLLGATE_ADMIN_KEY: ADMIN_KEY };
  const consumer = await g.createConsumer({ tenant: 'cli-shapes-usage' });
  const put = ['webhooks', 'put', consumer.id, '--target', 'http://127.0.0.1:9/'];
  for (const [args, message] of [
    [[...put, '--method', 'TRACE'], /--method: "TRACE" must be one of GET, POST, PUT, PATCH, DELETE/],
    [[...put, '--format', 'yaml'], /--format/],
    [[...put, '--auth-basic', 'nocolon'], /--auth-basic: must be "user:pass"/],
    [[...put, '--auth-bearer', 'x', '--api-key-header', 'K=v'], /--auth-bearer, --api-key-header exclude each other/],
    [[...put, '--auth-bearer', 'x', '--no-auth'], /exclude each other/],
    [[...put, '--api-key-query', 'novalue'], /--api-key-query: "novalue" must be NAME=VALUE/],
    [[...put, '--secret-header', 'X-S'], /--secret-header/],
    [[...put, '--missing', 'maybe'], /--missing/],
    [[...put, '--rate-limit', '0'], /--rate-limit/],
    [[...put, '--rate-limit', 'fast'], /--rate-limit/],
    [[...put, '--alert-failures', '0'], /--alert-failures/],
    [[...put, '--alerts', 'sometimes'], /--alerts/],
    [[...put, '--alerts', 'default', '--alert-window', '1d'], /--alerts default excludes/],
    [[...put, '--retry-default', '--retry-schedule', '1m'], /--retry-default excludes/],
    [[...put, '--retry-schedule', '1m,,2m'], /--retry-schedule/],
    [[...put, '--body', 'x', '--body-file', '/dev/null'], /--body-file excludes/],
    [[...put, '--body-file', '/nonexistent/body'], /--body-file: cannot read/],
    [[...put, '--auth-bearer-file', '/nonexistent/token'], /--auth-bearer-file: cannot read/],
    [['webhooks', 'preview', consumer.id, '--cursor', 't0000000000000001', '--data', '{}'], /--cursor excludes/],
    [['webhooks', 'preview', consumer.id, '--data', 'not json'], /--data: not valid JSON/],
    [['webhooks', 'patch', consumer.id], /nothing to change/],
  ] as Array<[string[], RegExp]>) {
    const r = await run(args, env);
    assert.equal(r.code, 2, `${args.join(' ')} → ${r.code} ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
  }
  assert.equal((await g.json(`/v1/consumers/${consumer.id}/webhook`)).status, 404, 'nothing was configured');
  const none = await run(['webhooks', 'preview', consumer.id], env);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /404 not_found/);
});
