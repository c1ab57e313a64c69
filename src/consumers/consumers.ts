/**
 * Managing consumers (admin key): create, change, seek, rotate the key, delete, and the view
 * clients see. Every change that invalidates a held poll ends it, so no poll keeps reading
 * with an old filter, position or key.
 */
import { customAlphabet } from 'nanoid';
import { newConsumerKey } from '../auth/keys.ts';
import { ApiError } from '../errors.ts';
import type { Filter } from '../filter/filter.ts';
import type { Services } from '../services.ts';
import * as store from '../store/consumers.ts';
import type { ConsumerRow } from '../store/consumers.ts';
import { encodeCursor } from '../store/cursor.ts';
import { getWebhook, deleteDeliveries } from '../store/webhooks.ts';
import { webhookView, type WebhookView } from '../push/webhooks.ts';
import { resolvePosition, type PositionSpec } from './positions.ts';

const consumerId = customAlphabet('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 16);

export interface ConsumerView {
  id: string;
  tenant: string;
  name: string | null;
  filter: Filter | null;
  /** push exactly when the consumer has an enabled webhook. */
  mode: 'pull' | 'push';
  cursor: string;
  /** Events of the tenant after the committed cursor (before filtering). */
  lag: number;
  /** A poll is held right now. */
  polling: boolean;
  /** When the consumer last polled, as seen by this server process (null: not since it started). */
  last_poll_at: string | null;
  /** The webhook and its delivery health, or null. */
  webhook: WebhookView | null;
  created_at: string;
  updated_at: string;
}

export function consumerView(s: Services, row: ConsumerRow): ConsumerView {
  const webhook = getWebhook(s.db, row.id);
  return {
    id: row.id,
    tenant: row.tenant,
    name: row.name,
    filter: row.filter === null ? null : (JSON.parse(row.filter) as Filter),
    mode: webhook?.enabled === 1 ? 'push' : 'pull',
    cursor: encodeCursor(row.cursor),
    lag: s.log.countAfter(row.tenant, row.cursor),
    polling: s.hub.isHeld(row.id),
    last_poll_at: isoOrNull(s.hub.lastPollAt(row.id)),
    webhook: webhook ? webhookView(webhook) : null,
    created_at: new Date(row.created_at).toISOString(),
    updated_at: new Date(row.updated_at).toISOString(),
  };
}

function isoOrNull(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

export function findConsumer(s: Services, id: string): ConsumerRow {
  const row = store.getConsumer(s.db, id);
  if (!row) throw new ApiError('not_found', `no consumer "${id.slice(0, 64)}"`);
  return row;
}

function nameTaken(tenant: string, name: string): ApiError {
  return new ApiError('conflict', `tenant "${tenant}" already has a consumer named "${name}"`, { field: 'name' });
}

export async function createConsumer(
  s: Services,
  input: { tenant: string; name: string | null; filter: Filter | null; start: PositionSpec },
): Promise<{ row: ConsumerRow; key: string }> {
  const cursor = resolvePosition(s.log, input.tenant, input.start, 'start');
  const { key, keyId, hash } = newConsumerKey();
  const now = s.clock.now();
  const row: ConsumerRow = {
    id: `con_${consumerId()}`,
    tenant: input.tenant,
    name: input.name,
    filter: input.filter === null ? null : JSON.stringify(input.filter),
    cursor,
    key_id: keyId,
    key_hash: hash,
    created_at: now,
    updated_at: now,
  };
  await s.writer.write((db) => {
    if (input.name !== null && store.getConsumerByName(db, input.tenant, input.name)) {
      throw nameTaken(input.tenant, input.name);
    }
    store.insertConsumer(db, row);
  });
  return { row, key };
}

export async function updateConsumer(
  s: Services,
  id: string,
  patch: { name?: string | null; filter?: Filter | null },
): Promise<ConsumerRow> {
  const changes: { name?: string | null; filter?: string | null } = {};
  if (patch.name !== undefined) changes.name = patch.name;
  if (patch.filter !== undefined) changes.filter = patch.filter === null ? null : JSON.stringify(patch.filter);
  const row = await s.bridge.change(id, () => s.writer.write((db) => {
    const current = store.getConsumer(db, id);
    if (!current) throw new ApiError('not_found', `no consumer "${id.slice(0, 64)}"`);
    if (changes.name && changes.name !== current.name && store.getConsumerByName(db, current.tenant, changes.name)) {
      throw nameTaken(current.tenant, changes.name);
    }
    store.updateConsumer(db, id, changes, s.clock.now());
    return store.getConsumer(db, id)!;
  }));
  if (changes.filter !== undefined) s.hub.end(id, 'filter changed');
  return row;
}

export async function seekConsumer(s: Services, id: string, to: PositionSpec): Promise<ConsumerRow> {
  const current = findConsumer(s, id);
  const position = resolvePosition(s.log, current.tenant, to, 'to');
  const row = await s.bridge.change(id, () =>
    s.writer.write((db) => {
      if (!store.setCursor(db, id, position, s.clock.now())) throw new ApiError('not_found', `no consumer "${id}"`);
      return store.getConsumer(db, id)!;
    }),
  );
  s.hub.end(id, 'seek');
  return row;
}

export async function rotateKey(s: Services, id: string): Promise<{ row: ConsumerRow; key: string }> {
  const { key, keyId, hash } = newConsumerKey();
  const row = await s.writer.write((db) => {
    if (!store.setKey(db, id, keyId, hash, s.clock.now())) throw new ApiError('not_found', `no consumer "${id}"`);
    return store.getConsumer(db, id)!;
  });
  s.hub.end(id, 'key_rotated');
  return { row, key };
}

export async function deleteConsumer(s: Services, id: string): Promise<void> {
  await s.bridge.change(id, () =>
    s.writer.write((db) => {
      if (!store.deleteConsumer(db, id)) throw new ApiError('not_found', `no consumer "${id.slice(0, 64)}"`);
      deleteDeliveries(db, id);
    }),
  );
  s.hub.end(id, 'deleted');
}
