/**
 * The ops page's charts, in Chromium (test/support/chromium.ts): drawn from GET /v1/ops/series
 * and nothing else. The gateway runs on a FakeClock, so the test decides when samples are taken
 * and what they hold; the page's SVG is then checked point by point against the data the page
 * fetched (captured from the network), and follows a new sample without a reload.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { Page, Response } from 'playwright-core';
import { gatewayFor, type TestGateway } from './support/gateway.ts';
import { FakeClock } from './support/fake-clock.ts';
import { browserFor, openSignedIn, pageFor, screenshot, textOf, UI_WAIT, waitForText } from './support/chromium.ts';
import { waitUntil } from './support/wait.ts';
import { DEFAULT_INTERVAL_MS } from '../src/metrics-history.ts';

/** Moves the gateway's clock one sampling interval and waits for the sample. */
async function sample(g: TestGateway, clock: FakeClock, n: number): Promise<void> {
  await clock.advance(DEFAULT_INTERVAL_MS);
  await waitUntil(async () => (await g.json('/v1/ops/series')).body.samples.length >= n, 5_000, () => `sample ${n}`);
}

const isSeries = (r: Response) => new URL(r.url()).pathname === '/v1/ops/series' && r.status() === 200;

const pointsOf = (page: Page, chart: string, key: string) =>
  page.locator(`#${chart} svg [data-key="${key}"]`).getAttribute('points');

describe('charts on the ops page', () => {
  test('publish rate, attempts and lag are drawn from the series the server sampled, and follow it live', { timeout: 120_000 }, async (t) => {
    const clock = new FakeClock();
    const g = await gatewayFor(t, { clock });
    const browser = await browserFor(t);
    const { page, errors } = await pageFor(browser);

    // Two intervals: 10 events then 30, read by nobody (lag 10, then 40).
    await g.createConsumer({ tenant: 'acme', name: 'reader', start: 'earliest' });
    await g.publish(Array.from({ length: 10 }, () => ({ tenant: 'acme', type: 'a', data: null })));
    await sample(g, clock, 1);
    await g.publish(Array.from({ length: 30 }, () => ({ tenant: 'acme', type: 'a', data: null })));
    await sample(g, clock, 2);

    const fetched = page.waitForResponse(isSeries);
    await openSignedIn(page, g.url);
    const data = await (await fetched).json();
    assert.deepEqual(data, (await g.json('/v1/ops/series')).body, 'the page fetched the server’s series');
    assert.deepEqual(data.samples.map((s: any) => [s.published, s.seconds, s.lag_total]), [[10, 5, 10], [30, 5, 40]]);

    // One point per sample: x across the span, y against an axis top of 1/2/5 × 10^n.
    // Published: 2/s and 6/s under a top of 10.
    await waitUntil(async () => (await pointsOf(page, 'chart-publish', 'published')) !== null, UI_WAIT, () => 'the publish line');
    assert.equal(await pointsOf(page, 'chart-publish', 'published'), '0.0,80.0 300.0,40.0');
    assert.equal(await textOf(page, '#chart-publish .chart-now'), 'published 6.0/s');
    assert.equal(await textOf(page, '#chart-publish .chart-y span:first-child'), '10');
    // Attempts: none, flat at zero.
    assert.equal(await pointsOf(page, 'chart-delivery', 'delivered'), '0.0,100.0 300.0,100.0');
    assert.equal(await pointsOf(page, 'chart-delivery', 'failed'), '0.0,100.0 300.0,100.0');
    assert.equal(await textOf(page, '#chart-delivery .chart-now'), 'delivered 0/s · failed 0/s');
    // Lag: 10 then 40 events under a top of 50, one consumer so total and largest agree.
    assert.equal(await pointsOf(page, 'chart-lag', 'lag_total'), '0.0,80.0 300.0,20.0');
    assert.equal(await pointsOf(page, 'chart-lag', 'lag_max'), '0.0,80.0 300.0,20.0');
    assert.equal(await textOf(page, '#chart-lag .chart-now'), 'all consumers 40 events · largest 40 events');
    assert.match(
      (await page.locator('#chart-publish svg').getAttribute('aria-label')) ?? '',
      /^Events published: published now 6\.0\/s, peak 6\.0\/s$/,
      'the chart says in words what it draws',
    );

    // It says whose view this is.
    const scope = (await textOf(page, '#series-scope')) ?? '';
    assert.match(scope, /^This node's view \(/);
    assert.ok(scope.includes(data.node), 'names the node');
    assert.match(scope, /since it started, .*: a sample every 5 s, the last 60 min at most\. Published and attempts count this node only; lag covers every consumer\./);
    await screenshot(t, page, 'charts');

    // Live: a third interval (5 events, half the backlog read); the page draws it without a reload.
    const [reader] = (await g.json('/v1/consumers')).body.consumers;
    const seek = await g.json(`/v1/consumers/${reader.id}/seek`, { body: { to: 'latest' } });
    assert.equal(seek.status, 200);
    await g.publish(Array.from({ length: 5 }, () => ({ tenant: 'acme', type: 'a', data: null })));
    const next = page.waitForResponse(async (r) => isSeries(r) && (await r.json()).samples.length === 3, { timeout: 15_000 });
    await sample(g, clock, 3);
    const third = (await (await next).json()).samples[2];
    assert.deepEqual([third.published, third.lag_total], [5, 5]);
    await waitUntil(async () => (await pointsOf(page, 'chart-publish', 'published'))?.split(' ').length === 3, UI_WAIT, () => 'a third point');
    assert.equal(await pointsOf(page, 'chart-publish', 'published'), '0.0,80.0 150.0,40.0 300.0,90.0');
    assert.equal(await pointsOf(page, 'chart-lag', 'lag_total'), '0.0,80.0 150.0,20.0 300.0,90.0');

    assert.deepEqual(errors, [], 'no script errors, no CSP violations');
  });

  test('before the first sample the charts say they are waiting, with no line', { timeout: 60_000 }, async (t) => {
    const clock = new FakeClock();
    const g = await gatewayFor(t, { clock });
    const browser = await browserFor(t);
    const { page, errors } = await pageFor(browser);
    const fetched = page.waitForResponse(isSeries);
    await openSignedIn(page, g.url);
    assert.deepEqual((await (await fetched).json()).samples, []);
    await waitForText(page, '#chart-publish .chart-now', 'waiting for the first sample');
    assert.equal(await page.locator('#charts svg polyline, #charts svg circle').count(), 0, 'nothing is drawn that was not sampled');
    assert.deepEqual(errors, []);
  });
});
