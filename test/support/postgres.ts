/**
 * PostgreSQL for tests: whether a server answers, and a fresh database per test file (or
 * test), dropped afterwards. The server is POLLGATE_TEST_POSTGRES_URL, or the local default
 * (trust auth, user postgres). Tests that need it skip with a clear message when it is absent.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const TEST_POSTGRES_URL = process.env.POLLGATE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** Why PostgreSQL tests skip, for { skip: … } (they skip only when no server answers). */
export const POSTGRES_UNAVAILABLE = `PostgreSQL is not reachable at ${TEST_POSTGRES_URL.replace(/\/\/[^@/]*@/, '//')} (set POLLGATE_TEST_POSTGRES_URL)`;

let available: Promise<boolean> | undefined;

/** True when the test server answers within 2 s (asked once per process). */
export function postgresAvailable(): Promise<boolean> {
  return (available ??= (async () => {
    const client = new pg.Client({ connectionString: TEST_POSTGRES_URL, connectionTimeoutMillis: 2_000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('SELECT 1');
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => {});
    }
  })());
}

/** A URL with the database part replaced. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: TEST_POSTGRES_URL, connectionTimeoutMillis: 5_000 });
  client.on('error', () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** CREATE DATABASE with a random name; drop() removes it (WITH FORCE: open sessions are ended). */
export async function createTestDatabase(prefix = 'pollgate_test'): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `${prefix.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${randomBytes(6).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE "${name}"`));
  let dropped = false;
  return {
    url: withDatabase(TEST_POSTGRES_URL, name),
    async drop() {
      if (dropped) return;
      dropped = true;
      await admin((c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    },
  };
}
