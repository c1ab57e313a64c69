/**
 * GET /metrics (SPEC: Operations): Prometheus text behind the admin key, and the metrics that
 * operating pollgate needs, each moved by real traffic against a real gateway on a loopback
 * port: publishing, polling (data, deadline, superseded), a held poll, webhook deliveries to a
 * real local receiver, the bridge toggle. Counts are compared as differences between scrapes.
 *
 * Per-consumer lag at scale: pollgate_consumer_lag{consumer,tenant} is the only metric labelled
 * per consumer, and it exports only the TOP_LAGGING (50) most lagging consumers (lag > 0). With
 * 10,000 consumers a scrape holds at most 50 lag series; pollgate_consumers,
 * pollgate_consumers_lagging and pollgate_consumer_lag_max describe the whole fleet. The last
 * test here builds that fleet for real and checks which 50 are exported and that an ack moves a
 * consumer out of the set.
 */
import { test, describe, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { LAG_CAP, TOP_LAGGING } from '../src/metrics.ts';
import { consumerOf, startGateway, type TestGateway } from './support/gateway.ts';
import { receiverFor } from './support/receiver.ts';
import { waitUntil } from './support/wait.ts';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Scrape {
  text: string;
  samples: Sample[];
  /** # TYPE of each metric family. */
  types: Map<string, string>;
  /** The value of the one sample with these labels (all given labels must match); undefined if none. */
  get(name: string, labels?: Record<string, string>): number | undefined;
  /** Every sample of a name. */
  all(name: string): Sample[];
}

function parse(text: string): Scrape {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      types.set(type[1]!, type[2]!);
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  const matching = (name: string, labels: Record<string, string> = {}) =>
    samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return {
    text,
    samples,
    types,
    get(name, labels) {
      const found = matching(name, labels);
      assert.ok(found.length <= 1, `${name} ${JSON.stringify(labels)} matches ${found.length} samples`);
      return found[0]?.value;
    },
    all: (name) => matching(name),
  };
}

async function scrape(g: TestGateway): Promise<Scrape> {
  const res = await g.call('/metrics');
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parse(await res.text());
}

/** A counter's value, 0 when the labelled series does not exist yet. */
const count = (m: Scrape, name: string, labels?: Record<string, string>) => m.get(name, labels) ?? 0;

async function gatewayFor(t: TestContext, config: Parameters<typeof startGateway>[0] = {}): Promise<TestGateway> {
  const g = await startGateway(config);
  t.after(() => g.close());
  return g;
}

describe('GET /metrics', () => {
  test('needs the admin key: 401 without a key or with a wrong one, 403 with a consumer key', async (t) => {
    const g = await gatewayFor(t);
    const c = await g.createConsumer({ tenant: 'm-auth' });
    const assertError = async (key: string | null, status: number, code: string) => {
      const r = await g.json('/metrics', { key });
      assert.equal(r.status, status, JSON.stringify(r.body));
      assert.equal(r.body.error.code, code);
      assert.equal(typeof r.body.error.message, 'string');
    };
    await assertError(null, 401, 'unauthorized');
    await assertError('pga_not_the_admin_key', 401, 'unauthorized');
    // A consumer key is valid but out of scope: 403, as SPEC (Auth) says for every such call.
    await assertError(c.key, 403, 'forbidden');
    const ok = await g.call('/metrics');
    assert.equal(ok.status, 200);
    assert.match(await ok.text(), /^# HELP /m);
  });

  test('publishing, polling, a held poll, webhook deliveries and the bridge toggle move their metrics', async (t) => {
    const g = await gatewayFor(t, { config: { allowPrivateTargets: true } });
    const rx = await receiverFor(t);
    const tenant = 'm-traffic';
    const m0 = await scrape(g);

    // The families exist from the start, with the right types.
    const expected: Record<string, string> = {
      pollgate_events_published_total: 'counter',
      pollgate_publish_duration_seconds: 'histogram',
      pollgate_commit_group_size: 'histogram',
      pollgate_commit_duration_seconds: 'histogram',
      pollgate_events_appended: 'gauge',
      pollgate_polls_held: 'gauge',
      pollgate_poll_outcomes_total: 'counter',
      pollgate_wake_latency_seconds: 'histogram',
      pollgate_consumer_lag: 'gauge',
      pollgate_consumers: 'gauge',
      pollgate_consumers_lagging: 'gauge',
      pollgate_consumer_lag_max: 'gauge',
      pollgate_webhook_deliveries_total: 'counter',
      pollgate_bridge_enabled: 'gauge',
      pollgate_push_consumers: 'gauge',
    };
    for (const [name, type] of Object.entries(expected)) assert.equal(m0.types.get(name), type, `# TYPE ${name}`);
    assert.equal(m0.get('pollgate_events_appended'), 0);
    assert.equal(m0.get('pollgate_polls_held'), 0);
    assert.equal(m0.get('pollgate_bridge_enabled'), 1);

    // Publishing: 1 + 2 new events and 1 duplicate, in three requests.
    await g.publish({ tenant, type: 'm.one', id: 'm-1', data: 1 });
    const batch = (await g.publish([{ tenant, type: 'm.two', data: 2 }, { tenant, type: 'm.three', data: 3 }])).events;
    await g.publish({ tenant, type: 'm.one', id: 'm-1', data: 'again' });
    const m1 = await scrape(g);
    assert.equal(count(m1, 'pollgate_events_published_total', { outcome: 'created' }), 3);
    assert.equal(count(m1, 'pollgate_events_published_total', { outcome: 'duplicate' }), 1);
    assert.equal(m1.get('pollgate_events_appended'), 3, 'three events stored (the duplicate is not)');
    assert.equal(batch[1].cursor, 't0000000000000003', "the newest event is the tenant's third")
    assert.equal(m1.get('pollgate_publish_duration_seconds_count'), 3, 'one observation per publish request');
    assert.ok(m1.get('pollgate_publish_duration_seconds_sum')! > 0);
    assert.equal(m1.get('pollgate_publish_duration_seconds_bucket', { le: '+Inf' }), 3);
    assert.ok(m1.get('pollgate_commit_group_size_count')! >= 1, 'group commits are observed');
    assert.ok(m1.get('pollgate_commit_group_size_sum')! >= m1.get('pollgate_commit_group_size_count')!, 'each group holds ≥ 1 write');
    assert.equal(m1.get('pollgate_commit_group_size_bucket', { le: '+Inf' }), m1.get('pollgate_commit_group_size_count'));

    // Lag: a consumer reading from the start lags by the 3 events until it acks.
    const reader = await g.createConsumer({ tenant, start: 'earliest' });
    const m2 = await scrape(g);
    assert.equal(m2.get('pollgate_consumer_lag', { consumer: reader.id, tenant }), 3);
    assert.equal((await consumerOf(g, reader.id)).lag, 3, 'the same lag as the consumer view');
    assert.equal(m2.get('pollgate_consumers'), 1);
    assert.equal(m2.get('pollgate_consumers_lagging'), 1);
    assert.equal(m2.get('pollgate_consumer_lag_max'), 3);

    // A poll that answers with data.
    const polled = await g.json('/v1/events?wait=0', { key: reader.key });
    assert.equal(polled.body.events.length, 3);
    const m3 = await scrape(g);
    assert.equal(count(m3, 'pollgate_poll_outcomes_total', { outcome: 'data' }) - count(m2, 'pollgate_poll_outcomes_total', { outcome: 'data' }), 1);
    assert.equal(m3.get('pollgate_consumer_lag', { consumer: reader.id, tenant }), 3, 'reading does not commit');
    assert.equal((await g.json('/v1/ack', { key: reader.key, body: { cursor: polled.body.cursor } })).status, 200);
    const m4 = await scrape(g);
    assert.equal(m4.get('pollgate_consumer_lag', { consumer: reader.id, tenant }), undefined, 'a caught-up consumer has no lag series');
    assert.equal(m4.get('pollgate_consumers_lagging'), 0);
    assert.equal(m4.get('pollgate_consumer_lag_max'), 0);

    // A held poll: the gauge is 1 while it waits, 0 once a publish answers it; the wake is timed.
    const held = g.json('/v1/events?wait=30', { key: reader.key });
    await waitUntil(async () => (await consumerOf(g, reader.id)).polling === true, 5_000, () => 'the poll to be held');
    const m5 = await scrape(g);
    assert.equal(m5.get('pollgate_polls_held'), 1);
    const [woke] = (await g.publish([{ tenant, type: 'm.wake', data: 4 }])).events;
    const answer = await held;
    assert.equal(answer.status, 200);
    assert.equal(answer.body.events[0].id, woke.id);
    const m6 = await scrape(g);
    assert.equal(m6.get('pollgate_polls_held'), 0);
    assert.equal(m6.get('pollgate_wake_latency_seconds_count')! - m5.get('pollgate_wake_latency_seconds_count')!, 1);
    assert.ok(m6.get('pollgate_wake_latency_seconds_sum')! > 0);
    assert.equal(count(m6, 'pollgate_poll_outcomes_total', { outcome: 'data' }) - count(m5, 'pollgate_poll_outcomes_total', { outcome: 'data' }), 1);
    assert.equal((await g.json('/v1/ack', { key: reader.key, body: { cursor: answer.body.cursor } })).status, 200);

    // A poll that runs out of time: outcome "timeout" (held until the deadline, nothing came).
    const empty = await g.json('/v1/events?wait=0.2', { key: reader.key });
    assert.equal(empty.status, 200);
    assert.deepEqual(empty.body.events, []);
    const m7 = await scrape(g);
    assert.equal(count(m7, 'pollgate_poll_outcomes_total', { outcome: 'timeout' }) - count(m6, 'pollgate_poll_outcomes_total', { outcome: 'timeout' }), 1);
    assert.equal(count(m7, 'pollgate_poll_outcomes_total', { outcome: 'empty' }) - count(m6, 'pollgate_poll_outcomes_total', { outcome: 'empty' }), 0);
    // wait=0 with nothing new: answered at once, outcome "empty".
    const beforeNow = await scrape(g);
    assert.deepEqual((await g.json('/v1/events?wait=0', { key: reader.key })).body.events, []);
    const afterNow = await scrape(g);
    assert.equal(count(afterNow, 'pollgate_poll_outcomes_total', { outcome: 'empty' }) - count(beforeNow, 'pollgate_poll_outcomes_total', { outcome: 'empty' }), 1);

    // A held poll superseded by a newer one: outcome "superseded".
    const first = g.json('/v1/events?wait=30', { key: reader.key });
    await waitUntil(async () => (await consumerOf(g, reader.id)).polling === true, 5_000, () => 'the first poll to be held');
    const second = await g.json('/v1/events?wait=0', { key: reader.key });
    assert.equal(second.status, 200);
    const superseded = await first;
    assert.equal(superseded.status, 409);
    assert.equal(superseded.body.error.code, 'superseded');
    const m8 = await scrape(g);
    assert.equal(count(m8, 'pollgate_poll_outcomes_total', { outcome: 'superseded' }) - count(m7, 'pollgate_poll_outcomes_total', { outcome: 'superseded' }), 1);
    assert.equal(m8.get('pollgate_polls_held'), 0);

    // Webhook deliveries by outcome: one that succeeds, then one the receiver refuses with a 500.
    const pushed = await g.createConsumer({ tenant, start: 'latest' });
    const put = await g.json(`/v1/consumers/${pushed.id}/webhook`, { method: 'PUT', body: { url: rx.url } });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    assert.equal((await scrape(g)).get('pollgate_push_consumers'), 1);
    await g.publish({ tenant, type: 'm.push', data: 5 });
    await rx.waitForCount(1);
    await waitUntil(async () => count(await scrape(g), 'pollgate_webhook_deliveries_total', { outcome: 'ok' }) === 1, 5_000, () => 'the ok delivery to be counted');
    rx.behave(() => ({ status: 500 }));
    await g.publish({ tenant, type: 'm.push', data: 6 });
    await rx.waitForCount(2);
    await waitUntil(
      async () => count(await scrape(g), 'pollgate_webhook_deliveries_total', { outcome: 'http_status' }) >= 1,
      5_000,
      () => 'the failed delivery to be counted',
    );
    const m9 = await scrape(g);
    assert.equal(count(m9, 'pollgate_webhook_deliveries_total', { outcome: 'ok' }), 1);
    assert.equal(m9.get('pollgate_consumer_lag', { consumer: pushed.id, tenant }), 1, 'the stuck event is the push consumer’s lag');
    assert.equal((await g.json(`/v1/consumers/${pushed.id}/webhook`, { method: 'DELETE' })).status, 200);
    assert.equal((await scrape(g)).get('pollgate_push_consumers'), 0);

    // The bridge toggle.
    assert.equal((await g.json('/v1/bridge', { method: 'PUT', body: { enabled: false } })).status, 200);
    assert.equal((await scrape(g)).get('pollgate_bridge_enabled'), 0);
    assert.equal((await g.json('/v1/bridge', { method: 'PUT', body: { enabled: true } })).status, 200);
    assert.equal((await scrape(g)).get('pollgate_bridge_enabled'), 1);
  });

  test('per-consumer lag at 10,000 consumers: only the 50 most lagging have a series; the totals cover all', { timeout: 180_000 }, async (t) => {
    assert.equal(TOP_LAGGING, 50);
    assert.ok(LAG_CAP >= 1_000_000);
    const g = await gatewayFor(t);
    const FLEET = 10_000;
    const HOT = 60;

    // 60 "hot" consumers on one tenant with distinct lags 100..41, and 9,940 on another lagging 10.
    const hot = (await g.publish(Array.from({ length: 100 }, (_, i) => ({ tenant: 'm-hot', type: 'm.hot', data: i })))).events;
    await g.publish(Array.from({ length: 10 }, (_, i) => ({ tenant: 'm-bulk', type: 'm.bulk', data: i })));
    const hotConsumers: Array<{ id: string; key: string; lag: number }> = [];
    for (let i = 0; i < HOT; i++) {
      const start = i === 0 ? 'earliest' : { cursor: hot[i - 1].cursor };
      const c = await g.createConsumer({ tenant: 'm-hot', start });
      hotConsumers.push({ id: c.id, key: c.key, lag: 100 - i });
    }
    let made = HOT;
    const worker = async () => {
      while (made < FLEET) {
        made += 1;
        await g.createConsumer({ tenant: 'm-bulk', start: 'earliest' });
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));

    const started = performance.now();
    const m = await scrape(g);
    const scrapeMs = performance.now() - started;
    assert.equal(m.get('pollgate_consumers'), FLEET);
    assert.equal(m.get('pollgate_consumers_lagging'), FLEET, 'every consumer lags');
    assert.equal(m.get('pollgate_consumer_lag_max'), 100);
    const series = m.all('pollgate_consumer_lag');
    assert.equal(series.length, TOP_LAGGING, `at most ${TOP_LAGGING} lag series for ${FLEET} consumers`);
    const top = hotConsumers.slice(0, TOP_LAGGING);
    assert.deepEqual(
      series.map((s) => `${s.labels.consumer}=${s.value}`).sort(),
      top.map((c) => `${c.id}=${c.lag}`).sort(),
      'exactly the 50 most lagging, with their lags',
    );
    for (const s of series) assert.equal(s.labels.tenant, 'm-hot');
    // Lag series are all there is per consumer: the whole scrape stays small.
    assert.ok(m.samples.length < 400, `${m.samples.length} samples in one scrape`);
    assert.ok(scrapeMs < 10_000, `a scrape over ${FLEET} consumers took ${Math.round(scrapeMs)} ms`);

    // The most lagging consumer catches up: it leaves the set and the 51st comes in.
    const leader = hotConsumers[0]!;
    const all = await g.json('/v1/events?wait=0&limit=1000', { key: leader.key });
    assert.equal(all.body.events.length, 100);
    assert.equal((await g.json('/v1/ack', { key: leader.key, body: { cursor: all.body.cursor } })).status, 200);
    const after = await scrape(g);
    const ids = new Set(after.all('pollgate_consumer_lag').map((s) => s.labels.consumer));
    assert.equal(ids.size, TOP_LAGGING);
    assert.ok(!ids.has(leader.id), 'a caught-up consumer has no series');
    assert.ok(ids.has(hotConsumers[TOP_LAGGING]!.id), 'the next most lagging takes its place');
    assert.equal(after.get('pollgate_consumer_lag_max'), 99);
    assert.equal(after.get('pollgate_consumers_lagging'), FLEET - 1);
  });
});
