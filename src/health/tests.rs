//! Readiness tests: each check on its own, and the routes' statuses and JSON bodies.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use dataflow::stats::{PartitionProgress, PipelineStats};
use dataflow::time::now_ms;
use serde_json::Value;

use super::*;

const LIMITS: ReadyLimits = ReadyLimits {
    max_lag: Duration::from_secs(30),
    max_closed_age: Duration::from_secs(5),
};

fn caught_up(now: u64) -> PipelineStats {
    let stats = PipelineStats::default();
    stats.kafka_reachable.store(true, Ordering::Relaxed);
    stats.closed_time.store(now - 1_200, Ordering::Relaxed);
    stats.set_partition(0, PartitionProgress::default());
    stats.set_partition(
        1,
        PartitionProgress {
            lag_records: 3,
            lag_ms: 800,
            ..PartitionProgress::default()
        },
    );
    stats
}

#[test]
fn a_caught_up_dataflow_is_ready() {
    let now = now_ms();
    let stats = caught_up(now);
    let check = dataflow_check(&stats, LIMITS, now);
    assert!(check.check.ok, "{check:?}");
    assert_eq!(check.closed_time, Some(now - 1_200));
    assert_eq!(check.watermark_lag_seconds, Some(1.2));
    assert_eq!(check.max_consumer_lag_seconds, 0.8);
    assert_eq!(check.max_consumer_lag_records, 3);
    assert!(kafka_check(&stats).ok);
}

#[test]
fn every_reason_for_not_being_ready_is_named() {
    let now = now_ms();
    let stats = caught_up(now);
    stats.closed_time.store(0, Ordering::Relaxed);
    stats.failed.store(true, Ordering::Relaxed);
    stats.kafka_reachable.store(false, Ordering::Relaxed);
    stats.update_partition(1, |p| p.lag_ms = 45_000);
    let readiness = Readiness::new(Checks {
        store: Check::from_problems(vec![]),
        kafka: kafka_check(&stats),
        dataflow: dataflow_check(&stats, LIMITS, now),
    });
    assert!(!readiness.is_ready());
    assert_eq!(readiness.status, "not_ready");
    let reasons = readiness.not_ready.join("\n");
    assert_eq!(readiness.not_ready.len(), 2, "{reasons}");
    assert!(reasons.contains("kafka: the brokers"), "{reasons}");
    for part in [
        "dataflow: a dataflow worker failed",
        "no time closed yet",
        "partition 1 is 45.0 s behind (3 records; at most 30.0 s allowed by --ready-max-lag)",
    ] {
        assert!(reasons.contains(part), "{part:?} not in {reasons}");
    }
}

#[test]
fn a_closed_time_far_behind_the_clock_is_not_ready() {
    let now = now_ms();
    let stats = caught_up(now);
    stats.closed_time.store(now - 12_000, Ordering::Relaxed);
    let check = dataflow_check(&stats, LIMITS, now);
    assert_eq!(
        check.check.reason.as_deref(),
        Some("the closed time is 12.0 s behind the wall clock (at most 5.0 s allowed)")
    );
}

async fn call(routes: &BoxedFilter<(Response,)>, path: &str) -> (StatusCode, Value) {
    let response = warp::test::request().path(path).reply(routes).await;
    let body = serde_json::from_slice(response.body()).expect("JSON body");
    (response.status(), body)
}

#[tokio::test]
async fn routes_answer_with_json_and_the_status_of_the_checks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).await.expect("store");
    let stats = Arc::new(caught_up(now_ms()));
    let routes = routes(Health::new(store, stats.clone(), LIMITS));

    let (status, body) = call(&routes, "/healthz").await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, serde_json::json!({"status": "ok"}))
    );

    let (status, body) = call(&routes, "/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["not_ready"], serde_json::json!([]));
    assert_eq!(body["checks"]["store"], serde_json::json!({"ok": true}));
    assert_eq!(body["checks"]["dataflow"]["ok"], true);
    assert_eq!(body["checks"]["dataflow"]["max_consumer_lag_records"], 3);

    stats.kafka_reachable.store(false, Ordering::Relaxed);
    let (status, body) = call(&routes, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"]["kafka"]["ok"], false);
    assert!(
        body["not_ready"][0]
            .as_str()
            .is_some_and(|r| r.starts_with("kafka: ")),
        "{body}"
    );
}
