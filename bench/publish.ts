/**
 * publish: single-event durable publish. wrk POSTs one event per request to /v1/events with
 * the admin key, 64 connections, 2 threads; the tenant cycles over 100 tenants (t000…t099),
 * so group commits mix tenants as a real producer's would. Each answer is a durable commit
 * (WAL, synchronous=FULL, group commit). Against the bare Hono POST with the same bodies,
 * interleaved in the same run. The log is checked after every run (see lib/duel.ts).
 */
import { duel } from './lib/duel.ts';
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
    return duel(ctx, {
      name: 'publish',
      label: 'publish 1 event/req, 64 conns, 100 tenants',
      bodies,
      eventsPerRequest: 1,
      connections: 64,
      threads: 2,
      warmupS: 2,
      target: { text: '≥ 0.8× bare Hono', met: (ratio) => ratio >= 0.8 },
      nchanLines: Array.from({ length: TENANTS }, (_, i) => `/pub?id=${tenantName(i)}\t${JSON.stringify(eventBody(i))}`),
    });
  },
};
