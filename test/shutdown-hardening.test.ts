/**
 * SIGTERM always ends the process (issue 10, finding 1): against the real server as a child
 * process, on both engines.
 *
 * - A webhook stored with a header the HTTP client cannot send used to leave the shared
 *   connection pool of its receiver unusable, after which SIGTERM never completed (with the port
 *   already released). Now the attempts fail cleanly, and SIGTERM exits 0 at once.
 * - Whatever still hangs (here: a PostgreSQL connection that stops answering mid-way), the stop
 *   is bounded by POLLGATE_SHUTDOWN_TIMEOUT: then the process logs why and exits 1.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import pino from 'pino';
import { openStore } from '../src/store/open.ts';
import { databaseUrlFor, POSTGRES_ONLY } from './support/engine.ts';
import { canConnect, createConsumer, killAllServers, removeDir, request, startServer, tempDir, type ServerProcess } from './support/process.ts';
import { ok, startReceiver } from './support/receiver.ts';
import { waitUntil } from './support/wait.ts';

const dirs: string[] = [];
const dir = () => {
  const d = tempDir('pollgate-stop-hardening-');
  dirs.push(d);
  return d;
};

after(async () => {
  await killAllServers();
  for (const d of dirs) removeDir(d);
});

async function putHook(s: ServerProcess, id: string, body: unknown): Promise<void> {
  const r = await request(s.url, `/v1/consumers/${id}/webhook`, { method: 'PUT', body });
  assert.equal(r.status, 201, `PUT webhook: ${r.status} ${r.text}`);
}

async function deliveryCount(s: ServerProcess, id: string): Promise<number> {
  const r = await request(s.url, `/v1/consumers/${id}/deliveries?limit=1000`);
  assert.equal(r.status, 200, r.text);
  return r.body.deliveries.length;
}

/**
 * A loopback TCP proxy in front of PostgreSQL that can freeze: every byte stops flowing both
 * ways, and the connections stay open (a database host that stopped answering).
 */
async function startFreezingProxy(targetPort: number): Promise<{ port: number; freeze(): void; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let frozen = false;
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {}).on('close', () => sockets.delete(s));
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('data', (b) => void (frozen || upstream.write(b)));
    upstream.on('data', (b) => void (frozen || client.write(b)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    freeze() {
      frozen = true;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('SIGTERM always ends the process', () => {
  test('a webhook stored with a header the client cannot send: other webhooks on its receiver keep going, and SIGTERM exits 0 at once', { timeout: 90_000 }, async (t) => {
    const rx = await startReceiver(ok);
    t.after(() => rx.close());
    const dataDir = dir();
    // A short lease time: on PostgreSQL the first run's node stops counting as live (and
    // keeping a share of the push consumers) soon after it stopped.
    const env = { POLLGATE_ALLOW_PRIVATE_TARGETS: '1', POLLGATE_RETRY_SCHEDULE: '20ms', POLLGATE_LEASE_TTL: '3s' };
    const first = await startServer({ dataDir, env });
    const bad = await createConsumer(first.url, { tenant: 'stop-bad' });
    const good = await createConsumer(first.url, { tenant: 'stop-good' });
    await putHook(first, bad.id, { url: `${rx.url}bad`, headers: { 'X-Token': 'ok' } });
    await putHook(first, good.id, { url: `${rx.url}good` });
    assert.deepEqual(await first.stop(), { code: 0, signal: null });

    // What a webhook stored before headers were checked looks like: written past the API.
    const store = await openStore(
      { dataDir, databaseUrl: databaseUrlFor(dataDir), databasePoolSize: 2 },
      { nodeId: 'test-writer', logger: pino({ level: 'silent' }) },
    );
    await store.saveWebhook(bad.id, (_consumer, current) => ({ ...current!, headers: JSON.stringify({ 'X-Token': 'caf\u20ac' }) }));
    await store.close();

    const server = await startServer({ dataDir, env });
    const publish = async (body: unknown) => assert.equal((await request(server.url, '/v1/events', { body })).status, 201);
    await publish({ tenant: 'stop-bad', type: 'a.b', data: null });
    // More failed attempts than the 16 connections per receiver the shared pool had.
    await waitUntil(async () => (await deliveryCount(server, bad.id)) >= 30, 10_000, () => '30 failed attempts');
    await publish(Array.from({ length: 3 }, (_, n) => ({ tenant: 'stop-good', type: 'a.b', data: { n } })));
    await waitUntil(() => rx.requests.filter((r) => r.path === '/good').length >= 3, 5_000, () => 'the healthy webhook delivered');
    assert.equal(rx.requests.filter((r) => r.path === '/bad').length, 0);

    const signalled = Date.now();
    server.signal('SIGTERM');
    const exit = await server.waitExit(8_000);
    const elapsed = Date.now() - signalled;
    t.diagnostic(`exited ${elapsed} ms after SIGTERM`);
    assert.deepEqual(exit, { code: 0, signal: null }, server.output());
    assert.ok(elapsed < 5_000, `exited ${elapsed} ms after SIGTERM`);
    assert.equal(await canConnect(server.port, 500), false);
  });

  test('PostgreSQL: a database that stops answering mid-way: SIGTERM ends within POLLGATE_SHUTDOWN_TIMEOUT, exit 1 with a log line saying why', { skip: POSTGRES_ONLY, timeout: 60_000 }, async (t) => {
    const dataDir = dir();
    const direct = new URL(databaseUrlFor(dataDir)!);
    const proxy = await startFreezingProxy(Number(direct.port || 5432));
    t.after(() => proxy.close());
    const viaProxy = new URL(direct);
    viaProxy.port = String(proxy.port);
    const rx = await startReceiver(ok);
    t.after(() => rx.close());

    const server = await startServer({
      dataDir,
      env: { POLLGATE_DATABASE_URL: viaProxy.href, POLLGATE_SHUTDOWN_TIMEOUT: '2s', POLLGATE_ALLOW_PRIVATE_TARGETS: '1' },
    });
    const c = await createConsumer(server.url, { tenant: 'stop-frozen' });
    await putHook(server, c.id, { url: rx.url });
    assert.equal((await request(server.url, '/v1/events', { body: { tenant: 'stop-frozen', type: 'a.b', data: null } })).status, 201);
    await rx.waitForCount(1);

    proxy.freeze();
    const signalled = Date.now();
    server.signal('SIGTERM');
    // Stopping the push bridge waits on the database: meanwhile the port stays bound (late
    // requests are answered 503), so no second instance can start beside this one.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    assert.equal(server.hasExited, false);
    assert.equal(await canConnect(server.port, 500), true, 'the port is held while the process runs');
    const exit = await server.waitExit(2_000 + 4_000);
    const elapsed = Date.now() - signalled;
    t.diagnostic(`exited ${elapsed} ms after SIGTERM (shutdown timeout 2000 ms)`);
    assert.deepEqual(exit, { code: 1, signal: null }, server.output());
    assert.ok(elapsed >= 1_900 && elapsed < 5_000, `exited ${elapsed} ms after SIGTERM`);
    const line = server.logLines().find((l) => l.msg === 'stop did not finish in time; exiting with status 1');
    assert.ok(line, `the reason is logged\n${server.output()}`);
    assert.equal(line.timeoutMs, 2_000);
    assert.equal(line.setting, 'POLLGATE_SHUTDOWN_TIMEOUT');
  });
});
