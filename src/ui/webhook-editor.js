/**
 * The webhook editor of the ops page: a webhook's whole delivery shape (method, URL template,
 * format, body template, headers, credentials, signing, missing-path policy, retries, rate
 * limit, alerts), and trying the form before saving it: the request one event would make
 * (preview), or a test event sent now with the receiver's answer (test).
 *
 * 1. Saving sends the whole form as a PUT: the form is the webhook. A PATCH cannot take back an
 *    explicit format, which a GET or DELETE without a body template needs. `enabled` is not in
 *    the form of an existing webhook (its switch in the list owns it): it is read from the
 *    gateway just before the PUT, so an edit neither resumes nor pauses anything.
 * 2. Credentials (auth, the shared-secret header) are write-only: the form says which kind is
 *    set and its names (a username, a header name), never a value. The operator keeps it (the
 *    field is left out, and the gateway keeps what it has), replaces it, or removes it (null).
 * 3. A refusal names a field (`body`, `webhook.body`, `retry.schedule[1]`, `auth.password`):
 *    its message goes under that field; a template problem's position ("at position N",
 *    "line L, column C") is selected in it.
 * 4. Preview and test send the form's fields as `webhook` (unsaved) with a sample event, or an
 *    event of the tenant by its cursor. What comes back is written as text; the gateway has
 *    already replaced credentials by •••.
 */
import { api, ApiError, consumerPath, describeError } from './api.js';
import { openDialog, showSecret } from './dialogs.js';
import { $, consumerLabel, el, setText } from './dom.js';

/** @type {any} the page's shared context (app.js) */
let ctx;

/** The consumer whose webhook the editor is for (its .webhook is null for a new one). */
let editing = null;

const field = (id) => /** @type {HTMLInputElement} */ ($(id));

export function initWebhookEditor(context) {
  ctx = context;
  $('webhook-form').addEventListener('submit', saveWebhook);
  $('hook-auth').addEventListener('change', showCredentialFields);
  $('hook-sh').addEventListener('change', showCredentialFields);
  $('hook-preview').addEventListener('click', () => tryWebhook('preview'));
  $('hook-test').addEventListener('click', () => tryWebhook('test'));
  // Editing a refused field takes its refusal away: what it says is about the old text.
  $('webhook-form').addEventListener('input', (event) => clearFieldError(/** @type {HTMLElement} */ (event.target)));
}

// ------------------------------------------------------------------------------------------
// Filling the form

const AUTH_KINDS = { basic: 'basic (username and password)', bearer: 'bearer token', api_key: 'API key' };

function describeAuth(auth) {
  if (auth.type === 'basic') return `basic, username ${auth.username}, password set`;
  if (auth.type === 'bearer') return 'bearer token set';
  return `API key ${auth.name} in the ${auth.in}, value set`;
}

/** Opens the editor: empty for a new webhook, filled in to edit one. */
export function openWebhookEditor(c) {
  editing = c;
  const hook = c.webhook;
  setText($('webhook-title'), hook ? `Edit the webhook of ${consumerLabel(c)}` : `Add a webhook to ${consumerLabel(c)}`);
  setText(
    $('webhook-intro'),
    hook
      ? 'Changes apply to the next attempt; a waiting event is retried at once.'
      : `Puts the consumer in push mode: events of tenant ${c.tenant} after its cursor are delivered here, in order. The signing secret is shown once.`,
  );
  field('hook-url').value = hook?.url ?? '';
  field('hook-url').placeholder = 'https://example.com/hooks/pollgate';
  field('hook-method').value = hook?.method ?? 'POST';
  field('hook-timeout').value = String(hook?.timeout_ms ?? 10000);
  field('hook-format').value = hook?.format ?? 'json';
  field('hook-body').value = hook?.body ?? '';
  field('hook-headers').value = hook ? Object.entries(hook.headers).map(([k, v]) => `${k}: ${v}`).join('\n') : '';
  fillCredentials(hook);
  field('hook-signing').checked = hook?.signing ?? true;
  field('hook-missing').value = hook?.missing ?? 'empty';
  field('hook-retry-schedule').value = hook?.retry?.schedule?.join(', ') ?? '';
  field('hook-retry-max-age').value = hook?.retry?.max_age ?? '';
  field('hook-rate-limit').value = hook?.rate_limit == null ? '' : String(hook.rate_limit);
  const alertsOn = hook?.alerts?.enabled;
  field('hook-alerts').value = alertsOn === true ? 'on' : alertsOn === false ? 'off' : '';
  field('hook-alert-failures').value = hook?.alerts?.failures == null ? '' : String(hook.alerts.failures);
  field('hook-alert-window').value = hook?.alerts?.window ?? '';
  if (!field('hook-try-data').value.trim()) field('hook-try-data').value = '{"message": "a test event from pollgate"}';
  $('hook-try-result').replaceChildren();
  /** @type {HTMLDetailsElement} */ ($('hook-auth-section')).open = Boolean(hook?.auth || hook?.secret_header);
  /** @type {HTMLDetailsElement} */ ($('hook-policy-section')).open = Boolean(
    hook && (hook.signing === false || hook.missing === 'fail' || hook.retry || hook.rate_limit != null || hook.alerts),
  );
  field('hook-enabled').checked = hook ? hook.enabled : true;
  $('hook-enabled-row').hidden = Boolean(hook);
  setText($('webhook-submit'), hook ? 'Save' : 'Add webhook');
  clearErrors();
  openDialog(/** @type {HTMLDialogElement} */ ($('webhook-dialog')));
  field('hook-url').focus();
}

/** The credential selects: keep (when one is set), none / remove, or a new one (see 2.). */
function fillCredentials(hook) {
  const auth = hook?.auth ?? null;
  $('hook-auth').replaceChildren(
    ...(auth ? [el('option', { value: 'keep' }, `keep what is set (${AUTH_KINDS[auth.type]})`)] : []),
    el('option', { value: 'none' }, auth ? 'none: remove what is set' : 'none'),
    ...Object.entries(AUTH_KINDS).map(([value, text]) => el('option', { value }, auth ? `replace with ${text}` : text)),
  );
  field('hook-auth').value = auth ? 'keep' : 'none';
  setState('hook-auth-state', auth && `Set: ${describeAuth(auth)}. The value is never shown; to change it, replace it.`);
  field('hook-auth-username').value = auth?.type === 'basic' ? auth.username : '';
  field('hook-auth-in').value = auth?.type === 'api_key' ? auth.in : 'header';
  field('hook-auth-name').value = auth?.type === 'api_key' ? auth.name : '';
  for (const id of ['hook-auth-password', 'hook-auth-token', 'hook-auth-value', 'hook-sh-value']) field(id).value = '';

  const secret = hook?.secret_header ?? null;
  $('hook-sh').replaceChildren(
    ...(secret ? [el('option', { value: 'keep' }, `keep what is set (${secret.name})`)] : []),
    el('option', { value: 'none' }, secret ? 'none: remove what is set' : 'none'),
    el('option', { value: 'set' }, secret ? 'replace it' : 'send one'),
  );
  field('hook-sh').value = secret ? 'keep' : 'none';
  setState('hook-sh-state', secret && `Set: ${secret.name}, value set. The value is never shown; to change it, replace it.`);
  field('hook-sh-name').value = secret?.name ?? '';
  const summary = [auth && describeAuth(auth), secret && `${secret.name} header set`].filter(Boolean).join(' · ');
  setText($('hook-auth-summary'), summary ? `(${summary})` : '(none)');
  showCredentialFields();
}

function setState(id, text) {
  $(id).hidden = !text;
  setText($(id), text ?? '');
}

function showCredentialFields() {
  const kind = field('hook-auth').value;
  for (const k of Object.keys(AUTH_KINDS)) $(`hook-auth-${k}`).hidden = kind !== k;
  $('hook-sh-fields').hidden = field('hook-sh').value !== 'set';
}

// ------------------------------------------------------------------------------------------
// Reading the form

/** A problem found on the page, named like the gateway names them. */
class FieldError extends Error {
  constructor(name, problem) {
    super(`${name}: ${problem}`);
    this.field = name;
  }
}

/** "Name: value" lines as an object; a FieldError names the line that is not one. */
function parseHeaders(text) {
  const headers = {};
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new FieldError('headers', `line ${i + 1}: write "Name: value".`);
    headers[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  });
  return headers;
}

/** The webhook the form describes, as PUT (and, unsaved, preview and test) take it. */
function readWebhook() {
  const url = field('hook-url').value.trim();
  if (!url) throw new FieldError('url', 'enter where to deliver, e.g. https://example.com/hooks/pollgate.');
  const method = field('hook-method').value;
  const bodyText = field('hook-body').value;
  const body = bodyText.trim() ? bodyText : null;
  const webhook = { url, method, headers: parseHeaders(field('hook-headers').value), body };
  // A GET or DELETE without a body template takes no format (the gateway refuses one).
  if (body !== null || (method !== 'GET' && method !== 'DELETE')) webhook.format = field('hook-format').value;
  const timeout = field('hook-timeout').value.trim();
  if (timeout) webhook.timeout_ms = Number(timeout);

  const auth = field('hook-auth').value;
  if (auth === 'none') webhook.auth = null;
  if (auth === 'basic') webhook.auth = { type: 'basic', username: field('hook-auth-username').value, password: field('hook-auth-password').value };
  if (auth === 'bearer') webhook.auth = { type: 'bearer', token: field('hook-auth-token').value };
  if (auth === 'api_key') {
    webhook.auth = { type: 'api_key', in: field('hook-auth-in').value, name: field('hook-auth-name').value.trim(), value: field('hook-auth-value').value };
  }
  const secret = field('hook-sh').value;
  if (secret === 'none') webhook.secret_header = null;
  if (secret === 'set') webhook.secret_header = { name: field('hook-sh-name').value.trim(), value: field('hook-sh-value').value };

  webhook.signing = field('hook-signing').checked;
  webhook.missing = field('hook-missing').value;
  const schedule = field('hook-retry-schedule').value.split(/[\s,]+/).filter(Boolean);
  const maxAge = field('hook-retry-max-age').value.trim();
  webhook.retry = schedule.length || maxAge ? { ...(schedule.length ? { schedule } : {}), ...(maxAge ? { max_age: maxAge } : {}) } : null;
  const rate = field('hook-rate-limit').value.trim();
  webhook.rate_limit = rate ? Number(rate) : null;
  const alerts = field('hook-alerts').value;
  const failures = field('hook-alert-failures').value.trim();
  const window = field('hook-alert-window').value.trim();
  webhook.alerts =
    alerts || failures || window
      ? { ...(alerts ? { enabled: alerts === 'on' } : {}), ...(failures ? { failures: Number(failures) } : {}), ...(window ? { window } : {}) }
      : null;
  return webhook;
}

/** Which event preview and test use: one of the tenant by cursor, or a sample. */
function readTryEvent() {
  const cursor = field('hook-try-cursor').value.trim();
  if (cursor) return { cursor };
  const type = field('hook-try-type').value.trim();
  const dataText = field('hook-try-data').value.trim();
  let data;
  if (dataText) {
    try {
      data = JSON.parse(dataText);
    } catch (error) {
      throw new FieldError('event.data', `is not JSON (${error.message})`);
    }
  }
  const event = { ...(type ? { type } : {}), ...(data !== undefined ? { data } : {}) };
  return Object.keys(event).length ? { event } : {};
}

// ------------------------------------------------------------------------------------------
// Refusals under their field (see 3.)

/** The gateway's field names (in a PUT, or under `webhook` in a preview) to the form's inputs. */
const FIELD_INPUTS = {
  url: 'hook-url',
  method: 'hook-method',
  format: 'hook-format',
  body: 'hook-body',
  headers: 'hook-headers',
  timeout_ms: 'hook-timeout',
  enabled: 'hook-enabled',
  auth: 'hook-auth',
  'auth.username': 'hook-auth-username',
  'auth.password': 'hook-auth-password',
  'auth.token': 'hook-auth-token',
  'auth.in': 'hook-auth-in',
  'auth.name': 'hook-auth-name',
  'auth.value': 'hook-auth-value',
  secret_header: 'hook-sh',
  'secret_header.name': 'hook-sh-name',
  'secret_header.value': 'hook-sh-value',
  signing: 'hook-signing',
  missing: 'hook-missing',
  retry: 'hook-retry-schedule',
  'retry.max_age': 'hook-retry-max-age',
  rate_limit: 'hook-rate-limit',
  alerts: 'hook-alerts',
  'alerts.failures': 'hook-alert-failures',
  'alerts.window': 'hook-alert-window',
  cursor: 'hook-try-cursor',
  event: 'hook-try-data',
  'event.type': 'hook-try-type',
};

/** The input a field name points at: the longest known prefix of its path. */
function inputFor(name) {
  let path = String(name ?? '').replace(/^webhook\./, '').replace(/\[\d+\]/g, '');
  while (path) {
    if (FIELD_INPUTS[path]) return $(FIELD_INPUTS[path]);
    const dot = path.lastIndexOf('.');
    path = dot === -1 ? '' : path.slice(0, dot);
  }
  return null;
}

function clearErrors() {
  for (const node of $('webhook-form').querySelectorAll('.field-error')) {
    /** @type {HTMLElement} */ (node).hidden = true;
    node.textContent = '';
  }
  for (const node of $('webhook-form').querySelectorAll('[aria-invalid]')) node.removeAttribute('aria-invalid');
  showFormError(null);
}

function clearFieldError(input) {
  if (!input.hasAttribute('aria-invalid')) return;
  input.removeAttribute('aria-invalid');
  const node = $(`${input.id}-error`);
  if (node) {
    node.hidden = true;
    node.textContent = '';
  }
}

function showFormError(message) {
  const node = $('webhook-error');
  node.hidden = !message;
  setText(node, message ?? '');
}

/** Writes a message under an input (its .field), opens its section and points at the position. */
function showFieldError(input, message) {
  const id = `${input.id}-error`;
  let node = $(id);
  if (!node) {
    node = el('p', { id, class: 'field-error error-text small', role: 'alert' });
    (input.closest('.field') ?? input.parentElement).append(node);
  }
  setText(node, message);
  node.hidden = false;
  input.setAttribute('aria-invalid', 'true');
  input.setAttribute('aria-describedby', id);
  const section = /** @type {HTMLDetailsElement | null} */ (input.closest('details'));
  if (section) section.open = true;
  input.focus();
  selectPosition(input, message);
}

/** Selects the character a template problem points at ("at position 12", "line 2, column 5"). */
function selectPosition(input, message) {
  if (!(input instanceof HTMLTextAreaElement) && input.type !== 'text') return;
  const at = /at position (\d+)\)/.exec(message);
  const lineCol = /\(line (\d+), column (\d+)\)/.exec(message);
  let offset;
  if (at) offset = Number(at[1]) - 1;
  else if (lineCol) {
    const before = input.value.split('\n').slice(0, Number(lineCol[1]) - 1);
    offset = before.reduce((n, line) => n + line.length + 1, 0) + Number(lineCol[2]) - 1;
  } else return;
  const start = Math.max(0, Math.min(offset, input.value.length));
  input.setSelectionRange(start, Math.min(start + 1, input.value.length));
}

/** A refusal under its field when it names one this form has; otherwise `inline`, or the banner. */
function showError(error, what, inline = showFormError) {
  const name = error instanceof FieldError || error instanceof ApiError ? error.field : null;
  const input = name ? inputFor(name) : null;
  if (input) return showFieldError(input, error instanceof FieldError ? error.message : describeError(error));
  if (error instanceof FieldError) return inline(error.message);
  ctx.report(error, what, inline);
}

// ------------------------------------------------------------------------------------------
// Saving (see 1.)

async function saveWebhook(event) {
  event.preventDefault();
  const c = editing;
  if (!c) return;
  clearErrors();
  let body;
  try {
    body = readWebhook();
  } catch (e) {
    return showError(e, 'Could not save the webhook');
  }
  const submit = /** @type {HTMLButtonElement} */ ($('webhook-submit'));
  submit.disabled = true;
  ctx.changed();
  try {
    body.enabled = c.webhook ? (await api(consumerPath(c.id, '/webhook'))).enabled : field('hook-enabled').checked;
    const saved = await api(consumerPath(c.id, '/webhook'), { method: 'PUT', body });
    /** @type {HTMLDialogElement} */ ($('webhook-dialog')).close('ok');
    ctx.refreshSoon();
    if (saved.secret) {
      await showSecret({
        title: `Signing secret of the webhook of ${consumerLabel(c)}`,
        note: 'Shown only now. The receiver verifies the webhook-signature header with it (Standard Webhooks).',
        value: saved.secret,
      });
    } else {
      ctx.notify(`Saved the webhook of ${consumerLabel(c)}.`);
    }
  } catch (e) {
    showError(e, 'Could not save the webhook');
  } finally {
    submit.disabled = false;
    ctx.refreshSoon();
  }
}

// ------------------------------------------------------------------------------------------
// Preview and test (see 4.)

async function tryWebhook(kind) {
  const c = editing;
  if (!c) return;
  clearErrors();
  const result = $('hook-try-result');
  const inline = (message) => result.replaceChildren(el('p', { class: 'error-text small try-error' }, message));
  const what = kind === 'preview' ? 'Could not preview the webhook' : 'Could not send the test event';
  let body;
  try {
    body = { webhook: readWebhook(), ...readTryEvent() };
  } catch (e) {
    result.replaceChildren();
    return showError(e, what, inline);
  }
  const buttons = [/** @type {HTMLButtonElement} */ ($('hook-preview')), /** @type {HTMLButtonElement} */ ($('hook-test'))];
  for (const b of buttons) b.disabled = true;
  result.replaceChildren(el('p', { class: 'muted small' }, kind === 'preview' ? 'rendering…' : 'sending…'));
  try {
    const answer = await api(consumerPath(c.id, `/webhook/${kind}`), { method: 'POST', body });
    result.dataset.kind = kind;
    result.replaceChildren(...(kind === 'preview' ? previewView(answer) : testView(answer)).filter(Boolean));
    result.scrollIntoView({ block: 'nearest' });
  } catch (e) {
    result.replaceChildren();
    showError(e, what, inline);
  } finally {
    for (const b of buttons) b.disabled = false;
  }
}

const eventLine = (e) => (e.cursor ? `event ${e.id} (${e.type}, cursor ${e.cursor})` : `sample event ${e.id} (${e.type})`);

function headerList(headers, cls) {
  const entries = Object.entries(headers);
  if (entries.length === 0) return el('p', { class: `muted small ${cls}` }, 'No headers.');
  return el('dl', { class: `facts ${cls}` }, ...entries.flatMap(([name, value]) => [el('dt', {}, name), el('dd', { class: 'mono' }, value)]));
}

function requestView(request) {
  return [
    el('p', { class: 'request-line' }, `${request.method} ${request.url}`),
    headerList(request.headers, 'try-headers'),
    request.body === null ? el('p', { class: 'muted small try-body' }, 'No body.') : el('pre', { class: 'payload try-body' }, request.body),
  ];
}

function previewView(preview) {
  if (!preview.request) {
    return [
      el('h3', {}, `Preview for the ${eventLine(preview.event)}`),
      el('p', { class: 'error-text try-error' }, `Cannot render: ${preview.error}`),
      el('p', { class: 'muted small' }, 'A delivery of this event would fail with error “render”.'),
    ];
  }
  return [el('h3', {}, `Preview: the request for the ${eventLine(preview.event)}, not sent`), ...requestView(preview.request)];
}

function testView(test) {
  const status = test.status === null ? 'no answer' : String(test.status);
  const problem = test.error ? ` · error ${test.error}${test.detail ? `: ${test.detail}` : ''}` : '';
  const response = test.response;
  return [
    el('h3', {}, `Test: sent the ${eventLine(test.event)}`),
    el('p', { class: 'try-outcome' }, el('span', { class: `badge ${test.ok ? 'ok' : 'bad'} try-status` }, status), ` in ${test.duration_ms} ms${problem}`),
    el('h3', {}, 'The answer'),
    ...(response
      ? [
          headerList(response.headers, 'try-response-headers'),
          el('pre', { class: 'payload try-response-body' }, response.body === '' ? '(empty body)' : response.body),
          response.truncated ? el('p', { class: 'muted small' }, 'Only the first KiB of the body is shown.') : null,
        ]
      : [el('p', { class: 'muted small try-response-body' }, 'No answer.')]),
    ...(test.request ? [el('h3', {}, 'The request sent'), ...requestView(test.request)] : []),
  ];
}
