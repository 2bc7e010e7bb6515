// The REST API (see DESIGN.md): dashboards, widget patches, aggregations. Every call returns
// parsed JSON or throws an ApiError carrying the server's `{error, field}`.
//
// Access tokens: when the server answers 401 (no token, or one it does not know) or 403 (a
// token that may not do this, say a read token changing a dashboard), the page asks for a
// token, keeps it in localStorage, and sends the call again with `Authorization: Bearer`.
// Streams pass it as `?token=` (browsers cannot set headers on a WebSocket). Cancelling the
// question fails the call with the server's error. `forgetToken()` removes it.

import { askToken } from './dialogs.js';

export class ApiError extends Error {
  constructor(status, message, field) {
    super(message);
    this.status = status;
    this.field = field || null;
  }
}

const TOKEN_KEY = 'flowboard.token';
// The token when localStorage is unavailable (private mode): kept for the page's life.
let memoryToken = '';

// The token kept in this browser ('' when none).
export function savedToken() {
  try {
    return localStorage.getItem(TOKEN_KEY) || '';
  } catch (err) {
    return memoryToken;
  }
}

function saveToken(token) {
  memoryToken = token;
  try {
    localStorage.setItem(TOKEN_KEY, token);
  } catch (err) {
    // Private mode: the token lasts as long as the page.
  }
  window.dispatchEvent(new CustomEvent('flowboard-token'));
}

// Removes the token from this browser.
export function forgetToken() {
  memoryToken = '';
  try {
    localStorage.removeItem(TOKEN_KEY);
  } catch (err) {
    // Nothing stored.
  }
  window.dispatchEvent(new CustomEvent('flowboard-token'));
}

// One question at a time: calls refused together wait for the same answer.
let asking = null;

function askForToken(status, message) {
  if (!asking) {
    const had = savedToken() !== '';
    const reason = status === 403
      ? `The saved token may not do this (${message}). Enter a token that may, such as the admin token.`
      : had
        ? `The server refused the saved token (${message}). Enter a valid one.`
        : 'This flowboard needs an access token. Enter the read token to watch dashboards, or the admin token to change them too.';
    asking = askToken({ reason }).finally(() => {
      asking = null;
    });
  }
  return asking;
}

async function call(method, path, body) {
  for (;;) {
    const token = savedToken();
    const headers = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (token) headers.authorization = `Bearer ${token}`;
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new ApiError(0, 'The server cannot be reached. Check that flowboard is running.');
    }
    const text = await response.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch (err) {
      json = null;
    }
    if (response.ok) return json;
    const message = (json && json.error) || `${response.status} ${response.statusText}`;
    if (response.status === 401 || response.status === 403) {
      const given = await askForToken(response.status, message);
      if (given) {
        saveToken(given);
        continue;
      }
    }
    throw new ApiError(response.status, message, json && json.field);
  }
}

// The URL of a dashboard's stream, with the token if there is one.
export function streamUrl(id) {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const token = savedToken();
  const query = token ? `?token=${encodeURIComponent(token)}` : '';
  return `${scheme}://${location.host}/stream/${id}${query}`;
}

export const listDashboards = () => call('GET', '/dashboards');
export const getDashboard = (id) => call('GET', `/dashboards/${id}`);
export const createDashboard = (name, widgets = []) =>
  call('POST', '/dashboards', { name, widgets });
export const renameDashboard = (id, name) => call('PATCH', `/dashboards/${id}`, { name });
export const deleteDashboard = (id) => call('DELETE', `/dashboards/${id}`);
// `patch`: {add: [widget], update: [{widget_id, ...}], remove: [widget_id]}.
export const patchWidgets = (id, patch) => call('PATCH', `/dashboards/${id}/widgets`, patch);

let aggregationsCache = null;
// The aggregations the server offers (cached for the page's life).
export async function aggregations() {
  if (!aggregationsCache) {
    aggregationsCache = call('GET', '/aggregations')
      .then((body) => body.aggregations)
      .catch((err) => {
        aggregationsCache = null;
        throw err;
      });
  }
  return aggregationsCache;
}
