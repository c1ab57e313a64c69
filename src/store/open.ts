/**
 * Picks the engine: PostgreSQL when a database URL is configured (any number of nodes),
 * otherwise SQLite in the data directory (one embedded process).
 */
import type { Store, StoreOptions } from './store.ts';

export async function openStore(
  where: { dataDir: string; databaseUrl: string | undefined; databasePoolSize: number },
  opts: StoreOptions,
): Promise<Store> {
  if (where.databaseUrl) {
    const { openPostgresStore } = await import('./postgres/index.ts');
    return openPostgresStore(where.databaseUrl, { ...opts, poolSize: where.databasePoolSize });
  }
  const { openSqliteStore } = await import('./sqlite/index.ts');
  return openSqliteStore(where.dataDir, opts);
}
