/**
 * One process per data directory. Two processes on one SQLite file would each keep their own
 * heads, hub and bridge: a publish on one would not wake a poll held on the other, and both
 * would push the same webhooks. So the first process takes an exclusive SQLite lock on a small
 * lock file and keeps it until it closes (or dies: the operating system drops the lock with
 * the process, so a crash never leaves a stale lock behind).
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { ownerOnly } from './db.ts';

export class DataDirInUse extends Error {
  override name = 'DataDirInUse';
}

export interface DataDirLock {
  release(): void;
}

export function lockDataDir(dataDir: string): DataDirLock {
  const file = join(dataDir, 'pollgate.lock');
  ownerOnly(file);
  const db = new Database(file, { timeout: 0 });
  try {
    // EXCLUSIVE locking mode keeps the lock taken by the first write until the connection closes.
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER)');
    db.exec('BEGIN EXCLUSIVE; DELETE FROM holder; COMMIT');
  } catch (error) {
    db.close();
    if ((error as { code?: string }).code?.startsWith('SQLITE_BUSY')) {
      throw new DataDirInUse(
        `another pollgate process is using the data directory ${dataDir} (it holds ${file}); ` +
          'stop it first, or give this one its own --data-dir. To run several nodes, use PostgreSQL (POLLGATE_DATABASE_URL).',
      );
    }
    throw error;
  }
  return { release: () => db.close() };
}
