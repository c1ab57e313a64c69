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


export interface WebhooksTable {
  consumer_id: string;
  url: string;
  method: string;
  headers: string;
  secret: string;
  timeout_ms: number;
  enabled: number;
  attempt: number;
  first_failure_at: number | null;
  next_attempt_at: number | null;
  last_success_at: number | null;
  last_error: string | null;
  last_status: number | null;
  consecutive_failures: number;
  disabled_reason: string | null;
  created_at: number;
  updated_at: number;
}

export interface DeliveriesTable {
  id: Generated<number>;
  consumer_id: string;
  event_id: string;
  seq: number;
  attempt: number;
  status: number | null;
  error: string | null;
  duration_ms: number;
  at: number;
  next_attempt_at: number | null;
}

export interface SettingsTable {
  key: string;
  value: string;
}

export interface Database {
  events: EventsTable;
  tenant_trims: TenantTrimsTable;
  consumers: ConsumersTable;
  webhooks: WebhooksTable;
  deliveries: DeliveriesTable;
  settings: SettingsTable;
}
