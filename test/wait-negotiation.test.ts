/**
 * Wait negotiation: every answer of the consumer routes says the longest `wait` the server
 * holds (`pollgate-max-wait`, seconds; POLLGATE_MAX_WAIT), GET /v1/consumer says it in its body
 * too, and a `wait` beyond it is a 400 whose message names the maximum, so a client can adapt.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { gatewayFor } from './support/gateway.ts';
import { sleep, waitFor, within } from './support/wait.ts';

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

test('the SDK and `pollgate tail` poll with the server maximum when they ask for more', async (t) => {
  const g = await gatewayFor(t, { config: { maxWaitMs: 3_000 } });
  const consumer = await g.createConsumer({ tenant: 'adapt' });
  const { createClient } = await import('../src/client/index.ts');
  const warnings: string[] = [];
  const client = createClient({ url: g.url, key: consumer.key, logger: { warn: (m: string) => void warnings.push(m) } });
  const stop = new AbortController();
  t.after(() => stop.abort());
  const seen: string[] = [];
  const reading = (async () => {
    for await (const event of client.events({ wait: 25, signal: stop.signal })) {
      seen.push(event.id);
      if (seen.length === 2) stop.abort();
    }
  })();
  await waitFor(async () => (await g.json(`/v1/consumers/${consumer.id}`)).body.polling === true, 5_000, 'the SDK holds a poll');
  const first = await g.publish({ tenant: 'adapt', type: 'a.x', data: 1 });
  await sleep(3_500); // past the server's maximum: the poll was held with wait=3 and polled again
  const second = await g.publish({ tenant: 'adapt', type: 'a.x', data: 2 });
  await within(reading, 10_000, 'the SDK reads both events');
  assert.deepEqual(seen, [first.id, second.id]);
  assert.ok(warnings.some((w) => /at most 3 s/.test(w)), `the SDK says it lowered its wait: ${JSON.stringify(warnings)}`);

  // The CLI asks wait=25 by default.
  const tenant = 'adapt-cli';
  const c = await g.createConsumer({ tenant });
  const child = spawn(process.execPath, ['bin/pollgate.js', 'tail', '--key', c.key, '--url', g.url], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    env: { PATH: process.env.PATH ?? '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  t.after(() => child.kill('SIGKILL'));
  await waitFor(async () => (await g.json(`/v1/consumers/${c.id}`)).body.polling === true, 10_000, 'tail holds a poll');
  const e = await g.publish({ tenant, type: 'c.x', data: 1 });
  await waitFor(() => out.includes(e.id), 5_000, `tail prints the event (stderr: ${err})`);
  assert.equal(child.exitCode, null, 'tail keeps running');
});
