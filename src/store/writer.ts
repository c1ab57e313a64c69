/**
 * The single writer: every change to the database goes through here, and concurrent
 * changes are group-committed.
 *
 * 1. write(fn) queues fn and schedules a flush for the end of the current event-loop turn,
 *    so every request parsed in that turn lands in the same transaction.
 * 2. A flush opens one IMMEDIATE transaction and runs each queued fn in its own savepoint:
 *    a fn that throws rolls back only its own changes (a batch stays all-or-nothing) and
 *    its caller gets the error; the others go on.
 * 3. COMMIT writes the group to the WAL without waiting for the disk (synchronous=NORMAL,
 *    see db.ts). The group then waits for an fdatasync of the WAL file, run on libuv's
 *    thread pool so the event loop keeps serving requests meanwhile. One fdatasync covers
 *    every group committed before it started: while one runs, the next groups commit and
 *    share the following one.
 * 4. Only once a group is on disk are its afterCommit hooks run (the log head moves,
 *    readers are told) and its callers' promises resolved, in commit order: no answer and
 *    no reader ever sees a write that a crash could still take back.
 * 5. If COMMIT fails (disk full, I/O error) every fn of the group is rejected and nothing
 *    of the group is visible. If an fdatasync fails, the kernel may already have dropped
 *    the unsynced pages, so nothing written since can be vouched for: the writer refuses
 *    every later write and reports itself broken (readiness fails) until restarted.
 */
import { closeSync, fdatasync, openSync } from 'node:fs';
import type { Db } from './db.ts';
import { ApiError } from '../errors.ts';

interface Job {
  fn: (db: Db) => unknown;
  afterCommit: ((value: unknown) => void) | undefined;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

export interface Writer {
  /**
   * Runs fn in the next group transaction. Resolves with its result once committed;
   * afterCommit runs synchronously right after COMMIT, before any caller resumes.
   */
  write<T>(fn: (db: Db) => T, afterCommit?: (value: T) => void): Promise<T>;
  /** Commits what is queued and waits for it to be on disk, then refuses new writes. */
  close(): Promise<void>;
  /** An fdatasync failed: nothing is accepted any more (see 5. above). */
  readonly broken: boolean;
  /** Number of transactions committed and jobs they carried (for metrics and benches). */
  readonly stats: { commits: number; jobs: number };
}

/** Bounds one transaction so a flood of writers cannot make one commit arbitrarily long. */
const MAX_JOBS_PER_GROUP = 4096;

interface Committed {
  group: Job[];
  outcomes: Outcome[];
}
type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

export interface WriterOptions {
  /** The WAL file to fdatasync after each commit (db.ts: `${databaseFile}-wal`). */
  walFile: string;
  onCommit?: (jobs: number, seconds: number) => void;
  /** An fdatasync failed; the writer is now broken. */
  onBroken?: (error: unknown) => void;
}

export function createWriter(db: Db, opts: WriterOptions): Writer {
  let queue: Job[] = [];
  let scheduled = false;
  let closed = false;
  let broken: unknown = null;
  let idle: (() => void) | null = null;
  const stats = { commits: 0, jobs: 0 };
  const st = {
    begin: db.prepare('BEGIN IMMEDIATE'),
    commit: db.prepare('COMMIT'),
    savepoint: db.prepare('SAVEPOINT job'),
    release: db.prepare('RELEASE job'),
    rollbackTo: db.prepare('ROLLBACK TO job'),
  };

  // Committed groups waiting for the disk, oldest first, and the fdatasync in flight.
  let unsynced: Committed[] = [];
  let syncing = false;
  let walFd: number | null = null;

  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(flush);
  };

  function flush(): void {
    scheduled = false;
    const group = queue.length > MAX_JOBS_PER_GROUP ? queue.splice(0, MAX_JOBS_PER_GROUP) : queue;
    if (group === queue) queue = [];
    if (queue.length > 0) schedule();

    const outcomes: Outcome[] = [];
    const started = performance.now();
    try {
      st.begin.run();
      for (const job of group) {
        st.savepoint.run();
        try {
          const value = job.fn(db);
          st.release.run();
          outcomes.push({ ok: true, value });
        } catch (error) {
          st.rollbackTo.run();
          st.release.run();
          outcomes.push({ ok: false, error });
        }
      }
      st.commit.run();
    } catch (error) {
      if (db.inTransaction) db.exec('ROLLBACK');
      const failure = new ApiError('unavailable', 'the database could not commit; nothing was written');
      failure.cause = error;
      for (const job of group) job.reject(failure);
      finish();
      return;
    }
    stats.commits += 1;
    stats.jobs += group.length;
    opts.onCommit?.(group.length, (performance.now() - started) / 1000);
    unsynced.push({ group, outcomes });
    sync();
  }

  /** Starts an fdatasync covering every group committed so far, unless one is running. */
  function sync(): void {
    if (syncing || unsynced.length === 0) return;
    syncing = true;
    const covered = unsynced;
    unsynced = [];
    walFd ??= openSync(opts.walFile, 'r');
    fdatasync(walFd, (error) => {
      syncing = false;
      if (error) {
        broken = error;
        opts.onBroken?.(error);
        const failure = new ApiError('unavailable', 'the database could not write to disk; the server needs a restart');
        failure.cause = error;
        for (const c of [...covered, ...unsynced]) for (const job of c.group) job.reject(failure);
        unsynced = [];
        for (const job of queue.splice(0)) job.reject(failure);
      } else {
        for (const c of covered) settle(c);
      }
      sync();
      finish();
    });
  }

  function settle({ group, outcomes }: Committed): void {
    group.forEach((job, i) => {
      const outcome = outcomes[i]!;
      if (!outcome.ok) return job.reject(outcome.error);
      try {
        job.afterCommit?.(outcome.value);
      } finally {
        job.resolve(outcome.value);
      }
    });
  }

  function finish(): void {
    if (!scheduled && queue.length === 0 && !syncing && unsynced.length === 0 && idle) {
      if (walFd !== null) closeSync(walFd);
      walFd = null;
      idle();
      idle = null;
    }
  }

  return {
    stats,
    get broken() {
      return broken !== null;
    },
    write<T>(fn: (db: Db) => T, afterCommit?: (value: T) => void): Promise<T> {
      if (broken !== null) return Promise.reject(new ApiError('unavailable', 'the database could not write to disk; the server needs a restart'));
      if (closed) return Promise.reject(new ApiError('shutting_down', 'the server is shutting down'));
      return new Promise<T>((resolve, reject) => {
        queue.push({
          fn,
          afterCommit: afterCommit as ((value: unknown) => void) | undefined,
          resolve: resolve as (value: unknown) => void,
          reject,
        });
        schedule();
      });
    },
    close(): Promise<void> {
      closed = true;
      return new Promise((resolve) => {
        idle = resolve;
        finish();
      });
    },
  };
}
