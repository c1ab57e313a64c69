/** Row types of the tables in schema/, for the Kysely query builder. */
import type { Generated } from 'kysely';

export interface EventsTable {
  seq: Generated<number>;
  id: string;
  tenant: string;
  type: string;
  time: number;
  data: string;
}

export interface TenantTrimsTable {
  tenant: string;
  trimmed_through: number;
}

export interface ConsumersTable {
  id: string;
  tenant: string;
  name: string | null;
  filter: string | null;
  cursor: number;
  key_id: string;
  key_hash: Buffer;
  created_at: number;
  updated_at: number;
}

export interface Database {
  events: EventsTable;
  tenant_trims: TenantTrimsTable;
  consumers: ConsumersTable;
}
