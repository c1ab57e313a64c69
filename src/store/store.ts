/**
 * The store boundary: everything the gateway keeps durably, behind one interface with two
 * engines (store/sqlite: one embedded process; store/postgres: any number of nodes on one
 * database). Nothing outside store/ imports an engine or a driver.
 *
 * Terminology
 * - position (pos): an event's place in its own tenant's log, 1, 2, 3, … with no gaps while
 *   events are retained; 0 is "before the first event". A cursor names a position.
 * - head: the tenant's newest committed position. Lag is head - cursor.
 * - trim mark: the highest position retention removed for a tenant; a read position behind
 *   it has lost events (410).
 *
 * Contract every engine keeps (tested against both in test/):
 * 1. append() resolves only after COMMIT is durable; a call's events commit all or nothing,
 *    with their `alongside` changes. Within a tenant, positions are drawn under the tenant's
 *    lock, so commit order is position order: a reader that has seen position p has seen
 *    every position below p.
 * 2. time never decreases along a tenant's positions.
 * 3. A committed cursor moves forward only through ackCursor/recordProgress and is set only
 *    by setCursor (seek); never past the tenant's head.
 * 4. Progress writes of the push bridge carry a lease epoch and change nothing when the
 *    lease has moved on (fencing).
 */
import type { ConsumersTable, DeliveriesTable, EventsTable, WebhooksTable } from './tables.ts';

/** One stored event as the gateway hands it around (data stays serialized JSON text). */
export interface EventRecord extends EventsTable {
  /** The envelope JSON, remembered by envelopeJson() on first use. */
  envelope?: string;
}

export interface NewEvent {
  tenant: string;
  type: string;
  id: string | undefined;
  /** Serialized JSON. */
  data: string;
}

export interface Appended {
  record: EventRecord;
  /** True when the id was already in the tenant's log: nothing new was stored. */
  duplicate: boolean;
}

export type ConsumerRow = ConsumersTable;
export type WebhookRow = WebhooksTable;
export type DeliveryRow = Omit<DeliveriesTable, 'id'> & { id: number };
export type DeliveryInput = Omit<DeliveryRow, 'id'>;

/** The retry and health fields of a webhook that the bridge updates. */
export type WebhookState = Partial<
  Pick<
    WebhookRow,
    | 'enabled'
    | 'attempt'
    | 'first_failure_at'
    | 'next_attempt_at'
    | 'last_success_at'
    | 'last_error'
    | 'last_status'
    | 'consecutive_failures'
    | 'alert_state'
    | 'disabled_reason'
  >
>;

/** A page of one tenant's log and where the log stood when it was read. */
export interface Page {
  records: EventRecord[];
  head: number;
  trimmedThrough: number;
  /** Set when the read stopped at its byte bound before its limit: more records may follow. */
  cut?: true;
}

/**
 * The size a read counts for an event: the UTF-8 bytes of its stored `data` JSON text (what
 * PostgreSQL's octet_length() says without detoasting), not a re-serialization.
 */
export function dataBytes(record: { data: string }): number {
  return Buffer.byteLength(record.data);
}

/** One tenant's read: at most `limit` events after `afterPos`, and about `maxBytes` of data. */
export interface ReadRequest {
  tenant: string;
  afterPos: number;
  limit: number;
  /**
   * Stop before the event that would take the page's dataBytes() past this (absent: no byte
   * bound). The first event is returned whatever its size, so a log never gets stuck.
   */
  maxBytes?: number | undefined;
}

/** A push consumer this node delivers, and the epoch that fences its writes. */
export interface Lease {
  consumerId: string;
  epoch: number;
}

/** What the bridge records behind delivery, in one transaction. */
export interface Progress {
  consumerId: string;
  /** The lease epoch; the write is refused (false) when the lease moved on. */
  epoch: number;
  cursor?: number | undefined;
  state?: WebhookState | undefined;
  deliveries?: DeliveryInput[] | undefined;
  /** Clock time of the write, for updated_at (default: now). */
  at?: number | undefined;
}

/** Changes committed in the same transaction as an append (all or nothing with it). */
export interface Alongside {
  /** Fenced like Progress: when the lease moved on, the whole append is refused (LeaseLost). */
  progress?: Progress;
}

export class LeaseLost extends Error {
  override name = 'LeaseLost';
}

/** A poll starting on some node (supersede across nodes). */
export interface PollStart {
  consumerId: string;
  /** Increases with every poll start of the consumer, on every node. */
  generation: number;
}

export interface PollActivity {
  lastPollAt: number | null;
  /** The deadline of a poll held now, on any node; null when none is held. */
  heldUntil: number | null;
}

export interface ConsumerChanges {
  name?: string | null;
  filter?: string | null;
}

/**
 * Hints between the nodes of one deployment (PostgreSQL LISTEN/NOTIFY). A hint may be lost:
 * receivers reconcile against the store on a timer and after every reconnect, so a lost
 * hint costs latency, never an event.
 */
export interface Signals {
  /** After a local commit: these tenants' heads moved. */
  announceHeads(heads: ReadonlyMap<string, number>): void;
  /** After a local poll start (supersede on other nodes). */
  announcePoll(start: PollStart): void;
  /** Handlers; heads and polls announced by other nodes only. */
  onHeads(fn: (heads: Map<string, number>) => void): void;
  onPoll(fn: (start: PollStart) => void): void;
  /** Called after the listening connection (re)connects: hints may have been missed. */
  onReconnect(fn: () => void): void;
  close(): Promise<void>;
}

export interface Store {
  readonly engine: 'sqlite' | 'postgres';
  /** Names this process in leases, node lists and database sessions. */
  readonly nodeId: string;
  /** Hints from other nodes; null for an engine with one node. */
  readonly signals: Signals | null;

  // --- the log ---------------------------------------------------------------------------
  /** Appends, group-committed with other calls; ids already in the tenant's log map to their originals. */
  append(events: NewEvent[], now: number, alongside?: Alongside): Promise<Appended[]>;
  /**
   * A tenant's events after pos, oldest first, with the tenant's head and trim mark read in
   * the same snapshot (so a page can be checked against both without a race with retention).
   * maxBytes bounds the page by size as in ReadRequest; the engine stops reading rows there.
   */
  read(tenant: string, afterPos: number, limit: number, maxBytes?: number): Promise<Page>;
  /**
   * A tenant's events before pos, newest first (the ops page's event browser), with the head
   * and trim mark of the same snapshot; maxBytes bounds the page as in ReadRequest.
   */
  readBefore(tenant: string, beforePos: number, limit: number, maxBytes?: number): Promise<Page>;
  /** Several pages at once (one round trip where the engine can), in the order asked. */
  readMany(reads: ReadonlyArray<ReadRequest>): Promise<Page[]>;
  /** The tenant's newest committed position (0: none yet). */
  head(tenant: string): Promise<number>;
  /** Heads of several tenants (absent: 0). For reconciling held polls. */
  heads(tenants: string[]): Promise<Map<string, number>>;
  /** The highest position retention removed for the tenant (0: none). */
  trimmedThrough(tenant: string): Promise<number>;
  /** The position just before the tenant's first event committed at or after time (its head if none). */
  positionBeforeTime(tenant: string, time: number): Promise<number>;
  /**
   * A cursor issued before positions were per tenant (a global sequence number), as a position
   * of the tenant; null when it lies past the last sequence number ever issued.
   */
  translateLegacy(tenant: string, legacySeq: number): Promise<number | null>;
  /** Events ever appended, all tenants together (the sum of the heads): readiness and metrics. */
  appendedTotal(): Promise<number>;
  /** Removes up to batch of the oldest events (and attempt records) older than cutoff; answers the larger count removed. */
  trimOnce(cutoff: number, batch: number): Promise<number>;

  // --- consumers -------------------------------------------------------------------------
  /** Inserts; ApiError conflict when the tenant already has a consumer of that name. */
  createConsumer(row: ConsumerRow): Promise<void>;
  getConsumer(id: string): Promise<ConsumerRow | undefined>;
  getConsumerByKeyId(keyId: string): Promise<ConsumerRow | undefined>;
  /** A page ordered by id; afterId continues a previous page. */
  listConsumers(opts: { tenant?: string | undefined; afterId?: string | undefined; limit: number }): Promise<ConsumerRow[]>;
  /** ApiError conflict on a taken name; undefined when the consumer does not exist. */
  updateConsumer(id: string, changes: ConsumerChanges, now: number): Promise<ConsumerRow | undefined>;
  /** Moves the cursor forward to pos (never back); answers the committed cursor, undefined if no consumer. */
  ackCursor(id: string, pos: number, now: number): Promise<number | undefined>;
  /** Sets the cursor either way (seek); undefined if no consumer. */
  setCursor(id: string, pos: number, now: number): Promise<ConsumerRow | undefined>;
  setKey(id: string, keyId: string, keyHash: Buffer, now: number): Promise<ConsumerRow | undefined>;
  /** Deletes the consumer, its webhook and its attempt log (its polls held on other nodes end); false if there was none. */
  deleteConsumer(id: string): Promise<boolean>;
  /** Every consumer's id, tenant and lag (head - max(cursor, trim mark): the events it can still read), for metrics. */
  consumerLags(): Promise<Array<{ id: string; tenant: string; lag: number }>>;
  /**
   * A poll starts: bumps the consumer's poll generation and last-poll time (cluster-wide
   * supersede and ops view). Engines with one node may keep this in memory.
   */
  beginPoll(consumerId: string, now: number): Promise<PollStart>;
  /**
   * The consumer changed (seek, filter, key, delete, push mode): polls held for it on any node
   * end (other nodes see a newer generation). Does nothing for a consumer that does not exist.
   */
  endPolls(consumerId: string): Promise<void>;
  /** The generation of consumers' newest polls (for reconciling held polls across nodes). */
  pollGenerations(consumerIds: string[]): Promise<Map<string, number>>;
  /**
   * A poll of this generation is held until heldUntil (ms), or no longer (null): what the ops
   * view shows as `polling`, on every node. Best effort and batched: it is never awaited on a
   * poll's path, and a node that dies leaves its mark until the poll's deadline at most.
   */
  markHeld(start: PollStart, heldUntil: number | null): void;
  /** When the consumer last polled and until when a poll is held for it, on any node (ms). */
  pollActivity(consumerId: string): Promise<PollActivity>;

  // --- webhooks --------------------------------------------------------------------------
  getWebhook(consumerId: string): Promise<WebhookRow | undefined>;
  listEnabledWebhooks(): Promise<WebhookRow[]>;
  /**
   * Read-modify-write of a consumer's webhook in one transaction: build (pure, synchronous)
   * makes the new row from the consumer and the stored webhook. ApiError not_found when the
   * consumer does not exist.
   */
  saveWebhook(
    consumerId: string,
    build: (consumer: ConsumerRow, current: WebhookRow | undefined) => WebhookRow,
  ): Promise<{ row: WebhookRow; previous: WebhookRow | undefined }>;
  deleteWebhook(consumerId: string): Promise<boolean>;
  /** The bridge's record behind delivery; false when fenced out (the lease moved on). */
  recordProgress(progress: Progress): Promise<boolean>;
  /** Newest first; beforeId continues a previous page. */
  listDeliveries(consumerId: string, opts: { limit: number; beforeId?: number | undefined }): Promise<DeliveryRow[]>;

  // --- push ownership ----------------------------------------------------------------------
  /**
   * Renews this node's leases and claims free or expired ones, up to a fair share of the
   * enabled webhooks over the live nodes; answers every lease this node now holds. An engine
   * with one node holds every enabled webhook's consumer with epoch 0.
   */
  claimLeases(ttlMs: number): Promise<Lease[]>;
  /**
   * Revokes the consumer's lease whoever holds it (this node stops, or the consumer changed):
   * the holder's writes are refused from now on; the next claim starts from the current rows.
   */
  releaseLease(consumerId: string): Promise<void>;

  // --- settings ----------------------------------------------------------------------------
  getSetting(key: string): Promise<string | undefined>;
  setSetting(key: string, value: string): Promise<void>;
  /** Stores the value unless the key exists; answers the value now stored (a race between nodes has one winner). */
  setSettingIfAbsent(key: string, value: string): Promise<string>;

  // --- life --------------------------------------------------------------------------------
  /** Resolves when the database answers; rejects otherwise. */
  ping(): Promise<void>;
  /** Commits what is queued, then refuses new writes and closes the connections. */
  close(): Promise<void>;
}

/** What opening either engine takes. */
export interface StoreOptions {
  nodeId: string;
  logger: import('pino').Logger;
  /** After every group commit of appends: how many calls it carried and how long it took. */
  onCommit?: ((jobs: number, seconds: number) => void) | undefined;
}
