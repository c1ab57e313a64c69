/**
 * GET /v1/ops/series (admin key): the activity history the ops page draws its charts from
 * (metrics-history.ts), as sampled by this node since it started. Counts are per sample, with
 * the seconds the sample covers, so a reader computes rates without guessing the interval.
 */
import { Hono } from 'hono';
import { createMetricsHistory, type Counts, type Lags, type MetricsHistory } from '../metrics-history.ts';
import type { Services } from '../services.ts';
import { requireAdmin, type Env } from './auth.ts';

export function opsSeriesRoutes(s: Services, isClosing: () => boolean, history: MetricsHistory = historyOf(s, isClosing)): Hono<Env> {
  const app = new Hono<Env>();
  app.get('/v1/ops/series', (c) => {
    requireAdmin(c);
    return c.json({
      node: s.store.nodeId,
      engine: s.store.engine,
      started_at: new Date(history.startedAt).toISOString(),
      interval_ms: history.intervalMs,
      capacity: history.capacity,
      samples: history.samples().map((x) => ({
        at: new Date(x.at).toISOString(),
        seconds: x.seconds,
        published: x.published,
        delivered: x.delivered,
        failed: x.failed,
        lag_total: x.lag.total,
        lag_max: x.lag.max,
        consumers_lagging: x.lag.lagging,
      })),
    });
  });
  return app;
}

/** Sampled from the running gateway: its publish counter, its bridge's attempts, the store's lags. */
function historyOf(s: Services, isClosing: () => boolean): MetricsHistory {
  // Taken once: the sampler's reads are its own, whatever later wraps s.store.
  const { store, bridge, metrics } = s;
  return createMetricsHistory({
    clock: s.clock,
    isClosing,
    async counts(): Promise<Counts> {
      const published = await metrics.published.get();
      const { ok, failed } = bridge.stats().attempts;
      return {
        published: published.values.find((v) => v.labels.outcome === 'created')?.value ?? 0,
        delivered: ok,
        failed,
      };
    },
    async lags(): Promise<Lags> {
      let total = 0;
      let max = 0;
      let lagging = 0;
      for (const { lag } of await store.consumerLags()) {
        total += lag;
        if (lag > max) max = lag;
        if (lag > 0) lagging += 1;
      }
      return { total, max, lagging };
    },
  });
}
