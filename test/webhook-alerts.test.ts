/**
 * Webhook failure alerts (issue 12): `pollgate.webhook.failing` once per episode after N failed
 * attempts within the window, `pollgate.webhook.recovered` at the next 2xx, debounced (a flapping
 * endpoint within the debounce period makes no second pair), `pollgate.webhook.disabled` at the
 * give-up; each one in the tenant's log with its documented data and POSTed to a second local
 * receiver standing in for POLLGATE_ALERT_URL, signed with POLLGATE_ALERT_SECRET.
 *
 * The pushed consumer's filter takes `ticket.*` only, so the alerts it causes are not delivered
 * to the failing receiver itself; a second, pull-mode consumer reads the tenant's log. Fake
 * clock; both engines.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ConfigError, loadConfig } from '../src/config.ts';
import { FakeClock } from './support/fake-clock.ts';
import { consumerOf, deliveriesOf, gatewayFor, webhookOf, type TestGateway } from './support/gateway.ts';
import { receiverFor, verify, type Receiver } from './support/receiver.ts';
import { mustPut, patchHook } from './support/shapes.ts';
import { sleep, waitUntil } from './support/wait.ts';

let tenantSeq = 0;
const freshTenant = (label: string) => `alerts-${label}-${++tenantSeq}`;
const ALERT_SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const ALERT_TYPES = /^pollgate\.webhook\./;
const HOUR = 3_600_000;

interface Setup {
  g: TestGateway;
  clock: FakeClock;
  rx: Receiver;
  alertRx: Receiver;
  tenant: string;
  pushed: { id: string; cursor: string };
  /** The tenant's alert events, read by a pull consumer (from the start each time). */
  alertsInLog(): Promise<any[]>;
  /** Moves the clock to the next attempt and waits until it is recorded; answers the attempt count. */
  nextAttempt(): Promise<number>;
}

async function setup(t: Parameters<typeof gatewayFor>[0], label: string, hook: Record<string, unknown> = {}, config: Record<string, unknown> = {}): Promise<Setup> {
  const clock = new FakeClock();
  const alertRx = await receiverFor(t);
  const g = await gatewayFor(t, {
    clock,
    config: { retryScheduleMs: [60_000], alertUrl: `${alertRx.url}alerts`, alertSecret: ALERT_SECRET, ...config },
  });
  const rx = await receiverFor(t, () => ({ status: 500, body: 'down' }));
  const tenant = freshTenant(label);
  const pushed = await g.createConsumer({ tenant, filter: { types: ['ticket.*'] } });
  const reader = await g.createConsumer({ tenant });
  await mustPut(g, pushed.id, { url: rx.url, ...hook });
  return {
    g,
    clock,
    rx,
    alertRx,
    tenant,
    pushed,
    async alertsInLog() {
      const r = await g.json(`/v1/events?wait=0&limit=1000&after=${reader.cursor}`, { key: reader.key });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body.events.filter((e: any) => ALERT_TYPES.test(e.type));
    },
    async nextAttempt() {
      // The last attempt's record may still be on its way (the receiver sees it first).
      let count = 0;
      let due: string | null = null;
      await waitUntil(
        async () => {
          count = (await deliveriesOf(g, pushed.id)).length;
          due = (await webhookOf(g, pushed.id)).health.next_attempt_at;
          return count > 0 && due !== null;
        },
        5_000,
        () => 'the last attempt recorded with its next attempt time',
      );
      await clock.advance(Math.max(0, Date.parse(due!) - clock.now()));
      await waitUntil(async () => (await deliveriesOf(g, pushed.id)).length === count + 1, 5_000, () => `attempt ${count + 1}`);
      return count + 1;
    },
  };
}

/** Waits until the consumer's committed cursor is at or past this one (skipped alert events move it further). */
async function waitPast(g: TestGateway, id: string, cursor: string): Promise<void> {
  let seen = '';
  await waitUntil(async () => (seen = (await consumerOf(g, id)).cursor) >= cursor, 5_000, () => `cursor ${cursor} for ${id}, at ${seen}`);
}

/** The alert receiver's bodies, each checked against the alert secret with standardwebhooks. */
function alertsReceived(alertRx: Receiver): any[] {
  return alertRx.requests.map((r) => {
    assert.equal(r.path, '/alerts');
    assert.equal(r.method, 'POST');
    assert.equal(r.headers['content-type'], 'application/json');
    return verify(ALERT_SECRET, r);
  });
}

describe('failure alerts', () => {
  test('failing once per episode after 3 failures, recovered on the next 2xx; both in the tenant log with the documented data and at the alert URL, signed', async (t) => {
    const s = await setup(t, 'episode');
    const event = await s.g.publish({ tenant: s.tenant, type: 'ticket.created', data: { n: 1 } });
    await s.rx.waitForCount(1);
    const firstAt = s.clock.now();
    await s.nextAttempt();
    await sleep(100);
    assert.deepEqual(await s.alertsInLog(), [], 'two failures: not yet');
    assert.equal((await webhookOf(s.g, s.pushed.id)).health.failing, false);

    await s.nextAttempt();
    await waitUntil(async () => (await s.alertsInLog()).length === 1, 5_000, () => 'the failing alert');
    const [failing] = await s.alertsInLog();
    const hook = await webhookOf(s.g, s.pushed.id);
    assert.equal(hook.health.failing, true);
    assert.equal(failing.type, 'pollgate.webhook.failing');
    assert.equal(failing.tenant, s.tenant);
    assert.deepEqual(Object.keys(failing.data).sort(), [
      'consumer_id', 'cursor', 'event_id', 'failures', 'last_error', 'last_status', 'next_attempt_at', 'since', 'url', 'window_ms',
    ]);
    assert.deepEqual(
      { ...failing.data, next_attempt_at: undefined },
      {
        consumer_id: s.pushed.id,
        url: s.rx.url,
        event_id: event.id,
        cursor: s.pushed.cursor,
        failures: 3,
        window_ms: 86_400_000,
        since: new Date(firstAt).toISOString(),
        last_error: 'http_status: HTTP 500',
        last_status: 500,
        next_attempt_at: undefined,
      },
    );
    assert.equal(failing.data.next_attempt_at, hook.health.next_attempt_at);

    // More failures in the same episode: no second failing alert.
    await s.nextAttempt();
    await s.nextAttempt();
    await sleep(100);
    assert.equal((await s.alertsInLog()).length, 1);

    s.rx.behave(() => ({ status: 200 }));
    await s.nextAttempt();
    await waitPast(s.g, s.pushed.id, event.cursor);
    await waitUntil(async () => (await s.alertsInLog()).length === 2, 5_000, () => 'the recovered alert');
    const recovered = (await s.alertsInLog())[1];
    assert.equal(recovered.type, 'pollgate.webhook.recovered');
    assert.deepEqual(recovered.data, {
      consumer_id: s.pushed.id,
      url: s.rx.url,
      event_id: event.id,
      cursor: event.cursor,
      failed_attempts: 5,
      last_error: 'http_status: HTTP 500',
    });
    assert.equal((await webhookOf(s.g, s.pushed.id)).health.failing, false);

    // The alert URL got both, as the log holds them.
    await s.alertRx.waitForCount(2);
    const sent = alertsReceived(s.alertRx);
    assert.deepEqual(sent.map((e) => e.id), [failing.id, recovered.id]);
    assert.deepEqual(sent[0].data, failing.data);
    assert.deepEqual(sent[1].data, recovered.data);
    assert.deepEqual(s.alertRx.requests.map((r) => r.headers['webhook-id']), [failing.id, recovered.id]);
  });

  test('debounce: a flapping endpoint within the debounce period makes no second failing/recovered pair; after it, a new episode is told', async (t) => {
    const s = await setup(t, 'debounce', { alerts: { failures: 2 } });
    const flap = async (label: string) => {
      s.rx.behave(() => ({ status: 500 }));
      const e = await s.g.publish({ tenant: s.tenant, type: 'ticket.created', data: { label } });
      await waitUntil(async () => (await deliveriesOf(s.g, s.pushed.id)).some((d) => d.event_id === e.id), 5_000, () => `first attempt of ${label}`);
      await s.nextAttempt();
      s.rx.behave(() => ({ status: 200 }));
      await s.nextAttempt();
      await waitPast(s.g, s.pushed.id, e.cursor);
    };
    await flap('first');
    await waitUntil(async () => (await s.alertsInLog()).length === 2, 5_000, () => 'the first pair');
    assert.deepEqual((await s.alertsInLog()).map((e) => e.type), ['pollgate.webhook.failing', 'pollgate.webhook.recovered']);

    // Within the hour: the episode happens (health says so meanwhile) but is not told.
    await s.clock.advance(10 * 60_000);
    await flap('second');
    await s.clock.advance(10 * 60_000);
    await flap('third');
    await sleep(100);
    assert.equal((await s.alertsInLog()).length, 2, 'no second pair within the debounce period');

    // Past the hour since the last failing alert: told again.
    await s.clock.advance(HOUR);
    await flap('fourth');
    await waitUntil(async () => (await s.alertsInLog()).length === 4, 5_000, () => 'the second pair');
    assert.deepEqual((await s.alertsInLog()).map((e) => e.type), [
      'pollgate.webhook.failing', 'pollgate.webhook.recovered', 'pollgate.webhook.failing', 'pollgate.webhook.recovered',
    ]);
    await s.alertRx.waitForCount(4);
    assert.deepEqual(alertsReceived(s.alertRx).map((e) => e.type), (await s.alertsInLog()).map((e) => e.type));
  });

  test('disabled: the give-up appends pollgate.webhook.disabled after the failing alert, and sends both to the alert URL', async (t) => {
    const s = await setup(t, 'disabled', { retry: { schedule: ['2m'], max_age: '10m' } });
    const event = await s.g.publish({ tenant: s.tenant, type: 'ticket.created', data: null });
    await s.rx.waitForCount(1);
    let hook = await webhookOf(s.g, s.pushed.id);
    for (let i = 0; hook.enabled && i < 20; i++) {
      await s.nextAttempt();
      await waitUntil(async () => (hook = await webhookOf(s.g, s.pushed.id)) && (!hook.enabled || hook.health.next_attempt_at !== null), 5_000, () => 'the state');
    }
    assert.equal(hook.enabled, false);
    assert.equal(hook.health.failing, false, 'the episode ends with the webhook');
    await waitUntil(async () => (await s.alertsInLog()).length === 2, 5_000, () => 'failing and disabled');
    const [failing, disabled] = await s.alertsInLog();
    assert.equal(failing.type, 'pollgate.webhook.failing');
    assert.equal(disabled.type, 'pollgate.webhook.disabled');
    assert.equal(disabled.data.consumer_id, s.pushed.id);
    assert.equal(disabled.data.event_id, event.id);
    assert.equal(disabled.data.last_status, 500);
    await s.alertRx.waitForCount(2);
    assert.deepEqual(alertsReceived(s.alertRx).map((e) => e.id), [failing.id, disabled.id]);
  });

  test('alerts.enabled:false tells nothing; the global threshold applies unless the webhook sets its own', async (t) => {
    const s = await setup(t, 'off', { alerts: { enabled: false } }, { alertFailures: 2 });
    await s.g.publish({ tenant: s.tenant, type: 'ticket.created', data: null });
    await s.rx.waitForCount(1);
    for (let i = 0; i < 3; i++) await s.nextAttempt();
    await sleep(100);
    assert.deepEqual(await s.alertsInLog(), []);
    assert.equal((await webhookOf(s.g, s.pushed.id)).health.failing, false);
    assert.equal(s.alertRx.requests.length, 0);

    // Back on (the global 2 failures): the next failure completes the count.
    const on = await patchHook(s.g, s.pushed.id, { alerts: null });
    assert.equal(on.status, 200, JSON.stringify(on.body));
    await waitUntil(async () => (await s.alertsInLog()).length === 1, 5_000, () => 'the failing alert after alerts were turned on');
    assert.equal((await s.alertsInLog())[0].data.failures, 2);
  });

  test("the webhook's own window: failures further apart than it never make an episode", async (t) => {
    const s = await setup(t, 'window', { alerts: { failures: 2, window: '1m' }, retry: { schedule: ['2m'] } });
    await s.g.publish({ tenant: s.tenant, type: 'ticket.created', data: null });
    await s.rx.waitForCount(1);
    for (let i = 0; i < 3; i++) await s.nextAttempt();
    await sleep(100);
    assert.deepEqual(await s.alertsInLog(), [], 'four failures, each about 2 minutes after the last: never 2 within 1 minute');
    assert.equal((await webhookOf(s.g, s.pushed.id)).health.failing, false);
    // The same two failures within the window: failing.
    const within = await patchHook(s.g, s.pushed.id, { alerts: { failures: 2, window: '10m' } });
    assert.equal(within.status, 200, JSON.stringify(within.body));
    await waitUntil(async () => (await s.alertsInLog()).length === 1, 5_000, () => 'the failing alert with a 10-minute window');
    assert.equal((await s.alertsInLog())[0].data.window_ms, 600_000);
  });

  test('start refuses POLLGATE_ALERT_URL without POLLGATE_ALERT_SECRET (ConfigError)', () => {
    assert.throws(() => loadConfig({ POLLGATE_ALERT_URL: 'https://ops.example.com/alerts' }), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /POLLGATE_ALERT_URL needs POLLGATE_ALERT_SECRET/);
      return true;
    });
    assert.throws(() => loadConfig({ POLLGATE_ALERT_URL: 'https://ops.example.com/alerts', POLLGATE_ALERT_SECRET: 'not-a-secret' }), ConfigError);
    const ok = loadConfig({ POLLGATE_ALERT_URL: 'https://ops.example.com/alerts', POLLGATE_ALERT_SECRET: ALERT_SECRET });
    assert.equal(ok.alertUrl, 'https://ops.example.com/alerts');
    assert.equal(ok.alertFailures, 3);
    assert.equal(ok.alertWindowMs, 86_400_000);
    assert.equal(ok.alertDebounceMs, HOUR);
  });
});
