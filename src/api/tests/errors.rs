//! Every error a client can trigger is JSON: unknown routes, wrong methods, bad ids in the
//! path, malformed or oversized bodies, unknown dashboards.

use serde_json::Value;
use uuid::Uuid;
use warp::http::StatusCode;

use super::{Fixture, RETENTION};
use crate::error::ApiError;
use crate::store::StoreError;

async fn expect(
    f: &Fixture,
    method: &str,
    path: &str,
    body: Option<&str>,
    status: StatusCode,
    field: Value,
) {
    let (got, error) = f.call(method, path, body).await;
    assert_eq!(got, status, "{method} {path} → {error}");
    assert_eq!(error["field"], field, "{method} {path} → {error}");
    assert!(
        error["error"].as_str().is_some_and(|m| !m.is_empty()),
        "{method} {path}: no message in {error}"
    );
}

#[tokio::test]
async fn route_errors_are_json() {
    let f = Fixture::new().await;
    let id = Uuid::new_v4();
    let null = Value::Null;
    expect(
        &f,
        "GET",
        "/nope",
        None,
        StatusCode::NOT_FOUND,
        null.clone(),
    )
    .await;
    expect(
        &f,
        "GET",
        &format!("/dashboards/{id}/nope"),
        None,
        StatusCode::NOT_FOUND,
        null.clone(),
    )
    .await;
    expect(
        &f,
        "PUT",
        "/dashboards",
        Some("{}"),
        StatusCode::METHOD_NOT_ALLOWED,
        null.clone(),
    )
    .await;
    expect(
        &f,
        "POST",
        &format!("/dashboards/{id}"),
        Some("{}"),
        StatusCode::METHOD_NOT_ALLOWED,
        null.clone(),
    )
    .await;
    expect(
        &f,
        "DELETE",
        "/aggregations",
        None,
        StatusCode::METHOD_NOT_ALLOWED,
        null.clone(),
    )
    .await;
    expect(
        &f,
        "GET",
        "/dashboards/not-a-uuid",
        None,
        StatusCode::BAD_REQUEST,
        "dashboard_id".into(),
    )
    .await;
    expect(
        &f,
        "DELETE",
        "/dashboards/42",
        None,
        StatusCode::BAD_REQUEST,
        "dashboard_id".into(),
    )
    .await;
    expect(
        &f,
        "GET",
        &format!("/dashboards/{id}/widgets/xyz/snapshot"),
        None,
        StatusCode::BAD_REQUEST,
        "widget_id".into(),
    )
    .await;
    for (method, path) in [
        ("GET", format!("/dashboards/{id}")),
        ("DELETE", format!("/dashboards/{id}")),
        ("PATCH", format!("/dashboards/{id}")),
        ("PATCH", format!("/dashboards/{id}/widgets")),
    ] {
        let body = (method == "PATCH")
            .then_some(r#"{"name": "x"}"#)
            .filter(|_| !path.ends_with("widgets"));
        let body = body.or((method == "PATCH").then_some("{}"));
        expect(
            &f,
            method,
            &path,
            body,
            StatusCode::NOT_FOUND,
            "dashboard_id".into(),
        )
        .await;
    }
}

#[tokio::test]
async fn malformed_bodies_are_400_without_a_field() {
    let f = Fixture::new().await;
    for body in [
        "",
        "not json",
        "{\"name\": ",
        "[1, 2]",
        "\"d\"",
        "{\"name\": \"d\", \"name\": \"e\"}",
        "{\"name\": NaN}",
        "{\"name\": Infinity}",
    ] {
        expect(
            &f,
            "POST",
            "/dashboards",
            Some(body),
            StatusCode::BAD_REQUEST,
            Value::Null,
        )
        .await;
    }
    let (_, listed) = f.call("GET", "/dashboards", None).await;
    assert_eq!(listed, serde_json::json!([]));
}

#[tokio::test]
async fn values_serde_json_cannot_hold_are_blamed_on_their_field() {
    let f = Fixture::new().await;
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let widget = |field: &str, value: &str| {
        format!(
            r#"{{"name": "d", "widgets": [{{"metric_name": "m", "aggregation": "sum", "{field}": {value}}}]}}"#
        )
    };
    for (body, field) in [
        (
            widget("window_seconds", "1e400"),
            "widgets[0].window_seconds",
        ),
        (
            widget("window_seconds", "-1e400"),
            "widgets[0].window_seconds",
        ),
        (widget("display_config", &deep), "widgets[0].display_config"),
        (widget("filter", "{\"h\": 1e999}"), "widgets[0].filter"),
    ] {
        let (status, error) = f.call("POST", "/dashboards", Some(&body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
        assert_eq!(error["field"], field, "{error}");
        assert!(
            !error["error"].as_str().unwrap_or("").contains("line 1"),
            "{error}"
        );
    }
    let (_, listed) = f.call("GET", "/dashboards", None).await;
    assert_eq!(listed, serde_json::json!([]));
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let f = Fixture::with(RETENTION, |api| api.with_body_limit(64)).await;
    let body = format!(r#"{{"name": "{}"}}"#, "x".repeat(100));
    expect(
        &f,
        "POST",
        "/dashboards",
        Some(&body),
        StatusCode::PAYLOAD_TOO_LARGE,
        Value::Null,
    )
    .await;
    let (status, _) = f
        .call("POST", "/dashboards", Some(r#"{"name": "small"}"#))
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn the_limit_holds_without_a_content_length() {
    let chunks = vec![Ok::<&[u8], warp::Error>(&[b'x'; 40]), Ok(&[b'x'; 40])];
    let result =
        super::super::extract::read_limited(None, futures_util::stream::iter(chunks), 64).await;
    assert!(matches!(
        result,
        Err(ApiError::PayloadTooLarge { limit: Some(64) })
    ));
    let chunks = vec![Ok::<&[u8], warp::Error>(b"{}"), Ok(b" ")];
    let result =
        super::super::extract::read_limited(None, futures_util::stream::iter(chunks), 64).await;
    assert_eq!(result.ok(), Some(b"{} ".to_vec()));
}

#[tokio::test]
async fn any_content_type_is_read_as_json() {
    let f = Fixture::new().await;
    let response = warp::test::request()
        .method("POST")
        .path("/dashboards")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(r#"{"name": "from curl -d"}"#)
        .reply(&f.routes)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[test]
fn store_failures_map_to_statuses() {
    let id = Uuid::new_v4();
    let cases = [
        (
            StoreError::DashboardNotFound(id),
            StatusCode::NOT_FOUND,
            Some("dashboard_id"),
        ),
        (
            StoreError::WidgetNotFound {
                dashboard: id,
                widget: id,
            },
            StatusCode::NOT_FOUND,
            Some("widget_id"),
        ),
        (
            StoreError::Conflict("dup".into()),
            StatusCode::CONFLICT,
            None,
        ),
        (
            StoreError::Corrupt("bad row".into()),
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
        ),
        (
            StoreError::Database(sqlx::Error::PoolClosed),
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
        ),
    ];
    for (store_error, status, field) in cases {
        let error = ApiError::from(store_error);
        let (got_status, got_field, message) = error.parts();
        assert_eq!((got_status, got_field), (status, field), "{error}");
        assert!(
            !message.contains("bad row"),
            "internal details leak: {message}"
        );
    }
}
