/**
 * The long-poll hub: polls that found nothing wait here until a commit can satisfy them.
 *
 * 1. A poll reads the log first and waits only if nothing matched; reading and registering
 *    happen in one synchronous step, so every commit after the read reaches the waiter.
 * 2. Waiters are keyed by tenant. A commit looks only at the waiters of the tenants it
 *    touched and tests each waiter's filter against just the new events; a matching waiter
 *    is answered straight from those in-memory records, with no query. (Nothing can lie
 *    between the waiter's position and the new events, by step 1.)
 * 3. One held poll per consumer: begin() hands out a ticket and ends the consumer's held
 *    poll as superseded; a ticket that is no longer the newest cannot wait.
 * 4. Every waiter ends exactly once: events, deadline, client abort, superseded, ended
 *    (consumer changed) or shutdown; its bookkeeping is removed in that one place.
 */
import type { Clock } from '../clock.ts';
import type { Matcher } from '../filter/filter.ts';
import { recordMatches } from '../filter/record.ts';
import type { EventRecord } from '../store/events.ts';

export type WaitOutcome =
  /** answered: the request's answer() already sent them (see WaitRequest.answer). */
  | { kind: 'events'; events: EventRecord[]; cursor: number; more: boolean; answered?: boolean }
  /** Deadline or shutdown: nothing matched; cursor is how far the log was considered. */
  | { kind: 'timeout' | 'shutdown'; cursor: number }
  | { kind: 'superseded' }
  | { kind: 'aborted' }
  /** The consumer was changed under the poll (seek, filter, key, delete, mode). */
  | { kind: 'ended'; reason: string };

export interface WaitRequest {
  ticket: Ticket;
  tenant: string;
  matcher: Matcher;
  /** Events after this seq are new to the poll. */
  position: number;
  limit: number;
  waitMs: number;
  /**
   * Subscribes to the client going away (the poll then ends as aborted); returns the
   * unsubscribe. A plain callback rather than an AbortSignal: one less EventTarget per poll.
   */
  onGone: ((abort: () => void) => () => void) | undefined;
  /**
   * Called synchronously when events wake the poll, before the promise settles, so the answer
   * can be written inside the commit's wake-up loop instead of a promise chain later. If it
   * throws, the outcome says answered:false and the caller answers the usual way; the wake-up
   * loop goes on with the other polls.
   */
  answer?: ((outcome: WaitOutcome & { kind: 'events' }) => void) | undefined;
}

export interface Ticket {
  readonly consumerId: string;
  readonly serial: number;
}

interface Waiter {
  req: WaitRequest;
  settle: (outcome: WaitOutcome) => void;
}

export interface HubStats {
  held: number;
  outcomes: Record<WaitOutcome['kind'], number>;
}

export interface Hub {
  /** Starts a poll for the consumer: its held poll, if any, ends as superseded. */
  begin(consumerId: string): Ticket;
  /** Holds until a matching commit, the deadline, an abort, or an end. */
  wait(req: WaitRequest): Promise<WaitOutcome>;
  /** Called after each commit with the new records in seq order. */
  publish(records: readonly EventRecord[]): void;
  /** Ends the consumer's held poll, if any (the consumer changed). */
  end(consumerId: string, reason: string): void;
  /** Ends every held poll with what it has, and answers later waits at once. */
  shutdown(): void;
  isHeld(consumerId: string): boolean;
  /** When the consumer last polled (clock ms), since this process started; null if never. */
  lastPollAt(consumerId: string): number | null;
  stats(): HubStats;
}

export function createHub(opts: {
  clock: Clock;
  head: () => number;
  /** Seconds from a commit reaching the hub to a held poll being answered with it. */
  onWake?: (seconds: number) => void;
}): Hub {
  const byTenant = new Map<string, Set<Waiter>>();
  const byConsumer = new Map<string, Waiter>();
  const newest = new Map<string, number>(); // consumerId -> serial of its newest ticket
  const lastPoll = new Map<string, number>(); // consumerId -> clock ms of its latest poll (ops view)
  let serial = 0;
  let closed = false;
  const outcomes: HubStats['outcomes'] = { events: 0, timeout: 0, shutdown: 0, superseded: 0, aborted: 0, ended: 0 };

  function endWaiter(consumerId: string, outcome: WaitOutcome): void {
    byConsumer.get(consumerId)?.settle(outcome);
  }

  return {
    begin(consumerId) {
      endWaiter(consumerId, { kind: 'superseded' });
      const ticket = { consumerId, serial: ++serial };
      newest.set(consumerId, ticket.serial);
      lastPoll.set(consumerId, opts.clock.now());
      return ticket;
    },

    wait(req) {
      const { ticket } = req;
      if (closed) return Promise.resolve({ kind: 'shutdown', cursor: Math.max(req.position, opts.head()) });
      if (newest.get(ticket.consumerId) !== ticket.serial) return Promise.resolve({ kind: 'superseded' });

      return new Promise<WaitOutcome>((resolve) => {
        let cancelTimer = () => {};
        let unsubscribe = () => {};
        const waiter: Waiter = { req, settle };
        function settle(outcome: WaitOutcome): void {
          if (byConsumer.get(ticket.consumerId) !== waiter) return; // already settled
          byConsumer.delete(ticket.consumerId);
          if (newest.get(ticket.consumerId) === ticket.serial) newest.delete(ticket.consumerId);
          const set = byTenant.get(req.tenant)!;
          set.delete(waiter);
          if (set.size === 0) byTenant.delete(req.tenant);
          cancelTimer();
          unsubscribe();
          outcomes[outcome.kind] += 1;
          if (outcome.kind === 'events' && req.answer) {
            try {
              req.answer(outcome);
              outcome = { ...outcome, answered: true };
            } catch {
              // Not sent: the poll's route answers with the same events.
            }
          }
          resolve(outcome);
        }

        byConsumer.set(ticket.consumerId, waiter);
        let set = byTenant.get(req.tenant);
        if (!set) byTenant.set(req.tenant, (set = new Set()));
        set.add(waiter);
        if (req.onGone) unsubscribe = req.onGone(() => settle({ kind: 'aborted' }));
        cancelTimer = opts.clock.setTimer(
          () => settle({ kind: 'timeout', cursor: Math.max(req.position, opts.head()) }),
          req.waitMs,
        );
      });
    },

    publish(records) {
      if (byTenant.size === 0) return;
      const started = performance.now();
      // Group the new records by tenant, keeping seq order, for tenants someone waits on.
      const fresh = new Map<string, EventRecord[]>();
      for (const r of records) {
        if (!byTenant.has(r.tenant)) continue;
        const list = fresh.get(r.tenant);
        if (list) list.push(r);
        else fresh.set(r.tenant, [r]);
      }
      for (const [tenant, list] of fresh) {
        // Copy: settling removes waiters from the live set.
        for (const waiter of [...byTenant.get(tenant)!]) {
          const { matcher, position, limit } = waiter.req;
          const events: EventRecord[] = [];
          let more = false;
          for (const r of list) {
            if (r.seq <= position || !recordMatches(matcher, r)) continue;
            if (events.length === limit) {
              more = true;
              break;
            }
            events.push(r);
          }
          if (events.length > 0) {
            waiter.settle({ kind: 'events', events, cursor: events[events.length - 1]!.seq, more });
            opts.onWake?.((performance.now() - started) / 1000);
          }
        }
      }
    },

    end(consumerId, reason) {
      endWaiter(consumerId, { kind: 'ended', reason });
      newest.delete(consumerId);
      if (reason === 'deleted') lastPoll.delete(consumerId);
    },

    shutdown() {
      closed = true;
      for (const waiter of [...byConsumer.values()]) {
        waiter.settle({ kind: 'shutdown', cursor: Math.max(waiter.req.position, opts.head()) });
      }
    },

    isHeld: (consumerId) => byConsumer.has(consumerId),

    lastPollAt: (consumerId) => lastPoll.get(consumerId) ?? null,

    stats: () => ({ held: byConsumer.size, outcomes: { ...outcomes } }),
  };
}
