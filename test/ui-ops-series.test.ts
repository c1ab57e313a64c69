/**
 * GET /v1/ops/series and the recorder behind it (src/metrics-history.ts): what the ops page's
 * charts are drawn from. The recorder runs on the injected clock, so these tests drive the
 * sampling by hand: a real gateway (both engines) with a FakeClock, real publishes, a real
 * receiver that accepts one webhook and fails another.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { gatewayFor, type TestGateway } from './support/gateway.ts';
import { FakeClock } from './support/fake-clock.ts';
import { startReceiver } from './support/receiver.ts';
import { waitUntil } from './support/wait.ts';
import { createMetricsHistory, DEFAULT_INTERVAL_MS, type Counts, type Lags } from '../src/metrics-history.ts';

async function series(g: TestGateway): Promise<any> {
  const r = await g.json('/v1/ops/series');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

/** Moves the clock one interval and waits for the sample it triggers. */
async function nextSample(g: TestGateway, clock: FakeClock): Promise<any> {
  const before = (await series(g)).samples.length;
  await clock.advance(DEFAULT_INTERVAL_MS);
  let body: any;
  await waitUntil(async () => (body = await series(g)).samples.length > before, 5_000, () => `a sample after ${before}`);
  return body.samples[body.samples.length - 1];
}

describe('GET /v1/ops/series', () => {
  test('samples publishes, delivered and failed attempts and lag per interval, this node since it started', { timeout: 60_000 }, async (t) => {
    const clock = new FakeClock();
    const g = await gatewayFor(t, { clock });
    const rx = await startReceiver();
    t.after(() => rx.close());
    const bad = await startReceiver(() => ({ status: 500 }));
    t.after(() => bad.close());

    const empty = await series(g);
    assert.equal(empty.started_at, new Date(clock.now()).toISOString(), 'the history starts with the node');
    assert.equal(empty.interval_ms, DEFAULT_INTERVAL_MS);
    assert.equal(empty.capacity, 720);
    assert.equal(empty.node, g.gateway.services.store.nodeId);
    assert.deepEqual(empty.samples, [], 'nothing is invented before the first interval ends');

    // Interval 1: 12 events published, read by nobody yet.
    await g.createConsumer({ tenant: 'acme', name: 'reader', start: 'earliest' });
    await g.publish(Array.from({ length: 12 }, (_, i) => ({ tenant: 'acme', type: 'a.b', data: { i } })));
    const first = await nextSample(g, clock);
    assert.deepEqual(first, {
      at: new Date(clock.now()).toISOString(),
      seconds: 5,
      published: 12,
      delivered: 0,
      failed: 0,
      lag_total: 12,
      lag_max: 12,
      consumers_lagging: 1,
    });

    // Interval 2: a duplicate (not counted), two webhooks: one accepts, one answers 500.
    await g.publish({ tenant: 'acme', type: 'a.b', id: 'same', data: 1 });
    await g.publish({ tenant: 'acme', type: 'a.b', id: 'same', data: 1 });
    const good = await g.createConsumer({ tenant: 'push', name: 'good', start: 'earliest' });
    const failing = await g.createConsumer({ tenant: 'push', name: 'failing', start: 'earliest' });
    await g.publish({ tenant: 'push', type: 'a.b', data: null });
    for (const [c, r] of [[good, rx], [failing, bad]] as const) {
      assert.equal((await g.json(`/v1/consumers/${c.id}/webhook`, { method: 'PUT', body: { url: r.url } })).status, 201);
    }
    await rx.waitForCount(1);
    await bad.waitForCount(1);
    await waitUntil(async () => g.gateway.services.bridge.stats().attempts.failed >= 1, 5_000, () => 'the failed attempt recorded');
    const second = await nextSample(g, clock);
    assert.equal(second.seconds, 5);
    assert.equal(second.published, 2, 'the new id and the pushed event; the repeated id is not counted');
    assert.equal(second.delivered, 1);
    assert.equal(second.failed, 1);
    assert.equal(second.lag_total, 13 + 1, 'the reader is 13 behind, the failing webhook 1');
    assert.equal(second.lag_max, 13);
    assert.equal(second.consumers_lagging, 2);

    // Oldest first.
    const all = await series(g);
    assert.deepEqual(all.samples.map((s: any) => s.at), [first.at, second.at]);
  });

  test('admin key only', async (t) => {
    const g = await gatewayFor(t);
    const c = await g.createConsumer({ tenant: 'acme' });
    assert.equal((await g.json('/v1/ops/series', { key: null })).status, 401);
    const forbidden = await g.json('/v1/ops/series', { key: c.key });
    assert.equal(forbidden.status, 403);
    assert.equal(forbidden.body.error.code, 'forbidden');
  });
});

describe('the metrics history (recorder)', () => {
  function recorder(clock: FakeClock, opts: { capacity?: number; closing?: () => boolean } = {}) {
    const counts: Counts = { published: 0, delivered: 0, failed: 0 };
    let lags: Lags | Error = { total: 0, max: 0, lagging: 0 };
    const history = createMetricsHistory({
      clock,
      intervalMs: 1000,
      ...(opts.capacity ? { capacity: opts.capacity } : {}),
      counts: async () => ({ ...counts }),
      lags: async () => {
        if (lags instanceof Error) throw lags;
        return lags;
      },
      isClosing: opts.closing ?? (() => false),
    });
    return { history, counts, setLags: (l: Lags | Error) => (lags = l) };
  }
  const settle = () => new Promise((resolve) => setImmediate(resolve));

  test('keeps the newest `capacity` samples, oldest first', async () => {
    const clock = new FakeClock();
    const { history, counts } = recorder(clock, { capacity: 3 });
    await settle();
    for (let i = 1; i <= 5; i++) {
      counts.published += i;
      await clock.advance(1000);
      await settle();
    }
    assert.deepEqual(history.samples().map((s) => s.published), [3, 4, 5]);
    const times = history.samples().map((s) => s.at);
    assert.deepEqual(times, [...times].sort((a, b) => a - b));
    history.stop();
  });

  test('a sample whose reads fail is skipped, and the next one covers the gap: no count lost, none invented', async () => {
    const clock = new FakeClock();
    const { history, counts, setLags } = recorder(clock);
    await settle();
    counts.published = 4;
    await clock.advance(1000);
    await settle();
    setLags(new Error('database away'));
    counts.published = 10;
    await clock.advance(1000);
    await settle();
    assert.equal(history.samples().length, 1, 'nothing recorded while the reads fail');
    setLags({ total: 7, max: 5, lagging: 2 });
    counts.published = 16;
    await clock.advance(1000);
    await settle();
    const [a, b] = history.samples();
    assert.deepEqual([a!.published, a!.seconds], [4, 1]);
    assert.deepEqual([b!.published, b!.seconds, b!.lag], [12, 2, { total: 7, max: 5, lagging: 2 }]);
    history.stop();
  });

  test('stops sampling when the gateway closes, or on stop()', async () => {
    const clock = new FakeClock();
    let closing = false;
    const { history } = recorder(clock, { closing: () => closing });
    await settle();
    await clock.advance(1000);
    await settle();
    assert.equal(history.samples().length, 1);
    closing = true;
    await clock.advance(1000);
    await settle();
    assert.equal(clock.pending, 0, 'no timer left behind');
    assert.equal(history.samples().length, 1);

    const other = recorder(clock).history;
    await settle();
    other.stop();
    assert.equal(clock.pending, 0, 'stop() cancels the timer');
  });
});
