//! `/metrics` tests: every metric documented, the dataflow's counters copied at scrape time,
//! subscriptions and latencies from a hub on a manual clock, ingest counts by reason.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use dataflow::event::RejectReason;
use dataflow::stats::{PartitionProgress, PipelineStats};

use super::*;
use crate::hub::Hub;
use crate::hub::fixture::{T0, batch, dashboard, drain, hub, value, widget};

/// The observability section of the README.
const DOC: &str = include_str!("../../README.md");

fn metrics_of(stats: &Arc<PipelineStats>, hub: &Hub, ingest: &IngestMetrics) -> Metrics {
    Metrics::new(MetricSources {
        stats: stats.clone(),
        hub: hub.clone(),
        ingest: ingest.clone(),
        workers: 3,
        checkpoint_interval: Duration::from_secs(10),
        retention: Duration::from_secs(3_600),
    })
}

fn fresh() -> (Arc<PipelineStats>, Hub, IngestMetrics, Metrics) {
    let stats = Arc::new(PipelineStats::default());
    let hub = Hub::new(1);
    let ingest = IngestMetrics::new();
    let metrics = metrics_of(&stats, &hub, &ingest);
    (stats, hub, ingest, metrics)
}

/// The value of the sample written exactly as `series` (name and labels in exposition order).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no sample {series} in\n{text}"))
}

fn render(metrics: &Metrics) -> String {
    metrics.render().expect("renders")
}

#[test]
fn every_metric_is_documented_and_every_documented_metric_exists() {
    let (stats, _, _, metrics) = fresh();
    // Per-partition families appear once a partition is known.
    stats.set_partition(0, PartitionProgress::default());
    let text = render(&metrics);
    let exposed: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let documented: BTreeSet<&str> = DOC
        .split('`')
        .filter(|word| {
            word.len() > "flowboard_".len()
                && word.starts_with("flowboard_")
                && word.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        })
        .filter(|word| {
            // `x_bucket` / `x_count` / `x_sum` of a documented histogram `x` are fine too.
            !["_bucket", "_count", "_sum"].iter().any(|s| {
                word.strip_suffix(s)
                    .is_some_and(|base| exposed.contains(base))
            })
        })
        .collect();
    assert!(exposed.len() > 30, "{exposed:?}");
    let undocumented: Vec<_> = exposed.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&exposed).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "undocumented: {undocumented:?}; documented but not exposed: {unknown:?}"
    );
    for name in &exposed {
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} has no help"
        );
        assert!(name.starts_with("flowboard_"), "{name}");
    }
}

#[test]
fn dataflow_counters_are_copied_at_scrape_time() {
    let (stats, _, _, metrics) = fresh();
    stats.events_accepted.store(40, Ordering::Relaxed);
    stats.reject(RejectReason::InvalidValue, 2);
    stats.reject(RejectReason::TooOld, 3);
    stats.events_late.store(4, Ordering::Relaxed);
    stats.records_read.store(9, Ordering::Relaxed);
    stats.set_partition(
        3,
        PartitionProgress {
            position: 10,
            high_watermark: 25,
            lag_records: 15,
            lag_ms: 2_500,
            lost_records: 6,
        },
    );
    stats.kafka_reachable.store(true, Ordering::Relaxed);
    stats.checkpoint_bytes.store(4_096, Ordering::Relaxed);
    stats.checkpoint_duration_us.store(1_500, Ordering::Relaxed);
    stats.checkpoint_failures.store(1, Ordering::Relaxed);
    let text = render(&metrics);

    let at = |series: &str| sample(&text, series);
    assert_eq!(at(r#"flowboard_events_accepted_total{path="kafka"}"#), 40.0);
    assert_eq!(at(r#"flowboard_events_accepted_total{path="http"}"#), 0.0);
    assert_eq!(
        at(r#"flowboard_events_rejected_total{path="kafka",reason="invalid_value"}"#),
        2.0
    );
    assert_eq!(
        at(r#"flowboard_events_rejected_total{path="kafka",reason="too_old"}"#),
        3.0
    );
    assert_eq!(
        at(r#"flowboard_events_rejected_total{path="http",reason="request_invalid"}"#),
        0.0
    );
    assert_eq!(at("flowboard_events_late_total"), 4.0);
    assert_eq!(at("flowboard_kafka_records_read_total"), 9.0);
    assert_eq!(
        at(r#"flowboard_kafka_consumer_lag_records{partition="3"}"#),
        15.0
    );
    assert_eq!(
        at(r#"flowboard_kafka_consumer_lag_seconds{partition="3"}"#),
        2.5
    );
    assert_eq!(
        at(r#"flowboard_kafka_consumer_offset{partition="3"}"#),
        10.0
    );
    assert_eq!(
        at(r#"flowboard_kafka_partition_high_watermark{partition="3"}"#),
        25.0
    );
    assert_eq!(
        at(r#"flowboard_kafka_records_lost_total{partition="3"}"#),
        6.0
    );
    assert_eq!(at("flowboard_kafka_reachable"), 1.0);
    assert_eq!(at("flowboard_dataflow_workers"), 3.0);
    assert_eq!(at("flowboard_dataflow_failed"), 0.0);
    assert_eq!(at("flowboard_checkpoint_last_size_bytes"), 4_096.0);
    assert_eq!(at("flowboard_checkpoint_last_duration_seconds"), 0.0015);
    assert_eq!(at("flowboard_checkpoint_failures_total"), 1.0);
    assert_eq!(at("flowboard_checkpoint_interval_seconds"), 10.0);
    assert_eq!(at("flowboard_closed_time_seconds"), 0.0);
    assert_eq!(
        at("flowboard_checkpoint_last_success_timestamp_seconds"),
        0.0
    );
    assert_eq!(
        at("flowboard_checkpoint_last_boundary_timestamp_seconds"),
        0.0
    );
    assert_eq!(
        at("flowboard_widget_window_min_seconds"),
        3_600.0,
        "retention"
    );
    assert_eq!(at(r#"flowboard_build_info{version="0.1.0"}"#), 1.0);

    // Counters follow the dataflow at every scrape.
    stats.events_accepted.store(55, Ordering::Relaxed);
    let text = render(&metrics);
    assert_eq!(
        sample(&text, r#"flowboard_events_accepted_total{path="kafka"}"#),
        55.0
    );
}

#[test]
fn watermark_and_checkpoint_ages_are_measured_from_the_wall_clock() {
    let (stats, _, _, metrics) = fresh();
    let now = dataflow::time::now_ms();
    stats.closed_time.store(now - 3_000, Ordering::Relaxed);
    stats
        .checkpoint_written_at
        .store(now - 20_000, Ordering::Relaxed);
    let text = render(&metrics);
    let lag = sample(&text, "flowboard_watermark_lag_seconds");
    assert!((3.0..4.0).contains(&lag), "{lag}");
    let age = sample(&text, "flowboard_checkpoint_age_seconds");
    assert!((20.0..21.0).contains(&age), "{age}");
    let closed = sample(&text, "flowboard_closed_time_seconds");
    assert_eq!(closed, (now - 3_000) as f64 / 1_000.0);
}

#[test]
fn subscriptions_count_widgets_times_clients() {
    let (hub, clock) = hub(1);
    let stats = Arc::new(PipelineStats::default());
    let metrics = metrics_of(&stats, &hub, &IngestMetrics::new());
    let mut short = widget(1);
    short.window_seconds = 15;
    let two = dashboard(vec![short, widget(1)]);
    let one = dashboard(vec![widget(5)]);
    let unwatched = dashboard(vec![widget(1), widget(1), widget(1)]);
    for d in [&two, &one, &unwatched] {
        hub.set_dashboard(d);
    }
    let a = hub.subscribe(two.id);
    let _b = hub.subscribe(two.id);
    let _c = hub.subscribe(one.id);
    hub.apply(batch(0, T0, vec![]));
    // Refresh 1 s: stale after 2 s without a new closed time; refresh 5 s: after 10 s.
    clock.advance(3_000);

    let text = render(&metrics);
    let at = |series: &str| sample(&text, series);
    assert_eq!(at("flowboard_websocket_connections"), 3.0);
    assert_eq!(at("flowboard_dashboards"), 3.0);
    assert_eq!(at("flowboard_widgets"), 6.0);
    assert_eq!(at("flowboard_widgets_subscribed"), 3.0);
    assert_eq!(at("flowboard_widget_subscriptions"), 5.0, "2 × 2 + 1 × 1");
    assert_eq!(at("flowboard_subscription_fanout_ratio"), 5.0 / 3.0);
    assert_eq!(at("flowboard_widgets_stale"), 5.0);
    assert_eq!(at("flowboard_widget_window_min_seconds"), 15.0);

    drop(a);
    let text = render(&metrics);
    assert_eq!(sample(&text, "flowboard_websocket_connections"), 2.0);
    assert_eq!(sample(&text, "flowboard_widget_subscriptions"), 3.0);
}

#[test]
fn push_and_aggregation_latency_are_measured_against_the_closed_time() {
    let (hub, clock) = hub(1);
    let w = widget(1);
    let d = dashboard(vec![w.clone()]);
    hub.set_dashboard(&d);
    let mut first = hub.subscribe(d.id);
    let mut second = hub.subscribe(d.id);
    drain(&mut first);
    drain(&mut second);

    // The closed time T0 reaches the hub 300 ms late ...
    clock.set(T0 + 300);
    hub.apply(batch(0, T0, vec![value(&w, 1.0, T0)]));
    let metrics = hub.metrics();
    assert_eq!((metrics.closed_times(), metrics.broadcasts()), (1, 1));
    // ... and the update is handed to one client 200 ms later, to the other 1.7 s later.
    clock.set(T0 + 500);
    assert_eq!(drain(&mut first).len(), 1);
    clock.set(T0 + 2_000);
    assert_eq!(drain(&mut second).len(), 1);
    assert_eq!(metrics.pushes(), 2);

    let stats = Arc::new(PipelineStats::default());
    let text = render(&metrics_of(&stats, &hub, &IngestMetrics::new()));
    let at = |series: &str| sample(&text, series);
    assert_eq!(at("flowboard_aggregation_latency_seconds_sum"), 0.3);
    assert_eq!(at("flowboard_websocket_push_latency_seconds_sum"), 2.5);
    assert_eq!(
        at(r#"flowboard_websocket_push_latency_seconds_bucket{le="0.5"}"#),
        1.0
    );
    assert_eq!(
        at(r#"flowboard_websocket_push_latency_seconds_bucket{le="2"}"#),
        2.0
    );
    assert_eq!(at("flowboard_widget_updates_broadcast_total"), 1.0);

    // A closed time that does not move is not observed again; snapshots are not pushes.
    hub.apply(batch(0, T0, vec![]));
    let _third = hub.subscribe(d.id);
    assert_eq!((metrics.closed_times(), metrics.pushes()), (1, 2));
}

#[test]
fn ingest_counts_events_by_reason_and_requests_by_outcome() {
    let ingest = IngestMetrics::new();
    ingest.accepted(7);
    ingest.invalid_request([RejectReason::InvalidValue, RejectReason::InvalidValue], 3);
    ingest.rejected(REASON_KAFKA_UNAVAILABLE, 4);
    ingest.request(IngestOutcome::Accepted, Duration::from_millis(3));
    ingest.request(IngestOutcome::Invalid, Duration::from_millis(1));
    let (stats, hub) = (Arc::new(PipelineStats::default()), Hub::new(1));
    let text = render(&metrics_of(&stats, &hub, &ingest));
    let at = |series: &str| sample(&text, series);
    assert_eq!(at(r#"flowboard_events_accepted_total{path="http"}"#), 7.0);
    assert_eq!(
        at(r#"flowboard_events_rejected_total{path="http",reason="invalid_value"}"#),
        2.0
    );
    assert_eq!(
        at(r#"flowboard_events_rejected_total{path="http",reason="request_invalid"}"#),
        3.0
    );
    assert_eq!(
        at(r#"flowboard_events_rejected_total{path="http",reason="kafka_unavailable"}"#),
        4.0
    );
    assert_eq!(
        at(r#"flowboard_ingest_request_duration_seconds_count{outcome="accepted"}"#),
        1.0
    );
    assert_eq!(
        at(r#"flowboard_ingest_request_duration_seconds_count{outcome="invalid"}"#),
        1.0
    );
    assert_eq!(
        at(r#"flowboard_ingest_request_duration_seconds_count{outcome="unavailable"}"#),
        0.0
    );
}
