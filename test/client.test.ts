/**
 * The client SDK (src/client, imported as `pollgate/client`) against real gateways on loopback
 * ports over real SQLite files: the iterators' ack-after-the-body rule, a throwing body, a
 * clean stop on AbortSignal, 410 as CursorExpiredError, 409 superseded, backoff on a refused
 * port and on 503, and admin round trips.
 *
 * Every wait is bounded (within / waitFor); iterators use short `wait`s on the system clock.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { rmSync } from 'node:fs';
import {
  backoffDelay,
  createAdminClient,
  createClient,
  CursorExpiredError,
  NetworkError,
  PollgateError,
  type AdminClient,
  type Envelope,
  type RetryInfo,
  type Webhook,
  type WebhookInput,
  type WebhookPreview,
  type WebhookTestResult,
} from 'pollgate/client';
import type { Preview, TestResult } from '../src/push/preview.ts';
import type { WebhookView } from '../src/push/webhooks.ts';
import { ADMIN_KEY, startGateway, tempDir, type TestGateway } from './support/gateway.ts';
import { FakeClock } from './support/fake-clock.ts';
import { Webhook as Signature } from 'standardwebhooks';
import { startReceiver, unusedPort, type ReceivedRequest } from './support/receiver.ts';
import { sleep, waitFor, within } from './support/wait.ts';

// Compile-time: the server's views fit the client's hand-written types (tsc fails otherwise).
const viewsFitTheClient: [(v: WebhookView) => Omit<Webhook, 'method'>, (p: Preview) => WebhookPreview, (r: TestResult) => WebhookTestResult] = [
  (v) => v,
  (p) => p,
  (r) => r,
];
void viewsFitTheClient;

/** Verifies a request's signature over its raw bytes (any body, not only JSON) with standardwebhooks. */
function verifyBytes(secret: string, req: ReceivedRequest): void {
  const headers = { 'webhook-id': String(req.headers['webhook-id']), 'webhook-timestamp': String(req.headers['webhook-timestamp']), 'webhook-signature': String(req.headers['webhook-signature']) };
  new Signature(secret).verify(req.body, headers, { jsonParse: false } as never);
}

let tenantSeq = 0;
const freshTenant = (label = 't') => `client-${label}-${++tenantSeq}`;

const ids = (events: Array<{ id: string }>) => events.map((e) => e.id);

describe('client SDK (system-clock gateway)', () => {
  let g: TestGateway;
  let admin: AdminClient;
  before(async () => {
    g = await startGateway({ config: { allowPrivateTargets: true } });
    admin = createAdminClient({ url: g.url, key: ADMIN_KEY });
  });
  after(async () => {
    await g?.close();
  });

  /** A fresh tenant with a consumer at latest and n published events. */
  async function setup(n: number, label: string) {
    const tenant = freshTenant(label);
    const consumer = await admin.createConsumer({ tenant });
    const events = n > 0 ? await admin.publish(Array.from({ length: n }, (_, i) => ({ tenant, type: 'ticket.created', data: { i } }))) : [];
    const client = createClient({ url: g.url, key: consumer.key });
    return { tenant, consumer, events, client };
  }

  describe('events()', () => {
    test('yields in order and acks a page only after the body finished all of it', async () => {
      const { consumer, events, client } = await setup(5, 'order');
      const stop = new AbortController();
      const seen: Array<{ id: string; committed: string }> = [];
      await within(
        (async () => {
          for await (const event of client.events({ limit: 2, wait: 1, signal: stop.signal })) {
            seen.push({ id: event.id, committed: (await client.consumer()).cursor });
            if (seen.length === 5) stop.abort();
          }
        })(),
        5000,
        'iterating 5 events',
      );
      assert.deepEqual(ids(seen), ids(events));
      const start = consumer.cursor;
      assert.deepEqual(
        seen.map((s) => s.committed),
        [start, start, events[1]!.cursor, events[1]!.cursor, events[3]!.cursor],
        'while the body runs on page n, the committed cursor is the end of page n-1',
      );
      // The stop committed what the body had finished.
      assert.equal((await client.consumer()).cursor, events[4]!.cursor);
    });

    test('a throwing body: the error propagates, the cursor stays at the last finished page, the page comes again', async () => {
      const { consumer, events, client } = await setup(5, 'throw');
      const boom = new Error('handler failed');
      const seen: string[] = [];
      await assert.rejects(
        within(
          (async () => {
            for await (const event of client.events({ limit: 2, wait: 1 })) {
              seen.push(event.id);
              if (event.id === events[3]!.id) throw boom;
            }
          })(),
          5000,
          'iterating until the throw',
        ),
        (error) => error === boom,
      );
      assert.deepEqual(seen, ids(events.slice(0, 4)));
      const after = await admin.getConsumer(consumer.id);
      assert.equal(after.cursor, events[1]!.cursor, 'page 1 acked, page 2 (which threw) not');
      assert.equal(after.polling, false, 'no poll left behind');

      // A new run starts with the page that failed.
      const again: string[] = [];
      const stop = new AbortController();
      for await (const event of client.events({ limit: 2, wait: 1, signal: stop.signal })) {
        again.push(event.id);
        if (again.length === 3) stop.abort();
      }
      assert.deepEqual(again, ids(events.slice(2)));
    });

    test('AbortSignal while a poll is held: ends cleanly and at once, nothing acked', async () => {
      const { consumer, client } = await setup(0, 'abort-held');
      const stop = new AbortController();
      const got: Envelope[] = [];
      const run = (async () => {
        for await (const event of client.events({ wait: 30, signal: stop.signal })) got.push(event);
      })();
      await waitFor(async () => (await admin.getConsumer(consumer.id)).polling === true, 3000, 'the poll is held');
      const t0 = performance.now();
      stop.abort();
      await within(run, 2000, 'the iterator ending after abort'); // resolves: no error
      assert.ok(performance.now() - t0 < 1000, 'ended promptly');
      assert.deepEqual(got, []);
      await waitFor(async () => (await admin.getConsumer(consumer.id)).polling === false, 3000, 'the held poll cancelled');
      assert.equal((await admin.getConsumer(consumer.id)).cursor, consumer.cursor);
    });

    test('AbortSignal mid-page: events the body did not see are not acked', async () => {
      const { consumer, events, client } = await setup(3, 'abort-mid');
      const stop = new AbortController();
      const seen: string[] = [];
      for await (const event of client.events({ wait: 1, signal: stop.signal })) {
        seen.push(event.id);
        stop.abort(); // during the first event of a 3-event page
      }
      assert.deepEqual(seen, [events[0]!.id]);
      const committed = (await admin.getConsumer(consumer.id)).cursor;
      assert.equal(committed, events[0]!.cursor, 'only the event the body finished is committed');
      assert.notEqual(committed, events[2]!.cursor);
    });

    test('an already-aborted signal yields nothing and does not poll', async () => {
      const { client } = await setup(2, 'pre-aborted');
      let n = 0;
      for await (const _ of client.events({ signal: AbortSignal.abort() })) n++;
      assert.equal(n, 0);
    });

    test('ack:false only reads, moving on with after; the committed cursor stays', async () => {
      const { consumer, events, client } = await setup(4, 'noack');
      const stop = new AbortController();
      const seen: string[] = [];
      for await (const event of client.events({ ack: false, limit: 1, wait: 1, signal: stop.signal })) {
        seen.push(event.id);
        if (seen.length === 4) stop.abort();
      }
      assert.deepEqual(seen, ids(events));
      assert.equal((await admin.getConsumer(consumer.id)).cursor, consumer.cursor);

      const replay: string[] = [];
      const stop2 = new AbortController();
      for await (const event of client.events({ ack: false, after: events[1]!.cursor, wait: 1, signal: stop2.signal })) {
        replay.push(event.id);
        if (replay.length === 2) stop2.abort();
      }
      assert.deepEqual(replay, ids(events.slice(2)));
      await assert.rejects(
        async () => {
          for await (const _ of client.events({ after: events[1]!.cursor })) break;
        },
        TypeError,
        '`after` without ack:false is refused',
      );
    });

    test('events published while the iterator holds arrive without waiting out `wait`', async () => {
      const { tenant, consumer, client } = await setup(0, 'live');
      const stop = new AbortController();
      const got: string[] = [];
      const run = (async () => {
        for await (const event of client.events({ wait: 20, signal: stop.signal })) {
          got.push(event.id);
          if (got.length === 2) stop.abort();
        }
      })();
      await waitFor(async () => (await admin.getConsumer(consumer.id)).polling === true, 3000, 'held');
      const a = await admin.publish({ tenant, type: 'a.b', data: 1 });
      const b = await admin.publish({ tenant, type: 'a.b', data: 2 });
      await within(run, 3000, 'two live events');
      assert.deepEqual(got, [a.id, b.id]);
    });

    test('a consumer in push mode is refused, not retried: PollgateError push_mode', async () => {
      const { consumer, client } = await setup(0, 'push');
      await admin.setWebhook(consumer.id, { url: 'http://127.0.0.1:9/never', enabled: true });
      const errors: Error[] = [];
      await assert.rejects(
        within(
          (async () => {
            for await (const _ of client.events({ wait: 1, onError: (e) => errors.push(e) })) break;
          })(),
          3000,
          'push_mode',
        ),
        (error) => error instanceof PollgateError && error.status === 409 && error.code === 'push_mode',
      );
      assert.deepEqual(errors, []);
      await admin.deleteWebhook(consumer.id);
    });
  });

  describe('batches()', () => {
    test('yields whole pages, acks each after the body; a throw leaves the cursor at the last finished page', async () => {
      const { consumer, events, client } = await setup(5, 'batches');
      const pages: string[][] = [];
      const committedDuring: string[] = [];
      const boom = new Error('batch failed');
      await assert.rejects(
        within(
          (async () => {
            for await (const page of client.batches({ limit: 2, wait: 1 })) {
              pages.push(ids(page.events));
              committedDuring.push((await client.consumer()).cursor);
              assert.equal(page.cursor, page.events.at(-1)!.cursor);
              if (pages.length === 3) throw boom;
            }
          })(),
          5000,
          'three pages',
        ),
        (error) => error === boom,
      );
      assert.deepEqual(pages, [ids(events.slice(0, 2)), ids(events.slice(2, 4)), ids(events.slice(4))]);
      assert.deepEqual(committedDuring, [consumer.cursor, events[1]!.cursor, events[3]!.cursor]);
      assert.equal((await admin.getConsumer(consumer.id)).cursor, events[3]!.cursor, 'the page that threw is not acked');

      // Stopping with the signal after a finished page commits that page.
      const stop = new AbortController();
      for await (const page of client.batches({ wait: 1, signal: stop.signal })) {
        assert.deepEqual(ids(page.events), [events[4]!.id]);
        stop.abort();
      }
      assert.equal((await admin.getConsumer(consumer.id)).cursor, events[4]!.cursor);
    });

    test('pages the filter leaves empty are not yielded, and their scanned cursor is acked', async () => {
      const tenant = freshTenant('filtered');
      const consumer = await admin.createConsumer({ tenant, filter: { types: ['keep.*'] } });
      const client = createClient({ url: g.url, key: consumer.key });
      const skippedEvents = await admin.publish(Array.from({ length: 3 }, () => ({ tenant, type: 'skip.me', data: null })));
      const stop = new AbortController();
      const pages: string[][] = [];
      const run = (async () => {
        for await (const page of client.batches({ wait: 0.3, signal: stop.signal })) {
          pages.push(page.events.map((e) => e.type));
          stop.abort();
        }
      })();
      // The empty answers' cursor (past the skipped events) is committed by the next poll.
      const skipped = skippedEvents[2]!.cursor;
      await waitFor(async () => (await admin.getConsumer(consumer.id)).cursor === skipped, 3000, 'scanned cursor acked');
      const kept = await admin.publish({ tenant, type: 'keep.this', data: null });
      await within(run, 3000, 'the matching event');
      assert.deepEqual(pages, [['keep.this']]);
      assert.equal((await admin.getConsumer(consumer.id)).cursor, kept.cursor);
    });
  });

  describe('409 superseded', () => {
    test('another poll takes over once: the iterator backs off, retries and goes on', async () => {
      const { tenant, consumer, client } = await setup(0, 'superseded');
      const stop = new AbortController();
      const retried: Array<{ error: Error; info: RetryInfo }> = [];
      const got: string[] = [];
      const run = (async () => {
        for await (const event of client.events({ wait: 20, signal: stop.signal, onError: (error, info) => retried.push({ error, info }) })) {
          got.push(event.id);
          stop.abort();
        }
      })();
      await waitFor(async () => (await admin.getConsumer(consumer.id)).polling === true, 3000, 'held');
      // A rival poll with the same key ends the held one with 409 superseded.
      const rival = await g.json('/v1/events?wait=0', { key: consumer.key });
      assert.equal(rival.status, 200);
      await waitFor(() => retried.length === 1, 3000, 'the superseded poll reported');
      const [first] = retried;
      assert.ok(first!.error instanceof PollgateError);
      assert.equal((first!.error as PollgateError).code, 'superseded');
      assert.equal((first!.error as PollgateError).status, 409);
      assert.equal(first!.info.attempt, 1);
      await waitFor(async () => (await admin.getConsumer(consumer.id)).polling === true, 3000, 'held again');
      const e = await admin.publish({ tenant, type: 'x.y', data: null });
      await within(run, 3000, 'the event after the takeover');
      assert.deepEqual(got, [e.id]);
    });

    test('an admin seek ends the held poll; the iterator resumes from the new position', async () => {
      const { tenant, consumer, client } = await setup(2, 'seek');
      const stop = new AbortController();
      const got: string[] = [];
      // Read both events, then hold.
      const run = (async () => {
        for await (const event of client.events({ wait: 20, signal: stop.signal })) {
          got.push(event.id);
          if (got.length === 4) stop.abort();
        }
      })();
      await waitFor(async () => got.length === 2 && (await admin.getConsumer(consumer.id)).polling === true, 3000, 'held after 2');
      await admin.seek(consumer.id, 'earliest');
      await within(run, 3000, 'the replay after the seek');
      assert.deepEqual(got.slice(2), got.slice(0, 2), 'after the seek to earliest the same two events come again');
      void tenant;
    });

    test(`superseded again and again is thrown after maxSuperseded`, async () => {
      const { consumer, client } = await setup(0, 'fight');
      const retried: Error[] = [];
      const run = (async () => {
        for await (const _ of client.events({ wait: 20, maxSuperseded: 2, onError: (e) => retried.push(e) })) {
          /* nothing comes */
        }
      })();
      const settled = run.then(
        () => 'resolved',
        (error: unknown) => error,
      );
      // A rival that keeps taking over whenever the iterator holds.
      let outcome: unknown = null;
      void settled.then((o) => (outcome = o));
      const deadline = performance.now() + 8000;
      while (outcome === null && performance.now() < deadline) {
        if ((await admin.getConsumer(consumer.id)).polling) await g.json('/v1/events?wait=0', { key: consumer.key });
        await sleep(5);
      }
      assert.ok(outcome instanceof PollgateError, `the iterator threw: ${String(outcome)}`);
      assert.equal(outcome.code, 'superseded');
      assert.equal(retried.length, 2, 'two retries, then the third superseded is thrown');
    });
  });

  describe('retries', () => {
    test('503 with Retry-After and a non-JSON 502 are retried with backoff (injected fetch)', async () => {
      const { events, consumer } = await setup(1, 'retry-5xx');
      const key = consumer.key;
      let calls = 0;
      const flaky: typeof fetch = async (input, init) => {
        calls += 1;
        if (calls === 1) {
          return new Response(JSON.stringify({ error: { code: 'shutting_down', message: 'restarting' } }), {
            status: 503,
            headers: { 'content-type': 'application/json', 'retry-after': '0' },
          });
        }
        if (calls === 2) return new Response('<html>bad gateway</html>', { status: 502 });
        return fetch(input, init);
      };
      const warnings: string[] = [];
      const client = createClient({ url: g.url, key, fetch: flaky, logger: { warn: (message) => warnings.push(message) } });
      const retried: Array<{ error: Error; info: RetryInfo }> = [];
      const stop = new AbortController();
      const got: string[] = [];
      await within(
        (async () => {
          for await (const e of client.events({ wait: 1, signal: stop.signal, backoff: { initialMs: 10, maxMs: 50 }, onError: (error, info) => retried.push({ error, info }) })) {
            got.push(e.id);
            stop.abort();
          }
        })(),
        3000,
        'after two failures',
      );
      assert.deepEqual(got, [events[0]!.id]);
      assert.equal(retried.length, 2);
      const [a, b] = retried.map((r) => r.error as PollgateError);
      assert.equal(a!.status, 503);
      assert.equal(a!.code, 'shutting_down');
      assert.equal(a!.retryAfterMs, 0);
      assert.equal(b!.status, 502);
      assert.equal(b!.code, 'http_502', 'a body that is not ours still gives a typed error');
      assert.deepEqual(retried.map((r) => r.info.attempt), [1, 2]);
      assert.ok(retried.every((r) => r.info.delayMs >= 0 && r.info.delayMs <= 50));
      assert.equal(warnings.length, 2, 'each retry is logged');
      assert.match(warnings[0]!, /retrying in \d+ ms: restarting/);
    });

    test('maxRetries: the error is thrown after that many consecutive retries', async () => {
      const client = createClient({
        url: g.url,
        key: 'pgk_whatever',
        fetch: async () => new Response('{"error":{"code":"unavailable","message":"down"}}', { status: 503 }),
      });
      const retried: Error[] = [];
      await assert.rejects(
        within(
          (async () => {
            for await (const _ of client.events({ maxRetries: 3, backoff: { initialMs: 1, maxMs: 5 }, onError: (e) => retried.push(e) })) break;
          })(),
          3000,
          'maxRetries',
        ),
        (error) => error instanceof PollgateError && error.status === 503 && error.code === 'unavailable',
      );
      assert.equal(retried.length, 3);
    });

    test('backoff: full jitter within [0, min(max, initial·2^(n-1))], Retry-After raises it up to max', () => {
      assert.equal(backoffDelay(1, {}, null, () => 1), 250);
      assert.equal(backoffDelay(2, {}, null, () => 1), 500);
      assert.equal(backoffDelay(8, {}, null, () => 1), 30_000);
      assert.equal(backoffDelay(100, {}, null, () => 1), 30_000);
      assert.equal(backoffDelay(5, {}, null, () => 0), 0);
      assert.equal(backoffDelay(1, {}, 5_000, () => 0), 5_000);
      assert.equal(backoffDelay(1, {}, 3_600_000, () => 0), 30_000);
    });
  });

  describe('single calls', () => {
    test('poll / ack / consumer, and typed errors with the body fields', async () => {
      const { consumer, events, client } = await setup(3, 'single');
      const page = await client.poll({ wait: 0, limit: 2 });
      assert.deepEqual(ids(page.events), ids(events.slice(0, 2)));
      assert.equal(page.more, true);
      assert.deepEqual(page.events[0], events[0]);
      const next = await client.poll({ wait: 0, after: page.cursor, ack: page.cursor });
      assert.deepEqual(ids(next.events), [events[2]!.id]);
      assert.equal((await client.consumer()).cursor, page.cursor, 'ack= committed');
      assert.deepEqual(await client.ack(next.cursor), { cursor: next.cursor });
      const me = await client.consumer();
      assert.equal(me.id, consumer.id);
      assert.equal(me.lag, 0);

      await assert.rejects(client.poll({ wait: 9999 }), (error) => {
        assert.ok(error instanceof PollgateError);
        assert.equal(error.status, 400);
        assert.equal(error.code, 'invalid_request');
        assert.equal(error.field, 'wait');
        assert.equal(error.details.field, 'wait');
        assert.match(error.message, /wait/);
        return true;
      });
      await assert.rejects(client.ack('not-a-cursor'), (error) => error instanceof PollgateError && error.code === 'invalid_cursor');
      // The admin key is not a consumer.
      await assert.rejects(createClient({ url: g.url, key: ADMIN_KEY }).poll({ wait: 0 }), (error) => error instanceof PollgateError && error.status === 403);
    });

    test('a poll gets a time budget beyond its wait, whatever the default budget is', async () => {
      const { client: _c, consumer } = await setup(0, 'budget');
      const client = createClient({ url: g.url, key: consumer.key, timeoutMs: 100 });
      const page = await within(client.poll({ wait: 0.5 }), 3000, 'a 0.5 s poll with a 100 ms default budget');
      assert.deepEqual(page.events, []);
      // A call that does not hold uses the default budget: a blackhole fetch times out.
      const slow = createClient({ url: g.url, key: consumer.key, timeoutMs: 50, fetch: (_i, init) => new Promise((_, reject) => init?.signal?.addEventListener('abort', () => reject(init.signal!.reason))) });
      await assert.rejects(slow.consumer(), (error) => error instanceof NetworkError && error.kind === 'timeout');
    });

    test("a caller's abort rejects with its reason (not a NetworkError)", async () => {
      const { client } = await setup(0, 'abort-call');
      const ac = new AbortController();
      const p = client.poll({ wait: 20, signal: ac.signal });
      await sleep(50);
      ac.abort();
      await assert.rejects(within(p, 2000, 'aborted poll'), (error) => !(error instanceof NetworkError) && (error as Error).name === 'AbortError');
    });
  });

  describe('admin client', () => {
    test('publish, consumers, seek, rotate, delete round trip', async () => {
      const tenant = freshTenant('admin');
      const one = await admin.publish({ tenant, type: 'ticket.created', data: { n: 1 }, id: 'ext-1' });
      assert.equal(one.id, 'ext-1');
      assert.equal(one.tenant, tenant);
      assert.deepEqual(one.data, { n: 1 });
      const dup = await admin.publish({ tenant, type: 'ticket.created', data: { n: 999 }, id: 'ext-1' });
      assert.deepEqual(dup, one, 'a duplicate id answers the original envelope');
      const many = await admin.publish([
        { tenant, type: 'ticket.updated', data: null },
        { tenant, type: 'ticket.closed', data: [1, 2] },
      ]);
      assert.equal(many.length, 2);
      assert.deepEqual(many.map((e) => e.type), ['ticket.updated', 'ticket.closed']);

      const created = await admin.createConsumer({ tenant, name: 'worker', filter: { types: ['ticket.*'] }, start: 'earliest' });
      assert.match(created.key, /^pgk_/);
      assert.equal(created.mode, 'pull');
      assert.equal(created.lag, 3);
      assert.deepEqual(created.filter, { types: ['ticket.*'] });

      const listed = await admin.listConsumers({ tenant });
      assert.deepEqual(listed.consumers.map((c) => c.id), [created.id]);
      assert.equal(listed.next, null);
      assert.equal(listed.consumers[0]!.name, 'worker');

      const got = await admin.getConsumer(created.id);
      assert.equal(got.cursor, created.cursor);
      assert.equal((got as unknown as { key?: string }).key, undefined, 'the key is shown only once');

      const patched = await admin.updateConsumer(created.id, { name: 'worker-2' });
      assert.equal(patched.name, 'worker-2');

      const sought = await admin.seek(created.id, { cursor: many[0]!.cursor });
      assert.equal(sought.cursor, many[0]!.cursor);
      assert.equal((await admin.seek(created.id, 'latest')).cursor, many[1]!.cursor);
      assert.equal((await admin.seek(created.id, { time: '2000-01-01T00:00:00Z' })).lag, 3);

      const rotated = await admin.rotateKey(created.id);
      assert.notEqual(rotated.key, created.key);
      await assert.rejects(createClient({ url: g.url, key: created.key }).consumer(), (e) => e instanceof PollgateError && e.status === 401 && e.code === 'unauthorized');
      assert.equal((await createClient({ url: g.url, key: rotated.key }).consumer()).id, created.id);

      await assert.rejects(admin.createConsumer({ tenant, name: 'worker-2' }), (e) => e instanceof PollgateError && e.status === 409 && e.code === 'conflict');
      await assert.rejects(
        admin.createConsumer({ tenant, filter: { where: [{ field: 'data.x', op: 'eq', value: 1 }], expression: '1 and 4' } }),
        (e) => e instanceof PollgateError && e.status === 400 && e.code === 'invalid_filter' && /4/.test(e.message),
      );
      await assert.rejects(admin.publish({ tenant: 'bad tenant!', type: 'x', data: null }), (e) => e instanceof PollgateError && e.status === 400 && e.field === 'tenant');

      await admin.deleteConsumer(created.id);
      await assert.rejects(admin.getConsumer(created.id), (e) => e instanceof PollgateError && e.status === 404 && e.code === 'not_found');
      await assert.rejects(createAdminClient({ url: g.url, key: 'wrong' }).listConsumers(), (e) => e instanceof PollgateError && e.status === 401);
    });

    test('webhook, deliveries and the bridge toggle round trip', async () => {
      const received: string[] = [];
      const receiver: Server = createServer((req, res) => {
        let body = '';
        req.on('data', (c) => (body += c));
        req.on('end', () => {
          received.push(body);
          res.writeHead(204).end();
        });
      });
      await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
      const port = (receiver.address() as { port: number }).port;
      try {
        const tenant = freshTenant('hook');
        const c = await admin.createConsumer({ tenant });
        const hook = await admin.setWebhook(c.id, { url: `http://127.0.0.1:${port}/hook`, headers: { 'x-env': 'test' } });
        assert.match(hook.secret ?? '', /^whsec_/, 'the creating PUT shows the secret');
        assert.equal(hook.enabled, true);
        assert.equal((await admin.getConsumer(c.id)).mode, 'push');
        const shown = await admin.getWebhook(c.id);
        assert.equal(shown.url, `http://127.0.0.1:${port}/hook`);
        assert.equal((shown as { secret?: string }).secret, undefined, 'GET never shows the secret');

        const e = await admin.publish({ tenant, type: 'hook.test', data: { ok: true } });
        await waitFor(() => received.length === 1, 5000, 'the push delivery');
        assert.deepEqual(JSON.parse(received[0]!), e);
        await waitFor(async () => (await admin.deliveries(c.id)).deliveries.length === 1, 3000, 'the attempt recorded');
        const { deliveries } = await admin.deliveries(c.id);
        assert.equal(deliveries[0]!.event_id, e.id);
        assert.equal(deliveries[0]!.status, 204);
        assert.equal(deliveries[0]!.attempt, 1);

        const paused = await admin.setBridge(false);
        assert.equal(paused.enabled, false);
        assert.equal((await admin.bridge()).enabled, false);
        assert.equal((await admin.setBridge(true)).enabled, true);

        await waitFor(async () => (await admin.getConsumer(c.id)).cursor === e.cursor, 3000, 'the bridge moved the cursor');
        const off = await admin.updateWebhook(c.id, { enabled: false });
        assert.equal(off.enabled, false);
        assert.equal(off.url, `http://127.0.0.1:${port}/hook`, 'a PATCH keeps the fields it does not name');
        assert.equal(off.secret, undefined, 'no new secret, none shown');
        assert.equal((await admin.getConsumer(c.id)).mode, 'pull');
        assert.equal((await admin.updateWebhook(c.id, { enabled: true })).enabled, true);
        const back = await admin.deleteWebhook(c.id);
        assert.equal(back.mode, 'pull');
        assert.equal(back.cursor, e.cursor, 'pull mode resumes where the bridge got to');
        await assert.rejects(admin.getWebhook(c.id), (err) => err instanceof PollgateError && err.status === 404);
      } finally {
        await new Promise((resolve) => receiver.close(resolve));
      }
    });

    test('a templated webhook through the SDK: every shape field, preview, test send to a real receiver, the answer in the attempt log', async () => {
      const rx = await startReceiver((req) => ({ status: 201, headers: { 'x-receipt': `r-${req.n}` }, body: `stored ${req.n}` }));
      try {
        const tenant = freshTenant('shape');
        const c = await admin.createConsumer({ tenant, name: 'crm-sync', start: 'earliest' });
        const e = await admin.publish({ tenant, type: 'comment.created', data: { ticket: { id: 'T 42/7' }, text: 'Printer on fire & "smoking" <now>' } });
        const input: WebhookInput = {
          url: `${rx.url}tickets/{{data.ticket.id}}/comments?by={{consumer.name}}`,
          method: 'PUT',
          format: 'form',
          body: 'text={{data.text}}&ref={{id}}',
          headers: { 'X-Event-Type': '{{type}}' },
          auth: { type: 'basic', username: 'pollgate', password: 'basic-pass-1' },
          secret_header: { name: 'X-Hook-Secret', value: 'shared-secret-1' },
          missing: 'fail',
          retry: { schedule: ['30m', '1h'], max_age: '24h' },
          rate_limit: 5,
          alerts: { failures: 2, window: '1h' },
          enabled: false,
        };
        const hook = await admin.setWebhook(c.id, input);
        assert.match(hook.secret ?? '', /^whsec_/);
        const shown = await admin.getWebhook(c.id);
        assert.deepEqual(
          { method: shown.method, format: shown.format, body: shown.body, auth: shown.auth, secret_header: shown.secret_header, signing: shown.signing, missing: shown.missing },
          { method: 'PUT', format: 'form', body: input.body, auth: { type: 'basic', username: 'pollgate' }, secret_header: { name: 'X-Hook-Secret' }, signing: true, missing: 'fail' },
        );
        assert.deepEqual(shown.retry, { schedule: ['30m', '1h'], max_age: '1d' }, 'durations shown in their largest unit');
        assert.equal(shown.rate_limit, 5);
        assert.deepEqual(shown.alerts, { enabled: null, failures: 2, window: '1h' });
        assert.equal(shown.health.failing, false);
        assert.doesNotMatch(JSON.stringify(shown), /basic-pass-1|shared-secret-1/, 'credentials are write-only');

        // Preview: the request for the published event, credentials hidden; nothing is sent.
        const preview = await admin.previewWebhook(c.id, { cursor: e.cursor });
        assert.deepEqual(preview.event, { id: e.id, cursor: e.cursor, type: 'comment.created' });
        assert.equal(preview.error, null);
        assert.equal(preview.request!.method, 'PUT');
        assert.equal(preview.request!.url, `${rx.url}tickets/T%2042%2F7/comments?by=crm-sync`);
        assert.equal(preview.request!.body, `text=Printer+on+fire+%26+%22smoking%22+%3Cnow%3E&ref=${e.id}`);
        assert.equal(preview.request!.headers['x-event-type'] ?? preview.request!.headers['X-Event-Type'], 'comment.created');
        assert.doesNotMatch(JSON.stringify(preview), /basic-pass-1|shared-secret-1|cG9sbGdhdGU6YmFzaWMtcGFzcy0x/, 'no credential in a preview');
        assert.equal(rx.requests.length, 0, 'a preview sends nothing');

        // Unsaved changes and a sample event; a missing path with missing:"fail" is the render error.
        const draft = await admin.previewWebhook(c.id, { event: { type: 'ticket.created', data: { n: 7 } }, webhook: { format: 'json', missing: 'empty', body: '{"n": {{data.n}}, "t": "{{type}}"}' } });
        assert.equal(draft.error, null);
        assert.equal(draft.event.cursor, null);
        assert.equal(draft.request!.url, `${rx.url}tickets//comments?by=crm-sync`, 'a missing path renders empty');
        assert.equal(draft.request!.body, '{"n": 7, "t": "ticket.created"}');
        const broken = await admin.previewWebhook(c.id, { event: { data: { nothing: true } } });
        assert.equal(broken.request, null);
        assert.match(broken.error ?? '', /data\.ticket\.id|data\.text/);
        await assert.rejects(
          admin.previewWebhook(c.id, { webhook: { body: '{"a": {{#data}}x{{/data}}}' } }),
          (err) => err instanceof PollgateError && err.status === 400 && /body/.test(err.field ?? ''),
        );

        // Test: sent now to the receiver, which sees the real credentials; the signature verifies.
        const sent = await admin.testWebhook(c.id, { cursor: e.cursor });
        assert.equal(sent.ok, true, JSON.stringify(sent));
        assert.equal(sent.status, 201);
        assert.equal(sent.response!.body, 'stored 1');
        assert.equal(sent.response!.headers['x-receipt'], 'r-1');
        assert.equal(typeof sent.duration_ms, 'number');
        assert.doesNotMatch(JSON.stringify(sent), /basic-pass-1|shared-secret-1/);
        const got = rx.requests[0]!;
        assert.equal(got.method, 'PUT');
        assert.equal(got.path, '/tickets/T%2042%2F7/comments?by=crm-sync');
        assert.equal(new URLSearchParams(got.body).get('text'), 'Printer on fire & "smoking" <now>');
        assert.equal(got.headers['content-type'], 'application/x-www-form-urlencoded');
        assert.equal(got.headers.authorization, `Basic ${Buffer.from('pollgate:basic-pass-1').toString('base64')}`);
        assert.equal(got.headers['x-hook-secret'], 'shared-secret-1');
        assert.equal(got.headers['x-event-type'], 'comment.created');
        verifyBytes(hook.secret!, got); // signed over the bytes sent (standardwebhooks)
        assert.equal((await admin.getConsumer(c.id)).cursor, c.cursor, 'a test moves no cursor');
        assert.deepEqual((await admin.deliveries(c.id)).deliveries, [], 'and records no attempt');

        // PATCH: null removes a credential, the other stays; the bridge then delivers and logs the answer.
        const patched = await admin.updateWebhook(c.id, { auth: null, enabled: true });
        assert.equal(patched.auth, null);
        assert.deepEqual(patched.secret_header, { name: 'X-Hook-Secret' });
        await waitFor(async () => (await admin.deliveries(c.id)).deliveries.length === 1, 5000, 'the delivery recorded');
        const [attempt] = (await admin.deliveries(c.id)).deliveries;
        assert.equal(attempt!.status, 201);
        assert.equal(attempt!.response, 'stored 2', 'the attempt log keeps the answer');
        assert.equal(rx.requests[1]!.headers.authorization, undefined, 'auth removed');
        await admin.deleteWebhook(c.id);
        await assert.rejects(admin.previewWebhook(c.id), (err) => err instanceof PollgateError && err.status === 404);
      } finally {
        await rx.close();
      }
    });
  });
});

describe('client SDK: 410 cursor_expired (FakeClock gateway, retention 1 s)', () => {
  const clock = new FakeClock();
  let g: TestGateway;
  before(async () => {
    g = await startGateway({ clock, config: { retentionMs: 1000 } });
  });
  after(async () => {
    await g?.close();
  });

  test('thrown as CursorExpiredError with earliest, never skipped; seeking to earliest goes on', async () => {
    const tenant = freshTenant('expired');
    const admin = createAdminClient({ url: g.url, key: ADMIN_KEY });
    const consumer = await admin.createConsumer({ tenant, start: 'earliest' });
    const old = await admin.publish([1, 2, 3].map((i) => ({ tenant, type: 'old.event', data: { i } })));
    // Retention ticks on clock timers (at start, then every 30 s of clock time after a run).
    const store = g.gateway.services.store;
    for (let i = 0; (await store.trimmedThrough(tenant)) === 0; i++) {
      assert.ok(i < 200, 'retention trimmed the tenant');
      await clock.advance(5_000);
      await sleep(5);
    }
    const fresh = await admin.publish({ tenant, type: 'new.event', data: null });

    const client = createClient({ url: g.url, key: consumer.key });
    const seen: string[] = [];
    const retried: Error[] = [];
    let thrown: unknown;
    try {
      for await (const e of client.events({ wait: 0, onError: (err) => retried.push(err) })) seen.push(e.id);
    } catch (error) {
      thrown = error;
    }
    assert.deepEqual(seen, [], 'nothing is yielded past a gap');
    assert.deepEqual(retried, [], '410 is not retried');
    assert.ok(thrown instanceof CursorExpiredError, `CursorExpiredError, got ${String(thrown)}`);
    assert.ok(thrown instanceof PollgateError);
    assert.equal(thrown.status, 410);
    assert.equal(thrown.code, 'cursor_expired');
    assert.equal(thrown.earliest, old[2]!.cursor);
    assert.equal(thrown.details.earliest, thrown.earliest);
    await assert.rejects(client.poll({ wait: 0 }), CursorExpiredError);
    assert.equal((await admin.getConsumer(consumer.id)).cursor, consumer.cursor, 'nothing moved');

    await admin.seek(consumer.id, { cursor: thrown.earliest });
    const page = await client.poll({ wait: 0 });
    assert.deepEqual(ids(page.events), [fresh.id], 'after earliest comes the oldest retained event');
  });
});

describe('client SDK: network errors', () => {
  test('a refused port is retried with bounded backoff until the gateway comes up', async () => {
    const dataDir = tempDir();
    let g: TestGateway | undefined;
    try {
      // Learn a port and a consumer key, then take the gateway down.
      const first = await startGateway({ dataDir });
      const port = Number(new URL(first.url).port);
      const tenant = freshTenant('net');
      const consumer = await first.createConsumer({ tenant });
      await first.close();

      const client = createClient({ url: `http://127.0.0.1:${port}`, key: consumer.key });
      const retried: Array<{ error: Error; info: RetryInfo }> = [];
      const stop = new AbortController();
      const got: string[] = [];
      const run = (async () => {
        for await (const e of client.events({
          wait: 5,
          signal: stop.signal,
          backoff: { initialMs: 20, maxMs: 100 },
          onError: (error, info) => retried.push({ error, info }),
        })) {
          got.push(e.id);
          stop.abort();
        }
      })();
      await waitFor(() => retried.length >= 4, 5000, 'several refused attempts');
      for (const [i, r] of retried.entries()) {
        assert.ok(r.error instanceof NetworkError, String(r.error));
        assert.equal(r.error.kind, 'refused');
        assert.equal(r.info.attempt, i + 1);
        assert.ok(r.info.delayMs <= Math.min(100, 20 * 2 ** i), `delay ${r.info.delayMs} within its cap`);
      }

      g = await startGateway({ dataDir, config: { port } });
      const e = await g.publish({ tenant, type: 'back.up', data: null });
      await within(run, 5000, 'the event once the gateway is back');
      assert.deepEqual(got, [e.id]);
    } finally {
      await g?.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('abort during backoff ends the iterator cleanly', async () => {
    const client = createClient({ url: `http://127.0.0.1:${await unusedPort()}`, key: 'pgk_x' });
    const stop = new AbortController();
    let retries = 0;
    const run = (async () => {
      for await (const _ of client.events({ signal: stop.signal, backoff: { initialMs: 10_000, maxMs: 10_000 }, onError: () => retries++ })) {
        /* nothing */
      }
    })();
    await waitFor(() => retries >= 1, 3000, 'first failure');
    stop.abort();
    await within(run, 1000, 'the iterator ending');
  });
});
