//! The product end to end, as its users see it: dashboards over REST, events over HTTP and
//! Kafka, values over WebSocket and the snapshot endpoint, windows that slide and expire.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(15);

fn widget(metric: &str, aggregation: &str, window: u64, filter: Value) -> Value {
    json!({"metric_name": metric, "aggregation": aggregation, "window_seconds": window,
           "refresh_interval_seconds": 1, "filter": filter,
           "display_config": {"chart": "number", "title": format!("{aggregation} of {metric}")}})
}

fn widget_id(dashboard: &Value, index: usize) -> String {
    dashboard["widgets"][index]["widget_id"]
        .as_str()
        .expect("widget_id")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_over_http_and_kafka_reach_websocket_and_snapshot() {
    let server = Server::start("e2e-paths", &[]);
    let dashboard = create_dashboard(
        &server,
        "api",
        json!([
            widget("req.latency", "count", 60, json!({})),
            widget("req.latency", "sum", 60, json!({"host": "a"}))
        ]),
    )
    .await;
    let id = dashboard["dashboard_id"]
        .as_str()
        .expect("dashboard_id")
        .to_string();
    let (count, sum_a) = (widget_id(&dashboard, 0), widget_id(&dashboard, 1));

    let mut stream = Stream::connect(&server, &id).await;
    let first = stream.next(WAIT).await.expect("first message");
    assert_eq!(first["type"], "snapshot", "{first}");
    assert_eq!(first["dashboard_id"], id.as_str());
    assert_eq!(first["widgets"].as_array().map(Vec::len), Some(2));

    ingest(
        &server,
        vec![
            event("req.latency", 1.0, &[("host", "a")]),
            event("req.latency", 2.0, &[("host", "b")]),
            event("req.latency", 4.0, &[("host", "a")]),
        ],
    )
    .await;
    stream
        .wait_for(WAIT, "count 3", |m| value_in(m, &count) == Some(json!(3.0)))
        .await;
    let (status, snapshot) = get(
        &server,
        &format!("/dashboards/{id}/widgets/{sum_a}/snapshot"),
    )
    .await;
    assert_eq!(status, 200, "{snapshot}");
    assert_eq!(snapshot["widget_id"], sum_a.as_str());
    assert!(
        snapshot["as_of"]
            .as_u64()
            .is_some_and(|t| t + 10_000 > now_ms()),
        "{snapshot}"
    );
    assert_eq!(snapshot["stale"], false);
    // The snapshot may lag the stream by a tick; wait for the filtered sum.
    stream
        .wait_for(WAIT, "sum of host a = 5", |m| {
            value_in(m, &sum_a) == Some(json!(5.0))
        })
        .await;

    // A Kafka producer writing straight to the topic, as `kcat -P` would.
    let now = now_ms();
    produce(
        &server,
        "req.latency",
        &format!(
            r#"[{{"metric_name":"req.latency","value":10,"tags":{{"host":"a"}},"event_time":{now}}},{{"metric_name":"req.latency","value":20}}]"#
        ),
    );
    stream
        .wait_for(WAIT, "count 5", |m| value_in(m, &count) == Some(json!(5.0)))
        .await;
    stream
        .wait_for(WAIT, "sum of host a = 15", |m| {
            value_in(m, &sum_a) == Some(json!(15.0))
        })
        .await;
    let (_, snapshot) = get(
        &server,
        &format!("/dashboards/{id}/widgets/{sum_a}/snapshot"),
    )
    .await;
    assert_eq!(snapshot["value"], json!(15.0), "{snapshot}");

    // Garbage on the topic is skipped, not fatal.
    produce(&server, "junk", "this is not json");
    ingest(&server, vec![event("req.latency", 1.0, &[])]).await;
    stream
        .wait_for(WAIT, "count 6", |m| value_in(m, &count) == Some(json!(6.0)))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_windows_expire_and_extremes_retract() {
    let server = Server::start("e2e-expiry", &[]);
    let dashboard = create_dashboard(
        &server,
        "expiry",
        json!([
            widget("temp", "count", 5, json!({})),
            widget("temp", "max", 5, json!({})),
            widget("temp", "min", 5, json!({})),
            widget("temp", "avg", 5, json!({}))
        ]),
    )
    .await;
    let id = dashboard["dashboard_id"].as_str().expect("id").to_string();
    let (count, max, min, avg) = (
        widget_id(&dashboard, 0),
        widget_id(&dashboard, 1),
        widget_id(&dashboard, 2),
        widget_id(&dashboard, 3),
    );
    let mut stream = Stream::connect(&server, &id).await;

    ingest(
        &server,
        vec![event("temp", 10.0, &[]), event("temp", 1.0, &[])],
    )
    .await;
    stream
        .wait_for(WAIT, "max 10", |m| value_in(m, &max) == Some(json!(10.0)))
        .await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    ingest(
        &server,
        vec![event("temp", 4.0, &[]), event("temp", 5.0, &[])],
    )
    .await;
    stream
        .wait_for(WAIT, "count 4", |m| value_in(m, &count) == Some(json!(4.0)))
        .await;
    // The first two events leave after 5 s: the extremes retract to the later ones.
    stream
        .wait_for(WAIT, "max back to 5", |m| {
            value_in(m, &max) == Some(json!(5.0))
        })
        .await;
    stream
        .wait_for(WAIT, "min up to 4", |m| {
            value_in(m, &min) == Some(json!(4.0))
        })
        .await;
    // Then the window is empty: count 0, max/min/avg null.
    stream
        .wait_for(WAIT, "count 0", |m| value_in(m, &count) == Some(json!(0.0)))
        .await;
    let (_, snapshot) = get(&server, &format!("/dashboards/{id}/widgets/{max}/snapshot")).await;
    assert_eq!(snapshot["value"], Value::Null, "{snapshot}");
    let (_, snapshot) = get(&server, &format!("/dashboards/{id}/widgets/{avg}/snapshot")).await;
    assert_eq!(snapshot["value"], Value::Null, "{snapshot}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn widgets_added_changed_and_removed_at_runtime() {
    let server = Server::start("e2e-runtime", &[]);
    let dashboard = create_dashboard(
        &server,
        "runtime",
        json!([widget("orders", "count", 60, json!({}))]),
    )
    .await;
    let id = dashboard["dashboard_id"].as_str().expect("id").to_string();
    let count = widget_id(&dashboard, 0);
    let mut stream = Stream::connect(&server, &id).await;
    ingest(
        &server,
        vec![
            event("orders", 3.0, &[("region", "eu")]),
            event("orders", 7.0, &[("region", "us")]),
        ],
    )
    .await;
    stream
        .wait_for(WAIT, "count 2", |m| value_in(m, &count) == Some(json!(2.0)))
        .await;

    // Added after the events: it shows them at once (backfilled from retained history).
    let (status, patched) = patch(
        &server,
        &format!("/dashboards/{id}/widgets"),
        &json!({"add": [widget("orders", "sum", 60, json!({"region": "us"}))]}),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    let sum_us = widget_id(&patched, 1);
    stream
        .wait_for(WAIT, "dashboard change message", |m| {
            m["type"] == "dashboard"
        })
        .await;
    stream
        .wait_for(WAIT, "backfilled sum 7", |m| {
            value_in(m, &sum_us) == Some(json!(7.0))
        })
        .await;

    // Changing the aggregation recomputes from history.
    let (status, patched) = patch(
        &server,
        &format!("/dashboards/{id}/widgets"),
        &json!({"update": [{"widget_id": sum_us, "aggregation": "max", "filter": {}}]}),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    stream
        .wait_for(WAIT, "max over both regions 7", |m| {
            value_in(m, &sum_us) == Some(json!(7.0)) && m["type"] == "update"
        })
        .await;
    ingest(&server, vec![event("orders", 9.0, &[("region", "eu")])]).await;
    stream
        .wait_for(WAIT, "max 9", |m| value_in(m, &sum_us) == Some(json!(9.0)))
        .await;

    // Removed: gone from the dashboard and from the snapshot endpoint.
    let (status, patched) = patch(
        &server,
        &format!("/dashboards/{id}/widgets"),
        &json!({"remove": [count]}),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["widgets"].as_array().map(Vec::len), Some(1));
    let (status, _) = get(
        &server,
        &format!("/dashboards/{id}/widgets/{count}/snapshot"),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_survive_a_restart() {
    let server = Server::start("e2e-restart", &[]);
    let dashboard = create_dashboard(
        &server,
        "kept",
        json!([widget("disk", "avg", 300, json!({"mount": "/"}))]),
    )
    .await;
    let id = dashboard["dashboard_id"].as_str().expect("id").to_string();
    let data_dir = server.stop();

    let server = Server::start_in(data_dir, &[]);
    let (status, listed) = get(&server, "/dashboards").await;
    assert_eq!(status, 200);
    let found = listed
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|d| d["dashboard_id"] == id.as_str())
                .cloned()
        })
        .expect("dashboard listed after restart");
    assert_eq!(found["name"], "kept");
    assert_eq!(found["widgets"], dashboard["widgets"]);

    // And its widget is live again.
    let widget = widget_id(&dashboard, 0);
    let mut stream = Stream::connect(&server, &id).await;
    ingest(
        &server,
        vec![
            event("disk", 40.0, &[("mount", "/")]),
            event("disk", 60.0, &[("mount", "/")]),
        ],
    )
    .await;
    stream
        .wait_for(WAIT, "avg 50", |m| {
            value_in(m, &widget) == Some(json!(50.0))
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_json_errors_naming_the_field() {
    let server = Server::start("e2e-errors", &[]);
    let (status, body) = post(
        &server,
        "/ingest",
        &json!([{"metric_name": "ok", "value": 1}, {"metric_name": "ok", "value": "x"}]),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        (body["field"].as_str(), body["index"].as_u64()),
        (Some("value"), Some(1)),
        "{body}"
    );
    let (status, body) = post(
        &server,
        "/dashboards",
        &json!({"name": "x", "widgets": [widget("m", "median", 60, json!({}))]}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["field"]
            .as_str()
            .is_some_and(|f| f.contains("aggregation")),
        "{body}"
    );
    let (status, body) = get(&server, &format!("/dashboards/{}", uuid::Uuid::new_v4())).await;
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].is_string());
    let response = http()
        .get(server.url(&format!("/stream/{}", uuid::Uuid::new_v4())))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 404);
}

/// The aggregations added through the registry (`last`, `rate`) work through the real server
/// like the built-ins: validated by `POST /dashboards`, fed by ingest, reported over the
/// WebSocket and the snapshot endpoint, and expiring with their window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_and_rate_end_to_end() {
    let server = Server::start("e2e-last-rate", &[]);
    let dashboard = create_dashboard(
        &server,
        "registered",
        json!([
            widget("gauge", "last", 10, json!({})),
            widget("gauge", "rate", 10, json!({}))
        ]),
    )
    .await;
    assert_eq!(dashboard["widgets"][0]["aggregation"], "last");
    assert_eq!(dashboard["widgets"][1]["aggregation"], "rate");
    let id = dashboard["dashboard_id"].as_str().expect("id").to_string();
    let (last, rate) = (widget_id(&dashboard, 0), widget_id(&dashboard, 1));
    let mut stream = Stream::connect(&server, &id).await;
    let first = stream.next(WAIT).await.expect("first message");
    assert_eq!(first["type"], "snapshot", "{first}");

    // Two events at the same event time: the larger value is the last one.
    let t0 = now_ms();
    let at =
        |value: f64, time: u64| json!({"metric_name": "gauge", "value": value, "event_time": time});
    ingest(&server, vec![at(5.0, t0), at(3.0, t0)]).await;
    stream
        .wait_for(WAIT, "last 5", |m| value_in(m, &last) == Some(json!(5.0)))
        .await;

    // One that arrives later but happened earlier counts for the rate, not as the last value.
    ingest(&server, vec![at(9.0, t0 - 1_000)]).await;
    let mut seen = until_all(&mut stream, &[(rate.as_str(), json!(0.3))]).await;
    // A change of `last` would be reported by the widgets' next refresh (1 s).
    seen.extend(read_for(&mut stream, Duration::from_millis(1_500)).await);
    let lasts: Vec<Value> = seen.iter().filter_map(|m| value_in(m, &last)).collect();
    assert!(lasts.iter().all(|v| *v == json!(5.0)), "{lasts:?}");
    let snapshot = |widget: &str| format!("/dashboards/{id}/widgets/{widget}/snapshot");
    let (status, body) = get(&server, &snapshot(&last)).await;
    assert_eq!((status, &body["value"]), (200, &json!(5.0)), "{body}");
    assert_eq!(body["stale"], false, "{body}");

    // Once the events leave the 10 s window: no last value, a rate of zero.
    let expired = [(last.as_str(), Value::Null), (rate.as_str(), json!(0.0))];
    until_all(&mut stream, &expired).await;
    let (_, body) = get(&server, &snapshot(&last)).await;
    assert_eq!(body["value"], Value::Null, "{body}");
    let (_, body) = get(&server, &snapshot(&rate)).await;
    assert_eq!(body["value"], json!(0.0), "{body}");
}

/// `last` and `rate` are checkpointed like the built-ins: the embedded broker starts empty with
/// the server, so after a restart their values can only come from the checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_and_rate_come_back_from_the_checkpoint_after_a_restart() {
    let server = Server::start("e2e-last-rate-restart", &[]);
    let dashboard = create_dashboard(
        &server,
        "restored",
        json!([
            widget("level", "last", 120, json!({})),
            widget("level", "rate", 120, json!({}))
        ]),
    )
    .await;
    let id = dashboard["dashboard_id"].as_str().expect("id").to_string();
    let (last, rate) = (widget_id(&dashboard, 0), widget_id(&dashboard, 1));
    let mut stream = Stream::connect(&server, &id).await;
    let t0 = now_ms();
    let at =
        |value: f64, time: u64| json!({"metric_name": "level", "value": value, "event_time": time});
    ingest(
        &server,
        vec![at(2.0, t0), at(8.0, t0 - 500), at(4.0, t0 - 900)],
    )
    .await;
    let before = [(last.as_str(), json!(2.0)), (rate.as_str(), json!(0.025))];
    until_all(&mut stream, &before).await;
    drop(stream);
    let data_dir = server.stop(); // a final checkpoint at shutdown

    let server = Server::start_in(data_dir, &[]);
    let mut stream = Stream::connect(&server, &id).await;
    until_all(&mut stream, &before).await;
    let (_, body) = get(
        &server,
        &format!("/dashboards/{id}/widgets/{last}/snapshot"),
    )
    .await;
    assert_eq!(body["value"], json!(2.0), "{body}");
}

/// Reads `stream` until the latest value of every widget in `want` is the one wanted (they may
/// come in one message or several, in any order); panics after [`WAIT`]. Returns the messages
/// read.
async fn until_all(stream: &mut Stream, want: &[(&str, Value)]) -> Vec<Value> {
    let deadline = std::time::Instant::now() + WAIT;
    let mut latest: Vec<Option<Value>> = vec![None; want.len()];
    let mut read = Vec::new();
    while latest
        .iter()
        .zip(want)
        .any(|(seen, (_, wanted))| seen.as_ref() != Some(wanted))
    {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let Some(message) = stream.next(left).await else {
            panic!("timed out waiting for {want:?}; latest {latest:?}");
        };
        for (seen, (widget, _)) in latest.iter_mut().zip(want) {
            if let Some(value) = value_in(&message, widget) {
                *seen = Some(value);
            }
        }
        read.push(message);
    }
    read
}

/// The messages `stream` brings in the next `duration`.
async fn read_for(stream: &mut Stream, duration: Duration) -> Vec<Value> {
    let deadline = std::time::Instant::now() + duration;
    let mut read = Vec::new();
    while let Some(message) = stream
        .next(deadline.saturating_duration_since(std::time::Instant::now()))
        .await
    {
        read.push(message);
    }
    read
}
