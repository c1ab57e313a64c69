/**
 * Turning what a client says about a position (a cursor, "earliest", "latest", a time) into
 * a position in the tenant's log, or a 400 naming the field. A cursor past the tenant's head is refused:
 * it would let a consumer skip events that do not exist yet.
 */
import { z } from 'zod';
import { ApiError } from '../errors.ts';
import { decodeCursor } from '../store/cursor.ts';
import type { Store } from '../store/store.ts';

export const positionSchema = z.union([
  z.literal('earliest'),
  z.literal('latest'),
  z.strictObject({ cursor: z.string() }),
  z.strictObject({ time: z.iso.datetime({ offset: true }) }),
], { error: 'must be "earliest", "latest", {"cursor":"…"} or {"time":"ISO 8601"}' });

export type PositionSpec = z.output<typeof positionSchema>;

/** The position a cursor names in the tenant's log; a 400 naming the field when it is not one. */
export async function cursorPosition(store: Store, tenant: string, text: string, field: string): Promise<number> {
  const decoded = decodeCursor(text);
  if (decoded === null) {
    throw new ApiError('invalid_cursor', `${field}: "${text.slice(0, 40)}" is not a cursor of this gateway`, { field });
  }
  const pos = 'pos' in decoded ? decoded.pos : await store.translateLegacy(tenant, decoded.legacySeq);
  if (pos === null || pos > (await store.head(tenant))) {
    throw new ApiError('invalid_cursor', `${field}: the cursor is past the head of the tenant's log`, { field });
  }
  return pos;
}

export async function resolvePosition(store: Store, tenant: string, spec: PositionSpec, field: string): Promise<number> {
  if (spec === 'latest') return store.head(tenant);
  if (spec === 'earliest') return store.trimmedThrough(tenant);
  if ('cursor' in spec) return cursorPosition(store, tenant, spec.cursor, `${field}.cursor`);
  return store.positionBeforeTime(tenant, Date.parse(spec.time));
}
