// One dashboard, live: its widgets on the grid, values from the WebSocket stream, the
// connection state, and the actions on it (add, edit, remove and arrange widgets; rename and
// delete the dashboard).

import { h, icon, replace, toast } from './dom.js';
import * as api from './api.js';
import { DashboardStream } from './stream.js';
import { askText, confirmAction } from './dialogs.js';
import { editWidget } from './editor.js';
import { createView, displayOf, phaseOf, titleOf } from './widgets.js';
import { arrange, enableDragging, firstFree, validPlace } from './layout.js';
import { History } from './history.js';
import { clock, formatFilter, formatSeconds, widgetsPhrase } from './format.js';

// Rows a card takes at least on a phone-width screen.
const NARROW_MIN_HEIGHT = { number: 2, gauge: 3, line: 3, table: 3 };

// Shows dashboard `id` in `view`; returns a function that tears it down.
export function showBoard(view, id, { setCrumbs }) {
  const board = new Board(view, id, setCrumbs);
  board.load();
  return () => board.dispose();
}

class Board {
  constructor(view, id, setCrumbs) {
    this.view = view;
    this.id = id;
    this.setCrumbs = setCrumbs;
    this.dashboard = null;
    this.values = new Map(); // widget id → {value, as_of, stale}
    this.history = new History(id);
    this.cards = new Map(); // widget id → {el, kind, view, ...}
    this.places = new Map(); // widget id → {x, y, w, h}
    this.queries = new Map(); // widget id → its query, to notice changes
    this.connection = { state: 'connecting', detail: {} };
    this.editing = false;
    this.stream = null;
    this.timer = null;
    this.ctx = {
      widget: (wid) => this.widget(wid),
      state: (wid) => this.values.get(wid),
      history: (wid) => this.history.points(wid),
      now: () => Date.now(),
    };
  }

  async load() {
    try {
      this.dashboard = await api.getDashboard(this.id);
    } catch (err) {
      this.showGone(err.status === 404 ? 'There is no dashboard with this id.' : err.message);
      return;
    }
    this.build();
    this.render();
    this.stream = new DashboardStream(this.id, {
      onSnapshot: (m) => this.onSnapshot(m),
      onUpdate: (m) => this.onUpdate(m),
      onDashboard: (d) => { this.dashboard = d; this.render(); },
      onDeleted: () => this.showGone('This dashboard was deleted.'),
      onState: (state, detail) => this.onConnection(state, detail),
    });
    this.stream.start();
    this.timer = setInterval(() => this.tick(), 1000);
  }

  dispose() {
    if (this.disposed) return;
    this.disposed = true;
    clearInterval(this.timer);
    if (this.stream) this.stream.stop();
    this.history.dispose();
    for (const card of this.cards.values()) card.view.destroy();
  }

  widget(wid) {
    return this.dashboard && this.dashboard.widgets.find((w) => w.widget_id === wid);
  }

  // The page's fixed parts: header, banner, grid, tray.
  build() {
    this.title = h('h1', { class: 'board-name' });
    this.meta = h('span', { class: 'board-meta' });
    this.pill = h('span', { class: 'conn', role: 'status', 'aria-live': 'polite' });
    this.layoutButton = h('button', {
      type: 'button', class: 'button', dataset: { action: 'edit-layout' },
      'aria-pressed': 'false', onclick: () => this.toggleEditing(),
    }, icon('layout'), h('span', {}, 'Edit layout'));
    this.banner = h('div', { class: 'banner', hidden: true });
    this.grid = h('div', { class: 'grid', dataset: { dashboard: this.id } });
    this.empty = h('div', { class: 'empty', hidden: true },
      h('div', { class: 'empty-art', 'aria-hidden': 'true' }, icon('board')),
      h('h2', {}, 'No widgets yet'),
      h('p', {}, 'Add a widget to chart a metric: a number, a line over time, a gauge, or a table.'),
      h('button', { type: 'button', class: 'button primary', onclick: () => this.addWidget() }, icon('plus'), h('span', {}, 'Add widget')));
    this.tray = h('section', { class: 'tray', hidden: true });
    replace(this.view, h('section', { class: 'board' },
      h('div', { class: 'board-head' },
        h('div', { class: 'board-heading' }, this.title,
          h('div', { class: 'board-sub' }, this.pill, this.meta)),
        h('div', { class: 'board-actions' },
          h('button', { type: 'button', class: 'icon-button', title: 'Rename dashboard', 'aria-label': 'Rename dashboard', dataset: { action: 'rename' }, onclick: () => this.rename() }, icon('pencil')),
          h('button', { type: 'button', class: 'icon-button', title: 'Delete dashboard', 'aria-label': 'Delete dashboard', dataset: { action: 'delete' }, onclick: () => this.remove() }, icon('trash')),
          this.layoutButton,
          h('button', { type: 'button', class: 'button primary', dataset: { action: 'add-widget' }, onclick: () => this.addWidget() }, icon('plus'), h('span', {}, 'Add widget')))),
      this.banner, this.empty, this.grid, this.tray));
    enableDragging(this.grid, {
      places: () => new Map(this.places),
      kindOf: (wid) => displayOf(this.widget(wid)).kind,
      preview: (places) => this.applyPlaces(places),
      commit: (places) => this.saveLayout(places),
    });
  }

  // Brings the page in line with `this.dashboard`.
  render() {
    const d = this.dashboard;
    this.title.textContent = d.name;
    document.title = `${d.name} · flowboard`;
    this.setCrumbs([{ label: 'Dashboards', href: '#/' }, { label: d.name }]);
    const visible = d.widgets.filter((w) => !displayOf(w).hidden);
    const hiddenCount = d.widgets.length - visible.length;
    this.meta.textContent = `${d.widgets.length} widget${d.widgets.length === 1 ? '' : 's'}`
      + (hiddenCount ? ` (${hiddenCount} only in tables)` : '');
    this.empty.hidden = d.widgets.length > 0;

    // A widget whose query changed starts a new history.
    for (const widget of d.widgets) {
      const query = JSON.stringify([widget.metric_name, widget.aggregation, widget.window_seconds, widget.filter]);
      const before = this.queries.get(widget.widget_id);
      if (before !== undefined && before !== query) {
        this.history.clear(widget.widget_id);
        this.values.delete(widget.widget_id);
      }
      this.queries.set(widget.widget_id, query);
    }
    const ids = new Set(visible.map((w) => w.widget_id));
    for (const [wid, card] of this.cards) {
      if (!ids.has(wid)) {
        card.view.destroy();
        card.el.remove();
        this.cards.delete(wid);
      }
    }
    for (const widget of visible) this.renderCard(widget);
    // Cards in grid order, so that reading and tab order follow the layout.
    this.applyPlaces(arrange(visible.map((w) => ({ id: w.widget_id, kind: displayOf(w).kind, grid: displayOf(w).grid }))));
    const ordered = [...this.places.entries()].sort(([, a], [, b]) => a.y - b.y || a.x - b.x);
    for (const [wid] of ordered) this.grid.append(this.cards.get(wid).el);
    this.renderTray(d.widgets.filter((w) => displayOf(w).hidden));
  }

  renderCard(widget) {
    const display = displayOf(widget);
    let card = this.cards.get(widget.widget_id);
    if (!card || card.kind !== display.kind) {
      if (card) {
        card.view.destroy();
        card.el.remove();
      }
      const body = h('div', { class: `card-body body-${display.kind}` });
      const titleId = `title-${widget.widget_id}`;
      card = {
        kind: display.kind,
        title: h('h2', { class: 'card-title', id: titleId }),
        badge: h('span', { class: 'badge badge-stale', hidden: true }, 'Stale'),
        query: h('span', { class: 'card-query' }),
        asOf: h('span', { class: 'card-asof' }),
        body,
      };
      card.el = h('article', {
        class: 'card', 'aria-labelledby': titleId,
        dataset: { widgetId: widget.widget_id, kind: display.kind },
      },
      h('header', { class: 'card-head' }, card.title, card.badge,
        h('button', {
          type: 'button', class: 'icon-button subtle card-edit', title: 'Edit widget',
          'aria-label': 'Edit widget', dataset: { action: 'edit-widget' },
          onclick: () => this.editWidget(widget.widget_id),
        }, icon('pencil'))),
      body,
      h('footer', { class: 'card-foot' }, card.query, card.asOf),
      h('span', { class: 'resize-handle', 'aria-hidden': 'true' }));
      card.view = createView(display.kind, body, this.ctx);
      card.el.tabIndex = this.editing ? 0 : -1;
      this.cards.set(widget.widget_id, card);
    }
    card.title.textContent = titleOf(widget);
    const filter = formatFilter(widget.filter);
    card.query.textContent = `${widget.aggregation} · ${formatSeconds(widget.window_seconds)} window${filter ? ` · ${filter}` : ''}`;
    card.query.title = `${widget.aggregation} of ${widget.metric_name} over ${formatSeconds(widget.window_seconds)}${filter ? `, where ${filter}` : ''}`;
    this.refreshCard(widget);
  }

  // Re-reads a card's value and staleness.
  refreshCard(widget) {
    const card = this.cards.get(widget.widget_id);
    if (!card) return;
    const state = this.values.get(widget.widget_id);
    const live = this.connection.state === 'live';
    const stale = Boolean(state && state.stale) || !live;
    card.el.dataset.phase = phaseOf(widget, state);
    card.el.dataset.stale = String(stale);
    card.el.classList.toggle('is-stale', stale);
    card.badge.hidden = !stale;
    card.badge.textContent = live ? 'Stale' : 'Offline';
    card.badge.title = live
      ? 'The pipeline has not produced a newer value: this one may be out of date.'
      : 'Not connected: this is the last value received.';
    card.asOf.textContent = state && state.as_of && stale ? `as of ${clock(state.as_of)}` : '';
    card.view.update(widget);
  }

  renderTray(hidden) {
    replace(this.tray,
      h('h2', { class: 'tray-title' }, 'Shown only inside tables'),
      h('div', { class: 'tray-items' }, hidden.map((w) => h('button', {
        type: 'button', class: 'chip', onclick: () => this.editWidget(w.widget_id),
      }, icon('pencil'), h('span', {}, titleOf(w))))));
    this.tray.hidden = !this.editing || hidden.length === 0;
  }

  applyPlaces(places) {
    this.places = places;
    for (const [wid, p] of places) {
      const card = this.cards.get(wid);
      if (!card) continue;
      card.el.style.setProperty('--col', p.x + 1);
      card.el.style.setProperty('--row', p.y + 1);
      card.el.style.setProperty('--w', p.w);
      card.el.style.setProperty('--h', p.h);
      card.el.style.setProperty('--order', p.y * 100 + p.x);
      // One column on a phone: each card as tall as it is, but enough for a chart or a table.
      card.el.style.setProperty('--h-narrow', Math.min(4, Math.max(p.h, NARROW_MIN_HEIGHT[card.kind] || 2)));
      card.el.dataset.h = p.h;
    }
  }

  // Saves the places that differ from the stored ones, in one patch.
  async saveLayout(places) {
    this.applyPlaces(places);
    const update = [];
    for (const [wid, p] of places) {
      const widget = this.widget(wid);
      const saved = widget && validPlace(displayOf(widget).grid);
      if (widget && (!saved || ['x', 'y', 'w', 'h'].some((k) => saved[k] !== p[k]))) {
        update.push({ widget_id: wid, display_config: { ...widget.display_config, grid: p } });
      }
    }
    if (!update.length) return;
    try {
      this.dashboard = await api.patchWidgets(this.id, { update });
    } catch (err) {
      toast(`Layout not saved: ${err.message}`, 'error');
    }
    this.render();
  }

  toggleEditing() {
    this.editing = !this.editing;
    this.grid.classList.toggle('is-editing', this.editing);
    this.layoutButton.setAttribute('aria-pressed', String(this.editing));
    this.layoutButton.classList.toggle('active', this.editing);
    this.layoutButton.querySelector('span').textContent = this.editing ? 'Done' : 'Edit layout';
    for (const card of this.cards.values()) card.el.tabIndex = this.editing ? 0 : -1;
    this.renderTray(this.dashboard.widgets.filter((w) => displayOf(w).hidden));
  }

  placeFor(size) {
    return firstFree([...this.places.values()], size.w, size.h);
  }

  async addWidget() {
    const updated = await editWidget(this.dashboard, null, (size) => this.placeFor(size));
    if (updated) {
      this.dashboard = updated;
      this.render();
      toast('Widget added');
    }
  }

  async editWidget(wid) {
    const widget = this.widget(wid);
    if (!widget) return;
    const updated = await editWidget(this.dashboard, widget, (size) => this.placeFor(size));
    if (updated) {
      this.dashboard = updated;
      this.render();
    }
  }

  async rename() {
    const updated = await askText({
      title: 'Rename dashboard', label: 'Name', value: this.dashboard.name, confirm: 'Rename',
      submit: (name) => api.renameDashboard(this.id, name),
    });
    if (updated) {
      this.dashboard = updated;
      this.render();
    }
  }

  async remove() {
    const done = await confirmAction({
      title: 'Delete dashboard?',
      message: `“${this.dashboard.name}”${widgetsPhrase(this.dashboard)} will be deleted for everyone. This cannot be undone.`,
      confirm: 'Delete dashboard',
      submit: () => api.deleteDashboard(this.id),
    });
    if (done) {
      toast(`Deleted “${this.dashboard.name}”`);
      location.hash = '#/';
    }
  }

  onSnapshot(message) {
    for (const w of message.widgets) this.accept(w);
    for (const widget of this.dashboard.widgets) this.refreshCard(widget);
    this.refreshTables();
  }

  onUpdate(message) {
    this.accept(message);
    const widget = this.widget(message.widget_id);
    if (widget) this.refreshCard(widget);
    this.refreshTables(message.widget_id);
  }

  accept(w) {
    this.values.set(w.widget_id, { value: w.value, as_of: w.as_of, stale: Boolean(w.stale) });
    if (w.as_of !== null && w.as_of !== undefined) this.history.add(w.widget_id, w.as_of, w.value);
  }

  // Redraws the tables that show widget `wid` (all tables when `wid` is absent).
  refreshTables(wid) {
    for (const widget of this.dashboard.widgets) {
      const display = displayOf(widget);
      if (display.kind === 'table' && widget.widget_id !== wid && (!wid || display.widgets.includes(wid))) {
        this.refreshCard(widget);
      }
    }
  }

  onConnection(state, detail) {
    if (this.disposed) return;
    const wasLive = this.connection.state === 'live';
    this.connection = { state, detail };
    this.renderConnection();
    if (wasLive !== (state === 'live') && this.dashboard) {
      for (const widget of this.dashboard.widgets) this.refreshCard(widget);
    }
  }

  renderConnection() {
    const { state, detail } = this.connection;
    const wait = detail.retryAt ? Math.max(0, Math.ceil((detail.retryAt - Date.now()) / 1000)) : 0;
    const text = {
      connecting: 'Connecting…',
      live: 'Live',
      reconnecting: wait > 0 ? `Reconnecting in ${wait} s` : 'Reconnecting…',
      deleted: 'Deleted',
      stopped: 'Disconnected',
    }[state] || state;
    this.pill.dataset.state = state;
    this.pill.replaceChildren(h('span', { class: 'conn-dot', 'aria-hidden': 'true' }), h('span', {}, text));
    this.banner.hidden = state !== 'reconnecting';
    if (state === 'reconnecting') {
      replace(this.banner,
        h('span', {}, `Connection to the server lost. Values shown are the last ones received. ${wait > 0 ? `Retrying in ${wait} s.` : 'Retrying…'}`),
        h('button', { type: 'button', class: 'button small', onclick: () => this.stream.retryNow() }, icon('refresh'), h('span', {}, 'Retry now')));
    }
  }

  // Every second: slide the charts, count down the reconnect, save the history now and then.
  tick() {
    for (const widget of this.dashboard.widgets) {
      const kind = displayOf(widget).kind;
      if (kind === 'line' || kind === 'number') this.refreshCard(widget);
    }
    if (this.connection.state === 'reconnecting') this.renderConnection();
    this.history.saveSoon();
  }

  showGone(message) {
    this.dispose();
    this.setCrumbs([{ label: 'Dashboards', href: '#/' }]);
    replace(this.view, h('section', { class: 'empty gone' },
      h('div', { class: 'empty-art', 'aria-hidden': 'true' }, icon('board')),
      h('h2', {}, 'Dashboard not available'),
      h('p', {}, message),
      h('a', { class: 'button primary', href: '#/' }, icon('back'), h('span', {}, 'All dashboards'))));
  }
}
