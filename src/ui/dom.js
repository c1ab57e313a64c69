/**
 * DOM and formatting helpers of the ops page.
 *
 * Data reaches the DOM only as text (text nodes, textContent, attribute values), never as
 * markup: the page holds the admin key, and a webhook URL or an event payload is data someone
 * else chose.
 */

export const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** Creates an element; strings among children become text nodes; `on…` attributes are listeners. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') node.className = value;
    else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** An SVG element with attributes. */
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  node.append(...children);
  return node;
}

/** Writes text (and a title) only when it changed, so refreshes keep selections and focus. */
export function setText(node, text, title) {
  if (node.textContent !== text) node.textContent = text;
  if (title !== undefined && node.title !== title) node.title = title;
}

export function setBadge(node, text, tone, title) {
  setText(node, text, title);
  const cls = `badge ${tone}`;
  if (node.className !== cls) node.className = cls;
}

export function setSwitch(button, on) {
  const value = on ? 'true' : 'false';
  if (button.getAttribute('aria-checked') !== value) button.setAttribute('aria-checked', value);
}

export function span(ms) {
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}

/** A past moment: "just now", "12 s ago", "3 min ago". A little in the future (clock skew) is "just now". */
export function ago(iso, now = Date.now()) {
  if (!iso) return '—';
  const ms = now - Date.parse(iso);
  return ms < 1000 ? 'just now' : `${span(ms)} ago`;
}

/** A planned moment: "in 5 s", or "due" once it has passed. */
export function until(iso, now = Date.now()) {
  if (!iso) return '—';
  const ms = Date.parse(iso) - now;
  return ms < 1000 ? 'due' : `in ${span(ms)}`;
}

/** Either way: "in 5 s" or "3 min ago". */
export const moment = (iso, now = Date.now()) => (iso && Date.parse(iso) > now ? until(iso, now) : ago(iso, now));

export const localTime = (iso) => (iso ? new Date(iso).toLocaleString() : '');

export const count = (n) => Number(n).toLocaleString('en-US');

export const plural = (n, one, many = `${one}s`) => `${count(n)} ${n === 1 ? one : many}`;

/** "billing (con_…)" or the id alone. */
export const consumerLabel = (c) => (c.name ? `${c.name} (${c.id})` : c.id);

const OPS = {
  eq: '=',
  ne: '≠',
  in: 'in',
  nin: 'not in',
  contains: 'contains',
  starts_with: 'starts with',
  gt: '>',
  gte: '≥',
  lt: '<',
  lte: '≤',
};

/** A filter as a person reads it: "types ticket.* · 1: data.priority = "urgent" · 1 and 2". */
export function describeFilter(filter) {
  if (!filter) return 'every event';
  const parts = [];
  if (filter.types?.length) parts.push(`types ${filter.types.join(', ')}`);
  const where = filter.where ?? [];
  where.forEach((c, i) => {
    let text;
    if (c.op === 'exists') text = c.value === false ? `${c.field} is missing` : `${c.field} exists`;
    else text = `${c.field} ${OPS[c.op] ?? c.op} ${JSON.stringify(c.value)}`;
    parts.push(`${i + 1}: ${text}`);
  });
  if (where.length > 1) parts.push(filter.expression ? `match ${filter.expression}` : 'match all conditions');
  return parts.join(' · ') || 'every event';
}

/** Pretty JSON for reading (payloads, headers). */
export const pretty = (value) => JSON.stringify(value, null, 2);
