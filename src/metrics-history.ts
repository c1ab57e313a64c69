/**
 * A short memory of activity for the ops page's charts: every intervalMs a sample of what
 * happened since the previous one (events published, webhook attempts that succeeded and that
 * failed) and where consumers stand (lag, summed and largest), kept in a ring of `capacity`
 * samples (an hour at the default 5 s).
 *
 * 1. It is this node's view since it started: counts are this process's own (on PostgreSQL
 *    each node publishes and delivers its share), lag is read from the store, so it covers
 *    every consumer. Nothing is persisted; a restart starts an empty history.
 * 2. One sample at a time: the next is scheduled when one ends, so a slow lag query delays the
 *    sampling and never piles it up. Each sample carries the seconds it covers (measured by the
 *    clock), so a rate is count / seconds whatever the delay.
 * 3. A sample whose reads fail (the database away for a moment) is skipped, not invented; the
 *    next one covers the whole gap, so no count is lost.
 * 4. The timer never keeps the process alive, and sampling stops by itself once the gateway
 *    is closing (or stop() is called).
 */
import { systemClock, type Clock } from './clock.ts';

export interface Counts {
  /** Events appended (duplicates of a producer id not counted), since the process started. */
  published: number;
  /** Webhook attempts answered 2xx. */
  delivered: number;
  /** Webhook attempts that failed (non-2xx, timeout, refused, …). */
  failed: number;
}

export interface Lags {
  /** Summed over every consumer: events of their tenants after their cursors. */
  total: number;
  max: number;
  /** Consumers with at least one event to read. */
  lagging: number;
}

export interface Sample {
  /** Unix ms at the end of the interval. */
  at: number;
  /** The interval this sample covers. */
  seconds: number;
  published: number;
  delivered: number;
  failed: number;
  lag: Lags;
}

export interface MetricsHistory {
  readonly startedAt: number;
  readonly intervalMs: number;
  readonly capacity: number;
  /** Oldest first. */
  samples(): Sample[];
  stop(): void;
}

export const DEFAULT_INTERVAL_MS = 5_000;
export const DEFAULT_CAPACITY = 720;

export interface MetricsHistoryDeps {
  clock: Clock;
  /** Cumulative counts since the process started. */
  counts(): Promise<Counts>;
  lags(): Promise<Lags>;
  /** Checked before each sample: true ends the sampling. */
  isClosing(): boolean;
  intervalMs?: number;
  capacity?: number;
}

export function createMetricsHistory(deps: MetricsHistoryDeps): MetricsHistory {
  const intervalMs = deps.intervalMs ?? DEFAULT_INTERVAL_MS;
  const capacity = deps.capacity ?? DEFAULT_CAPACITY;
  const setTimer = backgroundTimer(deps.clock);
  const startedAt = deps.clock.now();
  const ring: Sample[] = [];
  let next = 0; // where the next sample goes once the ring is full
  let previous: { at: number; counts: Counts } | null = null;
  let cancel: (() => void) | null = null;
  let stopped = false;

  async function sample(): Promise<void> {
    cancel = null;
    if (stopped || deps.isClosing()) return;
    try {
      const at = deps.clock.now();
      const [counts, lag] = await Promise.all([deps.counts(), deps.lags()]);
      if (previous && at > previous.at) {
        record({
          at,
          seconds: (at - previous.at) / 1000,
          published: counts.published - previous.counts.published,
          delivered: counts.delivered - previous.counts.delivered,
          failed: counts.failed - previous.counts.failed,
          lag,
        });
      }
      if (!previous || at > previous.at) previous = { at, counts };
    } catch {
      // See 3.: nothing recorded; the next sample spans the gap.
    }
    if (!stopped) cancel = setTimer(() => void sample(), intervalMs);
  }

  function record(s: Sample): void {
    if (ring.length < capacity) ring.push(s);
    else {
      ring[next] = s;
      next = (next + 1) % capacity;
    }
  }

  void sample(); // the baseline the first interval is measured from

  return {
    startedAt,
    intervalMs,
    capacity,
    samples: () => (ring.length < capacity ? ring.slice() : [...ring.slice(next), ...ring.slice(0, next)]),
    stop() {
      stopped = true;
      cancel?.();
    },
  };
}

/** The clock's timers, except that the real clock's never hold the process open (see 4.). */
function backgroundTimer(clock: Clock): Clock['setTimer'] {
  if (clock !== systemClock) return (fn, ms) => clock.setTimer(fn, ms);
  return (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return () => clearTimeout(t);
  };
}
