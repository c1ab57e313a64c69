/**
 * EXPERIMENT (POLLGATE_EXPERIMENT_WRITER_THREAD=1, appends only): the group commit of
 * appends in a worker thread with its own write connection, so the event loop never waits
 * for an INSERT or an fsync. Appends of one event-loop turn go to the thread as one message;
 * the thread runs them as one transaction (a savepoint per multi-event job), COMMITs
 * (synchronous=FULL) and answers; only then are the callers resolved.
 *
 * Not a finished engine: only plain appends go here, every other write still uses the main
 * connection's writer (the two take turns on SQLite's write lock).
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { ApiError } from '../../errors.ts';
import type { Appended, EventRecord, NewEvent } from '../store.ts';

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.pragma('busy_timeout = 5000');
db.pragma('cache_size = -65536');
db.pragma('wal_autocheckpoint = 0');
const st = {
  begin: db.prepare('BEGIN IMMEDIATE'),
  commit: db.prepare('COMMIT'),
  savepoint: db.prepare('SAVEPOINT job'),
  release: db.prepare('RELEASE job'),
  rollbackTo: db.prepare('ROLLBACK TO job'),
  insert: db.prepare('INSERT INTO events (pos, id, tenant, type, time, data) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, id) DO NOTHING'),
  byTenantId: db.prepare('SELECT pos, id, tenant, type, time, data FROM events WHERE tenant = ? AND id = ?'),
  tenant: db.prepare('SELECT head_pos, last_time FROM tenants WHERE tenant = ?'),
  saveTenant: db.prepare('INSERT INTO tenants (tenant, head_pos, last_time, trimmed_pos, legacy_trimmed_seq) VALUES (?, ?, ?, 0, 0) ON CONFLICT (tenant) DO UPDATE SET head_pos = excluded.head_pos, last_time = excluded.last_time'),
};
const committed = new Map();
const state = (t) => {
  let s = committed.get(t);
  if (!s) { const r = st.tenant.get(t); s = { head: r ? r.head_pos : 0, last: r ? r.last_time : 0 }; committed.set(t, s); }
  return s;
};
parentPort.on('message', (m) => {
  if (m === 'stop') { db.close(); parentPort.close(); return; }
  const pending = new Map();
  const results = [];
  try {
    st.begin.run();
    for (const job of m.jobs) {
      const atomic = job.length === 1;
      const undo = new Map();
      if (!atomic) st.savepoint.run();
      try {
        const out = [];
        for (const [tenant, type, id, data] of job) {
          let s = pending.get(tenant);
          if (!undo.has(tenant)) undo.set(tenant, s && { head: s.head, last: s.last });
          if (!s) { const c = state(tenant); s = { head: c.head, last: c.last }; pending.set(tenant, s); }
          const pos = s.head + 1;
          const time = m.now > s.last ? m.now : s.last;
          if (st.insert.run(pos, id, tenant, type, time, data).changes === 1) { s.head = pos; s.last = time; out.push([pos, time]); }
          else out.push(st.byTenantId.get(tenant, id));
        }
        if (!atomic) st.release.run();
        results.push({ ok: true, out });
      } catch (error) {
        if (!db.inTransaction) throw error;
        if (!atomic) { st.rollbackTo.run(); st.release.run(); }
        for (const [t, before] of undo) { if (before) pending.set(t, before); else pending.delete(t); }
        results.push({ ok: false, error: String(error && error.message || error), code: error && error.code });
      }
    }
    for (const [t, s] of pending) { const c = state(t); if (s.head !== c.head || s.last !== c.last) st.saveTenant.run(t, s.head, s.last); }
    const t0 = performance.now();
    st.commit.run();
    for (const [t, s] of pending) committed.set(t, s);
    parentPort.postMessage({ seq: m.seq, results, commitMs: performance.now() - t0 });
  } catch (error) {
    if (db.inTransaction) db.exec('ROLLBACK');
    parentPort.postMessage({ seq: m.seq, failed: String(error && error.message || error), code: error && error.code });
  }
});
`;

interface Call {
  events: NewEvent[];
  resolve: (appended: Appended[]) => void;
  reject: (error: unknown) => void;
}

type JobResult = { ok: true; out: Array<[number, number] | EventRecord> } | { ok: false; error: string; code?: string };
type Reply = { seq: number; results: JobResult[]; commitMs: number } | { seq: number; failed: string; code?: string };

export interface AppendThread {
  append(events: NewEvent[], now: number): Promise<Appended[]>;
  close(): Promise<void>;
}

export function startAppendThread(
  file: string,
  hooks: { onCommitted(records: EventRecord[]): void; onCommit?: ((jobs: number, seconds: number) => void) | undefined },
): AppendThread {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { file, driver } });
  let queue: Call[] = [];
  let now = 0;
  let scheduled = false;
  let seq = 0;
  const inFlight = new Map<number, { calls: Call[]; now: number; sent: number }>();
  let idle: (() => void) | null = null;

  worker.on('message', (reply: Reply) => {
    const group = inFlight.get(reply.seq)!;
    inFlight.delete(reply.seq);
    if ('failed' in reply) {
      const failure = new ApiError('unavailable', 'the database could not commit; nothing was written');
      failure.cause = reply.failed;
      for (const c of group.calls) c.reject(failure);
    } else {
      hooks.onCommit?.(group.calls.length, (performance.now() - group.sent) / 1000);
      const fresh: EventRecord[] = [];
      const answers: Array<Appended[] | Error> = group.calls.map((call, i) => {
        const r = reply.results[i]!;
        if (!r.ok) return new Error(r.error);
        return r.out.map((o, k) => {
          const e = call.events[k]!;
          if (Array.isArray(o)) {
            const record: EventRecord = { pos: o[0], id: e.id!, tenant: e.tenant, type: e.type, time: o[1], data: e.data };
            fresh.push(record);
            return { record, duplicate: false };
          }
          return { record: o, duplicate: true };
        });
      });
      hooks.onCommitted(fresh); // heads move before any caller resumes
      group.calls.forEach((call, i) => {
        const a = answers[i]!;
        if (a instanceof Error) call.reject(a);
        else call.resolve(a);
      });
    }
    if (inFlight.size === 0 && queue.length === 0 && idle) idle();
  });

  function flush(): void {
    scheduled = false;
    // One group in flight at a time: the next waits for its answer (and grows meanwhile).
    if (inFlight.size > 0 || queue.length === 0) return;
    const calls = queue;
    queue = [];
    seq += 1;
    inFlight.set(seq, { calls, now, sent: performance.now() });
    worker.postMessage({ seq, now, jobs: calls.map((c) => c.events.map((e) => [e.tenant, e.type, e.id, e.data])) });
  }
  worker.on('message', () => {
    if (queue.length > 0) flush();
  });

  return {
    append(events, at) {
      return new Promise((resolve, reject) => {
        queue.push({ events, resolve, reject });
        now = Math.max(now, at);
        if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
      });
    },
    async close() {
      if (inFlight.size > 0 || queue.length > 0) await new Promise<void>((r) => (idle = r));
      worker.postMessage('stop');
      await new Promise((r) => worker.once('exit', r));
    },
  };
}
