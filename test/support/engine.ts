/**
 * Which engine the suite runs against: SQLite (default) or, with POLLGATE_TEST_ENGINE=postgres,
 * PostgreSQL. Every data directory a test makes gets its own fresh database on PostgreSQL, so
 * gateways stay as independent as their SQLite files, and a restart on the same data directory
 * finds the same database. The databases are dropped when the test process exits.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { TEST_POSTGRES_URL, withDatabase } from './postgres.ts';

export const TEST_ENGINE: 'sqlite' | 'postgres' = process.env.POLLGATE_TEST_ENGINE === 'postgres' ? 'postgres' : 'sqlite';

/** For { skip } on tests of the embedded engine only. */
export const SQLITE_ONLY = TEST_ENGINE === 'postgres' ? 'tests the embedded SQLite engine' : false;
export const POSTGRES_ONLY = TEST_ENGINE === 'postgres' ? false : 'runs in the PostgreSQL suite (POLLGATE_TEST_ENGINE=postgres)';

const created = new Map<string, string>();

function psql(sql: string): void {
  execFileSync('psql', [TEST_POSTGRES_URL, '-v', 'ON_ERROR_STOP=1', '-q', '-c', sql], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** The database URL for a data directory (PostgreSQL suite), created on first use; undefined for SQLite. */
export function databaseUrlFor(dataDir: string): string | undefined {
  if (TEST_ENGINE !== 'postgres') return undefined;
  let url = created.get(dataDir);
  if (!url) {
    const name = `pollgate_t_${createHash('sha256').update(`${process.pid}:${dataDir}`).digest('hex').slice(0, 16)}`;
    psql(`CREATE DATABASE "${name}"`);
    url = withDatabase(TEST_POSTGRES_URL, name);
    created.set(dataDir, url);
  }
  return url;
}

process.once('exit', () => {
  for (const url of created.values()) {
    try {
      psql(`DROP DATABASE IF EXISTS "${new URL(url).pathname.slice(1)}" WITH (FORCE)`);
    } catch {
      // Left behind; the name says it is a test database.
    }
  }
});
