// The REST API (see DESIGN.md): dashboards, widget patches, aggregations. Every call returns
// parsed JSON or throws an ApiError carrying the server's `{error, field}`.

export class ApiError extends Error {
  constructor(status, message, field) {
    super(message);
    this.status = status;
    this.field = field || null;
  }
}

async function call(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
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
  if (!response.ok) {
    const message = (json && json.error) || `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, message, json && json.field);
  }
  return json;
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
