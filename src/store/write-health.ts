/**
 * Whether the database takes writes, for readiness (/readyz), on either engine.
 *
 * A database can answer reads while every write fails: a full disk, a database turned
 * read-only (a standby after failover, a managed server out of space). So readiness also
 * follows the writes themselves:
 *
 * 1. Every write of the store is watched. One that fails because of the database (ApiError
 *    `unavailable`: a commit that failed, a full disk, a read-only database, a lost connection)
 *    makes writes "failing", with its cause as the reason.
 * 2. A write that then succeeds ends that. Only writes that always reach the database count:
 *    a retention pass with nothing to remove, or a poll's bookkeeping that one engine keeps in
 *    memory, proves nothing.
 * 3. While failing, check() tries one write itself (a settings row larger than a page, so it
 *    needs fresh space as an append does), at most one at a time and one a second whoever
 *    asks: a node taken out of rotation gets no traffic, and would otherwise never learn that
 *    the disk has room again.
 */
import { randomBytes } from 'node:crypto';
import type { Clock } from '../clock.ts';
import { ApiError } from '../errors.ts';
import type { Store } from './store.ts';

export interface WritesFailing {
  /** The database's own words (e.g. "SQLITE_FULL: database or disk is full"). */
  reason: string;
  /** When the first failure of this spell happened (ms). */
  since: number;
}

export interface WriteHealth {
  /** The failure in force, or null when the last write went through. */
  failing(): WritesFailing | null;
  /** As failing(), after trying a write when the last one failed. */
  check(): Promise<WritesFailing | null>;
}

/** Writes whose success shows the database took a write. */
const PROVING = [
  'append', 'createConsumer', 'updateConsumer', 'ackCursor', 'setCursor', 'setKey', 'deleteConsumer',
  'saveWebhook', 'deleteWebhook', 'recordProgress', 'setSetting', 'setSettingIfAbsent',
] as const satisfies ReadonlyArray<keyof Store>;
/** Writes that may not reach the database (nothing to do, or kept in memory on one engine): only their failures count. */
const FAILING_ONLY = ['trimOnce', 'beginPoll', 'endPolls', 'claimLeases', 'releaseLease'] as const satisfies ReadonlyArray<keyof Store>;

const PROBE_KEY = 'readiness_probe';
const PROBE_INTERVAL_MS = 1_000;

export function watchWrites(store: Store, clock: Clock, onChange?: (failing: WritesFailing | null) => void): { store: Store; health: WriteHealth } {
  let current: WritesFailing | null = null;
  let probing: Promise<void> | null = null;
  let lastProbe = -Infinity;

  const succeeded = () => {
    if (current === null) return;
    current = null;
    onChange?.(null);
  };
  const failed = (error: unknown) => {
    if (!(error instanceof ApiError) || error.code !== 'unavailable') return;
    const reason = describe(error);
    const fresh = current === null;
    current = { reason, since: current?.since ?? clock.now() };
    if (fresh) onChange?.(current);
  };

  const watched: Store = { ...store };
  const wrap = (name: keyof Store, proves: boolean) => {
    const original = (store[name] as (...args: unknown[]) => Promise<unknown>).bind(store);
    (watched as unknown as Record<string, unknown>)[name] = (...args: unknown[]) =>
      original(...args).then(
        (value) => {
          if (proves) succeeded();
          return value;
        },
        (error: unknown) => {
          failed(error);
          throw error;
        },
      );
  };
  for (const name of PROVING) wrap(name, true);
  for (const name of FAILING_ONLY) wrap(name, false);

  const probe = (): Promise<void> => {
    lastProbe = clock.now();
    const value = `${lastProbe}:${randomBytes(4096).toString('hex')}`;
    return watched.setSetting(PROBE_KEY, value).then(
      () => {},
      () => {}, // recorded by the watch above
    );
  };

  const health: WriteHealth = {
    failing: () => current,
    async check() {
      if (current === null) return null;
      if (!probing && clock.now() - lastProbe >= PROBE_INTERVAL_MS) {
        probing = probe().finally(() => {
          probing = null;
        });
      }
      if (probing) await probing;
      return current;
    },
  };
  return { store: watched, health };
}

/** The underlying cause in a line: its code and message, never more than 200 characters. */
function describe(error: ApiError): string {
  const cause = error.cause as { code?: unknown; message?: unknown } | undefined;
  const code = typeof cause?.code === 'string' ? cause.code : '';
  const message = typeof cause?.message === 'string' ? cause.message : error.message;
  const text = code && !message.startsWith(code) ? `${code}: ${message}` : message;
  return text.replace(/\s+/g, ' ').slice(0, 200);
}
