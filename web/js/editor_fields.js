// Building blocks of the widget editor: labelled fields, and the editable lists of tag filters
// and thresholds.

import { h } from './dom.js';
import { COLORS, cssColor } from './format.js';

// A labelled form field; `hint` is shown under it, and server errors for `name` next to it.
export function field(label, control, hint, extra = {}) {
  return h('label', { class: `field ${extra.class || ''}`.trim(), dataset: extra.dataset || {} },
    h('span', { class: 'field-label' }, label),
    control,
    hint ? h('span', { class: 'field-hint' }, hint) : null);
}

// A list of rows the user can add to and remove from. `makeRow(value)` returns the row's
// controls; `read(row)` reads one back. Returns {el, values()}.
function rowList({ className, rows, makeRow, read, addLabel, empty, blank }) {
  const list = h('div', { class: 'row-list-items' });
  const add = (value) => {
    const row = h('div', { class: 'row-list-row' }, makeRow(value),
      h('button', {
        type: 'button', class: 'icon-button subtle', title: 'Remove', 'aria-label': 'Remove',
        onclick: () => { row.remove(); refresh(); },
      }, '✕'));
    list.append(row);
    refresh();
    return row;
  };
  const emptyNote = h('p', { class: 'row-list-empty' }, empty);
  const refresh = () => { emptyNote.hidden = list.children.length > 0; };
  const el = h('div', { class: `row-list ${className}` }, list, emptyNote,
    h('button', {
      type: 'button', class: 'button small', dataset: { add: className },
      onclick: () => { const row = add(blank); row.querySelector('input')?.focus(); },
    }, `+ ${addLabel}`));
  rows.forEach(add);
  refresh();
  return { el, values: () => [...list.children].map(read).filter(Boolean) };
}

// The tag filter: rows of tag name = value. values() → {name: value}.
export function tagFilter(filter) {
  const list = rowList({
    className: 'tags',
    rows: Object.entries(filter || {}),
    blank: ['', ''],
    addLabel: 'Add tag',
    empty: 'Every series of the metric counts.',
    makeRow: ([key, value]) => [
      h('input', { type: 'text', class: 'tag-key', value: key, placeholder: 'tag, e.g. host', 'aria-label': 'Tag name', spellcheck: 'false' }),
      h('span', { class: 'row-list-eq' }, '='),
      h('input', { type: 'text', class: 'tag-value', value, placeholder: 'value, e.g. web-1', 'aria-label': 'Tag value', spellcheck: 'false' }),
    ],
    read: (row) => {
      const key = row.querySelector('.tag-key').value.trim();
      return key ? [key, row.querySelector('.tag-value').value.trim()] : null;
    },
  });
  return { el: list.el, values: () => Object.fromEntries(list.values()) };
}

// Thresholds: rows of "from value → colour". values() → [{value, color}] (rows without a
// number are skipped).
export function thresholdList(thresholds) {
  const list = rowList({
    className: 'thresholds',
    rows: thresholds || [],
    blank: { value: '', color: 'amber' },
    addLabel: 'Add threshold',
    empty: 'No thresholds: values show in the default colour.',
    makeRow: (t) => {
      const swatch = h('span', { class: 'swatch', 'aria-hidden': 'true' });
      const select = h('select', { class: 'threshold-color', 'aria-label': 'Colour' },
        COLORS.map((c) => h('option', { value: c }, c[0].toUpperCase() + c.slice(1))),
        !COLORS.includes(t.color) && cssColor(t.color) ? h('option', { value: t.color }, t.color) : null);
      select.value = cssColor(t.color) ? t.color : 'amber';
      const paint = () => { swatch.style.background = cssColor(select.value); };
      select.addEventListener('change', paint);
      paint();
      return [
        h('span', { class: 'row-list-eq' }, 'from'),
        h('input', { type: 'number', step: 'any', class: 'threshold-value', value: t.value ?? '', placeholder: 'value', 'aria-label': 'Threshold value' }),
        swatch, select,
      ];
    },
    read: (row) => {
      const text = row.querySelector('.threshold-value').value;
      const value = Number(text);
      return text !== '' && Number.isFinite(value)
        ? { value, color: row.querySelector('.threshold-color').value } : null;
    },
  });
  return { el: list.el, values: () => list.values().sort((a, b) => a.value - b.value) };
}

const UNITS = [['s', 1], ['min', 60], ['h', 3600]];

// A duration in seconds as a number and a unit. value() → seconds, or NaN.
export function duration(name, seconds) {
  const [unit, size] = [...UNITS].reverse().find(([, n]) => seconds % n === 0) || UNITS[0];
  const number = h('input', { type: 'number', name, min: 1, step: 1, required: true, value: seconds / size, 'aria-label': 'Length' });
  const select = h('select', { name: `${name}_unit`, 'aria-label': 'Unit' },
    UNITS.map(([u, n]) => h('option', { value: String(n) }, u)));
  select.value = String(size);
  return {
    el: h('span', { class: 'duration' }, number, select),
    value: () => Math.round(Number(number.value) * Number(select.value)),
  };
}
