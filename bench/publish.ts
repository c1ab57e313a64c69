/**
 * publish: single-event durable publish. wrk POSTs one event per request to /v1/events with
 * the admin key, 64 connections, 2 threads; the tenant cycles over 100 tenants (t000…t099),
 * so group commits mix tenants as a real producer's would. Each answer is a durable commit
 * (WAL, synchronous=FULL, group commit). Against a plain node:http in-memory handler doing the
 * same parse-and-answer (target ≥ 0.65×, p99 ≤ 3×) and the bare Hono POST (goal ≥ 0.8×), with
 * the same bodies, interleaved in the same run. The log is checked after every run (see lib/duel.ts).
 */
import { duel } from './lib/duel.ts';
import { addBudget } from './lib/publish-budget.ts';
import type { Scenario } from './lib/scenario.ts';

export const TENANTS = 100;
export const tenantName = (i: number) => `t${String(i % TENANTS).padStart(3, '0')}`;

/** A small, typical event: ~110 bytes of JSON. */
export function eventBody(i: number): Record<string, unknown> {
  return {
    tenant: tenantName(i),
    type: 'ticket.created',
    data: { ticketId: `tk_${(0x10000 + i * 7919).toString(16)}`, priority: i % 3 === 0 ? 'urgent' : 'normal', seats: i % 50 },
  };
}

export const scenario: Scenario = {
  name: 'publish',
  title: 'one event per POST, durable, 64 connections, 100 tenants',
  async run(ctx) {
    const bodies = Array.from({ length: TENANTS }, (_, i) => JSON.stringify(eventBody(i)));
    const result = await duel(ctx, {
      name: 'publish',
      label: 'publish 1 event/req, 64 conns, 100 tenants',
      bodies,
      eventsPerRequest: 1,
      connections: 64,
      threads: 2,
      warmupS: 2,
      target: { text: 'goal ≥ 0.8× bare Hono', met: (ratio) => ratio >= 0.8 },
      plainNode: {
        target: { text: '≥ 0.65× plain node:http', met: (ratio) => ratio >= 0.65 },
        p99Target: { text: '≤ 3× plain node:http', met: (ratio) => ratio <= 3 },
      },
      nchanLines: Array.from({ length: TENANTS }, (_, i) => `/pub?id=${tenantName(i)}\t${JSON.stringify(eventBody(i))}`),
    });
    const budget = addBudget(result, ctx.log);
    return { rows: result.rows, details: { ...result.details, budget } };
  },
};
