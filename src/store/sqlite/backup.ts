/**
 * Backing up and restoring an embedded deployment, one file each way.
 *
 * 1. A backup is taken online with SQLite's backup API from a read-only connection while the
 *    server runs (it copies a consistent snapshot, page by page, without stopping writers).
 * 2. The copy is one self-contained file (rollback journal mode, no -wal beside it) and carries
 *    the generated admin key, so a restore keeps the key every script and operator already uses.
 *    The file therefore holds secrets (webhook secrets, the admin key): it is written 0600.
 * 3. It is written under a temporary name and renamed when complete: a file at the target
 *    path is always a whole backup. An existing target is never overwritten.
 * 4. A restore goes only into a directory without a database or an admin key, holding the data
 *    directory's lock while it works (no server can start on it halfway), and checks the file
 *    before it puts anything in place.
 */
import Database from 'better-sqlite3';
import { chmodSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync, closeSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { databaseFile } from './db.ts';
import { lockDataDir } from './lock.ts';

/** The settings row that carries the admin key inside a backup file (removed on restore). */
const ADMIN_KEY_SETTING = 'backup_admin_key';

export class BackupRefused extends Error {
  override name = 'BackupRefused';
}

export interface BackupSummary {
  bytes: number;
  events: number;
  tenants: number;
  consumers: number;
  webhooks: number;
  adminKey: boolean;
}

function summary(db: Database.Database, file: string, adminKey: boolean): BackupSummary {
  const count = (table: string) => Number(db.prepare(`SELECT count(*) FROM ${table}`).pluck().get());
  return {
    bytes: statSync(file).size,
    events: count('events'),
    tenants: count('tenants'),
    consumers: count('consumers'),
    webhooks: count('webhooks'),
    adminKey,
  };
}

function checkIntact(db: Database.Database, what: string): void {
  const result = db.pragma('quick_check', { simple: true });
  if (result !== 'ok') throw new BackupRefused(`${what} is damaged (quick_check: ${String(result)})`);
  const tables = new Set(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[]);
  for (const t of ['events', 'tenants', 'consumers', 'webhooks', 'settings']) {
    if (!tables.has(t)) throw new BackupRefused(`${what} is not a pollgate database (no ${t} table)`);
  }
}

export async function backupDataDir(dataDir: string, to: string, onProgress?: (copiedPages: number, totalPages: number) => void): Promise<BackupSummary> {
  const source = databaseFile(dataDir);
  if (!existsSync(source)) throw new BackupRefused(`no pollgate database in ${dataDir} (expected ${source})`);
  if (existsSync(to)) throw new BackupRefused(`${to} exists already; choose a new file (a backup never overwrites)`);
  const partial = `${to}.partial-${process.pid}`;
  try {
    // 0600 before the first page is written: the copy holds secrets.
    closeSync(openSync(partial, 'wx', 0o600));
    const src = new Database(source, { readonly: true, fileMustExist: true });
    try {
      await src.backup(partial, {
        progress: ({ totalPages, remainingPages }) => {
          onProgress?.(totalPages - remainingPages, totalPages);
          return 1000; // pages per step: writers get a turn in between
        },
      });
    } finally {
      src.close();
    }
    const adminKeyFile = join(dataDir, 'admin.key');
    const adminKey = existsSync(adminKeyFile) ? readFileSync(adminKeyFile, 'utf8').trim() : '';
    const copy = new Database(partial);
    let result: BackupSummary;
    try {
      copy.pragma('journal_mode = DELETE'); // one self-contained file
      checkIntact(copy, 'the copy');
      if (adminKey) copy.prepare('INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)').run(ADMIN_KEY_SETTING, adminKey);
      result = summary(copy, partial, adminKey !== '');
    } finally {
      copy.close();
    }
    chmodSync(partial, 0o600);
    renameSync(partial, to);
    result.bytes = statSync(to).size;
    return result;
  } catch (error) {
    rmSync(partial, { force: true });
    rmSync(`${partial}-journal`, { force: true });
    throw error;
  }
}

export function restoreDataDir(from: string, dataDir: string): BackupSummary {
  if (!existsSync(from)) throw new BackupRefused(`no backup file ${from}`);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const target = databaseFile(dataDir);
  const keyFile = join(dataDir, 'admin.key');
  const lock = lockDataDir(dataDir); // refuses while a server runs on it; no server starts meanwhile
  const partial = `${target}.partial-${process.pid}`;
  try {
    for (const f of [target, `${target}-wal`, keyFile]) {
      if (existsSync(f)) throw new BackupRefused(`${dataDir} already holds ${f}; restore into a new, empty data directory (or move it aside)`);
    }
    closeSync(openSync(partial, 'wx', 0o600));
    copyFileSync(from, partial);
    const db = new Database(partial);
    let adminKey: string | undefined;
    let result: BackupSummary;
    try {
      checkIntact(db, `the backup ${from}`);
      adminKey = db.prepare('SELECT value FROM settings WHERE key = ?').pluck().get(ADMIN_KEY_SETTING) as string | undefined;
      db.prepare('DELETE FROM settings WHERE key = ?').run(ADMIN_KEY_SETTING); // not left in a live database
      result = summary(db, partial, adminKey !== undefined);
    } finally {
      db.close();
    }
    if (adminKey !== undefined) {
      const fd = openSync(keyFile, 'wx', 0o600);
      try {
        writeSync(fd, `${adminKey}\n`);
      } finally {
        closeSync(fd);
      }
    }
    renameSync(partial, target);
    return result;
  } catch (error) {
    rmSync(partial, { force: true });
    rmSync(`${partial}-journal`, { force: true });
    throw error;
  } finally {
    lock.release();
  }
}
