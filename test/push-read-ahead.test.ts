/**
 * The push bridge's read-ahead is bounded by bytes, per worker and over all the workers of a
 * node (src/push/read-ahead.ts, POLLGATE_PUSH_READ_AHEAD_BYTES), and shown on /metrics as
 * pollgate_push_read_ahead_bytes. Before the bound every worker read 100 events ahead
 * whatever their size: 40 push consumers on large events held 1.2 GB.
 *
 * Eight push consumers on one tenant of thirty 100 kB events, a budget of 1 MB, a real
 * receiver that holds each consumer's first delivery for a while: while every worker has an
 * attempt in flight (so every worker has read ahead), the node holds at most the budget plus
 * one event per worker; unbounded it would hold 8 × 30 events (24 MB). Then everything is
 * delivered, in order, and the budget is all returned.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gatewayFor, type TestGateway } from './support/gateway.ts';
import { receiverFor } from './support/receiver.ts';
import { waitUntil } from './support/wait.ts';

const EVENT_BYTES = 100_000;
const EVENTS = 30;
const CONSUMERS = 8;
const BUDGET = 1_000_000;

const dataOf = (i: number) => ({ i, pad: 'x'.repeat(EVENT_BYTES - `{"i":${i},"pad":""}`.length) });

async function readAheadMetric(g: TestGateway): Promise<number> {
  const r = await g.call('/metrics');
  assert.equal(r.status, 200);
  const line = (await r.text()).split('\n').find((l) => l.startsWith('pollgate_push_read_ahead_bytes '));
  assert.ok(line, 'pollgate_push_read_ahead_bytes is on /metrics');
  return Number(line.split(' ')[1]);
}

test('push read-ahead stays within the node budget plus one event per worker, on a real receiver with large events; all is delivered and the budget returned', async (t) => {
  const g = await gatewayFor(t, { config: { pushReadAheadBytes: BUDGET } });
  // Each consumer's first delivery is held 2 s: meanwhile every worker has read ahead.
  const firstOf = new Set<string>();
  const rx = await receiverFor(t, (req) => {
    const consumer = String(req.path);
    if (firstOf.has(consumer)) return { status: 200 };
    firstOf.add(consumer);
    return { status: 200, delayMs: 2000 };
  });

  await g.publish(Array.from({ length: EVENTS }, (_, k) => ({ tenant: 'ra', type: 'big.event', data: dataOf(k + 1) })));
  const ids: string[] = [];
  for (let n = 0; n < CONSUMERS; n++) {
    const c = await g.createConsumer({ tenant: 'ra', start: 'earliest' });
    ids.push(c.id);
    const r = await g.json(`/v1/consumers/${c.id}/webhook`, { method: 'PUT', body: { url: `${rx.url}c${n}`, timeout_ms: 30_000 } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }

  await rx.waitForCount(CONSUMERS, 10_000);
  const bound = BUDGET + CONSUMERS * EVENT_BYTES;
  const during = await readAheadMetric(g);
  assert.ok(during >= CONSUMERS * EVENT_BYTES, `every worker holds at least the event it delivers (${during})`);
  assert.ok(during <= bound, `read ahead ${during} bytes with every worker busy; bound ${bound}`);

  await rx.waitForCount(CONSUMERS * EVENTS, 30_000);
  for (let n = 0; n < CONSUMERS; n++) {
    const got = rx.requests.filter((q) => q.path === `/c${n}`).map((q) => JSON.parse(q.body).data.i);
    assert.deepEqual(got, Array.from({ length: EVENTS }, (_, k) => k + 1), `consumer ${n}: every event once, in order`);
  }
  const { peakBytes } = g.gateway.services.bridge.stats().readAhead;
  assert.ok(peakBytes <= bound, `the most ever read ahead, ${peakBytes} bytes, stayed within ${bound}`);
  await waitUntil(async () => (await readAheadMetric(g)) === 0, 5000, () => 'the read-ahead budget to be all returned');
});
