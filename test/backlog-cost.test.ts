/**
 * What the consumer views cost does not grow with the backlog (issue 10, finding 5: they used
 * to count it, 1.3 s of blocked server for 200 consumers at 300k events). Lag is the tenant's
 * head minus max(cursor, trim mark), from the tenants row (consumers.ts), so a view reads a
 * fixed number of rows whatever the log holds.
 *
 * Pinned without timing, on both engines: with 10,000 events in the log, the events table is
 * renamed out of reach (so any query of the log fails), and every view an operator or a
 * client asks for (GET /v1/consumer, /v1/consumers, /v1/consumers/:id and its webhook and
 * attempt log, /v1/bridge, /metrics) still answers 200 with the exact lag of a plain, a
 * filtered and a push consumer. A counting wrapper of the store shows that a view of a
 * consumer with a 10,000-event backlog makes as many store calls as one with a single event.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { Store } from '../src/store/store.ts';
import { consumerOf, gatewayFor, type TestGateway } from './support/gateway.ts';
import { TEST_ENGINE } from './support/engine.ts';

const BACKLOG = 10_000;

/** Renames the events table, from a connection of the test's own; answers the way back. */
async function logOutOfReach(g: TestGateway): Promise<() => Promise<void>> {
  if (TEST_ENGINE === 'postgres') {
    const client = new pg.Client({ connectionString: g.config.databaseUrl });
    await client.connect();
    await client.query('ALTER TABLE events RENAME TO events_out_of_reach');
    return async () => {
      await client.query('ALTER TABLE events_out_of_reach RENAME TO events');
      await client.end();
    };
  }
  const db = new Database(join(g.dataDir, 'pollgate.db'));
  db.pragma('busy_timeout = 5000');
  db.exec('ALTER TABLE events RENAME TO events_out_of_reach');
  return async () => {
    db.exec('ALTER TABLE events_out_of_reach RENAME TO events');
    db.close();
  };
}

/** Wraps the gateway's store (the routes read s.store on every call) to count calls by name. */
function countStoreCalls(g: TestGateway): { calls: Map<string, number>; restore: () => void } {
  const services = g.gateway.services;
  const real: Store = services.store;
  const calls = new Map<string, number>();
  services.store = new Proxy(real, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.set(String(name), (calls.get(String(name)) ?? 0) + 1);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { calls, restore: () => (services.store = real) };
}

const total = (calls: Map<string, number>) => [...calls.values()].reduce((a, b) => a + b, 0);

test('consumer views, /v1/bridge and /metrics answer with exact lag over 10,000 events while the log is out of reach; a view costs the same store calls at 1 event as at 10,000', async (t) => {
  const g = await gatewayFor(t);
  for (let b = 0; b < BACKLOG / 1000; b++) {
    await g.publish(Array.from({ length: 1000 }, (_, i) => ({ tenant: 'bc', type: 'order.created', data: { n: b * 1000 + i } })));
  }
  await g.publish([{ tenant: 'bc-small', type: 'order.created', data: { n: 1 } }]);

  const plain = await g.createConsumer({ tenant: 'bc', name: 'plain', start: 'earliest' });
  const filtered = await g.createConsumer({ tenant: 'bc', name: 'filtered', start: 'earliest', filter: { types: ['never.*'] } });
  const pushed = await g.createConsumer({ tenant: 'bc', name: 'pushed', start: 'earliest' });
  const small = await g.createConsumer({ tenant: 'bc-small', name: 'small', start: 'earliest' });
  const positions = await g.json<any>(`/v1/events?wait=0&limit=1000&after=${plain.cursor}`, { key: plain.key });
  const at = (n: number) => positions.body.events[n - 1].cursor as string;
  assert.equal((await g.json(`/v1/consumers/${filtered.id}/seek`, { body: { to: { cursor: at(250) } } })).status, 200);
  assert.equal((await g.json(`/v1/consumers/${pushed.id}/seek`, { body: { to: { cursor: at(700) } } })).status, 200);
  // A webhook (left disabled, so nothing delivers meanwhile) and its health in the view.
  const hook = await g.json(`/v1/consumers/${pushed.id}/webhook`, { method: 'PUT', body: { url: 'http://127.0.0.1:9/', enabled: false } });
  assert.equal(hook.status, 201, JSON.stringify(hook.body));
  assert.equal((await g.json(`/v1/events?wait=0`, { key: small.key })).status, 200); // a last poll time to show

  const expected: Record<string, number> = { plain: BACKLOG, filtered: BACKLOG - 250, pushed: BACKLOG - 700, small: 1 };
  const back = await logOutOfReach(g);
  try {
    const refused = await g.call(`/v1/events?wait=0`, { key: plain.key });
    assert.ok(refused.status >= 500, `a read of the log fails while it is out of reach (${refused.status})`);
    await refused.text();

    for (const c of [plain, filtered, pushed, small]) {
      const view = await consumerOf(g, c.id);
      assert.equal(view.lag, expected[view.name], `${view.name}: lag`);
    }
    const own = await g.json<any>('/v1/consumer', { key: plain.key });
    assert.equal(own.status, 200);
    assert.equal(own.body.lag, BACKLOG);

    const list = await g.json<any>('/v1/consumers?tenant=bc');
    assert.equal(list.status, 200);
    assert.deepEqual(
      Object.fromEntries(list.body.consumers.map((c: any) => [c.name, c.lag])),
      { plain: expected.plain, filtered: expected.filtered, pushed: expected.pushed },
    );
    const all = await g.json<any>('/v1/consumers?limit=1000');
    assert.equal(all.status, 200);
    assert.equal(all.body.consumers.length, 4);
    const webhook = await g.json<any>(`/v1/consumers/${pushed.id}/webhook`);
    assert.equal(webhook.status, 200);
    assert.equal((await g.json(`/v1/consumers/${pushed.id}/deliveries?limit=10`)).status, 200);
    assert.equal((await g.json('/v1/bridge')).status, 200);

    const metrics = await g.call('/metrics');
    assert.equal(metrics.status, 200);
    const text = await metrics.text();
    assert.match(text, new RegExp(`^pollgate_consumer_lag_max ${BACKLOG}$`, 'm'));
    assert.match(text, /^pollgate_consumers_lagging 4$/m);
    assert.match(text, new RegExp(`^pollgate_events_appended ${BACKLOG + 1}$`, 'm'));

    // The same view, one consumer 10,000 events behind and one a single event behind: the
    // same store calls, and none of them reads the log.
    const counted = countStoreCalls(g);
    try {
      await consumerOf(g, plain.id);
      const big = new Map(counted.calls);
      counted.calls.clear();
      await consumerOf(g, small.id);
      assert.deepEqual(big, counted.calls, 'the view of a 10,000-event backlog asks the store what the view of a 1-event backlog asks');
      for (const name of ['read', 'readMany', 'positionBeforeTime', 'translateLegacy']) assert.equal(big.get(name), undefined, `${name} is not called`);
      assert.ok(total(big) <= 6, `a few store calls per view (${JSON.stringify([...big])})`);
    } finally {
      counted.restore();
    }
  } finally {
    await back();
  }
  const after = await g.json<any>(`/v1/events?wait=0&limit=1`, { key: plain.key });
  assert.equal(after.status, 200, 'the log is back');
});
