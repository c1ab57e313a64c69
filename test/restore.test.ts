/**
 * A consumer whose committed cursor lies beyond its tenant's head (SPEC "Engines and nodes":
 * possible only after a database restore or a lossy failover) gets a clear 409 naming the head,
 * never a silent empty page; seeking it recovers. The database is changed behind the gateway's
 * back the way a restore would, with the engine's own tools (the SQLite file while the server is
 * stopped, or SQL on PostgreSQL).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { TEST_ENGINE, databaseUrlFor } from './support/engine.ts';
import { startGateway, tempDir } from './support/gateway.ts';

test('a committed cursor beyond the tenant\'s head: 409 cursor_beyond_head naming the head; a seek recovers', async (t) => {
  const dataDir = tempDir('pollgate-restore-');
  let g = await startGateway({ dataDir });
  const c = await g.createConsumer({ tenant: 'restored', start: 'earliest' });
  const events = (await g.publish([1, 2, 3].map((n) => ({ tenant: 'restored', type: 'r.x', data: n })))).events;
  assert.equal((await g.json('/v1/ack', { key: c.key, body: { cursor: events[2].cursor } })).status, 200);

  // "Restore" an older copy: the tenant's last two events and its head are gone, the cursor is not.
  if (TEST_ENGINE === 'sqlite') {
    await g.gateway.stop();
    const db = new Database(join(dataDir, 'pollgate.db'));
    db.prepare("DELETE FROM events WHERE tenant = 'restored' AND pos > 1").run();
    db.prepare("UPDATE tenants SET head_pos = 1 WHERE tenant = 'restored'").run();
    db.close();
    g = await startGateway({ dataDir });
  } else {
    const client = new pg.Client({ connectionString: databaseUrlFor(dataDir) });
    await client.connect();
    await client.query("DELETE FROM events WHERE tenant = 'restored' AND pos > 1");
    await client.query("UPDATE tenants SET head_pos = 1 WHERE tenant = 'restored'");
    await client.end();
  }
  t.after(() => g.close());

  const r = await g.json('/v1/events?wait=5', { key: c.key });
  assert.equal(r.status, 409, JSON.stringify(r.body));
  assert.equal(r.body.error.code, 'cursor_beyond_head');
  assert.equal(r.body.error.head, 't0000000000000001', 'the error names the head');
  assert.equal(r.body.error.cursor, events[2].cursor);
  assert.match(r.body.error.message, /seek/);

  // Publishing goes on from the head the database has; the consumer is told until it seeks.
  const next = await g.publish({ tenant: 'restored', type: 'r.x', data: 4 });
  assert.equal(next.cursor, 't0000000000000002');
  assert.equal((await g.json('/v1/events?wait=0', { key: c.key })).status, 409, 'still beyond the head (position 3 is not there yet)');
  const seek = await g.json(`/v1/consumers/${c.id}/seek`, { body: { to: { cursor: events[0].cursor } } });
  assert.equal(seek.status, 200, JSON.stringify(seek.body));
  const after = await g.json('/v1/events?wait=0', { key: c.key });
  assert.equal(after.status, 200);
  assert.deepEqual(after.body.events.map((e: any) => e.data), [4]);
});
