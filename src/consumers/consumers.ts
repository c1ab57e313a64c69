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
import { encodeCursor } from '../store/cursor.ts';
import type { ConsumerRow } from '../store/store.ts';
import { isPushMode, webhookView, type WebhookView } from '../push/webhooks.ts';
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
  /** Events of the tenant after the committed cursor that still exist (before filtering). */
  lag: number;
  /** A poll is held right now, on any node. */
  polling: boolean;
  /** When the consumer last polled (SQLite: since this process started; PostgreSQL: on any node). */
  last_poll_at: string | null;
  /** The webhook and its delivery health, or null. */
  webhook: WebhookView | null;
  created_at: string;
  updated_at: string;
}

export async function consumerView(s: Services, row: ConsumerRow): Promise<ConsumerView> {
  const [webhook, head, trimmed, activity] = await Promise.all([
    s.store.getWebhook(row.id),
    s.store.head(row.tenant),
    s.store.trimmedThrough(row.tenant),
    s.store.pollActivity(row.id),
  ]);
  return {
    id: row.id,
    tenant: row.tenant,
    name: row.name,
    filter: row.filter === null ? null : (JSON.parse(row.filter) as Filter),
    mode: webhook?.enabled === 1 ? 'push' : 'pull',
    cursor: encodeCursor(row.cursor),
    lag: Math.max(0, head - Math.max(row.cursor, trimmed)),
    polling: s.hub.isHeld(row.id) || (activity.heldUntil !== null && activity.heldUntil > s.clock.now()),
    last_poll_at: isoOrNull(activity.lastPollAt),
    webhook: webhook ? webhookView(webhook) : null,
    created_at: new Date(row.created_at).toISOString(),
    updated_at: new Date(row.updated_at).toISOString(),
  };
}

function isoOrNull(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/**
 * Why a poll held for this consumer was ended from another node, which only says "a newer
 * generation": the consumer's state now tells a deletion, a key rotation or push mode apart
 * from a newer poll or another change, so the client gets the same answer on every node.
 */
export async function supersededBecause(s: Services, polled: Pick<ConsumerRow, 'id' | 'key_id'>): Promise<ApiError> {
  const now = await s.store.getConsumer(polled.id);
  if (!now) return new ApiError('not_found', 'the consumer was deleted');
  if (now.key_id !== polled.key_id) return new ApiError('unauthorized', 'the key was rotated; use the new key');
  if (await isPushMode(s, polled.id)) return new ApiError('push_mode', 'the consumer was switched to push mode');
  return new ApiError('superseded', 'a newer poll for this consumer took over, or the consumer changed; poll again');
}

export async function findConsumer(s: Services, id: string): Promise<ConsumerRow> {
  const row = await s.store.getConsumer(id);
  if (!row) throw new ApiError('not_found', `no consumer "${id.slice(0, 64)}"`);
  return row;
}

export async function createConsumer(
  s: Services,
  input: { tenant: string; name: string | null; filter: Filter | null; start: PositionSpec },
): Promise<{ row: ConsumerRow; key: string }> {
  const cursor = await resolvePosition(s.store, input.tenant, input.start, 'start');
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
    poll_generation: 0,
    last_poll_at: null,
    created_at: now,
    updated_at: now,
  };
  await s.store.createConsumer(row);
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
  const row = await s.bridge.change(id, async () => orNotFound(id, await s.store.updateConsumer(id, changes, s.clock.now())));
  if (changes.filter !== undefined) await endHeldPolls(s, id, 'filter changed');
  return row;
}

export async function seekConsumer(s: Services, id: string, to: PositionSpec): Promise<ConsumerRow> {
  const current = await findConsumer(s, id);
  const position = await resolvePosition(s.store, current.tenant, to, 'to');
  const row = await s.bridge.change(id, async () => orNotFound(id, await s.store.setCursor(id, position, s.clock.now())));
  await endHeldPolls(s, id, 'seek');
  return row;
}

export async function rotateKey(s: Services, id: string): Promise<{ row: ConsumerRow; key: string }> {
  const { key, keyId, hash } = newConsumerKey();
  const row = orNotFound(id, await s.store.setKey(id, keyId, hash, s.clock.now()));
  await endHeldPolls(s, id, 'key_rotated');
  return { row, key };
}

export async function deleteConsumer(s: Services, id: string): Promise<void> {
  await s.bridge.change(id, async () => {
    // Polls held on other nodes end too: the store tells them once the row is gone.
    if (!(await s.store.deleteConsumer(id))) throw new ApiError('not_found', `no consumer "${id.slice(0, 64)}"`);
  });
  s.hub.end(id, 'deleted');
}

/**
 * Ends the consumer's held polls after a change: here with the reason (the client is told what
 * changed), on other nodes as superseded (the next poll then meets the change).
 */
export async function endHeldPolls(s: Services, id: string, reason: string): Promise<void> {
  s.hub.end(id, reason);
  await s.store.endPolls(id);
}

function orNotFound(id: string, row: ConsumerRow | undefined): ConsumerRow {
  if (!row) throw new ApiError('not_found', `no consumer "${id.slice(0, 64)}"`);
  return row;
}
