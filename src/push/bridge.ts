/**
 * The push bridge: one worker per consumer in push mode, a shared pool of delivery slots,
 * and the global toggle.
 *
 * - A consumer is in push mode exactly when its webhook is enabled; the bridge runs a worker
 *   for each such consumer and none for any other.
 * - Changes to a consumer in push mode (webhook PUT/DELETE, seek, filter, delete) go through
 *   change(): the worker is stopped first (an attempt in flight finishes and is recorded, so
 *   its cursor write is queued before the change's), the change commits, and a worker is
 *   started again from what is now in the database. The cursor is never moved by two writers.
 * - The toggle is held in memory and in settings; pausing takes effect before the PUT is
 *   answered (workers check it right before each attempt), resuming wakes every worker.
 */
import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import type { Matchers } from '../consumers/matchers.ts';
import type { Publish } from '../publisher.ts';
import { getConsumer } from '../store/consumers.ts';
import type { Db } from '../store/db.ts';
import type { EventRecord, Log } from '../store/events.ts';
import { getSetting, getWebhook, listEnabledWebhooks, setSetting } from '../store/webhooks.ts';
import type { Writer } from '../store/writer.ts';
import type { AttemptOutcome, Deliverer } from './deliver.ts';
import { Semaphore } from './semaphore.ts';
import { Worker } from './worker.ts';

export interface BridgeDeps {
  db: Db;
  log: Log;
  writer: Writer;
  clock: Clock;
  logger: Logger;
  publish: Publish;
  matchers: Matchers;
  deliverer: Deliverer;
  concurrency: number;
  retryScheduleMs: readonly number[];
  retryMaxAgeMs: number;
  onAttempt?: (outcome: AttemptOutcome) => void;
}

export interface BridgeStats {
  enabled: boolean;
  workers: number;
  attempts: { ok: number; failed: number };
}

export interface Bridge {
  start(): void;
  /** Stops every worker, cutting attempts in flight (they will be retried after restart). */
  stop(): Promise<void>;
  /** Commit listener: new events wake the workers of their tenants. */
  notify(records: readonly EventRecord[]): void;
  /** Runs a change to a consumer with its worker stopped, then restarts it from the database. */
  change<T>(consumerId: string, fn: () => Promise<T>): Promise<T>;
  isEnabled(): boolean;
  setEnabled(enabled: boolean): Promise<void>;
  stats(): BridgeStats;
}

const SETTING = 'bridge_enabled';

export function createBridge(deps: BridgeDeps): Bridge {
  const workers = new Map<string, Worker>();
  const byTenant = new Map<string, Set<Worker>>();
  const slots = new Semaphore(deps.concurrency);
  const attempts = { ok: 0, failed: 0 };
  let enabled = getSetting(deps.db, SETTING) !== 'false';
  let running = false;
  const changing = new Map<string, Promise<unknown>>();

  function forget(worker: Worker): void {
    if (workers.get(worker.consumerId) === worker) workers.delete(worker.consumerId);
    const set = byTenant.get(worker.tenant);
    set?.delete(worker);
    if (set?.size === 0) byTenant.delete(worker.tenant);
  }

  /** Starts a worker if the consumer's webhook is enabled in the database. */
  function launch(consumerId: string): void {
    if (!running || workers.has(consumerId)) return;
    const webhook = getWebhook(deps.db, consumerId);
    const consumer = getConsumer(deps.db, consumerId);
    if (!webhook || webhook.enabled !== 1 || !consumer) return;
    const worker = new Worker(
      {
        log: deps.log,
        writer: deps.writer,
        clock: deps.clock,
        logger: deps.logger,
        publish: deps.publish,
        deliverer: deps.deliverer,
        slots,
        retryScheduleMs: deps.retryScheduleMs,
        retryMaxAgeMs: deps.retryMaxAgeMs,
        bridgeEnabled: () => enabled,
        onAttempt: (o: AttemptOutcome) => {
          if (o.ok) attempts.ok++;
          else attempts.failed++;
          deps.onAttempt?.(o);
        },
        onDisabled: forget,
      },
      {
        consumerId,
        tenant: consumer.tenant,
        cursor: consumer.cursor,
        matcher: deps.matchers.get(consumer.filter),
        webhook,
      },
    );
    workers.set(consumerId, worker);
    let set = byTenant.get(consumer.tenant);
    if (!set) byTenant.set(consumer.tenant, (set = new Set()));
    set.add(worker);
  }

  async function halt(consumerId: string, abort: boolean): Promise<void> {
    const worker = workers.get(consumerId);
    if (!worker) return;
    forget(worker);
    await worker.stop({ abort });
  }

  return {
    start() {
      running = true;
      for (const row of listEnabledWebhooks(deps.db)) launch(row.consumer_id);
    },

    async stop() {
      running = false;
      await Promise.all([...workers.keys()].map((id) => halt(id, true)));
    },

    notify(records) {
      if (byTenant.size === 0) return;
      let last = '';
      for (const r of records) {
        if (r.tenant === last) continue;
        last = r.tenant;
        const set = byTenant.get(r.tenant);
        if (set) for (const w of set) w.wake();
      }
    },

    async change(consumerId, fn) {
      // Changes to one consumer run one after another.
      const previous = changing.get(consumerId) ?? Promise.resolve();
      const run = previous.catch(() => {}).then(async () => {
        await halt(consumerId, false);
        try {
          return await fn();
        } finally {
          launch(consumerId);
        }
      });
      changing.set(consumerId, run);
      try {
        return await run;
      } finally {
        if (changing.get(consumerId) === run) changing.delete(consumerId);
      }
    },

    isEnabled: () => enabled,

    async setEnabled(value) {
      const before = enabled;
      enabled = value; // effective at once: no attempt starts after this line when pausing
      try {
        await deps.writer.write((db) => setSetting(db, SETTING, String(value)));
      } catch (error) {
        enabled = before;
        throw error;
      }
      if (value) for (const w of workers.values()) w.wake();
    },

    stats: () => ({ enabled, workers: workers.size, attempts: { ...attempts } }),
  };
}
