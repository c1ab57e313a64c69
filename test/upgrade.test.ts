/**
 * SQLite: a data directory written before positions were per tenant (schema 0001–0002, cursors
 * = one global sequence) is upgraded in place at start. Cursors clients hold keep working:
 * committed cursors are translated in the migration, older cursor strings at every entry point
 * (after=, ack=, POST /v1/ack, seek), and one behind removed events is still a 410.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, copyFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { newConsumerKey } from '../src/auth/keys.ts';
import { openDatabase, migrate } from '../src/store/sqlite/db.ts';
import { ROOT } from './support/process.ts';
import { startGateway, tempDir } from './support/gateway.ts';
import { SQLITE_ONLY } from './support/engine.ts';

test('SQLite upgrade: older global cursors become positions of their tenant; nothing is skipped or repeated', { skip: SQLITE_ONLY }, async (t) => {
  const dataDir = tempDir('pollgate-upgrade-');
  // The old schema only: a directory with the first two migrations.
  const oldSchema = tempDir('pollgate-old-schema-');
  for (const f of readdirSync(join(ROOT, 'schema', 'sqlite')).filter((f) => /^000[12]_/.test(f))) {
    copyFileSync(join(ROOT, 'schema', 'sqlite', f), join(oldSchema, f));
  }
  mkdirSync(dataDir, { recursive: true });
  const Database = (await import('better-sqlite3')).default;
  const db = new Database(join(dataDir, 'pollgate.db'));
  db.pragma('journal_mode = WAL');
  migrate(db, oldSchema);
  // Global seqs 1..8, interleaved: a = 1 3 5 7, b = 2 4 6 8. Retention had removed seq 1 and 2.
  const insert = db.prepare('INSERT INTO events (seq, id, tenant, type, time, data) VALUES (?, ?, ?, ?, ?, ?)');
  for (let seq = 1; seq <= 8; seq++) insert.run(seq, `e${seq}`, seq % 2 ? 'a' : 'b', 'x.y', Date.now() - 60_000 + seq, String(seq));
  db.prepare('DELETE FROM events WHERE seq <= 2').run();
  db.prepare('INSERT INTO tenant_trims (tenant, trimmed_through) VALUES (?, ?), (?, ?)').run('a', 1, 'b', 2);
  const keys: Record<string, string> = {};
  const addConsumer = (id: string, tenant: string, cursor: number) => {
    const k = newConsumerKey();
    keys[id] = k.key;
    db.prepare('INSERT INTO consumers (id, tenant, name, filter, cursor, key_id, key_hash, created_at, updated_at) VALUES (?, ?, NULL, NULL, ?, ?, ?, 0, 0)').run(
      id, tenant, cursor, k.keyId, k.hash,
    );
  };
  addConsumer('con_a_mid', 'a', 5); // read a's e3 and e5: next is e7
  addConsumer('con_b_all', 'b', 8); // read everything
  addConsumer('con_b_head', 'b', 7); // an empty poll's cursor (another tenant's seq): next is e8
  addConsumer('con_a_zero', 'a', 0); // behind a's trim mark: 410
  db.close();

  const g = await startGateway({ dataDir });
  t.after(() => g.close());
  const poll = async (key: string, query = 'wait=0') => g.json(`/v1/events?${query}`, { key });
  const ids = (r: { body: any }) => r.body.events.map((e: any) => e.id);

  const aMid = await poll(keys.con_a_mid!);
  assert.equal(aMid.status, 200, JSON.stringify(aMid.body));
  assert.deepEqual(ids(aMid), ['e7'], 'resumes exactly after the committed cursor');
  assert.match(aMid.body.events[0].cursor, /^t\d{16}$/);
  assert.deepEqual(ids(await poll(keys.con_b_all!)), []);
  assert.deepEqual(ids(await poll(keys.con_b_head!)), ['e8']);
  assert.equal((await poll(keys.con_a_zero!)).status, 410, 'behind removed events: 410, never a silent skip');

  // Older cursor strings in requests: after=, ack=, POST /v1/ack, seek.
  assert.deepEqual(ids(await poll(keys.con_a_mid!, 'wait=0&after=0000000000000003')), ['e5', 'e7']);
  assert.deepEqual(ids(await poll(keys.con_b_head!, 'wait=0&after=0000000000000005')), ['e6', 'e8']);
  assert.equal((await poll(keys.con_a_mid!, 'wait=0&after=0000000000000000')).status, 410);
  assert.equal((await poll(keys.con_a_mid!, 'wait=0&after=0000000000000009')).status, 400, 'past every seq ever issued: 400');
  const acked = await g.json('/v1/ack', { key: keys.con_a_mid!, body: { cursor: '0000000000000007' } });
  assert.equal(acked.status, 200);
  assert.deepEqual(ids(await poll(keys.con_a_mid!)), []);
  const seek = await g.json('/v1/consumers/con_b_all/seek', { body: { to: { cursor: '0000000000000004' } } });
  assert.equal(seek.status, 200, JSON.stringify(seek.body));
  assert.deepEqual(ids(await poll(keys.con_b_all!)), ['e6', 'e8']);

  // New events get the next positions of their tenant.
  const next = await g.publish({ tenant: 'a', type: 'x.y', data: 9 });
  assert.equal(next.cursor, aMid.body.events[0].cursor.replace(/\d+$/, (d: string) => String(Number(d) + 1).padStart(16, '0')));
  assert.deepEqual(ids(await poll(keys.con_a_mid!)), [next.id]);
  void openDatabase; // the engine's own opener is what startGateway used
});
