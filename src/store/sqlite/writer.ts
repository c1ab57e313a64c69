/**
 * The single writer: every change to the database goes through here, and concurrent
 * changes are group-committed.
 *
 * 1. write(fn) queues fn and schedules a flush for the end of the current event-loop turn,
 *    so every request parsed in that turn lands in the same transaction.
 * 2. A flush opens one IMMEDIATE transaction and runs each queued fn in its own savepoint:
 *    a fn that throws rolls back only its own changes (a batch stays all-or-nothing) and
 *    its caller gets the error; the others go on. A job marked `atomic` (it changes the
 *    database in at most one statement, which SQLite undoes whole when it fails) runs without
 *    one: two statements fewer per job, and nothing a savepoint could undo.
 * 3. beforeCommit (the log's tenants rows, once per group) and one COMMIT (one fsync under
 *    synchronous=FULL) then make the whole group durable.
 *    Only after it returns are the afterCommit hooks run and the callers' promises
 *    resolved, so an answer to a client never precedes durability.
 * 4. If COMMIT itself fails (disk full, I/O error) every fn of the group is rejected and
 *    nothing of the group is visible.
 * 5. A fn that fails because of the storage rather than its input (a full disk or database,
 *    an I/O error, a read-only file) is rejected as `unavailable` (503), as a failed COMMIT
 *    is, never as an internal error: the request was fine, the database could not take it.
 */
import type { Db } from './db.ts';
import { ApiError } from '../../errors.ts';

interface Job {
  fn: (db: Db) => unknown;
  afterCommit: ((value: unknown) => void) | undefined;
  atomic: boolean;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

export interface Writer {
  /**
   * Runs fn in the next group transaction. Resolves with its result once committed;
   * afterCommit runs synchronously right after COMMIT, before any caller resumes.
   * atomic: fn changes the database in at most one statement (or throws before any), so it
   * needs no savepoint.
   */
  write<T>(fn: (db: Db) => T, afterCommit?: ((value: T) => void) | undefined, opts?: { atomic?: boolean }): Promise<T>;
  /** Commits what is queued, then refuses new writes. */
  close(): Promise<void>;
  /** Number of transactions committed and jobs they carried (for metrics and benches). */
  readonly stats: { commits: number; jobs: number };
}

/** Bounds one transaction so a flood of writers cannot make one commit arbitrarily long. */
const MAX_JOBS_PER_GROUP = 4096;

export interface WriterHooks {
  onCommit?: ((jobs: number, seconds: number) => void) | undefined;
  /** A job is about to run. */
  onJobStart?: (() => void) | undefined;
  /** A job failed and its changes were undone: state cached for it is stale. */
  onJobRolledBack?: (() => void) | undefined;
  /** Inside the transaction, after the jobs, before COMMIT; throwing fails the whole group. */
  beforeCommit?: (() => void) | undefined;
  /** The group ended, committed or not. */
  onGroupEnd?: ((committed: boolean) => void) | undefined;
}

/** SQLite result codes that are the storage's fault (extended codes start with these). */
const STORAGE_CODES = ['SQLITE_FULL', 'SQLITE_IOERR', 'SQLITE_READONLY', 'SQLITE_CANTOPEN', 'SQLITE_CORRUPT', 'SQLITE_NOTADB', 'SQLITE_PERM', 'SQLITE_NOMEM', 'SQLITE_BUSY', 'SQLITE_LOCKED', 'SQLITE_PROTOCOL'];

function isStorageFailure(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && STORAGE_CODES.some((c) => code === c || code.startsWith(`${c}_`));
}

function notWritten(cause: unknown): ApiError {
  const failure = new ApiError('unavailable', 'the database could not commit; nothing was written');
  failure.cause = cause;
  return failure;
}

export function createWriter(db: Db, hooks: WriterHooks = {}): Writer {
  let queue: Job[] = [];
  let scheduled = false;
  let closed = false;
  let idle: (() => void) | null = null;
  const stats = { commits: 0, jobs: 0 };
  // Prepared once: an exec() would parse its SQL again for every job.
  const st = {
    begin: db.prepare('BEGIN IMMEDIATE'),
    commit: db.prepare('COMMIT'),
    savepoint: db.prepare('SAVEPOINT job'),
    release: db.prepare('RELEASE job'),
    rollbackTo: db.prepare('ROLLBACK TO job'),
  };

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

    const outcomes: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    const started = performance.now();
    try {
      st.begin.run();
      for (const job of group) {
        hooks.onJobStart?.();
        if (!job.atomic) st.savepoint.run();
        try {
          const value = job.fn(db);
          if (!job.atomic) st.release.run();
          outcomes.push({ ok: true, value });
        } catch (error) {
          // On a full disk or an I/O error SQLite may roll the whole transaction back itself:
          // then the group fails, with this cause.
          if (!db.inTransaction) throw error;
          if (!job.atomic) {
            st.rollbackTo.run();
            st.release.run();
          }
          hooks.onJobRolledBack?.();
          outcomes.push({ ok: false, error: isStorageFailure(error) ? notWritten(error) : error });
        }
      }
      hooks.beforeCommit?.();
      st.commit.run();
    } catch (error) {
      if (db.inTransaction) db.exec('ROLLBACK');
      hooks.onGroupEnd?.(false);
      const failure = notWritten(error);
      for (const job of group) job.reject(failure);
      finish();
      return;
    }
    hooks.onGroupEnd?.(true);
    stats.commits += 1;
    stats.jobs += group.length;
    hooks.onCommit?.(group.length, (performance.now() - started) / 1000);
    group.forEach((job, i) => {
      const outcome = outcomes[i]!;
      if (!outcome.ok) return job.reject(outcome.error);
      try {
        job.afterCommit?.(outcome.value);
      } finally {
        job.resolve(outcome.value);
      }
    });
    finish();
  }

  function finish(): void {
    if (!scheduled && queue.length === 0 && idle) {
      idle();
      idle = null;
    }
  }

  return {
    stats,
    write<T>(fn: (db: Db) => T, afterCommit?: ((value: T) => void) | undefined, opts?: { atomic?: boolean }): Promise<T> {
      if (closed) return Promise.reject(new ApiError('shutting_down', 'the server is shutting down'));
      return new Promise<T>((resolve, reject) => {
        queue.push({
          fn,
          afterCommit: afterCommit as ((value: unknown) => void) | undefined,
          atomic: opts?.atomic === true,
          resolve: resolve as (value: unknown) => void,
          reject,
        });
        schedule();
      });
    },
    close(): Promise<void> {
      closed = true;
      if (!scheduled && queue.length === 0) return Promise.resolve();
      return new Promise((resolve) => {
        idle = resolve;
      });
    },
  };
}
