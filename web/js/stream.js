// The live connection to `WS /stream/{dashboard_id}`: a snapshot first, then updates. When the
// connection drops it reconnects with exponential backoff (0.5 s doubling to 15 s, with
// jitter) and starts over from the new snapshot the server sends on every connection. The
// access token, if the page has one, goes on the URL (see api.js).
//
// States reported to `onState(state, detail)`:
//   connecting   — opening the first connection
//   live         — connected, snapshot received
//   reconnecting — waiting to retry; detail: {retryAt (epoch ms), attempt}
//   deleted      — the dashboard is gone; no more retries
//   stopped      — stop() was called

import * as api from './api.js';

const FIRST_DELAY = 500;
const MAX_DELAY = 15000;
// A connection that opens but sends no snapshot in this long is dropped and retried.
const SNAPSHOT_TIMEOUT = 10000;

export class DashboardStream {
  // handlers: {onSnapshot(msg), onUpdate(msg), onDashboard(dashboard), onDeleted(), onState}
  constructor(dashboardId, handlers) {
    this.id = dashboardId;
    this.handlers = handlers;
    this.socket = null;
    this.attempt = 0;
    this.timer = null;
    this.state = null;
    this.stopped = false;
    this.onOnline = () => this.retryNow();
    this.onVisible = () => {
      if (document.visibilityState === 'visible') this.requestSnapshot();
    };
  }

  start() {
    window.addEventListener('online', this.onOnline);
    document.addEventListener('visibilitychange', this.onVisible);
    this.setState('connecting');
    this.connect();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener('online', this.onOnline);
    document.removeEventListener('visibilitychange', this.onVisible);
    clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000, 'leaving');
    this.socket = null;
    this.setState('stopped');
  }

  // Asks the server for a fresh snapshot (e.g. after the tab was in the background).
  requestSnapshot() {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify({ type: 'snapshot_request' }));
    }
  }

  // Skips the rest of the backoff wait.
  retryNow() {
    if (this.stopped || this.state !== 'reconnecting') return;
    clearTimeout(this.timer);
    this.connect();
  }

  setState(state, detail = {}) {
    this.state = state;
    this.handlers.onState(state, detail);
  }

  connect() {
    if (this.stopped) return;
    const socket = new WebSocket(api.streamUrl(this.id));
    this.socket = socket;
    let gotSnapshot = false;
    let deleted = false;
    const watchdog = setTimeout(() => {
      if (!gotSnapshot) socket.close(4000, 'no snapshot');
    }, SNAPSHOT_TIMEOUT);
    socket.onmessage = (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (err) {
        return;
      }
      switch (message.type) {
        case 'snapshot':
          gotSnapshot = true;
          this.attempt = 0;
          if (this.state !== 'live') this.setState('live');
          this.handlers.onSnapshot(message);
          break;
        case 'update':
          this.handlers.onUpdate(message);
          break;
        case 'dashboard':
          this.handlers.onDashboard(message.dashboard);
          break;
        case 'deleted':
          deleted = true;
          break;
        default:
          break;
      }
    };
    socket.onclose = () => {
      clearTimeout(watchdog);
      if (this.socket !== socket || this.stopped) return;
      this.socket = null;
      if (deleted) {
        this.gone();
      } else {
        this.scheduleRetry();
      }
    };
  }

  gone() {
    this.stopped = true;
    this.setState('deleted');
    this.handlers.onDeleted();
  }

  async scheduleRetry() {
    const delay = Math.min(MAX_DELAY, FIRST_DELAY * 2 ** this.attempt) * (0.8 + Math.random() * 0.4);
    this.attempt += 1;
    this.setState('reconnecting', { retryAt: Date.now() + delay, attempt: this.attempt });
    this.timer = setTimeout(() => this.connect(), delay);
    // A refused upgrade looks the same as a network failure to a browser: ask whether the
    // dashboard still exists (and, through the API, for a token if one is needed now).
    if (this.attempt > 1) {
      try {
        await api.getDashboard(this.id);
      } catch (err) {
        if (err.status === 404 && !this.stopped) {
          clearTimeout(this.timer);
          this.gone();
        }
        // Otherwise the server is down, or no token was given: keep retrying.
      }
    }
  }
}
