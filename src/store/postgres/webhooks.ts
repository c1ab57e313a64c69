/**
 * Webhooks, the bridge's progress behind delivery, and the attempt log. Free functions taking
 * db (or a transaction) first.
 *
 * 1. saveWebhook is a read-modify-write under the consumer's row lock: two nodes changing one
 *    webhook at once apply one after the other, each building from the other's result.
 * 2. Every progress write is fenced (SCALE-OUT §4): it first locks the consumer's lease row and
 *    checks that this node owns it with the epoch the write carries. A claim by another node
 *    bumps the epoch, so a paused or partitioned old owner writes nothing, ever. Holding the
 *    lease row until COMMIT keeps a claim from slipping between the check and the writes.
 * 3. The cursor written by the bridge moves forward only (GREATEST), like an ack.
 */
import { sql } from 'kysely';
import { ApiError } from '../../errors.ts';
import type { ConsumerRow, DeliveryRow, Progress, WebhookRow } from '../store.ts';
import type { Db } from './db.ts';

export function getWebhook(db: Db, consumerId: string): Promise<WebhookRow | undefined> {
  return db.selectFrom('webhooks').selectAll().where('consumer_id', '=', consumerId).executeTakeFirst();
}

export function listEnabledWebhooks(db: Db): Promise<WebhookRow[]> {
  return db.selectFrom('webhooks').selectAll().where('enabled', '=', 1).orderBy('consumer_id').execute();
}

export function saveWebhook(
  db: Db,
  consumerId: string,
  build: (consumer: ConsumerRow, current: WebhookRow | undefined) => WebhookRow,
): Promise<{ row: WebhookRow; previous: WebhookRow | undefined }> {
  return db.transaction().execute(async (trx) => {
    const consumer = await trx.selectFrom('consumers').selectAll().where('id', '=', consumerId).forUpdate().executeTakeFirst();
    if (!consumer) throw new ApiError('not_found', `no consumer "${consumerId}"`);
    const previous = await getWebhook(trx, consumerId);
    const row = build(consumer, previous);
    const { created_at: _created, consumer_id: _id, ...changes } = row;
    const saved = await trx
      .insertInto('webhooks')
      .values({ ...row, consumer_id: consumerId })
      .onConflict((oc) => oc.column('consumer_id').doUpdateSet(changes))
      .returningAll()
      .executeTakeFirstOrThrow();
    return { row: saved, previous };
  });
}

export async function deleteWebhook(db: Db, consumerId: string): Promise<boolean> {
  const r = await db.deleteFrom('webhooks').where('consumer_id', '=', consumerId).executeTakeFirst();
  return r.numDeletedRows > 0n;
}

/**
 * Inside a transaction: the fence, then the progress. False (and nothing written) when this
 * node does not hold the consumer's lease with that epoch.
 */
export async function writeProgress(trx: Db, nodeId: string, progress: Progress, now: number): Promise<boolean> {
  const lease = await trx
    .selectFrom('push_leases')
    .select('epoch')
    .where('consumer_id', '=', progress.consumerId)
    .where('owner', '=', nodeId)
    .where('epoch', '=', progress.epoch)
    .forUpdate()
    .executeTakeFirst();
  if (!lease) return false;

  if (progress.cursor !== undefined) {
    await trx
      .updateTable('consumers')
      .set({
        cursor: sql<number>`GREATEST(cursor, ${progress.cursor}::bigint)`,
        updated_at: sql<number>`CASE WHEN cursor < ${progress.cursor}::bigint THEN ${now}::bigint ELSE updated_at END`,
      })
      .where('id', '=', progress.consumerId)
      .execute();
  }
  if (progress.state && Object.keys(progress.state).length > 0) {
    await trx
      .updateTable('webhooks')
      .set({ ...progress.state, updated_at: now })
      .where('consumer_id', '=', progress.consumerId)
      .execute();
  }
  if (progress.deliveries && progress.deliveries.length > 0) {
    await trx.insertInto('deliveries').values(progress.deliveries).execute();
  }
  return true;
}

export function recordProgress(db: Db, nodeId: string, progress: Progress, now: number): Promise<boolean> {
  // Fenced out, the transaction wrote nothing and commits nothing.
  return db.transaction().execute((trx) => writeProgress(trx, nodeId, progress, now));
}

export function listDeliveries(db: Db, consumerId: string, opts: { limit: number; beforeId?: number | undefined }): Promise<DeliveryRow[]> {
  let q = db.selectFrom('deliveries').selectAll().where('consumer_id', '=', consumerId).orderBy('id', 'desc').limit(opts.limit);
  if (opts.beforeId !== undefined) q = q.where('id', '<', opts.beforeId);
  return q.execute();
}
