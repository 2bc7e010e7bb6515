// The list of dashboards: open, create, rename and delete them.

import { h, icon, replace, toast } from './dom.js';
import * as api from './api.js';
import { askText, confirmAction } from './dialogs.js';
import { ago, widgetsPhrase } from './format.js';
import { displayOf, KINDS } from './widgets.js';

// Shows the dashboards in `view`; returns a function that tears the view down.
export function showHome(view, { setCrumbs }) {
  setCrumbs([{ label: 'Dashboards' }]);
  document.title = 'Dashboards · flowboard';
  const list = h('div', { class: 'dash-list', 'aria-busy': 'true' });
  const count = h('span', { class: 'page-count' });
  replace(view, h('section', { class: 'home' },
    h('div', { class: 'page-head' },
      h('div', {}, h('h1', {}, 'Dashboards'), count),
      h('button', { type: 'button', class: 'button primary', dataset: { action: 'new-dashboard' }, onclick: create }, icon('plus'), h('span', {}, 'New dashboard'))),
    list));

  let alive = true;
  async function load() {
    try {
      const dashboards = await api.listDashboards();
      if (!alive) return;
      list.removeAttribute('aria-busy');
      count.textContent = dashboards.length ? `${dashboards.length} dashboard${dashboards.length === 1 ? '' : 's'}` : '';
      if (!dashboards.length) {
        replace(list, emptyState());
        return;
      }
      dashboards.sort((a, b) => b.updated_at - a.updated_at);
      replace(list, dashboards.map(row));
    } catch (err) {
      replace(list, h('div', { class: 'empty' }, h('h2', {}, 'Could not load dashboards'), h('p', {}, err.message),
        h('button', { type: 'button', class: 'button', onclick: load }, icon('refresh'), h('span', {}, 'Try again'))));
    }
  }

  function row(d) {
    const kinds = KINDS.map(({ kind, label }) => [label, d.widgets.filter((w) => displayOf(w).kind === kind).length])
      .filter(([, n]) => n > 0).map(([label, n]) => `${n} ${label.toLowerCase()}${n > 1 ? 's' : ''}`);
    return h('article', { class: 'dash-row', dataset: { dashboardId: d.dashboard_id } },
      h('a', { class: 'dash-link', href: `#/dashboards/${d.dashboard_id}` },
        h('span', { class: 'dash-icon', 'aria-hidden': 'true' }, icon('board')),
        h('span', { class: 'dash-text' },
          h('span', { class: 'dash-name' }, d.name),
          h('span', { class: 'dash-sub' },
            `${d.widgets.length} widget${d.widgets.length === 1 ? '' : 's'}${kinds.length ? ` · ${kinds.join(', ')}` : ''} · updated ${ago(d.updated_at)}`))),
      h('div', { class: 'dash-actions' },
        h('button', { type: 'button', class: 'icon-button subtle', title: 'Rename', 'aria-label': `Rename ${d.name}`, dataset: { action: 'rename' }, onclick: () => rename(d) }, icon('pencil')),
        h('button', { type: 'button', class: 'icon-button subtle', title: 'Delete', 'aria-label': `Delete ${d.name}`, dataset: { action: 'delete' }, onclick: () => remove(d) }, icon('trash'))));
  }

  async function create() {
    const created = await askText({
      title: 'New dashboard', label: 'Name', placeholder: 'e.g. API health', confirm: 'Create',
      submit: (name) => api.createDashboard(name),
    });
    if (created) location.hash = `#/dashboards/${created.dashboard_id}`;
  }

  async function rename(d) {
    const updated = await askText({
      title: 'Rename dashboard', label: 'Name', value: d.name, confirm: 'Rename',
      submit: (name) => api.renameDashboard(d.dashboard_id, name),
    });
    if (updated) load();
  }

  async function remove(d) {
    const done = await confirmAction({
      title: 'Delete dashboard?',
      message: `“${d.name}”${widgetsPhrase(d)} will be deleted for everyone. This cannot be undone.`,
      confirm: 'Delete dashboard',
      submit: () => api.deleteDashboard(d.dashboard_id),
    });
    if (done) {
      toast(`Deleted “${d.name}”`);
      load();
    }
  }

  function emptyState() {
    return h('div', { class: 'empty' },
      h('div', { class: 'empty-art', 'aria-hidden': 'true' }, icon('board')),
      h('h2', {}, 'Create your first dashboard'),
      h('p', {}, 'A dashboard is a set of widgets, each one metric aggregated over a sliding window, updated live as events arrive.'),
      h('button', { type: 'button', class: 'button primary', onclick: create }, icon('plus'), h('span', {}, 'New dashboard')),
      h('div', { class: 'hint' },
        h('p', {}, 'Send events with any HTTP client:'),
        h('pre', {}, h('code', {}, `curl -X POST ${location.origin}/ingest \\\n  -H 'content-type: application/json' \\\n  -d '{"metric_name": "api.latency", "value": 12.5, "tags": {"host": "web-1"}}'`))));
  }

  load();
  return () => { alive = false; };
}
