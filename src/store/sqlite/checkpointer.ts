/**
 * Checkpoints off the event loop. A checkpoint copies the WAL into the database file and
 * fsyncs both; run inside COMMIT (SQLite's autocheckpoint) it would stall every request for
 * as long. So the writer's connection never checkpoints (db.ts) and a worker thread with
 * its own connection runs PASSIVE checkpoints on a timer: they never block the writer, and
 * once one has copied everything, the writer's next transaction starts the WAL over.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

export interface Checkpointer {
  stop(): Promise<void>;
}

/** Plain CommonJS, so the thread needs no TypeScript loader. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file);
db.pragma('busy_timeout = 5000');
const timer = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (error) {
    parentPort.postMessage({ error: String(error && error.message || error) });
  }
}, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m === 'stop') {
    clearInterval(timer);
    db.close();
    parentPort.close();
  }
});
`;

export interface CheckpointerOptions {
  intervalMs?: number;
  /** A checkpoint failed (the WAL grows until one succeeds). */
  onError?: (message: string) => void;
  /**
   * The thread is gone without stop() (it could not open the database, or crashed): nothing
   * checkpoints any more, so the caller must turn SQLite's own checkpoints back on.
   */
  onGone?: (reason: string) => void;
}

export function startCheckpointer(file: string, opts: CheckpointerOptions = {}): Checkpointer {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { file, driver, intervalMs: opts.intervalMs ?? 250 } });
  worker.unref(); // never what keeps a process alive
  let stopping = false;
  let lastError = 'exited';
  worker.on('message', (m: { error?: string }) => {
    if (m.error) opts.onError?.(m.error);
  });
  worker.on('error', (error) => {
    lastError = error.message;
    opts.onError?.(error.message);
  });
  const exited = new Promise<void>((resolve) =>
    worker.once('exit', () => {
      if (!stopping) opts.onGone?.(lastError);
      resolve();
    }),
  );
  return {
    async stop() {
      stopping = true;
      worker.ref(); // stopping is work the process must wait for
      worker.postMessage('stop');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 2000)))]);
      clearTimeout(timer);
      await worker.terminate();
    },
  };
}
