//! REST tests: requests through the routes (and `recover`) against a real store in a
//! temporary directory, the stub hub, and a widget-command channel whose output is checked.

mod errors;
mod limits;
mod round_trips;
mod validation;

use std::sync::mpsc::Receiver;

use dataflow::pipeline::WidgetControl;
use dataflow::widget::WidgetCommand;
use serde_json::Value;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;

use super::Api;
use crate::error::recover;
use crate::hub::Hub;
use crate::store::Store;

/// The retention of the test server: windows up to 2 h, the default window 1 h.
const RETENTION: u64 = 7_200;

struct Fixture {
    dir: tempfile::TempDir,
    store: Store,
    commands: Receiver<WidgetCommand>,
    routes: BoxedFilter<(Response,)>,
}

impl Fixture {
    async fn new() -> Fixture {
        Fixture::with(RETENTION, |api| api).await
    }

    async fn with(retention_seconds: u64, configure: impl FnOnce(Api) -> Api) -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).await.expect("open store");
        let (control, commands) = WidgetControl::channel();
        let api = configure(Api::new(
            store.clone(),
            Hub::new(1),
            control,
            retention_seconds,
        ));
        Fixture {
            dir,
            store,
            commands,
            routes: api.routes(),
        }
    }

    /// Sends a request; answers the status and the JSON body (`Null` when empty).
    async fn call(&self, method: &str, path: &str, body: Option<&str>) -> (StatusCode, Value) {
        let mut request = warp::test::request().method(method).path(path);
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.reply(&self.routes.clone().recover(recover)).await;
        let status = response.status();
        let body = response.body();
        if body.is_empty() {
            return (status, Value::Null);
        }
        let json = serde_json::from_slice(body).unwrap_or_else(|e| {
            panic!("{method} {path}: {status} body is not JSON ({e}): {body:?}")
        });
        (status, json)
    }

    /// Creates a dashboard from `body`, expecting success; drains the commands it sent.
    async fn create(&self, body: &str) -> Value {
        let (status, dashboard) = self.call("POST", "/dashboards", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{dashboard}");
        self.commands();
        dashboard
    }

    /// The widget commands sent since the last call.
    fn commands(&self) -> Vec<WidgetCommand> {
        self.commands.try_iter().collect()
    }
}

/// The `widget_id`s of a dashboard's JSON, in order.
fn widget_ids(dashboard: &Value) -> Vec<String> {
    dashboard["widgets"]
        .as_array()
        .map(|widgets| {
            widgets
                .iter()
                .filter_map(|w| w["widget_id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
