/**
 * The long-poll hub: polls that found nothing wait here until a commit can satisfy them.
 *
 * 1. A poll reads the log first and waits only if nothing matched. The hub knows the newest
 *    committed head of each tenant it has heard of (local commits, hints from other nodes,
 *    reconciliation); a poll that registers behind a known head re-reads at once, so a commit
 *    that lands between the read and the registration is never missed.
 * 2. Waiters are keyed by tenant. A local commit looks only at the waiters of the tenants it
 *    touched. Positions are dense, so a waiter whose position is right before the new records
 *    is answered straight from them in memory, with no query; a waiter further behind (it
 *    missed a commit of another node) re-reads the log. A hint (a head moved on another node)
 *    makes the waiters behind it re-read. Waking is a hint; the log decides what is returned.
 *    Re-reads asked in one event-loop turn go to the store as one batch (store.readMany: one
 *    query for a hint that moved 1,000 tenants); a waiter whose page comes back full without
 *    a match is scanned on its own, with the poll's own scan budget. Every answer built here
 *    keeps to the poll's PageBound (events and bytes), as a direct read does (poll.ts).
 * 3. One held poll per consumer, on every node: each poll start has a generation (from the
 *    store, increasing per consumer); a newer generation ends the held poll as superseded,
 *    whether it started here (begin) or on another node (supersede).
 * 4. Every waiter ends exactly once: events, deadline, client abort, superseded, ended
 *    (consumer changed) or shutdown; its bookkeeping is removed in that one place.
 */
import type { Clock } from '../clock.ts';
import type { Matcher } from '../filter/filter.ts';
import { recordMatches } from '../filter/record.ts';
import { dataBytes, type EventRecord, type Page, type ReadRequest } from '../store/store.ts';

export type WaitOutcome =
  /** answered: the request's answer() already sent them (see WaitRequest.answer). */
  | { kind: 'events'; events: EventRecord[]; cursor: number; more: boolean; answered?: boolean }
  /** Deadline or shutdown: nothing matched; cursor is how far the log was considered. */
  | { kind: 'timeout' | 'shutdown'; cursor: number }
  | { kind: 'superseded' }
  | { kind: 'aborted' }
  /** The consumer was changed under the poll (seek, filter, key, delete, mode). */
  | { kind: 'ended'; reason: string };

/**
 * How large one answer may be: at most `events` events and, past the first, at most `bytes`
 * of their data (store.ts dataBytes). A larger first event still goes out alone.
 */
export interface PageBound {
  events: number;
  bytes: number;
}

/** What a re-read of the log found for a waiter (see poll.ts scan). */
export interface Scanned {
  events: EventRecord[];
  cursor: number;
  more: boolean;
}

export interface WaitRequest {
  ticket: Ticket;
  tenant: string;
  matcher: Matcher;
  /** Events after this position are new to the poll. */
  position: number;
  limit: PageBound;
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
  readonly generation: number;
}

/**
 * One held poll. A plain record with the few callbacks it needs, no promise: a held poll is
 * counted in thousands, and every closure or suspended frame per poll is memory (see hold).
 */
interface Waiter {
  req: WaitRequest;
  /** How far the log has been considered for this waiter; moves as non-matching events pass. */
  position: number;
  /** A re-read is running; `again` asks for one more after it. */
  reading: boolean;
  again: boolean;
  done: (outcome: WaitOutcome) => void;
  cancelTimer: () => void;
  unsubscribe: (() => void) | undefined;
}

export interface HubStats {
  held: number;
  outcomes: Record<WaitOutcome['kind'], number>;
}

export interface Hub {
  /** A poll with this generation starts: an older held poll of the consumer ends as superseded. */
  begin(consumerId: string, generation: number): Ticket;
  /** Holds until a matching commit, the deadline, an abort, or an end. */
  wait(req: WaitRequest): Promise<WaitOutcome>;
  /**
   * wait() without a promise: done is called exactly once, synchronously where the poll ends
   * (inside a commit's wake-up loop for events), possibly before hold returns.
   */
  hold(req: WaitRequest, done: (outcome: WaitOutcome) => void): void;
  /** Called after each local commit with the new records in position order. */
  publish(records: readonly EventRecord[]): void;
  /** A tenant's head is known to have reached `head` (another node committed). */
  hint(tenant: string, head: number): void;
  /** A poll with this generation started on another node. */
  supersede(consumerId: string, generation: number): void;
  /** Ends the consumer's held poll, if any (the consumer changed). */
  end(consumerId: string, reason: string): void;
  /** Ends every held poll with what it has, and answers later waits at once. */
  shutdown(): void;
  isHeld(consumerId: string): boolean;
  /** Tenants with polls held here, and the held polls' tickets (for reconciliation). */
  tenantsWaitedOn(): string[];
  heldTickets(): Ticket[];
  stats(): HubStats;
}

const noop = () => {};

export function createHub(opts: {
  clock: Clock;
  /** Scans the log for one waiter that may have missed events (see poll.ts scan). */
  read: (tenant: string, position: number, limit: PageBound, matcher: Matcher) => Promise<Scanned>;
  /** Pages of several tenants at once (store.readMany). */
  readMany: (reads: ReadRequest[]) => Promise<Page[]>;
  /** Seconds from a commit reaching the hub to a held poll being answered with it. */
  onWake?: (seconds: number) => void;
  /** A re-read failed (the database is down): the poll keeps waiting for its deadline. */
  onReadError?: (error: unknown) => void;
}): Hub {
  // A tenant's waiters: the one waiter itself (the common case: one consumer per tenant), or a
  // Set once there are more. A Set per held poll would cost ~300 bytes each.
  const byTenant = new Map<string, Waiter | Set<Waiter>>();
  /** The tenant's waiters, copied (settling one changes the live collection). */
  const waitersOf = (tenant: string): Waiter[] => {
    const held = byTenant.get(tenant);
    if (held === undefined) return [];
    return held instanceof Set ? [...held] : [held];
  };
  const byConsumer = new Map<string, Waiter>();
  const newest = new Map<string, number>(); // consumerId -> generation of its newest poll start
  const heads = new Map<string, number>(); // tenant -> newest committed head heard of
  let closed = false;
  const outcomes: HubStats['outcomes'] = { events: 0, timeout: 0, shutdown: 0, superseded: 0, aborted: 0, ended: 0 };

  const knownHead = (tenant: string) => heads.get(tenant) ?? 0;

  function raiseHead(tenant: string, head: number): void {
    if (head > knownHead(tenant)) heads.set(tenant, head);
  }

  const live = (waiter: Waiter) => byConsumer.get(waiter.req.ticket.consumerId) === waiter;
  const pendingReads = new Set<Waiter>();
  let readsScheduled = false;

  function reread(waiter: Waiter): void {
    if (waiter.reading) {
      waiter.again = true;
      return;
    }
    pendingReads.add(waiter);
    if (!readsScheduled) {
      readsScheduled = true;
      setImmediate(readBatch);
    }
  }

  function startReading(waiter: Waiter): void {
    waiter.reading = true;
    waiter.again = false;
  }

  function doneReading(waiter: Waiter): void {
    waiter.reading = false;
    if (waiter.again && live(waiter)) reread(waiter);
  }


  /** The re-reads asked for in one turn, as one store call. */
  function readBatch(): void {
    readsScheduled = false;
    const batch = [...pendingReads].filter(live);
    pendingReads.clear();
    if (batch.length === 0) return;
    for (const w of batch) startReading(w);
    const started = performance.now();
    const alone: Waiter[] = [];
    opts
      .readMany(
        batch.map((w) => ({ tenant: w.req.tenant, afterPos: w.position, limit: w.req.limit.events + 1, maxBytes: w.req.limit.bytes })),
      )
      .then(
        (pages) => {
          batch.forEach((w, i) => {
            // A full page without a match: this one is scanned on its own.
            if (live(w) && !takePage(w, pages[i]!, started)) alone.push(w);
          });
        },
        (error) => opts.onReadError?.(error),
      )
      .finally(() => {
        for (const w of batch) {
          w.reading = false;
          if (alone.includes(w)) scanAlone(w);
          else doneReading(w);
        }
      });
  }

  /** Answers the waiter from a page of its tenant if it can; false when the page was full without a match. */
  function takePage(waiter: Waiter, page: Page, started: number): boolean {
    // Outside the retained log (retention ran, or a restore): the next poll says so.
    if (page.trimmedThrough > waiter.position || waiter.position > page.head) return true;
    const { events, more } = fill(waiter, page.records);
    if (events.length > 0) {
      // Cut at its byte bound, the page may be followed by matches: say so rather than guess.
      settle(waiter, { kind: 'events', events, cursor: events[events.length - 1]!.pos, more: more || page.cut === true });
      opts.onWake?.((performance.now() - started) / 1000);
      return true;
    }
    if (page.records.length > waiter.req.limit.events || page.cut) return false;
    waiter.position = Math.max(waiter.position, page.head);
    if (knownHead(waiter.req.tenant) > waiter.position) waiter.again = true;
    return true;
  }

  function scanAlone(waiter: Waiter): void {
    startReading(waiter);
    const { tenant, limit, matcher } = waiter.req;
    const started = performance.now();
    opts
      .read(tenant, waiter.position, limit, matcher)
      .then(
        (found) => {
          if (byConsumer.get(waiter.req.ticket.consumerId) !== waiter) return; // settled meanwhile
          if (found.events.length > 0) {
            settle(waiter, { kind: 'events', events: found.events, cursor: found.cursor, more: found.more });
            opts.onWake?.((performance.now() - started) / 1000);
            return;
          }
          waiter.position = Math.max(waiter.position, found.cursor);
          if (found.more || knownHead(tenant) > waiter.position) waiter.again = true;
        },
        (error) => opts.onReadError?.(error),
      )
      .finally(() => doneReading(waiter));
  }

  /** The waiter's answer from records in position order: its new matches, within its PageBound. */
  function fill(waiter: Waiter, records: readonly EventRecord[]): { events: EventRecord[]; more: boolean } {
    const { matcher, limit } = waiter.req;
    const events: EventRecord[] = [];
    let bytes = 0;
    for (const r of records) {
      if (r.pos <= waiter.position || !recordMatches(matcher, r)) continue;
      if (events.length === limit.events) return { events, more: true };
      const size = dataBytes(r);
      if (events.length > 0 && bytes + size > limit.bytes) return { events, more: true };
      events.push(r);
      bytes += size;
    }
    return { events, more: false };
  }

  function supersedeOlder(consumerId: string, generation: number): void {
    const held = byConsumer.get(consumerId);
    if (held && held.req.ticket.generation < generation) settle(held, { kind: 'superseded' });
    if (generation > (newest.get(consumerId) ?? 0)) newest.set(consumerId, generation);
  }

  /** Ends a waiter with its outcome; its bookkeeping is removed here only (4. above). */
  function settle(waiter: Waiter, outcome: WaitOutcome): void {
    const { req } = waiter;
    const { consumerId, generation } = req.ticket;
    if (byConsumer.get(consumerId) !== waiter) return; // already settled
    byConsumer.delete(consumerId);
    if (newest.get(consumerId) === generation) newest.delete(consumerId);
    const held = byTenant.get(req.tenant);
    if (held === waiter) byTenant.delete(req.tenant);
    else if (held instanceof Set) {
      held.delete(waiter);
      if (held.size === 1) byTenant.set(req.tenant, held.values().next().value!);
    }
    waiter.cancelTimer();
    waiter.unsubscribe?.();
    outcomes[outcome.kind] += 1;
    if (outcome.kind === 'events' && req.answer) {
      try {
        req.answer(outcome);
        outcome = { ...outcome, answered: true };
      } catch {
        // Not sent: the poll's route answers with the same events.
      }
    }
    waiter.done(outcome);
  }

  function hold(req: WaitRequest, done: (outcome: WaitOutcome) => void): void {
    const { ticket } = req;
    if (closed) return done({ kind: 'shutdown', cursor: req.position });
    if ((newest.get(ticket.consumerId) ?? 0) > ticket.generation) return done({ kind: 'superseded' });

    const waiter: Waiter = { req, position: req.position, reading: false, again: false, done, cancelTimer: noop, unsubscribe: undefined };
    const older = byConsumer.get(ticket.consumerId);
    if (older) settle(older, { kind: 'superseded' });
    byConsumer.set(ticket.consumerId, waiter);
    const others = byTenant.get(req.tenant);
    if (others === undefined) byTenant.set(req.tenant, waiter);
    else if (others instanceof Set) others.add(waiter);
    else byTenant.set(req.tenant, new Set([others, waiter]));
    if (req.onGone) waiter.unsubscribe = req.onGone(() => settle(waiter, { kind: 'aborted' }));
    // The client may be gone already (onGone then ends the poll in a microtask, never here).
    waiter.cancelTimer = opts.clock.setTimer(() => settle(waiter, { kind: 'timeout', cursor: waiter.position }), req.waitMs);
    // A commit between the poll's read and now: read again (1. above).
    if (knownHead(req.tenant) > waiter.position) reread(waiter);
  }

  return {
    begin(consumerId, generation) {
      supersedeOlder(consumerId, generation);
      return { consumerId, generation };
    },

    wait(req) {
      return new Promise((resolve) => hold(req, resolve));
    },

    hold,

    publish(records) {
      // Group the new records by tenant, keeping position order.
      const fresh = new Map<string, EventRecord[]>();
      for (const r of records) {
        raiseHead(r.tenant, r.pos);
        if (!byTenant.has(r.tenant)) continue;
        const list = fresh.get(r.tenant);
        if (list) list.push(r);
        else fresh.set(r.tenant, [r]);
      }
      if (fresh.size === 0) return;
      const started = performance.now();
      for (const [tenant, list] of fresh) {
        // Copy: settling removes waiters from the live set.
        for (const waiter of waitersOf(tenant)) {
          if (list[0]!.pos > waiter.position + 1) {
            // Events between the waiter's position and these are not in memory.
            reread(waiter);
            continue;
          }
          const { events, more } = fill(waiter, list);
          if (events.length > 0) {
            settle(waiter, { kind: 'events', events, cursor: events[events.length - 1]!.pos, more });
            opts.onWake?.((performance.now() - started) / 1000);
          } else if (!waiter.reading) {
            // Nothing matched: the empty answer's cursor passes over these events.
            waiter.position = Math.max(waiter.position, list[list.length - 1]!.pos);
          }
        }
      }
    },

    hint(tenant, head) {
      raiseHead(tenant, head);
      for (const waiter of waitersOf(tenant)) if (head > waiter.position) reread(waiter);
    },

    supersede: supersedeOlder,

    end(consumerId, reason) {
      const held = byConsumer.get(consumerId);
      if (held) settle(held, { kind: 'ended', reason });
      newest.delete(consumerId);
    },

    shutdown() {
      closed = true;
      for (const waiter of [...byConsumer.values()]) {
        settle(waiter, { kind: 'shutdown', cursor: waiter.position });
      }
    },

    isHeld: (consumerId) => byConsumer.has(consumerId),
    tenantsWaitedOn: () => [...byTenant.keys()],
    heldTickets: () => [...byConsumer.values()].map((w) => w.req.ticket),
    stats: () => ({ held: byConsumer.size, outcomes: { ...outcomes } }),
  };
}
