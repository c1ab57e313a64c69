/**
 * PostgreSQL for the engine rows: a fresh database per measured deployment on the local server
 * (BENCH_POSTGRES_URL, default the machine's trust-auth postgres user), dropped afterwards.
 * Created with psql, so the bench needs no driver of its own.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export const POSTGRES_URL = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

function psql(sql: string): { ok: boolean; error: string } {
  const r = spawnSync('psql', [POSTGRES_URL, '-v', 'ON_ERROR_STOP=1', '-qAtc', sql], { encoding: 'utf8', timeout: 30_000 });
  return { ok: r.status === 0, error: (r.stderr || r.error?.message || '').trim().split('\n')[0] ?? '' };
}

/** Why PostgreSQL rows cannot run here, or null when they can. */
export function postgresUnavailable(): string | null {
  const r = psql('SELECT 1');
  return r.ok ? null : `PostgreSQL not reachable at ${POSTGRES_URL.replace(/\/\/[^@/]*@/, '//')}: ${r.error}`;
}

export interface BenchDatabase {
  url: string;
  drop(): void;
}

export function createDatabase(prefix: string): BenchDatabase {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  const made = psql(`CREATE DATABASE "${name}"`);
  if (!made.ok) throw new Error(`CREATE DATABASE ${name}: ${made.error}`);
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => void psql(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`) };
}
