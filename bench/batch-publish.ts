/**
 * batch-publish: arrays of 1000 events per POST (~110 KB bodies), 8 connections, 2 threads;
 * each batch spreads over the same 100 tenants as publish. Reports events/s (requests/s ×
 * 1000). The baseline parses the same 1000-element body and answers 201, so the ratio is
 * what validation, storage and the 1000 envelopes cost per event. The log is checked after
 * every run (see lib/duel.ts).
 */
import { duel } from './lib/duel.ts';
import { addBudget } from './lib/publish-budget.ts';
import type { Scenario } from './lib/scenario.ts';
import { eventBody } from './publish.ts';

export const BATCH = 1000;
const VARIANTS = 4;

export const scenario: Scenario = {
  name: 'batch-publish',
  title: 'arrays of 1000 events per POST, durable, 8 connections',
  async run(ctx) {
    const bodies = Array.from({ length: VARIANTS }, (_, v) =>
      JSON.stringify(Array.from({ length: BATCH }, (_, i) => eventBody(v * BATCH + i))),
    );
    const result = await duel(ctx, {
      name: 'batch-publish',
      label: `batch publish ${BATCH} events/req, 8 conns`,
      bodies,
      eventsPerRequest: BATCH,
      connections: 8,
      threads: 2,
      warmupS: 2,
      target: { text: '≥ 150k events/s', met: (_ratio, events) => events >= 150_000 },
      plainNode: {},
    });
    const budget = addBudget(result, ctx.log);
    return { rows: result.rows, details: { ...result.details, budget } };
  },
};
