/**
 * The PostgreSQL engine: any number of stateless nodes sharing one log (SPEC v1.1, "Engines
 * and nodes"). This file only assembles it; each concept lives in its own module:
 * pool.ts (connections, failures → 503), migrate.ts (schema), append.ts (how an append becomes
 * durable and visible), log.ts (reads, retention), consumers.ts, webhooks.ts (progress, fencing),
 * leases.ts (one owner per push consumer), settings.ts, signals.ts (hints between nodes).
 *
 * 1. Opening migrates the database (safe with many nodes starting at once) and starts
 *    listening for other nodes' hints before it answers.
 * 2. Every method rejects with ApiError unavailable when the database cannot be reached, and
 *    recovers by itself when it is back: nothing here holds a connection that must survive.
 * 3. close() commits what is queued, sends the last hints, then ends the connections; later
 *    calls are refused with shutting_down.
 */
import type { Lease, Store, StoreOptions } from '../store.ts';
import { createAppender } from './append.ts';
import * as consumers from './consumers.ts';
import { createDb } from './db.ts';
import { appendedTotal, headOf, headsOf, positionBeforeTime, readPage, readPageBefore, readPages, translateLegacy, trimOnce, trimmedThroughOf } from './log.ts';
import { claimLeases, revokeLease } from './leases.ts';
import { migratePostgres } from './migrate.ts';
import { createPool, shuttingDown, translate } from './pool.ts';
import { getSetting, setSetting, setSettingIfAbsent } from './settings.ts';
import { createHeldPolls } from './held-polls.ts';
import { createSignals } from './signals.ts';
import * as webhooks from './webhooks.ts';

export { migratePostgres } from './migrate.ts';
export { isUnavailable } from './pool.ts';

export interface PostgresStoreOptions extends StoreOptions {
  /** Connections of this node's pool (default 10). Held polls hold none. */
  poolSize?: number;
  /** How long an append or a claim waits for a row lock before it is a 503 (default 5000). */
  lockTimeoutMs?: number;
  /** Per statement (default 30000). */
  statementTimeoutMs?: number;
}

export async function openPostgresStore(url: string, opts: PostgresStoreOptions): Promise<Store> {
  const o = opts;
  const { nodeId, logger } = o;
  const poolSize = Math.max(2, o.poolSize ?? 10);
  const lockTimeoutMs = o.lockTimeoutMs ?? 5_000;
  const pool = createPool({
    url,
    nodeId,
    max: poolSize,
    logger,
    ...(o.statementTimeoutMs !== undefined ? { statementTimeoutMs: o.statementTimeoutMs } : {}),
  });

  try {
    const applied = await migratePostgres(pool);
    if (applied.length > 0) logger.info({ versions: applied }, 'postgres: schema migrated');
  } catch (error) {
    await pool.end().catch(() => {});
    throw translate(error);
  }

  const db = createDb(pool);
  const heldPolls = createHeldPolls(db, logger);
  const signals = createSignals({ pool, url, nodeId, logger });
  await signals.started;
  const appender = createAppender({
    db,
    nodeId,
    logger,
    signals,
    // Leave connections for reads while groups commit.
    maxInFlight: Math.max(1, Math.floor(poolSize / 2)),
    lockTimeoutMs,
    onCommit: o.onCommit,
  });

  let closed = false;
  /** Every method: refused after close, database failures as ApiError unavailable. */
  const guard = async <T>(fn: () => Promise<T>): Promise<T> => {
    if (closed) throw shuttingDown();
    try {
      return await fn();
    } catch (error) {
      throw translate(error);
    }
  };

  const store: Store = {
    engine: 'postgres',
    nodeId,
    signals,

    append: (events, now, alongside) => guard(() => appender.append(events, now, alongside)),
    read: (tenant, afterPos, limit, maxBytes) => guard(() => readPage(db, tenant, afterPos, limit, maxBytes)),
    readMany: (reads) => guard(() => readPages(db, reads)),
    readBefore: (tenant, beforePos, limit, maxBytes) => guard(() => readPageBefore(db, tenant, beforePos, limit, maxBytes)),
    head: (tenant) => guard(() => headOf(db, tenant)),
    heads: (tenants) => guard(() => headsOf(db, tenants)),
    trimmedThrough: (tenant) => guard(() => trimmedThroughOf(db, tenant)),
    positionBeforeTime: (tenant, time) => guard(() => positionBeforeTime(db, tenant, time)),
    translateLegacy: (tenant, seq) => guard(() => translateLegacy(db, tenant, seq)),
    appendedTotal: () => guard(() => appendedTotal(db)),
    trimOnce: (cutoff, batch) => guard(() => trimOnce(db, cutoff, batch, lockTimeoutMs)),

    createConsumer: (row) => guard(() => consumers.createConsumer(db, row)),
    getConsumer: (id) => guard(() => consumers.getConsumer(db, id)),
    getConsumerByKeyId: (keyId) => guard(() => consumers.getConsumerByKeyId(db, keyId)),
    listConsumers: (q) => guard(() => consumers.listConsumers(db, q)),
    updateConsumer: (id, changes, now) => guard(() => consumers.updateConsumer(db, id, changes, now)),
    ackCursor: (id, pos, now) => guard(() => consumers.ackCursor(db, id, pos, now)),
    setCursor: (id, pos, now) => guard(() => consumers.setCursor(db, id, pos, now)),
    setKey: (id, keyId, keyHash, now) => guard(() => consumers.setKey(db, id, keyId, keyHash, now)),
    deleteConsumer: (id) =>
      guard(async () => {
        const deleted = await consumers.deleteConsumer(db, id);
        // After the commit, so a node that hears it finds the consumer gone: its polls end
        // whatever their generation.
        if (deleted) signals.announcePoll({ consumerId: id, generation: Number.MAX_SAFE_INTEGER });
        return deleted;
      }),
    consumerLags: () => guard(() => consumers.consumerLags(db)),
    beginPoll: (consumerId, now) =>
      guard(async () => {
        const start = await consumers.beginPoll(db, consumerId, now);
        signals.announcePoll(start); // after the bump committed, coalesced with this turn's hints
        return start;
      }),
    endPolls: (consumerId) =>
      guard(async () => {
        const start = await consumers.endPolls(db, consumerId);
        if (start) signals.announcePoll(start);
      }),
    pollGenerations: (ids) => guard(() => consumers.pollGenerations(db, ids)),
    markHeld: (start, heldUntil) => heldPolls.mark(start, heldUntil),
    pollActivity: (consumerId) => guard(() => heldPolls.activity(consumerId)),

    getWebhook: (consumerId) => guard(() => webhooks.getWebhook(db, consumerId)),
    listEnabledWebhooks: () => guard(() => webhooks.listEnabledWebhooks(db)),
    saveWebhook: (consumerId, build) => guard(() => webhooks.saveWebhook(db, consumerId, build)),
    deleteWebhook: (consumerId) => guard(() => webhooks.deleteWebhook(db, consumerId)),
    recordProgress: (progress) => guard(() => webhooks.recordProgress(db, nodeId, progress, progress.at ?? Date.now())),
    listDeliveries: (consumerId, q) => guard(() => webhooks.listDeliveries(db, consumerId, q)),

    claimLeases: (ttlMs): Promise<Lease[]> => guard(() => claimLeases(db, nodeId, ttlMs, lockTimeoutMs)),
    releaseLease: (consumerId) => guard(() => revokeLease(db, consumerId)),

    getSetting: (key) => guard(() => getSetting(db, key)),
    setSetting: (key, value) => guard(() => setSetting(db, key, value)),
    setSettingIfAbsent: (key, value) => guard(() => setSettingIfAbsent(db, key, value)),

    ping: () =>
      guard(async () => {
        await pool.query('SELECT 1');
      }),
    async close() {
      if (closed) return;
      await appender.close(); // queued groups commit (or fail) first
      await heldPolls.flush();
      closed = true;
      await signals.close();
      await pool.end().catch((error: unknown) => logger.warn({ err: error }, 'postgres: closing the pool failed'));
    },
  };
  return store;
}
