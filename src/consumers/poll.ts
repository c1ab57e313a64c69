/**
 * One poll of a consumer: optional ack, then read after a position, then wait if nothing matched.
 *
 * 1. The ack (if any) is committed first, durably, like POST /v1/ack.
 * 2. Each page is read together with the tenant's head and trim mark (one snapshot): a read
 *    position behind the trim mark has lost events (410 with `earliest`); one beyond the head
 *    (only after a database restore or a lossy failover) is refused, never an empty range.
 * 3. The log is scanned after the position, applying the filter, for at most SCAN_BUDGET
 *    events, so a selective filter over a long backlog cannot make one request unbounded;
 *    a scan that stops early answers at once with the position it reached and more=true.
 *    A page is bounded by bytes too (PageBound): it stops before the event that would take
 *    it past POLLGATE_MAX_PAGE_BYTES and says more=true; an event larger than that comes
 *    alone. Each read asks the store for no more than the bound (SCAN_BYTES at least), so
 *    memory stays bounded while reading (one read and the page), not only in the answer.
 *    The bound shrinks to what the node's budget of unsent answers has free (page-budget.ts),
 *    and an answer is held in that budget until the HTTP edge says it was sent (onSent).
 * 4. Nothing matched and the scan reached the head: wait in the hub. An empty answer's cursor
 *    is how far the log was considered, so acking it skips what the filter passed over.
 */
import { ApiError } from '../errors.ts';
import type { Matcher } from '../filter/filter.ts';
import { recordMatches } from '../filter/record.ts';
import type { PageBound, Scanned, Ticket, WaitOutcome } from '../hub/hub.ts';
import { encodeCursor } from '../store/cursor.ts';
import { dataBytes, type ConsumerRow, type EventRecord, type Store } from '../store/store.ts';
import type { PageBudget } from './page-budget.ts';
import type { Services } from '../services.ts';
import { isPushMode } from '../push/webhooks.ts';

export const SCAN_BUDGET = 10_000;
/** Rows per read: the largest page (limit 1000) and one more, so a full page needs one read to know `more`. */
const SCAN_CHUNK = 1001;
/**
 * Bytes one read may bring at least, whatever room the page has left: passed-over events are
 * dropped at once, so a filtered scan with little room goes on in steps of this, not one
 * event per query.
 */
const SCAN_BYTES = 64 * 1024;

export interface PollRequest {
  consumer: ConsumerRow;
  ticket: Ticket;
  waitMs: number;
  limit: number;
  /** Read after this position instead of the committed cursor. */
  after: number | undefined;
  /** Commit this position first. */
  ack: number | undefined;
  /** Subscribes to the client going away (see hub.ts WaitRequest.onGone). */
  onGone: ((abort: () => void) => () => void) | undefined;
  /**
   * Calls release once the answer has been handed to the OS or the client is gone (see
   * page-budget.ts); undefined: the answer is gone at once.
   */
  onSent?: ((release: () => void) => void) | undefined;
}

export interface PollResult {
  events: EventRecord[];
  cursor: number;
  more: boolean;
}

/**
 * How a poll ended, for metrics: `empty` answered at once with nothing (wait=0, or the scan
 * budget ran out), `timeout` held until its deadline.
 */
export type PollOutcome = 'data' | 'empty' | 'timeout' | 'aborted' | 'shutdown';

/** Commits an ack durably; answers the committed cursor (never moved backwards). */
export async function ack(s: Services, consumer: ConsumerRow, pos: number): Promise<number> {
  await refuseInPushMode(s, consumer.id);
  const committed = await s.store.ackCursor(consumer.id, pos, s.clock.now());
  if (committed === undefined) throw new ApiError('not_found', 'the consumer no longer exists');
  return committed;
}

async function refuseInPushMode(s: Services, consumerId: string): Promise<void> {
  if (await isPushMode(s, consumerId)) {
    throw new ApiError('push_mode', 'this consumer is in push mode: the bridge delivers to its webhook; delete or disable the webhook to poll');
  }
}

export type PollAnswer = PollResult & { outcome: PollOutcome };

/** How a held poll ended: its answer, or the error to answer with. */
export type HeldEnd = { answer: PollAnswer; error?: undefined } | { error: ApiError; answer?: undefined };

/** A poll from start to answer (see startPoll): resolves with the answer, rejects with its error. */
export async function poll(s: Services, req: PollRequest): Promise<PollAnswer> {
  let ended!: (end: HeldEnd) => void;
  const held = new Promise<HeldEnd>((resolve) => (ended = resolve));
  const first = await startPoll(s, req, ended);
  if (first !== 'held') return first;
  const end = await held;
  if (end.error) throw end.error;
  return end.answer;
}

/**
 * A poll up to the point where it answers or waits: the answer when it has one at once, or
 * 'held' when it waits in the hub; onHeldEnd is then called exactly once, synchronously where
 * the wait ends (inside a commit's wake-up loop for events). Nothing of this function stays
 * suspended while the poll is held: a caller that can answer from the callback (the Node
 * route) holds no frame per poll either.
 */
export async function startPoll(s: Services, req: PollRequest, onHeldEnd: (end: HeldEnd) => void): Promise<PollAnswer | 'held'> {
  const { consumer } = req;
  await refuseInPushMode(s, consumer.id);
  let committed = consumer.cursor;
  if (req.ack !== undefined) committed = await ack(s, consumer, req.ack);
  const position = req.after ?? committed;

  const matcher = s.matchers.get(consumer.filter);
  const { pages } = s;
  const maxBytes = s.config.maxPageBytes;
  const room = pages.room(maxBytes);
  const reserved = pages.hold(room); // while reading: polls reading at once share what is free
  let found: Scanned;
  try {
    found = await scan(s.store, consumer.tenant, position, { events: req.limit, bytes: room }, matcher);
  } finally {
    reserved();
  }
  if (found.events.length > 0 || found.more || req.waitMs === 0) {
    holdUntilSent(pages, req.onSent, found.events);
    return { ...found, outcome: found.events.length > 0 ? 'data' : 'empty' };
  }
  s.hub.hold(
    {
      ticket: req.ticket,
      tenant: consumer.tenant,
      matcher,
      position: found.cursor,
      // Held: the room is looked up when a commit wakes the poll, so a wait holds no budget.
      limit: new HeldBound(req.limit, pages, maxBytes),
      waitMs: req.waitMs,
      onGone: req.onGone,
    },
    heldCallback(onHeldEnd, req.onSent, pages, position),
  );
  return 'held';
}

/** A held poll's PageBound: the byte room is what the node's budget has free when it is read. */
class HeldBound implements PageBound {
  constructor(
    readonly events: number,
    private readonly pages: PageBudget,
    private readonly maxBytes: number,
  ) {}

  get bytes(): number {
    return this.pages.room(this.maxBytes);
  }
}

/**
 * The hub's callback for a held poll. Made out here so that it keeps only what the answer
 * needs, not the request (its consumer row among it): thousands of these wait at once.
 */
function heldCallback(onHeldEnd: (end: HeldEnd) => void, onSent: PollRequest['onSent'], pages: PageBudget, position: number): (outcome: WaitOutcome) => void {
  return (outcome) => onHeldEnd(heldEnd(outcome, onSent, pages, position));
}

function heldEnd(outcome: WaitOutcome, onSent: PollRequest['onSent'], pages: PageBudget, position: number): HeldEnd {
  switch (outcome.kind) {
    case 'events':
      holdUntilSent(pages, onSent, outcome.events);
      return { answer: { events: outcome.events, cursor: outcome.cursor, more: outcome.more, outcome: 'data' } };
    case 'timeout':
    case 'shutdown':
      return { answer: { events: [], cursor: outcome.cursor, more: false, outcome: outcome.kind } };
    case 'superseded':
      return { error: new ApiError('superseded', 'a newer poll for this consumer took over; only one poll per consumer is held') };
    case 'aborted':
      // The client is gone; nothing is sent and nothing moved.
      return { answer: { events: [], cursor: position, more: false, outcome: 'aborted' } };
    case 'ended':
      return { error: endedError(outcome.reason) };
  }
}

/** An answer's bytes stay in the node's budget until the HTTP edge has sent it. */
function holdUntilSent(pages: PageBudget, onSent: PollRequest['onSent'], events: readonly EventRecord[]): void {
  if (events.length === 0) return;
  const release = pages.hold(events.reduce((sum, e) => sum + dataBytes(e), 0));
  if (onSent) onSent(release);
  else release();
}

function endedError(reason: string): ApiError {
  if (reason === 'deleted') return new ApiError('not_found', 'the consumer was deleted');
  if (reason === 'key_rotated') return new ApiError('unauthorized', 'the key was rotated; use the new key');
  if (reason === 'push_mode') return new ApiError('push_mode', 'the consumer was switched to push mode');
  return new ApiError('superseded', `the consumer was changed (${reason}); poll again`);
}

/**
 * The tenant's matching events after position: up to bound.events and bound.bytes, with
 * more=true when a further match exists, the byte bound cut the page, or the scan budget ran
 * out first. With no match and the scan at the end of the log, the cursor is the tenant's
 * head: every committed event has been considered.
 */
export async function scan(store: Store, tenant: string, position: number, bound: PageBound, matcher: Matcher): Promise<Scanned> {
  const events: EventRecord[] = [];
  let bytes = 0;
  let scanned = 0;
  let pos = position;
  const full = () => ({ events, cursor: events[events.length - 1]!.pos, more: true });
  for (;;) {
    const chunk = Math.min(SCAN_CHUNK, Math.max(bound.events + 1, 64));
    const page = await store.read(tenant, pos, chunk, Math.max(bound.bytes, SCAN_BYTES));
    checkPosition(pos, page.head, page.trimmedThrough);
    for (const r of page.records) {
      scanned += 1;
      if (!recordMatches(matcher, r)) {
        pos = r.pos;
        continue;
      }
      if (events.length === bound.events) return full();
      const size = dataBytes(r);
      // The first event goes out whatever its size: the log must never get stuck.
      if (events.length > 0 && bytes + size > bound.bytes) return full();
      events.push(r);
      bytes += size;
      pos = r.pos;
    }
    if (page.records.length < chunk && !page.cut) {
      // Reached the end of the tenant's log.
      if (events.length > 0) return { events, cursor: events[events.length - 1]!.pos, more: false };
      return { events, cursor: Math.max(pos, page.head), more: false };
    }
    if (scanned >= SCAN_BUDGET) {
      if (events.length > 0) return full();
      return { events, cursor: pos, more: true };
    }
  }
}

/** A read position must lie between the tenant's trim mark and its head. */
function checkPosition(position: number, head: number, trimmedThrough: number): void {
  if (trimmedThrough > position) {
    throw new ApiError(
      'cursor_expired',
      'retention removed events after this position; seek to `earliest` (or another position) and poll again',
      { earliest: encodeCursor(trimmedThrough) },
    );
  }
  if (position > head) {
    throw new ApiError(
      'cursor_beyond_head',
      "the read position is beyond the tenant's head (the database was restored or failed over and lost events); seek to `latest` or another position",
      { head: encodeCursor(head), cursor: encodeCursor(position) },
    );
  }
}

export function pollResultJson(r: PollResult, envelope: (e: EventRecord) => string): string {
  return `{"events":[${r.events.map(envelope).join(',')}],"cursor":"${encodeCursor(r.cursor)}","more":${r.more}}`;
}
