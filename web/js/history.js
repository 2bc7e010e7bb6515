// The values a dashboard's widgets were pushed, kept in the browser for the line charts and
// sparklines: the server sends a value when it changes, and the page remembers them. Kept in
// sessionStorage, so reloading the page keeps the charts; bounded in age and count.

const KEEP_MS = 24 * 60 * 60 * 1000;
const MAX_POINTS = 5000;
const SAVE_EVERY_MS = 5000;

export class History {
  constructor(dashboardId) {
    this.key = `flowboard.history.${dashboardId}`;
    this.series = new Map(); // widget id → [{t, v}] in time order
    this.savedAt = 0;
    this.onHide = () => this.save();
    window.addEventListener('pagehide', this.onHide);
    try {
      const stored = JSON.parse(sessionStorage.getItem(this.key) || '{}');
      const since = Date.now() - KEEP_MS;
      for (const [id, points] of Object.entries(stored)) {
        if (Array.isArray(points)) this.series.set(id, points.filter((p) => p && p.t > since));
      }
    } catch (err) {
      // Nothing stored, or storage unavailable: start empty.
    }
  }

  // Records that widget `id` had `value` as of `t`. A repeated (t, value) is ignored; a value
  // older than the newest one replaces nothing.
  add(id, t, value) {
    let points = this.series.get(id);
    if (!points) {
      points = [];
      this.series.set(id, points);
    }
    const last = points[points.length - 1];
    if (last && (t < last.t || (t === last.t && last.v === value))) return;
    if (last && t === last.t) points.pop();
    points.push({ t, v: value });
    const since = t - KEEP_MS;
    let drop = 0;
    while (drop < points.length - 1 && points[drop + 1].t <= since) drop += 1;
    if (points.length - drop > MAX_POINTS) drop = points.length - MAX_POINTS;
    if (drop) points.splice(0, drop);
  }

  // Forgets widget `id`'s values (its query changed).
  clear(id) {
    this.series.delete(id);
  }

  points(id) {
    return this.series.get(id) || [];
  }

  saveSoon() {
    if (Date.now() - this.savedAt >= SAVE_EVERY_MS) this.save();
  }

  save() {
    this.savedAt = Date.now();
    try {
      sessionStorage.setItem(this.key, JSON.stringify(Object.fromEntries(this.series)));
    } catch (err) {
      // Storage full or unavailable: the history lives only in this page.
    }
  }

  dispose() {
    window.removeEventListener('pagehide', this.onHide);
    this.save();
  }
}
