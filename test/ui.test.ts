/**
 * The ops page (SPEC: Operations): /ui and its modules are served without a key under a strict
 * CSP, and, in a real headless Chromium (Debian's /usr/bin/chromium driven by playwright-core,
 * see test/support/chromium.ts), it asks for the admin key, shows consumers, lag, held polls and
 * webhook health, pauses all pushing only after a confirmation, flips a webhook, and follows the
 * gateway live without reloading. Managing consumers, webhooks, the event browser, the charts
 * and the 420 px layout have their own files: test/ui-*.test.ts.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ADMIN_KEY, gatewayFor } from './support/gateway.ts';
import { startReceiver } from './support/receiver.ts';
import { waitUntil } from './support/wait.ts';
import { browserFor, pageFor, rowOf, screenshot, signIn, textOf, UI_WAIT, waitForCount, waitForText } from './support/chromium.ts';
import { UI_ASSETS } from '../src/http/ui.ts';

// Functions given to page.evaluate run in the page; the project compiles without the DOM lib,
// so the few browser globals they use are declared here.
interface BrowserStorage { readonly length: number; setItem(key: string, value: string): void }
declare const sessionStorage: BrowserStorage;
declare const localStorage: BrowserStorage;
declare const window: Record<string, unknown>;

// ---------------------------------------------------------------------------------------------

describe('GET /ui (no browser)', () => {
  test('the page and its assets load without a key, uncached, under a strict CSP', async (t) => {
    const g = await gatewayFor(t);

    for (const path of ['/ui', '/ui/']) {
      const res = await g.call(path, { key: null });
      assert.equal(res.status, 200, path);
      assert.match(res.headers.get('content-type') ?? '', /^text\/html; charset=utf-8/);
      assert.equal(res.headers.get('cache-control'), 'no-store');
      const csp = res.headers.get('content-security-policy') ?? '';
      for (const directive of ["script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"]) {
        assert.ok(csp.includes(directive), `CSP has ${directive}: ${csp}`);
      }
      assert.match(csp, /default-src '(none|self)'/);
      assert.ok(!csp.includes('unsafe'), `no unsafe-* in the CSP: ${csp}`);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      const html = await res.text();
      assert.ok(html.includes('<script type="module" src="/ui/app.js"></script>'), 'loads /ui/app.js');
      assert.ok(html.includes('<link rel="stylesheet" href="/ui/style.css">'), 'loads /ui/style.css');
    }

    const assets = Object.keys(UI_ASSETS);
    assert.ok(assets.includes('app.js') && assets.includes('style.css') && assets.includes('charts.js'));
    for (const name of assets) {
      const path = `/ui/${name}`;
      const res = await g.call(path, { key: null });
      assert.equal(res.status, 200, path);
      assert.match(res.headers.get('content-type') ?? '', name.endsWith('.css') ? /^text\/css; charset=utf-8/ : /^text\/javascript; charset=utf-8/, path);
      assert.equal(res.headers.get('cache-control'), 'no-store', path);
      assert.ok(res.headers.get('content-security-policy')?.includes("script-src 'self'"), `${path} carries the CSP`);
      assert.ok((await res.text()).length > 500, `${path} has a body`);
    }

    assert.equal((await g.call('/ui/index.htm', { key: null })).status, 404, 'only the named files are served');
    assert.equal((await g.call('/ui/../package.json', { key: null })).status, 404);
    assert.equal((await g.call('/v1/bridge', { key: null })).status, 401, 'the API still needs a key');
  });

  test('the page has no inline code, imports only its own modules, and never writes data as markup', () => {
    const dir = new URL('../src/ui/', import.meta.url);
    const html = readFileSync(new URL('index.html', dir), 'utf8');
    assert.doesNotMatch(html, /<script(?![^>]*\ssrc=)/, 'no inline <script>');
    assert.doesNotMatch(html, /<style|\sstyle=|\son[a-z]+=/i, 'no inline style or handler');
    assert.doesNotMatch(html, /https?:\/\//, 'no asset from another origin');
    for (const name of Object.keys(UI_ASSETS).filter((n) => n.endsWith('.js'))) {
      const js = readFileSync(new URL(name, dir), 'utf8');
      assert.doesNotMatch(js, /innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|\.style\b/, `${name}: data reaches the DOM as text only`);
      for (const [, imported] of js.matchAll(/^import .* from '\.\/([^']+)';$/gm)) {
        assert.ok(imported! in UI_ASSETS, `${name} imports ${imported}, which /ui serves`);
      }
      assert.doesNotMatch(js, /^import .* from '(?!\.\/)/m, `${name} imports nothing from outside the page`);
    }
  });
});

describe('the ops page in Chromium', () => {
  test('asks for the key, shows consumers with lag, flips the bridge and a webhook, refreshes live', { timeout: 90_000 }, async (t) => {
    const g = await gatewayFor(t);
    const rx = await startReceiver();
    t.after(() => rx.close());
    const browser = await browserFor(t);
    const { page, errors } = await pageFor(browser);

    // A pull consumer with 5 events waiting, an idle one we will hold a poll on, and a push
    // consumer whose URL carries an HTML entity that must show up as typed.
    const pull = await g.createConsumer({ tenant: 'acme', name: 'billing' });
    await g.publish(Array.from({ length: 5 }, (_, i) => ({ tenant: 'acme', type: 'ticket.created', data: { i } })));
    const idle = await g.createConsumer({ tenant: 'quiet', name: 'idle' });
    const push = await g.createConsumer({ tenant: 'acme-push', name: 'hooks' });
    // The API percent-encodes < and >, but an entity survives: parsed as markup it would read "&".
    const hookUrl = `${rx.url}hook?a=1&amp;b=%3Cb%3E`;
    const put = await g.json(`/v1/consumers/${push.id}/webhook`, { method: 'PUT', body: { url: hookUrl } });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    await g.publish({ tenant: 'acme-push', type: 'ticket.created', data: {} });
    await rx.waitForCount(1);

    // The page loads without a key and asks for one.
    const res = await page.goto(`${g.url}/ui`);
    assert.equal(res?.status(), 200);
    await page.locator('#login').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#dashboard').isVisible(), false, 'nothing is shown before a key');

    // A wrong key: a clear message, still asking, nothing stored.
    await signIn(page, 'not-the-admin-key');
    await waitForText(page, '#login-error', /wrong key.*401/i);
    assert.equal(await page.locator('#login').isVisible(), true);
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'a wrong key is not kept');

    // The admin key: the dashboard, and the key kept for this tab only.
    await signIn(page, ADMIN_KEY);
    await page.locator('#dashboard').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#login').isVisible(), false);
    assert.deepEqual(
      await page.evaluate(() => Object.values(sessionStorage as object)),
      [ADMIN_KEY],
      'the key lives in sessionStorage',
    );
    assert.equal(await page.evaluate(() => localStorage.length), 0, 'and nowhere else');

    // The pull consumer's row: lag 5 and the rest of its view.
    const pullRow = rowOf('consumers', pull.id);
    await waitForText(page, `${pullRow} td.lag`, '5');
    const view = (await g.json(`/v1/consumers/${pull.id}`)).body;
    assert.equal(await textOf(page, `${pullRow} td:nth-child(1)`), pull.id);
    assert.equal(await textOf(page, `${pullRow} td:nth-child(2)`), 'billing');
    assert.equal(await textOf(page, `${pullRow} td:nth-child(3)`), 'acme');
    assert.equal(await textOf(page, `${pullRow} td.mode`), 'pull');
    assert.equal(await textOf(page, `${pullRow} td.cursor`), view.cursor);
    assert.equal(await textOf(page, `${pullRow} td.last-poll`), '—', 'never polled');
    assert.equal(await textOf(page, `${pullRow} td.held`), '—');
    assert.equal(await textOf(page, `${rowOf('consumers', push.id)} td.mode`), 'push');

    // From here on, any navigation would lose this marker.
    await page.evaluate(() => Object.assign(window, { __sameDocument: true }));

    // A held poll shows as "polling", with its last poll time.
    const hold = new AbortController();
    const held = g.call('/v1/events?wait=30', { key: idle.key, signal: hold.signal }).catch(() => null);
    const idleRow = rowOf('consumers', idle.id);
    await waitForText(page, `${idleRow} td.held`, 'polling');
    await waitForText(page, `${idleRow} td.last-poll`, /^(just now|\d+ s ago)$/);
    hold.abort();
    await held;
    await waitForText(page, `${idleRow} td.held`, '—');

    // The bridge toggle asks first, saying it stops every push consumer on every node;
    // Cancel (and Escape) leave pushing on.
    await waitForText(page, '#bridge-state', 'running');
    await page.locator('#bridge-toggle').click();
    await page.locator('#confirm-dialog').waitFor({ state: 'visible' });
    assert.equal(await textOf(page, '#confirm-title'), 'Pause all pushing?');
    assert.match((await textOf(page, '#confirm-body')) ?? '', /Every consumer in push mode \(1 consumer now\), on every node of this deployment, stops receiving webhooks/);
    await screenshot(t, page, 'bridge-confirmation');
    await page.locator('#confirm-cancel').click();
    await page.locator('#confirm-dialog').waitFor({ state: 'hidden' });
    await page.locator('#bridge-toggle').click();
    await page.locator('#confirm-dialog').waitFor({ state: 'visible' });
    await page.keyboard.press('Escape');
    await page.locator('#confirm-dialog').waitFor({ state: 'hidden' });
    assert.equal((await g.json('/v1/bridge')).body.enabled, true, 'cancelled twice: pushing is still on');
    assert.equal(await page.locator('#bridge-toggle').getAttribute('aria-checked'), 'true');
    assert.equal(await textOf(page, '#bridge-state'), 'running');
    // Confirmed: paused in the API and on the page, every webhook reads so; then running again.
    await page.locator('#bridge-toggle').click();
    await page.locator('#confirm-ok').click();
    await waitForText(page, '#bridge-state', 'paused');
    assert.equal((await g.json('/v1/bridge')).body.enabled, false, 'the API says the bridge is paused');
    assert.equal(await page.locator('#bridge-toggle').getAttribute('aria-checked'), 'false');
    const pausedHook = rowOf('webhooks', push.id);
    await waitForText(page, `${pausedHook} td.health`, 'bridge paused');
    assert.equal(await textOf(page, `${pausedHook} td.next`), '—', 'no next attempt while the bridge is paused');
    await page.locator('#bridge-toggle').click(); // resuming asks nothing
    await waitForText(page, '#bridge-state', 'running');
    assert.equal((await g.json('/v1/bridge')).body.enabled, true, 'the API says the bridge runs');

    // Webhook health: the URL as text, healthy, the attempt log.
    const hookRow = rowOf('webhooks', push.id);
    await waitForText(page, `${hookRow} td.health`, 'healthy');
    assert.equal(await textOf(page, `${hookRow} td.url`), `POST ${hookUrl}`);
    assert.equal(put.body.url, hookUrl, 'the URL is stored as given');
    assert.ok((await textOf(page, `${hookRow} td.url`))?.includes('&amp;'), 'data is shown as text, not parsed as markup');
    await page.locator(`${hookRow} button.attempts-toggle`).click();
    const attempts = `#webhooks tr[data-attempts-for="${push.id}"] table.inner tbody tr`;
    await waitForCount(page, attempts, 1);
    assert.match((await textOf(page, attempts)) ?? '', /200/);

    // The webhook switch: off in the API, the consumer back in pull mode on the page.
    const hookSwitch = page.locator(`${hookRow} button.switch`);
    assert.equal(await hookSwitch.getAttribute('aria-checked'), 'true');
    await hookSwitch.click();
    let hook: any = null;
    await waitUntil(
      async () => (hook = (await g.json(`/v1/consumers/${push.id}/webhook`)).body).enabled === false,
      UI_WAIT,
      () => `webhook of ${push.id} disabled; it is ${JSON.stringify(hook)}`,
    );
    await waitForText(page, `${rowOf('consumers', push.id)} td.mode`, 'pull');
    await waitForText(page, `${hookRow} td.health`, 'paused');
    assert.equal(await hookSwitch.getAttribute('aria-checked'), 'false');
    assert.equal(await textOf(page, `${hookRow} td.next`), '—', 'a paused webhook plans no attempt');

    // Live: more events, and the lag cell follows without a reload.
    await g.publish(Array.from({ length: 3 }, (_, i) => ({ tenant: 'acme', type: 'ticket.created', data: { i } })));
    await waitForText(page, `${pullRow} td.lag`, '8');
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'the page was not reloaded');

    assert.deepEqual(errors, [], 'no script errors, no CSP violations');
  });

  test('a stale stored key asks again; many consumers come a page at a time, or by tenant', { timeout: 90_000 }, async (t) => {
    const g = await gatewayFor(t);
    const browser = await browserFor(t);
    const { page, errors } = await pageFor(browser);
    for (let i = 0; i < 55; i++) await g.createConsumer({ tenant: 'bulk', name: `c${i}` });
    for (let i = 0; i < 5; i++) await g.createConsumer({ tenant: 'few', name: `f${i}` });

    // A key kept from before that the gateway no longer accepts.
    await page.goto(`${g.url}/ui/`);
    await page.evaluate(() => sessionStorage.setItem('pollgate.adminKey', 'pga_an_old_key'));
    await page.reload();
    await waitForText(page, '#login-error', /no longer accepts this key \(401/);
    assert.equal(await page.locator('#dashboard').isVisible(), false);
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'the stale key is forgotten');

    await signIn(page, ADMIN_KEY);
    await waitForCount(page, '#consumers tbody tr[data-id]', 50);
    await page.locator('#more').click();
    await waitForCount(page, '#consumers tbody tr[data-id]', 60);
    assert.equal(await page.locator('#more').isVisible(), false, 'nothing more to show');

    await page.locator('#tenant').fill('few');
    await page.locator('#filter-form button').click();
    await waitForCount(page, '#consumers tbody tr[data-id]', 5);
    await waitForText(page, '#consumer-count', '5 shown of tenant few');

    await page.locator('#tenant').fill('no such tenant');
    await page.locator('#filter-form button').click();
    await waitForText(page, '#filter-error', /tenant is 1 to 64 characters/);
    assert.equal(await page.locator('#consumers tbody tr[data-id]').count(), 5, 'the filter stays as it was');

    assert.deepEqual(errors, [], 'no script errors, no CSP violations');
  });
});
