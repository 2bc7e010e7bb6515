// A gauge: a 240° arc from `min` to `max`, filled up to the value in its threshold colour, with
// the threshold bands drawn just outside it. Plain SVG in a fixed view box that scales with
// its card.

import { s } from './dom.js';
import { cssColor, formatNumber, sortedThresholds, thresholdColor } from './format.js';

const CX = 100;
const CY = 92;
const R = 74;
const SWEEP = 240;

// The point at `angle` degrees (0 = straight up, clockwise) on the circle of radius `r`.
function point(angle, r) {
  const rad = (angle * Math.PI) / 180;
  return [CX + r * Math.sin(rad), CY - r * Math.cos(rad)];
}

function arc(from, to, r) {
  const [x0, y0] = point(from, r);
  const [x1, y1] = point(to, r);
  const large = to - from > 180 ? 1 : 0;
  return `M${x0.toFixed(2)},${y0.toFixed(2)}A${r},${r} 0 ${large} 1 ${x1.toFixed(2)},${y1.toFixed(2)}`;
}

// Draws the gauge into `svg`. `options`: {min, max, thresholds, unit, decimals}.
export function drawGauge(svg, value, options) {
  const min = Number.isFinite(options.min) ? options.min : 0;
  const max = Number.isFinite(options.max) && options.max > min ? options.max : min + 100;
  const angle = (v) => -SWEEP / 2 + (Math.min(max, Math.max(min, v)) - min) / (max - min) * SWEEP;
  svg.replaceChildren();
  svg.setAttribute('viewBox', '0 0 200 148');
  svg.setAttribute('class', 'gauge');
  svg.append(s('path', { class: 'gauge-track', d: arc(-SWEEP / 2, SWEEP / 2, R) }));

  const thresholds = sortedThresholds(options.thresholds);
  thresholds.forEach((t, i) => {
    const end = i + 1 < thresholds.length ? thresholds[i + 1].value : max;
    if (end <= min || t.value >= max) return;
    const a0 = angle(Math.max(min, t.value));
    const a1 = angle(Math.min(max, end));
    if (a1 - a0 < 0.5) return;
    svg.append(s('path', { class: 'gauge-band', d: arc(a0, a1, R + 13), stroke: cssColor(t.color) }));
  });

  const has = value !== null && value !== undefined && Number.isFinite(value);
  if (has && value > min) {
    svg.append(s('path', {
      class: 'gauge-value', d: arc(-SWEEP / 2, Math.max(-SWEEP / 2 + 0.5, angle(value)), R),
      stroke: thresholdColor(value, thresholds) || 'var(--accent)',
    }));
  }
  const label = (v) => formatNumber(v, options.decimals);
  const [lx, ly] = point(-SWEEP / 2, R);
  const [rx, ry] = point(SWEEP / 2, R);
  svg.append(
    s('text', { class: 'gauge-number', x: CX, y: CY + 8, fill: (has && thresholdColor(value, thresholds)) || null, text: has ? label(value) : '—' }),
    options.unit ? s('text', { class: 'gauge-unit', x: CX, y: CY + 30, text: options.unit }) : null,
    s('text', { class: 'gauge-limit', x: lx, y: ly + 17, text: label(min) }),
    s('text', { class: 'gauge-limit', x: rx, y: ry + 17, text: label(max) }),
  );
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', has
    ? `Gauge at ${label(value)}${options.unit ? ` ${options.unit}` : ''} of ${label(min)} to ${label(max)}`
    : 'Gauge, no value');
}
