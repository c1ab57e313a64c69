/**
 * The pollgate-client package the way a customer gets it: `npm pack` of src/client, the tarball
 * installed into a fresh project (no registry: it has no dependencies), then used from a plain
 * .mjs (import) and a plain .cjs (require) against a real gateway, type-checked by a project made
 * with a default `tsc --init`, and its `forward` run against a real gateway delivering to a real
 * local receiver (signatures verified with the standardwebhooks library).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cleanEnv, ensureBuilt } from './support/built.ts';
import { ADMIN_KEY, gatewayFor } from './support/gateway.ts';
import { removeDir, ROOT, tempDir } from './support/process.ts';
import { receiverFor, verify } from './support/receiver.ts';
import { waitUntil } from './support/wait.ts';

const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
const SECRET = `whsec_${Buffer.from('a forward secret of 32 bytes....').toString('base64')}`;

let work: string;
let tarball: string;
/** A customer's project with the tarball installed. */
let project: string;

function run(command: string, args: string[], cwd: string, env: Record<string, string | undefined> = {}) {
  const r = spawnSync(command, args, { cwd, env: cleanEnv(env), encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The same, without blocking this process (where the test's gateway answers). */
function runAsync(command: string, args: string[], cwd: string, env: Record<string, string | undefined> = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(command, args, { cwd, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function ok(r: { code: number | null; stdout: string; stderr: string }, what: string) {
  assert.equal(r.code, 0, `${what}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

before(() => {
  ensureBuilt();
  work = tempDir('pollgate-client-pkg-');
  // --ignore-scripts: the build is current (ensureBuilt); prepack would rebuild the whole repository.
  const packed = JSON.parse(ok(run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], join(ROOT, 'src/client')), 'npm pack'));
  tarball = join(work, packed[0].filename);
  project = join(work, 'app');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'customer-app', version: '1.0.0', private: true }));
  ok(run('npm', ['install', '--offline', '--no-audit', '--no-fund', tarball], project), 'npm install <tarball>');
});

after(() => removeDir(work));

describe('pollgate-client, packed and installed', () => {
  test('the tarball holds compiled code only, and the install brings nothing else', () => {
    const files: string[] = JSON.parse(run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], join(ROOT, 'src/client')).stdout)[0].files.map(
      (f: { path: string }) => f.path,
    );
    assert.ok(files.includes('dist/esm/index.js') && files.includes('dist/cjs/index.js') && files.includes('dist/esm/index.d.ts'), files.join('\n'));
    assert.deepEqual(files.filter((f) => /\.ts$/.test(f) && !/\.d\.ts$/.test(f)), [], 'no TypeScript sources');
    assert.deepEqual(files.filter((f) => /python|\.py$|tsconfig/.test(f)), [], 'nothing but the JavaScript package');
    const installed = JSON.parse(readFileSync(join(project, 'node_modules/pollgate-client/package.json'), 'utf8'));
    assert.equal(installed.dependencies, undefined, 'no dependencies');
    assert.deepEqual(readdirSync(join(project, 'node_modules')).filter((n) => !n.startsWith('.')), ['pollgate-client']);
    // Every module it loads is its own or Node's: nothing of the server, no package.
    for (const file of files.filter((f) => f.endsWith('.js'))) {
      const text = readFileSync(join(project, 'node_modules/pollgate-client', file), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');
      const specifiers = [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\(\s*)["']([^"']+)["']/g)].map((m) => m[1]!);
      const foreign = specifiers.filter((s) => !s.startsWith('node:') && !/^\.\.?\/[\w./-]+\.js$/.test(s));
      assert.deepEqual(foreign, [], `${file} loads only its own modules and node:*`);
      const outside = specifiers.filter((s) => s.startsWith('.') && !join(file, '..', s).startsWith('dist/'));
      assert.deepEqual(outside, [], `${file} stays inside the package`);
    }
    const version = /CLIENT_VERSION = '([^']+)'/.exec(readFileSync(join(ROOT, 'src/client/version.ts'), 'utf8'))![1];
    assert.equal(version, installed.version, 'src/client/version.ts follows package.json');
  });

  for (const [kind, file, source] of [
    [
      'import from a plain .mjs',
      'consume.mjs',
      "import { createClient, createAdminClient, PollgateError } from 'pollgate-client';\nawait main();\n",
    ],
    [
      'require from a plain .cjs',
      'consume.cjs',
      "const { createClient, createAdminClient, PollgateError } = require('pollgate-client');\nmain().catch((e) => { console.error(e); process.exit(1); });\n",
    ],
  ] as const) {
    test(`${kind}: publish, poll and ack through the SDK`, async (t) => {
      const g = await gatewayFor(t);
      const tenant = `pkg-${file.replace('.', '-')}`;
      writeFileSync(
        join(project, file),
        `${source}
async function main() {
  const { POLLGATE_URL: url, ADMIN_KEY: adminKey, TENANT: tenant } = process.env;
  const admin = createAdminClient({ url, key: adminKey });
  const consumer = await admin.createConsumer({ tenant, start: 'earliest' });
  const published = [await admin.publish({ tenant, type: 'pkg.a', data: 1 }), await admin.publish({ tenant, type: 'pkg.b', data: 2 })];
  const client = createClient({ url, key: consumer.key });
  const stop = new AbortController();
  const seen = [];
  for await (const event of client.events({ wait: 1, signal: stop.signal })) {
    seen.push(event.id);
    if (seen.length === published.length) stop.abort();
  }
  let refused;
  try {
    await createClient({ url, key: 'pgk_wrong' }).poll({ wait: 0 });
  } catch (error) {
    refused = error instanceof PollgateError ? error.status : String(error);
  }
  // A templated webhook: configured, previewed and test-sent to the receiver, through the SDK.
  const hook = await admin.setWebhook(consumer.id, {
    url: process.env.RECEIVER_URL + 'orders/{{type}}',
    method: 'PUT',
    body: '{"d": {{data}}, "type": "{{type}}"}',
    auth: { type: 'bearer', token: 'pkg-token' },
    enabled: false,
  });
  const preview = await admin.previewWebhook(consumer.id, { cursor: published[1].cursor });
  const sent = await admin.testWebhook(consumer.id, { cursor: published[1].cursor });
  console.log(JSON.stringify({ id: consumer.id, published: published.map((e) => e.id), last: published[1].cursor, seen, refused, secret: hook.secret, preview, sent }));
}
`,
      );
      const receiver = await receiverFor(t, () => ({ status: 200, body: 'got it' }));
      const r = ok(await runAsync(process.execPath, [file], project, { POLLGATE_URL: g.url, ADMIN_KEY, TENANT: tenant, RECEIVER_URL: receiver.url }), file);
      const out = JSON.parse(r);
      assert.deepEqual(out.seen, out.published, 'every event, in order');
      assert.equal(out.refused, 401, 'errors are the package’s PollgateError');
      const committed = await g.json(`/v1/consumers/${out.id}`);
      assert.equal(committed.body.cursor, out.last, 'the iterator acked what the loop finished');

      assert.deepEqual(out.preview.request, {
        method: 'PUT',
        url: `${receiver.url}orders/pkg.b`,
        headers: out.preview.request.headers,
        body: '{"d": 2, "type": "pkg.b"}',
      });
      assert.equal(out.preview.request.headers.authorization, 'Bearer •••', 'previews hide credentials');
      assert.deepEqual([out.sent.ok, out.sent.status, out.sent.response.body], [true, 200, 'got it']);
      assert.equal(receiver.requests.length, 1, 'the test send, and nothing else (the webhook is disabled)');
      const [got] = receiver.requests;
      assert.deepEqual([got!.method, got!.path, got!.body, got!.headers.authorization], ['PUT', '/orders/pkg.b', '{"d": 2, "type": "pkg.b"}', 'Bearer pkg-token']);
      assert.deepEqual(verify(out.secret, got!), { d: 2, type: 'pkg.b' }, 'signed (standardwebhooks verifies it)');
    });
  }

  test('a default `tsc --init` project type-checks against it (ES module and CommonJS files)', () => {
    const dir = join(work, 'typed');
    mkdirSync(dir);
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'typed-app', version: '1.0.0', private: true }));
    ok(run('npm', ['install', '--offline', '--no-audit', '--no-fund', tarball], dir), 'npm install <tarball>');
    ok(run(process.execPath, [TSC, '--init'], dir), 'tsc --init');
    const body = (imported: string) => `${imported}
const client = createClient({ url: 'http://127.0.0.1:8080', key: 'pgk_x' });
async function drain(signal: AbortSignal): Promise<string[]> {
  const ids: string[] = [];
  for await (const event of client.events<{ n: number }>({ wait: 5, signal })) {
    const n: number = event.data.n;
    ids.push(\`\${event.id}:\${n}\`);
  }
  return ids;
}
function describe(error: unknown): string {
  return error instanceof PollgateError ? \`\${error.status} \${error.code}\` : 'other';
}
void drain;
void describe;
// The types are real: each misuse below must be an error.
// @ts-expect-error wait is a number of seconds
client.events({ wait: '5' });
// @ts-expect-error url is required
createClient({ key: 'pgk_x' });
const admin = createAdminClient({ url: 'http://127.0.0.1:8080', key: 'pga_x' });
async function shapes(): Promise<string | null> {
  await admin.setWebhook('con_x', { url: 'https://h.example/{{data.id}}', method: 'GET', format: 'json', auth: { type: 'api_key', in: 'query', name: 'k', value: 'v' }, retry: { schedule: ['30m'] } });
  const preview = await admin.previewWebhook('con_x', { event: { data: { id: 1 } } });
  const result = await admin.testWebhook('con_x');
  const delivery = (await admin.deliveries('con_x')).deliveries[0];
  return preview.request?.body ?? result.response?.body ?? delivery?.response ?? null;
}
void shapes;
// @ts-expect-error not a method pollgate sends
admin.setWebhook('con_x', { url: 'https://h.example/', method: 'TRACE' });
// @ts-expect-error auth needs its secret
admin.setWebhook('con_x', { url: 'https://h.example/', auth: { type: 'bearer' } });
`;
    writeFileSync(join(dir, 'esm.mts'), body("import { createAdminClient, createClient, PollgateError } from 'pollgate-client';"));
    writeFileSync(join(dir, 'cjs.cts'), body("import pollgate = require('pollgate-client');\nconst { createAdminClient, createClient, PollgateError } = pollgate;"));
    ok(run(process.execPath, [TSC, '--noEmit', '-p', '.'], dir), 'tsc --noEmit');
  });

  test('`pollgate-client forward` delivers signed webhooks from a real gateway to a local receiver', { timeout: 60_000 }, async (t) => {
    const g = await gatewayFor(t);
    const receiver = await receiverFor(t);
    const tenant = 'pkg-forward';
    const consumer = await g.createConsumer({ tenant, start: 'latest' });
    const events = [await g.publish({ tenant, type: 'pkg.fwd', data: { n: 1 } }), await g.publish({ tenant, type: 'pkg.fwd', data: { n: 2 } })];
    const bin = join(project, 'node_modules/.bin/pollgate-client');
    const child = spawn(bin, ['forward', '--to', `${receiver.url}hook`, '--secret', SECRET, '--wait', '1'], {
      cwd: project,
      env: cleanEnv({ POLLGATE_URL: g.url, POLLGATE_KEY: consumer.key }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await receiver.waitForCount(2, 20_000);
      assert.deepEqual(receiver.requests.map((r) => r.headers['webhook-id']), events.map((e) => e.id), 'in log order, once each');
      for (const [i, r] of receiver.requests.entries()) {
        assert.equal(r.path, '/hook');
        assert.match(String(r.headers['user-agent']), /^pollgate-forward\//);
        assert.deepEqual(verify(SECRET, r), events[i], 'the envelope, signed (standardwebhooks verifies it)');
      }
      await waitUntil(async () => (await g.json(`/v1/consumers/${consumer.id}`)).body.cursor === events[1].cursor, 10_000, () => `the ack\n${err}`);
      child.kill('SIGTERM');
      assert.equal(await exited, 0, err);
      assert.match(err, /forward: stopped/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  test('`pollgate-client tail` prints NDJSON; usage errors exit 2', async (t) => {
    const g = await gatewayFor(t);
    const tenant = 'pkg-tail';
    const consumer = await g.createConsumer({ tenant, start: 'latest' });
    const e = await g.publish({ tenant, type: 'pkg.tail', data: null });
    const bin = join(project, 'node_modules/.bin/pollgate-client');
    const r = await runAsync(bin, ['tail', '--count', '1', '--wait', '1'], project, { POLLGATE_URL: g.url, POLLGATE_KEY: consumer.key });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), e);
    const bad = run(bin, ['forward', '--to', 'nowhere', '--key', 'pgk_x'], project);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--to/);
  });
});
