// The four widget kinds as card bodies: big number, line chart, gauge, and table. Each view
// reads the widget's current state from the board (`ctx`) when told to update.
//
// ctx: {widget(id), state(id) → {value, as_of, stale} | undefined, history(id) → [{t, v}],
//       now() → epoch ms}

import { h, s, replace } from './dom.js';
import { LineChart } from './chart.js';
import { drawGauge } from './gauge.js';
import { formatNumber, formatSeconds, thresholdColor } from './format.js';

export const KINDS = [
  { kind: 'number', label: 'Number' },
  { kind: 'line', label: 'Line chart' },
  { kind: 'gauge', label: 'Gauge' },
  { kind: 'table', label: 'Table' },
];
export const DEFAULT_HISTORY_MINUTES = 10;

const num = (v) => (v === null || v === undefined || v === '' || !Number.isFinite(Number(v)) ? null : Number(v));

// A widget's display settings, with defaults and wrong types dropped (display_config is free
// JSON, possibly written by other clients).
export function displayOf(widget) {
  const c = widget && typeof widget.display_config === 'object' && widget.display_config
    ? widget.display_config : {};
  const kind = KINDS.some((k) => k.kind === c.kind) ? c.kind
    : KINDS.some((k) => k.kind === c.chart) ? c.chart : 'number';
  const decimals = num(c.decimals);
  return {
    kind,
    title: typeof c.title === 'string' ? c.title : '',
    unit: typeof c.unit === 'string' ? c.unit : '',
    decimals: Number.isInteger(decimals) && decimals >= 0 && decimals <= 6 ? decimals : null,
    thresholds: Array.isArray(c.thresholds) ? c.thresholds : [],
    min: num(c.min),
    max: num(c.max),
    window_minutes: num(c.window_minutes) > 0 ? num(c.window_minutes) : DEFAULT_HISTORY_MINUTES,
    widgets: Array.isArray(c.widgets) ? c.widgets.filter((id) => typeof id === 'string') : [],
    hidden: c.hidden === true,
    grid: c.grid && typeof c.grid === 'object' ? c.grid : null,
  };
}

// What a widget computes, in words: "avg of api.latency".
export function describeQuery(widget) {
  return `${widget.aggregation} of ${widget.metric_name}`;
}

// The title shown on a widget's card.
export function titleOf(widget) {
  return displayOf(widget).title || describeQuery(widget);
}

// Where a widget's value stands: `waiting` (nothing computed yet), `empty` (nothing in the
// window: avg/min/max are null, a count is 0) or `ok`.
export function phaseOf(widget, state) {
  if (!state || state.as_of === null || state.as_of === undefined) return 'waiting';
  if (state.value === null || (widget.aggregation === 'count' && state.value === 0)) return 'empty';
  return 'ok';
}

// The sentence under a value that is not a plain number.
export function phaseNote(widget, phase) {
  if (phase === 'waiting') return 'Waiting for the first value…';
  if (phase === 'empty') return `No events in the last ${formatSeconds(widget.window_seconds)}`;
  return '';
}

function valueText(value, display) {
  return formatNumber(value, display.decimals);
}

// The card body for `widget`'s kind, drawn into `body`.
export function createView(kind, body, ctx) {
  switch (kind) {
    case 'line': return lineView(body, ctx);
    case 'gauge': return gaugeView(body, ctx);
    case 'table': return tableView(body, ctx);
    default: return numberView(body, ctx);
  }
}

function numberView(body, ctx) {
  const number = h('span', { class: 'number-value' });
  const unit = h('span', { class: 'number-unit' });
  const note = h('p', { class: 'value-note' });
  const spark = s('svg', { class: 'sparkline', preserveAspectRatio: 'none', 'aria-hidden': 'true' });
  replace(body, h('div', { class: 'number' }, h('div', { class: 'number-line' }, number, unit), note), spark);
  return {
    update(widget) {
      const display = displayOf(widget);
      const state = ctx.state(widget.widget_id);
      const phase = phaseOf(widget, state);
      const value = state ? state.value : null;
      const shown = phase === 'ok' || (phase === 'empty' && value !== null);
      number.textContent = shown ? valueText(value, display) : (phase === 'waiting' ? 'Waiting' : 'No data');
      number.classList.toggle('is-absent', !shown);
      number.style.color = (shown && thresholdColor(value, display.thresholds)) || '';
      unit.textContent = shown ? display.unit : '';
      note.textContent = phaseNote(widget, phase);
      drawSparkline(spark, ctx.history(widget.widget_id), ctx.now());
    },
    destroy() {},
  };
}

// The values of the last five minutes (or since the first one, if later) as a faint line
// behind a number; nothing until there are two values.
function drawSparkline(svg, points, now) {
  const first = points.find((p) => p.v !== null);
  const from = Math.max(now - 5 * 60 * 1000, first ? first.t : now);
  const before = points.filter((p) => p.t <= from).pop();
  const shown = [...(before ? [{ t: from, v: before.v }] : []), ...points.filter((p) => p.t > from)];
  const values = shown.map((p) => p.v).filter((v) => v !== null);
  svg.replaceChildren();
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  if (values.length < 2 || hi === lo || now - from < 1000) return;
  svg.setAttribute('viewBox', '0 0 100 30');
  const x = (t) => ((t - from) / (now - from)) * 100;
  const y = (v) => 28 - ((v - lo) / (hi - lo || 1)) * 24;
  let d = '';
  shown.forEach((p, i) => {
    if (p.v === null) return;
    const next = i + 1 < shown.length ? shown[i + 1].t : now;
    d += `${d ? 'L' : 'M'}${x(p.t).toFixed(2)},${y(p.v).toFixed(2)}H${x(next).toFixed(2)}`;
  });
  svg.append(s('path', { d, 'vector-effect': 'non-scaling-stroke' }));
}

function lineView(body, ctx) {
  const current = h('span', { class: 'line-current' });
  const note = h('span', { class: 'value-note' });
  const host = h('div', { class: 'chart-host' });
  replace(body, h('div', { class: 'line-head' }, current, note), host);
  const chart = new LineChart(host);
  return {
    update(widget) {
      const display = displayOf(widget);
      const state = ctx.state(widget.widget_id);
      const phase = phaseOf(widget, state);
      const value = state ? state.value : null;
      current.textContent = phase === 'waiting' || value === null ? ''
        : `${valueText(value, display)}${display.unit ? ` ${display.unit}` : ''}`;
      current.style.color = thresholdColor(value, display.thresholds) || '';
      note.textContent = phase === 'ok' ? '' : phaseNote(widget, phase);
      const to = ctx.now();
      chart.render({
        points: ctx.history(widget.widget_id),
        from: to - display.window_minutes * 60 * 1000,
        to,
        options: display,
      });
    },
    destroy() { chart.destroy(); },
  };
}

function gaugeView(body, ctx) {
  const svg = s('svg');
  const note = h('p', { class: 'value-note' });
  replace(body, h('div', { class: 'gauge-host' }, svg), note);
  return {
    update(widget) {
      const display = displayOf(widget);
      const state = ctx.state(widget.widget_id);
      const phase = phaseOf(widget, state);
      drawGauge(svg, phase === 'waiting' ? null : state.value, display);
      note.textContent = phaseNote(widget, phase);
    },
    destroy() {},
  };
}

function tableView(body, ctx) {
  const rows = h('tbody');
  replace(body, h('div', { class: 'table-host' }, h('table', { class: 'value-table' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Widget'), h('th', { scope: 'col', class: 'num' }, 'Value'))),
    rows)));
  return {
    update(widget) {
      const ids = [widget.widget_id, ...displayOf(widget).widgets.filter((id) => id !== widget.widget_id)];
      const members = ids.map((id) => ctx.widget(id)).filter(Boolean);
      replace(rows, members.map((member) => tableRow(member, member === widget, ctx)));
    },
    destroy() {},
  };
}

function tableRow(widget, own, ctx) {
  const display = displayOf(widget);
  const state = ctx.state(widget.widget_id);
  const phase = phaseOf(widget, state);
  const value = state ? state.value : null;
  const color = thresholdColor(value, display.thresholds);
  const label = own ? describeQuery(widget) : titleOf(widget);
  const text = phase === 'waiting' ? '—' : valueText(value, display);
  const valueEl = h('span', { class: 'row-value' }, text);
  valueEl.style.color = color || '';
  return h('tr', { dataset: { widgetId: widget.widget_id, phase }, class: state && state.stale ? 'is-stale' : null },
    h('td', {},
      h('div', { class: 'row-title' }, label),
      h('div', { class: 'row-sub' }, `${widget.aggregation} · ${formatSeconds(widget.window_seconds)}`)),
    h('td', { class: 'num' },
      valueEl,
      value !== null && display.unit ? h('span', { class: 'row-unit' }, ` ${display.unit}`) : null,
      phase === 'empty' ? h('div', { class: 'row-sub' }, 'no events in window') : null));
}
