/**
 * The embedded engine: one process on one SQLite file (the default).
 *
 * Every change goes through the single group-committing writer (writer.ts); reads run on the
 * same connection between transactions, so they always see committed state. One process owns
 * the data directory (lock.ts), which is what makes the in-memory caches (heads, trim marks,
 * poll generations) coherent, and why this engine has no signals and holds every lease.
 */
import { mkdirSync } from 'node:fs';
import { ApiError } from '../../errors.ts';
import type { Lease, Progress, Store, StoreOptions, WebhookRow } from '../store.ts';
import { LeaseLost } from '../store.ts';
import { startCheckpointer } from './checkpointer.ts';
import * as consumers from './consumers.ts';
import { databaseFile, openDatabase } from './db.ts';
import { lockDataDir } from './lock.ts';
import { createSqliteLog } from './log.ts';
import * as webhooks from './webhooks.ts';
import { createWriter } from './writer.ts';
import type { Db } from './db.ts';

const nameTaken = (tenant: string, name: string) =>
  new ApiError('conflict', `tenant "${tenant}" already has a consumer named "${name}"`, { field: 'name' });

export async function openSqliteStore(dataDir: string, opts: StoreOptions): Promise<Store> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const lock = lockDataDir(dataDir);
  let db: Db;
  try {
    db = openDatabase(dataDir);
  } catch (error) {
    lock.release();
    throw error;
  }
  const log = createSqliteLog(db);
  const writer = createWriter(db, {
    onCommit: opts.onCommit,
    onJobStart: () => log.beginJob(),
    onJobRolledBack: () => log.undoJob(),
    beforeCommit: () => log.writeHeads(),
    onGroupEnd: (committed) => log.groupEnded(committed),
  });
  const checkpointer = startCheckpointer(databaseFile(dataDir), {
    onError: (message) => opts.logger.warn({ error: message }, 'checkpoint failed; the WAL grows until one succeeds'),
    onGone(reason) {
      // Without the thread nothing would checkpoint and the WAL would grow without bound.
      if (!db.open) return;
      db.pragma('wal_autocheckpoint = 1000');
      opts.logger.error({ reason }, 'checkpoint thread gone: SQLite checkpoints inside commits again');
    },
  });
  /** One process: poll generations and last-poll times live here, not on disk. */
  const generations = new Map<string, number>();
  const lastPolls = new Map<string, number>();
  const held = new Map<string, { generation: number; until: number }>();
  const appended = db.prepare('SELECT coalesce(sum(head_pos), 0) FROM tenants').pluck();
  const alive = db.prepare('SELECT 1 FROM sqlite_master LIMIT 1').pluck();
  const lags = db.prepare(
    `SELECT c.id, c.tenant, max(0, coalesce(t.head_pos, 0) - max(c.cursor, coalesce(t.trimmed_pos, 0))) AS lag
     FROM consumers c LEFT JOIN tenants t ON t.tenant = c.tenant`,
  );

  const fenced = (p: Progress) => {
    const at = p.at ?? Date.now();
    if (p.cursor !== undefined) consumers.advanceCursor(db, p.consumerId, p.cursor, at);
    if (p.state) webhooks.updateWebhookState(db, p.consumerId, p.state, at);
    for (const d of p.deliveries ?? []) webhooks.insertDelivery(db, d);
  };

  const store: Store = {
    engine: 'sqlite',
    nodeId: opts.nodeId,
    signals: null,

    append(events, now, alongside) {
      return writer.write(
        (dbc) => {
          const appended = log.append(events, now);
          if (alongside?.progress) {
            if (!webhooks.getWebhook(dbc, alongside.progress.consumerId)) throw new LeaseLost('the webhook is gone');
            fenced(alongside.progress);
          }
          return appended;
        },
        undefined,
        // One event is one INSERT (the tenant's head is written once per group): no savepoint.
        { atomic: events.length === 1 && !alongside },
      );
    },

    read: async (tenant, afterPos, limit, maxBytes) => log.read(tenant, afterPos, limit, maxBytes),
    readMany: async (reads) => reads.map((r) => log.read(r.tenant, r.afterPos, r.limit, r.maxBytes)),
    readBefore: async (tenant, beforePos, limit, maxBytes) => log.readBefore(tenant, beforePos, limit, maxBytes),
    head: async (tenant) => log.head(tenant),
    heads: async (tenants) => new Map(tenants.map((t) => [t, log.head(t)])),
    trimmedThrough: async (tenant) => log.trimmedThrough(tenant),
    positionBeforeTime: async (tenant, time) => log.positionBeforeTime(tenant, time),
    appendedTotal: async () => appended.get() as number,
    translateLegacy: async (tenant, seq) => log.translateLegacy(tenant, seq),

    trimOnce(cutoff, batch) {
      return writer
        .write(
          (dbc) => {
            const events = log.trimOlderThan(cutoff, batch);
            return { ...events, removed: Math.max(events.removed, webhooks.trimDeliveries(dbc, cutoff, batch)) };
          },
          (r) => log.trimmed(r.marks),
        )
        .then((r) => r.removed);
    },

    createConsumer(row) {
      return writer.write((dbc) => {
        if (row.name !== null && consumers.getConsumerByName(dbc, row.tenant, row.name)) throw nameTaken(row.tenant, row.name);
        consumers.insertConsumer(dbc, row);
      });
    },
    getConsumer: async (id) => withPoll(consumers.getConsumer(db, id)),
    getConsumerByKeyId: async (keyId) => withPoll(consumers.getConsumerByKeyId(db, keyId)),
    listConsumers: async (o) => consumers.listConsumers(db, o).map((r) => withPoll(r)!),

    updateConsumer(id, changes, now) {
      return writer.write((dbc) => {
        const current = consumers.getConsumer(dbc, id);
        if (!current) return undefined;
        if (changes.name && changes.name !== current.name && consumers.getConsumerByName(dbc, current.tenant, changes.name)) {
          throw nameTaken(current.tenant, changes.name);
        }
        consumers.updateConsumer(dbc, id, changes, now);
        return withPoll(consumers.getConsumer(dbc, id));
      });
    },

    ackCursor(id, pos, now) {
      return writer.write((dbc) => {
        consumers.advanceCursor(dbc, id, pos, now);
        return consumers.getConsumer(dbc, id)?.cursor;
      });
    },

    setCursor(id, pos, now) {
      return writer.write((dbc) =>
        consumers.setCursor(dbc, id, pos, now) ? withPoll(consumers.getConsumer(dbc, id)) : undefined,
      );
    },

    setKey(id, keyId, keyHash, now) {
      return writer.write((dbc) =>
        consumers.setKey(dbc, id, keyId, keyHash, now) ? withPoll(consumers.getConsumer(dbc, id)) : undefined,
      );
    },

    async deleteConsumer(id) {
      const deleted = await writer.write((dbc) => {
        if (!consumers.deleteConsumer(dbc, id)) return false;
        webhooks.deleteDeliveries(dbc, id);
        return true;
      });
      if (deleted) {
        generations.delete(id);
        lastPolls.delete(id);
        held.delete(id);
      }
      return deleted;
    },

    consumerLags: async () => lags.all() as Array<{ id: string; tenant: string; lag: number }>,

    async beginPoll(consumerId, now) {
      const generation = (generations.get(consumerId) ?? 0) + 1;
      generations.set(consumerId, generation);
      lastPolls.set(consumerId, now);
      held.delete(consumerId); // the older poll ends; this one marks itself if it waits
      return { consumerId, generation };
    },
    async endPolls(consumerId) {
      // One process: the hub ends the held poll itself; the generation still moves on.
      generations.set(consumerId, (generations.get(consumerId) ?? 0) + 1);
      held.delete(consumerId);
    },
    pollGenerations: async (ids) => new Map(ids.map((id) => [id, generations.get(id) ?? 0])),
    markHeld({ consumerId, generation }, until) {
      if (generation !== generations.get(consumerId)) return; // a newer poll or change already
      if (until === null) held.delete(consumerId);
      else held.set(consumerId, { generation, until });
    },
    pollActivity: async (id) => ({ lastPollAt: lastPolls.get(id) ?? null, heldUntil: held.get(id)?.until ?? null }),

    getWebhook: async (consumerId) => webhooks.getWebhook(db, consumerId),
    listEnabledWebhooks: async () => webhooks.listEnabledWebhooks(db),

    saveWebhook(consumerId, build) {
      return writer.write((dbc) => {
        const consumer = consumers.getConsumer(dbc, consumerId);
        if (!consumer) throw new ApiError('not_found', `no consumer "${consumerId.slice(0, 64)}"`);
        const previous = webhooks.getWebhook(dbc, consumerId);
        const row: WebhookRow = build(withPoll(consumer)!, previous);
        webhooks.putWebhook(dbc, row);
        return { row, previous };
      });
    },

    deleteWebhook(consumerId) {
      return writer.write((dbc) => webhooks.deleteWebhook(dbc, consumerId));
    },

    recordProgress(progress) {
      return writer.write((dbc) => {
        if (!webhooks.getWebhook(dbc, progress.consumerId)) return false;
        fenced(progress);
        return true;
      });
    },

    listDeliveries: async (consumerId, o) => webhooks.listDeliveries(db, consumerId, o),

    async claimLeases(): Promise<Lease[]> {
      return webhooks.listEnabledWebhooks(db).map((w) => ({ consumerId: w.consumer_id, epoch: 0 }));
    },
    releaseLease: async () => {},

    getSetting: async (key) => webhooks.getSetting(db, key),
    setSetting(key, value) {
      return writer.write((dbc) => webhooks.setSetting(dbc, key, value));
    },
    setSettingIfAbsent(key, value) {
      return writer.write((dbc) => {
        const current = webhooks.getSetting(dbc, key);
        if (current !== undefined) return current;
        webhooks.setSetting(dbc, key, value);
        return value;
      });
    },

    async ping() {
      alive.get(); // the file is open and readable; O(1), unlike counting events
    },

    async close() {
      await writer.close();
      await checkpointer.stop();
      db.close();
      lock.release();
    },
  };

  /** Rows carry the in-memory poll bookkeeping of this process. */
  function withPoll<R extends consumers.ConsumerRow | undefined>(row: R): R {
    if (row) {
      row.poll_generation = generations.get(row.id) ?? 0;
      row.last_poll_at = lastPolls.get(row.id) ?? null;
    }
    return row;
  }

  return store;
}
