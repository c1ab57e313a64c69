/**
 * The event browser: one tenant's events, newest first, optionally of some types, each opening
 * to its payload pretty-printed. Reads GET /v1/tenants/:tenant/events, which moves no cursor.
 *
 * 1. Not part of the 2-second refresh: a list being read does not move under the reader.
 *    "Show" loads the newest page again; "Older events" pages back with the answer's `next`.
 * 2. The gateway examines a bounded number of events per request, so a rare type can come back
 *    short or empty with more to look at further back; the page says so instead of "no events".
 * 3. An answer to an older query (another tenant, another filter) is dropped when it arrives.
 */
import { api, AuthError, describeError } from './api.js';
import { $, ago, el, localTime, plural, pretty, setText } from './dom.js';

const PAGE = 50;
const TENANT = /^[A-Za-z0-9._-]{1,64}$/;

/** @type {any} the page's shared context (app.js) */
let ctx;

const browser = { tenant: '', type: '', next: null, shown: 0, query: 0 };

export function initEvents(context) {
  ctx = context;
  $('events-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const tenant = /** @type {HTMLInputElement} */ ($('events-tenant')).value.trim();
    const type = /** @type {HTMLInputElement} */ ($('events-type')).value.trim();
    if (!TENANT.test(tenant)) return showError('A tenant is 1 to 64 characters of A-Z a-z 0-9 . _ -');
    browser.tenant = tenant;
    browser.type = type;
    load(false);
  });
  $('events-older').addEventListener('click', () => load(true));
}

/** Opens the browser on a tenant (from a consumer's panel, say). */
export function browseTenant(tenant) {
  /** @type {HTMLInputElement} */ ($('events-tenant')).value = tenant;
  $('events-form').requestSubmit();
}

function showError(message) {
  const node = $('events-error');
  node.hidden = !message;
  setText(node, message ?? '');
}

async function load(older) {
  const query = older ? browser.query : ++browser.query;
  const q = new URLSearchParams({ limit: String(PAGE) });
  if (browser.type) q.set('type', browser.type);
  if (older && browser.next) q.set('before', browser.next);
  const list = $('events-list');
  const button = /** @type {HTMLButtonElement} */ ($('events-older'));
  button.disabled = true;
  showError(null);
  if (!older) {
    list.replaceChildren();
    browser.shown = 0;
    setText($('events-note'), 'loading…');
  }
  let page;
  try {
    page = await api(`/v1/tenants/${encodeURIComponent(browser.tenant)}/events?${q}`);
  } catch (error) {
    if (query !== browser.query) return;
    button.disabled = false;
    if (error instanceof AuthError) return ctx.report(error, '');
    if (error.status === 404) {
      button.hidden = true;
      setText($('events-count'), '');
      return setText($('events-note'), `Nothing was ever published for tenant ${browser.tenant}.`);
    }
    setText($('events-note'), '');
    return showError(`Could not load the events: ${describeError(error)}`);
  }
  if (query !== browser.query) return;
  const now = Date.now();
  list.append(...page.events.map((e) => eventItem(e, now)));
  browser.shown += page.events.length;
  browser.next = page.next;
  button.disabled = false;
  button.hidden = page.next === null;
  const scope = `tenant ${browser.tenant}${browser.type ? `, types ${browser.type}` : ''}`;
  setText($('events-count'), browser.shown ? `${browser.shown} shown` : '');
  let note = `${plural(browser.shown, 'event')} of ${scope}, newest first.`;
  if (page.next !== null && page.events.length < PAGE) note += ' The gateway looks at a bounded stretch of the log per request: older events may still match.';
  else if (page.next === null) note += ' That is everything retained.';
  setText($('events-note'), note);
}

function eventItem(e, now) {
  const payload = el('pre', { class: 'payload', tabindex: '0' }, pretty(e.data));
  payload.hidden = true;
  const head = el(
    'button',
    { type: 'button', class: 'event-head', 'aria-expanded': 'false' },
    el('span', { class: 'type' }, e.type),
    el('span', { class: 'mono small id' }, e.id),
    el('span', { class: 'small muted when', title: localTime(e.time) }, ago(e.time, now)),
  );
  const meta = el('p', { class: 'small muted meta' }, `cursor ${e.cursor} · ${e.time}`);
  meta.hidden = true;
  head.addEventListener('click', () => {
    const open = payload.hidden;
    payload.hidden = !open;
    meta.hidden = !open;
    head.setAttribute('aria-expanded', String(open));
  });
  return el('li', { class: 'event', 'data-cursor': e.cursor, 'data-type': e.type }, head, meta, payload);
}
