/**
 * Keeps the hub of this node in step with the other nodes (PostgreSQL engine only).
 *
 * Hints from other nodes (signals) wake held polls within milliseconds: a moved head makes
 * the polls behind it re-read, a newer poll start supersedes the one held here. Hints can be
 * lost (a reconnect, a node that died after its commit), so the truth is reconciled from the
 * store on a timer and right after every reconnect: the heads of the tenants with polls held
 * here, and the generations of the held polls. A lost hint costs at most one interval.
 */
import type { Logger } from 'pino';
import type { Store } from '../store/store.ts';
import type { Hub } from './hub.ts';

export interface NodeLink {
  stop(): void;
}

export function linkNodes(store: Store, hub: Hub, opts: { logger: Logger; intervalMs?: number }): NodeLink {
  const signals = store.signals;
  if (!signals) return { stop() {} };
  const intervalMs = opts.intervalMs ?? 1000;
  let stopped = false;
  let cancel = () => {};
  let running = false;

  signals.onHeads((heads) => {
    for (const [tenant, head] of heads) hub.hint(tenant, head);
  });
  signals.onPoll((start) => hub.supersede(start.consumerId, start.generation));
  signals.onReconnect(() => void reconcile());

  async function reconcile(): Promise<void> {
    if (running || stopped) return;
    running = true;
    try {
      const tenants = hub.tenantsWaitedOn();
      if (tenants.length > 0) {
        for (const [tenant, head] of await store.heads(tenants)) hub.hint(tenant, head);
      }
      const tickets = hub.heldTickets();
      if (tickets.length > 0) {
        const generations = await store.pollGenerations(tickets.map((t) => t.consumerId));
        for (const { consumerId } of tickets) {
          // A consumer without a generation was deleted (its hint was lost): its poll ends too.
          hub.supersede(consumerId, generations.get(consumerId) ?? Number.MAX_SAFE_INTEGER);
        }
      }
    } catch (error) {
      opts.logger.debug({ err: error }, 'reconciling held polls failed; next interval retries');
    } finally {
      running = false;
    }
  }

  const tick = () => {
    if (stopped) return;
    void reconcile().finally(() => {
      if (!stopped) cancel = after(tick, intervalMs);
    });
  };
  cancel = after(tick, intervalMs);

  return {
    stop() {
      stopped = true;
      cancel();
    },
  };
}

/** Real time even under a test clock: reconciliation is about other processes, not our clock. */
function after(fn: () => void, ms: number): () => void {
  const timer = setTimeout(fn, ms);
  timer.unref();
  return () => clearTimeout(timer);
}
