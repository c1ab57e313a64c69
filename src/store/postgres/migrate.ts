/**
 * Schema migrations: the numbered files of schema/postgres/, applied forward-only.
 *
 * 1. Each file runs in its own transaction together with its schema_migrations row, so a
 *    file is either wholly applied and recorded or not at all.
 * 2. That transaction first takes a transaction-scoped advisory lock (released by COMMIT or
 *    ROLLBACK, and by the server if the node dies): nodes starting at the same moment apply
 *    each file exactly once, one after another; a node that gets the lock after another
 *    applied the file sees its row and skips it.
 * 3. A database that knows a version this node does not (a newer node migrated it) is left
 *    alone: files are only ever added, so an older node reads the tables it knows.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Pool } from 'pg';

/** Arbitrary, fixed: the key of the migration lock ("pollgate" in ASCII, trimmed to int8). */
export const MIGRATION_LOCK = 0x706f6c6c67617465n;

const SCHEMA_DIR = fileURLToPath(new URL('../../../schema/postgres/', import.meta.url));

interface MigrationFile {
  version: number;
  name: string;
  sql: string;
}

export function migrationFiles(dir = SCHEMA_DIR): MigrationFile[] {
  return readdirSync(dir)
    .map((file) => /^(\d+)_(.+)\.sql$/.exec(file))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ version: Number(m[1]), name: m[2]!, sql: readFileSync(`${dir}/${m[0]}`, 'utf8') }))
    .sort((a, b) => a.version - b.version);
}

/** Applies every file not yet applied; answers the versions this call applied. */
export async function migratePostgres(pool: Pool, dir = SCHEMA_DIR): Promise<number[]> {
  const applied: number[] = [];
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    for (const file of migrationFiles(dir)) {
      try {
        await client.query('BEGIN');
        await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK.toString()]);
        // Under the lock, so concurrent first starts do not race on creating it.
        await client.query(
          `CREATE TABLE IF NOT EXISTS schema_migrations (
             version    integer     PRIMARY KEY,
             name       text        NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
           )`,
        );
        const done = await client.query('SELECT 1 FROM schema_migrations WHERE version = $1', [file.version]);
        if (done.rowCount === 0) {
          await client.query(file.sql);
          await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [file.version, file.name]);
          applied.push(file.version);
        }
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch((e: Error) => {
          broken = e;
        });
        throw error;
      }
    }
  } finally {
    client.release(broken);
  }
  return applied;
}
