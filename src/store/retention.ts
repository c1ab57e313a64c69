/**
 * Retention: removes events older than the retention period from the front of the log, in
 * small batches that share the writer's group commits, so publishing and polling never wait
 * behind a large delete. Each batch records the tenants' trim marks in the same transaction.
 * The webhook attempt log is trimmed by the same age.
 */
import type { Clock } from '../clock.ts';
import type { Log } from './events.ts';
import { trimDeliveries } from './webhooks.ts';
import type { Writer } from './writer.ts';

export interface Retention {
  /** Removes one batch; answers the larger of the events and attempt records removed, so trimAll goes on while either had a full batch. */
  trimOnce(): Promise<number>;
  /** Trims until nothing is older than the retention period. */
  trimAll(): Promise<number>;
  start(): void;
  stop(): void;
}

export function createRetention(opts: {
  log: Log;
  writer: Writer;
  clock: Clock;
  retentionMs: number;
  batch?: number;
  idleMs?: number;
  onError?: (error: unknown) => void;
}): Retention {
  const { log, writer, clock, retentionMs } = opts;
  const batch = opts.batch ?? 1000;
  const idleMs = opts.idleMs ?? 30_000;
  let cancel: (() => void) | null = null;
  let running = false;

  const trimOnce = () =>
    writer
      .write(
        (db) => {
          const cutoff = clock.now() - retentionMs;
          const events = log.trimOlderThan(cutoff, batch);
          return { ...events, removed: Math.max(events.removed, trimDeliveries(db, cutoff, batch)) };
        },
        (r) => log.trimmed(r.marks),
      )
      .then((r) => r.removed);

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
