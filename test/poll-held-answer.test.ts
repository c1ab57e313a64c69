/**
 * A held poll is answered after its route has returned (src/http/incoming.ts answerLater):
 * the hub's callback writes the answer straight on the Node response. What a client and an
 * operator see must be what they saw when the route itself answered: the same status and
 * body for events, a timeout, a supersede and a deleted consumer; the response headers the
 * edge and the route set (x-request-id, pollgate-max-wait); and one request line per poll,
 * written when the answer goes out, with the status actually sent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import { startGateway, type TestGateway } from './support/gateway.ts';
import { sleep, track, waitFor, within } from './support/wait.ts';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, logger: pino({ level: 'info' }, stream) };
}

const line = (lines: Array<Record<string, unknown>>, id: string) => lines.find((l) => l.msg === 'request' && l.req_id === id);

async function held(g: TestGateway, key: string, id: string, query = 'wait=30') {
  const r = await g.call(`/v1/events?${query}`, { key, headers: { 'x-request-id': id } });
  return { status: r.status, headers: r.headers, body: (await r.json()) as any };
}

async function waitHeld(g: TestGateway, n: number): Promise<void> {
  await waitFor(() => g.gateway.services.hub.stats().held === n, 5000, `${n} polls held`);
}

test('a held poll woken by a publish: 200 with the event, the headers, and its request line only once answered', async () => {
  const { lines, logger } = capture();
  const g = await startGateway({ logger });
  try {
    const c = await g.createConsumer({ tenant: 'held-a' });
    const poll = track(held(g, c.key, 'held-wake'));
    await waitHeld(g, 1);
    await sleep(150);
    assert.equal(line(lines, 'held-wake'), undefined, 'no request line while the poll is held');
    await g.publish({ tenant: 'held-a', type: 'x', data: { n: 1 } });
    const r = await within(poll.promise, 5000, 'the woken poll');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.events.map((e: any) => e.data), [{ n: 1 }]);
    assert.equal(r.body.more, false);
    assert.equal(r.headers.get('x-request-id'), 'held-wake');
    assert.equal(r.headers.get('pollgate-max-wait'), String(g.config.maxWaitMs / 1000));
    assert.equal(r.headers.get('content-type'), 'application/json');
    await waitFor(() => line(lines, 'held-wake') !== undefined, 2000, 'the request line');
    const l = line(lines, 'held-wake')!;
    assert.equal(l.status, 200);
    assert.equal(l.path, '/v1/events');
    assert.ok((l.ms as number) >= 140, `the line times the whole hold (${l.ms} ms)`);
    assert.equal(lines.filter((x) => x.req_id === 'held-wake').length, 1, 'one line per request');
  } finally {
    await g.close();
  }
});

test('a held poll that times out answers 200 empty with the cursor; superseded and deleted answer their errors, logged with their status', async () => {
  const { lines, logger } = capture();
  const g = await startGateway({ logger });
  try {
    const c = await g.createConsumer({ tenant: 'held-b' });
    const timedOut = await within(held(g, c.key, 'held-timeout', 'wait=0.2'), 5000, 'the timed-out poll');
    assert.equal(timedOut.status, 200);
    assert.deepEqual(timedOut.body, { events: [], cursor: c.cursor, more: false });

    const first = track(held(g, c.key, 'held-superseded'));
    await waitHeld(g, 1);
    const second = track(held(g, c.key, 'held-second', 'wait=0'));
    const r = await within(first.promise, 5000, 'the superseded poll');
    assert.equal(r.status, 409);
    assert.equal(r.body.error.code, 'superseded');
    assert.equal(r.headers.get('x-request-id'), 'held-superseded');
    assert.equal((await within(second.promise, 5000, 'the second poll')).status, 200);

    const gone = track(held(g, c.key, 'held-deleted'));
    await waitHeld(g, 1);
    const del = await g.call(`/v1/consumers/${c.id}`, { method: 'DELETE' });
    assert.equal(del.status, 204);
    const d = await within(gone.promise, 5000, 'the poll of the deleted consumer');
    assert.equal(d.status, 404);
    assert.equal(d.body.error.code, 'not_found');

    await waitFor(() => ['held-timeout', 'held-superseded', 'held-deleted'].every((id) => line(lines, id)), 2000, 'the request lines');
    assert.deepEqual(
      ['held-timeout', 'held-superseded', 'held-deleted'].map((id) => [id, line(lines, id)!.status]),
      [['held-timeout', 200], ['held-superseded', 409], ['held-deleted', 404]],
    );
    assert.equal(g.gateway.services.hub.stats().held, 0);
  } finally {
    await g.close();
  }
});
