/**
 * Start-up (SPEC: Auth — the generated admin key, consumer keys stored only as hashes;
 * Operations — configuration; PITFALLS: keys leave no trace), against the real server as a
 * child process: generated admin key, configured admin key, no plaintext consumer key in the
 * data directory or the logs, bad configuration, migrations applied once.
 */
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import {
  compareCursors,
  createConsumer,
  filesContaining,
  killAllServers,
  readAll,
  removeDir,
  request,
  ROOT,
  runToExit,
  startServer,
  tempDir,
  type ServerProcess,
} from './support/process.ts';
import { SQLITE_ONLY } from './support/engine.ts';

const dirs: string[] = [];
const dir = () => {
  const d = tempDir('pollgate-startup-');
  dirs.push(d);
  return d;
};

after(async () => {
  await killAllServers();
  for (const d of dirs) removeDir(d);
});

const count = (haystack: string, needle: string) => haystack.split(needle).length - 1;
const logs = (s: ServerProcess) => s.stdout + s.stderr;

async function stopClean(s: ServerProcess): Promise<void> {
  assert.deepEqual(await s.stop(), { code: 0, signal: null }, `clean exit on SIGTERM\n${s.output()}`);
}

describe('SQLite: admin key', { skip: SQLITE_ONLY }, () => {
  test('first start without POLLGATE_ADMIN_KEY generates it, stores it 0600, prints it once; a second start reuses it silently', { timeout: 60_000 }, async () => {
    const dataDir = dir();
    const file = join(dataDir, 'admin.key');

    const first = await startServer({ dataDir, adminKey: null });
    assert.ok(existsSync(file), `${file} exists`);
    const key = readFileSync(file, 'utf8').trim();
    assert.ok(key.length >= 20, `a key of some length: ${JSON.stringify(key)}`);
    assert.equal(statSync(file).mode & 0o777, 0o600, `mode of admin.key is ${(statSync(file).mode & 0o777).toString(8)}`);
    assert.equal(count(first.stdout, key), 1, `stdout shows the key exactly once\n${first.output()}`);
    assert.equal(count(first.stderr, key), 0, 'stderr does not show it');

    assert.equal((await request(first.url, '/v1/consumers', { key })).status, 200, 'the generated key works');
    assert.equal((await request(first.url, '/v1/consumers', { key: null })).status, 401);
    assert.equal((await request(first.url, '/v1/consumers', { key: `${key}x` })).status, 401);
    assert.deepEqual(filesContaining(dataDir, key), [file], 'the key is in admin.key and nowhere else in the data directory');
    await stopClean(first);

    const second = await startServer({ dataDir, adminKey: null });
    assert.equal((await request(second.url, '/v1/consumers', { key })).status, 200, 'the same key still works');
    await stopClean(second);
    assert.equal(count(logs(second), key), 0, `the second start does not print the key\n${second.output()}`);
    assert.ok(!/generated/i.test(logs(second)), `the second start does not announce a generated key\n${second.output()}`);
    assert.equal(readFileSync(file, 'utf8').trim(), key, 'admin.key unchanged');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(filesContaining(dataDir, key), [file]);
  });

  test('with POLLGATE_ADMIN_KEY set, that key works, no key file is written and the key is not logged', { timeout: 60_000 }, async () => {
    const dataDir = dir();
    const key = `pga_configured_${Math.random().toString(36).slice(2)}${Date.now()}`;
    const s = await startServer({ dataDir, adminKey: key });
    assert.equal((await request(s.url, '/v1/consumers', { key })).status, 200);
    assert.equal((await request(s.url, '/v1/consumers', { key: 'pga_something_else_entirely_0000000000' })).status, 401);
    await stopClean(s);
    assert.ok(!existsSync(join(dataDir, 'admin.key')), `no admin.key written; the directory holds ${readdirSync(dataDir).join(', ')}`);
    assert.equal(count(logs(s), key), 0, `the configured key is not logged\n${s.output()}`);
    assert.deepEqual(filesContaining(dataDir, key), []);
  });
});

test('a consumer key in plaintext appears in no file of the data directory and in no log line (even at trace level)', { timeout: 60_000 }, async () => {
  const dataDir = dir();
  const s = await startServer({ dataDir, env: { POLLGATE_LOG_LEVEL: 'trace' } });
  const consumer = await createConsumer(s.url, { tenant: 'keys', name: 'key-check', start: 'earliest' });
  const keys: string[] = [consumer.key];
  assert.match(consumer.key, /^pgk_/);

  const pub = await request(s.url, '/v1/events', { body: { tenant: 'keys', type: 'k.made', id: 'k-1', data: { ok: true } } });
  assert.equal(pub.status, 201);
  const poll = await request(s.url, '/v1/events?wait=0', { key: consumer.key });
  assert.equal(poll.status, 200, poll.text);
  assert.deepEqual(poll.body.events.map((e: any) => e.id), ['k-1']);
  assert.equal((await request(s.url, '/v1/ack', { key: consumer.key, body: { cursor: poll.body.cursor } })).status, 200);
  assert.equal((await request(s.url, '/v1/consumer', { key: consumer.key })).status, 200);
  // A near miss (the right key id, a wrong secret) must be refused — and not logged either.
  const nearMiss = consumer.key.slice(0, -1) + (consumer.key.endsWith('A') ? 'B' : 'A');
  assert.equal((await request(s.url, '/v1/consumer', { key: nearMiss })).status, 401);

  const rotated = await request(s.url, `/v1/consumers/${consumer.id}/key`, { method: 'POST' });
  assert.ok(rotated.status === 200 || rotated.status === 201, rotated.text);
  assert.match(rotated.body.key, /^pgk_/);
  keys.push(rotated.body.key);
  assert.equal((await request(s.url, '/v1/events?wait=0', { key: rotated.body.key })).status, 200);
  assert.equal((await request(s.url, '/v1/events?wait=0', { key: consumer.key })).status, 401, 'the old key stops working');

  const check = (when: string) => {
    for (const key of keys) {
      // The whole key, and its secret part alone (the key id may be stored for the lookup).
      for (const text of [key, key.slice(-32)]) {
        assert.deepEqual(filesContaining(dataDir, text), [], `${when}: ${text} is in the data directory`);
        assert.equal(count(logs(s), text), 0, `${when}: ${text} is in the server's output`);
      }
    }
    assert.equal(count(logs(s), nearMiss), 0, `${when}: a presented (wrong) key is in the server's output`);
  };
  check('while running (database and WAL)');
  await stopClean(s);
  check('after stop');
});

describe('bad configuration exits non-zero naming the problem', { concurrency: true }, () => {
  const aFile = join(dir(), 'not-a-directory');
  writeFileSync(aFile, 'x');
  const cases: Array<{ name: string; env?: Record<string, string>; args?: string[]; names: RegExp; skip?: string | false }> = [
    { name: 'POLLGATE_PORT=abc', env: { POLLGATE_PORT: 'abc' }, names: /POLLGATE_PORT/ },
    { name: 'SQLite: POLLGATE_DATA_DIR is a file', env: { POLLGATE_DATA_DIR: aFile }, names: /not a directory; point POLLGATE_DATA_DIR/, skip: SQLITE_ONLY },
    { name: 'SQLite: --data-dir inside a file', args: ['--data-dir', join(aFile, 'data')], names: /not a directory; point POLLGATE_DATA_DIR/, skip: SQLITE_ONLY },
    { name: 'POLLGATE_RETENTION=forever', env: { POLLGATE_RETENTION: 'forever' }, names: /POLLGATE_RETENTION/ },
    { name: 'unknown flag --nope', args: ['--nope'], names: /--nope|\bnope\b/ },
  ];
  for (const c of cases) {
    test(c.name, { timeout: 60_000, skip: c.skip ?? false }, async () => {
      const dataDir = dir();
      const r = await runToExit({ dataDir, ...(c.env ? { env: c.env } : {}), ...(c.args ? { args: c.args } : {}) });
      const output = `--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
      assert.equal(r.signal, null, `exited by itself (not killed after the timeout)\n${output}`);
      assert.ok(r.code !== null && r.code !== 0, `non-zero exit, got ${r.code}\n${output}`);
      assert.ok(!r.listened, 'it did not start listening');
      assert.match(r.stderr + r.stdout, c.names, `the message names the offending setting\n${output}`);
      assert.ok(!/\n\s+at .+:\d+:\d+\)?\n/.test(r.stderr), `a message, not a stack trace\n${output}`);
    });
  }
});

test('SQLite: schema migrations are applied once: a second start on the same directory works and keeps the data', { timeout: 60_000, skip: SQLITE_ONLY }, async () => {
  const dataDir = dir();
  const migrationsOf = () => {
    const db = new Database(join(dataDir, 'pollgate.db'), { readonly: true, fileMustExist: true });
    try {
      return db.prepare('SELECT * FROM schema_migrations ORDER BY version').all() as Array<Record<string, unknown>>;
    } finally {
      db.close();
    }
  };
  const schemaFiles = readdirSync(join(ROOT, 'schema', 'sqlite')).filter((f) => /^\d+_.*\.sql$/.test(f));

  const first = await startServer({ dataDir });
  const published = [
    (await request(first.url, '/v1/events', { body: { tenant: 'mig', type: 'm.one', id: 'm-1', data: 1 } })).body,
    ...(await request(first.url, '/v1/events', { body: [{ tenant: 'mig', type: 'm.two', id: 'm-2', data: 2 }, { tenant: 'mig', type: 'm.two', id: 'm-3', data: 3 }] })).body.events,
  ];
  assert.deepEqual(published.map((e: any) => e.id), ['m-1', 'm-2', 'm-3']);
  const consumer = await createConsumer(first.url, { tenant: 'mig', name: 'survivor', start: 'earliest' });
  const page = await request(first.url, '/v1/events?wait=0&limit=1', { key: consumer.key });
  assert.deepEqual(page.body.events, [published[0]]);
  assert.equal((await request(first.url, '/v1/ack', { key: consumer.key, body: { cursor: page.body.cursor } })).status, 200);
  await stopClean(first);
  const afterFirst = migrationsOf();
  assert.equal(afterFirst.length, schemaFiles.length, `one row per migration file: ${JSON.stringify(afterFirst)}`);

  const second = await startServer({ dataDir });
  assert.equal((await request(second.url, '/readyz', { key: null })).status, 200);
  const me = await request(second.url, '/v1/consumer', { key: consumer.key });
  assert.equal(me.status, 200, `the consumer and its key survive: ${me.text}`);
  assert.equal(me.body.cursor, page.body.cursor, 'its committed cursor survives');
  const rest = await request(second.url, '/v1/events?wait=0', { key: consumer.key });
  assert.deepEqual(rest.body.events, published.slice(1), 'polling resumes after the committed cursor');
  assert.deepEqual(await readAll(second.url, 'mig'), published, 'the log survives unchanged');
  const more = await request(second.url, '/v1/events', { body: { tenant: 'mig', type: 'm.four', id: 'm-4', data: 4 } });
  assert.equal(more.status, 201, 'publishing works after the second start');
  assert.ok(compareCursors(more.body.cursor, published[2].cursor) > 0, 'cursors go on after the old ones');
  await stopClean(second);

  assert.deepEqual(migrationsOf(), afterFirst, 'the second start applied no migration again');
});

test('SQLite: a second server on the same data directory refuses to start, saying why; the first goes on', { timeout: 60_000, skip: SQLITE_ONLY }, async () => {
  const dataDir = dir();
  const first = await startServer({ dataDir });
  const published = await request(first.url, '/v1/events', { body: { tenant: 'lock', type: 'l.one', data: 1 } });
  assert.equal(published.status, 201);

  const second = await runToExit({ dataDir });
  const output = `--- stdout ---\n${second.stdout}\n--- stderr ---\n${second.stderr}`;
  assert.ok(second.code !== null && second.code !== 0, `non-zero exit\n${output}`);
  assert.ok(!second.listened, 'it never listened');
  assert.match(second.stderr, /another pollgate process is using the data directory/, output);
  assert.match(second.stderr, /POLLGATE_DATABASE_URL/, 'it names the way to run several nodes');
  assert.ok(!/\n\s+at .+:\d+:\d+\)?\n/.test(second.stderr), `a message, not a stack trace\n${output}`);

  const again = await request(first.url, '/v1/events', { body: { tenant: 'lock', type: 'l.two', data: 2 } });
  assert.equal(again.status, 201, 'the first server still serves');
  await stopClean(first);
  // The lock goes with the process: a new server starts at once.
  const third = await startServer({ dataDir });
  assert.deepEqual((await readAll(third.url, 'lock')).map((e: any) => e.data), [1, 2]);
  await stopClean(third);
});

test('PostgreSQL that cannot be reached at start: exit 1 naming the host and the cause, never the password', { timeout: 60_000 }, async () => {
  const r = await runToExit({ env: { POLLGATE_DATABASE_URL: 'postgres://pollgate:s3cret-pw@127.0.0.1:1/pollgate' } });
  assert.equal(r.code, 1, r.stderr);
  assert.ok(!r.listened);
  assert.match(r.stderr, /could not open the database at 127\.0\.0\.1:1\/pollgate/);
  assert.match(r.stderr, /ECONNREFUSED/);
  assert.ok(!(r.stdout + r.stderr).includes('s3cret-pw'), 'the password is never printed');
  assert.ok(!/\n\s+at .+:\d+:\d+\)?\n/.test(r.stderr), 'a message, not a stack trace');
});
