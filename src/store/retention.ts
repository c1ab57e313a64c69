/**
 * Retention: removes events older than the retention period from the front of the log, in
 * small batches (store.trimOnce), so publishing and polling never wait behind a large delete.
 * Each batch records the tenants' trim marks in the same transaction; the webhook attempt log
 * is trimmed by the same age. On PostgreSQL one node at a time trims (the engine's lock).
 */
import type { Clock } from '../clock.ts';
import type { Store } from './store.ts';

export interface Retention {
  /** Removes one batch; answers the larger of the events and attempt records removed, so trimAll goes on while either had a full batch. */
  trimOnce(): Promise<number>;
  /** Trims until nothing is older than the retention period. */
  trimAll(): Promise<number>;
  start(): void;
  stop(): void;
}

export function createRetention(opts: {
  store: Store;
  clock: Clock;
  retentionMs: number;
  batch?: number;
  idleMs?: number;
  onError?: (error: unknown) => void;
  /** After a pass that removed something: how much (events or attempt records, whichever more). */
  onTrimmed?: (removed: number) => void;
}): Retention {
  const { store, clock, retentionMs } = opts;
  const batch = opts.batch ?? 1000;
  const idleMs = opts.idleMs ?? 30_000;
  let cancel: (() => void) | null = null;
  let running = false;

  const trimOnce = () => store.trimOnce(clock.now() - retentionMs, batch);

  async function trimAll(): Promise<number> {
    let total = 0;
    for (;;) {
      const removed = await trimOnce();
      total += removed;
      if (removed < batch) return total;
      // Let requests in between batches.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  function tick(): void {
    if (!running) return;
    trimAll()
      .then((removed) => {
        if (removed > 0) opts.onTrimmed?.(removed);
      })
      .catch((error) => opts.onError?.(error))
      .finally(() => {
        if (running) cancel = clock.setTimer(tick, idleMs);
      });
  }

  return {
    trimOnce,
    trimAll,
    start() {
      running = true;
      cancel = clock.setTimer(tick, 0);
    },
    stop() {
      running = false;
      cancel?.();
      cancel = null;
    },
  };
}
