/**
 * What operators read in the log about pushing: failed delivery attempts at warn, at most one
 * line a minute per webhook (saying how many failed since the last line), the return to health
 * at info, never the URL, headers or secret (they may carry credentials); and at debug, which
 * push consumers this node delivers and what retention removed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import { gatewayFor } from './support/gateway.ts';
import { receiverFor } from './support/receiver.ts';
import { FakeClock } from './support/fake-clock.ts';
import { waitFor } from './support/wait.ts';

test('failed attempts at warn, one line a minute per webhook; recovery at info; no URL or secret in any line', async (t) => {
  const lines: Array<Record<string, any>> = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line.trim()) lines.push(JSON.parse(line));
      done();
    },
  });
  const g = await gatewayFor(t, { logger: pino({ level: 'info' }, sink), config: { retryScheduleMs: [20] } });
  let failing = true;
  const rx = await receiverFor(t, () => (failing ? { status: 500 } : { status: 200 }));
  const consumer = await g.createConsumer({ tenant: 'logs', start: 'earliest' });
  const hookUrl = `${rx.url}hook/tok3n-in-path`;
  const put = await g.json(`/v1/consumers/${consumer.id}/webhook`, { method: 'PUT', body: { url: hookUrl, headers: { 'X-Api-Key': 'k3y-in-header' } } });
  assert.equal(put.status, 201, JSON.stringify(put.body));
  const event = await g.publish({ tenant: 'logs', type: 'l.x', data: 1 });

  await rx.waitForCount(6, 10_000);
  const failures = () => lines.filter((l) => l.msg === 'webhook attempt failed');
  assert.equal(failures().length, 1, `one line for ${rx.requests.length} failed attempts within a minute`);
  const line = failures()[0]!;
  assert.equal(line.level, 40, 'warn');
  assert.equal(line.consumer, consumer.id);
  assert.equal(line.event, event.id);
  assert.equal(line.attempt, 1);
  assert.equal(line.error, 'http_status');
  assert.equal(line.status, 500);
  assert.ok(line.nextAttemptAt, 'when it is tried again');

  failing = false;
  await waitFor(() => lines.some((l) => l.msg === 'webhook delivering again'), 10_000, 'the recovery line');
  const recovered = lines.find((l) => l.msg === 'webhook delivering again')!;
  assert.equal(recovered.level, 30, 'info');
  assert.ok(recovered.failedAttempts >= 6, `it says how many attempts failed (${recovered.failedAttempts})`);

  const all = JSON.stringify(lines);
  for (const secret of ['tok3n-in-path', 'k3y-in-header', put.body.secret]) assert.ok(!all.includes(secret), `no log line holds ${secret}`);
});

test('at debug: which push consumers this node delivers, and what retention removed', async (t) => {
  const lines: Array<Record<string, any>> = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line.trim()) lines.push(JSON.parse(line));
      done();
    },
  });
  const clock = new FakeClock();
  const g = await gatewayFor(t, { clock, logger: pino({ level: 'debug' }, sink), config: { retentionMs: 60_000 } });
  const rx = await receiverFor(t);
  const consumer = await g.createConsumer({ tenant: 'debug', start: 'earliest' });
  assert.equal((await g.json(`/v1/consumers/${consumer.id}/webhook`, { method: 'PUT', body: { url: rx.url } })).status, 201);
  await waitFor(() => lines.some((l) => l.msg === 'push consumer delivered from this node now' && l.consumer === consumer.id), 5_000, 'the bridge says it took the consumer');
  assert.equal(lines.find((l) => l.msg === 'push consumer delivered from this node now')!.level, 20, 'debug');

  await g.publish({ tenant: 'debug', type: 'd.x', data: 1 });
  await rx.waitForCount(1, 5_000);
  // Retention runs on the fake clock; each pass needs real time for its database round trips.
  for (let i = 0; i < 100 && !lines.some((l) => l.msg === 'retention removed old events and attempt records'); i++) {
    await clock.advance(5_000);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const trimmed = lines.find((l) => l.msg === 'retention removed old events and attempt records');
  assert.ok(trimmed, 'retention says what it removed');
  assert.ok(trimmed.removed >= 1);
});
