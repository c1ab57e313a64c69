/**
 * The database itself restarts under load (SPEC "Engines and nodes", failure behaviour): a
 * PostgreSQL server of this test's own is stopped the hard way (`pg_ctl -m immediate`, no
 * shutdown checkpoint: the WAL is replayed at start, as after a crash) while two nodes take
 * publishes, hold polls and push to a webhook, then started again. Every publish that got a
 * 2xx is in the log exactly once and in order; the rest were 503 with Retry-After (or cut
 * connections) and went through when retried with the same producer id. Held polls answer at
 * their deadline, /readyz is 503 and /healthz 200 while it is down, and the nodes recover by
 * themselves: wake-ups across nodes, pushes and cursors carry on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { POSTGRES_ONLY } from './support/engine.ts';
import { privatePostgresUnavailable, startPrivatePostgres } from './support/private-postgres.ts';
import { startGateway, type TestGateway } from './support/gateway.ts';
import { startReceiver } from './support/receiver.ts';
import { sleep, waitFor, within } from './support/wait.ts';

const skip = POSTGRES_ONLY || privatePostgresUnavailable();

test('the database crashes and restarts with polls held, publishes in flight and pushes going: nothing acknowledged is lost', { skip, timeout: 120_000 }, async (t) => {
  const database = await startPrivatePostgres();
  const config = { databaseUrl: database.url, allowPrivateTargets: true, leaseTtlMs: 2_000 };
  let a: TestGateway | undefined;
  let b: TestGateway | undefined;
  const rx = await startReceiver();
  t.after(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await rx.close();
    database.close();
  });
  a = await startGateway({ config });
  b = await startGateway({ config });

  const reader = await a.createConsumer({ tenant: 'restart', start: 'earliest' });
  const quiet = await a.createConsumer({ tenant: 'quiet' });
  const pushed = await a.createConsumer({ tenant: 'restart', start: 'earliest' });
  assert.equal((await b.json(`/v1/consumers/${pushed.id}/webhook`, { method: 'PUT', body: { url: rx.url } })).status, 201);

  // One producer per node, each retrying an event with its own producer id until it is acknowledged.
  const acknowledged: string[][] = [[], []];
  const refusals = { unavailable: 0, retryAfter: 0, cut: 0, other: [] as string[] };
  let producing = true;
  const produce = async (g: TestGateway, n: number) => {
    for (let i = 0; producing; i++) {
      const id = `n${n}-${i}`;
      for (;;) {
        try {
          const r = await g.json('/v1/events', { body: { tenant: 'restart', type: 'r.x', id, data: { i } } });
          if (r.status === 201 || r.status === 200) break;
          if (r.status === 503 && r.body.error.code === 'unavailable') {
            refusals.unavailable++;
            if (Number(r.headers.get('retry-after')) > 0) refusals.retryAfter++;
          } else refusals.other.push(`${r.status} ${JSON.stringify(r.body)}`);
        } catch {
          refusals.cut++;
        }
        await sleep(50);
      }
      acknowledged[n]!.push(id);
      await sleep(5);
    }
  };
  const producers = [produce(a, 0), produce(b, 1)];
  await sleep(700);

  const held = b.json('/v1/events?wait=3', { key: quiet.key });
  await sleep(200);
  const crashedAt = performance.now();
  database.crash();

  assert.equal((await a.json('/readyz', { key: null })).status, 503, 'not ready while the database is down');
  assert.equal((await b.json('/healthz', { key: null })).status, 200, 'alive all the same');
  const read = await a.json('/v1/events?wait=0', { key: reader.key });
  assert.equal(read.status, 503, JSON.stringify(read.body));
  const answered = await within(held, 10_000, 'the poll held across the crash');
  assert.equal(answered.status, 200, `the held poll answers at its deadline: ${JSON.stringify(answered.body)}`);
  assert.deepEqual(answered.body.events, []);
  assert.ok(performance.now() - crashedAt >= 2_000, 'at its deadline, not early');

  database.start();
  const downMs = performance.now() - crashedAt;
  for (const g of [a, b]) {
    await waitFor(async () => (await g.json('/readyz', { key: null })).status === 200, 30_000, 'a node ready again by itself');
  }
  await sleep(700); // publishing goes on after the restart
  producing = false;
  await Promise.all(producers);

  t.diagnostic(
    `down ${Math.round(downMs)} ms; acknowledged ${acknowledged[0]!.length} + ${acknowledged[1]!.length} publishes; ` +
      `refused while down: ${refusals.unavailable} × 503 (${refusals.retryAfter} with Retry-After), ${refusals.cut} cut connections`,
  );
  assert.deepEqual(refusals.other, [], 'while down, a publish is 503 unavailable or a cut connection, never anything else');
  assert.ok(refusals.unavailable > 0, 'publishes were refused with 503 while the database was down');
  assert.equal(refusals.retryAfter, refusals.unavailable, 'every 503 says when to come back');

  // The log: every acknowledged publish exactly once, each producer's in its order, nothing else.
  const seen: string[] = [];
  for (let cursor: string | undefined; ; ) {
    const page: { status: number; body: any } = await a.json(`/v1/events?wait=0&limit=1000${cursor ? `&ack=${cursor}` : ''}`, { key: reader.key });
    assert.equal(page.status, 200, JSON.stringify(page.body));
    seen.push(...page.body.events.map((e: any) => e.id));
    if (page.body.events.length === 0) break;
    cursor = page.body.cursor;
  }
  assert.equal(new Set(seen).size, seen.length, 'no event twice');
  for (const n of [0, 1]) {
    assert.deepEqual(seen.filter((id) => id.startsWith(`n${n}-`)), acknowledged[n], `producer ${n}: every acknowledged event, in order`);
  }
  assert.equal(seen.length, acknowledged[0]!.length + acknowledged[1]!.length);

  // Wake-ups across nodes work again (re-LISTEN, or at worst the 1 s reconciliation).
  const woken = b.json('/v1/events?wait=10', { key: quiet.key });
  await sleep(200);
  const started = performance.now();
  const fromA = await a.publish({ tenant: 'quiet', type: 'q.x', data: 1 });
  const r = await within(woken, 5_000, 'a poll on B woken by a publish on A after the restart');
  assert.deepEqual(r.body.events.map((e: any) => e.id), [fromA.id]);
  t.diagnostic(`after the restart, publish on A → poll on B answered in ${Math.round(performance.now() - started)} ms`);

  // The push consumer got every event (at least once, first arrivals in log order) and its cursor reached the end.
  const firstArrivals: string[] = [];
  await waitFor(
    () => {
      firstArrivals.length = 0;
      for (const req of rx.requests) {
        const id = req.headers['webhook-id'] as string;
        if (!firstArrivals.includes(id)) firstArrivals.push(id);
      }
      return firstArrivals.length === seen.length;
    },
    30_000,
    'the webhook receives every event',
    50,
  );
  assert.deepEqual(firstArrivals, seen, 'pushed in log order');
  const last = (await a.json(`/v1/consumers/${reader.id}`)).body.cursor;
  await waitFor(async () => (await b.json(`/v1/consumers/${pushed.id}`)).body.cursor === last, 15_000, 'the push cursor reaches the end');
});
