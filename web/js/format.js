// Formatting of values, durations and times, and threshold colours.

// The named colours a threshold may use; each is a CSS variable tuned for light and dark mode.
export const COLORS = ['green', 'blue', 'amber', 'orange', 'red', 'purple', 'grey'];

// A CSS colour for a threshold colour: a named colour, or a `#rgb`/`#rrggbb` hex colour.
export function cssColor(color) {
  if (COLORS.includes(color)) return `var(--c-${color})`;
  if (typeof color === 'string' && /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.test(color)) return color;
  return null;
}

// Thresholds in ascending order of value, invalid entries dropped.
export function sortedThresholds(thresholds) {
  return (Array.isArray(thresholds) ? thresholds : [])
    .filter((t) => t && Number.isFinite(Number(t.value)) && cssColor(t.color))
    .map((t) => ({ value: Number(t.value), color: t.color }))
    .sort((a, b) => a.value - b.value);
}

// The colour of `value`: that of the highest threshold it reaches, or null below all of them.
export function thresholdColor(value, thresholds) {
  if (value === null || value === undefined) return null;
  let color = null;
  for (const t of sortedThresholds(thresholds)) {
    if (value >= t.value) color = cssColor(t.color);
  }
  return color;
}

// A number for display: grouped thousands, sensible precision, k/M/G beyond a million.
export function formatNumber(value, decimals) {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  if (Number.isInteger(decimals) && decimals >= 0 && decimals <= 6) {
    return value.toLocaleString('en-US', {
      minimumFractionDigits: decimals, maximumFractionDigits: decimals,
    });
  }
  const abs = Math.abs(value);
  if (abs >= 1e9) return `${trim(value / 1e9)}G`;
  if (abs >= 1e6) return `${trim(value / 1e6)}M`;
  let digits = 0;
  if (abs < 1) digits = 3;
  else if (abs < 10) digits = 2;
  else if (abs < 1000) digits = 1;
  return value.toLocaleString('en-US', { maximumFractionDigits: digits });
}

function trim(value) {
  return value.toLocaleString('en-US', { maximumFractionDigits: Math.abs(value) < 10 ? 2 : 1 });
}

// A window length: "45 s", "5 min", "1 h 30 min", "2 d".
export function formatSeconds(seconds) {
  if (!Number.isFinite(seconds)) return '';
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) {
    const m = Math.floor(seconds / 60);
    const rest = seconds % 60;
    return rest ? `${m} min ${rest} s` : `${m} min`;
  }
  if (seconds < 86400) {
    const hours = Math.floor(seconds / 3600);
    const m = Math.floor((seconds % 3600) / 60);
    return m ? `${hours} h ${m} min` : `${hours} h`;
  }
  return `${Math.round(seconds / 86400)} d`;
}

// How long ago `ms` (epoch milliseconds) was, shortly: "just now", "12 s ago", "3 min ago".
export function ago(ms, now = Date.now()) {
  if (!ms) return 'never';
  const seconds = Math.max(0, Math.round((now - ms) / 1000));
  if (seconds < 2) return 'just now';
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return new Date(ms).toLocaleDateString();
}

// A clock time: "14:05:09" (or "14:05" when `seconds` is false).
export function clock(ms, seconds = true) {
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, '0');
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return seconds ? `${hm}:${pad(d.getSeconds())}` : hm;
}

// A date and time: "3 Nov 2026, 14:05".
export function dateTime(ms) {
  return new Date(ms).toLocaleString('en-GB', {
    day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit',
  });
}

// The tag filter as text: "host=web-1, region=eu".
export function formatFilter(filter) {
  return Object.entries(filter || {}).map(([k, v]) => `${k}=${v}`).join(', ');
}

// " and its 3 widgets" / " and its widget" / "" (for a deletion warning).
export function widgetsPhrase(dashboard) {
  const n = dashboard.widgets.length;
  if (n === 0) return '';
  return n === 1 ? ' and its widget' : ` and its ${n} widgets`;
}
