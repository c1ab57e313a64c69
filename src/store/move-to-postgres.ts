/**
 * `pollgate migrate --to postgres://…`: copies an embedded deployment (a SQLite data directory)
 * into an empty PostgreSQL database, so that its consumers keep polling with the same keys and
 * cursors against the new nodes.
 *
 * 1. The data directory is locked like a running server locks it: the copy is a consistent
 *    snapshot, and a server still running there makes the command refuse instead of racing it.
 * 2. The target gets pollgate's schema (the same migrations the nodes apply) and must hold no
 *    pollgate data yet: a non-empty target is refused, never merged into.
 * 3. Everything is copied in ONE transaction: events with their positions (and their SQLite seq
 *    as legacy_seq, so cursors issued before positions were per tenant still translate), the
 *    tenants' heads and trim marks, consumers with key hashes and cursors, webhooks with secrets
 *    and retry state, the attempt log, settings, and the generated admin key (as a hash).
 *    A failure leaves the target as it was.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'kysely';
import type { Logger } from 'pino';
import { hashKey } from '../auth/keys.ts';
import { createDb, type Tx } from './postgres/db.ts';
import { migratePostgres } from './postgres/migrate.ts';
import { createPool } from './postgres/pool.ts';
import { openDatabase } from './sqlite/db.ts';
import { lockDataDir } from './sqlite/lock.ts';

export interface MoveCounts {
  events: number;
  tenants: number;
  consumers: number;
  webhooks: number;
  deliveries: number;
  settings: number;
  adminKey: boolean;
}

export class TargetNotEmpty extends Error {
  override name = 'TargetNotEmpty';
}

const BATCH = 1000;

export async function moveToPostgres(
  dataDir: string,
  url: string,
  opts: { logger: Logger; onProgress?: (table: string, copied: number) => void },
): Promise<MoveCounts> {
  if (!existsSync(join(dataDir, 'pollgate.db'))) {
    throw new Error(`no pollgate database in ${dataDir} (expected ${join(dataDir, 'pollgate.db')})`);
  }
  const lock = lockDataDir(dataDir);
  const lite = openDatabase(dataDir);
  const pool = createPool({ url, nodeId: 'migrate', max: 2, logger: opts.logger, statementTimeoutMs: 0 });
  const db = createDb(pool);
  try {
    await migratePostgres(pool);
    return await db.transaction().execute(async (trx) => {
      await refuseNonEmpty(trx);
      const counts: MoveCounts = { events: 0, tenants: 0, consumers: 0, webhooks: 0, deliveries: 0, settings: 0, adminKey: false };
      const copy = async <R>(table: string, rows: Iterable<R>, insert: (batch: R[]) => Promise<unknown>): Promise<number> => {
        let batch: R[] = [];
        let n = 0;
        for (const row of rows) {
          batch.push(row);
          if (batch.length === BATCH) {
            await insert(batch);
            n += batch.length;
            batch = [];
            opts.onProgress?.(table, n);
          }
        }
        if (batch.length > 0) {
          await insert(batch);
          n += batch.length;
          opts.onProgress?.(table, n);
        }
        return n;
      };

      counts.tenants = await copy('tenants', lite.prepare('SELECT * FROM tenants').iterate() as Iterable<any>, (b) =>
        trx.insertInto('tenants').values(b).execute(),
      );
      counts.events = await copy(
        'events',
        lite.prepare('SELECT seq AS legacy_seq, tenant, pos, id, type, time, data FROM events ORDER BY seq').iterate() as Iterable<any>,
        (b) => trx.insertInto('events').values(b).execute(),
      );
      counts.consumers = await copy(
        'consumers',
        lite.prepare('SELECT id, tenant, name, filter, cursor, key_id, key_hash, created_at, updated_at FROM consumers').iterate() as Iterable<any>,
        (b) => trx.insertInto('consumers').values(b.map((c) => ({ ...c, poll_generation: 0, last_poll_at: null }))).execute(),
      );
      counts.webhooks = await copy('webhooks', lite.prepare('SELECT * FROM webhooks').iterate() as Iterable<any>, (b) =>
        trx.insertInto('webhooks').values(b).execute(),
      );
      counts.deliveries = await copy(
        'deliveries',
        lite.prepare('SELECT id, consumer_id, event_id, pos, attempt, status, error, duration_ms, at, next_attempt_at, response FROM deliveries ORDER BY id').iterate() as Iterable<any>,
        (b) => sql`INSERT INTO deliveries (id, consumer_id, event_id, pos, attempt, status, error, duration_ms, at, next_attempt_at, response)
            OVERRIDING SYSTEM VALUE SELECT * FROM jsonb_to_recordset(${JSON.stringify(b)}::jsonb)
            AS d (id bigint, consumer_id text, event_id text, pos bigint, attempt integer, status integer, error text,
                  duration_ms integer, at bigint, next_attempt_at bigint, response text)`.execute(trx),
      );
      // Attempt ids go on after the copied ones.
      await sql`SELECT setval(pg_get_serial_sequence('deliveries', 'id'), GREATEST((SELECT max(id) FROM deliveries), 1))`.execute(trx);
      counts.settings = await copy('settings', lite.prepare('SELECT key, value FROM settings').iterate() as Iterable<any>, (b) =>
        trx.insertInto('settings').values(b).execute(),
      );
      // The generated admin key lives in the data directory; PostgreSQL keeps only its hash.
      const keyFile = join(dataDir, 'admin.key');
      if (existsSync(keyFile)) {
        const hash = hashKey(readFileSync(keyFile, 'utf8').trim()).toString('base64');
        await trx.insertInto('settings').values({ key: 'admin_key_hash', value: hash }).execute();
        counts.adminKey = true;
      }
      return counts;
    });
  } finally {
    await pool.end().catch(() => {});
    lite.close();
    lock.release();
  }
}

async function refuseNonEmpty(trx: Tx): Promise<void> {
  const { rows } = await sql<{ n: number }>`SELECT
      (SELECT count(*) FROM (SELECT 1 FROM tenants LIMIT 1) t) +
      (SELECT count(*) FROM (SELECT 1 FROM events LIMIT 1) e) +
      (SELECT count(*) FROM (SELECT 1 FROM consumers LIMIT 1) c) +
      (SELECT count(*) FROM (SELECT 1 FROM settings LIMIT 1) s) AS n`.execute(trx);
  if ((rows[0]?.n ?? 0) > 0) {
    throw new TargetNotEmpty('the target database already holds pollgate data; migrate copies only into an empty database');
  }
}
