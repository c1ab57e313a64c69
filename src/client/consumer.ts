/**
 * The consumer client (a `pgk_…` key): single calls, and two iterators that long-poll for as
 * long as the caller keeps reading.
 *
 * The iterators guarantee, in order:
 * 1. At-least-once. A page is acked only after the loop body finished every event of it (for
 *    `events()`: asked for the event after its last one; for `batches()`: asked for the next
 *    page). The ack rides on the next poll as `ack=` (committed by the server before it reads),
 *    so steady-state consumption costs one request per page.
 * 2. A body that throws (or breaks) stops everything: nothing more is acked, the iterator
 *    ends, the error propagates out of the `for await`. The unfinished page comes again on the
 *    next run.
 * 3. An aborted signal ends the iterator cleanly (done, no error). What the body finished is
 *    committed with one POST /v1/ack on the way out — for `events()` that is every event up to
 *    the one the body last completed, never one it has not seen. A held poll is cancelled.
 * 4. No answer, 5xx, 429: retried with exponential backoff and full jitter (250 ms → 30 s by
 *    default, Retry-After respected), forever unless `maxRetries` says otherwise; each retry is
 *    reported to `onError`. 409 superseded (another poll took over this consumer, or an admin
 *    seek/filter change ended the held poll): retried after a short jittered backoff; after
 *    `maxSuperseded` in a row (default 5) it is thrown, because two readers are fighting
 *    over one consumer and one of them should stop. 410 is thrown as CursorExpiredError,
 *    never skipped. Anything else (401 key rotated, 404 deleted, 409 push_mode, 400) is thrown.
 * 5. Empty pages are not yielded; their cursor (how far the filter scanned) is acked on the
 *    next poll so a selective filter keeps moving through a long backlog.
 * 6. A server that holds polls for less than the asked `wait` (POLLGATE_MAX_WAIT) refuses it
 *    with a 400; the iterator then polls with the server's maximum (GET /v1/consumer says it).
 */
import { backoffDelay, type BackoffOptions } from './backoff.ts';
import { PollgateError, isRetryable } from './errors.ts';
import { createTransport, sleep, type ClientLogger, type TransportOptions } from './http.ts';
import type { Consumer, Cursor, Envelope, PollOptions, PollPage } from './types.ts';

export interface ClientOptions extends TransportOptions {
  logger?: ClientLogger;
}

export interface RetryInfo {
  /** Consecutive failures of this kind so far, from 1. */
  attempt: number;
  /** How long the iterator waits before trying again. */
  delayMs: number;
}

export interface IterateOptions {
  /** Seconds each poll holds (default 25). */
  wait?: number;
  /** Most events per page (server default 100). */
  limit?: number;
  /** Ends the iterator cleanly; a held poll is cancelled. */
  signal?: AbortSignal;
  /** Told about every error the iterator retries (it throws the others). */
  onError?: (error: Error, info: RetryInfo) => void;
  /**
   * true (default): commit progress with `ack`. false: only read, moving on with `after`
   * (replay, or tools that must not disturb the consumer's cursor).
   */
  ack?: boolean;
  /** With `ack: false`: read after this cursor first (default: the committed cursor). */
  after?: Cursor;
  backoff?: BackoffOptions;
  /** Consecutive retryable failures before the error is thrown (default: retry forever). */
  maxRetries?: number;
  /** Consecutive 409 superseded answers before it is thrown (default 5). */
  maxSuperseded?: number;
}

export interface PollgateClient {
  /** One GET /v1/events. */
  poll<D = unknown>(options?: PollOptions): Promise<PollPage<D>>;
  /** POST /v1/ack; answers the committed cursor (never moved backwards). */
  ack(cursor: Cursor, options?: { signal?: AbortSignal }): Promise<{ cursor: Cursor }>;
  /** GET /v1/consumer: the caller's own consumer. */
  consumer(options?: { signal?: AbortSignal }): Promise<Consumer>;
  /** Every event, in order, acked a page at a time after the loop body finished it. */
  events<D = unknown>(options?: IterateOptions): AsyncGenerator<Envelope<D>, void, undefined>;
  /** Whole non-empty pages, each acked after the loop body finished it. */
  batches<D = unknown>(options?: IterateOptions): AsyncGenerator<PollPage<D>, void, undefined>;
}

export const DEFAULT_WAIT_S = 25;
/** A held poll's time budget exceeds its `wait` by this much (server scheduling, slow links). */
const HOLD_GRACE_MS = 15_000;
const DEFAULT_MAX_SUPERSEDED = 5;
/** Backoff after superseded: brief, so a poll ended by an admin seek resumes at once. */
const SUPERSEDED_BACKOFF = { initialMs: 100, maxMs: 5_000 } as const;
/** Budget of the final ack when the iterator is stopped. */
const FLUSH_TIMEOUT_MS = 5_000;

export function createClient(options: ClientOptions): PollgateClient {
  const t = createTransport(options);
  const logger = options.logger;

  function poll<D>(o: PollOptions = {}): Promise<PollPage<D>> {
    const wait = o.wait ?? DEFAULT_WAIT_S;
    return t.request<PollPage<D>>({
      path: '/v1/events',
      query: { wait: o.wait, limit: o.limit, after: o.after, ack: o.ack },
      signal: o.signal,
      timeoutMs: Math.round(wait * 1000) + HOLD_GRACE_MS,
    });
  }

  function ack(cursor: Cursor, o: { signal?: AbortSignal; timeoutMs?: number } = {}) {
    return t.request<{ cursor: Cursor }>({
      method: 'POST',
      path: '/v1/ack',
      body: { cursor },
      signal: o.signal,
      ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
    });
  }

  /**
   * The state both iterators share: where to read from and what is finished but not yet
   * committed. `next()` answers the next page, or null when the signal aborted.
   */
  function reader(o: IterateOptions) {
    const commit = o.ack ?? true;
    if (commit && o.after !== undefined) {
      throw new TypeError('pollgate client: `after` needs `ack: false` (to move a committed cursor, seek the consumer)');
    }
    const signal = o.signal;
    const maxRetries = o.maxRetries ?? Number.POSITIVE_INFINITY;
    const maxSuperseded = o.maxSuperseded ?? DEFAULT_MAX_SUPERSEDED;
    /** Finished by the body: the next ack (commit mode) or read position (read-only mode). */
    let done: Cursor | undefined = o.after;
    /** What the server is known to have committed from us. */
    let acked: Cursor | undefined;
    /** The wait asked for: lowered once to the server's maximum if it holds polls for less. */
    let wait = o.wait;

    const unacked = () => (commit && done !== undefined && done !== acked ? done : undefined);

    async function next<D>(): Promise<PollPage<D> | null> {
      let failures = 0;
      let superseded = 0;
      for (;;) {
        if (signal?.aborted) return null;
        const ackTo = unacked();
        try {
          const page = await poll<D>({
            ...(wait !== undefined ? { wait } : {}),
            ...(o.limit !== undefined ? { limit: o.limit } : {}),
            ...(commit ? {} : done !== undefined ? { after: done } : {}),
            ...(ackTo !== undefined ? { ack: ackTo } : {}),
            ...(signal ? { signal } : {}),
          });
          if (ackTo !== undefined) acked = ackTo;
          // Stopped while the answer was on its way: leave its events for the next run.
          if (signal?.aborted) return null;
          return page;
        } catch (error) {
          if (signal?.aborted) return null;
          // These answers come after the server committed the ack (it acks before it reads or
          // holds). Not sending it again matters: after an admin seek ended the held poll, a
          // repeated ack would move the cursor back to where the seek took it from.
          const code = error instanceof PollgateError ? error.code : undefined;
          if (ackTo !== undefined && (code === 'superseded' || code === 'cursor_expired')) acked = ackTo;
          const lowered = wait !== undefined ? await serverMaxWait(error, wait) : undefined;
          if (lowered !== undefined) {
            logger?.warn?.(`pollgate: the server holds polls for at most ${lowered} s; polling with wait=${lowered} instead of ${wait}`, {});
            wait = lowered;
            continue;
          }
          let delayMs: number;
          let attempt: number;
          if (error instanceof PollgateError && error.code === 'superseded') {
            attempt = ++superseded;
            if (attempt > maxSuperseded) throw error;
            delayMs = backoffDelay(attempt, SUPERSEDED_BACKOFF);
          } else if (isRetryable(error)) {
            attempt = ++failures;
            if (attempt > maxRetries) throw error;
            const retryAfter = error instanceof PollgateError ? error.retryAfterMs : null;
            delayMs = backoffDelay(attempt, o.backoff, retryAfter);
          } else {
            throw error;
          }
          const e = error as Error;
          o.onError?.(e, { attempt, delayMs });
          logger?.warn?.(`pollgate: poll failed, retrying in ${delayMs} ms: ${e.message}`, { attempt, delayMs });
          if (!(await sleep(delayMs, signal))) return null;
        }
      }
    }

    /**
     * A 400 on `wait` from a server with a lower POLLGATE_MAX_WAIT (it refuses before it acks
     * or reads): its maximum, from GET /v1/consumer, when that is below what was asked.
     */
    async function serverMaxWait(error: unknown, asked: number): Promise<number | undefined> {
      if (!(error instanceof PollgateError) || error.status !== 400 || error.details.field !== 'wait') return undefined;
      const max = (await consumer(signal ? { signal } : {})).max_wait;
      return typeof max === 'number' && max < asked ? max : undefined;
    }

    /** The body finished everything up to cursor. */
    function finished(cursor: Cursor): void {
      done = cursor;
    }

    /** On a clean stop: commit what the body finished. Never throws (the stop is clean). */
    async function flush(): Promise<void> {
      const cursor = unacked();
      if (cursor === undefined) return;
      try {
        await ack(cursor, { timeoutMs: FLUSH_TIMEOUT_MS });
        acked = cursor;
      } catch (error) {
        // At-least-once still holds: those events come again on the next run.
        logger?.warn?.(`pollgate: could not commit ${cursor} on stop: ${(error as Error).message}`);
      }
    }

    return { next, finished, flush };
  }

  async function* batches<D>(o: IterateOptions = {}): AsyncGenerator<PollPage<D>, void, undefined> {
    const r = reader(o);
    for (;;) {
      const page = await r.next<D>();
      if (page === null) return void (await r.flush());
      if (page.events.length > 0) yield page;
      r.finished(page.cursor);
    }
  }

  async function* events<D>(o: IterateOptions = {}): AsyncGenerator<Envelope<D>, void, undefined> {
    const r = reader(o);
    for (;;) {
      const page = await r.next<D>();
      if (page === null) return void (await r.flush());
      for (const event of page.events) {
        yield event;
        // Resumed: the body finished this event.
        r.finished(event.cursor);
        if (o.signal?.aborted) return void (await r.flush());
      }
      r.finished(page.cursor);
    }
  }

  function consumer(o?: { signal?: AbortSignal }): Promise<Consumer> {
    return t.request<Consumer>({ path: '/v1/consumer', signal: o?.signal });
  }

  return {
    poll,
    ack: (cursor, o) => ack(cursor, o?.signal ? { signal: o.signal } : {}),
    consumer,
    events,
    batches,
  };
}
