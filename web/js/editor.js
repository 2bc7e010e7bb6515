// The widget editor: a dialog to add a widget or change one — what it computes (metric,
// aggregation, window, refresh interval, tag filter) and how it shows it (kind, title, unit,
// thresholds, scale, history, table rows, place on the grid). Saves with one
// `PATCH /dashboards/{id}/widgets` and resolves with the dashboard it returns.

import { h } from './dom.js';
import * as api from './api.js';
import { field, tagFilter, thresholdList, duration } from './editor_fields.js';
import { KINDS, displayOf, describeQuery, titleOf } from './widgets.js';
import { COLUMNS, defaultSize, validPlace } from './layout.js';

const METRIC_PATTERN = '[A-Za-z0-9_.:\\-]{1,200}';

// Opens the editor for `widget` (null: a new widget) of `dashboard`. `placeFor({w, h})` is
// where a new widget of that size would go. Resolves with the updated dashboard, or null when
// cancelled.
export async function editWidget(dashboard, widget, placeFor) {
  const aggregations = await api.aggregations().catch(() => ['count', 'sum', 'avg', 'min', 'max']);
  const display = widget ? displayOf(widget) : { ...displayOf(null), kind: 'number' };
  const others = dashboard.widgets.filter((w) => !widget || w.widget_id !== widget.widget_id);

  const kinds = h('div', { class: 'segmented', role: 'radiogroup', 'aria-label': 'Widget kind' },
    KINDS.map(({ kind, label }) => h('label', { class: 'segment', dataset: { kind } },
      h('input', { type: 'radio', name: 'kind', value: kind, checked: kind === display.kind }),
      h('span', {}, label))));
  const metric = h('input', {
    type: 'text', name: 'metric_name', required: true, pattern: METRIC_PATTERN, maxlength: 200,
    value: widget ? widget.metric_name : '', placeholder: 'api.request.latency',
    list: 'metric-names', autocomplete: 'off', spellcheck: 'false',
  });
  const metricNames = h('datalist', { id: 'metric-names' },
    [...new Set(dashboard.widgets.map((w) => w.metric_name))].map((m) => h('option', { value: m })));
  const aggregation = h('select', { name: 'aggregation', required: true },
    aggregations.map((a) => h('option', { value: a }, a)));
  aggregation.value = widget ? widget.aggregation : (aggregations.includes('avg') ? 'avg' : aggregations[0]);
  const windowField = duration('window_seconds', widget ? widget.window_seconds : 300);
  const refresh = h('input', { type: 'number', name: 'refresh_interval_seconds', min: 1, max: 86400, step: 1, required: true, value: widget ? widget.refresh_interval_seconds : 1 });
  const tags = tagFilter(widget ? widget.filter : {});
  const title = h('input', { type: 'text', name: 'title', maxlength: 120, value: display.title, placeholder: widget ? describeQuery(widget) : 'Defaults to “avg of metric”' });
  const unit = h('input', { type: 'text', name: 'unit', maxlength: 16, value: display.unit, placeholder: 'ms, %, req/s' });
  const decimals = h('input', { type: 'number', name: 'decimals', min: 0, max: 6, step: 1, value: display.decimals ?? '', placeholder: 'auto' });
  const thresholds = thresholdList(display.thresholds);
  const min = h('input', { type: 'number', name: 'min', step: 'any', value: display.min ?? '', placeholder: 'auto' });
  const max = h('input', { type: 'number', name: 'max', step: 'any', value: display.max ?? '', placeholder: 'auto' });
  const history = h('input', { type: 'number', name: 'window_minutes', min: 1, max: 1440, step: 1, value: display.window_minutes });
  const rows = h('div', { class: 'checklist' },
    others.length ? others.map((w) => h('label', { class: 'check' },
      h('input', { type: 'checkbox', name: 'rows', value: w.widget_id, checked: display.widgets.includes(w.widget_id) }),
      h('span', {}, titleOf(w)), h('span', { class: 'check-sub' }, describeQuery(w))))
      : h('p', { class: 'row-list-empty' }, 'Other widgets of this dashboard can be added as rows once they exist.'));
  const hidden = h('input', { type: 'checkbox', name: 'hidden', checked: display.hidden });

  const start = validPlace(display.grid) || placeFor(defaultSize(display.kind));
  let placeTouched = Boolean(widget);
  const position = ['x', 'y', 'w', 'h'].map((key) => h('input', {
    type: 'number', name: `grid_${key}`, step: 1, required: true,
    min: 1,
    max: key === 'x' || key === 'w' ? COLUMNS : undefined,
    value: key === 'x' || key === 'y' ? start[key] + 1 : start[key],
    oninput: () => { placeTouched = true; },
  }));

  const error = h('p', { class: 'form-error', role: 'alert' });
  const removeButton = widget ? h('button', { type: 'button', class: 'button danger-text', dataset: { action: 'remove-widget' } }, 'Remove widget') : null;
  const form = h('form', { class: 'editor', novalidate: false },
    h('header', { class: 'dialog-head' },
      h('h2', { class: 'dialog-title' }, widget ? `Edit “${titleOf(widget)}”` : 'Add a widget'),
      h('button', { type: 'button', class: 'icon-button subtle', 'data-cancel': true, 'aria-label': 'Close' }, '✕')),
    h('div', { class: 'editor-body' },
      h('fieldset', { class: 'editor-section' },
        h('legend', {}, 'Data'),
        field('Metric', metric, 'Letters, digits and _ . : -'), metricNames,
        h('div', { class: 'field-row' },
          field('Aggregation', aggregation),
          field('Window', windowField.el, 'How far back the aggregate looks.')),
        field('Refresh interval (seconds)', refresh, 'Values are pushed at most this often, and marked stale when older than twice this.'),
        h('div', { class: 'field', dataset: { field: 'filter' } }, h('span', { class: 'field-label' }, 'Tag filter'), tags.el)),
      h('fieldset', { class: 'editor-section' },
        h('legend', {}, 'Show as'),
        kinds,
        field('Title', title),
        h('div', { class: 'field-row' },
          field('Unit', unit),
          field('Decimals', decimals)),
        h('div', { class: 'field-row kind-only', dataset: { kinds: 'gauge line' } },
          field('Scale min', min),
          field('Scale max', max)),
        h('div', { class: 'kind-only', dataset: { kinds: 'line' } },
          field('History shown (minutes)', history, 'The chart plots the values pushed over this long.')),
        h('div', { class: 'kind-only', dataset: { kinds: 'table' } },
          h('div', { class: 'field' }, h('span', { class: 'field-label' }, 'Rows besides this widget'), rows)),
        h('div', { class: 'field' }, h('span', { class: 'field-label' }, 'Colour thresholds'), thresholds.el),
        h('label', { class: 'check kind-only', dataset: { kinds: 'number line gauge' } }, hidden,
          h('span', {}, 'Show only inside tables')),
        h('details', { class: 'position' },
          h('summary', {}, 'Position on the grid'),
          h('div', { class: 'field-row four' },
            field('Column', position[0]), field('Row', position[1]),
            field('Width', position[2]), field('Height', position[3])),
          h('p', { class: 'field-hint' }, `The grid has ${COLUMNS} columns. In “Edit layout” you can also drag cards and their corners.`)))),
    error,
    h('footer', { class: 'dialog-actions' },
      removeButton,
      h('span', { class: 'spacer' }),
      h('button', { type: 'button', class: 'button', 'data-cancel': true }, 'Cancel'),
      h('button', { type: 'submit', class: 'button primary', dataset: { action: 'save-widget' } }, widget ? 'Save' : 'Add widget')));

  const kindNow = () => form.querySelector('input[name=kind]:checked')?.value || 'number';
  const showKind = () => {
    const kind = kindNow();
    form.querySelectorAll('.kind-only').forEach((el) => { el.hidden = !el.dataset.kinds.split(' ').includes(kind); });
    if (!placeTouched) {
      const spot = placeFor(defaultSize(kind));
      [spot.x + 1, spot.y + 1, spot.w, spot.h].forEach((v, i) => { position[i].value = v; });
    }
  };
  kinds.addEventListener('change', showKind);
  showKind();

  const body = () => {
    const kind = kindNow();
    const number = (input) => (input.value === '' ? undefined : Number(input.value));
    const config = {
      ...(widget && typeof widget.display_config === 'object' ? widget.display_config : {}),
      kind,
      title: title.value.trim() || undefined,
      unit: unit.value.trim() || undefined,
      decimals: number(decimals),
      thresholds: thresholds.values(),
      min: number(min),
      max: number(max),
      window_minutes: kind === 'line' ? number(history) : display.window_minutes,
      widgets: kind === 'table' ? [...form.querySelectorAll('input[name=rows]:checked')].map((c) => c.value) : undefined,
      hidden: kind !== 'table' && hidden.checked ? true : undefined,
      grid: {
        x: Math.max(0, Number(position[0].value) - 1), y: Math.max(0, Number(position[1].value) - 1),
        w: Number(position[2].value), h: Number(position[3].value),
      },
    };
    return {
      metric_name: metric.value.trim(),
      aggregation: aggregation.value,
      window_seconds: windowField.value(),
      refresh_interval_seconds: Number(refresh.value),
      filter: tags.values(),
      display_config: JSON.parse(JSON.stringify(config)), // drops the undefined keys
    };
  };

  const dialog = h('dialog', { class: 'dialog dialog-editor' }, form);
  document.body.append(dialog);
  return new Promise((resolve) => {
    const close = (result) => { dialog.close(); dialog.remove(); resolve(result); };
    const fail = (err) => {
      // The server names fields by their place in the request (`update[0].window_seconds`).
      error.textContent = err.message.replace(/^(add|update|remove)\[\d+\]\.?/, '');
      form.querySelectorAll('[aria-invalid]').forEach((el) => el.removeAttribute('aria-invalid'));
      const name = fieldName(err.field);
      const target = name && (form.querySelector(`[name="${CSS.escape(name)}"]`) || form.querySelector(`[data-field="${CSS.escape(name)}"] input`));
      if (target) {
        target.setAttribute('aria-invalid', 'true');
        target.focus();
      }
    };
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const submit = form.querySelector('[type=submit]');
      submit.disabled = true;
      error.textContent = '';
      try {
        const patch = widget ? { update: [{ widget_id: widget.widget_id, ...body() }] } : { add: [body()] };
        close(await api.patchWidgets(dashboard.dashboard_id, patch));
      } catch (err) {
        fail(err);
      } finally {
        submit.disabled = false;
      }
    });
    if (removeButton) {
      removeButton.addEventListener('click', async () => {
        if (!removeButton.classList.contains('confirming')) {
          removeButton.classList.add('confirming');
          removeButton.textContent = 'Click again to remove';
          return;
        }
        try {
          close(await api.patchWidgets(dashboard.dashboard_id, removal(dashboard, widget.widget_id)));
        } catch (err) {
          fail(err);
        }
      });
    }
    dialog.addEventListener('cancel', (event) => { event.preventDefault(); close(null); });
    form.querySelectorAll('[data-cancel]').forEach((b) => b.addEventListener('click', () => close(null)));
    dialog.showModal();
    (widget ? title : metric).focus();
  });
}

// The patch removing widget `id`, and dropping it from the tables that list it.
export function removal(dashboard, id) {
  const update = dashboard.widgets
    .filter((w) => w.widget_id !== id && displayOf(w).kind === 'table' && displayOf(w).widgets.includes(id))
    .map((w) => ({
      widget_id: w.widget_id,
      display_config: { ...w.display_config, widgets: displayOf(w).widgets.filter((r) => r !== id) },
    }));
  return { remove: [id], update };
}

// The form control named by a server error's field (`add[0].window_seconds` → window_seconds).
function fieldName(field) {
  if (!field) return null;
  const last = field.replace(/^(add|update|widgets)\[\d+\]\.?/, '').split('.')[0];
  return last === 'filter' ? 'filter' : last || null;
}
