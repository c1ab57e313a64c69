/**
 * Push mode and the bridge from the command line, spawned for real against a real gateway and
 * a real receiver: `webhooks put|patch|get|delete`, `deliveries`, `bridge status|pause|resume`,
 * `consumers update`, JSON when piped (or --json) and tables with --table, and usage errors
 * (exit 2) that change nothing.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_KEY, gatewayFor } from './support/gateway.ts';
import { receiverFor } from './support/receiver.ts';
import { killChildren, run } from './support/cli.ts';
import { waitFor } from './support/wait.ts';

after(killChildren);

test('webhooks, deliveries and the bridge from the CLI: JSON for scripts, tables for people', async (t) => {
  const g = await gatewayFor(t);
  let failing = true;
  const rx = await receiverFor(t, () => (failing ? { status: 500 } : { status: 200 }));
  const env = { POLLGATE_URL: g.url, POLLGATE_ADMIN_KEY: ADMIN_KEY };
  const consumer = await g.createConsumer({ tenant: 'cli-push', start: 'earliest' });
  await g.publish({ tenant: 'cli-push', type: 'c.x', data: 1 });

  // Usage errors: exit 2, nothing configured.
  for (const args of [
    ['webhooks', 'put', consumer.id],
    ['webhooks', 'put', consumer.id, '--target', rx.url, '--header', 'no colon'],
    ['webhooks', 'put', consumer.id, '--target', rx.url, '--method', 'TRACE'],
    ['webhooks', 'put', consumer.id, '--target', rx.url, '--timeout-ms', '40000'],
    ['webhooks', 'patch', consumer.id],
    ['webhooks', 'get', consumer.id, '--json', '--table'],
    ['deliveries', consumer.id, '--limit', '0'],
  ]) {
    const r = await run(args, env);
    assert.equal(r.code, 2, `${args.join(' ')} → ${r.stderr}`);
    assert.match(r.stderr, /error: /);
  }
  assert.equal((await g.json(`/v1/consumers/${consumer.id}/webhook`)).status, 404, 'nothing was configured');

  // put: JSON on a pipe, with the generated secret shown once.
  const put = await run(['webhooks', 'put', consumer.id, '--target', rx.url, '--header', 'X-Team: ops', '--timeout-ms', '2000'], env);
  assert.equal(put.code, 0, put.stderr);
  const created = JSON.parse(put.stdout);
  assert.match(created.secret, /^whsec_/);
  assert.deepEqual(created.headers, { 'X-Team': 'ops' });
  assert.equal(created.timeout_ms, 2000);

  await rx.waitForCount(1, 10_000);
  const failingView = await run(['webhooks', 'get', consumer.id, '--table'], env);
  assert.equal(failingView.code, 0, failingView.stderr);
  await waitFor(async () => /state:\s+failing/.test((await run(['webhooks', 'get', consumer.id, '--table'], env)).stdout), 10_000, 'shown as failing');
  const shown = (await run(['webhooks', 'get', consumer.id, '--table'], env)).stdout;
  assert.match(shown, /target:\s+POST http:\/\/127\.0\.0\.1/);
  assert.match(shown, /last error:\s+http_status: HTTP 500/);
  assert.match(shown, /next attempt:\s+in \d+/);
  assert.doesNotMatch(shown, /whsec_/, 'the secret is never shown again');

  const attempts = await run(['deliveries', consumer.id, '--table'], env);
  assert.equal(attempts.code, 0, attempts.stderr);
  assert.match(attempts.stdout, /^AT\s+EVENT\s+ATTEMPT\s+STATUS\s+RESULT/m);
  assert.match(attempts.stdout, /\s500\s+http_status\s/);
  const json = JSON.parse((await run(['deliveries', consumer.id, '--json'], env)).stdout);
  assert.equal(json.deliveries[0].status, 500);

  // Pausing this webhook: shown paused, with no next attempt.
  const paused = await run(['webhooks', 'patch', consumer.id, '--disable', '--table'], env);
  assert.equal(paused.code, 0, paused.stderr);
  assert.match(paused.stdout, /state:\s+paused/);
  assert.match(paused.stdout, /next attempt:\s+-/);
  assert.equal((await g.json(`/v1/consumers/${consumer.id}`)).body.mode, 'pull');

  // The bridge switch: pause, status, resume.
  const off = await run(['bridge', 'pause', '--table'], env);
  assert.equal(off.code, 0, off.stderr);
  assert.match(off.stdout, /pushing:\s+PAUSED/);
  assert.equal((await g.json('/v1/bridge')).body.enabled, false);
  assert.equal(JSON.parse((await run(['bridge'], env)).stdout).enabled, false);
  failing = false;
  assert.equal((await run(['webhooks', 'patch', consumer.id, '--enable'], env)).code, 0);
  const on = await run(['bridge', 'resume'], env);
  assert.equal(JSON.parse(on.stdout).enabled, true);
  await waitFor(async () => (await g.json(`/v1/consumers/${consumer.id}`)).body.lag === 0, 15_000, 'delivered after resume');
  assert.match((await run(['webhooks', 'get', consumer.id, '--table'], env)).stdout, /state:\s+delivering/);

  // delete: back to pull mode at the cursor the bridge reached.
  const deleted = await run(['webhooks', 'delete', consumer.id], env);
  assert.equal(deleted.code, 0, deleted.stderr);
  assert.equal(JSON.parse(deleted.stdout).mode, 'pull');
  const gone = await run(['webhooks', 'get', consumer.id], env);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /404 not_found/);
});

test('consumers: update, and tables for people', async (t) => {
  const g = await gatewayFor(t);
  const env = { POLLGATE_URL: g.url, POLLGATE_ADMIN_KEY: ADMIN_KEY };
  const consumer = await g.createConsumer({ tenant: 'cli-table', name: 'first' });
  const updated = await run(['consumers', 'update', consumer.id, '--name', 'second', '--filter', '{"types":["ticket.*"]}'], env);
  assert.equal(updated.code, 0, updated.stderr);
  assert.equal(JSON.parse(updated.stdout).name, 'second');
  assert.deepEqual(JSON.parse(updated.stdout).filter, { types: ['ticket.*'] });
  const cleared = JSON.parse((await run(['consumers', 'update', consumer.id, '--no-filter'], env)).stdout);
  assert.equal(cleared.filter, null);
  assert.equal((await run(['consumers', 'update', consumer.id], env)).code, 2, 'nothing to change is a usage error');

  const list = await run(['consumers', 'list', '--table'], env);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /^ID\s+TENANT\s+NAME\s+MODE\s+LAG\s+POLLING\s+LAST POLL$/m);
  assert.match(list.stdout, new RegExp(`^${consumer.id}\\s+cli-table\\s+second\\s+pull\\s+0\\s+no\\s+-$`, 'm'));
  const created = await run(['consumers', 'create', '--tenant', 'cli-table', '--table'], env);
  assert.match(created.stdout, /key:\s+pgk_\S+\s+\(shown only now\)/);
});

test('no admin key: the error says where the server keeps it', async () => {
  const r = await run(['consumers', 'list'], { POLLGATE_URL: 'http://127.0.0.1:9' });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /POLLGATE_ADMIN_KEY/);
  assert.match(r.stderr, /admin\.key/);
});
