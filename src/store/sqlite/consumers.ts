/**
 * Consumers: durable, named readers of one tenant's events. Free functions taking db first;
 * writes are meant to run inside a writer transaction (store/writer.ts).
 *
 * The committed cursor only moves forward on ack (advanceCursor); seek sets it explicitly.
 */
import type { Db } from './db.ts';
import type { ConsumersTable } from '../tables.ts';
import { all, first, qb, reusable, run } from './sql.ts';

export type ConsumerRow = ConsumersTable;

export function insertConsumer(db: Db, row: ConsumerRow): void {
  run(db, qb.insertInto('consumers').values(row));
}

// Per request (auth, every poll and ack): compiled once.
const byId = reusable((id: string) => qb.selectFrom('consumers').selectAll().where('id', '=', id));
const byKeyId = reusable((keyId: string) => qb.selectFrom('consumers').selectAll().where('key_id', '=', keyId));
const advance = reusable((id: string, seq: number, now: number) =>
  qb.updateTable('consumers').set({ cursor: seq, updated_at: now }).where('id', '=', id).where('cursor', '<', seq),
);

export function getConsumer(db: Db, id: string): ConsumerRow | undefined {
  return byId.first(db, id);
}

export function getConsumerByKeyId(db: Db, keyId: string): ConsumerRow | undefined {
  return byKeyId.first(db, keyId);
}

export function getConsumerByName(db: Db, tenant: string, name: string): ConsumerRow | undefined {
  return first(
    db,
    qb.selectFrom('consumers').selectAll().where('tenant', '=', tenant).where('name', '=', name),
  );
}

/** A page of consumers ordered by id; afterId continues a previous page. */
export function listConsumers(
  db: Db,
  opts: { tenant?: string | undefined; afterId?: string | undefined; limit: number },
): ConsumerRow[] {
  let q = qb.selectFrom('consumers').selectAll().orderBy('id').limit(opts.limit);
  if (opts.tenant !== undefined) q = q.where('tenant', '=', opts.tenant);
  if (opts.afterId !== undefined) q = q.where('id', '>', opts.afterId);
  return all(db, q);
}

export function updateConsumer(
  db: Db,
  id: string,
  patch: { name?: string | null; filter?: string | null },
  now: number,
): boolean {
  return run(db, qb.updateTable('consumers').set({ ...patch, updated_at: now }).where('id', '=', id)) === 1;
}

/** Moves the committed cursor forward to seq; never backwards. */
export function advanceCursor(db: Db, id: string, seq: number, now: number): void {
  advance.run(db, id, seq, now);
}

/** Sets the committed cursor, in either direction (seek). */
export function setCursor(db: Db, id: string, seq: number, now: number): boolean {
  return run(db, qb.updateTable('consumers').set({ cursor: seq, updated_at: now }).where('id', '=', id)) === 1;
}

export function setKey(db: Db, id: string, keyId: string, keyHash: Buffer, now: number): boolean {
  return (
    run(
      db,
      qb.updateTable('consumers').set({ key_id: keyId, key_hash: keyHash, updated_at: now }).where('id', '=', id),
    ) === 1
  );
}

export function deleteConsumer(db: Db, id: string): boolean {
  return run(db, qb.deleteFrom('consumers').where('id', '=', id)) === 1;
}
