/**
 * The push bridge: one worker per push consumer this node holds the lease of, a shared pool of
 * delivery slots, and the global toggle.
 *
 * - A consumer is in push mode exactly when its webhook is enabled. Each such consumer is
 *   delivered by one node at a time: the one holding its lease (store.claimLeases, renewed
 *   every third of the lease time, spread over the live nodes; SQLite's single node holds
 *   them all). A worker's writes carry the lease epoch, so a stale owner cannot move a cursor.
 * - Changes to a consumer in push mode (webhook PUT/PATCH/DELETE, seek, filter, delete) go
 *   through change(): the local worker is stopped first (an attempt in flight finishes and is
 *   recorded), the change commits, the lease is revoked (fencing out an owner on another
 *   node), and the next claim starts a worker from what is now in the database.
 * - Workers read ahead within one byte budget per node (read-ahead.ts).
 * - The toggle lives in settings. Pausing takes effect before the PUT is answered: workers
 *   check it right before each attempt (in memory on SQLite, in the database on PostgreSQL,
 *   where another node may have changed it); resuming wakes every worker.
 */
import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import type { Matchers } from '../consumers/matchers.ts';
import type { Publish } from '../publisher.ts';
import type { EventRecord, Lease, Store } from '../store/store.ts';
import type { AttemptOutcome, Deliverer } from './deliver.ts';
import { ReadAheadBudget, type ReadAheadStats } from './read-ahead.ts';
import { Semaphore } from './semaphore.ts';
import type { AlertSender } from './alert-sender.ts';
import type { AlertPolicy } from './alerts.ts';
import { Worker } from './worker.ts';

export interface BridgeDeps {
  store: Store;
  clock: Clock;
  logger: Logger;
  publish: Publish;
  matchers: Matchers;
  deliverer: Deliverer;
  concurrency: number;
  retryScheduleMs: readonly number[];
  retryMaxAgeMs: number;
  /** Global alert thresholds (a webhook may have its own). */
  alertPolicy: AlertPolicy;
  /** Sends alerts to the operator's URL, when configured. */
  alerts?: AlertSender | undefined;
  /** Events read ahead, all workers together, by the bytes of their data. */
  readAheadBytes: number;
  /** How long a claimed lease lasts without renewal (another node takes over after it). */
  leaseTtlMs?: number;
  onAttempt?: (outcome: AttemptOutcome) => void;
}

export interface BridgeStats {
  enabled: boolean;
  workers: number;
  attempts: { ok: number; failed: number };
  readAhead: ReadAheadStats;
}

export interface Bridge {
  start(): Promise<void>;
  /** Stops every worker, cutting attempts in flight (they will be retried after restart). */
  stop(): Promise<void>;
  /** Commit listener: new events wake the workers of their tenants. */
  notify(records: readonly EventRecord[]): void;
  /** Runs a change to a consumer with its worker stopped, then restarts it from the database. */
  change<T>(consumerId: string, fn: () => Promise<T>): Promise<T>;
  /** The toggle as this node last saw it (metrics). */
  isEnabled(): boolean;
  /** The toggle now, cluster-wide (read from the database on PostgreSQL). */
  enabledNow(): Promise<boolean>;
  setEnabled(enabled: boolean): Promise<void>;
  stats(): BridgeStats;
}

const SETTING = 'bridge_enabled';
const DEFAULT_LEASE_TTL_MS = 15_000;
/** A worker stops starting attempts this long before its lease could run out. */
const LEASE_MARGIN_MS = 1_000;

export async function createBridge(deps: BridgeDeps): Promise<Bridge> {
  const { store } = deps;
  const ttl = deps.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
  const workers = new Map<string, Worker>();
  const byTenant = new Map<string, Set<Worker>>();
  const slots = new Semaphore(deps.concurrency);
  const readAhead = new ReadAheadBudget(deps.readAheadBytes);
  const attempts = { ok: 0, failed: 0 };
  let enabled = (await store.getSetting(SETTING)) !== 'false';
  let running = false;
  let renewTimer: NodeJS.Timeout | null = null;
  let claiming: Promise<void> | null = null;
  const changing = new Map<string, Promise<unknown>>();
  /**
   * Consumers whose change is under way: no worker is launched for them until it has committed,
   * or a renewal meanwhile would start one on the old row (an attempt the change then waits for).
   */
  const onHold = new Set<string>();

  /** One node: the toggle in memory is the truth. Several: another node may have flipped it. */
  const bridgeEnabled =
    store.engine === 'sqlite'
      ? () => enabled
      : async () => {
          try {
            enabled = (await store.getSetting(SETTING)) !== 'false';
            return enabled;
          } catch {
            return false; // no database, no attempt: it could not be recorded either
          }
        };

  function forget(worker: Worker): void {
    if (workers.get(worker.consumerId) === worker) workers.delete(worker.consumerId);
    const set = byTenant.get(worker.tenant);
    set?.delete(worker);
    if (set?.size === 0) byTenant.delete(worker.tenant);
  }

  /** Starts a worker for a lease just claimed, from what is in the database. */
  async function launch(lease: Lease, validUntil: number): Promise<void> {
    if (onHold.has(lease.consumerId)) return;
    const [webhook, consumer] = await Promise.all([store.getWebhook(lease.consumerId), store.getConsumer(lease.consumerId)]);
    if (!running || workers.has(lease.consumerId) || onHold.has(lease.consumerId)) return;
    if (!webhook || webhook.enabled !== 1 || !consumer) return;
    const worker = new Worker(
      {
        store,
        clock: deps.clock,
        logger: deps.logger,
        publish: deps.publish,
        deliverer: deps.deliverer,
        slots,
        readAhead,
        retryScheduleMs: deps.retryScheduleMs,
        retryMaxAgeMs: deps.retryMaxAgeMs,
        alertPolicy: deps.alertPolicy,
        alerts: deps.alerts,
        bridgeEnabled,
        onAttempt: (o: AttemptOutcome) => {
          if (o.ok) attempts.ok++;
          else attempts.failed++;
          deps.onAttempt?.(o);
        },
        onDisabled: forget,
      },
      {
        consumerId: lease.consumerId,
        epoch: lease.epoch,
        leaseValidUntil: validUntil,
        tenant: consumer.tenant,
        consumerName: consumer.name,
        cursor: consumer.cursor,
        matcher: deps.matchers.get(consumer.filter),
        webhook,
      },
    );
    workers.set(lease.consumerId, worker);
    deps.logger.debug({ consumer: lease.consumerId, tenant: consumer.tenant, epoch: lease.epoch, cursor: consumer.cursor }, 'push consumer delivered from this node now');
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

  /** Renews and claims leases; starts and stops workers to match. One claim at a time. */
  function claim(): Promise<void> {
    if (claiming) return claiming.then(() => claim());
    claiming = (async () => {
      const asked = performance.now();
      try {
        const leases = await store.claimLeases(ttl);
        if (store.engine !== 'sqlite') await bridgeEnabled();
        if (!running) return;
        const validUntil = asked + ttl - LEASE_MARGIN_MS;
        const held = new Map(leases.map((l) => [l.consumerId, l]));
        for (const [id, worker] of workers) {
          const lease = held.get(id);
          if (!lease || lease.epoch !== worker.epoch) {
            deps.logger.debug({ consumer: id }, 'push consumer no longer delivered from this node (its lease moved or ended)');
            await halt(id, false);
          }
          else worker.renew(validUntil);
        }
        for (const lease of leases) {
          if (!workers.has(lease.consumerId)) await launch(lease, validUntil);
        }
        // A lost hint from another node costs at most one renewal interval.
        if (store.signals) for (const w of workers.values()) w.wake();
      } catch (err) {
        // The database is away: workers stop attempting when their leases may have run out.
        deps.logger.warn({ err }, 'could not renew push leases; retrying at the next renewal');
      }
    })().finally(() => {
      claiming = null;
    });
    return claiming;
  }

  function scheduleRenewal(): void {
    if (!running) return;
    renewTimer = setTimeout(() => {
      void claim().finally(scheduleRenewal);
    }, Math.max(100, Math.floor(ttl / 3)));
    renewTimer.unref();
  }

  function wakeTenant(tenant: string): void {
    const set = byTenant.get(tenant);
    if (set) for (const w of set) w.wake();
  }

  store.signals?.onHeads((heads) => {
    for (const tenant of heads.keys()) wakeTenant(tenant);
  });

  return {
    async start() {
      running = true;
      await claim();
      scheduleRenewal();
    },

    async stop() {
      running = false;
      if (renewTimer) clearTimeout(renewTimer);
      await claiming;
      const ids = [...workers.keys()];
      await Promise.all(ids.map((id) => halt(id, true)));
      // Let another node take over at once instead of after the lease time.
      await Promise.all(ids.map((id) => store.releaseLease(id).catch(() => {})));
    },

    notify(records) {
      if (byTenant.size === 0) return;
      let last = '';
      for (const r of records) {
        if (r.tenant === last) continue;
        last = r.tenant;
        wakeTenant(r.tenant);
      }
    },

    async change(consumerId, fn) {
      // Changes to one consumer run one after another.
      const previous = changing.get(consumerId) ?? Promise.resolve();
      const run = previous.catch(() => {}).then(async () => {
        onHold.add(consumerId);
        try {
          await halt(consumerId, false);
          return await fn();
        } finally {
          // Whoever delivered it (here or on another node) is fenced out; the next claim
          // starts from the changed rows.
          await store.releaseLease(consumerId).catch(() => {});
          onHold.delete(consumerId);
          if (running) await claim();
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
    enabledNow: async () => bridgeEnabled(),

    async setEnabled(value) {
      const before = enabled;
      enabled = value; // effective at once: no attempt starts after this line when pausing
      try {
        await store.setSetting(SETTING, String(value));
      } catch (error) {
        enabled = before;
        throw error;
      }
      if (value) for (const w of workers.values()) w.wake();
    },

    stats: () => ({ enabled, workers: workers.size, attempts: { ...attempts }, readAhead: readAhead.stats() }),
  };
}
