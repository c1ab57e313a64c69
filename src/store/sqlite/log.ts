/**
 * The SQLite log: how an append becomes durable and visible on the embedded engine.
 *
 * 1. Every append runs inside the single writer's group transaction (writer.ts): one
 *    process, one connection, so appends are serialized and a tenant's positions are drawn
 *    in commit order without any lock of ours.
 * 2. A tenant's position is head_pos + 1 from its tenants row, which the same job updates;
 *    positions are dense (1, 2, 3, …) and never reused, since the row is never deleted.
 * 3. time never decreases along a tenant's positions: max(now, last_time).
 * 4. The committed heads (and last times) and trim marks are cached in memory and moved only
 *    after COMMIT (groupEnded(true), trimmed()), so a reader never sees a position that is not
 *    durable. The cache is coherent because one process owns the data directory (lock.ts).
 * 6. A group's appends move the tenants rows once per tenant, just before COMMIT
 *    (writeHeads), not once per job: the positions drawn meanwhile live in `pending`. A job
 *    whose savepoint rolls back gives back what it drew (beginJob/undoJob), so a batch stays
 *    all or nothing; a single event is one INSERT, which fails whole or not at all.
 * 5. The global seq (rowid, AUTOINCREMENT) is commit order; retention removes the oldest
 *    seqs, which is a prefix of every tenant's log.
 */
import type { Db } from './db.ts';
import { dataBytes, type Appended, type EventRecord, type NewEvent, type Page } from '../store.ts';

interface TenantState {
  head: number;
  lastTime: number;
}

export interface SqliteLog {
  /** Inside a writer transaction: appends, mapping duplicate ids to their originals. */
  append(events: NewEvent[], now: number): Appended[];
  /** A writer job starts: what it draws from here on can be given back by undoJob. */
  beginJob(): void;
  /** The job failed (its savepoint rolled back): give back the positions it drew. */
  undoJob(): void;
  /** Inside the group transaction, before COMMIT: one tenants row write per tenant appended to. */
  writeHeads(): void;
  /** The group ended: committed, its heads become visible; else what it drew is forgotten. */
  groupEnded(committed: boolean): void;
  /** maxBytes: see store.ts ReadRequest; rows are stepped one by one, so reading stops there. */
  read(tenant: string, afterPos: number, limit: number, maxBytes?: number): Page;
  /** Newest first, before beforePos; bounded like read. */
  readBefore(tenant: string, beforePos: number, limit: number, maxBytes?: number): Page;
  head(tenant: string): number;
  trimmedThrough(tenant: string): number;
  positionBeforeTime(tenant: string, time: number): number;
  translateLegacy(tenant: string, seq: number): number | null;
  /** Inside a writer transaction: remove up to batch of the oldest events older than cutoff. */
  trimOlderThan(cutoff: number, batch: number): { removed: number; marks: Map<string, number> };
  /** After COMMIT of a trim. */
  trimmed(marks: Map<string, number>): void;
}

export function createSqliteLog(db: Db): SqliteLog {
  const st = {
    insert: db.prepare(
      'INSERT INTO events (pos, id, tenant, type, time, data) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, id) DO NOTHING',
    ),
    byTenantId: db.prepare('SELECT pos, id, tenant, type, time, data FROM events WHERE tenant = ? AND id = ?'),
    tenant: db.prepare('SELECT head_pos, last_time, trimmed_pos, legacy_trimmed_seq FROM tenants WHERE tenant = ?'),
    saveTenant: db.prepare(
      `INSERT INTO tenants (tenant, head_pos, last_time, trimmed_pos, legacy_trimmed_seq) VALUES (?, ?, ?, 0, 0)
       ON CONFLICT (tenant) DO UPDATE SET head_pos = excluded.head_pos, last_time = excluded.last_time`,
    ),
    readAfter: db.prepare(
      'SELECT pos, id, tenant, type, time, data FROM events WHERE tenant = ? AND pos > ? ORDER BY pos LIMIT ?',
    ),
    readBefore: db.prepare(
      'SELECT pos, id, tenant, type, time, data FROM events WHERE tenant = ? AND pos < ? ORDER BY pos DESC LIMIT ?',
    ),
    firstFrom: db.prepare('SELECT pos, time FROM events WHERE tenant = ? AND pos >= ? ORDER BY pos LIMIT 1'),
    seqAt: db.prepare('SELECT seq FROM events WHERE tenant = ? AND pos = ?').pluck(),
    oldest: db.prepare('SELECT seq, time FROM events ORDER BY seq LIMIT ?'),
    trimTenants: db.prepare('SELECT tenant, max(pos) AS through, max(seq) AS seq FROM events WHERE seq <= ? GROUP BY tenant'),
    raiseTrim: db.prepare(
      'UPDATE tenants SET trimmed_pos = max(trimmed_pos, ?), legacy_trimmed_seq = max(legacy_trimmed_seq, ?) WHERE tenant = ?',
    ),
    deleteThrough: db.prepare('DELETE FROM events WHERE seq <= ?'),
  };

  interface Row {
    head_pos: number;
    last_time: number;
    trimmed_pos: number;
    legacy_trimmed_seq: number;
  }
  const stored = (tenant: string) => st.tenant.get(tenant) as Row | undefined;

  const legacyHead = Number(
    (db.prepare("SELECT value FROM settings WHERE key = 'legacy_head_seq'").pluck().get() as string | undefined) ?? 0,
  );
  /** Committed state per tenant (what the tenants row says), loaded on first use. */
  const heads = new Map<string, TenantState>();
  const trims = new Map<string, number>();
  /** What the open transaction has drawn, per tenant; written by writeHeads, dropped at the group's end. */
  const pending = new Map<string, TenantState>();
  /** The pending state of each tenant before the running job first touched it (undefined: none). */
  const undo = new Map<string, TenantState | undefined>();

  const committedState = (tenant: string): TenantState => {
    let s = heads.get(tenant);
    if (s === undefined) {
      const row = stored(tenant);
      s = { head: row?.head_pos ?? 0, lastTime: row?.last_time ?? 0 };
      heads.set(tenant, s);
    }
    return s;
  };

  /** The tenant's state for the running job to move: pending, or a fresh copy of the committed one. */
  function draw(tenant: string): TenantState {
    let s = pending.get(tenant);
    if (!undo.has(tenant)) undo.set(tenant, s && { head: s.head, lastTime: s.lastTime });
    if (!s) {
      const c = committedState(tenant);
      s = { head: c.head, lastTime: c.lastTime };
      pending.set(tenant, s);
    }
    return s;
  }

  const head = (tenant: string): number => committedState(tenant).head;

  const trimmedThrough = (tenant: string): number => {
    let t = trims.get(tenant);
    if (t === undefined) {
      t = stored(tenant)?.trimmed_pos ?? 0;
      trims.set(tenant, t);
    }
    return t;
  };

  /** Rows of one statement (either direction), stopped at maxBytes once one row is in. */
  function boundedPage(tenant: string, statement: typeof st.readAfter, pos: number, limit: number, maxBytes: number | undefined): Page {
    const page: Page = { records: [], head: head(tenant), trimmedThrough: trimmedThrough(tenant) };
    if (maxBytes === undefined) {
      page.records = statement.all(tenant, pos, limit) as EventRecord[];
      return page;
    }
    let bytes = 0;
    for (const r of statement.iterate(tenant, pos, limit) as IterableIterator<EventRecord>) {
      const size = dataBytes(r);
      if (page.records.length > 0 && bytes + size > maxBytes) {
        page.cut = true;
        break; // ends the statement: no further row is read
      }
      bytes += size;
      page.records.push(r);
    }
    return page;
  }

  return {
    append(events, now) {
      const out: Appended[] = new Array(events.length);
      for (let i = 0; i < events.length; i++) {
        const e = events[i]!;
        const id = e.id!;
        const state = draw(e.tenant);
        const pos = state.head + 1;
        const time = now > state.lastTime ? now : state.lastTime;
        if (st.insert.run(pos, id, e.tenant, e.type, time, e.data).changes === 1) {
          // Moved only once the row is in: an INSERT that throws leaves the state as it was.
          state.head = pos;
          state.lastTime = time;
          out[i] = { record: { pos, id, tenant: e.tenant, type: e.type, time, data: e.data }, duplicate: false };
        } else {
          out[i] = { record: st.byTenantId.get(e.tenant, id) as EventRecord, duplicate: true };
        }
      }
      return out;
    },

    beginJob() {
      undo.clear();
    },

    undoJob() {
      for (const [tenant, before] of undo) {
        if (before) pending.set(tenant, before);
        else pending.delete(tenant);
      }
      undo.clear();
    },

    writeHeads() {
      for (const [tenant, s] of pending) {
        const c = committedState(tenant);
        if (s.head !== c.head || s.lastTime !== c.lastTime) st.saveTenant.run(tenant, s.head, s.lastTime);
      }
    },

    groupEnded(committed) {
      if (committed) for (const [tenant, s] of pending) heads.set(tenant, s);
      pending.clear();
      undo.clear();
    },

    read(tenant, afterPos, limit, maxBytes) {
      return boundedPage(tenant, st.readAfter, afterPos, limit, maxBytes);
    },

    readBefore(tenant, beforePos, limit, maxBytes) {
      return boundedPage(tenant, st.readBefore, beforePos, limit, maxBytes);
    },

    head,
    trimmedThrough,

    positionBeforeTime(tenant, time) {
      // Binary search for the smallest m whose first event at or after position m has
      // time >= T; monotone because time never decreases along positions (3. above).
      const firstFrom = (m: number) => st.firstFrom.get(tenant, m) as { pos: number; time: number } | undefined;
      const top = head(tenant);
      let lo = trimmedThrough(tenant) + 1;
      let hi = top + 1;
      while (lo < hi) {
        const mid = Math.floor((lo + hi) / 2);
        const row = firstFrom(mid);
        if (!row || row.time >= time) hi = mid;
        else lo = row.pos + 1;
      }
      const first = lo <= top ? firstFrom(lo) : undefined;
      return first ? first.pos - 1 : top;
    },

    translateLegacy(tenant, seq) {
      // A global seq from before positions were per tenant: the position of the tenant's
      // newest event at or before it. seq and pos rise together within a tenant, so a binary
      // search over the retained positions finds it.
      if (seq > legacyHead) return null;
      const row = stored(tenant);
      if (!row) return 0;
      if (seq < row.legacy_trimmed_seq) return Math.max(0, row.trimmed_pos - 1);
      let lo = row.trimmed_pos; // answer candidate: no retained event at or before seq
      let hi = row.head_pos;
      while (lo < hi) {
        const mid = Math.ceil((lo + hi) / 2);
        const at = st.seqAt.get(tenant, mid) as number | undefined;
        if (at !== undefined && at <= seq) lo = mid;
        else hi = mid - 1;
      }
      return lo;
    },

    trimOlderThan(cutoff, batch) {
      const rows = st.oldest.all(batch) as Array<{ seq: number; time: number }>;
      let through = 0;
      for (const r of rows) {
        if (r.time >= cutoff) break;
        through = r.seq;
      }
      const marks = new Map<string, number>();
      if (through === 0) return { removed: 0, marks };
      for (const t of st.trimTenants.all(through) as Array<{ tenant: string; through: number; seq: number }>) {
        // The old trim mark too (a seq), so that older cursors behind removed events read as expired.
        st.raiseTrim.run(t.through, t.seq, t.tenant);
        marks.set(t.tenant, t.through);
      }
      const removed = st.deleteThrough.run(through).changes;
      return { removed, marks };
    },

    trimmed(marks) {
      for (const [tenant, through] of marks) {
        trims.set(tenant, Math.max(through, trims.get(tenant) ?? 0));
      }
    },
  };
}
