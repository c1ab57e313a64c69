/**
 * The typed query builder over the pool: Kysely's PostgresDialect on the tables of
 * store/tables.ts, plus the tables only this engine has (leases, nodes, migrations) and the
 * columns only it has (legacy_seq of migrated events, poll_held_until). Ordinary queries are written here once,
 * typed; raw SQL is kept for what is PostgreSQL's own (the append, locks, snapshots).
 */
import { Kysely, PostgresDialect, type Transaction } from 'kysely';
import type { Pool } from 'pg';
import type { ConsumersTable, Database, EventsTable } from '../tables.ts';

export interface PushLeasesTable {
  consumer_id: string;
  /** NULL: free. */
  owner: string | null;
  /** Grows with every claim while the consumer exists: the fence of progress writes. */
  epoch: number;
  expires_at: Date;
}

export interface NodesTable {
  node_id: string;
  seen_at: Date;
}

export interface SchemaMigrationsTable {
  version: number;
  name: string;
  applied_at: Date;
}

export interface PgDatabase extends Omit<Database, 'events' | 'consumers'> {
  events: EventsTable & { legacy_seq: number | null };
  /** poll_held_until: see held-polls.ts. */
  consumers: ConsumersTable & { poll_held_until: number | null };
  push_leases: PushLeasesTable;
  nodes: NodesTable;
  schema_migrations: SchemaMigrationsTable;
}

export type Db = Kysely<PgDatabase>;
export type Tx = Transaction<PgDatabase>;

export function createDb(pool: Pool): Db {
  return new Kysely<PgDatabase>({ dialect: new PostgresDialect({ pool }) });
}
