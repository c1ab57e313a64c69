/**
 * pollgate ops page: plain ES module, no build step, no third-party code.
 *
 * 1. Data reaches the DOM only as text (textContent, attributes); never as markup. The page
 *    holds the admin key, and the CSP (src/http/ui.ts) forbids inline script on top of that.
 * 2. The key lives in sessionStorage (this tab only). A 401 from any call forgets it and asks
 *    again with a message; a 403 means a consumer key was entered instead of the admin key.
 * 3. Refresh is a loop of setTimeout, never setInterval: one refresh runs at a time, the next
 *    starts ~2 s after the previous one ended, so a slow gateway is never flooded.
 * 4. Rows are keyed by consumer id and updated in place (only changed text is written), so
 *    focus, open attempt lists and scroll position survive every refresh.
 * 5. A refresh that overlaps a change made on the page (bridge or webhook switch) is discarded
 *    and redone, so a stale answer never flips a switch back.
 * 6. Lists are bounded: consumers come a page at a time ("Show more", or filter by tenant);
 *    delivery attempts are fetched only for webhooks whose attempts are open.
 */

const KEY_STORE = 'pollgate.adminKey';
const REFRESH_MS = 2000;
const PAGE_SIZE = 50;
const API_PAGE_MAX = 1000;
const TENANT = /^[A-Za-z0-9._-]{1,64}$/;

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

const state = {
  key: sessionStorage.getItem(KEY_STORE),
  tenant: '',
  want: PAGE_SIZE,
  /** Consumers with their attempts open. */
  open: new Set(),
  /** Consumer id -> latest deliveries answer (newest first). */
  attempts: new Map(),
  /** Consumer ids with a webhook PATCH in flight; their switch is left alone. */
  pending: new Set(),
  bridgePending: false,
  /** Bumped by every change made from the page (see 5). */
  changes: 0,
  /** Bumped by sign-out so a refresh in flight does not outlive its key. */
  session: 0,
  timer: 0,
  inflight: false,
  again: false,
  lastOk: 0,
};

// ------------------------------------------------------------------------------------------
// API

class AuthError extends Error {}
class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, { method = 'GET', body, key = state.key } = {}) {
  const headers = { authorization: `Bearer ${key}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    cache: 'no-store',
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const data = await res.json().catch(() => null);
  const message = data?.error?.message ?? `${res.status} ${res.statusText}`;
  if (res.status === 401) throw new AuthError(message);
  if (!res.ok) throw new ApiError(res.status, message);
  return data;
}

const consumerPath = (id, rest = '') => `/v1/consumers/${encodeURIComponent(id)}${rest}`;

/** The first `state.want` consumers (of the tenant, if filtered), in id order. */
async function loadConsumers() {
  const consumers = [];
  let after = null;
  let next = null;
  do {
    const q = new URLSearchParams({ limit: String(Math.min(API_PAGE_MAX, state.want - consumers.length)) });
    if (state.tenant) q.set('tenant', state.tenant);
    if (after) q.set('after', after);
    const page = await api(`/v1/consumers?${q}`);
    consumers.push(...page.consumers);
    next = page.next;
    after = next;
  } while (next && consumers.length < state.want);
  return { consumers, more: next !== null };
}

async function loadAttempts(consumers) {
  const ids = consumers.filter((c) => c.webhook && state.open.has(c.id)).map((c) => c.id);
  const answers = await Promise.all(
    ids.map((id) =>
      api(consumerPath(id, '/deliveries?limit=10')).then(
        (r) => [id, r.deliveries],
        (error) => {
          if (error instanceof AuthError) throw error;
          return [id, null];
        },
      ),
    ),
  );
  return new Map(answers);
}

// ------------------------------------------------------------------------------------------
// Refresh loop (see 3 and 5)

function refreshSoon() {
  clearTimeout(state.timer);
  if (state.inflight) {
    state.again = true;
    return;
  }
  state.inflight = true;
  const session = state.session;
  refresh().finally(() => {
    state.inflight = false;
    if (!state.key) return;
    // A sign-in during this refresh queued another one: run it at once.
    const delay = state.again || session !== state.session ? 0 : REFRESH_MS;
    state.again = false;
    state.timer = setTimeout(refreshSoon, delay);
  });
}

async function refresh() {
  const session = state.session;
  const changes = state.changes;
  let bridge, list, attempts;
  try {
    [bridge, list] = await Promise.all([api('/v1/bridge'), loadConsumers()]);
    attempts = await loadAttempts(list.consumers);
  } catch (error) {
    if (session !== state.session) return;
    if (error instanceof AuthError) {
      signOut(`The gateway no longer accepts this key (401: ${error.message}). Enter the admin key again.`);
    } else if (error instanceof ApiError) {
      showBanner(`The gateway answered ${error.status}: ${error.message}`);
    } else {
      showBanner(`Cannot reach the gateway (${error.message}). Retrying every ${REFRESH_MS / 1000} s.`);
    }
    return renderStatus(true);
  }
  if (session !== state.session) return;
  if (changes !== state.changes) {
    state.again = true;
    return;
  }
  state.attempts = attempts;
  state.lastOk = Date.now();
  showBanner(null);
  render(bridge, list);
  renderStatus(false);
}

// ------------------------------------------------------------------------------------------
// Sign in / out

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
  refreshSoon();
}

function signOut(message) {
  state.session += 1;
  state.key = null;
  clearTimeout(state.timer);
  sessionStorage.removeItem(KEY_STORE);
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
  state.key = key;
  state.session += 1;
  sessionStorage.setItem(KEY_STORE, key);
  showDashboard();
}

// ------------------------------------------------------------------------------------------
// Changes made from the page

async function toggleBridge() {
  const button = $('bridge-toggle');
  const enabled = button.getAttribute('aria-checked') !== 'true';
  state.changes += 1;
  state.bridgePending = true;
  button.setAttribute('disabled', '');
  try {
    const bridge = await api('/v1/bridge', { method: 'PUT', body: { enabled } });
    renderBridge(bridge);
  } catch (error) {
    reportActionError(error, 'Could not change the bridge');
  } finally {
    state.bridgePending = false;
    button.removeAttribute('disabled');
    refreshSoon();
  }
}

async function toggleWebhook(id, button) {
  const enabled = button.getAttribute('aria-checked') !== 'true';
  state.changes += 1;
  state.pending.add(id);
  button.setAttribute('disabled', '');
  setSwitch(button, enabled);
  try {
    await api(consumerPath(id, '/webhook'), { method: 'PATCH', body: { enabled } });
  } catch (error) {
    setSwitch(button, !enabled);
    reportActionError(error, `Could not change the webhook of ${id}`);
  } finally {
    state.pending.delete(id);
    button.removeAttribute('disabled');
    refreshSoon();
  }
}

function reportActionError(error, what) {
  if (error instanceof AuthError) return signOut(`The gateway no longer accepts this key (401). Enter the admin key again.`);
  showBanner(`${what}: ${error instanceof ApiError ? `${error.status} ${error.message}` : error.message}`);
}

// ------------------------------------------------------------------------------------------
// Rendering (see 1 and 4)

/** Creates an element; strings among children become text nodes. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === 'class') node.className = value;
    else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

function setText(node, text, title) {
  if (node.textContent !== text) node.textContent = text;
  if (title !== undefined && node.title !== title) node.title = title;
}

function setBadge(node, text, tone, title) {
  setText(node, text, title);
  const cls = `badge ${tone}`;
  if (node.className !== cls) node.className = cls;
}

function setSwitch(button, on) {
  const value = on ? 'true' : 'false';
  if (button.getAttribute('aria-checked') !== value) button.setAttribute('aria-checked', value);
}

function span(ms) {
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}

/** A past moment: "just now", "12 s ago", "3 min ago". A little in the future (clock skew) is "just now". */
function ago(iso, now = Date.now()) {
  if (!iso) return '—';
  const ms = now - Date.parse(iso);
  return ms < 1000 ? 'just now' : `${span(ms)} ago`;
}

/** A planned moment: "in 5 s", or "due" once it has passed. */
function until(iso, now = Date.now()) {
  if (!iso) return '—';
  const ms = Date.parse(iso) - now;
  return ms < 1000 ? 'due' : `in ${span(ms)}`;
}

/** Either way: "in 5 s" or "3 min ago". */
const moment = (iso, now = Date.now()) => (iso && Date.parse(iso) > now ? until(iso, now) : ago(iso, now));

const localTime = (iso) => (iso ? new Date(iso).toLocaleString() : '');

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

function render(bridge, list) {
  renderBridge(bridge);
  renderConsumers(list);
  renderWebhooks(list.consumers);
}

function renderBridge(bridge) {
  if (state.bridgePending) return;
  const button = $('bridge-toggle');
  setSwitch(button, bridge.enabled);
  if (button.hasAttribute('disabled')) button.removeAttribute('disabled');
  setBadge($('bridge-state'), bridge.enabled ? 'running' : 'paused', bridge.enabled ? 'ok' : 'warn');
  const n = bridge.consumers_in_push_mode;
  const who = `${n} consumer${n === 1 ? '' : 's'} in push mode`;
  setText(
    $('bridge-detail'),
    bridge.enabled ? `Delivering to webhooks · ${who}.` : `Paused: the log keeps growing, no webhook cursor moves · ${who}.`,
  );
}

/** Consumer id -> { tr, cells } for the consumers table. */
const consumerRows = new Map();

function consumerRow(id) {
  let row = consumerRows.get(id);
  if (row) return row;
  const cells = {
    id: el('td', { class: 'mono' }),
    name: el('td'),
    tenant: el('td'),
    mode: el('span'),
    lag: el('td', { class: 'num lag' }),
    cursor: el('td', { class: 'mono cursor' }),
    lastPoll: el('td', { class: 'last-poll' }),
    held: el('span'),
  };
  const tr = el(
    'tr',
    { 'data-id': id },
    cells.id,
    cells.name,
    cells.tenant,
    el('td', { class: 'mode' }, cells.mode),
    cells.lag,
    cells.cursor,
    cells.lastPoll,
    el('td', { class: 'held' }, cells.held),
  );
  row = { tr, cells };
  consumerRows.set(id, row);
  return row;
}

function renderConsumers({ consumers, more }) {
  const now = Date.now();
  const tbody = $('consumers').tBodies[0];
  const seen = new Set();
  let before = tbody.firstChild;
  for (const c of consumers) {
    seen.add(c.id);
    const { tr, cells } = consumerRow(c.id);
    setText(cells.id, c.id);
    setText(cells.name, c.name ?? '—');
    setText(cells.tenant, c.tenant);
    setBadge(cells.mode, c.mode, c.mode === 'push' ? 'info' : 'neutral');
    setText(cells.lag, c.lag.toLocaleString('en-US'), `${c.lag} events after the committed cursor`);
    if (cells.lag.dataset.lag !== String(c.lag)) cells.lag.dataset.lag = String(c.lag);
    setText(cells.cursor, c.cursor, c.cursor);
    setText(cells.lastPoll, ago(c.last_poll_at, now), localTime(c.last_poll_at));
    if (c.polling) setBadge(cells.held, 'polling', 'ok', 'A long poll is held right now');
    else setBadge(cells.held, '—', 'none', 'No poll held right now');
    if (tr !== before) tbody.insertBefore(tr, before);
    before = tr.nextSibling;
  }
  for (const [id, row] of consumerRows) {
    if (!seen.has(id)) {
      row.tr.remove();
      consumerRows.delete(id);
    }
  }
  const scope = state.tenant ? ` of tenant ${state.tenant}` : '';
  setText($('consumer-count'), consumers.length ? `${consumers.length}${more ? '+' : ''} shown${scope}` : '');
  const empty = $('consumers-empty');
  empty.hidden = consumers.length > 0;
  setText(empty, state.tenant ? `No consumers for tenant ${state.tenant}.` : 'No consumers yet.');
  const moreButton = $('more');
  moreButton.hidden = !more;
  setText(moreButton, `Show ${PAGE_SIZE} more`);
}

/** Consumer id -> { tr, attemptsTr, cells } for the webhooks table. */
const webhookRows = new Map();

function webhookRow(id) {
  let row = webhookRows.get(id);
  if (row) return row;
  const toggle = el('button', {
    type: 'button',
    class: 'switch',
    role: 'switch',
    'aria-checked': 'false',
    'aria-label': `Webhook of ${id} enabled`,
  }, el('span', { class: 'knob' }));
  toggle.addEventListener('click', () => toggleWebhook(id, toggle));
  const attemptsButton = el('button', { type: 'button', class: 'link', 'aria-expanded': 'false' }, 'attempts');
  const cells = {
    id: el('td', { class: 'mono' }),
    url: el('td', { class: 'url' }),
    toggle,
    health: el('span'),
    lastSuccess: el('td'),
    lastStatus: el('td', { class: 'mono' }),
    lastError: el('td'),
    failures: el('td', { class: 'num' }),
    next: el('td'),
    attemptsButton,
    attempts: el('td', { colspan: '10', class: 'attempts' }),
  };
  const tr = el(
    'tr',
    { 'data-id': id },
    cells.id,
    cells.url,
    el('td', { class: 'enabled' }, toggle),
    el('td', { class: 'health' }, cells.health),
    cells.lastSuccess,
    cells.lastStatus,
    cells.lastError,
    cells.failures,
    cells.next,
    el('td', {}, attemptsButton),
  );
  const attemptsTr = el('tr', { class: 'attempts-row', 'data-attempts-for': id }, cells.attempts);
  attemptsTr.hidden = true;
  attemptsButton.addEventListener('click', () => {
    const open = !state.open.has(id);
    if (open) state.open.add(id);
    else state.open.delete(id);
    attemptsButton.setAttribute('aria-expanded', String(open));
    attemptsTr.hidden = !open;
    if (open) {
      cells.attempts.replaceChildren(el('p', { class: 'muted small' }, 'loading…'));
      refreshSoon();
    }
  });
  row = { tr, attemptsTr, cells };
  webhookRows.set(id, row);
  return row;
}

function health(hook) {
  if (!hook.enabled) return hook.disabled_reason ? ['disabled', 'bad', hook.disabled_reason] : ['off', 'neutral', 'Disabled by an operator'];
  if (hook.health.consecutive_failures > 0) {
    return ['failing', 'bad', `${hook.health.consecutive_failures} consecutive failed attempts`];
  }
  if (hook.health.last_success_at) return ['healthy', 'ok', 'The last attempt succeeded'];
  return ['waiting', 'neutral', 'No attempt yet'];
}

function renderWebhooks(consumers) {
  const now = Date.now();
  const tbody = $('webhooks').tBodies[0];
  const withHook = consumers.filter((c) => c.webhook);
  const seen = new Set();
  let before = tbody.firstChild;
  for (const c of withHook) {
    const hook = c.webhook;
    seen.add(c.id);
    const { tr, attemptsTr, cells } = webhookRow(c.id);
    setText(cells.id, c.id, c.name ? `${c.name} (${c.tenant})` : c.tenant);
    setText(cells.url, `${hook.method} ${hook.url}`, hook.url);
    if (!state.pending.has(c.id)) setSwitch(cells.toggle, hook.enabled);
    const [label, tone, why] = health(hook);
    setBadge(cells.health, label, tone, why);
    setText(cells.lastSuccess, ago(hook.health.last_success_at, now), localTime(hook.health.last_success_at));
    setText(cells.lastStatus, hook.health.last_status === null ? '—' : String(hook.health.last_status));
    setText(cells.lastError, hook.health.last_error ?? '—');
    cells.lastError.classList.toggle('error-text', hook.health.last_error !== null);
    setText(cells.failures, String(hook.health.consecutive_failures));
    setText(cells.next, until(hook.health.next_attempt_at, now), localTime(hook.health.next_attempt_at));
    if (state.open.has(c.id)) renderAttempts(cells.attempts, state.attempts.get(c.id), now);
    for (const node of [tr, attemptsTr]) {
      if (node !== before) tbody.insertBefore(node, before);
      before = node.nextSibling;
    }
  }
  for (const [id, row] of webhookRows) {
    if (!seen.has(id)) {
      row.tr.remove();
      row.attemptsTr.remove();
      webhookRows.delete(id);
      state.open.delete(id);
    }
  }
  setText($('webhook-count'), withHook.length ? String(withHook.length) : '');
  $('webhooks-empty').hidden = withHook.length > 0;
}

function renderAttempts(td, deliveries, now) {
  if (deliveries === undefined) return;
  if (deliveries === null) return td.replaceChildren(el('p', { class: 'error small' }, 'Could not load the attempts.'));
  if (deliveries.length === 0) return td.replaceChildren(el('p', { class: 'muted small' }, 'No attempts yet.'));
  const rows = deliveries.map((d) =>
    el(
      'tr',
      {},
      el('td', { title: localTime(d.at) }, ago(d.at, now)),
      el('td', { class: 'mono' }, d.event_id),
      el('td', { class: 'num' }, String(d.attempt)),
      el('td', {}, el('span', { class: `badge ${d.status !== null && d.status >= 200 && d.status < 300 ? 'ok' : 'bad'}` }, d.status === null ? 'no answer' : String(d.status))),
      el('td', d.error ? { class: 'error-text' } : {}, d.error ?? '—'),
      el('td', { class: 'num' }, `${d.duration_ms} ms`),
      el('td', { title: localTime(d.next_attempt_at) }, moment(d.next_attempt_at, now)),
    ),
  );
  const head = el('tr', {}, ...['When', 'Event', 'Attempt', 'Status', 'Error', 'Took', 'Retry'].map((h) => el('th', {}, h)));
  td.replaceChildren(
    el('p', { class: 'muted small' }, `Last ${deliveries.length} attempts, newest first`),
    el('table', { class: 'inner' }, el('thead', {}, head), el('tbody', {}, ...rows)),
  );
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
  if (!document.hidden && state.key) refreshSoon();
});

if (state.key) showDashboard();
else showLogin(null);
