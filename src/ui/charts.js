/**
 * Charts of this node's activity, drawn as plain SVG from GET /v1/ops/series: events published
 * per second, webhook attempts per second (delivered and failed), and consumer lag.
 *
 * 1. Only the server's samples are drawn: a rate is a sample's count divided by the seconds it
 *    covers, one point per sample, at the sample's time. No sample, no line: the chart says it
 *    is waiting for the first one.
 * 2. The series is this node's own since it started (the gateway keeps it in memory); the page
 *    says so above the charts.
 * 3. Fetched at most once per sampling interval, whatever the page's refresh rate.
 * 4. The SVG stretches to its box (preserveAspectRatio none, strokes that do not scale); text
 *    sits in HTML around it, so nothing is squeezed on a narrow screen.
 */
import { api, AuthError } from './api.js';
import { $, el, localTime, setText, svg } from './dom.js';

const W = 300;
const H = 100;

const CHARTS = [
  {
    id: 'chart-publish',
    title: 'Events published',
    unit: '/s',
    lines: [{ key: 'published', label: 'published', cls: 'line-a', rate: true }],
  },
  {
    id: 'chart-delivery',
    title: 'Webhook attempts',
    unit: '/s',
    lines: [
      { key: 'delivered', label: 'delivered', cls: 'line-ok', rate: true },
      { key: 'failed', label: 'failed', cls: 'line-bad', rate: true },
    ],
  },
  {
    id: 'chart-lag',
    title: 'Consumer lag',
    unit: ' events',
    lines: [
      { key: 'lag_total', label: 'all consumers', cls: 'line-a', rate: false },
      { key: 'lag_max', label: 'largest', cls: 'line-b', rate: false },
    ],
  },
];

let lastFetch = 0;
let intervalMs = 5000;

/** Fetches the series when a new sample can be there (see 3.); errors are shown in place. */
export async function refreshCharts(force = false) {
  if (!force && Date.now() - lastFetch < intervalMs) return;
  lastFetch = Date.now();
  try {
    const series = await api('/v1/ops/series');
    intervalMs = series.interval_ms;
    renderSeries(series);
  } catch (error) {
    if (error instanceof AuthError) throw error;
    setText($('series-scope'), `Could not load the activity series: ${error.message}`);
  }
}

/** A count or rate for reading: 0, 0.25, 3.5, 42, 1,250. */
function figure(v) {
  if (v === 0) return '0';
  if (Math.abs(v) < 1) return v.toFixed(2);
  if (Math.abs(v) < 10) return v.toFixed(1);
  return Math.round(v).toLocaleString('en-US');
}

/** The smallest of 1, 2, 5 × 10^n at or above v (an axis top that reads well). */
function niceTop(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export function renderSeries(series) {
  const minutes = Math.round((series.capacity * series.interval_ms) / 60000);
  setText(
    $('series-scope'),
    `This node's view (${series.node}, ${series.engine}) since it started, ${localTime(series.started_at)}: ` +
      `a sample every ${series.interval_ms / 1000} s, the last ${minutes} min at most. ` +
      'Published and attempts count this node only; lag covers every consumer.',
  );
  const container = $('charts');
  for (const spec of CHARTS) {
    let fig = document.getElementById(spec.id);
    if (!fig) container.append((fig = el('figure', { class: 'chart', id: spec.id })));
    drawChart(fig, spec, series.samples);
  }
}

function drawChart(fig, spec, samples) {
  const value = (line, s) => (line.rate ? (s.seconds > 0 ? s[line.key] / s.seconds : 0) : s[line.key]);
  const lines = spec.lines.map((line) => ({ ...line, points: samples.map((s) => ({ t: Date.parse(s.at), v: value(line, s) })) }));
  const top = niceTop(Math.max(0, ...lines.flatMap((l) => l.points.map((p) => p.v))));
  const t0 = samples.length ? Date.parse(samples[0].at) : 0;
  const t1 = samples.length ? Date.parse(samples[samples.length - 1].at) : 0;
  const x = (t) => (t1 > t0 ? ((t - t0) / (t1 - t0)) * W : W);
  const y = (v) => H - (v / top) * H;
  const at = (p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`;

  const plot = svg(
    'svg',
    { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': summary(spec, lines) },
    ...[0, 0.5, 1].map((f) => svg('line', { class: 'grid', x1: 0, x2: W, y1: H * f, y2: H * f, 'vector-effect': 'non-scaling-stroke' })),
  );
  for (const line of lines) {
    if (line.points.length === 0) continue;
    if (line.points.length === 1) {
      const [px, py] = at(line.points[0]).split(',');
      plot.append(svg('circle', { class: line.cls, cx: px, cy: py, r: 2, 'data-key': line.key }));
      continue;
    }
    plot.append(
      svg('polyline', {
        class: line.cls,
        points: line.points.map(at).join(' '),
        'data-key': line.key,
        'vector-effect': 'non-scaling-stroke',
      }),
    );
  }

  const last = (line) => line.points[line.points.length - 1]?.v;
  fig.replaceChildren(
    el(
      'figcaption',
      {},
      el('span', { class: 'chart-title' }, spec.title),
      el('span', { class: 'chart-now' }, samples.length ? lines.map((l) => `${l.label} ${figure(last(l))}${spec.unit}`).join(' · ') : 'waiting for the first sample'),
    ),
    el('div', { class: 'chart-body' }, el('div', { class: 'chart-y' }, el('span', {}, figure(top)), el('span', {}, '0')), plot),
    el(
      'div',
      { class: 'chart-x small muted' },
      el('span', {}, samples.length ? new Date(t0).toLocaleTimeString() : ''),
      el('span', {}, samples.length ? new Date(t1).toLocaleTimeString() : ''),
    ),
    el('ul', { class: 'legend small' }, ...lines.map((l) => el('li', { class: l.cls }, l.label))),
  );
}

function summary(spec, lines) {
  const parts = lines.map((l) => {
    if (!l.points.length) return `${l.label}: no sample yet`;
    const peak = Math.max(...l.points.map((p) => p.v));
    return `${l.label} now ${figure(l.points[l.points.length - 1].v)}${spec.unit}, peak ${figure(peak)}${spec.unit}`;
  });
  return `${spec.title}: ${parts.join('; ')}`;
}
