/**
 * The push bridge's read-ahead, bounded by bytes (the events' data, store.ts dataBytes): per
 * worker (READ_AHEAD_BYTES) and over all the workers of a node (one shared budget,
 * POLLGATE_PUSH_READ_AHEAD_BYTES).
 *
 * 1. A worker takes room before it reads: what is free, up to its own bound, possibly none;
 *    it reads that much from the store (which stops there) and settles the room to what it
 *    keeps (the matching events).
 * 2. A worker may always hold one event, room or not (the store returns the first event
 *    whatever its size): no worker ever waits for budget, so none can deadlock or starve.
 *    The node's read-ahead is thus at most the budget plus one event per worker.
 * 3. Bytes return to the budget as events are delivered, and all of a worker's when it stops.
 */

/** What one worker reads ahead at most: a worker delivers one event at a time, so more only saves queries. */
export const READ_AHEAD_BYTES = 1024 * 1024;

export interface ReadAheadStats {
  /** Bytes of events read ahead and not yet delivered, all workers together. */
  bytes: number;
  /** The most it has been since the bridge started. */
  peakBytes: number;
}

export class ReadAheadBudget {
  private held = 0;
  private peak = 0;

  constructor(private readonly total: number) {}

  /** Reserves up to `wanted` bytes, as much as is free (0 when none is). */
  take(wanted: number): number {
    const room = Math.max(0, Math.min(wanted, this.total - this.held));
    this.add(room);
    return room;
  }

  /** A read that took `room` keeps `kept` bytes (more than room only for a single event, 2. above). */
  settle(room: number, kept: number): void {
    this.add(kept - room);
  }

  /** Events delivered or dropped. */
  release(bytes: number): void {
    this.add(-bytes);
  }

  stats(): ReadAheadStats {
    return { bytes: this.held, peakBytes: this.peak };
  }

  private add(bytes: number): void {
    this.held += bytes;
    if (this.held > this.peak) this.peak = this.held;
  }
}
