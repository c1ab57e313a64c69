/**
 * Prometheus metrics (prom-client), one registry per gateway. Counters and histograms are fed
 * by hooks on the writer, the hub, the poll path and the bridge; gauges are read at scrape time.
 *
 * Per-consumer lag and label cardinality. Nothing is labelled per consumer except
 * pollgate_consumer_lag{consumer,tenant}, and that gauge exports only the TOP_LAGGING (50)
 * most lagging consumers with a lag above 0. The whole fleet is summed up by
 * pollgate_consumers (all), pollgate_consumers_lagging (lag > 0) and pollgate_consumer_lag_max.
 * So at 10,000 consumers a scrape has at most 50 lag series plus those three, whatever the
 * fleet size; which consumers appear changes as they catch up (a consumer that drops out of
 * the top 50 simply has no series: alert on the max and the lagging count, not on one series
 * per consumer). test/metrics.test.ts runs exactly that with 10,000 consumers.
 *
 * Lag is exact and cheap: positions are dense per tenant, so a consumer's lag (events of the
 * tenant after its committed cursor, before the filter) is the tenant's head minus its cursor,
 * one join for every consumer (store.consumerLags), whatever the backlog; capped at LAG_CAP.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Services } from './services.ts';

export const TOP_LAGGING = 50;
export const LAG_CAP = 1_000_000;

export interface Metrics {
  registry: Registry;
  published: Counter<'outcome'>;
  publishDuration: Histogram;
  pollOutcomes: Counter<'outcome'>;
  wakeLatency: Histogram;
  commitGroupSize: Histogram;
  commitDuration: Histogram;
  deliveries: Counter<'outcome'>;
  /** Gauges read the running gateway; call once the services exist. */
  bind(s: Services): void;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  let s: Services | null = null;

  const published = new Counter({
    name: 'pollgate_events_published_total',
    help: 'Events accepted by POST /v1/events; outcome "created" or "duplicate" (producer id already in the log).',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const publishDuration = new Histogram({
    name: 'pollgate_publish_duration_seconds',
    help: 'Time from a publish request to its durable commit.',
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  const pollOutcomes = new Counter({
    name: 'pollgate_poll_outcomes_total',
    help: 'Polls by how they ended: data, timeout (held until its deadline), empty (answered at once with nothing: wait=0 or the scan budget), superseded, aborted (client left), expired (410), ended (consumer changed), shutdown.',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const wakeLatency = new Histogram({
    name: 'pollgate_wake_latency_seconds',
    help: 'Time from a commit to answering the held polls it satisfied.',
    buckets: [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1],
    registers: [registry],
  });
  const commitGroupSize = new Histogram({
    name: 'pollgate_commit_group_size',
    help: 'Writes (publish requests, acks, changes) group-committed per transaction.',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096],
    registers: [registry],
  });
  const commitDuration = new Histogram({
    name: 'pollgate_commit_duration_seconds',
    help: 'Time of one group transaction including its fsync.',
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
    registers: [registry],
  });
  const deliveries = new Counter({
    name: 'pollgate_webhook_deliveries_total',
    help: 'Webhook delivery attempts by outcome: ok, or the error class (http_status, timeout, refused, reset, …).',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });

  new Gauge({
    name: 'pollgate_events_appended',
    help: 'Events ever appended to the log, all tenants (the sum of the tenants\' heads; retention does not lower it).',
    registers: [registry],
    async collect() {
      if (s) this.set(await s.store.appendedTotal());
    },
  });
  new Gauge({
    name: 'pollgate_polls_held',
    help: 'Long-polls held open right now.',
    registers: [registry],
    collect() {
      if (s) this.set(s.hub.stats().held);
    },
  });
  new Gauge({
    name: 'pollgate_bridge_enabled',
    help: '1 when the push bridge is delivering, 0 when paused.',
    registers: [registry],
    collect() {
      if (s) this.set(s.bridge.isEnabled() ? 1 : 0);
    },
  });
  new Gauge({
    name: 'pollgate_push_consumers',
    help: 'Push consumers this node delivers (holds the lease of); all of them on SQLite.',
    registers: [registry],
    collect() {
      if (s) this.set(s.bridge.stats().workers);
    },
  });
  new Gauge({
    name: 'pollgate_push_read_ahead_bytes',
    help: 'Bytes of event data the push bridge has read ahead and not yet delivered (bounded by POLLGATE_PUSH_READ_AHEAD_BYTES plus one event per push consumer).',
    registers: [registry],
    collect() {
      if (s) this.set(s.bridge.stats().readAhead.bytes);
    },
  });
  new Gauge({
    name: 'pollgate_poll_bytes_unsent',
    help: 'Bytes of event data in poll answers built and not yet handed to the OS (clients that do not read hold them; bounded by POLLGATE_PAGE_BYTES_IN_FLIGHT plus one event per connection).',
    registers: [registry],
    collect() {
      if (s) this.set(s.pages.stats().bytes);
    },
  });
  new Gauge({
    name: 'pollgate_consumers',
    help: 'Consumers, all modes.',
    registers: [registry],
    async collect() {
      if (!s) return;
      const store = s.store;
      const gauge = this;
      // The scrape starts every collect() at once: the lag gauges below wait for this one.
      lagsFilled = (async () => {
        const rows = (await store.consumerLags()).map((r) => ({ ...r, lag: Math.min(r.lag, LAG_CAP) }));
        gauge.set(rows.length);
        rows.sort((a, b) => b.lag - a.lag);
        lag.reset();
        for (const r of rows.slice(0, TOP_LAGGING)) if (r.lag > 0) lag.set({ consumer: r.id, tenant: r.tenant }, r.lag);
        lagging.set(rows.filter((r) => r.lag > 0).length);
        lagMax.set(rows[0]?.lag ?? 0);
      })();
      await lagsFilled;
    },
  });

  // Registered after pollgate_consumers, whose collect() fills them in the same scrape.
  let lagsFilled: Promise<void> = Promise.resolve();
  const afterLags = async () => {
    await lagsFilled.catch(() => {});
  };
  const lag = new Gauge({
    name: 'pollgate_consumer_lag',
    help: `Events of the tenant after the committed cursor, for the ${TOP_LAGGING} most lagging consumers only (bounded cardinality).`,
    labelNames: ['consumer', 'tenant'] as const,
    registers: [],
    collect: afterLags,
  });
  const lagging = new Gauge({ name: 'pollgate_consumers_lagging', help: 'Consumers with at least one unacked event.', registers: [], collect: afterLags });
  const lagMax = new Gauge({ name: 'pollgate_consumer_lag_max', help: `Largest consumer lag (capped at ${LAG_CAP}).`, registers: [], collect: afterLags });
  for (const g of [lag, lagging, lagMax]) registry.registerMetric(g);

  return {
    registry,
    published,
    publishDuration,
    pollOutcomes,
    wakeLatency,
    commitGroupSize,
    commitDuration,
    deliveries,
    bind(services) {
      s = services;
    },
  };
}
