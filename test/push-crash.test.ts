/**
 * Crash recovery of the push bridge (SPEC: Push bridge — in log order, at-least-once; the
 * cursor advances on 2xx). The real server runs as a child process; a receiver in this process
 * answers 200 (some answers a little late). About 2000 events are published, the server is
 * SIGKILLed while a delivery is in flight, and restarted on the same data directory. Then:
 *
 * 1. every published event reached the receiver at least once;
 * 2. first arrivals are in log order, and the stream never skips ahead (dedupe on webhook-id
 *    shows no gaps);
 * 3. after the restart delivery resumed right after the committed cursor (read from the
 *    database while the server was down), so the repeats are exactly the events between that
 *    cursor and the last one seen before the kill — a small window.
 *
 * Every wait is bounded; children are killed in `after` whatever happens.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { Webhook } from 'standardwebhooks';
import { tempDir } from './support/gateway.ts';
import { startReceiver, type ReceivedRequest, type Reply } from './support/receiver.ts';
import { waitUntil } from './support/wait.ts';
import { SQLITE_ONLY } from './support/engine.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ADMIN_KEY = 'pga_crash_test_admin_key_0123456789abcdef';
const TOTAL = 2000;
/** The receiver kills the server when this request arrives, before answering it. */
const KILL_AT = 600;
/** Repeats allowed after the restart: the queued-but-uncommitted cursor writes plus the cut attempt. */
const MAX_REPEATS = 50;

const children = new Set<ChildProcess>();
const dataDir = tempDir('pollgate-push-crash-');

after(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  await Promise.all([...children].map((c) => exited(c, 5_000).catch(() => {})));
  rmSync(dataDir, { recursive: true, force: true });
});

function exited(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`child ${child.pid} did not exit within ${timeoutMs} ms`)), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Starts `node --import tsx src/main.ts`; answers the child and its port once it listens. */
async function startServer(): Promise<{ child: ChildProcess; port: number; base: string; output: () => string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      POLLGATE_DATA_DIR: dataDir,
      POLLGATE_PORT: '0',
      POLLGATE_HOST: '127.0.0.1',
      POLLGATE_ADMIN_KEY: ADMIN_KEY,
      POLLGATE_ALLOW_PRIVATE_TARGETS: '1',
      // "pollgate listening" (with the port) is logged at info; warn would hide it.
      POLLGATE_LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let out = '';
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-4_000)));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not listen within 30 s:\n${out}\n${err}`)), 30_000);
    let found = false;
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      if (found) return; // keep draining
      out += d;
      for (const line of out.split('\n')) {
        if (!line.includes('"msg":"pollgate listening"')) continue;
        const m = /"port":(\d+)/.exec(line);
        if (m) {
          found = true;
          clearTimeout(timer);
          resolve(Number(m[1]));
          return;
        }
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (!found) reject(new Error(`server exited (${code ?? signal}) before listening:\n${out}\n${err}`));
    });
  });
  return { child, port, base: `http://127.0.0.1:${port}`, output: () => `${out}\n${err}` };
}

/** The consumer's committed cursor (a position in its tenant) read from the database file; no server may run. */
function readCommittedCursor(consumerId: string): number {
  const file = join(dataDir, 'pollgate.db');
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    db.prepare('SELECT count(*) FROM consumers').get();
  } catch {
    db?.close();
    // A read-only connection cannot run WAL recovery; a normal one does what the restart would.
    db = new Database(file, { fileMustExist: true });
  }
  try {
    return db.prepare('SELECT cursor FROM consumers WHERE id = ?').pluck().get(consumerId) as number;
  } finally {
    db.close();
  }
}

async function api(base: string, path: string, init: { method?: string; body?: unknown } = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(base + path, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

test('SQLite: SIGKILL mid-delivery: every event arrives, first arrivals in order, resumed from the committed cursor', { timeout: 180_000, skip: SQLITE_ONLY }, async (t) => {
  let first: Awaited<ReturnType<typeof startServer>> | null = null;
  const rx = await startReceiver((req: ReceivedRequest): Reply => {
    if (req.n === KILL_AT && first) {
      // Kill while this delivery is in flight: it is never answered.
      first.child.kill('SIGKILL');
      return { hang: true };
    }
    return req.n % 7 === 0 ? { status: 200, delayMs: 5 } : { status: 200 };
  });
  t.after(() => rx.close());

  first = await startServer();
  const tenant = 'crash';
  const consumer = await api(first.base, '/v1/consumers', { body: { tenant, name: 'pusher' } });
  assert.equal(consumer.status, 201, JSON.stringify(consumer.body));
  const consumerId: string = consumer.body.id;
  const put = await api(first.base, `/v1/consumers/${consumerId}/webhook`, { method: 'PUT', body: { url: rx.url, timeout_ms: 5_000 } });
  assert.equal(put.status, 201, JSON.stringify(put.body));
  const secret: string = put.body.secret;

  const published: Array<{ id: string; cursor: string }> = [];
  for (let batch = 0; batch < TOTAL / 1000; batch++) {
    const events = Array.from({ length: 1000 }, (_, i) => ({ tenant, type: 'crash.event', data: { n: batch * 1000 + i + 1 } }));
    const r = await api(first.base, '/v1/events', { body: events });
    assert.equal(r.status, 201, JSON.stringify(r.body).slice(0, 500));
    published.push(...r.body.events);
  }
  assert.equal(published.length, TOTAL);
  const indexOf = new Map(published.map((e, i) => [e.id, i]));

  // The receiver kills the server at request KILL_AT.
  await waitUntil(() => rx.requests.length >= KILL_AT, 60_000, () => `${KILL_AT} deliveries (have ${rx.requests.length})`);
  await exited(first.child, 10_000);
  assert.equal(first.child.signalCode, 'SIGKILL');
  await new Promise((resolve) => setTimeout(resolve, 200)); // a request cut by the kill is not counted twice
  const beforeRestart = rx.requests.length;
  const seenBefore = rx.requests.slice(0, beforeRestart).map((r) => String(r.headers['webhook-id']));
  const maxBefore = Math.max(...seenBefore.map((id) => indexOf.get(id)!));

  // The committed cursor, straight from the database, while no server runs.
  const committedSeq = readCommittedCursor(consumerId);
  const committed = `t${String(committedSeq).padStart(16, '0')}`;
  // Index of the first event after the committed cursor.
  const resumeIndex = published.findIndex((e) => e.cursor > committed);
  assert.ok(resumeIndex >= 0, 'the kill happened before everything was acknowledged');
  assert.ok(resumeIndex <= maxBefore + 1, 'the committed cursor is not past what the receiver saw');
  assert.ok(resumeIndex >= KILL_AT - 1 - MAX_REPEATS, `the committed cursor is close behind the kill (resume at ${resumeIndex})`);

  const restartedAt = Date.now();
  const second = await startServer();
  await waitUntil(
    () => new Set(rx.requests.map((r) => r.headers['webhook-id'])).size >= TOTAL,
    120_000,
    () => `every event (have ${new Set(rx.requests.map((r) => r.headers['webhook-id'])).size} of ${TOTAL})`,
  );
  // Let the last cursor commit, then stop gracefully.
  await waitUntil(
    async () => (await api(second.base, `/v1/consumers/${consumerId}`)).body.cursor === published[TOTAL - 1]!.cursor,
    10_000,
    () => 'the final cursor',
  );
  second.child.kill('SIGTERM');
  await exited(second.child, 15_000);
  assert.equal(second.child.exitCode, 0, second.output().slice(-2_000));

  const ids = rx.requests.map((r) => String(r.headers['webhook-id']));
  for (const id of ids) assert.ok(indexOf.has(id), `unknown webhook-id ${id}`);

  // 1. Every published event at least once.
  const distinct = new Set(ids);
  for (const e of published) assert.ok(distinct.has(e.id), `${e.id} never arrived`);

  // 2. First arrivals in log order; the stream never skips ahead.
  const firsts = [...distinct];
  assert.deepEqual(firsts, published.map((e) => e.id), 'first arrivals are in log order');
  let max = -1;
  for (const [n, id] of ids.entries()) {
    const i = indexOf.get(id)!;
    assert.ok(i <= max + 1, `request ${n + 1} skipped from event ${max} to ${i}`);
    max = Math.max(max, i);
  }

  // 3. After the restart: resumed right after the committed cursor; repeats only in the window.
  const afterRestart = ids.slice(beforeRestart);
  assert.ok(afterRestart.length > 0);
  assert.equal(indexOf.get(afterRestart[0]!), resumeIndex, 'the first delivery after the restart is the event after the committed cursor');
  assert.deepEqual(
    afterRestart.map((id) => indexOf.get(id)),
    Array.from({ length: TOTAL - resumeIndex }, (_, k) => resumeIndex + k),
    'after the restart, each remaining event once, in order',
  );
  const repeats = afterRestart.filter((id) => seenBefore.includes(id)).length;
  assert.equal(repeats, maxBefore + 1 - resumeIndex, 'the repeats are exactly the events between the cursor and the kill');
  assert.ok(repeats <= MAX_REPEATS, `${repeats} repeats`);
  // Before the kill nothing was repeated (every answer was 200).
  assert.equal(new Set(seenBefore).size, seenBefore.length);

  t.diagnostic(
    `killed at request ${KILL_AT}; seen before restart ${beforeRestart} (max event index ${maxBefore}); ` +
      `committed index ${resumeIndex - 1}; repeats ${repeats}; requests in all ${ids.length}; ` +
      `${TOTAL - resumeIndex} deliveries after the restart took ${rx.requests[rx.requests.length - 1]!.at - restartedAt} ms (start included)`,
  );

  // Every request was signed, across the restart.
  const wh = new Webhook(secret);
  for (const r of rx.requests) {
    wh.verify(r.body, {
      'webhook-id': String(r.headers['webhook-id']),
      'webhook-timestamp': String(r.headers['webhook-timestamp']),
      'webhook-signature': String(r.headers['webhook-signature']),
    });
  }
});
