/**
 * Consumers: durable, named readers of one tenant's log. Free functions taking db first.
 *
 * 1. The committed cursor moves forward only (ackCursor: GREATEST in the UPDATE itself, so
 *    two nodes acking at once keep the larger); setCursor (seek) sets it either way.
 * 2. A poll start bumps poll_generation in one UPDATE … RETURNING: every node sees the same
 *    total order of poll starts of a consumer (cross-node supersede); the announcement to other
 *    nodes is a hint sent after that statement committed, never inside it.
 * 3. A taken (tenant, name) is a conflict the caller can act on, not a 500.
 * 4. Deleting a consumer takes its lease row first (the order progress writes use), then its
 *    attempt log, webhook and the consumer, in one transaction.
 */
import { sql } from 'kysely';
import { ApiError } from '../../errors.ts';
import type { ConsumerChanges, ConsumerRow, PollStart } from '../store.ts';
import type { Db } from './db.ts';
import { isUniqueViolation } from './pool.ts';

const NAME_INDEX = 'consumers_tenant_name';

function nameTaken(tenant: string, name: string | null | undefined): ApiError {
  return new ApiError('conflict', `tenant "${tenant}" already has a consumer named "${name}"`, { field: 'name' });
}

export async function createConsumer(db: Db, row: ConsumerRow): Promise<void> {
  try {
    await db.insertInto('consumers').values(row).execute();
  } catch (error) {
    if (isUniqueViolation(error, NAME_INDEX)) throw nameTaken(row.tenant, row.name);
    throw error;
  }
}

export function getConsumer(db: Db, id: string): Promise<ConsumerRow | undefined> {
  return db.selectFrom('consumers').selectAll().where('id', '=', id).executeTakeFirst();
}

export function getConsumerByKeyId(db: Db, keyId: string): Promise<ConsumerRow | undefined> {
  return db.selectFrom('consumers').selectAll().where('key_id', '=', keyId).executeTakeFirst();
}

export function listConsumers(
  db: Db,
  opts: { tenant?: string | undefined; afterId?: string | undefined; limit: number },
): Promise<ConsumerRow[]> {
  let q = db.selectFrom('consumers').selectAll().orderBy('id').limit(opts.limit);
  if (opts.tenant !== undefined) q = q.where('tenant', '=', opts.tenant);
  if (opts.afterId !== undefined) q = q.where('id', '>', opts.afterId);
  return q.execute();
}

export async function updateConsumer(db: Db, id: string, changes: ConsumerChanges, now: number): Promise<ConsumerRow | undefined> {
  const set: { name?: string | null; filter?: string | null; updated_at: number } = { updated_at: now };
  if (changes.name !== undefined) set.name = changes.name;
  if (changes.filter !== undefined) set.filter = changes.filter;
  try {
    return await db.updateTable('consumers').set(set).where('id', '=', id).returningAll().executeTakeFirst();
  } catch (error) {
    if (isUniqueViolation(error, NAME_INDEX)) {
      const current = await getConsumer(db, id);
      throw nameTaken(current?.tenant ?? '?', changes.name);
    }
    throw error;
  }
}

export async function ackCursor(db: Db, id: string, pos: number, now: number): Promise<number | undefined> {
  const row = await db
    .updateTable('consumers')
    .set({
      cursor: sql<number>`GREATEST(cursor, ${pos}::bigint)`,
      updated_at: sql<number>`CASE WHEN cursor < ${pos}::bigint THEN ${now}::bigint ELSE updated_at END`,
    })
    .where('id', '=', id)
    .returning('cursor')
    .executeTakeFirst();
  return row?.cursor;
}

export function setCursor(db: Db, id: string, pos: number, now: number): Promise<ConsumerRow | undefined> {
  return db.updateTable('consumers').set({ cursor: pos, updated_at: now }).where('id', '=', id).returningAll().executeTakeFirst();
}

export function setKey(db: Db, id: string, keyId: string, keyHash: Buffer, now: number): Promise<ConsumerRow | undefined> {
  return db
    .updateTable('consumers')
    .set({ key_id: keyId, key_hash: keyHash, updated_at: now })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
}

export function deleteConsumer(db: Db, id: string): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    await trx.deleteFrom('push_leases').where('consumer_id', '=', id).execute();
    await trx.deleteFrom('deliveries').where('consumer_id', '=', id).execute();
    await trx.deleteFrom('webhooks').where('consumer_id', '=', id).execute();
    const r = await trx.deleteFrom('consumers').where('id', '=', id).executeTakeFirst();
    return r.numDeletedRows > 0n;
  });
}

export async function consumerLags(db: Db): Promise<Array<{ id: string; tenant: string; lag: number }>> {
  return db
    .selectFrom('consumers as c')
    .leftJoin('tenants as t', 't.tenant', 'c.tenant')
    .select(['c.id', 'c.tenant', sql<number>`GREATEST(0, coalesce(t.head_pos, 0) - GREATEST(c.cursor, coalesce(t.trimmed_pos, 0)))`.as('lag')])
    .orderBy('c.id')
    .execute();
}

/** Bumps the generation; ApiError not_found when there is no such consumer. */
export async function beginPoll(db: Db, consumerId: string, now: number): Promise<PollStart> {
  // Every poll writes this row, so its commit does not wait for the WAL flush
  // (synchronous_commit off for this one autocommit statement): a crash may forget a last-poll
  // time, and every node's connections drop with it, so no held poll outlives a lost generation.
  const { rows } = await sql<{ poll_generation: number }>`
    WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true))
    UPDATE consumers SET poll_generation = poll_generation + 1, last_poll_at = ${now}::bigint, poll_held_until = NULL
    FROM relaxed WHERE id = ${consumerId}
    RETURNING poll_generation`.execute(db);
  const row = rows[0];
  if (!row) throw new ApiError('not_found', `no consumer "${consumerId}"`);
  return { consumerId, generation: row.poll_generation };
}

/** A newer generation without a poll: polls held on other nodes end (a change to the consumer). */
export async function endPolls(db: Db, consumerId: string): Promise<PollStart | undefined> {
  const row = await db
    .updateTable('consumers')
    .set({ poll_generation: sql<number>`poll_generation + 1`, poll_held_until: null })
    .where('id', '=', consumerId)
    .returning('poll_generation')
    .executeTakeFirst();
  return row ? { consumerId, generation: row.poll_generation } : undefined;
}

export async function pollGenerations(db: Db, consumerIds: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (consumerIds.length === 0) return out;
  const rows = await db
    .selectFrom('consumers')
    .select(['id', 'poll_generation'])
    .where('id', '=', sql<string>`ANY(${consumerIds}::text[])`)
    .execute();
  for (const r of rows) out.set(r.id, r.poll_generation);
  return out;
}
