/**
 * PostgreSQL unreachable (SPEC "Engines and nodes"): publishes and new reads get 503 with
 * Retry-After, a held poll answers at its deadline, /readyz is 503 and /healthz 200; when the
 * database is back everything resumes by itself, including wake-ups from other nodes (the
 * LISTEN connection reconnects). The database "goes away" for one node only, through a proxy
 * the test cuts; the other node and the database itself are untouched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { POSTGRES_ONLY } from './support/engine.ts';
import { createTestDatabase } from './support/postgres.ts';
import { startGateway } from './support/gateway.ts';
import { startTcpProxy } from './support/tcp-proxy.ts';
import { startReceiver } from './support/receiver.ts';
import { waitUntil, within } from './support/wait.ts';

test('PostgreSQL down for one node: 503 with Retry-After, held polls end at their deadline, recovery by itself', { skip: POSTGRES_ONLY, timeout: 60_000 }, async (t) => {
  const database = await createTestDatabase('pollgate_down');
  const proxy = await startTcpProxy(Number(new URL(database.url).port || 5432));
  const viaProxy = new URL(database.url);
  viaProxy.port = String(proxy.port);
  const direct = await startGateway({ config: { databaseUrl: database.url } });
  const node = await startGateway({ config: { databaseUrl: viaProxy.toString() } });
  t.after(async () => {
    await node.close();
    await direct.close();
    await proxy.close();
    await database.drop();
  });

  const consumer = await node.createConsumer({ tenant: 'down' });
  const held = node.json('/v1/events?wait=2', { key: consumer.key });
  await new Promise((resolve) => setTimeout(resolve, 200));
  const cutAt = performance.now();
  proxy.cut();

  const publish = await node.json('/v1/events', { body: { tenant: 'down', type: 'd.x', data: 1 } });
  assert.equal(publish.status, 503, JSON.stringify(publish.body));
  assert.equal(publish.body.error.code, 'unavailable');
  assert.ok(Number(publish.headers.get('retry-after')) > 0, 'Retry-After says when to come back');
  const read = await node.json('/v1/events?wait=0', { key: consumer.key });
  assert.equal(read.status, 503, JSON.stringify(read.body));
  assert.ok(read.headers.get('retry-after'));
  assert.equal((await node.json('/readyz', { key: null })).status, 503);
  assert.equal((await node.json('/healthz', { key: null })).status, 200);

  const answered = await within(held, 5_000, 'the held poll');
  assert.equal(answered.status, 200, 'the held poll answers at its deadline, not with an error');
  assert.deepEqual(answered.body.events, []);
  assert.ok(performance.now() - cutAt >= 1_500, 'at its deadline, not early');

  proxy.restore();
  await waitUntil(async () => (await node.json('/readyz', { key: null })).status === 200, 15_000, () => 'ready again');
  const again = await node.json('/v1/events', { body: { tenant: 'down', type: 'd.x', data: 2 } });
  assert.equal(again.status, 201, JSON.stringify(again.body));

  // Wake-ups from the other node reach this one again (re-LISTEN, or at worst reconciliation).
  const woken = node.json(`/v1/events?wait=10&ack=${again.body.cursor}`, { key: consumer.key });
  await new Promise((resolve) => setTimeout(resolve, 200));
  const fromOther = await direct.publish({ tenant: 'down', type: 'd.x', data: 3 });
  const r = await within(woken, 5_000, 'a poll on the recovered node woken by the other node');
  assert.equal(r.status, 200);
  assert.ok(r.body.events.some((e: any) => e.id === fromOther.id), JSON.stringify(r.body));
});

test('PostgreSQL away right after a delivery: the bridge records the cursor when the database is back', { skip: POSTGRES_ONLY, timeout: 60_000 }, async (t) => {
  const database = await createTestDatabase('pollgate_down_push');
  const proxy = await startTcpProxy(Number(new URL(database.url).port || 5432));
  const viaProxy = new URL(database.url);
  viaProxy.port = String(proxy.port);
  const node = await startGateway({ config: { databaseUrl: viaProxy.toString(), allowPrivateTargets: true } });
  let cutOnDelivery = false;
  const rx = await startReceiver(() => {
    // The database goes away while the delivery is answered: the cursor write behind it fails.
    if (cutOnDelivery) proxy.cut();
    return { status: 200 };
  });
  t.after(async () => {
    await node.close();
    await rx.close();
    await proxy.close();
    await database.drop();
  });
  const consumer = await node.createConsumer({ tenant: 'down-push', start: 'latest' });
  assert.equal((await node.json(`/v1/consumers/${consumer.id}/webhook`, { method: 'PUT', body: { url: rx.url } })).status, 201);
  cutOnDelivery = true;
  const event = await node.publish({ tenant: 'down-push', type: 'd.x', data: 1 });
  await rx.waitForCount(1, 10_000);
  cutOnDelivery = false;
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  proxy.restore();
  await waitUntil(
    async () => {
      const view = await node.json(`/v1/consumers/${consumer.id}`);
      return view.status === 200 && view.body.cursor === event.cursor;
    },
    15_000,
    () => 'the committed cursor reaches the delivered event',
  );
  assert.equal(rx.requests.length, 1, 'delivered once: nothing was repeated for the lost write');
});
