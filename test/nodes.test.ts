/**
 * PostgreSQL: three gateway nodes on one database (SPEC "Engines and nodes"). Each node has its
 * own pool, LISTEN connection, hub and bridge, exactly as separate processes would; the
 * contract must hold across them: a commit on A wakes a poll held on B within milliseconds,
 * a newer poll on C supersedes the one held on A, an ack on B is what a poll on C reads from,
 * and a lost hint costs about a second, never an event.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { POSTGRES_ONLY } from './support/engine.ts';
import { createTestDatabase } from './support/postgres.ts';
import { startGateway, type TestGateway } from './support/gateway.ts';
import { startReceiver } from './support/receiver.ts';
import { waitFor, within } from './support/wait.ts';

describe('three nodes on one PostgreSQL database', { skip: POSTGRES_ONLY }, () => {
  let drop: () => Promise<void>;
  let a: TestGateway;
  let b: TestGateway;
  let c: TestGateway;

  before(async () => {
    const database = await createTestDatabase('pollgate_nodes');
    drop = database.drop;
    // Started one after another: the second and third find the schema the first applied.
    const config = { databaseUrl: database.url, allowPrivateTargets: true };
    a = await startGateway({ config });
    [b, c] = await Promise.all([startGateway({ config }), startGateway({ config })]);
  });
  after(async () => {
    await Promise.all([a, b, c].map((g) => g?.close()));
    await drop?.();
  });

  const poll = (g: TestGateway, key: string, query: string) => g.json(`/v1/events?${query}`, { key });

  test('a commit on A wakes a poll held on B within milliseconds (latency printed)', async (t) => {
    const consumer = await a.createConsumer({ tenant: 'wake' });
    const latencies: number[] = [];
    for (let i = 0; i < 20; i++) {
      const held = poll(b, consumer.key, 'wait=20');
      await new Promise((resolve) => setTimeout(resolve, 30)); // B holds the poll
      const started = performance.now();
      const published = await a.publish({ tenant: 'wake', type: 'w.x', data: i });
      const r = await within(held, 5_000, 'the poll on B');
      latencies.push(performance.now() - started);
      assert.equal(r.status, 200);
      assert.deepEqual(r.body.events.map((e: any) => e.id), [published.id]);
      assert.equal((await b.json('/v1/ack', { key: consumer.key, body: { cursor: published.cursor } })).status, 200);
    }
    latencies.sort((x, y) => x - y);
    const p50 = latencies[Math.floor(latencies.length / 2)]!;
    t.diagnostic(`publish on A → poll on B answered: p50 ${p50.toFixed(1)} ms, max ${latencies.at(-1)!.toFixed(1)} ms (20 rounds)`);
    assert.ok(p50 < 500, `woken by the hint, not by the 1 s reconciliation (p50 ${p50.toFixed(1)} ms)`);
  });

  test('a newer poll on C supersedes the one held on A', async () => {
    const consumer = await a.createConsumer({ tenant: 'super' });
    const held = poll(a, consumer.key, 'wait=20');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const newer = poll(c, consumer.key, 'wait=20');
    const old = await within(held, 3_000, 'the poll held on A');
    assert.equal(old.status, 409);
    assert.equal(old.body.error.code, 'superseded');
    const published = await b.publish({ tenant: 'super', type: 's.x', data: 1 });
    const r = await within(newer, 3_000, 'the poll on C');
    assert.deepEqual(r.body.events.map((e: any) => e.id), [published.id]);
  });

  test('a change on one node (seek) ends the poll held for the consumer on another node', async () => {
    const consumer = await a.createConsumer({ tenant: 'change' });
    const held = poll(b, consumer.key, 'wait=20');
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.equal((await c.json(`/v1/consumers/${consumer.id}/seek`, { body: { to: 'earliest' } })).status, 200);
    const ended = await within(held, 3_000, 'the poll held on B');
    assert.equal(ended.status, 409, JSON.stringify(ended.body));
    assert.equal(ended.body.error.code, 'superseded', 'on another node the change reads as superseded; the next poll sees the change');
  });

  test('a deletion, a key rotation or push mode on one node ends the poll on another with that reason', async () => {
    const deleted = await a.createConsumer({ tenant: 'why' });
    const rotated = await a.createConsumer({ tenant: 'why' });
    const pushed = await a.createConsumer({ tenant: 'why' });
    const held = [deleted, rotated, pushed].map((consumer) => poll(b, consumer.key, 'wait=20'));
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.equal((await c.json(`/v1/consumers/${deleted.id}`, { method: 'DELETE' })).status, 204);
    assert.equal((await c.json(`/v1/consumers/${rotated.id}/key`, { method: 'POST' })).status, 200);
    const hook = await c.json(`/v1/consumers/${pushed.id}/webhook`, { method: 'PUT', body: { url: 'http://127.0.0.1:9/hook' } });
    assert.ok([200, 201].includes(hook.status), JSON.stringify(hook.body));
    const [d, r, p] = await Promise.all(held.map((h) => within(h, 3_000, 'a poll held on B')));
    assert.deepEqual([d!.status, d!.body.error.code], [404, 'not_found']);
    assert.deepEqual([r!.status, r!.body.error.code], [401, 'unauthorized']);
    assert.deepEqual([p!.status, p!.body.error.code], [409, 'push_mode']);
    assert.equal((await a.json(`/v1/consumers/${pushed.id}/webhook`, { method: 'DELETE' })).status, 200);
  });

  test('a poll held on one node shows as polling on every node, and stops showing when it ends', async () => {
    const consumer = await a.createConsumer({ tenant: 'seen' });
    const polling = async (g: TestGateway) => (await g.json(`/v1/consumers/${consumer.id}`)).body.polling;
    assert.deepEqual(await Promise.all([a, b, c].map(polling)), [false, false, false]);
    const held = poll(b, consumer.key, 'wait=20');
    await waitFor(async () => (await polling(a)) && (await polling(c)), 5_000, 'A and C see the poll held on B');
    assert.equal(await polling(b), true);
    await b.publish({ tenant: 'seen', type: 's.x', data: 1 });
    assert.equal((await within(held, 3_000, 'the poll held on B')).status, 200);
    assert.equal(await polling(b), false, 'the node that held it knows at once');
    await waitFor(async () => !(await polling(a)) && !(await polling(c)), 5_000, 'A and C see it end');
  });

  test('an ack on B is what a poll on C reads after; consumer views agree on every node', async () => {
    const consumer = await a.createConsumer({ tenant: 'acks', start: 'latest' });
    const events = (await a.publish([1, 2, 3].map((n) => ({ tenant: 'acks', type: 'a.x', data: n })))).events;
    assert.equal((await b.json('/v1/ack', { key: consumer.key, body: { cursor: events[1].cursor } })).status, 200);
    const r = await poll(c, consumer.key, 'wait=0');
    assert.deepEqual(r.body.events.map((e: any) => e.data), [3]);
    for (const g of [a, b, c]) {
      const view = (await g.json(`/v1/consumers/${consumer.id}`)).body;
      assert.equal(view.cursor, events[1].cursor);
      assert.equal(view.lag, 1);
      assert.ok(view.last_poll_at, 'the last poll (on C) is seen on every node');
    }
  });

  test('the bridge toggle is cluster-wide: paused on one node, no node starts an attempt; resumed, delivery goes on', async (t) => {
    const rx = await startReceiver(() => ({ status: 200 }));
    t.after(() => rx.close());
    const consumer = await a.createConsumer({ tenant: 'toggle', start: 'earliest' });
    assert.equal((await b.json(`/v1/consumers/${consumer.id}/webhook`, { method: 'PUT', body: { url: rx.url } })).status, 201);
    await a.publish({ tenant: 'toggle', type: 't.x', data: 1 });
    await rx.waitForCount(1, 10_000);

    const paused = await c.json('/v1/bridge', { method: 'PUT', body: { enabled: false } });
    assert.deepEqual(paused.body, { enabled: false, consumers_in_push_mode: 1 });
    for (const g of [a, b]) assert.deepEqual((await g.json('/v1/bridge')).body, { enabled: false, consumers_in_push_mode: 1 }, 'every node says paused');
    const before = rx.requests.length;
    await a.publish({ tenant: 'toggle', type: 't.x', data: 2 });
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    assert.equal(rx.requests.length, before, 'no attempt on any node while paused');

    assert.equal((await a.json('/v1/bridge', { method: 'PUT', body: { enabled: true } })).status, 200);
    await rx.waitForCount(before + 1, 10_000);
    assert.equal(JSON.parse(rx.requests.at(-1)!.body).data, 2, 'delivery goes on where it stopped');
  });

  test('positions stay dense per tenant when all three nodes publish at once', async () => {
    const rounds = 30;
    const publishes = [a, b, c].flatMap((g, n) =>
      Array.from({ length: rounds }, (_, i) => g.publish([{ tenant: 'dense', type: 'd.x', data: { n, i } }, { tenant: 'dense', type: 'd.x', data: { n, i, second: true } }])),
    );
    await Promise.all(publishes);
    const reader = await c.createConsumer({ tenant: 'dense', start: 'earliest' });
    const r = await poll(a, reader.key, 'wait=0&limit=1000');
    const positions = r.body.events.map((e: any) => Number(e.cursor.slice(1)));
    assert.deepEqual(positions, Array.from({ length: rounds * 6 }, (_, i) => i + 1), 'positions 1..N, no gap, no repeat');
    const times = r.body.events.map((e: any) => Date.parse(e.time));
    for (let i = 1; i < times.length; i++) assert.ok(times[i] >= times[i - 1], 'time never decreases along positions');
  });
});
