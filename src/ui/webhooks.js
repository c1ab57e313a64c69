/**
 * Webhooks on the ops page: health of each consumer's webhook (named by the consumer's name),
 * pause/resume one, remove it, and its delivery attempts with the detail of each. Creating and
 * editing one (its whole delivery shape, preview, test) is webhook-editor.js.
 *
 * 1. Health says what is true now: a webhook paused by an operator reads "paused", one the
 *    bridge gave up on reads "disabled" with its reason, and while the whole bridge is paused
 *    every webhook reads "bridge paused". None of them shows a next attempt: none is coming.
 *    "failing" is the gateway's failing episode (health.failing: enough failures within the
 *    alert window; a pollgate.webhook.failing event went out), which lasts until a success;
 *    failed attempts short of that read "retrying".
 * 2. A switch being flipped is left alone by refreshes until its PATCH is answered.
 * 3. Attempts are fetched only for webhooks whose list is open. Each shows the start of what
 *    the receiver answered; its detail shows all the gateway keeps of it (the first KiB of the
 *    body, as text).
 */
import { api, AuthError, consumerPath, describeError } from './api.js';
import { confirmAction, openDialog } from './dialogs.js';
import { initWebhookEditor, openWebhookEditor } from './webhook-editor.js';
import { $, ago, consumerLabel, el, localTime, moment, pretty, setBadge, setSwitch, setText, until } from './dom.js';

/** @type {any} the page's shared context (app.js) */
let ctx;

/** Consumer id -> { tr, attemptsTr, cells, consumer }. */
const rows = new Map();

export function initWebhooks(context) {
  ctx = context;
  initWebhookEditor(context);
}

export async function loadAttempts(consumers) {
  const ids = consumers.filter((c) => c.webhook && ctx.state.openAttempts.has(c.id)).map((c) => c.id);
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
// The list

function cell(label, attrs = {}, ...children) {
  return el('td', { 'data-label': label, ...attrs }, ...children);
}

function rowFor(id) {
  let row = rows.get(id);
  if (row) return row;
  const current = () => rows.get(id)?.consumer;
  const toggle = el('button', { type: 'button', class: 'switch', role: 'switch', 'aria-checked': 'false' }, el('span', { class: 'knob' }));
  toggle.addEventListener('click', () => toggleWebhook(id, toggle));
  const attemptsButton = el('button', { type: 'button', class: 'link attempts-toggle', 'aria-expanded': 'false' }, 'attempts');
  const edit = el('button', { type: 'button', class: 'link edit' }, 'edit');
  edit.addEventListener('click', () => {
    const c = current();
    if (c) openWebhookEditor(c);
  });
  const remove = el('button', { type: 'button', class: 'link danger-text remove' }, 'remove');
  remove.addEventListener('click', () => {
    const c = current();
    if (c) removeWebhook(c);
  });
  const cells = {
    consumer: cell('Consumer', { class: 'consumer' }),
    url: cell('URL', { class: 'url' }),
    toggle,
    health: el('span'),
    lastSuccess: cell('Last success', { class: 'last-success' }),
    lastStatus: cell('Last status', { class: 'mono last-status' }),
    lastError: cell('Last error', { class: 'last-error' }),
    failures: cell('Failures', { class: 'num failures' }),
    next: cell('Next attempt', { class: 'next' }),
    attempts: el('td', { colspan: '10', class: 'attempts' }),
  };
  const tr = el(
    'tr',
    { 'data-id': id },
    cells.consumer,
    cells.url,
    cell('Enabled', { class: 'enabled' }, toggle),
    cell('Health', { class: 'health' }, cells.health),
    cells.lastSuccess,
    cells.lastStatus,
    cells.lastError,
    cells.failures,
    cells.next,
    el('td', { class: 'actions' }, attemptsButton, edit, remove),
  );
  const attemptsTr = el('tr', { class: 'attempts-row', 'data-attempts-for': id }, cells.attempts);
  attemptsTr.hidden = true;
  attemptsButton.addEventListener('click', () => {
    const open = !ctx.state.openAttempts.has(id);
    if (open) ctx.state.openAttempts.add(id);
    else ctx.state.openAttempts.delete(id);
    attemptsButton.setAttribute('aria-expanded', String(open));
    attemptsTr.hidden = !open;
    if (open) {
      cells.attempts.replaceChildren(el('p', { class: 'muted small' }, 'loading…'));
      ctx.refreshSoon();
    }
  });
  row = { tr, attemptsTr, cells, consumer: null };
  rows.set(id, row);
  return row;
}

/** [label, tone, why] of a webhook's health (see 1.). */
export function health(hook, bridgeEnabled) {
  if (!hook.enabled) {
    if (hook.disabled_reason) return ['disabled', 'bad', `Disabled by the bridge: ${hook.disabled_reason}`];
    return ['paused', 'warn', 'Paused by an operator: nothing is delivered until it is resumed'];
  }
  if (!bridgeEnabled) return ['bridge paused', 'warn', 'All pushing is paused (the bridge switch above): nothing is delivered'];
  const failures = hook.health.consecutive_failures;
  if (hook.health.failing) {
    return ['failing', 'bad', `Failing: ${failures} failed attempts in a row; the failing alert went out, and it recovers at the next success`];
  }
  if (failures > 0) return ['retrying', 'warn', `${failures} failed ${failures === 1 ? 'attempt' : 'attempts'} in a row, not failing yet (alerts count failures within a window)`];
  if (hook.health.last_success_at) return ['healthy', 'ok', 'The last attempt succeeded'];
  return ['waiting', 'neutral', 'No attempt yet'];
}

/** When the next attempt comes, or why none does. */
function nextAttempt(hook, bridgeEnabled, now) {
  if (!hook.enabled) return ['—', 'No attempt: the webhook is off'];
  if (!bridgeEnabled) return ['—', 'No attempt while the bridge is paused'];
  return [until(hook.health.next_attempt_at, now), localTime(hook.health.next_attempt_at)];
}

export function renderWebhooks(consumers) {
  const now = Date.now();
  const bridgeEnabled = ctx.state.bridge?.enabled !== false;
  const tbody = $('webhooks').tBodies[0];
  const withHook = consumers.filter((c) => c.webhook);
  const seen = new Set();
  let before = tbody.firstChild;
  for (const c of withHook) {
    const hook = c.webhook;
    seen.add(c.id);
    const row = rowFor(c.id);
    row.consumer = c;
    const { tr, attemptsTr, cells } = row;
    const who = `${c.name ?? '(no name)'}\n${c.id} · ${c.tenant}`;
    if (cells.consumer.dataset.who !== who) {
      cells.consumer.dataset.who = who;
      cells.consumer.replaceChildren(
        el('div', {}, el('span', { class: 'name' }, c.name ?? '(no name)'), el('span', { class: 'mono small muted sub' }, `${c.id} · ${c.tenant}`)),
      );
    }
    setText(cells.url, `${hook.method} ${hook.url}`, hook.url);
    if (!ctx.state.pending.has(c.id)) setSwitch(cells.toggle, hook.enabled);
    cells.toggle.setAttribute('aria-label', `Webhook of ${consumerLabel(c)} enabled`);
    const [label, tone, why] = health(hook, bridgeEnabled);
    setBadge(cells.health, label, tone, why);
    setText(cells.lastSuccess, ago(hook.health.last_success_at, now), localTime(hook.health.last_success_at));
    setText(cells.lastStatus, hook.health.last_status === null ? '—' : String(hook.health.last_status));
    setText(cells.lastError, hook.health.last_error ?? '—', hook.health.last_error ?? '');
    cells.lastError.classList.toggle('error-text', hook.health.last_error !== null);
    setText(cells.failures, String(hook.health.consecutive_failures));
    const [nextText, nextWhy] = nextAttempt(hook, bridgeEnabled, now);
    setText(cells.next, nextText, nextWhy);
    if (ctx.state.openAttempts.has(c.id)) renderAttempts(cells.attempts, c, ctx.state.attempts.get(c.id), now);
    for (const node of [tr, attemptsTr]) {
      if (node !== before) tbody.insertBefore(node, before);
      before = node.nextSibling;
    }
  }
  for (const [id, row] of rows) {
    if (!seen.has(id)) {
      row.tr.remove();
      row.attemptsTr.remove();
      rows.delete(id);
      ctx.state.openAttempts.delete(id);
    }
  }
  setText($('webhook-count'), withHook.length ? String(withHook.length) : '');
  $('webhooks-empty').hidden = withHook.length > 0;
}

// ------------------------------------------------------------------------------------------
// Attempts (see 3.)

const okStatus = (d) => d.status !== null && d.status >= 200 && d.status < 300;

function renderAttempts(td, c, deliveries, now) {
  if (deliveries === undefined) return;
  if (deliveries === null) return td.replaceChildren(el('p', { class: 'error small' }, 'Could not load the attempts.'));
  if (deliveries.length === 0) return td.replaceChildren(el('p', { class: 'muted small' }, 'No attempts yet.'));
  const rowsOut = deliveries.map((d) =>
    el(
      'tr',
      { 'data-delivery': String(d.id) },
      el('td', { 'data-label': 'When', title: localTime(d.at) }, ago(d.at, now)),
      el('td', { 'data-label': 'Event', class: 'mono' }, d.event_id),
      el('td', { 'data-label': 'Attempt', class: 'num' }, String(d.attempt)),
      el('td', { 'data-label': 'Status' }, el('span', { class: `badge ${okStatus(d) ? 'ok' : 'bad'}` }, d.status === null ? 'no answer' : String(d.status))),
      el('td', { 'data-label': 'Error', ...(d.error ? { class: 'error-text' } : {}) }, d.error ?? '—'),
      el('td', { 'data-label': 'Took', class: 'num' }, `${d.duration_ms} ms`),
      el('td', { 'data-label': 'Answer', class: 'mono small answer', title: d.response ?? '' }, answerStart(d)),
      el('td', { 'data-label': 'Retry', title: localTime(d.next_attempt_at) }, moment(d.next_attempt_at, now)),
      el('td', { class: 'actions' }, el('button', { type: 'button', class: 'link detail', onclick: () => openAttempt(c, d) }, 'detail')),
    ),
  );
  const head = el('tr', {}, ...['When', 'Event', 'Attempt', 'Status', 'Error', 'Took', 'Answer', 'Retry', ''].map((h) => el('th', {}, h)));
  td.replaceChildren(
    el('p', { class: 'muted small' }, `Last ${deliveries.length} attempts, newest first`),
    el('table', { class: 'inner cards' }, el('thead', {}, head), el('tbody', {}, ...rowsOut)),
  );
}

/** The start of the receiver's answer, on one line. */
function answerStart(d) {
  if (d.response === null || d.response === undefined) return '—';
  const line = d.response.replace(/\s+/g, ' ').trim();
  return line === '' ? '(empty)' : line.slice(0, 120);
}

/** All the gateway keeps of the answer (the first KiB of the body), or why there is none. */
function answerText(d) {
  if (d.response === null || d.response === undefined) return d.status === null ? 'No answer.' : 'Not recorded.';
  return d.response === '' ? '(empty body)' : d.response;
}

const ERROR_MEANING = {
  http_status: 'the receiver answered, but not with 2xx',
  timeout: 'no answer within the webhook’s timeout',
  refused: 'the connection was refused (nothing listens there)',
  reset: 'the connection was reset before an answer',
  dns: 'the host name did not resolve',
  tls: 'the TLS handshake failed',
  target_not_allowed: 'the address is loopback, private or link-local and such targets are not allowed',
  invalid_header: 'a configured header could not be sent',
  render: 'the event could not fill the webhook’s templates',
  network: 'a network error',
};

function statusText(d) {
  if (okStatus(d)) return `${d.status}: delivered`;
  if (d.status !== null) return `${d.status}: ${ERROR_MEANING.http_status}`;
  return `no answer: ${ERROR_MEANING[d.error] ?? d.error ?? 'unknown'}`;
}

function openAttempt(c, d) {
  const facts = [
    ['Consumer', `${consumerLabel(c)} · tenant ${c.tenant}`],
    ['Target', `${c.webhook.method} ${c.webhook.url}`],
    ['Event', d.event_id],
    ['Cursor', d.cursor],
    ['Attempt', `${d.attempt} for this event`],
    ['Status', statusText(d)],
    ['Error class', d.error ?? '—'],
    ['At', `${localTime(d.at)} (${d.at})`],
    ['Took', `${d.duration_ms} ms (timeout ${c.webhook.timeout_ms} ms)`],
    ['Next attempt', d.next_attempt_at ? `${localTime(d.next_attempt_at)} (${moment(d.next_attempt_at)})` : okStatus(d) ? 'none: delivered' : 'none planned by this attempt'],
  ];
  const newest = ctx.state.attempts.get(c.id)?.[0]?.id === d.id;
  if (newest && c.webhook.health.last_error) facts.push(['Webhook’s last error', c.webhook.health.last_error]);
  $('attempt-facts').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  setText($('attempt-title'), `Attempt ${d.attempt} of ${d.event_id}`);
  setText($('attempt-response'), answerText(d));
  const payload = $('attempt-payload');
  payload.hidden = true;
  payload.replaceChildren();
  const show = /** @type {HTMLButtonElement} */ ($('attempt-event'));
  show.onclick = () => showAttemptEvent(c, d);
  show.disabled = false;
  openDialog(/** @type {HTMLDialogElement} */ ($('attempt-dialog')));
}

/** The event the attempt carried, as it is in the log (if retention kept it). */
async function showAttemptEvent(c, d) {
  const payload = $('attempt-payload');
  payload.hidden = false;
  setText(payload, 'loading…');
  try {
    const q = new URLSearchParams({ at: d.cursor });
    const page = await api(`/v1/tenants/${encodeURIComponent(c.tenant)}/events?${q}`);
    const event = page.events[0];
    setText(payload, event ? pretty(event) : 'Retention has removed this event from the log.');
  } catch (e) {
    if (e instanceof AuthError) return ctx.report(e, '');
    setText(payload, `Could not load the event: ${describeError(e)}`);
  }
}

// ------------------------------------------------------------------------------------------
// Changes (see 2.)

async function toggleWebhook(id, button) {
  const enabled = button.getAttribute('aria-checked') !== 'true';
  const c = rows.get(id)?.consumer;
  ctx.changed();
  ctx.state.pending.add(id);
  button.setAttribute('disabled', '');
  setSwitch(button, enabled);
  try {
    await api(consumerPath(id, '/webhook'), { method: 'PATCH', body: { enabled } });
    ctx.notify(`Webhook of ${c ? consumerLabel(c) : id} ${enabled ? 'resumed' : 'paused'}.`);
  } catch (error) {
    setSwitch(button, !enabled);
    ctx.report(error, `Could not change the webhook of ${c ? consumerLabel(c) : id}`);
  } finally {
    ctx.state.pending.delete(id);
    button.removeAttribute('disabled');
    ctx.refreshSoon();
  }
}

async function removeWebhook(c) {
  const ok = await confirmAction({
    title: `Remove the webhook of ${consumerLabel(c)}?`,
    body: [
      el('p', {}, `${c.webhook.method} ${c.webhook.url} will no longer receive events.`),
      el('p', {}, 'The consumer goes back to pull mode at the cursor the bridge reached: a client can poll from there, and nothing is lost.'),
    ],
    confirm: 'Remove webhook',
  });
  if (!ok) return;
  ctx.changed();
  try {
    await api(consumerPath(c.id, '/webhook'), { method: 'DELETE' });
    ctx.notify(`Removed the webhook of ${consumerLabel(c)}; it is in pull mode.`);
  } catch (error) {
    ctx.report(error, `Could not remove the webhook of ${consumerLabel(c)}`);
  } finally {
    ctx.refreshSoon();
  }
}
