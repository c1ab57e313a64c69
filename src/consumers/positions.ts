/**
 * Turning what a client says about a position (a cursor, "earliest", "latest", a time) into
 * a log position, or a 400 naming the field. A cursor past the head of the log is refused:
 * it would let a consumer skip events that do not exist yet.
 */
import { z } from 'zod';
import { ApiError } from '../errors.ts';
import { decodeCursor } from '../store/cursor.ts';
import type { Log } from '../store/events.ts';

export const positionSchema = z.union([
  z.literal('earliest'),
  z.literal('latest'),
  z.strictObject({ cursor: z.string() }),
  z.strictObject({ time: z.iso.datetime({ offset: true }) }),
], { error: 'must be "earliest", "latest", {"cursor":"…"} or {"time":"ISO 8601"}' });

export type PositionSpec = z.output<typeof positionSchema>;

export function cursorPosition(log: Log, text: string, field: string): number {
  const seq = decodeCursor(text);
  if (seq === null) {
    throw new ApiError('invalid_cursor', `${field}: "${text.slice(0, 40)}" is not a cursor of this gateway`, { field });
  }
  if (seq > log.head()) {
    throw new ApiError('invalid_cursor', `${field}: the cursor is past the head of the log`, { field });
  }
  return seq;
}

export function resolvePosition(log: Log, tenant: string, spec: PositionSpec, field: string): number {
  if (spec === 'latest') return log.head();
  if (spec === 'earliest') return log.trimmedThrough(tenant);
  if ('cursor' in spec) return cursorPosition(log, spec.cursor, `${field}.cursor`);
  return log.positionBeforeTime(Date.parse(spec.time));
}
