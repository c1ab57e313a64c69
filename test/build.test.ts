/**
 * The build output runs as it is deployed: a copy of the package (package.json, bin/, dist/,
 * schema/) next to node_modules without the development dependencies (no tsx, no typescript),
 * started with `npm start` and the `pollgate` bin under plain node and a PATH without
 * node_modules/.bin. The server starts, takes a publish, answers a poll and stops on SIGTERM.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cleanEnv, ensureBuilt } from './support/built.ts';
import { databaseUrlFor } from './support/engine.ts';
import { removeDir, ROOT, tempDir } from './support/process.ts';
import { waitUntil } from './support/wait.ts';

const ADMIN_KEY = 'pga_build_test_admin_key_0123456789abcdef';
/** What only development needs: the deployed copy must run without them. */
const DEV_ONLY = new Set(['tsx', 'typescript', '.bin']);

let app: string;

before(() => {
  ensureBuilt();
  app = tempDir('pollgate-built-');
  for (const part of ['package.json', 'bin', 'dist', 'schema']) cpSync(join(ROOT, part), join(app, part), { recursive: true });
  mkdirSync(join(app, 'node_modules'));
  for (const name of readdirSync(join(ROOT, 'node_modules'))) {
    if (!DEV_ONLY.has(name)) symlinkSync(join(ROOT, 'node_modules', name), join(app, 'node_modules', name));
  }
});

after(() => removeDir(app));

function runIn(dir: string, command: string, args: string[], env = cleanEnv()) {
  return spawnSync(command, args, { cwd: dir, env, encoding: 'utf8', timeout: 60_000 });
}

describe('the compiled package, without development dependencies', () => {
  test('tsx cannot be loaded there (the check below means something)', () => {
    const r = runIn(app, process.execPath, ['--input-type=module', '-e', "await import('tsx')"]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /ERR_MODULE_NOT_FOUND|Cannot find package 'tsx'/);
  });

  test('`pollgate --help` and `pollgate tail --help` run the compiled CLI with plain node', () => {
    const top = runIn(app, process.execPath, ['bin/pollgate.js', '--help']);
    assert.equal(top.status, 0, top.stderr);
    assert.match(top.stdout, /^Usage: pollgate /);
    assert.match(top.stdout, /\n {2}forward\b/);
    const tail = runIn(app, process.execPath, ['bin/pollgate.js', 'tail', '--help']);
    assert.equal(tail.status, 0, tail.stderr);
    assert.match(tail.stdout, /^Usage: pollgate tail/);
  });

  test('`npm start` serves from dist/: start, publish, poll, SIGTERM → exit 0', { timeout: 90_000 }, async () => {
    const dataDir = tempDir('pollgate-built-data-');
    const env = cleanEnv({
      POLLGATE_DATA_DIR: dataDir,
      POLLGATE_PORT: '0',
      POLLGATE_HOST: '127.0.0.1',
      POLLGATE_ADMIN_KEY: ADMIN_KEY,
      POLLGATE_DATABASE_URL: databaseUrlFor(dataDir),
    });
    const child = spawn('npm', ['start'], { cwd: app, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const listening = () => out.split('\n').find((l) => l.includes('"pollgate listening"'));
      await waitUntil(() => listening() !== undefined || child.exitCode !== null, 60_000, () => `the server listening\n${out}\n${err}`);
      assert.ok(listening(), `the server started\n${out}\n${err}`);
      const port = (JSON.parse(listening()!) as { port: number }).port;
      assert.match(out, /> exec node dist\/main\.js/, 'npm start runs the compiled server');
      const url = `http://127.0.0.1:${port}`;
      const call = async (path: string, key: string, body?: unknown) => {
        const res = await fetch(`${url}${path}`, {
          method: body === undefined ? 'GET' : 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
        return { status: res.status, body: (await res.json()) as any };
      };
      const consumer = await call('/v1/consumers', ADMIN_KEY, { tenant: 'built', start: 'earliest' });
      assert.equal(consumer.status, 201, JSON.stringify(consumer.body));
      const published = await call('/v1/events', ADMIN_KEY, { tenant: 'built', type: 'build.checked', data: { ok: true } });
      assert.equal(published.status, 201, JSON.stringify(published.body));
      const page = await call('/v1/events?wait=0', consumer.body.key);
      assert.equal(page.status, 200);
      assert.deepEqual(page.body.events.map((e: { id: string }) => e.id), [published.body.id]);
      const ui = await fetch(`${url}/ui/`);
      assert.equal(ui.status, 200, 'the ops page is served from dist/ui');
      await ui.text();

      child.kill('SIGTERM'); // the npm process only, as a process manager would
      assert.equal(await exited, 0, `npm start exits 0 on SIGTERM\n${out}\n${err}`);
    } finally {
      if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
      removeDir(dataDir);
    }
  });
});
