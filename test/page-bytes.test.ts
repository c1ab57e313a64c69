/**
 * Poll pages are bounded by bytes (POLLGATE_MAX_PAGE_BYTES): a page stops before the event
 * that would take its data past the bound and says more=true with the cursor at its last
 * event; an event larger than the bound comes alone, so the log never gets stuck. Pinned on
 * every path that builds a page: the direct read (poll.ts scan), a held poll woken by a local
 * commit (the hub's in-memory answer), and a held poll that re-reads the log (the hub's
 * batched readMany, and its scan of a waiter whose page held no match). The store's reads
 * stop at the bound themselves (both engines), so memory is bounded while reading.
 *
 * Answers not yet sent are bounded too, over all clients (POLLGATE_PAGE_BYTES_IN_FLIGHT): a
 * client that never reads keeps its answer in the process, and while it does, other pages
 * shrink to what is free (one event at least), shown as pollgate_poll_bytes_unsent.
 *
 * Sizes: events of EVENT_BYTES data; a bound of 3.5 events, so a full page holds 3.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import pino from 'pino';
import { compileFilter } from '../src/filter/filter.ts';
import { createHub, type WaitOutcome } from '../src/hub/hub.ts';
import { scan } from '../src/consumers/poll.ts';
import { openStore } from '../src/store/open.ts';
import { dataBytes, type Store } from '../src/store/store.ts';
import { gatewayFor, tempDir, type TestGateway } from './support/gateway.ts';
import { databaseUrlFor } from './support/engine.ts';
import { FakeClock } from './support/fake-clock.ts';
import { waitUntil, within } from './support/wait.ts';

const EVENT_BYTES = 100_000;
const BOUND = 350_000;

/** data of exactly `bytes` bytes of JSON text. */
const dataOf = (i: number, bytes = EVENT_BYTES) => {
  const head = `{"i":${i},"pad":"`;
  return `${head}${'x'.repeat(bytes - head.length - 2)}"}`;
};
const event = (tenant: string, i: number, type = 'big.event', bytes = EVENT_BYTES) => ({
  tenant,
  type,
  data: JSON.parse(dataOf(i, bytes)),
});

async function publishBig(g: TestGateway, tenant: string, count: number, from = 1, type?: string, bytes?: number): Promise<void> {
  await g.publish(Array.from({ length: count }, (_, k) => event(tenant, from + k, type, bytes)));
}

async function pollPage(g: TestGateway, key: string, query: string) {
  const r = await g.json(`/v1/events?${query}`, { key });
  assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 300));
  return r.body as { events: Array<{ cursor: string; data: { i: number } }>; cursor: string; more: boolean };
}

test('direct read: a limit=1000 page stops before the event that would cross the byte bound, more=true, cursor at its last event; paging on reads every event once', async (t) => {
  const g = await gatewayFor(t, { config: { maxPageBytes: BOUND } });
  const c = await g.createConsumer({ tenant: 'pb-direct', start: 'earliest' });
  await publishBig(g, 'pb-direct', 10);

  const seen: number[] = [];
  const pages: number[] = [];
  let after = '';
  for (let i = 0; i < 10; i++) {
    const page = await pollPage(g, c.key, `wait=0&limit=1000${after ? `&after=${after}` : ''}`);
    pages.push(page.events.length);
    seen.push(...page.events.map((e) => e.data.i));
    assert.equal(page.cursor, page.events.at(-1)!.cursor, 'the cursor is the last returned event');
    assert.equal(page.more, seen.length < 10, `more says whether events remain (after ${seen.length})`);
    if (!page.more) break;
    after = page.cursor;
  }
  assert.deepEqual(pages, [3, 3, 3, 1], 'three 100 kB events fit in 350 kB, a fourth would not');
  assert.deepEqual(seen, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
});

test('direct read: an event larger than the bound comes alone (the log never gets stuck), and the filter still applies', async (t) => {
  const g = await gatewayFor(t, { config: { maxPageBytes: 50_000 } });
  const c = await g.createConsumer({ tenant: 'pb-alone', start: 'earliest', filter: { types: ['big.keep'] } });
  await g.publish([event('pb-alone', 1, 'big.skip'), event('pb-alone', 2, 'big.keep'), event('pb-alone', 3, 'big.skip'), event('pb-alone', 4, 'big.keep')]);

  const first = await pollPage(g, c.key, 'wait=0&limit=100');
  assert.deepEqual(first.events.map((e) => e.data.i), [2]);
  assert.equal(first.more, true);
  const second = await pollPage(g, c.key, `wait=0&limit=100&after=${first.cursor}`);
  assert.deepEqual(second.events.map((e) => e.data.i), [4]);
  assert.equal(second.more, false);
});

test('direct read: small events are not cut; a page of 1,000 stays whole under the default bound', async (t) => {
  const g = await gatewayFor(t);
  const c = await g.createConsumer({ tenant: 'pb-small', start: 'earliest' });
  for (const from of [0, 1000]) {
    await g.publish(Array.from({ length: from === 0 ? 1000 : 1 }, (_, i) => ({ tenant: 'pb-small', type: 'small', data: { i: from + i, pad: 'y'.repeat(1000) } })));
  }
  const page = await pollPage(g, c.key, 'wait=0&limit=1000');
  assert.equal(page.events.length, 1000);
  assert.equal(page.more, true);
});

test('held poll woken by a commit: the answer built in the wake-up keeps to the byte bound (more=true), the rest follows', async (t) => {
  const clock = new FakeClock();
  const g = await gatewayFor(t, { clock, config: { maxPageBytes: BOUND } });
  const c = await g.createConsumer({ tenant: 'pb-wake' });
  const held = pollPage(g, c.key, 'wait=30&limit=1000');
  // The poll is held once the hub has it.
  for (let i = 0; i < 200 && !g.gateway.services.hub.isHeld(c.id); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(g.gateway.services.hub.isHeld(c.id), 'the poll is held');
  await publishBig(g, 'pb-wake', 8);
  const page = await within(held, 5000, 'the woken poll');
  assert.deepEqual(page.events.map((e) => e.data.i), [1, 2, 3]);
  assert.equal(page.more, true);
  const rest = await pollPage(g, c.key, `wait=0&limit=1000&after=${page.cursor}`);
  assert.deepEqual(rest.events.map((e) => e.data.i), [4, 5, 6]);
});

/** A real store of the suite's engine, with a hub over it wired as pollgate.ts wires it. */
async function storeAndHub(t: { after: (fn: () => Promise<void>) => void }) {
  const dataDir = tempDir();
  const store = await openStore(
    { dataDir, databaseUrl: databaseUrlFor(dataDir), databasePoolSize: 4 },
    { nodeId: 'page-bytes', logger: pino({ level: 'silent' }) },
  );
  t.after(() => store.close());
  const asked: Array<{ limit: number; maxBytes: number | undefined }> = [];
  const hub = createHub({
    clock: new FakeClock(),
    read: (tenant, position, limit, matcher) => scan(store, tenant, position, limit, matcher),
    readMany: (reads) => {
      asked.push(...reads.map((r) => ({ limit: r.limit, maxBytes: r.maxBytes })));
      return store.readMany(reads);
    },
  });
  return { store, hub, asked };
}

async function appendBig(store: Store, tenant: string, types: string[]): Promise<void> {
  await store.append(
    types.map((type, k) => ({ tenant, type, id: `${tenant}-${k + 1}`, data: dataOf(k + 1) })),
    Date.now(),
  );
}

test('the store stops a read at its byte bound (both engines): the first event always, cut set, readMany per request', async (t) => {
  const { store } = await storeAndHub(t);
  await appendBig(store, 'pb-store', Array(6).fill('big.event'));
  await store.append([{ tenant: 'pb-other', type: 'small', id: 's1', data: '{"i":1}' }], Date.now());

  const page = await store.read('pb-store', 0, 1000, BOUND);
  assert.deepEqual(page.records.map((r) => r.pos), [1, 2, 3]);
  assert.equal(page.cut, true);
  assert.equal(page.head, 6);
  assert.ok(page.records.every((r) => dataBytes(r) === EVENT_BYTES), 'the size counted is the stored data text');

  const alone = await store.read('pb-store', 4, 1000, 10);
  assert.deepEqual(alone.records.map((r) => r.pos), [5], 'an event larger than the bound comes alone');
  assert.equal(alone.cut, true);

  const whole = await store.read('pb-store', 3, 1000, BOUND);
  assert.deepEqual(whole.records.map((r) => r.pos), [4, 5, 6]);
  assert.equal(whole.cut, undefined, 'the end of the log is not a cut');

  const unbounded = await store.read('pb-store', 0, 1000);
  assert.equal(unbounded.records.length, 6);

  const many = await store.readMany([
    { tenant: 'pb-store', afterPos: 0, limit: 1000, maxBytes: 2 * EVENT_BYTES },
    { tenant: 'pb-other', afterPos: 0, limit: 10, maxBytes: 1 },
    { tenant: 'pb-store', afterPos: 2, limit: 2, maxBytes: BOUND },
  ]);
  assert.deepEqual(many.map((p) => p.records.map((r) => r.pos)), [[1, 2], [1], [3, 4]]);
  assert.deepEqual(many.map((p) => p.cut), [true, undefined, undefined], 'a page stopped by its limit is not cut');
});

test('held poll that re-reads the log (batched readMany): the page is read and answered within the byte bound', async (t) => {
  const { store, hub, asked } = await storeAndHub(t);
  await appendBig(store, 'pb-reread', Array(8).fill('big.event'));
  hub.hint('pb-reread', 8); // the head moved beyond the poll's position: it re-reads at once
  const outcome = await within(
    hub.wait({
      ticket: hub.begin('c-reread', 1),
      tenant: 'pb-reread',
      matcher: compileFilter(null),
      position: 0,
      limit: { events: 1000, bytes: BOUND },
      waitMs: 60_000,
      onGone: undefined,
    }),
    5000,
    'the re-read',
  );
  assert.deepEqual(asked, [{ limit: 1001, maxBytes: BOUND }], 'the store was asked for no more than the bound');
  const events = (outcome as WaitOutcome & { kind: 'events' }).events;
  assert.equal(outcome.kind, 'events');
  assert.deepEqual(events.map((e) => e.pos), [1, 2, 3]);
  assert.equal((outcome as { more: boolean }).more, true);
});

test('held poll whose re-read page is cut without a match: scanned on its own, within the byte bound', async (t) => {
  const { store, hub } = await storeAndHub(t);
  await appendBig(store, 'pb-scan', ['big.skip', 'big.skip', 'big.skip', 'big.skip', 'big.keep', 'big.keep', 'big.keep', 'big.keep', 'big.keep']);
  hub.hint('pb-scan', 9);
  const outcome = await within(
    hub.wait({
      ticket: hub.begin('c-scan', 1),
      tenant: 'pb-scan',
      matcher: compileFilter({ types: ['big.keep'] }),
      position: 0,
      limit: { events: 1000, bytes: BOUND },
      waitMs: 60_000,
      onGone: undefined,
    }),
    5000,
    'the scan',
  );
  assert.equal(outcome.kind, 'events');
  const { events, more, cursor } = outcome as WaitOutcome & { kind: 'events' };
  assert.deepEqual(events.map((e) => e.pos), [5, 6, 7]);
  assert.equal(more, true);
  assert.equal(cursor, 7);
});

async function unsentMetric(g: TestGateway): Promise<number> {
  const text = await (await g.call('/metrics')).text();
  const line = text.split('\n').find((l) => l.startsWith('pollgate_poll_bytes_unsent '));
  assert.ok(line, 'pollgate_poll_bytes_unsent is on /metrics');
  return Number(line.split(' ')[1]);
}

test('a client that never reads holds its answer in the node budget: meanwhile pages shrink to what is free, and are whole again once it leaves', async (t) => {
  const big = 250_000;
  const pageBound = 8_000_000; // 32 events: far more than the kernel buffers of a connection take
  const g = await gatewayFor(t, { config: { maxPageBytes: pageBound, pageBytesInFlight: 10_000_000 } });
  const c = await g.createConsumer({ tenant: 'pb-unread', start: 'earliest' });
  for (const from of [1, 21]) await publishBig(g, 'pb-unread', 20, from, 'big.event', big);

  // A raw connection that asks for a page and never reads the answer.
  const stalled = net.connect({ host: '127.0.0.1', port: Number(new URL(g.url).port) });
  t.after(() => stalled.destroy());
  await new Promise<void>((resolve) => stalled.once('connect', resolve));
  stalled.pause();
  stalled.write(`GET /v1/events?wait=0&limit=1000 HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${c.key}\r\n\r\n`);
  let unsent = 0;
  await waitUntil(async () => (unsent = await unsentMetric(g)) >= 32 * big, 10_000, () => `the unread answer to be held (${unsent})`);
  assert.equal(unsent, 32 * big, 'its whole answer is held until sent');

  const meanwhile = await pollPage(g, c.key, 'wait=0&limit=1000');
  assert.equal(meanwhile.events.length, 8, 'a page of what the budget has free: 2 MB, 8 events');
  assert.equal(meanwhile.more, true);

  stalled.destroy();
  await waitUntil(async () => (await unsentMetric(g)) === 0, 5000, () => 'the budget to be released when the client left');
  const whole = await pollPage(g, c.key, 'wait=0&limit=1000');
  assert.equal(whole.events.length, 32, 'whole pages again');
});

test('with no room left a page holds one event, and a filtered scan still reads the log in steps, not one query per passed-over event', async (t) => {
  const g = await gatewayFor(t, { config: { pageBytesInFlight: 0 } });
  const c = await g.createConsumer({ tenant: 'pb-steps', start: 'earliest', filter: { types: ['keep'] } });
  for (let b = 0; b < 2; b++) {
    await g.publish(Array.from({ length: 1000 }, (_, i) => ({ tenant: 'pb-steps', type: 'skip', data: { i, pad: 'z'.repeat(200) } })));
  }
  await g.publish([{ tenant: 'pb-steps', type: 'keep', data: { i: 1 } }, { tenant: 'pb-steps', type: 'keep', data: { i: 2 } }]);

  const services = g.gateway.services;
  const real = services.store;
  let reads = 0;
  services.store = Object.assign(Object.create(real) as typeof real, {
    read: (...args: Parameters<typeof real.read>) => {
      reads += 1;
      return real.read(...args);
    },
  });
  try {
    const page = await pollPage(g, c.key, 'wait=0&limit=100');
    assert.deepEqual(page.events.map((e) => e.data.i), [1], 'one event when nothing is free');
    assert.equal(page.more, true);
    assert.ok(reads <= 20, `2,000 passed-over events in ${reads} reads`);
  } finally {
    services.store = real;
  }
});
