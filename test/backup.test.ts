/**
 * `pollgate backup` and `pollgate restore` (embedded engine): a backup taken while the server
 * serves and publishes go on, restored into a new data directory, is a working deployment:
 * the same admin key (generated, not configured), consumers with their keys and committed
 * cursors reading exactly what they had not acked, every event acknowledged before the backup
 * began, and the files 0600. Refusals change nothing.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SQLITE_ONLY } from './support/engine.ts';
import { startGateway, tempDir } from './support/gateway.ts';
import { killChildren, run } from './support/cli.ts';
import { sleep } from './support/wait.ts';

after(killChildren);

test('SQLite: backup under load, restore into a new directory: same admin key, consumers go on from their cursors', { skip: SQLITE_ONLY, timeout: 120_000 }, async (t) => {
  const dataDir = tempDir('pollgate-backup-');
  // No configured key: the server generates one into data/admin.key, as `npm start` does.
  const g = await startGateway({ dataDir, config: { adminKey: undefined } });
  const adminKey = readFileSync(join(dataDir, 'admin.key'), 'utf8').trim();
  const admin = { key: adminKey };
  const created = await g.json('/v1/consumers', { ...admin, body: { tenant: 'bk', start: 'earliest' } });
  assert.equal(created.status, 201);
  const consumer = created.body;
  const first = await g.json('/v1/events', { ...admin, body: Array.from({ length: 500 }, (_, i) => ({ tenant: 'bk', type: 'b.x', data: { i, pad: 'x'.repeat(200) } })) });
  assert.equal(first.status, 201);
  assert.equal((await g.json('/v1/ack', { key: consumer.key, body: { cursor: first.body.events[199].cursor } })).status, 200);

  // Publishing goes on while the backup runs.
  let publishing = true;
  const during = (async () => {
    let n = 0;
    while (publishing) {
      const r = await g.json('/v1/events', { ...admin, body: { tenant: 'bk', type: 'b.during', data: n++ } });
      assert.equal(r.status, 201);
    }
    return n;
  })();
  await sleep(100);
  const file = join(tempDir('pollgate-backup-file-'), 'pollgate.backup');
  const backup = await run(['backup', '--to', file, '--data-dir', dataDir]);
  publishing = false;
  const publishedDuring = await during;
  assert.equal(backup.code, 0, backup.stderr);
  assert.match(backup.stdout, /admin key\s+included/);
  assert.match(backup.stdout, /consumers\s+1 /);
  assert.ok(publishedDuring > 0, 'the server kept publishing during the backup');
  assert.equal(statSync(file).mode & 0o777, 0o600, 'the backup holds secrets: 0600');
  assert.equal(existsSync(`${file}-wal`), false, 'one self-contained file');

  // Refusals: an existing backup file is not overwritten; a restore into a directory in use is refused.
  const again = await run(['backup', '--to', file, '--data-dir', dataDir]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /exists already/);
  const busy = await run(['restore', '--from', file, '--data-dir', dataDir]);
  assert.equal(busy.code, 1);
  assert.match(busy.stderr, /another pollgate process|already holds/);
  const notABackup = join(tempDir(), 'junk');
  writeFileSync(notABackup, 'not a database');
  const junk = await run(['restore', '--from', notABackup, '--data-dir', join(tempDir(), 'fresh')]);
  assert.equal(junk.code, 1, junk.stderr);
  await g.close();

  const restoredDir = join(tempDir('pollgate-restored-'), 'data');
  const restored = await run(['restore', '--from', file, '--data-dir', restoredDir]);
  assert.equal(restored.code, 0, restored.stderr);
  assert.equal(readFileSync(join(restoredDir, 'admin.key'), 'utf8').trim(), adminKey, 'the admin key is kept');
  assert.equal(statSync(join(restoredDir, 'admin.key')).mode & 0o777, 0o600);
  assert.equal(statSync(join(restoredDir, 'pollgate.db')).mode & 0o777, 0o600);

  const r = await startGateway({ dataDir: restoredDir, config: { adminKey: undefined } });
  t.after(() => r.close());
  assert.equal((await r.json('/v1/consumers', { ...admin })).status, 200, 'the old admin key works on the restored server');
  // The consumer reads on from its committed cursor with its old key: events 201.. of the first batch, then those published during the backup.
  const page = await r.json('/v1/events?wait=0&limit=1000', { key: consumer.key });
  assert.equal(page.status, 200, JSON.stringify(page.body));
  const ids = page.body.events.map((e: any) => e.id);
  assert.deepEqual(ids.slice(0, 300), first.body.events.slice(200).map((e: any) => e.id), 'exactly the unacked events of the batch, in order');
  assert.ok(page.body.events.slice(300).every((e: any) => e.type === 'b.during'), 'then events published while the backup ran');
  const settings = await r.json('/v1/consumer', { key: consumer.key });
  assert.equal(settings.body.cursor, first.body.events[199].cursor);
});

test('backup and restore refuse PostgreSQL deployments and say what to use', async () => {
  const r = await run(['backup', '--to', join(tempDir(), 'x')], { POLLGATE_DATABASE_URL: 'postgres://127.0.0.1:1/x' });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /pg_dump/);
  const missing = await run(['backup', '--to', join(tempDir(), 'x'), '--data-dir', join(tempDir(), 'empty')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no pollgate database/);
});
