/**
 * PostgreSQL without POLLGATE_ADMIN_KEY (SPEC "Auth"): the first node generates the admin key,
 * prints it once and keeps only its hash in the database; every other node accepts that key and
 * prints nothing, even when the nodes start at the same moment.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import pg from 'pg';
import { loadConfig } from '../src/config.ts';
import { createPollgate } from '../src/pollgate.ts';
import { POSTGRES_ONLY } from './support/engine.ts';
import { createTestDatabase } from './support/postgres.ts';
import { tempDir } from './support/gateway.ts';

test('PostgreSQL: the admin key is generated once for all nodes, printed once, stored only as a hash', { skip: POSTGRES_ONLY }, async (t) => {
  const database = await createTestDatabase('pollgate_admin');
  const printed: string[] = [];
  const node = () =>
    createPollgate(
      { ...loadConfig({}), dataDir: tempDir(), port: 0, logLevel: 'silent', adminKey: undefined, databaseUrl: database.url },
      { logger: pino({ level: 'silent' }), onAdminKeyGenerated: (key) => printed.push(key) },
    );
  const first = await node(); // creates the schema; the others race for the key
  const [a, b, c] = [first, ...(await Promise.all([node(), node()]))];
  const gateways = [a!, b!, c!];
  t.after(async () => {
    for (const g of gateways) await g.stop();
    await database.drop();
  });
  assert.equal(printed.length, 1, 'printed by exactly one node');
  const key = printed[0]!;
  assert.match(key, /^pga_/);
  for (const g of gateways) {
    const address = await g.start();
    const r = await fetch(`http://127.0.0.1:${address.port}/v1/consumers`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(r.status, 200, 'every node accepts the key');
    const wrong = await fetch(`http://127.0.0.1:${address.port}/v1/consumers`, { headers: { authorization: 'Bearer pga_not_the_key' } });
    assert.equal(wrong.status, 401);
  }
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  const dump = await client.query("SELECT key, value FROM settings WHERE value LIKE '%' || $1 || '%'", [key.slice(4, 20)]);
  await client.end();
  assert.equal(dump.rows.length, 0, 'the plaintext key is nowhere in the settings');
});
