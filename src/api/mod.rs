//! The REST API for dashboards, widgets and widget snapshots.
//!
//! | method + path | body | answer |
//! |---|---|---|
//! | `POST /dashboards` | `{"name", "widgets": [widget...]}` | `201` the dashboard |
//! | `GET /dashboards` | | `200 [dashboard...]`, oldest first |
//! | `GET /dashboards/{id}` | | `200` the dashboard |
//! | `PATCH /dashboards/{id}` | `{"name"}` | `200` the dashboard |
//! | `PATCH /dashboards/{id}/widgets` | `{"add": [...], "update": [...], "remove": [...]}` | `200` the dashboard |
//! | `DELETE /dashboards/{id}` | | `204` |
//! | `GET /dashboards/{d}/widgets/{w}/snapshot` | | `200 {"widget_id", "value", "as_of", "stale"}` |
//! | `GET /aggregations` | | `200 {"aggregations": ["count", ...]}` |
//!
//! A dashboard is `{"dashboard_id", "id" (the same), "name", "widgets", "created_at",
//! "updated_at"}`; a widget `{"widget_id", "metric_name", "aggregation", "window_seconds",
//! "refresh_interval_seconds", "filter", "display_config"}` (see [`validate`] for the rules).
//! Errors are `{"error", "field"}` (see [`crate::error`]). A widget patch is all or nothing:
//! a `widget_id` in `update`/`remove` that is not in the dashboard is a 404 naming its field
//! (`update[1].widget_id`, `remove[0]`); a widget named twice across `update` and `remove` is a
//! 400. A request body is read as JSON whatever its content type, up to [`DEFAULT_BODY_LIMIT`]
//! (see [`Api::with_body_limit`]).
//!
//! Quotas ([`Api::with_limits`]): a write that would take a dashboard past its widget limit, or
//! the server past its dashboard limit, is a `409` (naming `widgets` or `add`). Quotas are
//! checked under the write lock, against the dashboard as stored (widgets) and the hub's
//! dashboards (which the hub learns of at every write), so concurrent writes cannot both pass.
//!
//! After each successful write the hub learns the new dashboard first, then the dataflow gets
//! `Upsert` for every widget added or whose query changed and `Remove` for every widget
//! removed. Writes are serialized, so the hub and the dataflow see them in commit order.

pub(crate) mod extract;
mod handlers;
pub mod validate;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use dataflow::pipeline::WidgetControl;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, path};

use crate::auth::{Auth, Role};
use crate::config::Limits;
use crate::hub::Hub;
use crate::store::Store;
use validate::Rules;

use extract::{body, id};

/// The default limit of a request body: 10 MiB.
pub const DEFAULT_BODY_LIMIT: u64 = 10 * 1024 * 1024;

/// What the REST handlers work with. Cheap to clone.
#[derive(Clone)]
pub struct Api {
    store: Store,
    hub: Hub,
    widgets: WidgetControl,
    /// Retention, tag limits and widgets per dashboard.
    rules: Rules,
    /// Most dashboards.
    max_dashboards: usize,
    body_limit: u64,
    /// Who may read and who may write.
    auth: Auth,
    /// Held across a write and its notifications, so they happen in commit order.
    write_lock: Arc<tokio::sync::Mutex<()>>,
}

/// The REST routes with the default body limit; see [`Api::routes`].
pub fn routes(
    store: Store,
    hub: Hub,
    widgets: WidgetControl,
    retention_seconds: u64,
) -> BoxedFilter<(Response,)> {
    Api::new(store, hub, widgets, retention_seconds).routes()
}

impl Api {
    /// The API over `store`, telling `hub` and the dataflow (`widgets`) about changes. Widget
    /// windows may be up to `retention_seconds` long.
    pub fn new(store: Store, hub: Hub, widgets: WidgetControl, retention_seconds: u64) -> Api {
        Api {
            store,
            hub,
            widgets,
            rules: Rules::new(retention_seconds),
            max_dashboards: Limits::default().dashboards,
            body_limit: DEFAULT_BODY_LIMIT,
            auth: Auth::default(),
            write_lock: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Requires tokens: reads need the read token, writes the admin token (see [`crate::auth`]).
    pub fn with_auth(mut self, auth: Auth) -> Api {
        self.auth = auth;
        self
    }

    /// Sets the largest request body accepted, in bytes (larger ones get a 413).
    pub fn with_body_limit(mut self, bytes: u64) -> Api {
        self.body_limit = bytes;
        self
    }

    /// Applies the body size, tag (for filters), widget and dashboard limits of `limits`.
    pub fn with_limits(mut self, limits: &Limits) -> Api {
        self.body_limit = limits.body_bytes;
        self.rules.tags = limits.tags;
        self.rules.widgets_per_dashboard = limits.widgets_per_dashboard;
        self.max_dashboards = limits.dashboards;
        self
    }

    /// The routes. Rejections (unknown path, wrong method, bad id in the path, body too large)
    /// are left to [`crate::error::recover`], to be applied once to all of the server's routes.
    pub fn routes(self) -> BoxedFilter<(Response,)> {
        let limit = self.body_limit;
        let read = self.auth.require(Role::Read);
        let admin = self.auth.require(Role::Admin);
        let api = warp::any().map(move || self.clone());
        let dashboards = path("dashboards");
        let dashboard = dashboards.and(id("dashboard_id"));

        let create = dashboards
            .and(path::end())
            .and(warp::post())
            .and(admin.clone())
            .and(api.clone())
            .and(body(limit))
            .then(|api: Api, body: Vec<u8>| async move { api.create(&body).await });
        let list = dashboards
            .and(path::end())
            .and(warp::get())
            .and(read.clone())
            .and(api.clone())
            .then(|api: Api| async move { api.list().await });
        let get = dashboard
            .and(path::end())
            .and(warp::get())
            .and(read.clone())
            .and(api.clone())
            .then(|id, api: Api| async move { api.get(id).await });
        let rename = dashboard
            .and(path::end())
            .and(warp::patch())
            .and(admin.clone())
            .and(api.clone())
            .and(body(limit))
            .then(|id, api: Api, body: Vec<u8>| async move { api.rename(id, &body).await });
        let delete = dashboard
            .and(path::end())
            .and(warp::delete())
            .and(admin.clone())
            .and(api.clone())
            .then(|id, api: Api| async move { api.delete(id).await });
        let patch_widgets = dashboard
            .and(path("widgets"))
            .and(path::end())
            .and(warp::patch())
            .and(admin.clone())
            .and(api.clone())
            .and(body(limit))
            .then(|id, api: Api, body: Vec<u8>| async move { api.patch_widgets(id, &body).await });
        let snapshot = dashboard
            .and(path("widgets"))
            .and(id("widget_id"))
            .and(path("snapshot"))
            .and(path::end())
            .and(warp::get())
            .and(read.clone())
            .and(api.clone())
            .then(
                |dashboard, widget, api: Api| async move { api.snapshot(dashboard, widget).await },
            );
        let aggregations = path("aggregations")
            .and(path::end())
            .and(warp::get())
            .and(read)
            .map(handlers::aggregations);

        create
            .or(list)
            .unify()
            .or(get)
            .unify()
            .or(rename)
            .unify()
            .or(delete)
            .unify()
            .or(patch_widgets)
            .unify()
            .or(snapshot)
            .unify()
            .or(aggregations)
            .unify()
            .boxed()
    }
}
