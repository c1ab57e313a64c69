/** Row types of the tables in schema/, for the Kysely query builder. */
import type { Generated } from 'kysely';


/**
 * Shared by both engines: times are unix ms, booleans 0/1, JSON as text, so a row reads
 * the same from SQLite and PostgreSQL (bigint columns are parsed to numbers there).
 */
export interface EventsTable {
  /** The position in the tenant's log (dense: 1, 2, 3, …). */
  pos: number;
  id: string;
  tenant: string;
  type: string;
  time: number;
  data: string;
}

/** One row per tenant: the head the append locks, and the trim mark. */
export interface TenantsTable {
  tenant: string;
  head_pos: number;
  /** Time of the newest event: times never decrease along positions. */
  last_time: number;
  /** The highest position retention removed (0: none). */
  trimmed_pos: number;
  /** For cursors issued before positions were per tenant: the highest global seq removed. */
  legacy_trimmed_seq: number;
}

export interface ConsumersTable {
  id: string;
  tenant: string;
  name: string | null;
  filter: string | null;
  cursor: number;
  key_id: string;
  key_hash: Buffer;
  /** Increases at every poll start, on any node (supersede across nodes). */
  poll_generation: number;
  last_poll_at: number | null;
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
  /** How requests are shaped, retried, paced and alerted on: JSON of WebhookOptions (push/shape.ts). */
  options: string;
  /** Endpoint credentials (auth, shared-secret header), write-only: JSON of WebhookCredentials. */
  credentials: string;
  /** Where the failure alerts stand: JSON of AlertState (push/alerts.ts). */
  alert_state: string;
  created_at: number;
  updated_at: number;
}

export interface DeliveriesTable {
  id: Generated<number>;
  consumer_id: string;
  event_id: string;
  pos: number;
  attempt: number;
  status: number | null;
  error: string | null;
  duration_ms: number;
  at: number;
  next_attempt_at: number | null;
  /** The first KiB of the receiver's answer (text), or null. */
  response: string | null;
}

export interface SettingsTable {
  key: string;
  value: string;
}

export interface Database {
  events: EventsTable;
  tenants: TenantsTable;
  consumers: ConsumersTable;
  webhooks: WebhooksTable;
  deliveries: DeliveriesTable;
  settings: SettingsTable;
}
