//! Successful requests: what they answer, what they store, which commands they send.

use dataflow::widget::WidgetCommand;
use operators::registry::AggregationKind;
use serde_json::{Value, json};
use uuid::Uuid;
use warp::http::StatusCode;

use super::{Fixture, RETENTION, widget_ids};
use crate::store::Store;

const TWO_WIDGETS: &str = r#"{"name": "ops", "widgets": [
    {"metric_name": "api.latency", "aggregation": "avg", "window_seconds": 300,
     "refresh_interval_seconds": 5, "filter": {"region": "eu"},
     "display_config": {"chart": "line", "grid": {"x": 0, "y": 1}}},
    {"metric_name": "api.requests", "aggregation": "count"}]}"#;

fn upserted(commands: &[WidgetCommand]) -> Vec<(String, u64)> {
    commands
        .iter()
        .filter_map(|c| match c {
            WidgetCommand::Upsert(q) => Some((q.key.id.to_string(), q.key.generation)),
            WidgetCommand::Remove(_) => None,
        })
        .collect()
}

#[tokio::test]
async fn create_answers_201_with_ids_and_defaults_and_upserts_each_widget() {
    let f = Fixture::new().await;
    let (status, dashboard) = f.call("POST", "/dashboards", Some(TWO_WIDGETS)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(dashboard["name"], "ops");
    assert_eq!(dashboard["dashboard_id"], dashboard["id"]);
    assert!(Uuid::parse_str(dashboard["id"].as_str().unwrap_or_default()).is_ok());
    let first = &dashboard["widgets"][0];
    assert_eq!(first["window_seconds"], 300);
    assert_eq!(first["refresh_interval_seconds"], 5);
    assert_eq!(first["filter"], json!({"region": "eu"}));
    assert_eq!(
        first["display_config"],
        json!({"chart": "line", "grid": {"x": 0, "y": 1}})
    );
    let defaults = &dashboard["widgets"][1];
    assert_eq!(defaults["aggregation"], "count");
    assert_eq!(defaults["window_seconds"], 3600);
    assert_eq!(defaults["refresh_interval_seconds"], 1);
    assert_eq!(defaults["filter"], json!({}));
    assert_eq!(defaults["display_config"], json!({}));
    assert!(defaults.get("generation").is_none());

    let ids = widget_ids(&dashboard);
    assert_eq!(ids.len(), 2);
    let commands = f.commands();
    assert_eq!(
        upserted(&commands),
        [(ids[0].clone(), 1), (ids[1].clone(), 1)]
    );
    assert_eq!(commands.len(), 2);
    let WidgetCommand::Upsert(query) = &commands[0] else {
        panic!("expected an upsert, got {commands:?}");
    };
    assert_eq!(query.metric, "api.latency");
    assert_eq!(query.filter, [("region".to_string(), "eu".to_string())]);
    assert_eq!(query.spec.window_ms, 300_000);
}

#[tokio::test]
async fn default_window_is_capped_at_the_retention() {
    let f = Fixture::with(600, |api| api).await;
    let dashboard = f
        .create(r#"{"name": "d", "widgets": [{"metric_name": "m", "aggregation": "sum"}]}"#)
        .await;
    assert_eq!(dashboard["widgets"][0]["window_seconds"], 600);
}

#[tokio::test]
async fn list_get_rename_round_trip() {
    let f = Fixture::new().await;
    let (status, empty) = f.call("GET", "/dashboards", None).await;
    assert_eq!((status, empty), (StatusCode::OK, json!([])));
    let ops = f.create(TWO_WIDGETS).await;
    let bare = f.create(r#"{"name": "bare"}"#).await;
    assert_eq!(bare["widgets"], json!([]));

    let (status, listed) = f.call("GET", "/dashboards", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed, json!([ops, bare]));
    let id = ops["id"].as_str().unwrap_or_default();
    let (status, got) = f.call("GET", &format!("/dashboards/{id}"), None).await;
    assert_eq!((status, &got), (StatusCode::OK, &ops));

    let (status, renamed) = f
        .call(
            "PATCH",
            &format!("/dashboards/{id}"),
            Some(r#"{"name": "Operations"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(renamed["name"], "Operations");
    assert_eq!(renamed["widgets"], ops["widgets"]);
    assert!(f.commands().is_empty(), "a rename changes no query");
    let (_, got) = f.call("GET", &format!("/dashboards/{id}"), None).await;
    assert_eq!(got, renamed);
}

#[tokio::test]
async fn patch_widgets_sends_exactly_the_changed_queries() {
    let f = Fixture::new().await;
    let dashboard = f
        .create(
            r#"{"name": "d", "widgets": [
                {"metric_name": "a", "aggregation": "sum"},
                {"metric_name": "b", "aggregation": "sum"},
                {"metric_name": "c", "aggregation": "sum"},
                {"metric_name": "d", "aggregation": "sum"}]}"#,
        )
        .await;
    let id = dashboard["id"].as_str().unwrap_or_default();
    let [a, b, c, d] = <[String; 4]>::try_from(widget_ids(&dashboard)).expect("4 widgets");
    let body = json!({
        "add": [{"metric_name": "e", "aggregation": "max", "window_seconds": 60}],
        "update": [
            {"widget_id": a, "window_seconds": 120},
            {"widget_id": b, "display_config": {"color": "red"}, "refresh_interval_seconds": 9},
            {"widget_id": c, "metric_name": "c"},
        ],
        "remove": [d],
    });
    let (status, patched) = f
        .call(
            "PATCH",
            &format!("/dashboards/{id}/widgets"),
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    let ids = widget_ids(&patched);
    assert_eq!(ids[..3], [a.clone(), b.clone(), c.clone()]);
    assert_eq!(ids.len(), 4);
    let e = ids[3].clone();
    assert_eq!(patched["widgets"][0]["window_seconds"], 120);
    assert_eq!(
        patched["widgets"][1]["display_config"],
        json!({"color": "red"})
    );
    assert_eq!(patched["widgets"][1]["refresh_interval_seconds"], 9);
    assert_eq!(patched["widgets"][3]["aggregation"], "max");

    let commands = f.commands();
    assert_eq!(
        upserted(&commands),
        [(a.clone(), 2), (e, 1)],
        "{commands:?}"
    );
    let removed: Vec<WidgetCommand> = commands
        .into_iter()
        .filter(|c| matches!(c, WidgetCommand::Remove(_)))
        .collect();
    assert_eq!(
        removed,
        [WidgetCommand::Remove(Uuid::parse_str(&d).expect("uuid"))]
    );

    let (_, got) = f.call("GET", &format!("/dashboards/{id}"), None).await;
    assert_eq!(got, patched);

    // The same change again leaves the generation as it is and sends nothing.
    let again = json!({"update": [{"widget_id": a, "window_seconds": 120}]});
    let (status, _) = f
        .call(
            "PATCH",
            &format!("/dashboards/{id}/widgets"),
            Some(&again.to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(f.commands().is_empty());
    // Each query field bumps it once more.
    for change in [
        json!({"metric_name": "a2"}),
        json!({"aggregation": "min"}),
        json!({"filter": {"host": "h"}}),
        json!({"filter": null}),
    ] {
        let mut update = change.clone();
        update["widget_id"] = json!(a);
        let body = json!({"update": [update]}).to_string();
        let (status, _) = f
            .call("PATCH", &format!("/dashboards/{id}/widgets"), Some(&body))
            .await;
        assert_eq!(status, StatusCode::OK, "{change}");
        let generation = f.store.all_widgets().await.expect("widgets")[0].generation;
        assert_eq!(
            upserted(&f.commands()),
            [(a.clone(), generation)],
            "{change}"
        );
    }
    assert_eq!(
        f.store.all_widgets().await.expect("widgets")[0].generation,
        6
    );
}

#[tokio::test]
async fn empty_patch_answers_the_dashboard_and_sends_nothing() {
    let f = Fixture::new().await;
    let dashboard = f.create(TWO_WIDGETS).await;
    let id = dashboard["id"].as_str().unwrap_or_default();
    let (status, got) = f
        .call("PATCH", &format!("/dashboards/{id}/widgets"), Some("{}"))
        .await;
    assert_eq!((status, got), (StatusCode::OK, dashboard));
    assert!(f.commands().is_empty());
}

#[tokio::test]
async fn delete_removes_every_widget_then_404s() {
    let f = Fixture::new().await;
    let dashboard = f.create(TWO_WIDGETS).await;
    let kept = f
        .create(r#"{"name": "kept", "widgets": [{"metric_name": "k", "aggregation": "sum"}]}"#)
        .await;
    let id = dashboard["id"].as_str().unwrap_or_default();
    let (status, body) = f.call("DELETE", &format!("/dashboards/{id}"), None).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    let expected: Vec<WidgetCommand> = widget_ids(&dashboard)
        .iter()
        .map(|w| WidgetCommand::Remove(Uuid::parse_str(w).expect("uuid")))
        .collect();
    assert_eq!(f.commands(), expected);

    for method in ["GET", "DELETE"] {
        let (status, error) = f.call(method, &format!("/dashboards/{id}"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(error["field"], "dashboard_id");
    }
    let (_, listed) = f.call("GET", "/dashboards", None).await;
    assert_eq!(listed, json!([kept]));
}

#[tokio::test]
async fn snapshot_of_known_widget_and_404s() {
    let f = Fixture::new().await;
    let dashboard = f.create(TWO_WIDGETS).await;
    let id = dashboard["id"].as_str().unwrap_or_default();
    let widget = &widget_ids(&dashboard)[0];
    let (status, snapshot) = f
        .call(
            "GET",
            &format!("/dashboards/{id}/widgets/{widget}/snapshot"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(snapshot["widget_id"], json!(widget));
    for key in ["value", "as_of", "stale"] {
        assert!(snapshot.get(key).is_some(), "{key} missing: {snapshot}");
    }

    let other = Uuid::new_v4();
    for (path, field) in [
        (
            format!("/dashboards/{id}/widgets/{other}/snapshot"),
            "widget_id",
        ),
        (
            format!("/dashboards/{other}/widgets/{widget}/snapshot"),
            "dashboard_id",
        ),
    ] {
        let (status, error) = f.call("GET", &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(error["field"], field, "{path}");
    }
}

#[tokio::test]
async fn aggregations_lists_the_registry() {
    let f = Fixture::new().await;
    let (status, body) = f.call("GET", "/aggregations", None).await;
    assert_eq!(status, StatusCode::OK);
    // Every registered aggregation, in registration order, whatever was added since: the
    // built-ins of the contract first.
    let registered: Vec<&str> = AggregationKind::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(body, json!({ "aggregations": registered }));
    assert_eq!(registered[..5], ["count", "sum", "avg", "min", "max"]);
}

#[tokio::test]
async fn dashboards_survive_reopening_the_store() {
    let f = Fixture::new().await;
    let dashboard = f.create(TWO_WIDGETS).await;
    let reopened = Store::open(f.dir.path()).await.expect("reopen");
    let (control, _commands) = dataflow::pipeline::WidgetControl::channel();
    let routes = super::super::routes(reopened, crate::hub::Hub::new(1), control, RETENTION);
    let response = warp::test::request()
        .path("/dashboards")
        .reply(&routes)
        .await;
    let listed: Value = serde_json::from_slice(response.body()).expect("json");
    assert_eq!(listed, json!([dashboard]));
}
