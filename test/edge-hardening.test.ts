/**
 * The HTTP edge under hostile or unlucky clients (issue 10, findings 2, 4, 6 and the edge
 * parts of 7), against real servers on loopback, on both engines:
 *
 * - body checks are linear (a body of long digit runs does not block the event loop), and
 *   routes that take small documents take small bodies;
 * - a client that sends an oversized body reads the 413 (Node's own fetch, against a server
 *   in its own process: in one process the race that loses the answer does not happen), and
 *   the SDK's error for it is typed and final;
 * - slow headers, slow bodies and idle keep-alive connections are closed after their
 *   configured timeouts, connections over the cap are closed as they arrive, and a held poll
 *   of POLLGATE_MAX_WAIT is never cut;
 * - /readyz tells nothing about the data and is 503 while writes fail; SQLite files are
 *   0600; a non-UTF-8 charset is a 415 and invalid UTF-8 a 400.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import pg from 'pg';
import pino from 'pino';
import { createAdminClient, isRetryable, NetworkError, PayloadTooLargeError } from '../src/client/index.ts';
import { ConfigError, configHelp, loadConfig } from '../src/config.ts';
import { ApiError } from '../src/errors.ts';
import { capConnections } from '../src/http/server-limits.ts';
import { createWriter } from '../src/store/sqlite/writer.ts';
import { appendedTotal } from './support/appended.ts';
import { assertError } from './support/assertions.ts';
import { POSTGRES_ONLY, SQLITE_ONLY } from './support/engine.ts';
import { ADMIN_KEY, gatewayFor, startGateway, tempDir, type TestGateway } from './support/gateway.ts';
import { TEST_POSTGRES_URL } from './support/postgres.ts';
import { killAllServers, startServer, TEST_ADMIN_KEY } from './support/process.ts';
import { sleep, waitUntil, within } from './support/wait.ts';

after(() => killAllServers());

const MiB = 1024 * 1024;

/** A raw POST of bytes to the gateway (admin key unless told). */
function postBytes(g: TestGateway, path: string, bytes: string | Buffer, opts: { key?: string; contentType?: string } = {}) {
  return g.json(path, { method: 'POST', raw: bytes, key: opts.key ?? ADMIN_KEY, headers: { 'content-type': opts.contentType ?? 'application/json' } });
}

describe('body checks are linear; small documents take small bodies', () => {
  test('an 8 MiB body of 308-digit runs does not block the event loop (it blocked it for seconds)', async (t) => {
    const g = await gatewayFor(t);
    const run = '1'.repeat(308); // each parses to a finite 1.1e307: only the check's cost is at stake
    const head = '{"tenant":"t","type":"digits","data":[';
    const count = Math.floor((8 * MiB - head.length - 2) / (run.length + 1));
    const body = `${head}${Array(count).fill(run).join(',')}]}`;
    assert.ok(Buffer.byteLength(body) <= 8 * MiB && Buffer.byteLength(body) > 8 * MiB - 400);

    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const started = performance.now();
    const r = await postBytes(g, '/v1/events', body);
    const ms = performance.now() - started;
    loop.disable();
    const worstMs = loop.max / 1e6;
    t.diagnostic(`8 MiB of 308-digit runs: answered in ${ms.toFixed(0)} ms, longest event-loop stall ${worstMs.toFixed(0)} ms`);
    // Read whole and checked, then refused for its size as one event's data (256 KiB).
    assertError(r, 413, 'payload_too_large', 'data');
    assert.ok(worstMs < 1_000, `the event loop stalled ${worstMs.toFixed(0)} ms on one body`);
  });

  test('numbers out of range are still refused on every route; the same digits in a string are data', async (t) => {
    const g = await gatewayFor(t);
    const c = await g.createConsumer({ tenant: 'range' });
    const before = await appendedTotal(g.url, ADMIN_KEY);
    for (const literal of ['1e400', '-2.5E+308', '9'.repeat(309), `${'9'.repeat(309)}.5`]) {
      const r = await postBytes(g, '/v1/events', `{"tenant":"range","type":"n","data":{"x":[1,${literal}]}}`);
      assertError(r, 400, 'invalid_json');
      assert.match(r.body.error.message, /out of range/);
    }
    assertError(await postBytes(g, '/v1/ack', '{"cursor":1e999}', { key: c.key }), 400, 'invalid_json');
    assert.equal(await appendedTotal(g.url, ADMIN_KEY), before, 'nothing stored');
    const digits = '9'.repeat(400);
    const ok = await postBytes(g, '/v1/events', `{"tenant":"range","type":"n","data":{"s":"${digits}","small":1e300,"tiny":1e-400}}`);
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    assert.deepEqual(ok.body.data, { s: digits, small: 1e300, tiny: 0 });
  });

  test('ack and seek take at most 64 KiB, consumer settings 512 KiB; publish keeps POLLGATE_MAX_BODY_BYTES', async (t) => {
    const g = await gatewayFor(t);
    const c = await g.createConsumer({ tenant: 'small' });
    const pad = (bytes: number) => 'x'.repeat(bytes);

    const ack = await postBytes(g, '/v1/ack', `{"cursor":"${c.cursor}","pad":"${pad(64 * 1024)}"}`, { key: c.key });
    assertError(ack, 413, 'payload_too_large');
    assert.equal(ack.body.error.limit, 64 * 1024);
    const seek = await postBytes(g, `/v1/consumers/${c.id}/seek`, `{"to":"earliest","pad":"${pad(64 * 1024)}"}`);
    assertError(seek, 413, 'payload_too_large');
    assert.equal(seek.body.error.limit, 64 * 1024);
    // Under the bound the body is read and judged on its content.
    assertError(await postBytes(g, `/v1/consumers/${c.id}/seek`, `{"to":"earliest","pad":"${pad(60 * 1024)}"}`), 400, 'invalid_request');

    const create = await postBytes(g, '/v1/consumers', `{"tenant":"small","name":"${pad(512 * 1024)}"}`);
    assertError(create, 413, 'payload_too_large');
    assert.equal(create.body.error.limit, 512 * 1024);
    const patch = await g.json(`/v1/consumers/${c.id}`, { method: 'PATCH', raw: `{"name":"${pad(512 * 1024)}"}`, headers: { 'content-type': 'application/json' } });
    assertError(patch, 413, 'payload_too_large');
    // The largest filter the filter rules allow fits: 100 type patterns of 200 characters.
    const types = Array.from({ length: 100 }, (_, i) => `t${i}.${'a'.repeat(195)}`.slice(0, 200));
    const big = await g.json('/v1/consumers', { body: { tenant: 'small', filter: { types } } });
    assert.equal(big.status, 201, JSON.stringify(big.body).slice(0, 300));

    // The webhook routes and the bridge toggle too.
    const hook = await g.json(`/v1/consumers/${c.id}/webhook`, { method: 'PUT', raw: `{"url":"http://127.0.0.1:9/","pad":"${pad(512 * 1024)}"}`, headers: { 'content-type': 'application/json' } });
    assertError(hook, 413, 'payload_too_large');
    assert.equal(hook.body.error.limit, 512 * 1024);
    const bridge = await g.json('/v1/bridge', { method: 'PUT', raw: `{"enabled":true,"pad":"${pad(64 * 1024)}"}`, headers: { 'content-type': 'application/json' } });
    assertError(bridge, 413, 'payload_too_large');
    assert.equal(bridge.body.error.limit, 64 * 1024);
    assert.equal((await g.json(`/v1/consumers/${c.id}/webhook`)).status, 404, 'nothing was configured');

    // Publish: a 2 MiB batch is fine under the default 8 MiB.
    const batch = Array.from({ length: 10 }, (_, i) => ({ tenant: 'small', type: 'big', data: `${i}${pad(200 * 1024)}` }));
    const published = await g.json('/v1/events', { body: batch });
    assert.equal(published.status, 201, JSON.stringify(published.body).slice(0, 300));
    assert.equal(published.body.events.length, 10);
  });
});

describe('an oversized body gets its 413 to the client, and the SDK says it is final', () => {
  const LIMIT = 1 * MiB;

  test('Node fetch sending 4 MiB to a 1 MiB limit reads the 413 JSON answer every time, with and without Content-Length', { timeout: 120_000 }, async (t) => {
    // The server in its own process, as deployed: the answer races the client's upload.
    const server = await startServer({ env: { POLLGATE_MAX_BODY_BYTES: String(LIMIT), POLLGATE_LOG_LEVEL: 'warn' } });
    t.after(() => server.stop());
    const body = Buffer.from(JSON.stringify({ tenant: 'big', type: 'a', data: 'x'.repeat(4 * MiB) }));
    const failures: string[] = [];
    for (const mode of ['content-length', 'chunked'] as const) {
      for (let i = 0; i < 10; i++) {
        let sent = 0;
        const payload =
          mode === 'content-length'
            ? body
            : new ReadableStream<Uint8Array>({
                pull(c) {
                  if (sent >= body.length) return c.close();
                  c.enqueue(body.subarray(sent, sent + 64 * 1024));
                  sent += 64 * 1024;
                },
              });
        try {
          const res = await fetch(`${server.url}/v1/events`, {
            method: 'POST',
            body: payload,
            duplex: 'half',
            headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' },
          } as RequestInit & { duplex: 'half' });
          const text = await res.text();
          const parsed = JSON.parse(text);
          if (res.status !== 413 || parsed.error?.code !== 'payload_too_large' || parsed.error?.limit !== LIMIT) {
            failures.push(`${mode} #${i}: ${res.status} ${text.slice(0, 100)}`);
          }
        } catch (error) {
          const e = error as Error & { cause?: { code?: string } };
          failures.push(`${mode} #${i}: ${e.cause?.code ?? e.message}`);
        }
      }
    }
    assert.deepEqual(failures, [], 'every try read the 413');
    assert.equal(await appendedTotal(server.url, TEST_ADMIN_KEY), 0, 'nothing stored');
  });

  test('the SDK: an oversized publish rejects with PayloadTooLargeError, which is not retryable', { timeout: 60_000 }, async (t) => {
    const server = await startServer({ env: { POLLGATE_MAX_BODY_BYTES: String(LIMIT), POLLGATE_LOG_LEVEL: 'warn' } });
    t.after(() => server.stop());
    const admin = createAdminClient({ url: server.url, key: TEST_ADMIN_KEY });
    const batch = Array.from({ length: 40 }, (_, i) => ({ tenant: 'sdk', type: 'big', id: `big-${i}`, data: 'y'.repeat(100 * 1024) }));
    for (let i = 0; i < 5; i++) {
      const error = await admin.publish(batch).then(
        () => assert.fail('an oversized batch was accepted'),
        (e: unknown) => e,
      );
      assert.ok(!(error instanceof NetworkError), `try ${i}: a broken connection instead of the answer: ${String(error)}`);
      assert.ok(error instanceof PayloadTooLargeError, `try ${i}: ${String(error)}`);
      assert.equal(error.status, 413);
      assert.equal(error.code, 'payload_too_large');
      assert.equal(error.limit, LIMIT);
      assert.equal(isRetryable(error), false, 'final: the same batch gets the same answer');
    }
    // A batch that fits goes through on the same client.
    const fits = await admin.publish(batch.slice(0, 5));
    assert.equal(fits.length, 5);
  });
});

/** Opens a raw TCP connection, writes text, and resolves with what came back and when it closed. */
function rawExchange(port: number, text: string, timeoutMs: number): Promise<{ closedAfterMs: number; received: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const started = performance.now();
    let received = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server kept the connection open for ${timeoutMs} ms; got: ${JSON.stringify(received.slice(0, 200))}`));
    }, timeoutMs);
    socket.on('data', (d) => (received += d.toString('latin1')));
    socket.on('error', () => {}); // a reset is a close too
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ closedAfterMs: performance.now() - started, received });
    });
    socket.write(text);
  });
}

describe('connection limits and timeouts (POLLGATE_HEADERS_TIMEOUT, _REQUEST_TIMEOUT, _KEEP_ALIVE_TIMEOUT, _MAX_CONNECTIONS)', () => {
  const timeouts = { headersTimeoutMs: 400, requestTimeoutMs: 1_000, keepAliveTimeoutMs: 400, maxWaitMs: 2_500 };

  test('a connection that never finishes its headers is answered 408 and closed after the headers timeout', async (t) => {
    const g = await gatewayFor(t, { config: timeouts });
    const port = Number(new URL(g.url).port);
    const r = await rawExchange(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ', 5_000);
    assert.match(r.received, /^HTTP\/1\.1 408/);
    assert.ok(r.closedAfterMs >= 350, `closed after ${r.closedAfterMs.toFixed(0)} ms, not before the timeout`);
    t.diagnostic(`slow headers closed after ${r.closedAfterMs.toFixed(0)} ms (timeout 400 ms)`);
  });

  test('a body that stops arriving is cut after the request timeout', async (t) => {
    const g = await gatewayFor(t, { config: timeouts });
    const port = Number(new URL(g.url).port);
    const head = `POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_KEY}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n`;
    const r = await rawExchange(port, `${head}{"tenant":"slow",`, 5_000);
    assert.match(r.received, /^HTTP\/1\.1 408/);
    assert.ok(r.closedAfterMs >= 900, `closed after ${r.closedAfterMs.toFixed(0)} ms, not before the timeout`);
    assert.equal(await appendedTotal(g.url, ADMIN_KEY), 0);
    t.diagnostic(`slow body cut after ${r.closedAfterMs.toFixed(0)} ms (timeout 1000 ms)`);
  });

  test('an idle keep-alive connection is closed after the keep-alive timeout', async (t) => {
    const g = await gatewayFor(t, { config: timeouts });
    const port = Number(new URL(g.url).port);
    const r = await rawExchange(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', 5_000);
    assert.match(r.received, /^HTTP\/1\.1 200/);
    assert.ok(r.closedAfterMs >= 350 && r.closedAfterMs < 3_000, `closed after ${r.closedAfterMs.toFixed(0)} ms`);
  });

  test('a held poll of POLLGATE_MAX_WAIT (longer than every timeout) is not cut', async (t) => {
    const g = await gatewayFor(t, { config: timeouts });
    const c = await g.createConsumer({ tenant: 'held' });
    const started = performance.now();
    const r = await within(g.json('/v1/events?wait=2.5', { key: c.key }), 10_000, 'the held poll');
    const ms = performance.now() - started;
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.events, []);
    assert.ok(ms >= 2_300, `held ${ms.toFixed(0)} ms, its whole wait`);
    // And one that gets an event while held.
    const woken = g.json('/v1/events?wait=2.5', { key: c.key });
    await sleep(1_500);
    await g.publish({ tenant: 'held', type: 'late', data: 1 });
    const w = await within(woken, 5_000, 'the woken poll');
    assert.equal(w.status, 200);
    assert.deepEqual(w.body.events.map((e: any) => e.type), ['late']);
  });

  test('connections over the cap are closed as they arrive; a held poll goes on and gets its event', async (t) => {
    const g = await gatewayFor(t, { config: { maxConnections: 2, keepAliveTimeoutMs: 30_000 } });
    const port = Number(new URL(g.url).port);
    // Set up on a connection that closes after its answer (agent: false), so the count is ours.
    const made = await nodeRequest(port, '/v1/consumers', { agent: false, body: { tenant: 'cap' } });
    assert.equal(made.status, 201, made.text);
    const c = JSON.parse(made.text);
    const pollAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const publishAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    t.after(() => {
      pollAgent.destroy();
      publishAgent.destroy();
    });
    const held = nodeRequest(port, '/v1/events?wait=10', { key: c.key, agent: pollAgent });
    // The second connection, kept open; the set-up one may take a moment to be let go.
    await waitUntil(
      () => nodeRequest(port, '/healthz', { agent: publishAgent }).then((r) => r.status === 200, () => false),
      3_000,
      () => 'a second connection',
    );

    const third = await rawExchange(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', 3_000);
    assert.equal(third.received, '', 'a connection over the cap gets no answer');

    const published = await nodeRequest(port, '/v1/events', { agent: publishAgent, body: { tenant: 'cap', type: 'in', data: 1 } });
    assert.equal(published.status, 201, published.text);
    const answer = await within(held, 5_000, 'the held poll');
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(JSON.parse(answer.text).events.map((e: any) => e.type), ['in']);
  });

  test('the settings are read, have defaults, are in the help; a headers timeout over the request timeout is refused', () => {
    const defaults = loadConfig({});
    assert.equal(defaults.maxConnections, 16_384);
    assert.equal(defaults.headersTimeoutMs, 10_000);
    assert.equal(defaults.requestTimeoutMs, 30_000);
    assert.equal(defaults.keepAliveTimeoutMs, 5_000);
    const set = loadConfig({ POLLGATE_MAX_CONNECTIONS: '500', POLLGATE_HEADERS_TIMEOUT: '2s', POLLGATE_REQUEST_TIMEOUT: '1m', POLLGATE_KEEP_ALIVE_TIMEOUT: '750ms' });
    assert.deepEqual([set.maxConnections, set.headersTimeoutMs, set.requestTimeoutMs, set.keepAliveTimeoutMs], [500, 2_000, 60_000, 750]);
    assert.equal(loadConfig({}, ['--keep-alive-timeout', '9s']).keepAliveTimeoutMs, 9_000);
    assert.throws(() => loadConfig({ POLLGATE_HEADERS_TIMEOUT: '40s' }), (e: unknown) => e instanceof ConfigError && /POLLGATE_HEADERS_TIMEOUT/.test(e.message));
    assert.throws(() => loadConfig({ POLLGATE_REQUEST_TIMEOUT: '0s' }), ConfigError);
    assert.throws(() => loadConfig({ POLLGATE_MAX_CONNECTIONS: '0' }), ConfigError);
    const help = configHelp();
    for (const name of ['POLLGATE_MAX_CONNECTIONS', 'POLLGATE_HEADERS_TIMEOUT', 'POLLGATE_REQUEST_TIMEOUT', 'POLLGATE_KEEP_ALIVE_TIMEOUT']) {
      assert.match(help, new RegExp(`--[a-z-]+\\s+${name}\\s+\\S`), `${name} in the help`);
    }
  });

  test('the cap is lowered to leave file descriptors for the database and webhooks under a low open-file limit', () => {
    const config = loadConfig({});
    const server = http.createServer();
    const log = pino({ level: 'silent' });
    assert.equal(capConnections(server, config, log, 1024), 1024 - 64 - config.pushConcurrency - config.databasePoolSize);
    assert.equal(server.maxConnections, 1024 - 64 - 256 - 10);
    assert.equal(capConnections(server, config, log, 1_048_576), 16_384, 'a high limit leaves the setting as it is');
    assert.equal(capConnections(server, config, log, null), 16_384, 'no limit known: the setting');
  });
});

type NodeReply = { status: number; text: string };

function nodeRequest(port: number, path: string, opts: { key?: string; agent: http.Agent | false; body?: unknown }): Promise<NodeReply> {
  return new Promise((resolve, reject) => {
    const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: payload ? 'POST' : 'GET',
        agent: opts.agent,
        headers: {
          authorization: `Bearer ${opts.key ?? ADMIN_KEY}`,
          ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}


const hasPrlimit = spawnSync('prlimit', ['--version']).status === 0;

function prlimit(pid: number, arg: string): void {
  const r = spawnSync('prlimit', ['--pid', String(pid), arg], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`prlimit ${arg}: ${r.stderr}`);
}

describe('/readyz: no data, and not ready while writes fail', () => {
  test('/readyz tells status, engine and node only, not the volume of events', async (t) => {
    const g = await gatewayFor(t);
    await g.publish([{ tenant: 'a', type: 'x', data: 1 }, { tenant: 'b', type: 'x', data: 2 }]);
    const r = await g.json('/readyz', { key: null });
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.body).sort(), ['engine', 'node', 'status']);
    assert.equal(r.body.status, 'ready');
    assert.equal(await appendedTotal(g.url, ADMIN_KEY), 2, 'the count is in /metrics, behind the admin key');
  });

  test('SQLite: /readyz is 503 while every write fails (the file size limit reached, as on a full disk) and 200 once writes go through', {
    skip: SQLITE_ONLY || (hasPrlimit ? false : 'needs prlimit (util-linux) to limit the server’s file size'),
    timeout: 90_000,
  }, async (t) => {
    const server = await startServer({ env: { POLLGATE_LOG_LEVEL: 'warn' } });
    t.after(() => server.stop());
    const call = (path: string, body?: unknown) =>
      fetch(`${server.url}${path}`, {
        method: body === undefined ? 'GET' : 'POST',
        headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      }).then(async (r) => ({ status: r.status, body: await r.json() as any }));
    const event = (i: number) => ({ tenant: 'full', type: 'big', data: `${i}:${'z'.repeat(150 * 1024)}` });
    assert.equal((await call('/v1/events', event(0))).status, 201);

    // The server may write files up to 1 MiB past what it has now: then the disk is "full".
    const largest = Math.max(...readdirSync(server.dataDir).filter((f) => f.startsWith('pollgate.db')).map((f) => statSync(join(server.dataDir, f)).size));
    prlimit(server.pid, `--fsize=${largest + MiB}:`);
    let lifted = false;
    const lift = () => {
      if (!lifted && !server.hasExited) prlimit(server.pid, '--fsize=unlimited:');
      lifted = true;
    };
    t.after(lift);

    let notReady: any = null;
    const statuses: number[] = [];
    for (let i = 1; i <= 40 && !notReady; i++) {
      const r = await call('/v1/events', event(i));
      statuses.push(r.status);
      assert.ok(r.status === 201 || r.status === 503, `a publish on a full disk is 201 or 503, never ${r.status}: ${JSON.stringify(r.body)}`);
      if (r.status !== 503) continue;
      assert.equal(r.body.error.code, 'unavailable');
      const ready = await call('/readyz');
      if (ready.status === 503) notReady = ready.body;
    }
    assert.ok(notReady, `/readyz never said 503; publishes: ${statuses.join(' ')}`);
    assert.equal(notReady.status, 'writes_failing');
    assert.match(notReady.reason, /^SQLITE_(FULL|IOERR)/);
    assert.ok(Date.parse(notReady.since) <= Date.now());
    assert.equal((await call('/healthz')).status, 200, 'alive all the same');
    assert.equal((await call('/readyz')).status, 503, 'still not ready: the next write fails too');

    lift();
    await waitUntil(async () => (await call('/readyz')).status === 200, 10_000, () => '/readyz 200 after the disk has room');
    assert.equal((await call('/v1/events', event(99))).status, 201);
  });

  test('PostgreSQL: /readyz is 503 while the database refuses writes (read-only) and 200 once it takes them again', { skip: POSTGRES_ONLY, timeout: 60_000 }, async (t) => {
    const g = await gatewayFor(t);
    const name = new URL(g.config.databaseUrl!).pathname.slice(1);
    const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
    await admin.connect();
    t.after(() => admin.end());
    /** Ends the gateway's sessions: the pool reconnects with the database's new defaults. */
    const reconnect = () => admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
    await g.publish({ tenant: 'ro', type: 'a', data: 1 });
    assert.equal((await g.json('/readyz', { key: null })).status, 200);

    await admin.query(`ALTER DATABASE "${name}" SET default_transaction_read_only = on`);
    await reconnect();
    let notReady: any = null;
    await waitUntil(async () => {
      const r = await g.json('/v1/events', { body: { tenant: 'ro', type: 'a', data: 2 } });
      assert.equal(r.status, 503, `a publish to a read-only database: ${r.status} ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, 'unavailable');
      const ready = await g.json('/readyz', { key: null });
      if (ready.status === 503 && ready.body.status === 'writes_failing') notReady = ready.body;
      return notReady !== null;
    }, 15_000, () => '/readyz 503 writes_failing');
    assert.match(notReady.reason, /25006|read-only/);
    assert.equal((await g.json('/v1/consumers')).status, 200, 'reads go on: the database answers, it only refuses writes');
    assert.equal((await g.json('/healthz', { key: null })).status, 200);

    await admin.query(`ALTER DATABASE "${name}" RESET default_transaction_read_only`);
    await reconnect();
    await waitUntil(async () => (await g.json('/readyz', { key: null })).status === 200, 15_000, () => '/readyz 200 once writes go through');
    assert.equal((await g.json('/v1/events', { body: { tenant: 'ro', type: 'a', data: 3 } })).status, 201);
  });
});

test('SQLite: a group that runs out of room fails as unavailable with the storage\'s own cause (SQLITE_FULL), the reason /readyz shows', { skip: SQLITE_ONLY }, async (t) => {
  const dir = tempDir('pollgate-full-');
  const db = new Database(join(dir, 'full.db'));
  t.after(() => {
    db.close();
    spawnSync('rm', ['-rf', dir]);
  });
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t (v BLOB)');
  db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true })}`); // no room for another page
  const writer = createWriter(db);
  const outcomes = await Promise.allSettled([
    writer.write((x) => x.prepare('INSERT INTO t VALUES (?)').run(Buffer.alloc(10)).changes),
    writer.write((x) => x.prepare('INSERT INTO t VALUES (?)').run(Buffer.alloc(100_000)).changes),
  ]);
  for (const o of outcomes) {
    assert.equal(o.status, 'rejected');
    const error = (o as PromiseRejectedResult).reason;
    assert.ok(error instanceof ApiError && error.code === 'unavailable', String(error));
    assert.equal((error.cause as { code?: string }).code, 'SQLITE_FULL', 'the cause is the full database, not a savepoint SQLite already rolled back');
  }
  assert.equal(db.inTransaction, false);
  db.pragma('max_page_count = 1073741823');
  assert.equal(await writer.write((x) => x.prepare('INSERT INTO t VALUES (?)').run(Buffer.alloc(100_000)).changes), 1, 'with room again, writes go through');
});

describe('SQLite files are private; the body is UTF-8 JSON', () => {
  test('SQLite: the database files are 0600 in a data directory that already exists (0755), and tightened when found 0644', { skip: SQLITE_ONLY }, async (t) => {
    const dir = tempDir('pollgate-modes-');
    chmodSync(dir, 0o755); // made by an operator, readable by all
    const modes = () =>
      Object.fromEntries(readdirSync(dir).filter((f) => f.startsWith('pollgate.')).map((f) => [f, (statSync(join(dir, f)).mode & 0o777).toString(8)]));
    const expectPrivate = (what: string) => {
      const seen = modes();
      for (const f of ['pollgate.db', 'pollgate.db-wal', 'pollgate.db-shm', 'pollgate.lock']) assert.ok(f in seen, `${what}: ${f} exists: ${JSON.stringify(seen)}`);
      for (const [f, mode] of Object.entries(seen)) assert.equal(mode, '600', `${what}: ${f} is ${mode}`);
    };
    const first = await startGateway({ dataDir: dir });
    try {
      await first.createConsumer({ tenant: 'modes' });
      await first.publish({ tenant: 'modes', type: 'a', data: 1 });
      expectPrivate('created');
    } finally {
      await first.close();
    }
    for (const f of readdirSync(dir)) if (f.startsWith('pollgate.')) chmodSync(join(dir, f), 0o644);
    const second = await startGateway({ dataDir: dir });
    t.after(async () => {
      await second.close();
      spawnSync('rm', ['-rf', dir]);
    });
    await second.publish({ tenant: 'modes', type: 'a', data: 2 });
    expectPrivate('reopened');
  });

  test('a declared charset other than UTF-8 is 415; invalid UTF-8 is 400 naming the byte; nothing is stored', async (t) => {
    const g = await gatewayFor(t);
    const c = await g.createConsumer({ tenant: 'utf' });
    const before = await appendedTotal(g.url, ADMIN_KEY);
    const json = '{"tenant":"utf","type":"a","data":"caf\u00e9"}';
    for (const type of ['application/json; charset=latin1', 'application/json;charset=ISO-8859-1', 'application/json; charset="utf-16"']) {
      const r = await postBytes(g, '/v1/events', Buffer.from(json, 'latin1'), { contentType: type });
      assertError(r, 415, 'unsupported_media_type');
      assert.match(r.body.error.message, /charset/);
    }
    assertError(await postBytes(g, '/v1/ack', `{"cursor":"${c.cursor}"}`, { key: c.key, contentType: 'application/json; charset=latin1' }), 415, 'unsupported_media_type');

    const prefix = Buffer.from('{"tenant":"utf","type":"a","data":"caf');
    for (const bad of [[0xe9], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82]]) {
      const r = await postBytes(g, '/v1/events', Buffer.concat([prefix, Buffer.from(bad), Buffer.from('"}')]));
      assertError(r, 400, 'invalid_json');
      assert.match(r.body.error.message, new RegExp(`not valid UTF-8 \\(at byte ${prefix.length}\\)`), `bytes ${bad.map((b) => b.toString(16)).join(' ')}`);
    }
    const ack = await postBytes(g, '/v1/ack', Buffer.concat([Buffer.from('{"cursor":"'), Buffer.from([0xff]), Buffer.from('"}')]), { key: c.key });
    assertError(ack, 400, 'invalid_json');
    assert.equal(await appendedTotal(g.url, ADMIN_KEY), before, 'nothing stored');

    for (const type of ['application/json; charset=utf-8', 'application/json; charset="UTF-8"', 'application/json;charset=utf8', 'application/json']) {
      const r = await postBytes(g, '/v1/events', Buffer.from(json, 'utf8'), { contentType: type });
      assert.equal(r.status, 201, `${type}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.data, 'caf\u00e9');
    }
  });
});
