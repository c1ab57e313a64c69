/**
 * The append-only log: appending (inside a writer transaction), reading a tenant's events
 * after a position, trim marks, and the in-memory head.
 *
 * Invariants:
 * 1. seq strictly increases and is never reused (AUTOINCREMENT); cursors name seqs.
 * 2. time never decreases along seq (the commit time is max(now, previous time)), which lets
 *    "first event at or after T" be a binary search and retention delete a prefix.
 * 3. head is the newest committed seq; it moves only after COMMIT (see Log.committed), so a
 *    reader never hands out a cursor past what is durable.
 * 4. A tenant's trim mark is the highest seq retention removed for it; a read position
 *    below it has lost events.
 */
import type { Db } from './db.ts';
import { encodeCursor } from './cursor.ts';

/** One stored event as the log hands it around; data stays serialized JSON text. */
export interface EventRecord {
  seq: number;
  id: string;
  tenant: string;
  type: string;
  time: number;
  data: string;
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

/**
 * The envelope exactly as clients see it on the poll and the push path. Remembered on the
 * record: a commit's records go to the producer's answer, every poll they wake and the push
 * bridge, and fan-out to 1,000 polls should not build one 1,000 times.
 */
export function envelopeJson(e: EventRecord): string {
  // id, type and tenant are validated to JSON-safe character sets on the way in.
  return (e.envelope ??= `{"id":"${e.id}","cursor":"${encodeCursor(e.seq)}","type":"${e.type}","tenant":"${e.tenant}","time":"${new Date(e.time).toISOString()}","data":${e.data}}`);
}

export interface Log {
  readonly db: Db;
  /** Newest committed seq (0 for an empty log). */
  head(): number;
  /** Inside a writer transaction: append events, mapping duplicate ids to their originals. */
  append(events: NewEvent[], now: number, makeId: () => string): Appended[];
  /** After COMMIT: the new events become visible to cursors handed out. */
  committed(records: EventRecord[]): void;
  /** A tenant's events after seq, oldest first. */
  readAfter(tenant: string, afterSeq: number, limit: number): EventRecord[];
  /** The highest removed seq of the tenant (0 if retention never removed any). */
  trimmedThrough(tenant: string): number;
  /** The position just before the first event committed at or after time (head if none). */
  positionBeforeTime(time: number): number;
  /** Events of the tenant after seq (the lag of a consumer whose cursor is seq). */
  countAfter(tenant: string, afterSeq: number): number;
  /** Inside a writer transaction: remove up to batch of the oldest events older than cutoff. */
  trimOlderThan(cutoff: number, batch: number): { removed: number; marks: Map<string, number> };
  /** After COMMIT of a trim. */
  trimmed(marks: Map<string, number>): void;
}

export function createLog(db: Db): Log {
  const st = {
    insert: db.prepare(
      'INSERT INTO events (id, tenant, type, time, data) VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant, id) DO NOTHING',
    ),
    byTenantId: db.prepare('SELECT seq, id, tenant, type, time, data FROM events WHERE tenant = ? AND id = ?'),
    readAfter: db.prepare(
      'SELECT seq, id, tenant, type, time, data FROM events INDEXED BY events_tenant_seq WHERE tenant = ? AND seq > ? ORDER BY seq LIMIT ?',
    ),
    trim: db.prepare('SELECT trimmed_through FROM tenant_trims WHERE tenant = ?').pluck(),
    timeAtOrAfter: db.prepare('SELECT seq, time FROM events WHERE seq >= ? ORDER BY seq LIMIT 1'),
    countAfter: db
      .prepare('SELECT count(*) FROM events INDEXED BY events_tenant_seq WHERE tenant = ? AND seq > ?')
      .pluck(),
    oldest: db.prepare('SELECT seq, time FROM events ORDER BY seq LIMIT ?'),
    trimTenants: db.prepare('SELECT tenant, max(seq) AS through FROM events WHERE seq <= ? GROUP BY tenant'),
    upsertTrim: db.prepare(
      'INSERT INTO tenant_trims (tenant, trimmed_through) VALUES (?, ?) ON CONFLICT (tenant) DO UPDATE SET trimmed_through = max(trimmed_through, excluded.trimmed_through)',
    ),
    deleteThrough: db.prepare('DELETE FROM events WHERE seq <= ?'),
  };

  // The head survives deletes: sqlite_sequence remembers the highest seq ever assigned.
  let head = (db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'events'").pluck().get() as number | undefined) ?? 0;
  let lastTime =
    (db.prepare('SELECT time FROM events ORDER BY seq DESC LIMIT 1').pluck().get() as number | undefined) ?? 0;
  const trims = new Map<string, number>();

  return {
    db,
    head: () => head,

    append(events, now, makeId) {
      const out: Appended[] = [];
      for (const e of events) {
        const id = e.id ?? makeId();
        const time = Math.max(now, lastTime);
        const info = st.insert.run(id, e.tenant, e.type, time, e.data);
        if (info.changes === 1) {
          lastTime = time;
          out.push({ record: { seq: Number(info.lastInsertRowid), id, tenant: e.tenant, type: e.type, time, data: e.data }, duplicate: false });
        } else {
          out.push({ record: st.byTenantId.get(e.tenant, id) as EventRecord, duplicate: true });
        }
      }
      return out;
    },

    committed(records) {
      for (const r of records) if (r.seq > head) head = r.seq;
    },

    readAfter(tenant, afterSeq, limit) {
      return st.readAfter.all(tenant, afterSeq, limit) as EventRecord[];
    },

    trimmedThrough(tenant) {
      let mark = trims.get(tenant);
      if (mark === undefined) {
        mark = (st.trim.get(tenant) as number | undefined) ?? 0;
        trims.set(tenant, mark);
      }
      return mark;
    },

    positionBeforeTime(time) {
      // Binary search for the smallest m whose first event at or after seq m has time >= T;
      // monotone because time never decreases along seq (invariant 2).
      const firstFrom = (m: number) => st.timeAtOrAfter.get(m) as { seq: number; time: number } | undefined;
      let lo = 1;
      let hi = head + 1;
      while (lo < hi) {
        const mid = Math.floor((lo + hi) / 2);
        const row = firstFrom(mid);
        if (!row || row.time >= time) hi = mid;
        else lo = row.seq + 1;
      }
      const first = lo <= head ? firstFrom(lo) : undefined;
      return first ? first.seq - 1 : head;
    },

    countAfter(tenant, afterSeq) {
      return st.countAfter.get(tenant, afterSeq) as number;
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
      for (const t of st.trimTenants.all(through) as Array<{ tenant: string; through: number }>) {
        st.upsertTrim.run(t.tenant, t.through);
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
