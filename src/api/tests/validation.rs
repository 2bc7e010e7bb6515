//! Invalid bodies: each is a 400 (or 404) naming its field, and changes nothing.

use operators::registry::AggregationKind;
use serde_json::{Value, json};
use warp::http::StatusCode;

use super::{Fixture, widget_ids};

/// Expects `body` sent as `method path` to fail with `status` naming `field`, with a message
/// that names it too.
async fn expect_error(
    f: &Fixture,
    method: &str,
    path: &str,
    body: &str,
    status: StatusCode,
    field: &str,
) {
    let (got, error) = f.call(method, path, Some(body)).await;
    assert_eq!(got, status, "{body} → {error}");
    assert_eq!(error["field"], field, "{body} → {error}");
    let message = error["error"].as_str().unwrap_or_default();
    assert!(
        message.contains(field),
        "{body}: message {message:?} does not name {field}"
    );
    assert!(f.commands().is_empty(), "{body} sent widget commands");
}

fn widget(extra: Value) -> Value {
    let mut widget = json!({"metric_name": "m", "aggregation": "sum"});
    if let (Some(widget), Value::Object(extra)) = (widget.as_object_mut(), extra) {
        widget.extend(extra);
    }
    widget
}

#[tokio::test]
async fn invalid_dashboards_are_refused_by_field() {
    let f = Fixture::new().await;
    let long_name = "x".repeat(201);
    let long_metric = "m".repeat(201);
    let cases: Vec<(Value, &str)> = vec![
        (json!({"widgets": []}), "name"),
        (json!({"name": null}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": " \t "}), "name"),
        (json!({"name": long_name}), "name"),
        (json!({"name": 5}), "name"),
        (json!({"name": "d", "colour": "red"}), "colour"),
        (json!({"name": "d", "widgets": {}}), "widgets"),
        (json!({"name": "d", "widgets": [5]}), "widgets[0]"),
        (
            json!({"name": "d", "widgets": [widget(json!({})), {"aggregation": "sum"}]}),
            "widgets[1].metric_name",
        ),
        (
            json!({"name": "d", "widgets": [{"metric_name": "m"}]}),
            "widgets[0].aggregation",
        ),
        (
            json!({"name": "d", "widgets": [widget(json!({"metric_name": "bad name!"}))]}),
            "widgets[0].metric_name",
        ),
        (
            json!({"name": "d", "widgets": [widget(json!({"metric_name": long_metric}))]}),
            "widgets[0].metric_name",
        ),
        (
            json!({"name": "d", "widgets": [widget(json!({"metric_name": 7}))]}),
            "widgets[0].metric_name",
        ),
        (
            json!({"name": "d", "widgets": [widget(json!({"aggregation": "median"}))]}),
            "widgets[0].aggregation",
        ),
        (
            json!({"name": "d", "widgets": [widget(json!({"window_seconds": 0}))]}),
            "widgets[0].window_seconds",
        ),
        (
            json!({"name": "d", "widgets": [widget(json!({"window_seconds": -5}))]}),
            "widgets[0].window_seconds",
        ),
        (
            json!({"name": "d", "widgets": [widget(json!({"window_seconds": 1.5}))]}),
            "widgets[0].window_seconds",
        ),
        (
            json!({"name": "d", "widgets": [widget(json!({"window_seconds": "60"}))]}),
            "widgets[0].window_seconds",
        ),
        (
            json!({"name": "d", "widgets": [widget(json!({"window_seconds": 7201}))]}),
            "widgets[0].window_seconds",
        ),
        (
            json!({"name": "d", "widgets": [widget(json!({"window_seconds": 1e300}))]}),
            "widgets[0].window_seconds",
        ),
        (
            json!({"name": "d", "widgets": [widget(json!({"refresh_interval_seconds": 0}))]}),
            "widgets[0].refresh_interval_seconds",
        ),
        (
            json!({"name": "d", "widgets": [widget(json!({"refresh_interval_seconds": 86401}))]}),
            "widgets[0].refresh_interval_seconds",
        ),
        (
            json!({"name": "d", "widgets": [widget(json!({"refresh_interval_seconds": true}))]}),
            "widgets[0].refresh_interval_seconds",
        ),
        (
            json!({"name": "d", "widgets": [widget(json!({"filter": ["host"]}))]}),
            "widgets[0].filter",
        ),
        (
            json!({"name": "d", "widgets": [widget(json!({"filter": {"": "x"}}))]}),
            "widgets[0].filter",
        ),
        (
            json!({"name": "d", "widgets": [widget(json!({"filter": {"host": 1}}))]}),
            "widgets[0].filter.host",
        ),
        (
            json!({"name": "d", "widgets": [widget(json!({"widget_id": "5f0c5b7e-9f6e-4c1b-8d5e-2b1f3c4d5e6f"}))]}),
            "widgets[0].widget_id",
        ),
        (
            json!({"name": "d", "widgets": [widget(json!({"colour": "red"}))]}),
            "widgets[0].colour",
        ),
    ];
    for (body, field) in cases {
        expect_error(
            &f,
            "POST",
            "/dashboards",
            &body.to_string(),
            StatusCode::BAD_REQUEST,
            field,
        )
        .await;
    }
    let (_, listed) = f.call("GET", "/dashboards", None).await;
    assert_eq!(listed, json!([]), "an invalid create stored something");
}

#[tokio::test]
async fn unknown_aggregation_error_lists_the_known_ones() {
    let f = Fixture::new().await;
    let body = json!({"name": "d", "widgets": [widget(json!({"aggregation": "p99"}))]});
    let (_, error) = f.call("POST", "/dashboards", Some(&body.to_string())).await;
    let message = error["error"].as_str().unwrap_or_default();
    let registered: Vec<&str> = AggregationKind::ALL.iter().map(|k| k.name()).collect();
    assert!(message.contains(&registered.join(", ")), "{message}");
}

#[tokio::test]
async fn nulls_mean_defaults_where_there_are_defaults() {
    let f = Fixture::new().await;
    let body = json!({"name": "d", "widgets": [widget(json!({
        "widget_id": null, "window_seconds": null, "refresh_interval_seconds": null,
        "filter": null, "display_config": null}))]});
    let dashboard = f.create(&body.to_string()).await;
    let widget = &dashboard["widgets"][0];
    assert_eq!(widget["window_seconds"], 3600);
    assert_eq!(widget["refresh_interval_seconds"], 1);
    assert_eq!(
        (&widget["filter"], &widget["display_config"]),
        (&json!({}), &json!({}))
    );
}

#[tokio::test]
async fn invalid_patches_are_refused_by_field_and_change_nothing() {
    let f = Fixture::new().await;
    let dashboard = f
        .create(
            &json!({"name": "d", "widgets": [widget(json!({})), widget(json!({}))]}).to_string(),
        )
        .await;
    let id = dashboard["id"].as_str().unwrap_or_default();
    let path = format!("/dashboards/{id}/widgets");
    let [a, b] = <[String; 2]>::try_from(widget_ids(&dashboard)).expect("2 widgets");
    let missing = "00000000-0000-4000-8000-000000000000";
    let good_add = widget(json!({"metric_name": "new"}));
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            json!({"add": [{"aggregation": "sum"}]}),
            StatusCode::BAD_REQUEST,
            "add[0].metric_name",
        ),
        (
            json!({"add": [good_add, widget(json!({"window_seconds": 0}))]}),
            StatusCode::BAD_REQUEST,
            "add[1].window_seconds",
        ),
        (
            json!({"add": [widget(json!({"widget_id": a}))]}),
            StatusCode::BAD_REQUEST,
            "add[0].widget_id",
        ),
        (
            json!({"update": [{"window_seconds": 5}]}),
            StatusCode::BAD_REQUEST,
            "update[0].widget_id",
        ),
        (
            json!({"update": [{"widget_id": "nope"}]}),
            StatusCode::BAD_REQUEST,
            "update[0].widget_id",
        ),
        (
            json!({"update": [{"widget_id": a, "metric_name": null}]}),
            StatusCode::BAD_REQUEST,
            "update[0].metric_name",
        ),
        (
            json!({"update": [{"widget_id": a, "aggregation": null}]}),
            StatusCode::BAD_REQUEST,
            "update[0].aggregation",
        ),
        (
            json!({"update": [{"widget_id": a, "window_seconds": 0}]}),
            StatusCode::BAD_REQUEST,
            "update[0].window_seconds",
        ),
        (
            json!({"update": [{"widget_id": a, "filter": {"k": false}}]}),
            StatusCode::BAD_REQUEST,
            "update[0].filter.k",
        ),
        (
            json!({"update": [{"widget_id": a, "size": 3}]}),
            StatusCode::BAD_REQUEST,
            "update[0].size",
        ),
        (
            json!({"update": [{"widget_id": a}, {"widget_id": a}]}),
            StatusCode::BAD_REQUEST,
            "update[1].widget_id",
        ),
        (
            json!({"update": [{"widget_id": a, "window_seconds": 9}], "remove": [a]}),
            StatusCode::BAD_REQUEST,
            "remove[0]",
        ),
        (
            json!({"remove": [b, b]}),
            StatusCode::BAD_REQUEST,
            "remove[1]",
        ),
        (json!({"remove": [5]}), StatusCode::BAD_REQUEST, "remove[0]"),
        (json!({"remove": b}), StatusCode::BAD_REQUEST, "remove"),
        (json!({"name": "renamed"}), StatusCode::BAD_REQUEST, "name"),
        (
            json!({"add": [good_add], "update": [{"widget_id": missing, "window_seconds": 9}]}),
            StatusCode::NOT_FOUND,
            "update[0].widget_id",
        ),
        (
            json!({"update": [{"widget_id": a, "window_seconds": 9}], "remove": [b, missing]}),
            StatusCode::NOT_FOUND,
            "remove[1]",
        ),
    ];
    for (body, status, field) in cases {
        expect_error(&f, "PATCH", &path, &body.to_string(), status, field).await;
    }
    let (_, got) = f.call("GET", &format!("/dashboards/{id}"), None).await;
    assert_eq!(got, dashboard, "an invalid patch changed the dashboard");
    assert_eq!(
        f.store.all_widgets().await.expect("widgets")[0].generation,
        1
    );
}

#[tokio::test]
async fn invalid_renames_are_refused_by_field() {
    let f = Fixture::new().await;
    let dashboard = f.create(r#"{"name": "d"}"#).await;
    let path = format!(
        "/dashboards/{}",
        dashboard["id"].as_str().unwrap_or_default()
    );
    for (body, field) in [
        (json!({}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": ["x"]}), "name"),
        (json!({"name": "x", "widgets": []}), "widgets"),
    ] {
        expect_error(
            &f,
            "PATCH",
            &path,
            &body.to_string(),
            StatusCode::BAD_REQUEST,
            field,
        )
        .await;
    }
    let (_, got) = f.call("GET", &path, None).await;
    assert_eq!(got, dashboard);
}
