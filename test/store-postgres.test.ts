/**
 * The PostgreSQL engine (src/store/postgres) against a real server, for what only this engine
 * has: commit order across concurrent writers and nodes (SCALE-OUT §1 and §6), migrations
 * racing, leases and fencing between nodes, LISTEN/NOTIFY hints and their reconnection, and
 * database failures turning into ApiError unavailable. Each test gets a fresh database.
 * Skips (saying why) when no PostgreSQL answers; see test/support/postgres.ts.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import pino from 'pino';
import { ApiError } from '../src/errors.ts';
import { openPostgresStore, type PostgresStoreOptions } from '../src/store/postgres/index.ts';
import { LeaseLost, type Appended, type ConsumerRow, type EventRecord, type Store, type WebhookRow } from '../src/store/store.ts';
import { createTestDatabase, POSTGRES_UNAVAILABLE, postgresAvailable } from './support/postgres.ts';
import { sleep, track, waitFor, within } from './support/wait.ts';

const skip = (await postgresAvailable()) ? false : POSTGRES_UNAVAILABLE;
const logger = pino({ level: 'silent' });

/** A fresh database for the test, dropped when it ends (after the stores it opened are closed). */
async function freshDatabase(t: TestContext) {
  const database = await createTestDatabase('pollgate_store');
  const stores: Store[] = [];
  const clients: pg.Client[] = [];
  t.after(async () => {
    for (const s of stores) await s.close().catch(() => {});
    for (const c of clients) await c.end().catch(() => {});
    await database.drop();
  });
  return {
    url: database.url,
    async open(nodeId: string, extra: Partial<PostgresStoreOptions> = {}): Promise<Store> {
      const store = await openPostgresStore(database.url, { nodeId, logger, poolSize: 4, ...extra });
      stores.push(store);
      return store;
    },
    /** A raw connection, for driving transactions by hand. */
    async client(): Promise<pg.Client> {
      const c = new pg.Client({ connectionString: database.url });
      c.on('error', () => {});
      await c.connect();
      clients.push(c);
      return c;
    },
  };
}

let generated = 0;
/** An event; without an id it gets a fresh one, as the publisher gives every event. */
const ev = (tenant: string, id?: string, data = '{}') => ({ tenant, type: 'test.event', id: id ?? `evt_test_${++generated}`, data });

function consumerRow(id: string, tenant: string, name: string | null = null): ConsumerRow {
  return {
    id,
    tenant,
    name,
    filter: null,
    cursor: 0,
    key_id: `key_${id}`,
    key_hash: Buffer.from(id),
    poll_generation: 0,
    last_poll_at: null,
    created_at: 1,
    updated_at: 1,
  };
}

function webhookRow(consumerId: string, enabled = 1): WebhookRow {
  return {
    consumer_id: consumerId,
    url: 'https://example.test/hook',
    method: 'POST',
    headers: '{}',
    secret: 'whsec_test',
    timeout_ms: 10_000,
    enabled,
    attempt: 0,
    first_failure_at: null,
    next_attempt_at: null,
    last_success_at: null,
    last_error: null,
    last_status: null,
    consecutive_failures: 0,
    disabled_reason: null,
    options: '{}',
    credentials: '{}',
    alert_state: '{}',
    created_at: 1,
    updated_at: 1,
  };
}

async function readAll(store: Store, tenant: string): Promise<EventRecord[]> {
  const out: EventRecord[] = [];
  for (;;) {
    const page = await store.read(tenant, out.at(-1)?.pos ?? 0, 500);
    if (page.records.length === 0) return out;
    out.push(...page.records);
  }
}

async function rejectsUnavailable(p: Promise<unknown>, what: string): Promise<void> {
  await assert.rejects(p, (error: unknown) => {
    assert.ok(error instanceof ApiError, `${what}: expected ApiError, got ${String(error)}`);
    assert.equal(error.code, 'unavailable', what);
    assert.equal(error.status, 503, what);
    return true;
  });
}

describe('PostgreSQL store', { skip }, () => {
  test('interleaving: a second append to a tenant waits for the first to commit; a reader sees neither until then, then both in order; another tenant never waits (SCALE-OUT §6)', async (t) => {
    const db = await freshDatabase(t);
    const store = await db.open('n1');
    const t1 = await db.client();

    // T1: appends to X and pauses before COMMIT, holding X's head row.
    await t1.query('BEGIN');
    const held = await t1.query(
      'SELECT r_pos FROM pollgate_append($1::jsonb, 5000)',
      [JSON.stringify([{ t: 'X', y: 'test.event', i: 'from-t1', d: '1', n: Date.now() }])],
    );
    assert.equal(Number(held.rows[0].r_pos), 1, 'T1 drew position 1 under the lock');

    // T2: the store's append to X waits behind T1.
    const t2 = track(store.append([ev('X', 'from-t2', '2')], Date.now()));
    await sleep(300);
    assert.equal(t2.settled, false, 'T2 waits for the tenant lock while T1 is open');
    const during = await store.read('X', 0, 10);
    assert.deepEqual(during.records, [], 'a reader sees neither uncommitted append');
    assert.equal(during.head, 0);

    // Another tenant does not wait for T1.
    const other = await within(store.append([ev('Y', 'y1')], Date.now()), 2_000, 'append to another tenant while T1 holds X');
    assert.equal(other[0]!.record.pos, 1);
    assert.equal(t2.settled, false, 'T2 still waits');

    await t1.query('COMMIT');
    const [appended] = await within(t2.promise, 5_000, 'T2 after T1 committed');
    assert.equal(appended!.record.pos, 2, 'T2 drew the next position after T1 committed');
    const after = await store.read('X', 0, 10);
    assert.deepEqual(
      after.records.map((r) => [r.pos, r.id]),
      [
        [1, 'from-t1'],
        [2, 'from-t2'],
      ],
    );
    assert.equal(after.head, 2);
    assert.ok(after.records[0]!.time <= after.records[1]!.time, 'time never decreases along positions');
  });

  test('a tenant held longer than the lock timeout makes an append fail with unavailable (503), writing nothing', async (t) => {
    const db = await freshDatabase(t);
    const store = await db.open('n1', { lockTimeoutMs: 200 });
    const blocker = await db.client();
    await blocker.query('BEGIN');
    await blocker.query('SELECT * FROM pollgate_append($1::jsonb, 5000)', [JSON.stringify([{ t: 'X', y: 't', i: 'a', d: '1', n: 1 }])]);
    await rejectsUnavailable(store.append([ev('X', 'b')], Date.now()), 'append behind a stuck tenant');
    await blocker.query('ROLLBACK');
    assert.equal((await store.append([ev('X', 'b')], Date.now()))[0]!.record.pos, 1, 'nothing of the failed group was kept');
  });

  test('several nodes appending to a few tenants at once: positions dense per tenant, time never decreasing, no duplicates, and a reader following read() never skips', async (t) => {
    const db = await freshDatabase(t);
    // Three nodes whose clocks disagree by up to 100 ms.
    const skews = [-60, 0, 40];
    const nodes = [await db.open('n1'), await db.open('n2'), await db.open('n3')];
    const tenants = ['t-a', 't-b', 't-c', 't-d'];
    const results: Appended[] = [];
    let stop = false;

    // Readers: one per tenant, moving their cursor only as read() returns, like a consumer.
    const seen = new Map<string, EventRecord[]>(tenants.map((x) => [x, []]));
    const readers = tenants.map(async (tenant, i) => {
      const store = nodes[i % nodes.length]!;
      const got = seen.get(tenant)!;
      while (!stop || got.length < ((await store.head(tenant)) ?? 0)) {
        const page = await store.read(tenant, got.at(-1)?.pos ?? 0, 7);
        for (const r of page.records) assert.ok(r.pos <= page.head, 'a page never goes past the head it was read with');
        got.push(...page.records);
        if (page.records.length === 0) await sleep(1);
      }
    });

    // Producers: sequential calls each, on random nodes, batches of 1..5 over random tenants,
    // some re-sending ids already used (idempotent retries).
    let idSeq = 0;
    const used: Array<{ tenant: string; id: string }> = [];
    const producers = Array.from({ length: 8 }, async (_, p) => {
      for (let call = 0; call < 30; call++) {
        const node = Math.floor(Math.random() * nodes.length);
        const size = 1 + Math.floor(Math.random() * 5);
        const batch = Array.from({ length: size }, () => {
          if (used.length > 0 && Math.random() < 0.1) {
            const again = used[Math.floor(Math.random() * used.length)]!;
            return ev(again.tenant, again.id);
          }
          const tenant = tenants[Math.floor(Math.random() * tenants.length)]!;
          const id = `p${p}-${++idSeq}`;
          if (Math.random() < 0.5) used.push({ tenant, id });
          return ev(tenant, id, String(idSeq));
        });
        results.push(...(await nodes[node]!.append(batch, Date.now() + skews[node]!)));
      }
    });
    await Promise.all(producers);
    stop = true;
    await within(Promise.all(readers), 10_000, 'readers catching up');

    for (const tenant of tenants) {
      const log = await readAll(nodes[0]!, tenant);
      assert.deepEqual(
        log.map((r) => r.pos),
        log.map((_, i) => i + 1),
        `${tenant}: positions dense from 1`,
      );
      for (let i = 1; i < log.length; i++) assert.ok(log[i]!.time >= log[i - 1]!.time, `${tenant}: time never decreases`);
      assert.equal(new Set(log.map((r) => r.id)).size, log.length, `${tenant}: no id twice`);
      assert.equal(await nodes[1]!.head(tenant), log.length, `${tenant}: head is the last position`);
      assert.deepEqual(
        seen.get(tenant)!.map((r) => r.pos),
        log.map((r) => r.pos),
        `${tenant}: the reader saw every event, in order, none skipped`,
      );
      // Every answer names the event the log holds at that position.
      const byPos = new Map(log.map((r) => [r.pos, r]));
      for (const a of results.filter((x) => x.record.tenant === tenant)) {
        const stored = byPos.get(a.record.pos)!;
        assert.equal(stored.id, a.record.id);
        assert.equal(stored.time, a.record.time);
        assert.equal(stored.data, a.record.data);
      }
      const fresh = results.filter((x) => x.record.tenant === tenant && !x.duplicate).length;
      assert.equal(fresh, log.length, `${tenant}: every non-duplicate answer is one stored event`);
    }
  });

  test('duplicate ids map to the original, whether already stored, earlier in the same call, or in another call of the same group', async (t) => {
    const db = await freshDatabase(t);
    const store = await db.open('n1');
    const [first] = await store.append([ev('acme', 'order-1', '{"v":1}')], 1_000);
    assert.equal(first!.duplicate, false);

    const [a, b] = await Promise.all([
      // Same turn: one group. The first call repeats a stored id and an id of its own.
      store.append([ev('acme', 'order-1', '{"v":2}'), ev('acme', 'order-2', '{"v":3}'), ev('acme', 'order-2', '{"v":4}')], 2_000),
      store.append([ev('acme', 'order-2', '{"v":5}'), ev('other', 'order-1', '{"v":6}')], 2_000),
    ]);
    assert.deepEqual(
      a!.map((x) => [x.record.pos, x.record.id, x.record.data, x.duplicate]),
      [
        [1, 'order-1', '{"v":1}', true],
        [2, 'order-2', '{"v":3}', false],
        [2, 'order-2', '{"v":3}', true],
      ],
    );
    assert.deepEqual(
      b!.map((x) => [x.record.tenant, x.record.pos, x.record.data, x.duplicate]),
      [
        ['acme', 2, '{"v":3}', true],
        ['other', 1, '{"v":6}', false],
      ],
      'ids are per tenant',
    );
    assert.equal(a![0]!.record.time, 1_000, 'a duplicate answers with the original time');
    assert.deepEqual((await readAll(store, 'acme')).map((r) => r.id), ['order-1', 'order-2']);
  });

  test('group commit: calls of one event-loop turn commit as one group; close() commits what is queued, then refuses', async (t) => {
    const db = await freshDatabase(t);
    const commits: number[] = [];
    const store = await db.open('n1', { onCommit: (jobs) => commits.push(jobs) });
    const calls = Array.from({ length: 50 }, (_, i) => store.append([ev(i % 2 ? 'a' : 'b')], i));
    await Promise.all(calls);
    assert.deepEqual(commits, [50], 'one statement for the 50 calls of one turn');
    const queued = store.append([ev('a')], 100);
    await store.close();
    assert.equal((await queued)[0]!.record.pos, 26, 'an append queued before close() committed');
    await assert.rejects(store.append([ev('a')], 101), (e: unknown) => e instanceof ApiError && e.code === 'shutting_down');
  });

  test('three nodes starting at once on a fresh database all open; each migration is applied once', async (t) => {
    const db = await freshDatabase(t);
    const opened = await Promise.all([db.open('m1'), db.open('m2'), db.open('m3')]);
    assert.equal(opened.length, 3);
    const c = await db.client();
    const { rows } = await c.query('SELECT version, count(*)::int AS n FROM schema_migrations GROUP BY version');
    assert.ok(rows.length >= 1);
    for (const r of rows) assert.equal(r.n, 1);
    // And a fourth, later, finds nothing to do and works.
    const late = await db.open('m4');
    assert.equal((await late.append([ev('x')], 1))[0]!.record.pos, 1);
  });

  test('reads: one snapshot with head and trim mark; positionBeforeTime; retention trims a prefix per tenant and positions are never reused', async (t) => {
    const db = await freshDatabase(t);
    const store = await db.open('n1');
    for (const time of [100, 200, 200, 300]) await store.append([ev('a'), ev('b')], time);
    assert.deepEqual(await store.read('nobody', 0, 10), { records: [], head: 0, trimmedThrough: 0 });
    assert.equal(await store.positionBeforeTime('a', 0), 0);
    assert.equal(await store.positionBeforeTime('a', 200), 1);
    assert.equal(await store.positionBeforeTime('a', 201), 3);
    assert.equal(await store.positionBeforeTime('a', 999), 4, 'none at or after: the head');
    assert.equal(await store.positionBeforeTime('nobody', 1), 0);

    // Batch 3 of the 6 events older than 250: a's 1, 2 and b's 1 (time, tenant, pos order).
    assert.equal(await store.trimOnce(250, 3), 3);
    assert.deepEqual(await store.read('a', 0, 10).then((p) => [p.records.map((r) => r.pos), p.head, p.trimmedThrough]), [[3, 4], 4, 2]);
    assert.equal(await store.trimmedThrough('b'), 1);
    assert.equal(await store.trimOnce(250, 100), 3);
    assert.equal(await store.trimmedThrough('b'), 3);
    assert.equal(await store.trimOnce(250, 100), 0);
    assert.equal((await store.append([ev('a')], 400))[0]!.record.pos, 5, 'positions go on after the trim');
    assert.deepEqual(await store.heads(['a', 'b', 'nobody']), new Map([['a', 5], ['b', 4]]));

    // Legacy cursors: only migrated events carry a global seq.
    assert.equal(await store.appendedTotal(), 9, 'the sum of the heads: trims do not lower it');
    const c = await db.client();
    assert.equal(await store.translateLegacy('a', 5), null, 'no embedded deployment was migrated here: no legacy seq names anything');
    await store.setSetting('legacy_head_seq', '50');
    await c.query("UPDATE events SET legacy_seq = pos * 10 WHERE tenant = 'a'");
    await c.query("UPDATE tenants SET legacy_trimmed_seq = 25 WHERE tenant = 'a'");
    assert.equal(await store.trimmedThrough('a'), 3);
    assert.equal(await store.translateLegacy('a', 24), 2, 'behind the legacy trim: behind the trim mark (expired)');
    assert.equal(await store.translateLegacy('a', 35), 3);
    assert.equal(await store.translateLegacy('a', 50), 5);
    assert.equal(await store.translateLegacy('a', 51), null, 'past the last seq issued: names nothing');
    assert.equal(await store.translateLegacy('b', 5), 3, 'no migrated events: the trim mark');
    assert.equal(await store.translateLegacy('nobody', 5), 0);
  });

  test('consumers: name conflicts, acks never move back, lag, poll generations across nodes', async (t) => {
    const db = await freshDatabase(t);
    const [a, b] = [await db.open('n1'), await db.open('n2')];
    await a.createConsumer(consumerRow('c1', 'acme', 'billing'));
    await a.createConsumer(consumerRow('c2', 'acme', null));
    await a.createConsumer(consumerRow('c3', 'acme', null));
    await assert.rejects(b.createConsumer(consumerRow('c4', 'acme', 'billing')), (e: unknown) => {
      assert.ok(e instanceof ApiError);
      assert.equal(e.code, 'conflict');
      assert.equal(e.message, 'tenant "acme" already has a consumer named "billing"');
      assert.deepEqual(e.details, { field: 'name' });
      return true;
    });
    await assert.rejects(b.updateConsumer('c2', { name: 'billing' }, 5), (e: unknown) => e instanceof ApiError && e.code === 'conflict');
    assert.equal((await b.updateConsumer('c2', { name: 'ops' }, 5))?.name, 'ops');
    assert.equal(await b.updateConsumer('nope', { name: 'x' }, 5), undefined);

    await a.append([ev('acme'), ev('acme'), ev('acme')], 1);
    assert.equal(await a.ackCursor('c1', 2, 10), 2);
    assert.equal(await b.ackCursor('c1', 1, 11), 2, 'an ack behind the cursor changes nothing');
    assert.equal(await a.ackCursor('nope', 1, 11), undefined);
    assert.deepEqual(await b.consumerLags(), [
      { id: 'c1', tenant: 'acme', lag: 1 },
      { id: 'c2', tenant: 'acme', lag: 3 },
      { id: 'c3', tenant: 'acme', lag: 3 },
    ]);
    assert.equal((await a.setCursor('c1', 0, 12))?.cursor, 0, 'seek moves back');
    assert.equal((await a.setKey('c1', 'k2', Buffer.from('h2'), 13))?.key_id, 'k2');
    assert.equal((await b.getConsumerByKeyId('k2'))?.id, 'c1');
    assert.deepEqual((await b.listConsumers({ tenant: 'acme', afterId: 'c1', limit: 1 })).map((c) => c.id), ['c2']);

    const g1 = await a.beginPoll('c1', 100);
    const g2 = await b.beginPoll('c1', 200);
    assert.ok(g2.generation > g1.generation);
    assert.deepEqual(await a.pollGenerations(['c1', 'c2', 'nope']), new Map([['c1', g2.generation], ['c2', 0]]));
    assert.deepEqual(await a.pollActivity('c1'), { lastPollAt: 200, heldUntil: null });
    assert.deepEqual(await a.pollActivity('c2'), { lastPollAt: null, heldUntil: null });

    // A held poll is visible from every node; an old poll's "no longer held" never clears a newer one's mark.
    b.markHeld(g2, 25_200);
    await waitFor(async () => (await a.pollActivity('c1')).heldUntil === 25_200, 5_000, 'the mark reaches node a');
    b.markHeld(g1, null);
    const g3 = await a.beginPoll('c1', 300);
    assert.equal((await b.pollActivity('c1')).heldUntil, null, 'a new poll replaces the old hold');
    a.markHeld(g3, 30_300);
    b.markHeld(g2, null);
    await waitFor(async () => (await b.pollActivity('c1')).heldUntil === 30_300, 5_000, 'the newer mark stands');
    a.markHeld(g3, null);
    assert.equal((await a.pollActivity('c1')).heldUntil, null, 'this node sees its own clear before it is written');
    await waitFor(async () => (await b.pollActivity('c1')).heldUntil === null, 5_000, 'the clear reaches node b');
    await a.endPolls('c1');

    await b.saveWebhook('c3', () => webhookRow('c3'));
    await b.claimLeases(10_000);
    await b.recordProgress({ consumerId: 'c3', epoch: 1, deliveries: [{ consumer_id: 'c3', event_id: 'e', pos: 1, attempt: 1, status: 200, error: null, duration_ms: 3, at: 1, next_attempt_at: null, response: null }] });
    assert.equal(await a.deleteConsumer('c3'), true);
    assert.equal(await a.deleteConsumer('c3'), false);
    assert.equal(await a.getWebhook('c3'), undefined);
    assert.deepEqual(await a.listDeliveries('c3', { limit: 10 }), []);
  });

  test('leases: an expired lease is claimed by another node with a higher epoch; the old owner is fenced out of progress and of appends', async (t) => {
    const db = await freshDatabase(t);
    const [a, b] = [await db.open('A'), await db.open('B')];
    await a.createConsumer(consumerRow('c1', 'acme'));
    await a.append([ev('acme'), ev('acme'), ev('acme')], 1);
    const { row, previous } = await a.saveWebhook('c1', (consumer, current) => {
      assert.equal(consumer.id, 'c1');
      assert.equal(current, undefined);
      return webhookRow('c1');
    });
    assert.equal(previous, undefined);
    assert.equal(row.enabled, 1);
    await assert.rejects(a.saveWebhook('nope', () => webhookRow('nope')), (e: unknown) => e instanceof ApiError && e.code === 'not_found');

    const ttl = 400;
    const [held] = await a.claimLeases(ttl);
    assert.deepEqual(held, { consumerId: 'c1', epoch: 1 });
    assert.deepEqual(await b.claimLeases(ttl), [], 'a live lease is not taken');
    assert.equal(await a.recordProgress({ consumerId: 'c1', epoch: 1, cursor: 1 }), true);

    await sleep(ttl + 150); // A stops renewing: its lease (and its heartbeat) expire
    const [taken] = await b.claimLeases(ttl);
    assert.deepEqual(taken, { consumerId: 'c1', epoch: 2 });

    const delivery = { consumer_id: 'c1', event_id: 'e2', pos: 2, attempt: 1, status: 200, error: null, duration_ms: 5, at: 2, next_attempt_at: null, response: null };
    assert.equal(
      await a.recordProgress({ consumerId: 'c1', epoch: 1, cursor: 3, state: { attempt: 7, last_error: 'stale' }, deliveries: [delivery] }),
      false,
      'the old owner is fenced out',
    );
    assert.equal((await a.getConsumer('c1'))?.cursor, 1, 'the cursor did not move');
    assert.equal((await a.getWebhook('c1'))?.attempt, 0, 'the webhook state did not change');
    assert.deepEqual(await a.listDeliveries('c1', { limit: 10 }), [], 'no attempt was recorded');
    await assert.rejects(
      a.append([ev('acme', 'pollgate-disabled')], 3, { progress: { consumerId: 'c1', epoch: 1, state: { enabled: 0 } } }),
      (e: unknown) => e instanceof LeaseLost,
    );
    assert.equal(await b.head('acme'), 3, 'a fenced append stores nothing');
    assert.equal((await b.getWebhook('c1'))?.enabled, 1);

    // The new owner's writes go through, all or nothing with an append.
    assert.equal(await b.recordProgress({ consumerId: 'c1', epoch: 2, cursor: 2, deliveries: [delivery] }), true);
    assert.equal(await b.recordProgress({ consumerId: 'c1', epoch: 2, cursor: 1 }), true);
    assert.equal((await b.getConsumer('c1'))?.cursor, 2, 'progress never moves the cursor back');
    const appended = await b.append([ev('acme', 'pollgate-disabled')], 4, {
      progress: { consumerId: 'c1', epoch: 2, cursor: 3, state: { enabled: 0, disabled_reason: 'gave up' } },
    });
    assert.equal(appended[0]!.record.pos, 4);
    assert.equal((await a.getWebhook('c1'))?.enabled, 0);
    assert.equal((await a.getConsumer('c1'))?.cursor, 3);
    assert.deepEqual((await a.listDeliveries('c1', { limit: 10 })).map((d) => d.event_id), ['e2']);
    assert.deepEqual(await b.claimLeases(ttl), [], 'a disabled webhook is nobody\'s lease');
  });

  test('leases spread over live nodes: a node holding more than its share gives the extras up to a newcomer', async (t) => {
    const db = await freshDatabase(t);
    const [a, b] = [await db.open('A'), await db.open('B')];
    for (const id of ['c1', 'c2', 'c3', 'c4']) {
      await a.createConsumer(consumerRow(id, 'acme'));
      await a.saveWebhook(id, () => webhookRow(id));
    }
    const ttl = 5_000;
    assert.equal((await a.claimLeases(ttl)).length, 4, 'alone, A takes all');
    assert.equal((await b.claimLeases(ttl)).length, 0, 'B is live now, but nothing is free');
    assert.equal((await a.claimLeases(ttl)).length, 2, 'A keeps its share of two');
    const bs = await b.claimLeases(ttl);
    assert.equal(bs.length, 2);
    for (const lease of bs) assert.equal(lease.epoch, 2, 'a lease taken over has a new epoch');
    await b.releaseLease(bs[0]!.consumerId);
    assert.equal((await b.claimLeases(ttl)).length, 2, 'a released lease is free to claim');
  });

  test('settings: get, set, and one winner when nodes race to set a value first', async (t) => {
    const db = await freshDatabase(t);
    const nodes = [await db.open('n1'), await db.open('n2'), await db.open('n3')];
    assert.equal(await nodes[0]!.getSetting('admin'), undefined);
    const answers = await Promise.all(nodes.map((n, i) => n.setSettingIfAbsent('admin', `hash-${i}`)));
    assert.equal(new Set(answers).size, 1);
    await nodes[1]!.setSetting('bridge', 'off');
    assert.equal(await nodes[2]!.getSetting('bridge'), 'off');
  });

  test('signals: a commit on node A reaches node B within a bound; a killed LISTEN connection comes back and says so', async (t) => {
    const db = await freshDatabase(t);
    const [a, b] = [await db.open('A'), await db.open('B')];
    const heads: Array<Map<string, number>> = [];
    const polls: Array<{ consumerId: string; generation: number }> = [];
    let reconnects = 0;
    b.signals!.onHeads((h) => heads.push(h));
    b.signals!.onPoll((p) => polls.push(p));
    b.signals!.onReconnect(() => reconnects++);
    let ownHints = 0;
    a.signals!.onHeads(() => ownHints++);

    const started = performance.now();
    await a.append([ev('acme'), ev('acme'), ev('other')], Date.now());
    await waitFor(() => heads.some((h) => h.get('acme') === 2), 2_000, 'B hears of acme at 2');
    const latency = performance.now() - started;
    assert.ok(latency < 1_000, `hint latency ${latency.toFixed(1)} ms`);
    assert.equal(heads.find((h) => h.has('acme'))!.get('other'), 1, 'one coalesced hint for the group');

    await a.createConsumer(consumerRow('c1', 'acme'));
    const start = await a.beginPoll('c1', 1);
    await waitFor(() => polls.some((p) => p.consumerId === 'c1' && p.generation === start.generation), 2_000, 'B hears of the poll');
    assert.equal(ownHints, 0, 'a node ignores its own hints');

    // Kill B's LISTEN connection from the server side.
    const admin = await db.client();
    const killed = await admin.query(
      "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = 'pollgate:B/listen'",
    );
    assert.equal(killed.rowCount, 1);
    await waitFor(() => reconnects === 1, 5_000, 'B listens again and calls onReconnect');
    heads.length = 0;
    await a.append([ev('acme')], Date.now());
    await waitFor(() => heads.some((h) => h.get('acme') === 3), 2_000, 'B hears again after reconnecting');
  });

  test('many tenants in one group: the hint is split to fit NOTIFY\'s payload limit and still arrives whole', async (t) => {
    const db = await freshDatabase(t);
    const [a, b] = [await db.open('A'), await db.open('B')];
    const heard = new Map<string, number>();
    b.signals!.onHeads((h) => h.forEach((v, k) => heard.set(k, v)));
    const tenants = Array.from({ length: 600 }, (_, i) => `tenant-with-a-longish-name-${i}`);
    await a.append(tenants.map((x) => ev(x)), Date.now());
    await waitFor(() => heard.size === tenants.length, 3_000, 'every tenant heard');
  });

  test('database failures reject with ApiError unavailable and never crash the process; the store recovers by itself', async (t) => {
    // Nothing listening.
    await rejectsUnavailable(
      openPostgresStore('postgres://postgres@127.0.0.1:1/pollgate', { nodeId: 'x', logger }),
      'open against a closed port',
    );

    const db = await freshDatabase(t);
    const store = await db.open('N', { poolSize: 3 });
    let reconnects = 0;
    store.signals!.onReconnect(() => reconnects++);
    await store.ping();
    await store.append([ev('acme')], 1);

    // Every connection of the node killed (pool and LISTEN): calls may fail once, then recover.
    const admin = await db.client();
    await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'pollgate:N%'");
    await waitFor(
      async () => {
        try {
          await store.ping();
          return true;
        } catch (error) {
          assert.ok(error instanceof ApiError && error.code === 'unavailable', String(error));
          return false;
        }
      },
      5_000,
      'ping after the connections were killed',
    );
    assert.equal((await store.append([ev('acme')], 2))[0]!.record.pos, 2);
    await waitFor(() => reconnects >= 1, 5_000, 'the listener came back');

    // The database vanishes altogether.
    await admin.end();
    await new pg.Client({ connectionString: db.url.replace(/\/[^/]*$/, '/postgres') }).connect().then(async (c) => {
      try {
        const name = new URL(db.url).pathname.slice(1);
        await c.query(`DROP DATABASE "${name}" WITH (FORCE)`);
      } finally {
        await c.end();
      }
    });
    await rejectsUnavailable(store.ping(), 'ping without the database');
    await rejectsUnavailable(store.append([ev('acme')], 3), 'append without the database');
    await rejectsUnavailable(store.read('acme', 0, 10), 'read without the database');
    await rejectsUnavailable(store.claimLeases(1_000), 'claim without the database');
    await sleep(200); // let the listener's reconnect attempts fail too: still no crash
    await store.close();
    await assert.rejects(store.ping(), (e: unknown) => e instanceof ApiError && e.code === 'shutting_down');
  });
});
