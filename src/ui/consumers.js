/**
 * Consumers on the ops page: the list (lag, cursor, held polls, the filter in words), creating
 * one (its key shown once), and per consumer a panel to seek, rotate the key, add a webhook or
 * delete it.
 *
 * 1. Rows are keyed by consumer id and updated in place (only changed text is written), so
 *    focus, an open panel, what is typed into its form and the scroll position survive every
 *    refresh. A panel's handlers read the consumer from its row, never from a stale closure.
 * 2. What cannot be undone or skips events asks first (delete, rotate, seek), naming the
 *    consumer by name and id and saying what will happen.
 * 3. Keys are shown once, in the secret dialog, and kept nowhere on the page.
 */
import { api, consumerPath } from './api.js';
import { confirmAction, openDialog, showSecret } from './dialogs.js';
import { $, ago, consumerLabel, count, describeFilter, el, localTime, plural, setBadge, setText } from './dom.js';
import { browseTenant } from './events.js';
import { openWebhookEditor } from './webhook-editor.js';

export const PAGE_SIZE = 50;
const API_PAGE_MAX = 1000;

/** @type {any} the page's shared context (app.js) */
let ctx;

/** Consumer id -> { tr, detailTr, cells, panel, consumer }. */
const rows = new Map();

export function initConsumers(context) {
  ctx = context;
  $('new-consumer').addEventListener('click', openCreate);
  $('consumer-form').addEventListener('submit', createConsumer);
  wireStart($('new-start'), $('new-start-value'));
}

/** The first `want` consumers (of the tenant, if filtered), in id order. */
export async function loadConsumers(state) {
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

// ------------------------------------------------------------------------------------------
// The list

function cell(label, attrs = {}, ...children) {
  return el('td', { 'data-label': label, ...attrs }, ...children);
}

function rowFor(id) {
  let row = rows.get(id);
  if (row) return row;
  const manage = el('button', { type: 'button', class: 'manage', 'aria-expanded': 'false' }, 'Manage');
  const cells = {
    id: cell('ID', { class: 'mono id' }),
    name: cell('Name', { class: 'name' }),
    tenant: cell('Tenant', { class: 'tenant' }),
    filter: cell('Filter', { class: 'filter-cell' }),
    mode: el('span'),
    lag: cell('Lag', { class: 'num lag' }),
    cursor: cell('Cursor', { class: 'mono cursor' }),
    lastPoll: cell('Last poll', { class: 'last-poll' }),
    held: el('span'),
  };
  const tr = el(
    'tr',
    { 'data-id': id },
    cells.id,
    cells.name,
    cells.tenant,
    cells.filter,
    cell('Mode', { class: 'mode' }, cells.mode),
    cells.lag,
    cells.cursor,
    cells.lastPoll,
    cell('Held now', { class: 'held' }, cells.held),
    el('td', { class: 'actions' }, manage),
  );
  const panel = buildPanel(id);
  const detailTr = el('tr', { class: 'detail-row', 'data-detail-for': id }, el('td', { colspan: '10' }, panel.node));
  detailTr.hidden = true;
  manage.addEventListener('click', () => {
    const open = !ctx.state.openDetails.has(id);
    if (open) ctx.state.openDetails.add(id);
    else ctx.state.openDetails.delete(id);
    manage.setAttribute('aria-expanded', String(open));
    detailTr.hidden = !open;
  });
  row = { tr, detailTr, cells, panel, consumer: null };
  rows.set(id, row);
  return row;
}

export function renderConsumers({ consumers, more }) {
  const now = Date.now();
  const tbody = $('consumers').tBodies[0];
  const seen = new Set();
  let before = tbody.firstChild;
  for (const c of consumers) {
    seen.add(c.id);
    const row = rowFor(c.id);
    row.consumer = c;
    const { cells } = row;
    setText(cells.id, c.id);
    setText(cells.name, c.name ?? '—');
    setText(cells.tenant, c.tenant);
    const filter = describeFilter(c.filter);
    setText(cells.filter, filter, filter);
    setBadge(cells.mode, c.mode, c.mode === 'push' ? 'info' : 'neutral');
    setText(cells.lag, count(c.lag), `${c.lag} events after the committed cursor`);
    if (cells.lag.dataset.lag !== String(c.lag)) cells.lag.dataset.lag = String(c.lag);
    setText(cells.cursor, c.cursor, c.cursor);
    setText(cells.lastPoll, ago(c.last_poll_at, now), localTime(c.last_poll_at));
    if (c.polling) setBadge(cells.held, 'polling', 'ok', 'A long poll is held right now');
    else setBadge(cells.held, '—', 'none', 'No poll held right now');
    renderPanel(row.panel, c);
    for (const node of [row.tr, row.detailTr]) {
      if (node !== before) tbody.insertBefore(node, before);
      before = node.nextSibling;
    }
  }
  for (const [id, row] of rows) {
    if (!seen.has(id)) {
      row.tr.remove();
      row.detailTr.remove();
      rows.delete(id);
      ctx.state.openDetails.delete(id);
    }
  }
  const scope = ctx.state.tenant ? ` of tenant ${ctx.state.tenant}` : '';
  setText($('consumer-count'), consumers.length ? `${consumers.length}${more ? '+' : ''} shown${scope}` : '');
  const empty = $('consumers-empty');
  empty.hidden = consumers.length > 0;
  setText(empty, ctx.state.tenant ? `No consumers for tenant ${ctx.state.tenant}.` : 'No consumers yet: create one with “New consumer”.');
  const moreButton = $('more');
  moreButton.hidden = !more;
  setText(moreButton, `Show ${PAGE_SIZE} more`);
}

/** Forgets a deleted consumer's row at once (the next refresh would too). */
function dropRow(id) {
  const row = rows.get(id);
  if (!row) return;
  row.tr.remove();
  row.detailTr.remove();
  rows.delete(id);
  ctx.state.openDetails.delete(id);
}

// ------------------------------------------------------------------------------------------
// A consumer's panel (see 1.)

function buildPanel(id) {
  const current = () => rows.get(id)?.consumer;
  const facts = {
    filter: el('dd', { class: 'filter-text' }),
    cursor: el('dd', { class: 'mono' }),
    webhook: el('dd', { class: 'webhook-text' }),
    created: el('dd'),
  };
  const seekTo = el(
    'select',
    { class: 'seek-to', 'aria-label': 'Seek to' },
    el('option', { value: 'earliest' }, 'the earliest retained event'),
    el('option', { value: 'latest' }, 'the latest event (skip the backlog)'),
    el('option', { value: 'cursor' }, 'after a cursor'),
    el('option', { value: 'time' }, 'a time'),
  );
  const seekValue = el('input', { class: 'seek-value', type: 'text', spellcheck: 'false', 'aria-label': 'Seek value' });
  seekValue.hidden = true;
  wireStart(seekTo, seekValue);
  const error = el('p', { class: 'error-text small panel-error', role: 'alert' });
  error.hidden = true;
  const seekForm = el(
    'form',
    { class: 'seek', novalidate: true },
    el('label', {}, 'Move the cursor to '),
    seekTo,
    seekValue,
    el('button', { type: 'submit', class: 'seek-submit' }, 'Seek…'),
  );
  seekForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const c = current();
    if (c) seek(c, seekTo.value, seekValue.value, error);
  });
  const webhookButton = el('button', { type: 'button', class: 'webhook-edit' }, 'Add webhook…');
  webhookButton.addEventListener('click', () => {
    const c = current();
    if (c) openWebhookEditor(c);
  });
  const eventsButton = el('button', { type: 'button', class: 'browse' }, 'Events of its tenant');
  eventsButton.addEventListener('click', () => {
    const c = current();
    if (!c) return;
    browseTenant(c.tenant);
    $('events-card').scrollIntoView({ block: 'start' });
  });
  const rotateButton = el('button', { type: 'button', class: 'rotate' }, 'Rotate key…');
  rotateButton.addEventListener('click', () => {
    const c = current();
    if (c) rotate(c, error);
  });
  const deleteButton = el('button', { type: 'button', class: 'danger delete' }, 'Delete consumer…');
  deleteButton.addEventListener('click', () => {
    const c = current();
    if (c) remove(c, error);
  });
  const node = el(
    'div',
    { class: 'panel' },
    el(
      'dl',
      { class: 'facts' },
      el('dt', {}, 'Filter'),
      facts.filter,
      el('dt', {}, 'Committed cursor'),
      facts.cursor,
      el('dt', {}, 'Webhook'),
      facts.webhook,
      el('dt', {}, 'Created'),
      facts.created,
    ),
    seekForm,
    el('div', { class: 'buttons' }, webhookButton, eventsButton, rotateButton, deleteButton),
    error,
  );
  return { node, facts, webhookButton };
}

function renderPanel(panel, c) {
  setText(panel.facts.filter, describeFilter(c.filter), c.filter ? JSON.stringify(c.filter) : 'no filter');
  setText(panel.facts.cursor, c.cursor);
  setText(panel.facts.webhook, c.webhook ? `${c.webhook.method} ${c.webhook.url}${c.webhook.enabled ? '' : ' (paused)'}` : 'none: pull mode');
  setText(panel.facts.created, localTime(c.created_at));
  setText(panel.webhookButton, c.webhook ? 'Edit webhook…' : 'Add webhook…');
}

function showPanelError(node, message) {
  node.hidden = !message;
  setText(node, message ?? '');
}

/** A start/seek position from a select and its input: "earliest", "latest", {cursor}, {time}. */
function positionOf(kind, value) {
  if (kind === 'earliest' || kind === 'latest') return kind;
  if (!value.trim()) throw new Error(kind === 'cursor' ? 'Enter a cursor.' : 'Enter a time.');
  if (kind === 'cursor') return { cursor: value.trim() };
  const time = new Date(value);
  if (Number.isNaN(time.getTime())) throw new Error('Enter a time, e.g. 2026-11-22T10:00.');
  return { time: time.toISOString() };
}

/** Shows the value input only for a cursor or a time, of the matching type. */
function wireStart(select, input) {
  const sync = () => {
    const kind = select.value;
    input.hidden = kind !== 'cursor' && kind !== 'time';
    const type = kind === 'time' ? 'datetime-local' : 'text';
    if (input.type !== type) {
      input.type = type;
      input.value = '';
    }
    input.placeholder = kind === 'cursor' ? 't0000000000000042' : '';
  };
  select.addEventListener('change', sync);
  sync();
}

async function seek(c, kind, value, error) {
  let to;
  try {
    to = positionOf(kind, value);
  } catch (e) {
    return showPanelError(error, e.message);
  }
  showPanelError(error, null);
  const what = {
    earliest: `It will read every retained event of tenant ${c.tenant} again.`,
    latest: `It skips the ${plural(c.lag, 'event')} it has not read yet and goes on with new ones.`,
    cursor: `It will read the events after ${value.trim()}.`,
    time: `It will read the events committed at or after ${value ? new Date(value).toLocaleString() : ''}.`,
  }[kind];
  const ok = await confirmAction({
    title: `Move the cursor of ${consumerLabel(c)}?`,
    body: [el('p', {}, what), el('p', { class: 'muted' }, 'A poll it holds now ends; its client polls again from the new cursor.')],
    confirm: 'Seek',
    danger: kind === 'latest',
  });
  if (!ok) return;
  ctx.changed();
  try {
    const moved = await api(consumerPath(c.id, '/seek'), { method: 'POST', body: { to } });
    ctx.notify(`Cursor of ${consumerLabel(c)} moved to ${moved.cursor}: ${plural(moved.lag, 'event')} to read.`);
  } catch (e) {
    ctx.report(e, `Could not seek ${consumerLabel(c)}`, (message) => showPanelError(error, message));
  } finally {
    ctx.refreshSoon();
  }
}

async function rotate(c, error) {
  showPanelError(error, null);
  const ok = await confirmAction({
    title: `Rotate the key of ${consumerLabel(c)}?`,
    body: [
      el('p', {}, 'The current key stops working at once: a client polling with it gets 401 until it is given the new key.'),
      el('p', { class: 'muted' }, 'The new key is shown once, on the next screen.'),
    ],
    confirm: 'Rotate key',
  });
  if (!ok) return;
  ctx.changed();
  try {
    const rotated = await api(consumerPath(c.id, '/key'), { method: 'POST' });
    await showSecret({
      title: `New key of ${consumerLabel(c)}`,
      note: 'Shown only now: pollgate keeps only a hash of it. Hand it to the client that polls; the old key no longer works.',
      value: rotated.key,
    });
  } catch (e) {
    ctx.report(e, `Could not rotate the key of ${consumerLabel(c)}`, (message) => showPanelError(error, message));
  } finally {
    ctx.refreshSoon();
  }
}

async function remove(c, error) {
  showPanelError(error, null);
  const body = [
    el('p', {}, `Consumer ${consumerLabel(c)} of tenant ${c.tenant} will be deleted: its key stops working and its cursor is forgotten.`),
  ];
  if (c.webhook) body.push(el('p', {}, `Its webhook (${c.webhook.method} ${c.webhook.url}) and its attempt log go with it.`));
  body.push(el('p', { class: 'muted' }, 'The events stay in the log. This cannot be undone.'));
  const ok = await confirmAction({ title: `Delete ${consumerLabel(c)}?`, body, confirm: 'Delete consumer' });
  if (!ok) return;
  ctx.changed();
  try {
    await api(consumerPath(c.id), { method: 'DELETE' });
    dropRow(c.id);
    ctx.notify(`Deleted consumer ${consumerLabel(c)}.`);
  } catch (e) {
    ctx.report(e, `Could not delete ${consumerLabel(c)}`, (message) => showPanelError(error, message));
  } finally {
    ctx.refreshSoon();
  }
}

// ------------------------------------------------------------------------------------------
// Creating a consumer (see 3.)

function openCreate() {
  const form = /** @type {HTMLFormElement} */ ($('consumer-form'));
  form.reset();
  $('new-start').dispatchEvent(new Event('change'));
  /** @type {HTMLInputElement} */ ($('new-tenant')).value = ctx.state.tenant;
  showFormError(null);
  openDialog(/** @type {HTMLDialogElement} */ ($('consumer-dialog')));
  (ctx.state.tenant ? $('new-name') : $('new-tenant')).focus();
}

function showFormError(message) {
  const node = $('consumer-error');
  node.hidden = !message;
  setText(node, message ?? '');
}

/** The POST body from the form, or an Error saying which field is wrong. */
function createBody() {
  const value = (id) => /** @type {HTMLInputElement} */ ($(id)).value.trim();
  const body = { tenant: value('new-tenant') };
  if (!body.tenant) throw new Error('tenant: enter the tenant whose events it reads.');
  if (value('new-name')) body.name = value('new-name');
  const raw = value('new-filter');
  const types = value('new-types').split(',').map((t) => t.trim()).filter(Boolean);
  if (raw) {
    try {
      body.filter = JSON.parse(raw);
    } catch (e) {
      throw new Error(`filter: not JSON (${e.message}).`);
    }
  } else if (types.length) {
    body.filter = { types };
  }
  const start = positionOf(value('new-start'), /** @type {HTMLInputElement} */ ($('new-start-value')).value);
  if (start !== 'latest') body.start = start;
  return body;
}

async function createConsumer(event) {
  event.preventDefault();
  let body;
  try {
    body = createBody();
  } catch (e) {
    return showFormError(e.message);
  }
  const submit = /** @type {HTMLButtonElement} */ ($('consumer-submit'));
  submit.disabled = true;
  ctx.changed();
  try {
    const created = await api('/v1/consumers', { method: 'POST', body });
    /** @type {HTMLDialogElement} */ ($('consumer-dialog')).close('ok');
    ctx.refreshSoon();
    await showSecret({
      title: `Key of ${consumerLabel(created)}`,
      note: `Shown only now: pollgate keeps only a hash of it. The client polls tenant ${created.tenant} with it (Authorization: Bearer …). Lost keys are rotated, not recovered.`,
      value: created.key,
    });
  } catch (e) {
    ctx.report(e, 'Could not create the consumer', showFormError);
  } finally {
    submit.disabled = false;
    ctx.refreshSoon();
  }
}
