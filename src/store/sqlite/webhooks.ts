/**
 * Webhooks, their delivery state, the attempt log and settings. Free functions taking db
 * first; writes run inside a writer transaction.
 */
import type { Db } from './db.ts';
import { all, first, qb, reusable, run } from './sql.ts';

import type { DeliveryRow, WebhookRow, WebhookState } from '../store.ts';
export type { DeliveryRow, WebhookRow, WebhookState };

// Per poll (the push-mode check) and per delivery: compiled once.
const webhookOf = reusable((consumerId: string) => qb.selectFrom('webhooks').selectAll().where('consumer_id', '=', consumerId));
const addDelivery = reusable(
  (
    consumer_id: string,
    event_id: string,
    pos: number,
    attempt: number,
    status: number | null,
    error: string | null,
    duration_ms: number,
    at: number,
    next_attempt_at: number | null,
    response: string | null,
  ) =>
    qb.insertInto('deliveries').values({ consumer_id, event_id, pos, attempt, status, error, duration_ms, at, next_attempt_at, response }),
);

export function getWebhook(db: Db, consumerId: string): WebhookRow | undefined {
  return webhookOf.first(db, consumerId);
}

export function listEnabledWebhooks(db: Db): WebhookRow[] {
  return all(db, qb.selectFrom('webhooks').selectAll().where('enabled', '=', 1));
}

/** Creates or replaces the consumer's webhook (keeping its creation time). */
export function putWebhook(db: Db, row: WebhookRow): void {
  const { created_at: _created, consumer_id: _id, ...changes } = row;
  run(
    db,
    qb
      .insertInto('webhooks')
      .values(row)
      .onConflict((oc) => oc.column('consumer_id').doUpdateSet(changes)),
  );
}

export function deleteWebhook(db: Db, consumerId: string): boolean {
  return run(db, qb.deleteFrom('webhooks').where('consumer_id', '=', consumerId)) === 1;
}

export function updateWebhookState(db: Db, consumerId: string, state: WebhookState, now: number): void {
  run(db, qb.updateTable('webhooks').set({ ...state, updated_at: now }).where('consumer_id', '=', consumerId));
}

export function insertDelivery(db: Db, row: Omit<DeliveryRow, 'id'>): void {
  addDelivery.run(db, row.consumer_id, row.event_id, row.pos, row.attempt, row.status, row.error, row.duration_ms, row.at, row.next_attempt_at, row.response);
}

/** Newest first; beforeId continues a previous page. */
export function listDeliveries(
  db: Db,
  consumerId: string,
  opts: { limit: number; beforeId?: number | undefined },
): DeliveryRow[] {
  let q = qb
    .selectFrom('deliveries')
    .selectAll()
    .where('consumer_id', '=', consumerId)
    .orderBy('id', 'desc')
    .limit(opts.limit);
  if (opts.beforeId !== undefined) q = q.where('id', '<', opts.beforeId);
  return all(db, q) as DeliveryRow[];
}

export function deleteDeliveries(db: Db, consumerId: string): void {
  run(db, qb.deleteFrom('deliveries').where('consumer_id', '=', consumerId));
}

/** Removes up to batch of the oldest attempt records older than cutoff. */
export function trimDeliveries(db: Db, cutoff: number, batch: number): number {
  const through = first(
    db,
    qb
      .selectFrom((sub) =>
        sub.selectFrom('deliveries').select(['id', 'at']).orderBy('id').limit(batch).as('oldest'),
      )
      .select((eb) => eb.fn.max('id').as('id'))
      .where('at', '<', cutoff),
  )?.id;
  if (through === undefined || through === null) return 0;
  return run(db, qb.deleteFrom('deliveries').where('id', '<=', through));
}

export function getSetting(db: Db, key: string): string | undefined {
  return first(db, qb.selectFrom('settings').select('value').where('key', '=', key))?.value;
}

export function setSetting(db: Db, key: string, value: string): void {
  run(
    db,
    qb
      .insertInto('settings')
      .values({ key, value })
      .onConflict((oc) => oc.column('key').doUpdateSet({ value })),
  );
}
