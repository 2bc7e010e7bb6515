//! Observability as an operator sees it: `/metrics` scraped while events flow (counters that
//! match what was sent, rejections by reason, connections that match the open WebSockets),
//! the exposition checked by `promtool check metrics`, `/healthz` and `/readyz` through a Kafka
//! outage, and JSON logs.

mod common;
mod observe;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;
use observe::*;
use serde_json::{Value, json};

async fn post_raw(server: &Server, path: &str, body: &str) -> (u16, Value) {
    let response = http()
        .post(server.url(path))
        .body(body.to_string())
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn widget(metric: &str, aggregation: &str, window: u64) -> Value {
    json!({"metric_name": metric, "aggregation": aggregation, "window_seconds": window,
           "refresh_interval_seconds": 1})
}

fn id_of(value: &Value, key: &str) -> String {
    value[key].as_str().expect("id").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_events_rejections_and_connections() {
    let server = Server::start("metrics-flow", &["--checkpoint-interval", "1s"]);
    // Until the dataflow closed its first time, every event counts as on time: even one
    // older than the retention is only dropped later. Start from a ready server.
    wait_ready(&server, true).await;
    let a = create_dashboard(
        &server,
        "a",
        json!([widget("obs.req", "count", 60), widget("obs.req", "sum", 15)]),
    )
    .await;
    let b = create_dashboard(&server, "b", json!([widget("obs.other", "count", 60)])).await;
    let count = id_of(&a["widgets"][0], "widget_id");
    let (a, b) = (id_of(&a, "dashboard_id"), id_of(&b, "dashboard_id"));

    // Three WebSocket clients: two on a (two widgets), one on b (one widget).
    let mut first = Stream::connect(&server, &a).await;
    let mut second = Stream::connect(&server, &a).await;
    let mut third = Stream::connect(&server, &b).await;
    for stream in [&mut first, &mut second, &mut third] {
        stream
            .wait_for(WAIT, "snapshot", |m| m["type"] == "snapshot")
            .await;
    }
    let scrape = Scrape::of(&server).await;
    assert_eq!(scrape.get("flowboard_websocket_connections", &[]), 3.0);
    assert_eq!(scrape.get("flowboard_dashboards", &[]), 2.0);
    assert_eq!(scrape.get("flowboard_widgets", &[]), 3.0);
    assert_eq!(scrape.get("flowboard_widgets_subscribed", &[]), 3.0);
    assert_eq!(scrape.get("flowboard_widget_subscriptions", &[]), 5.0);
    assert_eq!(
        scrape.get("flowboard_subscription_fanout_ratio", &[]),
        5.0 / 3.0
    );
    assert_eq!(scrape.get("flowboard_widget_window_min_seconds", &[]), 15.0);
    assert_eq!(scrape.get("flowboard_dataflow_workers", &[]), 2.0);
    assert_eq!(
        scrape.get("flowboard_checkpoint_interval_seconds", &[]),
        1.0
    );

    // 100 events over HTTP in 4 requests, scraping while they flow.
    for round in 0..4 {
        let events = (0..25)
            .map(|i| event("obs.req", f64::from(round * 25 + i), &[("host", "h1")]))
            .collect();
        ingest(&server, events).await;
        Scrape::of(&server).await;
    }
    // Rejected over HTTP: one request with two invalid events and one valid one, one with an
    // event from the far future, one body that is not JSON.
    let (status, _) = post(
        &server,
        "/ingest",
        &json!([event("obs.req", 1.0, &[]),
                {"metric_name": "obs.req", "value": "high"},
                {"metric_name": "bad name!", "value": 1}]),
    )
    .await;
    assert_eq!(status, 400);
    let future = now_ms() + 3_600_000;
    let (status, _) = post(
        &server,
        "/ingest",
        &json!([{"metric_name": "obs.req", "value": 1, "event_time": future}]),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = post_raw(&server, "/ingest", "this is not json").await;
    assert_eq!(status, 400);

    // Over Kafka: 3 valid events, then an invalid value, an unknown field and a too old event.
    let now = now_ms();
    produce(
        &server,
        "obs.req",
        &json!([{"metric_name": "obs.req", "value": 1, "event_time": now},
                {"metric_name": "obs.req", "value": 2, "event_time": now},
                {"metric_name": "obs.req", "value": 3, "event_time": now}])
        .to_string(),
    );
    produce(
        &server,
        "obs.req",
        r#"{"metric_name": "obs.req", "value": "NaN"}"#,
    );
    produce(
        &server,
        "obs.req",
        r#"{"metric_name": "obs.req", "value": 1, "colour": "red"}"#,
    );
    let old = now - 2 * 3_600_000;
    produce(
        &server,
        "obs.req",
        &json!({"metric_name": "obs.req", "value": 1, "event_time": old}).to_string(),
    );

    // The values reach the clients, and the counters match what was sent.
    first
        .wait_for(WAIT, "count 103", |m| {
            value_in(m, &count) == Some(json!(103.0))
        })
        .await;
    let scrape = scrape_until(&server, "the Kafka path to count 103 events", |s| {
        s.get("flowboard_events_accepted_total", &[("path", "kafka")]) >= 103.0
            && s.get(
                "flowboard_events_rejected_total",
                &[("path", "kafka"), ("reason", "too_old")],
            ) >= 1.0
    })
    .await;
    let accepted = |path| scrape.get("flowboard_events_accepted_total", &[("path", path)]);
    assert_eq!(accepted("http"), 100.0, "HTTP: exactly the events sent");
    assert_eq!(
        accepted("kafka"),
        103.0,
        "Kafka: the HTTP events plus the 3 produced"
    );
    let rejected = |path, reason| {
        scrape.get(
            "flowboard_events_rejected_total",
            &[("path", path), ("reason", reason)],
        )
    };
    for (reason, expected) in [
        ("invalid_value", 1.0),
        ("invalid_metric_name", 1.0),
        ("request_invalid", 1.0),
        ("too_far_in_future", 1.0),
        ("malformed_json", 1.0),
        ("kafka_unavailable", 0.0),
        ("unknown_field", 0.0),
    ] {
        assert_eq!(rejected("http", reason), expected, "http {reason}");
    }
    for (reason, expected) in [
        ("invalid_value", 1.0),
        ("unknown_field", 1.0),
        ("too_old", 1.0),
        ("invalid_metric_name", 0.0),
        ("malformed_json", 0.0),
    ] {
        assert_eq!(rejected("kafka", reason), expected, "kafka {reason}");
    }
    let requests = |outcome| {
        scrape.get(
            "flowboard_ingest_request_duration_seconds_count",
            &[("outcome", outcome)],
        )
    };
    assert_eq!((requests("accepted"), requests("invalid")), (4.0, 3.0));
    assert!(scrape.get("flowboard_kafka_records_read_total", &[]) >= 8.0);
    assert_eq!(
        scrape.all("flowboard_kafka_consumer_lag_records").len(),
        4,
        "partitions"
    );

    // Latencies: updates reached the clients within the SLA; closed times arrive continually.
    let pushes = scrape.get("flowboard_websocket_push_latency_seconds_count", &[]);
    let push_sum = scrape.get("flowboard_websocket_push_latency_seconds_sum", &[]);
    assert!(pushes >= 2.0, "{pushes} pushes");
    assert!(
        push_sum / pushes < 2.0,
        "mean push latency {}",
        push_sum / pushes
    );
    assert!(scrape.get("flowboard_widget_updates_broadcast_total", &[]) >= 1.0);
    let closed = scrape.get("flowboard_aggregation_latency_seconds_count", &[]);
    assert!(closed >= 1.0);
    assert!(scrape.get("flowboard_aggregation_latency_seconds_sum", &[]) / closed < 5.0);
    let lag = scrape.get("flowboard_watermark_lag_seconds", &[]);
    assert!(lag < 5.0, "watermark lag {lag}");
    assert_eq!(scrape.get("flowboard_kafka_reachable", &[]), 1.0);
    promtool_check_metrics(&scrape.text);

    // A client leaves: the connection and subscription counts follow.
    drop(second);
    let scrape = scrape_until(&server, "2 connections", |s| {
        s.get("flowboard_websocket_connections", &[]) == 2.0
    })
    .await;
    assert_eq!(scrape.get("flowboard_widget_subscriptions", &[]), 3.0);
    assert_eq!(scrape.get("flowboard_subscription_fanout_ratio", &[]), 1.0);

    // Checkpoints are written every second.
    let scrape = scrape_until(&server, "a checkpoint", |s| {
        s.get("flowboard_checkpoint_last_size_bytes", &[]) > 0.0
    })
    .await;
    assert!(scrape.get("flowboard_checkpoint_age_seconds", &[]) < 5.0);
    assert!(scrape.get("flowboard_checkpoint_last_success_timestamp_seconds", &[]) > 1.7e9);
    promtool_check_metrics(&scrape.text);

    let (status, body) = get(&server, "/healthz").await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
    wait_ready(&server, true).await;
    drop((first, third));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_names_kafka_while_the_broker_is_down() {
    let mut broker = Broker::start();
    let server = Server::start(
        "metrics-ready",
        &[
            "--kafka-brokers",
            &broker.bootstrap,
            "--ready-max-lag",
            "10s",
        ],
    );
    let (status, _) = get(&server, "/healthz").await;
    assert_eq!(status, 200);
    let ready = wait_ready(&server, true).await;
    assert_eq!(ready["checks"]["kafka"], json!({"ok": true}));
    assert_eq!(ready["checks"]["store"], json!({"ok": true}));

    broker.command("down");
    let body = wait_ready(&server, false).await;
    let reasons = body["not_ready"].to_string();
    assert!(reasons.contains("kafka: "), "{body}");
    assert_eq!(body["checks"]["kafka"]["ok"], false, "{body}");
    assert_eq!(body["checks"]["store"]["ok"], true, "{body}");
    let (status, _) = get(&server, "/healthz").await;
    assert_eq!(status, 200, "alive, though not ready");
    let scrape = Scrape::of(&server).await;
    assert_eq!(scrape.get("flowboard_kafka_reachable", &[]), 0.0);

    broker.command("up");
    wait_ready(&server, true).await;
}

#[test]
fn logs_are_json_lines_with_log_format_json() {
    let data_dir = temp_data_dir("metrics-json-log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowboard"))
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--workers",
            "1",
            "--partitions",
            "1",
        ])
        .args(["--log-format", "json", "--data-dir"])
        .arg(&data_dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn flowboard");
    let stderr = child.stderr.take().expect("stderr");
    let mut seen = Vec::new();
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        let record: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(record["level"].is_string(), "{line}");
        let message = record["fields"]["message"]
            .as_str()
            .unwrap_or("")
            .to_string();
        seen.push(message.clone());
        if message.starts_with("listening on http://") {
            break;
        }
        assert!(seen.len() < 200, "no `listening on` line in {seen:#?}");
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        seen.iter()
            .any(|m| m.starts_with("kafka bootstrap servers: ")),
        "{seen:#?}"
    );
}
