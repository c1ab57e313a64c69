/**
 * A log destination that writes in batches: lines are gathered during an event-loop turn and
 * written with one write(2) at its end (setImmediate), instead of one system call per line.
 *
 * 1. Never later than the turn after the line: a line is on its way by the time the loop
 *    goes idle, and at exit whatever is left is written once, synchronously.
 * 2. A write that fails drops what it carried and is not retried in a loop: with stdout gone
 *    (EPIPE, EBADF) logging costs one failed call per turn and exit never spins. Only a full
 *    non-blocking pipe (EAGAIN) keeps its bytes, for the next turn, up to MAX_PENDING_BYTES;
 *    beyond that new lines are dropped rather than held without bound.
 * 3. More than FLUSH_AT_BYTES gathered in one turn is written at once, so one busy turn holds
 *    little memory.
 */
import { writeSync } from 'node:fs';

const FLUSH_AT_BYTES = 64 * 1024;
const MAX_PENDING_BYTES = 4 * 1024 * 1024;
/** At exit a full pipe gets a few short waits, then what is left is dropped. */
const EXIT_RETRIES = 20;
const EXIT_RETRY_MS = 5;

export interface BatchedWriter {
  write(line: string): boolean;
  /** Writes what is gathered now (pino's logger.flush() calls it). */
  flush(cb?: (error?: Error) => void): void;
  flushSync(): void;
}

const writers = new Map<number, BatchedWriter>();

/** The batched writer of fd: one per descriptor, shared by every logger on it (one order, one exit hook). */
export function batchedWriter(fd: number): BatchedWriter {
  let writer = writers.get(fd);
  if (!writer) {
    const created = createBatchedWriter(fd);
    process.once('exit', () => created.flushSync());
    writers.set(fd, (writer = created));
  }
  return writer;
}

function createBatchedWriter(fd: number): BatchedWriter {
  let lines = '';
  /** Bytes a full pipe did not take yet; written before `lines`. */
  let held: Buffer | null = null;
  let scheduled = false;
  let dropped = 0;

  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(flushTurn);
  };

  function flushTurn(): void {
    scheduled = false;
    writeOut();
    if (held) schedule(); // a full pipe: try again next turn
  }

  /** One pass: writes what it can; never loops on a failing descriptor. */
  function writeOut(): 'done' | 'again' {
    if (lines.length > 0) {
      const next = Buffer.from(lines, 'utf8');
      lines = '';
      held = held ? Buffer.concat([held, next]) : next;
    }
    if (dropped > 0 && held) {
      // Said once the pipe takes lines again, so a gap in the log is visible.
      const note = Buffer.from(`${JSON.stringify({ level: 40, time: Date.now(), msg: 'log lines dropped: stdout did not take them', dropped })}\n`);
      held = Buffer.concat([held, note]);
      dropped = 0;
    }
    let offset = 0;
    while (held && offset < held.length) {
      try {
        offset += writeSync(fd, held, offset);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EAGAIN') {
          held = held.subarray(offset);
          return 'again';
        }
        held = null; // stdout is gone or broken: these lines are lost, later ones are tried
        return 'done';
      }
    }
    held = null;
    return 'done';
  }

  return {
    write(line) {
      if ((held?.length ?? 0) + lines.length > MAX_PENDING_BYTES) {
        dropped += 1;
        return true;
      }
      lines += line;
      if (lines.length >= FLUSH_AT_BYTES && !held) writeOut();
      else schedule();
      return true;
    },
    flush(cb) {
      writeOut();
      cb?.();
    },
    flushSync() {
      for (let i = 0; i <= EXIT_RETRIES; i++) {
        if (writeOut() === 'done') return;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, EXIT_RETRY_MS);
      }
      held = null;
    },
  };
}
