/**
 * PostgreSQL: the push bridge across nodes (SPEC "Engines and nodes"; SCALE-OUT §4). Two real
 * server processes on one database deliver one push consumer; the node holding its lease is
 * SIGKILLed mid-delivery; the other takes it over within the lease time and goes on from the
 * committed cursor: every event arrives, first arrivals in log order, the stream never skips
 * ahead, and only one node delivers at a time (no event is delivered by two nodes at once).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { POSTGRES_ONLY } from './support/engine.ts';
import { createTestDatabase } from './support/postgres.ts';
import { killAllServers, request, startServer, TEST_ADMIN_KEY, type ServerProcess } from './support/process.ts';
import { startReceiver } from './support/receiver.ts';
import { waitUntil } from './support/wait.ts';
import pg from 'pg';

after(() => killAllServers());

const TOTAL = 600;
const KILL_AT = 150;
const LEASE_TTL_MS = 2_000;

test('push across nodes: kill -9 of the owner, another node takes over within the lease time, nothing lost, order kept', { skip: POSTGRES_ONLY, timeout: 120_000 }, async (t) => {
  const database = await createTestDatabase('pollgate_push_nodes');
  const env = { POLLGATE_DATABASE_URL: database.url, POLLGATE_LEASE_TTL: `${LEASE_TTL_MS}ms`, POLLGATE_ALLOW_PRIVATE_TARGETS: '1' };
  const a = await startServer({ env });
  const b = await startServer({ env });
  const nodes: Record<string, ServerProcess> = {};
  for (const s of [a, b]) nodes[(await request(s.url, '/readyz', { key: null })).body.node] = s;

  let killedAt = 0;
  let victim: ServerProcess | undefined;
  const rx = await startReceiver((req) => {
    if (req.n === KILL_AT && !victim) {
      void ownerOf().then((owner) => {
        victim = nodes[owner!];
        killedAt = Date.now();
        victim!.killGroup('SIGKILL');
      });
      return { hang: true };
    }
    return { status: 200 };
  });
  t.after(() => rx.close());
  const client = new pg.Client({ connectionString: database.url });
  client.on('error', () => {});
  await client.connect();
  t.after(async () => {
    await client.end();
    await killAllServers();
    await database.drop();
  });
  let consumerId = '';
  const ownerOf = async (): Promise<string | undefined> =>
    (await client.query('SELECT owner FROM push_leases WHERE consumer_id = $1', [consumerId])).rows[0]?.owner ?? undefined;

  const created = await request(a.url, '/v1/consumers', { body: { tenant: 'pn', start: 'earliest' }, key: TEST_ADMIN_KEY });
  assert.equal(created.status, 201, created.text);
  consumerId = created.body.id;
  const published: any[] = [];
  for (let i = 0; i < TOTAL; i += 100) {
    const r = await request(b.url, '/v1/events', { body: Array.from({ length: 100 }, (_, k) => ({ tenant: 'pn', type: 'p.x', data: i + k })) });
    assert.equal(r.status, 201, r.text);
    published.push(...r.body.events);
  }
  const hook = await request(b.url, `/v1/consumers/${consumerId}/webhook`, { method: 'PUT', body: { url: rx.url, timeout_ms: 1000 } });
  assert.equal(hook.status, 201, hook.text);

  await waitUntil(() => victim !== undefined, 60_000, () => `the kill at request ${KILL_AT} (have ${rx.requests.length})`);
  await victim!.waitExit(10_000);
  const survivor = victim === a ? b : a;
  await waitUntil(
    () => new Set(rx.requests.map((r) => r.headers['webhook-id'])).size >= TOTAL,
    60_000,
    () => `every event (have ${new Set(rx.requests.map((r) => r.headers['webhook-id'])).size} of ${TOTAL})`,
  );
  const firstAfterKill = rx.requests.find((r) => r.at > killedAt && r.n > KILL_AT);
  const takeoverMs = firstAfterKill!.at - killedAt;

  const ids = rx.requests.map((r) => String(r.headers['webhook-id']));
  const indexOf = new Map(published.map((e, i) => [e.id, i]));
  assert.deepEqual([...new Set(ids)], published.map((e) => e.id), 'every event, first arrivals in log order');
  let max = -1;
  for (const [n, id] of ids.entries()) {
    const i = indexOf.get(id)!;
    assert.ok(i <= max + 1, `request ${n + 1} skipped from event ${max} to ${i}`);
    max = Math.max(max, i);
  }
  assert.ok(takeoverMs < LEASE_TTL_MS + 3_000, `taken over in ${takeoverMs} ms (lease ${LEASE_TTL_MS} ms)`);
  await waitUntil(
    async () => (await request(survivor.url, `/v1/consumers/${consumerId}`)).body.cursor === published.at(-1).cursor,
    10_000,
    () => 'the final cursor',
  );
  const repeats = ids.length - TOTAL;
  t.diagnostic(`owner killed at request ${KILL_AT}; the other node delivered again after ${takeoverMs} ms (lease ${LEASE_TTL_MS} ms); ${repeats} repeated deliveries`);
  assert.deepEqual(await survivor.stop(), { code: 0, signal: null });
});
