/**
 * How an append becomes durable and visible on PostgreSQL (SCALE-OUT §1).
 *
 * 1. Group commit per node: append() calls made in one event-loop turn are queued and flushed
 *    together at setImmediate (at most MAX_CALLS calls / about MAX_EVENTS events per group),
 *    so a burst of publishes costs one statement and one commit, not one each.
 * 2. A group is ONE autocommit statement: pollgate_append(group jsonb) (schema/postgres/0001),
 *    so no application round trip happens while a tenant lock is held; its implicit
 *    transaction commits before the server answers, and the callers' promises resolve only
 *    after that answer: nothing is acknowledged before it is durable.
 * 3. Inside, the tenants of the group are locked in sorted order (two groups on different
 *    nodes never deadlock): the tenant's head row is created if missing (INSERT … ON CONFLICT
 *    DO NOTHING) and locked (SELECT … FOR UPDATE). Positions are drawn only then, as head + n,
 *    from the head row itself (no sequence). A later appender of the tenant waits for the lock,
 *    and PostgreSQL makes a commit visible before it releases the locks, so commit order is
 *    position order: a reader that has seen position p has seen every position below p.
 * 4. time = GREATEST(now, the tenant's last time), under the same lock: time never decreases
 *    along a tenant's positions, whatever the nodes' clocks say.
 * 5. An id already in the tenant's log, or earlier in the same group, stores nothing and maps to
 *    the original row (ON CONFLICT (tenant, id) DO NOTHING, then the original is read).
 * 6. lock_timeout (SET LOCAL, inside the statement) turns a tenant stuck behind a stalled writer
 *    into a 503 instead of a pile-up. A group that fails rejects every call in it with ApiError
 *    unavailable; nothing of it is visible (it is one transaction).
 * 7. A call carrying alongside.progress (rare: the push bridge giving up on a webhook) runs in a
 *    transaction of its own: the lease is checked and locked first (fencing: wrong owner or
 *    epoch rejects with LeaseLost, writing nothing), the progress is written, and the append
 *    runs last, so the tenant lock is held only across the COMMIT round trip.
 * 8. After COMMIT, never inside it, the new heads are announced to other nodes (signals.ts):
 *    one coalesced NOTIFY per turn. This node's own polls are woken by the caller, at once.
 */
import { sql } from 'kysely';
import type { Logger } from 'pino';
import { ApiError } from '../../errors.ts';
import type { Alongside, Appended, NewEvent, Signals } from '../store.ts';
import { LeaseLost } from '../store.ts';
import type { Db } from './db.ts';
import { writeProgress } from './webhooks.ts';
import { shuttingDown, translate } from './pool.ts';

/** Calls per group: bounds one statement so a flood of writers cannot make one commit arbitrarily long. */
const MAX_CALLS = 4096;
/** Events per group (a group always takes at least one call, whatever its size). */
const MAX_EVENTS = 20_000;

/** One element of the group as the SQL function reads it. */
interface GroupEvent {
  t: string;
  y: string;
  i: string;
  d: string;
  n: number;
}

interface Row {
  k: number;
  r_pos: number;
  r_id: string;
  r_time: number;
  r_duplicate: boolean;
  r_type: string | null;
  r_data: string | null;
}

interface Call {
  events: NewEvent[];
  ids: string[];
  now: number;
  resolve: (value: Appended[]) => void;
  reject: (error: unknown) => void;
}

export interface Appender {
  append(events: NewEvent[], now: number, alongside?: Alongside): Promise<Appended[]>;
  /** Commits what is queued, then refuses new appends. */
  close(): Promise<void>;
}

export function createAppender(deps: {
  db: Db;
  nodeId: string;
  logger: Logger;
  signals: Pick<Signals, 'announceHeads'> | null;
  /** Groups in flight at once (each holds one pool connection while it runs). */
  maxInFlight: number;
  lockTimeoutMs: number;
  onCommit?: ((jobs: number, seconds: number) => void) | undefined;
}): Appender {
  const { db, nodeId, signals, lockTimeoutMs } = deps;
  let queue: Call[] = [];
  let scheduled = false;
  let inFlight = 0;
  let closed = false;
  const idle: Array<() => void> = [];

  function schedule(): void {
    if (scheduled) return;
    scheduled = true;
    setImmediate(flush);
  }

  function flush(): void {
    scheduled = false;
    while (queue.length > 0 && inFlight < deps.maxInFlight) {
      let calls = 0;
      let events = 0;
      while (calls < queue.length && calls < MAX_CALLS && (calls === 0 || events + queue[calls]!.events.length <= MAX_EVENTS)) {
        events += queue[calls]!.events.length;
        calls += 1;
      }
      const group = queue.splice(0, calls);
      inFlight += 1;
      void commitGroup(group).finally(() => {
        inFlight -= 1;
        if (queue.length > 0) schedule();
        else settleIdle();
      });
    }
  }

  function settleIdle(): void {
    if (queue.length === 0 && inFlight === 0 && !scheduled) for (const fn of idle.splice(0)) fn();
  }

  async function commitGroup(group: Call[]): Promise<void> {
    const flat: GroupEvent[] = [];
    for (const call of group) {
      call.events.forEach((e, j) => flat.push({ t: e.tenant, y: e.type, i: call.ids[j]!, d: e.data, n: call.now }));
    }
    const started = performance.now();
    let rows: Row[];
    try {
      rows = await runAppend(db, flat, lockTimeoutMs);
    } catch (error) {
      const failure = translate(error);
      const reason =
        failure instanceof ApiError && failure.code === 'unavailable'
          ? failure
          : Object.assign(new ApiError('unavailable', 'the database could not commit; nothing was written'), { cause: error });
      deps.logger.warn({ err: error, calls: group.length }, 'postgres: an append group failed');
      for (const call of group) call.reject(reason);
      return;
    }
    deps.onCommit?.(group.length, (performance.now() - started) / 1000);
    let results: Appended[];
    try {
      results = toAppended(rows, flat);
    } catch (error) {
      for (const call of group) call.reject(error);
      return;
    }
    announce(results);
    let offset = 0;
    for (const call of group) {
      call.resolve(results.slice(offset, offset + call.events.length));
      offset += call.events.length;
    }
  }

  async function commitWithProgress(events: NewEvent[], ids: string[], now: number, alongside: Alongside): Promise<Appended[]> {
    const progress = alongside.progress!;
    const flat = events.map((e, j) => ({ t: e.tenant, y: e.type, i: ids[j]!, d: e.data, n: now }));
    const started = performance.now();
    let rows: Row[];
    try {
      rows = await db.transaction().execute(async (trx) => {
        if (!(await writeProgress(trx, nodeId, progress, progress.at ?? now))) {
          throw new LeaseLost(`the lease of consumer ${progress.consumerId} moved on (epoch ${progress.epoch})`);
        }
        return flat.length > 0 ? runAppend(trx, flat, lockTimeoutMs) : [];
      });
    } catch (error) {
      throw translate(error);
    }
    deps.onCommit?.(1, (performance.now() - started) / 1000);
    const results = toAppended(rows, flat);
    announce(results);
    return results;
  }

  function announce(results: Appended[]): void {
    if (!signals) return;
    const heads = new Map<string, number>();
    for (const { record, duplicate } of results) {
      if (!duplicate && record.pos > (heads.get(record.tenant) ?? 0)) heads.set(record.tenant, record.pos);
    }
    if (heads.size > 0) signals.announceHeads(heads);
  }

  return {
    append(events, now, alongside) {
      if (closed) return Promise.reject(shuttingDown());
      // The publisher names every event (evt_… for those the producer did not): an id is the
      // idempotency key, so the engine never makes one up.
      const ids: string[] = [];
      for (const e of events) {
        if (e.id === undefined) return Promise.reject(new TypeError('append: every event needs an id (the publisher assigns them)'));
        ids.push(e.id);
      }
      if (alongside?.progress) return commitWithProgress(events, ids, now, alongside);
      if (events.length === 0) return Promise.resolve([]);
      return new Promise<Appended[]>((resolve, reject) => {
        queue.push({ events, ids, now, resolve, reject });
        schedule();
      });
    },
    close() {
      closed = true;
      return new Promise<void>((resolve) => {
        idle.push(resolve);
        settleIdle();
      });
    },
  };
}

/** The one statement of a group (or of a fenced call, inside its transaction). */
async function runAppend(db: Db, flat: GroupEvent[], lockTimeoutMs: number): Promise<Row[]> {
  const result = await sql<Row>`SELECT k, r_pos, r_id, r_time, r_duplicate, r_type, r_data
    FROM pollgate_append(${JSON.stringify(flat)}::jsonb, ${lockTimeoutMs}::integer)`.execute(db);
  return result.rows;
}

/** Rows (in lock order) back to the order of the group, as records. */
function toAppended(rows: Row[], flat: GroupEvent[]): Appended[] {
  const out = new Array<Appended>(flat.length);
  for (const row of rows) {
    const e = flat[row.k - 1]!;
    out[row.k - 1] = {
      record: {
        pos: row.r_pos,
        id: row.r_id,
        tenant: e.t,
        type: row.r_duplicate ? row.r_type! : e.y,
        time: row.r_time,
        data: row.r_duplicate ? row.r_data! : e.d,
      },
      duplicate: row.r_duplicate,
    };
  }
  for (let i = 0; i < out.length; i++) {
    if (!out[i]) throw new Error(`pollgate_append answered no row for event ${i + 1} of ${out.length}`);
  }
  return out;
}
