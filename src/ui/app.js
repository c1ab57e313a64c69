/**
 * pollgate ops page: plain ES modules, no build step, no third-party code. This one signs in,
 * runs the refresh loop and the bridge switch, and hands the other modules a shared context.
 *
 * 1. Data reaches the DOM only as text (dom.js); the CSP (src/http/ui.ts) forbids inline script
 *    on top of that, since the page holds the admin key.
 * 2. The key lives in sessionStorage (api.js). A 401 from any call forgets it and asks again
 *    with a message; a 403 at sign-in means a consumer key was entered instead.
 * 3. Refresh is a loop of setTimeout, never setInterval: one refresh runs at a time, the next
 *    starts ~2 s after the previous one ended, so a slow gateway is never flooded.
 * 4. A refresh that overlaps a change made on the page (a switch, a seek, a delete) is
 *    discarded and redone, so a stale answer never flips a switch back or revives a row.
 * 5. Lists are bounded: consumers come a page at a time ("Show more", or filter by tenant);
 *    delivery attempts are fetched only for webhooks whose attempts are open; the event
 *    browser pages on demand; the charts' series is fetched once per sampling interval.
 * 6. Pausing all pushing asks first: it stops every push consumer on every node.
 */
import { api, ApiError, AuthError, describeError, session } from './api.js';
import { refreshCharts } from './charts.js';
import { initConsumers, loadConsumers, PAGE_SIZE, renderConsumers } from './consumers.js';
import { confirmAction } from './dialogs.js';
import { $, ago, el, plural, setBadge, setSwitch, setText } from './dom.js';
import { initEvents } from './events.js';
import { initWebhooks, loadAttempts, renderWebhooks } from './webhooks.js';

const REFRESH_MS = 2000;
const NOTICE_MS = 8000;
const TENANT = /^[A-Za-z0-9._-]{1,64}$/;

const state = {
  tenant: '',
  want: PAGE_SIZE,
  /** Webhooks (consumer ids) with their attempts open. */
  openAttempts: new Set(),
  /** Consumer ids with their panel open. */
  openDetails: new Set(),
  /** Consumer id -> latest deliveries answer (newest first). */
  attempts: new Map(),
  /** Consumer ids with a webhook PATCH in flight; their switch is left alone. */
  pending: new Set(),
  /** The latest GET /v1/bridge answer. */
  bridge: null,
  bridgePending: false,
  /** Bumped by every change made from the page (see 4). */
  changes: 0,
  timer: 0,
  noticeTimer: 0,
  inflight: false,
  again: false,
  lastOk: 0,
};

/** What the other modules get: the state, and ways to refresh, report and tell. */
const ctx = {
  state,
  refreshSoon,
  changed() {
    state.changes += 1;
  },
  /** An action failed: a lost key signs out; otherwise shown inline (a form) or in the banner. */
  report(error, what, inline) {
    if (error instanceof AuthError) return signOut('The gateway no longer accepts this key (401). Enter the admin key again.');
    const message = describeError(error);
    if (inline) return inline(message);
    showBanner(`${what}: ${message}`);
  },
  notify,
};

// ------------------------------------------------------------------------------------------
// Refresh loop (see 3 and 4)

function refreshSoon() {
  clearTimeout(state.timer);
  if (state.inflight) {
    state.again = true;
    return;
  }
  state.inflight = true;
  const epoch = session.epoch;
  refresh().finally(() => {
    state.inflight = false;
    if (!session.key) return;
    // A sign-in during this refresh queued another one: run it at once.
    const delay = state.again || epoch !== session.epoch ? 0 : REFRESH_MS;
    state.again = false;
    state.timer = setTimeout(refreshSoon, delay);
  });
}

async function refresh() {
  const epoch = session.epoch;
  const changes = state.changes;
  let bridge, list, attempts;
  try {
    [bridge, list] = await Promise.all([api('/v1/bridge'), loadConsumers(state), refreshCharts()]);
    attempts = await loadAttempts(list.consumers);
  } catch (error) {
    if (epoch !== session.epoch) return;
    if (error instanceof AuthError) {
      signOut(`The gateway no longer accepts this key (401: ${error.message}). Enter the admin key again.`);
    } else if (error instanceof ApiError) {
      showBanner(`The gateway answered ${error.status}: ${error.message}`);
    } else {
      showBanner(`Cannot reach the gateway (${error.message}). Retrying every ${REFRESH_MS / 1000} s.`);
    }
    return renderStatus(true);
  }
  if (epoch !== session.epoch) return;
  if (changes !== state.changes) {
    state.again = true;
    return;
  }
  state.attempts = attempts;
  state.lastOk = Date.now();
  showBanner(null);
  renderBridge(bridge);
  renderConsumers(list);
  renderWebhooks(list.consumers);
  renderStatus(false);
}

// ------------------------------------------------------------------------------------------
// Sign in / out (see 2)

function showLogin(message) {
  $('dashboard').hidden = true;
  $('session').hidden = true;
  $('login').hidden = false;
  const error = $('login-error');
  error.textContent = message ?? '';
  error.hidden = !message;
  $('key').focus();
}

function showDashboard() {
  $('login').hidden = true;
  $('dashboard').hidden = false;
  $('session').hidden = false;
  refreshCharts(true).catch(() => {});
  refreshSoon();
}

function signOut(message) {
  session.forget();
  clearTimeout(state.timer);
  for (const dialog of document.querySelectorAll('dialog[open]')) dialog.close('cancel');
  showLogin(message);
}

async function signIn(event) {
  event.preventDefault();
  const input = /** @type {HTMLInputElement} */ ($('key'));
  const key = input.value.trim();
  if (!key) return showLogin('Enter the admin key.');
  const submit = /** @type {HTMLButtonElement} */ ($('login-submit'));
  submit.disabled = true;
  try {
    await api('/v1/bridge', { key });
  } catch (error) {
    input.select();
    if (error instanceof AuthError) return showLogin(`Wrong key: the gateway answered 401 (${error.message}). Try again.`);
    if (error instanceof ApiError && error.status === 403) {
      return showLogin('That is a consumer key (pgk_…). This page needs the admin key.');
    }
    if (error instanceof ApiError) return showLogin(`The gateway answered ${error.status}: ${error.message}`);
    return showLogin(`Cannot reach the gateway (${error.message}).`);
  } finally {
    submit.disabled = false;
  }
  input.value = '';
  session.keep(key);
  showDashboard();
}

// ------------------------------------------------------------------------------------------
// The bridge (see 6)

async function toggleBridge() {
  const button = $('bridge-toggle');
  const enabled = button.getAttribute('aria-checked') !== 'true';
  if (!enabled) {
    const n = state.bridge?.consumers_in_push_mode ?? 0;
    const ok = await confirmAction({
      title: 'Pause all pushing?',
      body: [
        el('p', {}, `Every consumer in push mode (${plural(n, 'consumer')} now), on every node of this deployment, stops receiving webhooks until the bridge is resumed.`),
        el('p', { class: 'muted' }, 'The log keeps growing and no webhook cursor moves; resumed, delivery continues exactly where it stopped. Pull consumers are not affected. To stop one webhook, use its own switch below.'),
      ],
      confirm: 'Pause all pushing',
    });
    if (!ok) return;
  }
  state.changes += 1;
  state.bridgePending = true;
  button.setAttribute('disabled', '');
  try {
    const bridge = await api('/v1/bridge', { method: 'PUT', body: { enabled } });
    state.bridgePending = false;
    renderBridge(bridge);
    notify(enabled ? 'Pushing resumed.' : 'All pushing is paused.');
  } catch (error) {
    ctx.report(error, 'Could not change the bridge');
  } finally {
    state.bridgePending = false;
    button.removeAttribute('disabled');
    refreshSoon();
  }
}

function renderBridge(bridge) {
  if (state.bridgePending) return;
  state.bridge = bridge;
  const button = $('bridge-toggle');
  setSwitch(button, bridge.enabled);
  if (button.hasAttribute('disabled')) button.removeAttribute('disabled');
  setBadge($('bridge-state'), bridge.enabled ? 'running' : 'paused', bridge.enabled ? 'ok' : 'warn');
  const who = `${plural(bridge.consumers_in_push_mode, 'consumer')} in push mode`;
  setText(
    $('bridge-detail'),
    bridge.enabled
      ? `Delivering to webhooks · ${who}.`
      : `Paused on every node: the log keeps growing, no webhook cursor moves · ${who}.`,
  );
}

// ------------------------------------------------------------------------------------------
// Status, banner, notices

function renderStatus(failing) {
  const status = $('status');
  status.classList.toggle('stale', failing);
  if (!state.lastOk) return setText(status, failing ? 'offline' : 'connecting…');
  const when = ago(new Date(state.lastOk).toISOString());
  setText(status, failing ? `offline · last update ${when}` : `live · updated ${when}`);
}

function showBanner(message) {
  const banner = $('banner');
  banner.hidden = !message;
  setText(banner, message ?? '');
}

/** A short confirmation that something was done, gone after a few seconds. */
function notify(message) {
  const notice = $('notice');
  setText(notice, message);
  notice.hidden = false;
  clearTimeout(state.noticeTimer);
  state.noticeTimer = setTimeout(() => (notice.hidden = true), NOTICE_MS);
}

// ------------------------------------------------------------------------------------------
// Wiring

$('login-form').addEventListener('submit', signIn);
$('sign-out').addEventListener('click', () => signOut(null));
$('bridge-toggle').addEventListener('click', toggleBridge);
$('more').addEventListener('click', () => {
  state.want += PAGE_SIZE;
  refreshSoon();
});
$('filter-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const tenant = /** @type {HTMLInputElement} */ ($('tenant')).value.trim();
  const problem = tenant && !TENANT.test(tenant) ? 'A tenant is 1 to 64 characters of A-Z a-z 0-9 . _ -' : '';
  setText($('filter-error'), problem);
  $('filter-error').hidden = !problem;
  if (problem) return;
  state.tenant = tenant;
  state.want = PAGE_SIZE;
  state.changes += 1;
  refreshSoon();
});
document.addEventListener('visibilitychange', () => {
  if (!document.hidden && session.key) refreshSoon();
});

initConsumers(ctx);
initWebhooks(ctx);
initEvents(ctx);

if (session.key) showDashboard();
else showLogin(null);
