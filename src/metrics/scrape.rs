//! Metrics read at scrape time from state other parts keep anyway: the dataflow's
//! [`PipelineStats`] and the hub's connection and subscription counts.
//!
//! The dataflow counts with plain atomics per batch (it knows nothing of Prometheus); here
//! those values are copied into `prometheus` families just before they are encoded. Counters
//! are copied as absolute values (reset, then added), which is why [`Scraped::refresh`] and
//! the encoding run under one lock.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use dataflow::stats::PipelineStats;
use prometheus::core::Collector;
use prometheus::{Gauge, GaugeVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts};

use super::IngestMetrics;
use crate::hub::Hub;

/// Where the scraped values come from, and the settings they are compared with.
pub struct MetricSources {
    /// The dataflow's counters.
    pub stats: Arc<PipelineStats>,
    /// The value hub.
    pub hub: Hub,
    /// `POST /ingest`'s instruments (whose families also carry the Kafka path's counts).
    pub ingest: IngestMetrics,
    /// Timely worker threads.
    pub workers: usize,
    /// Time between checkpoints.
    pub checkpoint_interval: std::time::Duration,
    /// History kept per series: the longest window a widget may have.
    pub retention: std::time::Duration,
}

/// The families filled at scrape time.
pub(super) struct Scraped {
    sources: MetricSources,
    started_ms: u64,
    records_read: IntCounter,
    late: IntCounter,
    lag_records: IntGaugeVec,
    lag_seconds: GaugeVec,
    offset: IntGaugeVec,
    high_watermark: IntGaugeVec,
    lost: IntCounterVec,
    reachable: IntGauge,
    closed_time: Gauge,
    watermark_lag: Gauge,
    workers: IntGauge,
    failed: IntGauge,
    checkpoint_duration: Gauge,
    checkpoint_bytes: IntGauge,
    checkpoint_age: Gauge,
    checkpoint_written: Gauge,
    checkpoint_boundary: Gauge,
    checkpoint_failures: IntCounter,
    checkpoint_interval: Gauge,
    connections: IntGauge,
    resyncs: IntCounter,
    dashboards: IntGauge,
    widgets: IntGauge,
    widgets_subscribed: IntGauge,
    subscriptions: IntGauge,
    fanout: Gauge,
    stale: IntGauge,
    shortest_window: Gauge,
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help)
}

fn partition_gauge(name: &str, help: &str) -> IntGaugeVec {
    IntGaugeVec::new(opts(name, help), &["partition"]).expect("valid metric")
}

impl Scraped {
    pub(super) fn new(sources: MetricSources, started_ms: u64) -> Scraped {
        let int = |name: &str, help: &str| IntGauge::new(name, help).expect("valid metric");
        let float = |name: &str, help: &str| Gauge::new(name, help).expect("valid metric");
        let counter = |name: &str, help: &str| IntCounter::new(name, help).expect("valid metric");
        Scraped {
            sources,
            started_ms,
            records_read: counter(
                "flowboard_kafka_records_read_total",
                "Kafka records read by the dataflow (a record holds one event or an array).",
            ),
            late: counter(
                "flowboard_events_late_total",
                "Events that arrived after their pane had closed; they still count, from the \
                 watermark on.",
            ),
            lag_records: partition_gauge(
                "flowboard_kafka_consumer_lag_records",
                "Records between the dataflow's position and the partition's high watermark.",
            ),
            lag_seconds: GaugeVec::new(
                opts(
                    "flowboard_kafka_consumer_lag_seconds",
                    "Wall clock minus the event time of the last record read, while records are \
                     left to read; 0 when caught up.",
                ),
                &["partition"],
            )
            .expect("valid metric"),
            offset: partition_gauge(
                "flowboard_kafka_consumer_offset",
                "Offset of the next record the dataflow reads from the partition.",
            ),
            high_watermark: partition_gauge(
                "flowboard_kafka_partition_high_watermark",
                "The partition's high watermark (offset after its last record) when last seen.",
            ),
            lost: IntCounterVec::new(
                opts(
                    "flowboard_kafka_records_lost_total",
                    "Records skipped because the partition's log start moved past the offset \
                     the dataflow needed (retention or broker size limit).",
                ),
                &["partition"],
            )
            .expect("valid metric"),
            reachable: int(
                "flowboard_kafka_reachable",
                "1 while the brokers leading the dataflow's partitions answer, else 0 (the \
                 watermark is then held).",
            ),
            closed_time: float(
                "flowboard_closed_time_seconds",
                "The dataflow's closed time (watermark), epoch seconds; 0 before the first.",
            ),
            watermark_lag: float(
                "flowboard_watermark_lag_seconds",
                "Wall clock minus the dataflow's closed time (since process start before the \
                 first closed time).",
            ),
            workers: int(
                "flowboard_dataflow_workers",
                "Timely dataflow worker threads.",
            ),
            failed: int(
                "flowboard_dataflow_failed",
                "1 once a dataflow worker stopped abnormally (the process then exits), else 0.",
            ),
            checkpoint_duration: float(
                "flowboard_checkpoint_last_duration_seconds",
                "How long writing the newest checkpoint took.",
            ),
            checkpoint_bytes: int(
                "flowboard_checkpoint_last_size_bytes",
                "Bytes of the newest checkpoint's segment chain.",
            ),
            checkpoint_age: float(
                "flowboard_checkpoint_age_seconds",
                "Seconds since the newest checkpoint was written (since process start when \
                 none was).",
            ),
            checkpoint_written: float(
                "flowboard_checkpoint_last_success_timestamp_seconds",
                "When the newest checkpoint was written, epoch seconds; 0 before the first.",
            ),
            checkpoint_boundary: float(
                "flowboard_checkpoint_last_boundary_timestamp_seconds",
                "The closed time the newest checkpoint reflects, epoch seconds: a crash now \
                 replays from there; 0 before the first.",
            ),
            checkpoint_failures: counter(
                "flowboard_checkpoint_failures_total",
                "Checkpoints that could not be written (the previous one stays in effect).",
            ),
            checkpoint_interval: float(
                "flowboard_checkpoint_interval_seconds",
                "Configured time between checkpoints (--checkpoint-interval).",
            ),
            connections: int(
                "flowboard_websocket_connections",
                "Open WebSocket streams (one per connected dashboard client).",
            ),
            resyncs: counter(
                "flowboard_websocket_resyncs_total",
                "Times a WebSocket client fell behind its dashboard's channel and was sent a \
                 fresh snapshot instead of the updates it missed.",
            ),
            dashboards: int("flowboard_dashboards", "Dashboards the hub serves."),
            widgets: int("flowboard_widgets", "Widgets of all dashboards."),
            widgets_subscribed: int(
                "flowboard_widgets_subscribed",
                "Widgets whose dashboard has at least one WebSocket client.",
            ),
            subscriptions: int(
                "flowboard_widget_subscriptions",
                "Widget subscriptions: the sum over dashboards of widgets × WebSocket clients.",
            ),
            fanout: float(
                "flowboard_subscription_fanout_ratio",
                "flowboard_widget_subscriptions / flowboard_widgets_subscribed: how many \
                 clients an update of a watched widget goes to, on average (0 when none).",
            ),
            stale: int(
                "flowboard_widgets_stale",
                "Widgets whose value is stale: as of a closed time older than twice their \
                 refresh interval.",
            ),
            shortest_window: float(
                "flowboard_widget_window_min_seconds",
                "The shortest window of any widget (the retention when there are no widgets); \
                 consumer lag above it makes that widget's values wrong.",
            ),
        }
    }

    pub(super) fn collectors(&self) -> Vec<Box<dyn Collector>> {
        let mut collectors: Vec<Box<dyn Collector>> = vec![
            Box::new(self.records_read.clone()),
            Box::new(self.late.clone()),
            Box::new(self.lag_records.clone()),
            Box::new(self.lag_seconds.clone()),
            Box::new(self.offset.clone()),
            Box::new(self.high_watermark.clone()),
            Box::new(self.lost.clone()),
            Box::new(self.reachable.clone()),
            Box::new(self.closed_time.clone()),
            Box::new(self.watermark_lag.clone()),
            Box::new(self.workers.clone()),
            Box::new(self.failed.clone()),
            Box::new(self.checkpoint_duration.clone()),
            Box::new(self.checkpoint_bytes.clone()),
            Box::new(self.checkpoint_age.clone()),
            Box::new(self.checkpoint_written.clone()),
            Box::new(self.checkpoint_boundary.clone()),
            Box::new(self.checkpoint_failures.clone()),
            Box::new(self.checkpoint_interval.clone()),
            Box::new(self.connections.clone()),
            Box::new(self.resyncs.clone()),
            Box::new(self.dashboards.clone()),
            Box::new(self.widgets.clone()),
            Box::new(self.widgets_subscribed.clone()),
            Box::new(self.subscriptions.clone()),
            Box::new(self.fanout.clone()),
            Box::new(self.stale.clone()),
            Box::new(self.shortest_window.clone()),
        ];
        collectors.extend(self.sources.ingest.collectors());
        collectors.extend(self.sources.hub.metrics().collectors());
        collectors
    }

    /// Copies the current values in, as of the wall clock `now_ms`.
    pub(super) fn refresh(&self, now_ms: u64) {
        self.refresh_dataflow(now_ms);
        self.refresh_checkpoints(now_ms);
        self.refresh_hub();
    }

    fn refresh_dataflow(&self, now_ms: u64) {
        let stats = &self.sources.stats;
        let ingest = &self.sources.ingest;
        set_counter(
            &ingest.accepted.with_label_values(&["kafka"]),
            stats.events_accepted.load(Ordering::Relaxed),
        );
        for (reason, count) in stats.rejected() {
            set_counter(
                &ingest
                    .rejected
                    .with_label_values(&["kafka", reason.label()]),
                count,
            );
        }
        set_counter(
            &self.records_read,
            stats.records_read.load(Ordering::Relaxed),
        );
        set_counter(&self.late, stats.events_late.load(Ordering::Relaxed));
        for (partition, progress) in stats.partitions() {
            let label = partition.to_string();
            let labels = [label.as_str()];
            self.lag_records
                .with_label_values(&labels)
                .set(progress.lag_records);
            self.lag_seconds
                .with_label_values(&labels)
                .set(progress.lag_ms as f64 / 1_000.0);
            self.offset
                .with_label_values(&labels)
                .set(progress.position);
            self.high_watermark
                .with_label_values(&labels)
                .set(progress.high_watermark);
            set_counter(&self.lost.with_label_values(&labels), progress.lost_records);
        }
        self.reachable
            .set(i64::from(stats.kafka_reachable.load(Ordering::Relaxed)));
        let closed = stats.closed_time.load(Ordering::Relaxed);
        self.closed_time.set(closed as f64 / 1_000.0);
        let since = if closed == 0 { self.started_ms } else { closed };
        self.watermark_lag
            .set(now_ms.saturating_sub(since) as f64 / 1_000.0);
        self.workers.set(self.sources.workers as i64);
        self.failed
            .set(i64::from(stats.failed.load(Ordering::Relaxed)));
    }

    fn refresh_checkpoints(&self, now_ms: u64) {
        let stats = &self.sources.stats;
        let written = stats.checkpoint_written_at.load(Ordering::Relaxed);
        self.checkpoint_duration
            .set(stats.checkpoint_duration_us.load(Ordering::Relaxed) as f64 / 1e6);
        self.checkpoint_bytes
            .set(stats.checkpoint_bytes.load(Ordering::Relaxed) as i64);
        let since = if written == 0 {
            self.started_ms
        } else {
            written
        };
        self.checkpoint_age
            .set(now_ms.saturating_sub(since) as f64 / 1_000.0);
        self.checkpoint_written.set(written as f64 / 1_000.0);
        self.checkpoint_boundary
            .set(stats.checkpoint_boundary.load(Ordering::Relaxed) as f64 / 1_000.0);
        set_counter(
            &self.checkpoint_failures,
            stats.checkpoint_failures.load(Ordering::Relaxed),
        );
        self.checkpoint_interval
            .set(self.sources.checkpoint_interval.as_secs_f64());
    }

    fn refresh_hub(&self) {
        let hub = &self.sources.hub;
        let summary = hub.subscription_summary();
        self.connections.set(hub.open_streams() as i64);
        set_counter(&self.resyncs, hub.lagged_subscribers());
        self.dashboards.set(summary.dashboards as i64);
        self.widgets.set(summary.widgets as i64);
        self.widgets_subscribed
            .set(summary.widgets_subscribed as i64);
        self.subscriptions.set(summary.widget_subscriptions as i64);
        self.fanout.set(summary.fanout_ratio());
        self.stale.set(summary.stale_widgets as i64);
        self.shortest_window.set(
            summary
                .shortest_window_seconds
                .map_or(self.sources.retention.as_secs_f64(), |s| s as f64),
        );
    }
}

/// Sets a counter to the absolute value `value`, counted elsewhere.
fn set_counter(counter: &IntCounter, value: u64) {
    let current = counter.get();
    if value >= current {
        counter.inc_by(value - current);
    } else {
        counter.reset();
        counter.inc_by(value);
    }
}
