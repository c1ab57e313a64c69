/**
 * Reading and trimming the log. Free functions taking db first.
 *
 * 1. A page, the tenant's head and its trim mark come from ONE statement, so one snapshot:
 *    every event on the page is at or below the head, and retention cannot slip between
 *    reading the trim mark and reading the page (no false 410, no silent gap).
 * 2. Positions are committed in order within a tenant (append.ts, invariant 3), so a page that
 *    ends at p can be followed by "after p" without ever skipping a later-committed lower one.
 * 3. A page bounded by bytes (store.ts ReadRequest) is cut inside the statement: the sizes come
 *    from octet_length(data), which reads the stored length without detoasting, and only the
 *    rows that fit are detoasted and sent, so the gateway never holds more than the bound
 *    (or one event, when the first is larger).
 * 4. Retention removes, per batch, the oldest events older than the cutoff in (time, tenant,
 *    pos) order; since time never decreases along a tenant's positions, that is a prefix of each
 *    tenant's log, and the tenant's trim mark moves to the highest removed position in the
 *    same transaction. One node trims at a time (a transaction-scoped advisory lock, tried,
 *    never waited for), and tenant rows are locked in the same sorted order as appends.
 */
import { sql } from 'kysely';
import type { Page, ReadRequest } from '../store.ts';
import type { Db } from './db.ts';

/** "pollgate:trim" as a key of its own (the migration lock is another). */
export const TRIM_LOCK = 0x70677472696dn;

export async function readPage(db: Db, tenant: string, afterPos: number, limit: number, maxBytes?: number): Promise<Page> {
  return (await readPages(db, [{ tenant, afterPos, limit, maxBytes }]))[0]!;
}

/** No byte bound: larger than any page. */
const UNBOUNDED = Number.MAX_SAFE_INTEGER;

/** A row of a page read: the tenant's head and trim mark, and one event (null when none is left). */
interface PageRow {
  head: number;
  trimmed: number;
  seen: number | null;
  pos: number | null;
  id: string | null;
  type: string | null;
  time: number | null;
  data: string | null;
}

/**
 * Several tenants' pages in ONE statement (one snapshot, one round trip): a wake-up hint that
 * moved 1,000 tenants costs one query, not 1,000. Each page is cut at its byte bound (3.):
 * `upto` is the running size of the page, `seen` how many rows the limit let through.
 */
export async function readPages(db: Db, reads: ReadonlyArray<ReadRequest>): Promise<Page[]> {
  if (reads.length === 0) return [];
  const { rows } = await sql<PageRow & { i: number }>`SELECT w.i, coalesce(t.head_pos, 0) AS head, coalesce(t.trimmed_pos, 0) AS trimmed,
            e.seen, e.pos, e.id, e.type, e.time, e.data
     FROM unnest(${reads.map((r) => r.tenant)}::text[], ${reads.map((r) => r.afterPos)}::bigint[],
                 ${reads.map((r) => r.limit)}::integer[], ${reads.map((r) => r.maxBytes ?? UNBOUNDED)}::bigint[])
          WITH ORDINALITY AS w (tenant, after_pos, lim, max_bytes, i)
     LEFT JOIN tenants AS t ON t.tenant = w.tenant
     LEFT JOIN LATERAL (
       SELECT s.seen, s.pos, s.id, s.type, s.time, s.data
       FROM (
         SELECT pos, id, type, time, data,
                row_number() OVER o AS n, sum(octet_length(data)) OVER o AS upto, count(*) OVER () AS seen
         FROM (SELECT pos, id, type, time, data FROM events
               WHERE events.tenant = w.tenant AND events.pos > w.after_pos
               ORDER BY pos LIMIT w.lim) AS l
         WINDOW o AS (ORDER BY pos)
       ) AS s
       WHERE s.n = 1 OR s.upto <= w.max_bytes
     ) AS e ON true
     ORDER BY w.i, e.pos`.execute(db);
  const pages: Page[] = reads.map(() => ({ records: [], head: 0, trimmedThrough: 0 }));
  for (const r of rows) {
    const page = pages[r.i - 1]!;
    page.head = r.head;
    page.trimmedThrough = r.trimmed;
    if (r.pos === null) continue;
    page.records.push({ pos: r.pos, id: r.id!, tenant: reads[r.i - 1]!.tenant, type: r.type!, time: r.time!, data: r.data! });
    if (page.records.length < r.seen!) page.cut = true;
    else delete page.cut;
  }
  return pages;
}

/**
 * A tenant's events before beforePos, newest first (the ops page's event browser), cut at its
 * byte bound inside the statement and read with the head and trim mark in one snapshot, as
 * readPages does forwards (1. and 3. above).
 */
export async function readPageBefore(db: Db, tenant: string, beforePos: number, limit: number, maxBytes?: number): Promise<Page> {
  const { rows } = await sql<PageRow>`SELECT coalesce(t.head_pos, 0) AS head, coalesce(t.trimmed_pos, 0) AS trimmed,
            e.seen, e.pos, e.id, e.type, e.time, e.data
     FROM (SELECT ${tenant}::text AS tenant) AS q
     LEFT JOIN tenants AS t ON t.tenant = q.tenant
     LEFT JOIN LATERAL (
       SELECT s.seen, s.pos, s.id, s.type, s.time, s.data
       FROM (
         SELECT pos, id, type, time, data,
                row_number() OVER o AS n, sum(octet_length(data)) OVER o AS upto, count(*) OVER () AS seen
         FROM (SELECT pos, id, type, time, data FROM events
               WHERE events.tenant = q.tenant AND events.pos < ${beforePos}::bigint
               ORDER BY pos DESC LIMIT ${limit}::integer) AS l
         WINDOW o AS (ORDER BY pos DESC)
       ) AS s
       WHERE s.n = 1 OR s.upto <= ${maxBytes ?? UNBOUNDED}::bigint
     ) AS e ON true
     ORDER BY e.pos DESC`.execute(db);
  const page: Page = { records: [], head: rows[0]?.head ?? 0, trimmedThrough: rows[0]?.trimmed ?? 0 };
  for (const r of rows) {
    if (r.pos === null) continue;
    page.records.push({ pos: r.pos, id: r.id!, tenant, type: r.type!, time: r.time!, data: r.data! });
    if (page.records.length < r.seen!) page.cut = true;
    else delete page.cut;
  }
  return page;
}

export async function headOf(db: Db, tenant: string): Promise<number> {
  const row = await db.selectFrom('tenants').select('head_pos').where('tenant', '=', tenant).executeTakeFirst();
  return row?.head_pos ?? 0;
}

export async function headsOf(db: Db, tenants: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (tenants.length === 0) return out;
  const rows = await db
    .selectFrom('tenants')
    .select(['tenant', 'head_pos'])
    .where('tenant', '=', sql<string>`ANY(${tenants}::text[])`)
    .execute();
  for (const r of rows) out.set(r.tenant, r.head_pos);
  return out;
}

export async function trimmedThroughOf(db: Db, tenant: string): Promise<number> {
  const row = await db.selectFrom('tenants').select('trimmed_pos').where('tenant', '=', tenant).executeTakeFirst();
  return row?.trimmed_pos ?? 0;
}

/** The position just before the tenant's first event at or after time; its head if none (index events_tenant_time). */
export async function positionBeforeTime(db: Db, tenant: string, time: number): Promise<number> {
  const { rows } = await sql<{ pos: number }>`SELECT coalesce(
       (SELECT pos - 1 FROM events WHERE tenant = ${tenant} AND time >= ${time}::bigint ORDER BY time, pos LIMIT 1),
       (SELECT head_pos FROM tenants WHERE tenant = ${tenant}),
       0) AS pos`.execute(db);
  return rows[0]?.pos ?? 0;
}

/**
 * A cursor issued before positions were per tenant (a global seq of an embedded deployment
 * moved here by `pollgate migrate`), as a position of the tenant. Past the last seq that
 * deployment issued (setting legacy_head_seq; none: 0) it names nothing: null. Behind the
 * legacy trim mark it lands behind the trim mark (so it reads as expired); otherwise it is
 * the last migrated event at or before that seq, or the trim mark when there is none.
 */
export async function translateLegacy(db: Db, tenant: string, seq: number): Promise<number | null> {
  const { rows } = await sql<{ pos: number | null }>`SELECT CASE
       WHEN ${seq}::bigint > coalesce(
         (SELECT value::bigint FROM settings WHERE key = 'legacy_head_seq' AND value ~ '^[0-9]{1,18}$'), 0)
         THEN NULL
       WHEN t.tenant IS NULL THEN 0
       WHEN ${seq}::bigint < t.legacy_trimmed_seq THEN GREATEST(0, t.trimmed_pos - 1)
       ELSE coalesce(
         (SELECT e.pos FROM events AS e
          WHERE e.tenant = t.tenant AND e.legacy_seq IS NOT NULL AND e.legacy_seq <= ${seq}::bigint
          ORDER BY e.legacy_seq DESC LIMIT 1),
         t.trimmed_pos)
     END AS pos
     FROM (SELECT ${tenant}::text AS tenant) AS q
     LEFT JOIN tenants AS t ON t.tenant = q.tenant`.execute(db);
  return rows[0]?.pos ?? null;
}

/** Events ever appended, all tenants together: the sum of the heads (trims do not lower a head). */
export async function appendedTotal(db: Db): Promise<number> {
  const { rows } = await sql<{ total: number }>`SELECT coalesce(sum(head_pos), 0)::bigint AS total FROM tenants`.execute(db);
  return rows[0]?.total ?? 0;
}

/** One retention batch (see 4.); answers the larger of the events and attempt records removed. 0 when another node is trimming. */
export async function trimOnce(db: Db, cutoff: number, batch: number, lockTimeoutMs: number): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const { rows: got } = await sql<{ got: boolean }>`SELECT pg_try_advisory_xact_lock(${TRIM_LOCK.toString()}::bigint) AS got,
        set_config('lock_timeout', ${`${lockTimeoutMs}ms`}, true)`.execute(trx);
    if (!got[0]?.got) return 0;

    // Which prefix of each tenant goes: read first, without locks.
    // legacy: the highest seq of an embedded deployment's events among them (older cursors
    // behind it read as expired, see translateLegacy).
    const { rows: marks } = await sql<{ tenant: string; through: number; legacy: number | null }>`
      SELECT tenant, max(pos) AS through, max(legacy_seq) AS legacy FROM (
        SELECT tenant, pos, legacy_seq FROM events WHERE time < ${cutoff}::bigint
        ORDER BY time, tenant, pos LIMIT ${batch}::integer
      ) AS doomed
      GROUP BY tenant ORDER BY tenant COLLATE "C"`.execute(trx);

    let removed = 0;
    if (marks.length > 0) {
      const tenants = marks.map((m) => m.tenant);
      const throughs = marks.map((m) => m.through);
      const legacies = marks.map((m) => m.legacy ?? 0);
      // Lock the head rows in the appends' order (sorted, "C") before deleting anything: an
      // append that re-uses the id of an event being removed then waits for us, never the
      // other way round, so the two cannot deadlock.
      await sql`SELECT 1 FROM tenants WHERE tenant = ANY(${tenants}::text[])
        ORDER BY tenant COLLATE "C" FOR UPDATE`.execute(trx);
      const { rows } = await sql<{ removed: number }>`
        WITH marks AS (
          SELECT * FROM unnest(${tenants}::text[], ${throughs}::bigint[], ${legacies}::bigint[]) AS m (tenant, through, legacy)
        ), moved AS (
          UPDATE tenants AS t SET trimmed_pos = GREATEST(t.trimmed_pos, m.through),
            legacy_trimmed_seq = GREATEST(t.legacy_trimmed_seq, m.legacy)
          FROM marks AS m WHERE t.tenant = m.tenant
        ), gone AS (
          DELETE FROM events AS e USING marks AS m
          WHERE e.tenant = m.tenant AND e.pos <= m.through
          RETURNING 1
        )
        SELECT count(*) AS removed FROM gone`.execute(trx);
      removed = rows[0]?.removed ?? 0;
    }

    const attempts = await sql`DELETE FROM deliveries WHERE id IN (
        SELECT id FROM deliveries WHERE at < ${cutoff}::bigint ORDER BY id LIMIT ${batch}::integer)`.execute(trx);
    return Math.max(removed, Number(attempts.numAffectedRows ?? 0n));
  });
}
