/**
 * SIGTERM (SPEC: Operations — "stop accepting, answer held polls with what they have, finish
 * commits, exit 0"; PITFALLS: SIGTERM, `npm start` and signals), against the real server as
 * a child process.
 */
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import {
  canConnect,
  createConsumer,
  killAllServers,
  readAll,
  removeDir,
  request,
  startServer,
  tempDir,
  TEST_ADMIN_KEY,
  type Reply,
  type ServerProcess,
} from './support/process.ts';
import { sleep, withTimeout } from './support/wait.ts';

const dirs: string[] = [];
const dir = () => {
  const d = tempDir('pollgate-sigterm-');
  dirs.push(d);
  return d;
};

after(async () => {
  await killAllServers();
  for (const d of dirs) removeDir(d);
});

/** Publishes and insists on 201; answers the envelopes. */
async function publishAcked(s: ServerProcess, body: unknown): Promise<any[]> {
  const r = await request(s.url, '/v1/events', { body });
  assert.equal(r.status, 201, `publish: ${r.status} ${r.text}`);
  return Array.isArray(body) ? r.body.events : [r.body];
}

/** Waits until the admin view says the consumer's poll is held (falls back to a pause). */
async function untilHeld(s: ServerProcess, consumerId: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline) {
    const r = await request(s.url, `/v1/consumers/${consumerId}`);
    if (r.body?.polling === true) return;
    if (r.body?.polling === undefined) break; // no such field: just give the poll time to settle
    await sleep(25);
  }
  await sleep(300);
}

/** Error-level lines (pino level >= 50) the server logged. */
const errorLines = (s: ServerProcess) => s.logLines().filter((l) => typeof l.level === 'number' && l.level >= 50);

/** A request's outcome: an HTTP status, or the connection error's code. */
async function outcome(p: Promise<Reply>): Promise<{ status?: number; error?: string; text?: string }> {
  try {
    const r = await p;
    return { status: r.status, text: r.text.slice(0, 200) };
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    return { error: e.code ?? e.name ?? e.message };
  }
}

describe('SIGTERM (process level)', () => {
  test('answers a held poll 200 with no events, does not wait on idle keep-alive sockets, exits 0 promptly, keeps acknowledged publishes', { timeout: 60_000 }, async (t) => {
    const dataDir = dir();
    const server = await startServer({ dataDir });

    const published = [
      ...(await publishAcked(server, { tenant: 'sd-data', type: 'sd.one', id: 'sd-1', data: { n: 1 } })),
      ...(await publishAcked(server, Array.from({ length: 5 }, (_, i) => ({ tenant: 'sd-data', type: 'sd.batch', id: `sd-b${i}`, data: { i } })))),
      ...(await publishAcked(server, { tenant: 'sd-data', type: 'sd.gen', data: null })),
    ];
    const consumer = await createConsumer(server.url, { tenant: 'sd-poll' });

    // Idle keep-alive connections: a node:http agent's and fetch's (undici), each after a finished request.
    const idleAgent = new http.Agent({ keepAlive: true, maxSockets: 2 });
    assert.equal((await request(server.url, '/healthz', { agent: idleAgent, key: null })).status, 200);
    assert.equal((await request(server.url, '/v1/consumers', { agent: idleAgent })).status, 200);
    const fetched = await fetch(`${server.url}/v1/consumers`, { headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` } });
    assert.equal(fetched.status, 200);
    await fetched.text();
    assert.ok(Object.values(idleAgent.freeSockets).flat().length >= 1, 'a keep-alive socket sits idle in the agent');

    // A held poll, itself on a keep-alive connection (idle once answered).
    const pollAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const held = request(server.url, '/v1/events?wait=30', { key: consumer.key, agent: pollAgent, timeoutMs: 40_000 });
    let heldAnsweredAt = 0;
    void held.then(() => (heldAnsweredAt = Date.now()), () => {});
    await untilHeld(server, consumer.id);

    const t0 = Date.now();
    server.signal('SIGTERM');
    const poll = await withTimeout(held, 10_000, 'the held poll was not answered within 10 s of SIGTERM');
    const exit = await server.waitExit(15_000);
    const elapsed = Date.now() - t0;
    idleAgent.destroy();
    pollAgent.destroy();
    t.diagnostic(`held poll answered ${heldAnsweredAt - t0} ms and exit ${elapsed} ms after SIGTERM`);

    assert.equal(poll.status, 200, `held poll answered ${poll.status} ${poll.text}`);
    assert.deepEqual(poll.body.events, [], 'the held poll is answered with what it has: nothing');
    assert.equal(typeof poll.body.cursor, 'string');
    assert.equal(poll.body.more, false);
    assert.ok(heldAnsweredAt - t0 < 5_000, `held poll answered after ${heldAnsweredAt - t0} ms`);
    assert.deepEqual(exit, { code: 0, signal: null }, `exit after SIGTERM\n${server.output()}`);
    assert.ok(elapsed < 5_000, `exited ${elapsed} ms after SIGTERM (must not wait on idle keep-alive sockets)`);
    assert.deepEqual(errorLines(server), [], 'no error logged while stopping');

    const again = await startServer({ dataDir });
    const log = await readAll(again.url, 'sd-data');
    assert.deepEqual(log, published, 'every publish acknowledged before SIGTERM is there after restart, unchanged');
    assert.deepEqual(await again.stop(), { code: 0, signal: null });
  });

  test('requests arriving after shutdown began get 503 or a refused/closed connection, never a 500; an in-flight publish is all-or-nothing', { timeout: 60_000 }, async (t) => {
    const dataDir = dir();
    const server = await startServer({ dataDir });
    const consumer = await createConsumer(server.url, { tenant: 'late', start: 'earliest' });
    const before = await publishAcked(server, { tenant: 'late', type: 'late.before', id: 'late-0', data: 0 });

    // A publish whose body is still arriving when SIGTERM comes (its handler already runs).
    const slowBody = Buffer.from(JSON.stringify([
      { tenant: 'late', type: 'late.slow', id: 'slow-0', data: { pad: 'y'.repeat(2000) } },
      { tenant: 'late', type: 'late.slow', id: 'slow-1', data: null },
    ]));
    const half = Math.floor(slowBody.length / 2);
    let slowReq!: http.ClientRequest;
    const slow = new Promise<Reply>((resolve, reject) => {
      slowReq = http.request(`${server.url}/v1/events`, {
        method: 'POST',
        agent: false,
        headers: {
          authorization: `Bearer ${TEST_ADMIN_KEY}`,
          'content-type': 'application/json',
          'content-length': String(slowBody.length),
        },
        signal: AbortSignal.timeout(20_000),
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode!, headers: res.headers, text, body: text ? JSON.parse(text) : null });
        });
      });
      slowReq.on('error', reject);
      slowReq.write(slowBody.subarray(0, half));
    });

    // An idle keep-alive connection that will carry a request after shutdown began.
    const keepAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    assert.equal((await request(server.url, '/v1/consumers', { agent: keepAgent })).status, 200);
    await sleep(300);

    server.signal('SIGTERM');
    await server.waitForLog('stopping', 10_000);

    const slowDone = outcome(slow);
    slowReq.end(slowBody.subarray(half));
    const late = await Promise.all([
      outcome(request(server.url, '/v1/consumers', { agent: keepAgent, timeoutMs: 10_000 })),
      ...Array.from({ length: 4 }, (_, i) =>
        sleep(i * 40).then(() =>
          Promise.all([
            outcome(request(server.url, '/v1/events', { body: { tenant: 'late', type: 'late.after', id: `after-${i}`, data: i }, timeoutMs: 10_000 })),
            outcome(request(server.url, '/v1/events?wait=5', { key: consumer.key, timeoutMs: 10_000 })),
            outcome(request(server.url, '/v1/consumers', { timeoutMs: 10_000 })),
            outcome(request(server.url, '/readyz', { key: null, timeoutMs: 10_000 })),
          ]),
        ),
      ),
    ]);
    const slowOutcome = await slowDone;
    const exit = await server.waitExit(15_000);
    keepAgent.destroy();

    const lateOutcomes = late.flat();
    const tally = (o: { status?: number; error?: string }) => String(o.status ?? o.error);
    t.diagnostic(`in-flight publish: ${tally(slowOutcome)}; late requests: ${lateOutcomes.map(tally).join(' ')}`);
    const bad = lateOutcomes.filter((o) => o.status !== undefined && o.status !== 503);
    assert.deepEqual(bad, [], `after shutdown began, only 503 or a refused/closed connection: ${JSON.stringify(lateOutcomes)}`);
    assert.ok(slowOutcome.status === undefined || slowOutcome.status === 201 || slowOutcome.status === 503,
      `the in-flight publish is finished (201) or refused (503), never ${JSON.stringify(slowOutcome)}`);
    assert.deepEqual(exit, { code: 0, signal: null }, server.output());
    assert.deepEqual(errorLines(server), [], 'no error logged while stopping');

    const again = await startServer({ dataDir });
    const ids = (await readAll(again.url, 'late')).map((e) => e.id);
    assert.deepEqual(ids.filter((id) => id.startsWith('after-')), [], 'nothing refused after shutdown began was stored');
    const slowIds = ids.filter((id) => id.startsWith('slow-'));
    if (slowOutcome.status === 201) assert.deepEqual(slowIds, ['slow-0', 'slow-1'], 'an acknowledged in-flight publish is durable');
    else if (slowOutcome.status === 503) assert.deepEqual(slowIds, [], 'a refused publish stored nothing');
    else assert.ok(slowIds.length === 0 || slowIds.length === 2, `batch all-or-nothing: ${JSON.stringify(slowIds)}`);
    assert.ok(ids.includes(before[0].id));
    assert.deepEqual(await again.stop(), { code: 0, signal: null });
  });

  test('SIGTERM still exits 0 promptly when the stdout log pipe is gone (log shipper died)', { timeout: 60_000 }, async () => {
    const dataDir = dir();
    const server = await startServer({ dataDir });
    const published = await publishAcked(server, { tenant: 'pipe', type: 'pipe.test', id: 'pipe-1', data: 1 });
    server.closeStdout();
    await sleep(200);
    const t0 = Date.now();
    server.signal('SIGTERM');
    let exit: { code: number | null; signal: string | null } | string;
    try {
      exit = await server.waitExit(10_000);
    } catch {
      exit = 'still running 10 s after SIGTERM';
    }
    const elapsed = Date.now() - t0;
    if (typeof exit === 'string') await server.kill();
    assert.deepEqual(exit, { code: 0, signal: null }, `exit after SIGTERM with stdout closed (${elapsed} ms)\n--- stderr ---\n${server.stderr}`);
    assert.ok(elapsed < 5_000, `exited ${elapsed} ms after SIGTERM`);

    const again = await startServer({ dataDir });
    assert.deepEqual(await readAll(again.url, 'pipe'), published);
    assert.deepEqual(await again.stop(), { code: 0, signal: null });
  });

  test('`npm start`: SIGTERM to the npm process stops the server and npm exits 0', { timeout: 60_000 }, async () => {
    const dataDir = dir();
    const server = await startServer({ dataDir, npm: true });
    const port = server.port;
    assert.ok(await canConnect(port), 'the server listens');
    const published = await publishAcked(server, { tenant: 'npm', type: 'npm.test', id: 'npm-1', data: 1 });

    server.signal('SIGTERM'); // the npm process only, as a process manager would
    let exit: { code: number | null; signal: string | null } | string;
    try {
      exit = await server.waitExit(10_000);
    } catch {
      exit = 'npm did not exit within 10 s';
    }
    let stopped = false;
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline) {
      if (!(await canConnect(port, 1_000))) {
        stopped = true;
        break;
      }
      await sleep(100);
    }
    const orphans = server.groupAlive();
    server.killGroup('SIGKILL'); // clean up whatever survived

    assert.ok(stopped, `the server still accepts connections on port ${port} after npm got SIGTERM and exited ${JSON.stringify(exit)}: ` +
      'the signal does not reach the server (npm forwards it to `sh -c`, which dies and leaves node running)');
    assert.ok(!orphans, 'no process of `npm start` survives');
    assert.deepEqual(exit, { code: 0, signal: null }, `npm's exit after SIGTERM\n${server.output()}`);

    const again = await startServer({ dataDir });
    assert.deepEqual(await readAll(again.url, 'npm'), published);
    assert.deepEqual(await again.stop(), { code: 0, signal: null });
  });
});
