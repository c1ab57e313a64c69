/**
 * Poll answers built and not yet handed to the OS, over all polls of a node, bounded by bytes
 * (POLLGATE_PAGE_BYTES_IN_FLIGHT; counted as their events' data, store.ts dataBytes).
 *
 * A client that never reads its answer keeps it in this process: Node stops reading further
 * requests from that connection, so it holds one answer, but every connection of such clients
 * holds one. Bounded pages alone would still allow connections × POLLGATE_MAX_PAGE_BYTES.
 *
 * 1. A page is built within what is free, up to the page bound (room()); with nothing free
 *    it holds one event: a poll never waits for budget and the log never gets stuck.
 * 2. A direct read reserves its room while it reads, so polls reading at once cannot each
 *    count the same free bytes.
 * 3. An answer's bytes are held from the moment it is built until it is handed to the OS or
 *    its connection closes (the HTTP edge calls the release, http/incoming.ts whenSent).
 * 4. A held poll holds nothing while it waits; its room is looked up when a commit wakes it.
 * So the node holds at most the budget plus one event per connection in unsent answers.
 */

export interface PageBudgetStats {
  /** Bytes of answers built and not yet handed to the OS. */
  bytes: number;
}

export class PageBudget {
  private held = 0;

  constructor(private readonly total: number) {}

  /** How large a page may be now: up to `wanted`, as much as is free (0: one event). */
  room(wanted: number): number {
    return Math.max(0, Math.min(wanted, this.total - this.held));
  }

  /** Holds bytes; answers their release, which may be called more than once. */
  hold(bytes: number): () => void {
    this.held += bytes;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held -= bytes;
    };
  }

  stats(): PageBudgetStats {
    return { bytes: this.held };
  }
}
