// A line chart of one widget's value over time, drawn as SVG: a step line (a value holds until
// the next one is pushed), an area under it, a time axis with round ticks, a value axis,
// threshold lines, and a hover read-out. Small enough to own; see docs/web-ui.md for why we
// draw it ourselves rather than bundle a charting library.

import { s, h } from './dom.js';
import { clock, cssColor, formatNumber, sortedThresholds } from './format.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
// Candidate spacings of the time axis's ticks.
const TIME_STEPS = [
  SECOND, 2 * SECOND, 5 * SECOND, 10 * SECOND, 15 * SECOND, 30 * SECOND,
  MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE,
  HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, 24 * HOUR,
];
const PAD = { top: 10, right: 12, bottom: 24 };
let gradientIds = 0;

// Ticks of the time axis between `from` and `to` (epoch ms), at most `max` of them, on round
// local clock times.
export function timeTicks(from, to, max) {
  const span = Math.max(1, to - from);
  const step = TIME_STEPS.find((st) => span / st <= max) || TIME_STEPS[TIME_STEPS.length - 1];
  const offset = new Date(from).getTimezoneOffset() * MINUTE;
  const first = Math.ceil((from - offset) / step) * step + offset;
  const ticks = [];
  for (let t = first; t <= to; t += step) ticks.push(t);
  return { ticks, step };
}

// About `count` round ticks covering [lo, hi] (1, 2, 2.5 or 5 times a power of ten apart).
export function valueTicks(lo, hi, count) {
  const span = hi - lo || Math.abs(hi) || 1;
  const raw = span / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((st) => st >= raw) || 10 * power;
  const start = Math.floor(lo / step) * step;
  const end = Math.ceil(hi / step) * step;
  const ticks = [];
  for (let v = start; v <= end + step / 2; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

export class LineChart {
  // Draws into `host`; redraws on resize. `options`: {unit, decimals, thresholds, min, max}.
  constructor(host) {
    this.host = host;
    this.svg = s('svg', { class: 'chart', role: 'img' });
    this.tip = h('div', { class: 'chart-tip', hidden: true });
    this.host.append(this.svg, this.tip);
    this.last = null;
    this.resize = new ResizeObserver(() => this.last && this.render(this.last));
    this.resize.observe(this.host);
    this.svg.addEventListener('pointermove', (e) => this.hover(e));
    this.svg.addEventListener('pointerleave', () => this.hover(null));
  }

  destroy() {
    this.resize.disconnect();
  }

  // `points`: [{t, v}] in time order (v null = no value); shown over [from, to]. (A stale
  // value is drawn dashed by the card's `is-stale` class.)
  render(data) {
    this.last = data;
    const { points, from, to, options = {} } = data;
    const width = Math.max(120, Math.floor(this.host.clientWidth));
    const height = Math.max(80, Math.floor(this.host.clientHeight));
    const svg = this.svg;
    svg.replaceChildren();
    svg.setAttribute('width', width);
    svg.setAttribute('height', height);
    svg.setAttribute('viewBox', `0 0 ${width} ${height}`);

    // What is visible: the value in force at `from` (the last point before it), then the rest.
    const before = points.filter((p) => p.t <= from).pop();
    const inside = points.filter((p) => p.t > from && p.t <= to);
    const shown = before ? [{ t: from, v: before.v }, ...inside] : inside;
    const values = shown.map((p) => p.v).filter((v) => v !== null && Number.isFinite(v));
    svg.dataset.points = String(inside.length + (before ? 1 : 0));
    svg.dataset.last = values.length ? String(shown[shown.length - 1].v) : '';

    const fixedMin = Number.isFinite(options.min) ? options.min : null;
    const fixedMax = Number.isFinite(options.max) ? options.max : null;
    let lo = fixedMin ?? (values.length ? Math.min(...values) : 0);
    let hi = fixedMax ?? (values.length ? Math.max(...values) : 1);
    if (fixedMin === null && lo > 0 && lo < hi * 0.5) lo = 0; // anchor mostly-positive data at 0
    if (lo === hi) {
      const pad = Math.abs(lo) * 0.1 || 1;
      if (fixedMin === null) lo -= pad;
      if (fixedMax === null) hi += pad;
    }
    const yTicks = valueTicks(lo, hi, Math.max(2, Math.min(5, Math.floor(height / 40))));
    if (fixedMin === null) lo = Math.min(lo, yTicks[0]);
    if (fixedMax === null) hi = Math.max(hi, yTicks[yTicks.length - 1]);
    const label = (v) => formatNumber(v, options.decimals);
    const left = 10 + 7 * Math.max(...yTicks.map((v) => label(v).length));
    const plot = { x: left, y: PAD.top, w: width - left - PAD.right, h: height - PAD.top - PAD.bottom };
    const x = (t) => plot.x + ((t - from) / (to - from)) * plot.w;
    const y = (v) => plot.y + plot.h - ((v - lo) / (hi - lo || 1)) * plot.h;
    this.scale = { x, from, to, plot, shown };

    const grid = s('g', { class: 'chart-grid' });
    for (const v of yTicks) {
      if (v < lo - 1e-9 || v > hi + 1e-9) continue;
      grid.append(
        s('line', { x1: plot.x, x2: plot.x + plot.w, y1: y(v), y2: y(v) }),
        s('text', { x: plot.x - 8, y: y(v), class: 'chart-label y', text: label(v) }),
      );
    }
    const { ticks, step } = timeTicks(from, to, Math.max(2, Math.floor(plot.w / 80)));
    for (const t of ticks) {
      // A label that would stick out of the chart is left out.
      if (x(t) < plot.x + 20 || x(t) > width - 26) continue;
      grid.append(s('text', {
        x: x(t), y: height - 6, class: 'chart-label x', text: clock(t, step < MINUTE),
      }));
    }
    svg.append(grid);

    for (const t of sortedThresholds(options.thresholds)) {
      if (t.value < lo || t.value > hi) continue;
      svg.append(s('line', {
        class: 'chart-threshold', x1: plot.x, x2: plot.x + plot.w, y1: y(t.value), y2: y(t.value),
        stroke: cssColor(t.color),
      }));
    }

    const { line, area } = stepPaths(shown, to, x, y, y(Math.max(lo, Math.min(hi, 0))));
    const id = `fill-${++gradientIds}`;
    svg.append(
      s('defs', {}, s('linearGradient', { id, x1: 0, x2: 0, y1: 0, y2: 1 },
        s('stop', { offset: '0%', class: 'chart-fill-top' }),
        s('stop', { offset: '100%', class: 'chart-fill-bottom' }))),
      s('path', { class: 'chart-area', d: area, fill: `url(#${id})` }),
      s('path', { class: 'chart-line', d: line }),
    );
    const end = shown[shown.length - 1];
    if (end && end.v !== null) {
      svg.append(s('circle', { class: 'chart-dot', cx: x(to), cy: y(end.v), r: 3.5 }));
    }
    svg.append(s('line', { class: 'chart-axis', x1: plot.x, x2: plot.x + plot.w, y1: plot.y + plot.h, y2: plot.y + plot.h }));
    if (!values.length) {
      svg.append(s('text', {
        class: 'chart-empty', x: plot.x + plot.w / 2, y: plot.y + plot.h / 2,
        text: points.length ? 'No values in this period' : 'Waiting for values…',
      }));
    }
    this.hoverLine = s('line', { class: 'chart-hover', y1: plot.y, y2: plot.y + plot.h, visibility: 'hidden' });
    svg.append(this.hoverLine);
    svg.setAttribute('aria-label', values.length
      ? `Line chart, latest value ${label(values[values.length - 1])}${options.unit ? ` ${options.unit}` : ''}`
      : 'Line chart, no values yet');
    this.unit = options.unit;
    this.label = label;
  }

  // Shows the value in force at the pointer's time.
  hover(event) {
    if (!event || !this.scale) {
      this.tip.hidden = true;
      if (this.hoverLine) this.hoverLine.setAttribute('visibility', 'hidden');
      return;
    }
    const { from, to, plot, shown } = this.scale;
    const rect = this.svg.getBoundingClientRect();
    const px = event.clientX - rect.left;
    if (px < plot.x || px > plot.x + plot.w) return this.hover(null);
    const t = from + ((px - plot.x) / plot.w) * (to - from);
    const point = shown.filter((p) => p.t <= t).pop();
    if (!point) return this.hover(null);
    this.hoverLine.setAttribute('x1', px);
    this.hoverLine.setAttribute('x2', px);
    this.hoverLine.setAttribute('visibility', 'visible');
    const value = point.v === null ? 'no value' : `${this.label(point.v)}${this.unit ? ` ${this.unit}` : ''}`;
    this.tip.textContent = `${clock(t)} · ${value}`;
    this.tip.hidden = false;
    const tipWidth = this.tip.offsetWidth;
    this.tip.style.left = `${Math.min(Math.max(0, px - tipWidth / 2), rect.width - tipWidth)}px`;
  }
}

// The step line through `points` (each value holds until the next point; the last until `to`),
// broken where a value is null, and the area under it down to `base`.
function stepPaths(points, to, x, y, base) {
  let line = '';
  let area = '';
  let run = null; // [x, y] of the current run's start
  for (let i = 0; i < points.length; i += 1) {
    const p = points[i];
    const next = i + 1 < points.length ? points[i + 1].t : to;
    if (p.v === null || !Number.isFinite(p.v)) {
      run = null;
      continue;
    }
    const x0 = x(p.t).toFixed(1);
    const x1 = x(next).toFixed(1);
    const yv = y(p.v).toFixed(1);
    if (run === null) {
      line += `M${x0},${yv}`;
      area += `M${x0},${base.toFixed(1)}L${x0},${yv}`;
      run = [x0, yv];
    } else {
      line += `V${yv}`;
      area += `V${yv}`;
    }
    line += `H${x1}`;
    area += `H${x1}`;
    const ends = i + 1 >= points.length || points[i + 1].v === null;
    if (ends) area += `V${base.toFixed(1)}Z`;
  }
  return { line, area };
}
