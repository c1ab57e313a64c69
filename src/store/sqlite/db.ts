/**
 * Opens the SQLite database and brings its schema up to date.
 *
 * Durability: WAL with synchronous=FULL, so a COMMIT returns only after the WAL is fsynced;
 * a publish is acknowledged after that (see writer.ts). Checkpoints (copying the WAL into
 * the database file, with two more fsyncs) never run inside a COMMIT: a worker thread does
 * them (checkpointer.ts). Migrations are the numbered files in schema/, applied
 * forward-only, each in one transaction with its bookkeeping row.
 */
import Database from 'better-sqlite3';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export type Db = Database.Database;

const SCHEMA_DIR = fileURLToPath(new URL('../../../schema/sqlite/', import.meta.url));

export const databaseFile = (dataDir: string): string => join(dataDir, 'pollgate.db');

export function openDatabase(dataDir: string): Db {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = databaseFile(dataDir);
  ownerOnly(file);
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  db.pragma('cache_size = -65536'); // 64 MiB page cache
  migrate(db);
  // Checkpoints run in the checkpointer's thread, never inside a COMMIT on the event loop.
  db.pragma('wal_autocheckpoint = 0');
  return db;
}

/**
 * Makes a SQLite file readable by its owner only, before SQLite opens it: the database holds
 * webhook secrets, and a data directory that already exists (made by an operator, 0755) gives
 * no protection. SQLite creates the -wal and -shm files with the database file's mode, so a
 * file created here 0600 keeps its companions 0600; files left 0644 by an older version are
 * tightened, companions included.
 */
export function ownerOnly(file: string): void {
  if (existsSync(file)) {
    for (const f of [file, `${file}-wal`, `${file}-shm`, `${file}-journal`]) {
      if (existsSync(f)) chmodSync(f, 0o600);
    }
    return;
  }
  // An empty file is an empty database to SQLite. 'wx': never truncate one made meanwhile.
  try {
    closeSync(openSync(file, 'wx', 0o600));
  } catch (error) {
    if ((error as { code?: string }).code !== 'EEXIST') throw error;
    chmodSync(file, 0o600);
  }
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
