/**
 * Wait negotiation: every answer of the consumer routes says the longest `wait` the server
 * holds (`pollgate-max-wait`, seconds; POLLGATE_MAX_WAIT), GET /v1/consumer says it in its body
 * too, and a `wait` beyond it is a 400 whose message names the maximum, so a client can adapt.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gatewayFor } from './support/gateway.ts';

test('the consumer routes tell the longest wait, on answers and refusals alike', async (t) => {
  const g = await gatewayFor(t, { config: { maxWaitMs: 5_000 } });
  const consumer = await g.createConsumer({ tenant: 'neg' });

  const empty = await g.json('/v1/events?wait=0', { key: consumer.key });
  assert.equal(empty.status, 200);
  assert.equal(empty.headers.get('pollgate-max-wait'), '5');

  const tooLong = await g.json('/v1/events?wait=25', { key: consumer.key });
  assert.equal(tooLong.status, 400);
  assert.equal(tooLong.headers.get('pollgate-max-wait'), '5', 'the refusal says the maximum in a header');
  assert.match(tooLong.body.error.message, /from 0 to 5\b/, 'and in its message');
  assert.equal(tooLong.body.error.field, 'wait');

  // A poll answered from the wake-up (written straight to the socket) carries it too.
  const held = g.json('/v1/events?wait=5', { key: consumer.key });
  await new Promise((resolve) => setTimeout(resolve, 100));
  await g.publish({ tenant: 'neg', type: 'n.x', data: 1 });
  const woken = await held;
  assert.equal(woken.body.events.length, 1);
  assert.equal(woken.headers.get('pollgate-max-wait'), '5');

  const me = await g.json('/v1/consumer', { key: consumer.key });
  assert.equal(me.body.max_wait, 5);
  assert.equal(me.headers.get('pollgate-max-wait'), '5');

  const publish = await g.json('/v1/events', { body: { tenant: 'neg', type: 'n.x', data: 2 } });
  assert.equal(publish.status, 201);
  assert.equal(publish.headers.get('pollgate-max-wait'), null, 'not on the publish route');
});
