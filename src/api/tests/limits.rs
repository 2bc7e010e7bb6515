//! Quotas and limits of dashboard writes: widgets per dashboard and dashboards are `409`s
//! naming what asks for too much, filters are held to the tag limits of events, and a
//! `display_config` may not nest too deep. None of them changes anything.

use dataflow::event::TagLimits;
use serde_json::{Value, json};
use warp::http::StatusCode;

use super::{Fixture, RETENTION, widget_ids};
use crate::config::Limits;

fn widgets(n: usize) -> Vec<Value> {
    (0..n)
        .map(|_| json!({"metric_name": "m", "aggregation": "count"}))
        .collect()
}

async fn limited() -> Fixture {
    let limits = Limits {
        widgets_per_dashboard: 3,
        dashboards: 2,
        tags: TagLimits {
            max_tags: 2,
            max_key_chars: 4,
            max_value_chars: 5,
        },
        ..Limits::default()
    };
    Fixture::with(RETENTION, |api| api.with_limits(&limits)).await
}

async fn refused(f: &Fixture, method: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let (status, error) = f.call(method, path, Some(&body.to_string())).await;
    assert!(status.is_client_error(), "{body} → {status} {error}");
    assert!(error["error"].is_string(), "{error}");
    assert!(f.commands().is_empty(), "{body} sent widget commands");
    (status, error)
}

#[tokio::test]
async fn widgets_per_dashboard_is_a_quota() {
    let f = limited().await;
    let (status, error) = refused(
        &f,
        "POST",
        "/dashboards",
        json!({"name": "d", "widgets": widgets(4)}),
    )
    .await;
    assert_eq!(
        (status, &error["field"]),
        (StatusCode::CONFLICT, &json!("widgets"))
    );
    assert!(
        error["error"].as_str().unwrap_or("").contains("at most 3"),
        "{error}"
    );

    let dashboard = f
        .create(&json!({"name": "d", "widgets": widgets(2)}).to_string())
        .await;
    let id = dashboard["dashboard_id"].as_str().expect("id").to_string();
    let path = format!("/dashboards/{id}/widgets");
    let (status, error) = refused(&f, "PATCH", &path, json!({"add": widgets(2)})).await;
    assert_eq!(
        (status, &error["field"]),
        (StatusCode::CONFLICT, &json!("add"))
    );

    // Removing one in the same patch makes room.
    let first = widget_ids(&dashboard)[0].clone();
    let (status, patched) = f
        .call(
            "PATCH",
            &path,
            Some(&json!({"add": widgets(2), "remove": [first]}).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(widget_ids(&patched).len(), 3);
    let (_, stored) = f.call("GET", &format!("/dashboards/{id}"), None).await;
    assert_eq!(stored, patched);
}

#[tokio::test]
async fn dashboards_are_a_quota() {
    let f = limited().await;
    f.create(r#"{"name": "a"}"#).await;
    let second = f.create(r#"{"name": "b"}"#).await;
    let (status, error) = refused(&f, "POST", "/dashboards", json!({"name": "c"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    let (_, listed) = f.call("GET", "/dashboards", None).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(2));
    // Deleting one frees a place.
    let id = second["dashboard_id"].as_str().expect("id");
    let (status, _) = f.call("DELETE", &format!("/dashboards/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    f.create(r#"{"name": "c"}"#).await;
}

#[tokio::test]
async fn filters_are_held_to_the_tag_limits() {
    let f = limited().await;
    let with_filter = |filter: Value| json!({"name": "d", "widgets": [{"metric_name": "m", "aggregation": "sum", "filter": filter}]});
    for (filter, field) in [
        (json!({"a": "1", "b": "2", "c": "3"}), "widgets[0].filter"),
        (json!({"abcde": "1"}), "widgets[0].filter"),
        (json!({"host": "abcdef"}), "widgets[0].filter.host"),
    ] {
        let (status, error) = refused(&f, "POST", "/dashboards", with_filter(filter)).await;
        assert_eq!(
            (status, &error["field"]),
            (StatusCode::BAD_REQUEST, &json!(field))
        );
    }
    f.create(&with_filter(json!({"host": "web-1", "az": "b"})).to_string())
        .await;
}

#[tokio::test]
async fn display_config_may_not_nest_too_deep() {
    let f = Fixture::new().await;
    let nested = |depth: usize| {
        let config: Value =
            serde_json::from_str(&format!("{}1{}", "[".repeat(depth), "]".repeat(depth)))
                .expect("JSON");
        json!({"name": "d", "widgets": [{"metric_name": "m", "aggregation": "sum", "display_config": config}]})
    };
    let (status, error) = refused(&f, "POST", "/dashboards", nested(33)).await;
    assert_eq!(
        (status, &error["field"]),
        (StatusCode::BAD_REQUEST, &json!("widgets[0].display_config"))
    );
    f.create(&nested(32).to_string()).await;
}
