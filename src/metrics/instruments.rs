//! The instruments held by the code that measures: `POST /ingest` ([`IngestMetrics`]) and the
//! value hub ([`HubMetrics`]).
//!
//! Each is a set of `prometheus` handles, created unregistered by their owner (so an `Ingest`
//! or a `Hub` built in a test needs no registry) and registered by [`super::Metrics`] in the
//! server. Observing is a few relaxed atomic operations: no lock, no allocation. Label values
//! are resolved once, when the handles are made, except on the ingest error path.

use std::time::Duration;

use dataflow::event::RejectReason;
use prometheus::core::Collector;
use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts};

/// Buckets for the latencies the 2 s end-to-end SLA is about (seconds).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5,
    3.0, 5.0, 10.0, 30.0, 60.0,
];

/// Buckets for HTTP request durations (seconds).
pub const REQUEST_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// `reason` of valid events refused because another event of the same request was invalid (a
/// request is written all or nothing).
pub const REASON_REQUEST_INVALID: &str = "request_invalid";
/// `reason` of events Kafka did not acknowledge in time (answered `503`).
pub const REASON_KAFKA_UNAVAILABLE: &str = "kafka_unavailable";
/// `reason` of events refused by the ingest rate limit (answered `429`).
pub const REASON_RATE_LIMITED: &str = "rate_limited";
/// `reason` of events of a request holding more than `--max-events-per-request` (`413`).
pub const REASON_TOO_MANY_EVENTS: &str = "too_many_events";

/// How an ingest request ended: the `outcome` label of the request duration histogram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IngestOutcome {
    /// `202`: every event acknowledged by Kafka.
    Accepted,
    /// `400`/`413`: an invalid event, an empty request, a body that is not JSON, too many events.
    Invalid,
    /// `503`: Kafka did not acknowledge in time.
    Unavailable,
    /// `429`: over the ingest rate limit.
    RateLimited,
}

impl IngestOutcome {
    const ALL: [IngestOutcome; 4] = [
        IngestOutcome::Accepted,
        IngestOutcome::Invalid,
        IngestOutcome::Unavailable,
        IngestOutcome::RateLimited,
    ];

    fn label(self) -> &'static str {
        match self {
            IngestOutcome::Accepted => "accepted",
            IngestOutcome::Invalid => "invalid",
            IngestOutcome::Unavailable => "unavailable",
            IngestOutcome::RateLimited => "rate_limited",
        }
    }
}

/// `POST /ingest`'s instruments. Cheap to clone; clones share their values.
#[derive(Clone, Debug)]
pub struct IngestMetrics {
    /// `flowboard_events_accepted_total{path}`; the `kafka` child is set at each scrape from
    /// the dataflow's counters.
    pub(super) accepted: IntCounterVec,
    /// `flowboard_events_rejected_total{path, reason}`; the `kafka` children likewise.
    pub(super) rejected: IntCounterVec,
    /// `flowboard_ingest_request_duration_seconds{outcome}`.
    pub(super) duration: HistogramVec,
    http_accepted: IntCounter,
    by_outcome: [Histogram; 4],
}

impl Default for IngestMetrics {
    fn default() -> Self {
        IngestMetrics::new()
    }
}

impl IngestMetrics {
    /// Unregistered instruments, every series present at zero.
    pub fn new() -> IngestMetrics {
        let accepted = IntCounterVec::new(
            Opts::new(
                "flowboard_events_accepted_total",
                "Events accepted: path=http by POST /ingest (acknowledged by Kafka), \
                 path=kafka by the dataflow (decoded from Kafka and counted in windows, \
                 including those that came in over HTTP).",
            ),
            &["path"],
        )
        .expect("valid metric");
        let rejected = IntCounterVec::new(
            Opts::new(
                "flowboard_events_rejected_total",
                "Events refused, by path (http: answered 4xx/5xx, nothing written; kafka: \
                 dropped by the dataflow) and reason.",
            ),
            &["path", "reason"],
        )
        .expect("valid metric");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "flowboard_ingest_request_duration_seconds",
                "Time to answer POST /ingest, from the body read to the answer, by outcome.",
            )
            .buckets(REQUEST_BUCKETS.to_vec()),
            &["outcome"],
        )
        .expect("valid metric");
        for reason in http_reasons() {
            rejected.with_label_values(&["http", reason]);
        }
        IngestMetrics {
            http_accepted: accepted.with_label_values(&["http"]),
            by_outcome: IngestOutcome::ALL.map(|o| duration.with_label_values(&[o.label()])),
            accepted,
            rejected,
            duration,
        }
    }

    /// Counts `events` acknowledged by Kafka.
    pub fn accepted(&self, events: usize) {
        self.http_accepted.inc_by(events as u64);
    }

    /// Counts `events` refused for `reason` (a [`RejectReason::label`],
    /// [`REASON_REQUEST_INVALID`] or [`REASON_KAFKA_UNAVAILABLE`]).
    pub fn rejected(&self, reason: &str, events: usize) {
        if events > 0 {
            self.rejected
                .with_label_values(&["http", reason])
                .inc_by(events as u64);
        }
    }

    /// Counts a request that held invalid events (each counted by its own reason) and `valid`
    /// events refused with them.
    pub fn invalid_request(&self, reasons: impl IntoIterator<Item = RejectReason>, valid: usize) {
        for reason in reasons {
            self.rejected(reason.label(), 1);
        }
        self.rejected(REASON_REQUEST_INVALID, valid);
    }

    /// Records how long a request took and how it ended.
    pub fn request(&self, outcome: IngestOutcome, elapsed: Duration) {
        let at = IngestOutcome::ALL
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(0);
        self.by_outcome[at].observe(elapsed.as_secs_f64());
    }

    pub(super) fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.accepted.clone()),
            Box::new(self.rejected.clone()),
            Box::new(self.duration.clone()),
        ]
    }
}

/// The `reason` values HTTP ingest can count.
fn http_reasons() -> impl Iterator<Item = &'static str> {
    RejectReason::ALL
        .iter()
        .filter(|r| **r != RejectReason::TooOld)
        .map(|r| r.label())
        .chain([
            REASON_REQUEST_INVALID,
            REASON_KAFKA_UNAVAILABLE,
            REASON_RATE_LIMITED,
            REASON_TOO_MANY_EVENTS,
        ])
}

/// The value hub's instruments. Cheap to clone; clones share their values.
#[derive(Clone, Debug)]
pub struct HubMetrics {
    push_latency: Histogram,
    aggregation_latency: Histogram,
    updates: IntCounter,
}

impl Default for HubMetrics {
    fn default() -> Self {
        HubMetrics::new()
    }
}

impl HubMetrics {
    /// Unregistered instruments.
    pub fn new() -> HubMetrics {
        let histogram = |name: &str, help: &str| {
            Histogram::with_opts(HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()))
                .expect("valid metric")
        };
        HubMetrics {
            push_latency: histogram(
                "flowboard_websocket_push_latency_seconds",
                "Per WebSocket client and update message: the time it is handed to the client's \
                 socket minus the closed time the value is as of (the newest event time it can \
                 include). The end-to-end latency the 2 s p95 SLA is about.",
            ),
            aggregation_latency: histogram(
                "flowboard_aggregation_latency_seconds",
                "Per closed time of the dataflow: the wall clock when every worker's values for \
                 it reached the hub minus that time (includes the watermark delay).",
            ),
            updates: IntCounter::new(
                "flowboard_widget_updates_broadcast_total",
                "Widget update messages broadcast to a dashboard's subscribers (once per update, \
                 however many subscribers).",
            )
            .expect("valid metric"),
        }
    }

    /// An update message as of `latency_ms` ago was handed to a client.
    pub fn pushed(&self, latency_ms: u64) {
        self.push_latency.observe(latency_ms as f64 / 1_000.0);
    }

    /// The dataflow's closed time advanced to a time `latency_ms` ago.
    pub fn closed(&self, latency_ms: u64) {
        self.aggregation_latency
            .observe(latency_ms as f64 / 1_000.0);
    }

    /// `n` update messages were broadcast.
    pub fn broadcast(&self, n: usize) {
        if n > 0 {
            self.updates.inc_by(n as u64);
        }
    }

    /// Update messages handed to clients so far.
    pub fn pushes(&self) -> u64 {
        self.push_latency.get_sample_count()
    }

    /// Closed times observed so far.
    pub fn closed_times(&self) -> u64 {
        self.aggregation_latency.get_sample_count()
    }

    /// Update messages broadcast so far.
    pub fn broadcasts(&self) -> u64 {
        self.updates.get()
    }

    pub(super) fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.push_latency.clone()),
            Box::new(self.aggregation_latency.clone()),
            Box::new(self.updates.clone()),
        ]
    }
}
