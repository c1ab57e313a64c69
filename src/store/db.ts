/**
 * Opens the SQLite database and brings its schema up to date.
 *
 * Durability: WAL. SQLite's synchronous=FULL would fsync the WAL inside COMMIT, on the event
 * loop, stalling every request for the length of an fsync. Instead COMMIT only writes the WAL
 * (synchronous=NORMAL) and the writer fdatasyncs the WAL file on libuv's thread pool before
 * any caller is answered or any reader is shown the commit (writer.ts): every acknowledged
 * write is on disk, as with FULL. NORMAL still makes SQLite sync the WAL before and the
 * database after each checkpoint, and checkpoints run off the event loop (checkpointer.ts).
 * Migrations are the numbered files in schema/, applied forward-only, each in one
 * transaction with its bookkeeping row.
 */
import Database from 'better-sqlite3';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export type Db = Database.Database;

const SCHEMA_DIR = fileURLToPath(new URL('../../schema/', import.meta.url));

export const databaseFile = (dataDir: string): string => join(dataDir, 'pollgate.db');

export function openDatabase(dataDir: string): Db {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const db = new Database(databaseFile(dataDir));
  db.pragma('journal_mode = WAL');
  // Migrations commit with SQLite's own fsync; the writer takes over durability after them.
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  db.pragma('cache_size = -65536'); // 64 MiB page cache
  migrate(db);
  // From here on: WAL fsynced by the writer off the loop; checkpoints by the checkpointer.
  db.pragma('synchronous = NORMAL');
  db.pragma('wal_autocheckpoint = 0');
  return db;
}

export function migrate(db: Db, dir = SCHEMA_DIR): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
  const applied = new Set(
    db.prepare('SELECT version FROM schema_migrations').pluck().all() as number[],
  );
  const files = readdirSync(dir)
    .filter((f) => /^\d+_.*\.sql$/.test(f))
    .sort();
  for (const file of files) {
    const version = Number.parseInt(file, 10);
    if (applied.has(version)) continue;
    const sql = readFileSync(join(dir, file), 'utf8');
    db.transaction(() => {
      db.exec(sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
        version,
        file,
        Date.now(),
      );
    }).immediate();
  }
}
