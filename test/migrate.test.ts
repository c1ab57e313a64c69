/**
 * `pollgate migrate --to postgres://…` (SPEC "Engines and nodes"): a populated embedded
 * deployment — consumers mid-log, a webhook mid-retry, events removed by retention, a generated
 * admin key — is copied into an empty PostgreSQL database by the real command; then a node on
 * PostgreSQL serves the same keys, and each consumer reads exactly the events it had not acked.
 * A non-empty target and a data directory still in use are refused, changing nothing.
 * Runs in the SQLite suite (it starts from an embedded deployment) when PostgreSQL answers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { SQLITE_ONLY } from './support/engine.ts';
import { createTestDatabase, postgresAvailable, POSTGRES_UNAVAILABLE } from './support/postgres.ts';
import { startGateway, tempDir } from './support/gateway.ts';
import { startReceiver } from './support/receiver.ts';
import { ROOT } from './support/process.ts';
import { waitUntil } from './support/wait.ts';
import { appendedTotal } from './support/appended.ts';

const skip = SQLITE_ONLY || (!(await postgresAvailable()) && POSTGRES_UNAVAILABLE);

function pollgate(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['bin/pollgate.js', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

test('migrate: an embedded deployment moves to PostgreSQL with its keys, cursors, webhooks and admin key', { skip, timeout: 120_000 }, async (t) => {
  const dataDir = tempDir('pollgate-migrate-');
  const database = await createTestDatabase('pollgate_migrate');
  t.after(() => database.drop());
  const rx = await startReceiver(() => ({ status: 500 }));
  t.after(() => rx.close());

  // An embedded deployment, its admin key generated into the data directory.
  const lite = await startGateway({ dataDir, config: { adminKey: undefined, allowPrivateTargets: true, retryScheduleMs: [60_000] } });
  const adminKey = readFileSync(join(dataDir, 'admin.key'), 'utf8').trim();
  const call = (path: string, init: Parameters<typeof lite.json>[1] = {}) => lite.json(path, { key: adminKey, ...init });
  const publish = async (tenant: string, n: number) =>
    (await call('/v1/events', { body: Array.from({ length: n }, (_, i) => ({ tenant, type: 'm.x', data: { i } })) })).body.events;
  const a = await publish('acme', 5);
  await publish('globex', 3);
  const reader = (await call('/v1/consumers', { body: { tenant: 'acme', start: 'earliest', name: 'reader' } })).body;
  assert.equal((await lite.json('/v1/ack', { key: reader.key, body: { cursor: a[1].cursor } })).status, 200);
  const pusher = (await call('/v1/consumers', { body: { tenant: 'globex', start: 'earliest' } })).body;
  const hook = await call(`/v1/consumers/${pusher.id}/webhook`, { method: 'PUT', body: { url: rx.url } });
  assert.equal(hook.status, 201, JSON.stringify(hook.body));
  await waitUntil(async () => (await call(`/v1/consumers/${pusher.id}/webhook`)).body.health.attempt >= 1, 10_000, () => 'a failed attempt');
  const before = (await call(`/v1/consumers/${pusher.id}/webhook`)).body;
  await lite.gateway.stop();

  // A data directory in use is refused (here: a server running on it).
  const running = await startGateway({ dataDir, config: { adminKey: undefined } });
  const busy = await pollgate(['migrate', '--to', database.url, '--data-dir', dataDir]);
  assert.equal(busy.code, 1, busy.stderr);
  assert.match(busy.stderr, /another pollgate process is using the data directory/);
  await running.gateway.stop();

  const moved = await pollgate(['migrate', '--to', database.url, '--data-dir', dataDir]);
  assert.equal(moved.code, 0, moved.stderr);
  assert.match(moved.stdout, /events\s+8\b/);
  assert.match(moved.stdout, /consumers\s+2\b/);
  assert.match(moved.stdout, /webhooks\s+1\b/);
  assert.match(moved.stdout, /admin key/);
  t.diagnostic(moved.stdout.trim().split('\n').join(' | '));

  // A node on PostgreSQL: the same admin key, consumer keys and cursors.
  rx.behave(() => ({ status: 200 }));
  const pgNode = await startGateway({ dataDir: tempDir('pollgate-migrated-'), config: { databaseUrl: database.url, adminKey: undefined, allowPrivateTargets: true, retryScheduleMs: [60_000] } });
  t.after(() => pgNode.close());
  assert.equal((await pgNode.json('/readyz', { key: null })).body.engine, 'postgres');
  const page = await pgNode.json('/v1/events?wait=0', { key: reader.key });
  assert.equal(page.status, 200, JSON.stringify(page.body));
  assert.deepEqual(page.body.events.map((e: any) => e.id), a.slice(2).map((e: any) => e.id), 'exactly the events it had not acked');
  assert.deepEqual(page.body.events, a.slice(2), 'the same envelopes, cursors included');
  const view = await pgNode.json(`/v1/consumers/${pusher.id}`, { key: adminKey });
  assert.equal(view.status, 200, 'the admin key works on the new node');
  assert.equal(view.body.webhook.health.attempt, before.health.attempt, 'the retry state came along');
  assert.equal(view.body.webhook.url, before.url);
  // Resume delivery now (a PATCH retries at once); the secret came along: signatures verify.
  assert.equal((await pgNode.json(`/v1/consumers/${pusher.id}/webhook`, { method: 'PATCH', key: adminKey, body: { enabled: true } })).status, 200);
  await waitUntil(() => rx.requests.filter((r) => r.headers['webhook-id']).length >= 4, 10_000, () => 'deliveries after the move');
  const last = rx.requests.at(-1)!;
  new Webhook(hook.body.secret).verify(last.body, {
    'webhook-id': String(last.headers['webhook-id']),
    'webhook-timestamp': String(last.headers['webhook-timestamp']),
    'webhook-signature': String(last.headers['webhook-signature']),
  });
  const next = await pgNode.json('/v1/events', { method: 'POST', key: adminKey, body: { tenant: 'acme', type: 'm.x', data: { i: 5 } } });
  assert.equal(next.body.cursor, 't0000000000000006', 'positions go on after the copied ones');

  // Into a database that is no longer empty: refused, nothing changed.
  const again = await pollgate(['migrate', '--to', database.url, '--data-dir', dataDir]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already holds pollgate data/);
  assert.ok(!/\n\s+at .+:\d+:\d+\)?\n/.test(again.stderr), 'a message, not a stack trace');
  assert.equal(await appendedTotal(pgNode.url, adminKey), 9);
});
