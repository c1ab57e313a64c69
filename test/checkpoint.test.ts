/**
 * SQLite only. Checkpoints run off the event loop (src/store/sqlite/checkpointer.ts): the writer's connection never
 * checkpoints, a worker thread does. These tests pin down that the WAL is still copied into the
 * database file while the server runs, and that a stop leaves a consistent database behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startCheckpointer } from '../src/store/sqlite/checkpointer.ts';
import { startGateway, tempDir } from './support/gateway.ts';
import { sleep } from './support/wait.ts';
import { SQLITE_ONLY } from './support/engine.ts';

test('SQLite: while the server runs, committed pages reach the database file (the WAL is checkpointed in the background)', { skip: SQLITE_ONLY }, async () => {
  const dataDir = tempDir();
  const g = await startGateway({ dataDir });
  const dbFile = join(dataDir, 'pollgate.db');
  try {
    await sleep(400); // let the first background checkpoint settle the migrations
    const before = statSync(dbFile).size;
    for (let b = 0; b < 10; b++) {
      const batch = Array.from({ length: 500 }, (_, i) => ({ tenant: `ck-${i % 7}`, type: 'checkpoint.test', data: { b, i, pad: 'x'.repeat(200) } }));
      const r = await g.call('/v1/events', { method: 'POST', body: batch });
      assert.equal(r.status, 201);
    }
    // Wait for the growth asserted, not for the first sign of growth: a checkpoint copies the
    // WAL page by page (the file is seen growing in steps while it runs) and one may have run
    // between two batches, so an early look sees part of the copy. On a loaded machine those
    // windows are wide; stopping at the first step made this test fail now and then.
    let after = before;
    for (const deadline = Date.now() + 20_000; after <= before + 500_000 && Date.now() < deadline; ) {
      await sleep(50);
      after = statSync(dbFile).size;
    }
    assert.ok(after > before + 500_000, `the database file grew from ${before} to ${after} bytes: checkpoints copied the WAL into it`);
  } finally {
    await g.close();
  }
});

test('SQLite: after a stop the database holds every event, with no WAL left to replay', { skip: SQLITE_ONLY }, async () => {
  const dataDir = tempDir();
  const g = await startGateway({ dataDir });
  const batch = Array.from({ length: 300 }, (_, i) => ({ tenant: 'ck-stop', type: 'checkpoint.test', data: { i } }));
  assert.equal((await g.call('/v1/events', { method: 'POST', body: batch })).status, 201);
  await g.gateway.stop();
  const wal = join(dataDir, 'pollgate.db-wal');
  assert.ok(!existsSync(wal) || statSync(wal).size === 0, 'the last connection checkpointed and removed the WAL');
  const db = new Database(join(dataDir, 'pollgate.db'), { readonly: true });
  try {
    assert.equal(db.prepare("SELECT count(*) FROM events WHERE tenant = 'ck-stop'").pluck().get(), 300);
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
  } finally {
    db.close();
  }
  await g.close();
});

test('SQLite: a checkpoint thread that cannot run reports itself gone (so the server can fall back to SQLite checkpoints)', { skip: SQLITE_ONLY }, async () => {
  const gone = new Promise<string>((resolve) => {
    startCheckpointer(join(tempDir(), 'no-such-dir', 'pollgate.db'), { onGone: resolve });
  });
  const reason = await Promise.race([gone, sleep(5000).then(() => 'still running after 5 s')]);
  assert.notEqual(reason, 'still running after 5 s');
  assert.match(reason, /directory|open|unable/i);
});

test('SQLite: stop() is not reported as gone', { skip: SQLITE_ONLY }, async () => {
  let goneCalls = 0;
  const cp = startCheckpointer(join(tempDir(), 'pollgate.db'), { onGone: () => (goneCalls += 1) });
  await sleep(100);
  await cp.stop();
  await sleep(50);
  assert.equal(goneCalls, 0);
});

