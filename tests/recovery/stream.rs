//! The known stream the recovery tests produce, its ground truth, and the dashboard that
//! shows it.
//!
//! Event `i` has host `a`, `b` or `c` in turn and a value that is a multiple of 1/8, so every
//! sum is exact; a widget's true value is recomputed from scratch over the events the broker
//! acknowledged.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};

use crate::common::*;

/// The metric every event of the stream has.
pub const METRIC: &str = "load";
/// The `host` tag values, in turn.
pub const HOSTS: [&str; 3] = ["a", "b", "c"];

/// What a produced event means to the widgets.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Its `host` tag.
    pub host: &'static str,
    /// Its value.
    pub value: f64,
}

/// Event `i` of the stream: hosts in turn, values multiples of 1/8 in [1, 126].
pub fn sample(i: u64) -> Sample {
    Sample {
        host: HOSTS[(i % 3) as usize],
        value: 1.0 + ((i * 7919) % 1000) as f64 / 8.0,
    }
}

/// The widgets every recovery dashboard has: `(aggregation, host filter)`, all over 1 h.
pub const WIDGETS: [(&str, Option<&str>); 7] = [
    ("count", None),
    ("sum", None),
    ("min", None),
    ("max", None),
    ("avg", None),
    ("sum", Some("a")),
    ("count", Some("b")),
];

/// A widget's value over `samples`, computed from scratch.
pub fn truth(samples: &[Sample], aggregation: &str, host: Option<&str>) -> Option<f64> {
    let values: Vec<f64> = samples
        .iter()
        .filter(|s| host.is_none_or(|h| s.host == h))
        .map(|s| s.value)
        .collect();
    let sum: f64 = values.iter().sum();
    match aggregation {
        "count" => Some(values.len() as f64),
        "sum" => Some(sum),
        _ if values.is_empty() => None,
        "min" => values.iter().copied().reduce(f64::min),
        "max" => values.iter().copied().reduce(f64::max),
        "avg" => Some(sum / values.len() as f64),
        other => panic!("no aggregation {other}"),
    }
}

/// Whether a reported value is the true one: exact for count/min/max, 1e-9 relative for
/// sum/avg, `null` exactly when the window is empty.
pub fn agrees(aggregation: &str, reported: &Value, expected: Option<f64>) -> bool {
    match (reported.as_f64(), expected) {
        (None, None) => reported.is_null(),
        (Some(got), Some(want)) => match aggregation {
            "sum" | "avg" => (got - want).abs() <= 1e-9 * want.abs().max(1.0),
            _ => got == want,
        },
        _ => false,
    }
}

/// A dashboard with [`WIDGETS`].
pub struct Board {
    /// The dashboard id.
    pub id: String,
    /// Per widget, in [`WIDGETS`] order: its id, aggregation and host filter.
    pub widgets: Vec<(String, &'static str, Option<&'static str>)>,
}

/// A widget over 1 h with a refresh interval of 1 s.
pub fn widget_json(metric: &str, aggregation: &str, filter: Value) -> Value {
    json!({"metric_name": metric, "aggregation": aggregation, "window_seconds": 3600,
           "refresh_interval_seconds": 1, "filter": filter,
           "display_config": {"chart": "number"}})
}

impl Board {
    /// Creates the dashboard on `server`.
    pub async fn create(server: &Server) -> Board {
        let specs: Vec<Value> = WIDGETS
            .iter()
            .map(|(aggregation, host)| {
                let filter = host.map_or(json!({}), |h| json!({ "host": h }));
                widget_json(METRIC, aggregation, filter)
            })
            .collect();
        let created = create_dashboard(server, "recovery", Value::Array(specs)).await;
        let widgets = WIDGETS
            .iter()
            .enumerate()
            .map(|(i, (aggregation, host))| {
                let id = created["widgets"][i]["widget_id"]
                    .as_str()
                    .expect("widget_id");
                (id.to_string(), *aggregation, *host)
            })
            .collect();
        Board {
            id: created["dashboard_id"].as_str().expect("id").to_string(),
            widgets,
        }
    }

    /// Every widget's snapshot from the snapshot endpoint.
    pub async fn snapshots(&self, server: &Server) -> Vec<Value> {
        let mut all = Vec::new();
        for (widget, _, _) in &self.widgets {
            let path = format!("/dashboards/{}/widgets/{widget}/snapshot", self.id);
            let (status, body) = get(server, &path).await;
            assert_eq!(status, 200, "{path}: {body}");
            all.push(body);
        }
        all
    }

    /// The widgets whose reported value (from `value_of`) disagrees with the truth, described.
    pub fn mismatches(&self, samples: &[Sample], value_of: impl Fn(&str) -> Value) -> Vec<String> {
        self.widgets
            .iter()
            .filter_map(|(id, aggregation, host)| {
                let want = truth(samples, aggregation, *host);
                let got = value_of(id);
                (!agrees(aggregation, &got, want))
                    .then(|| format!("{aggregation} host={host:?}: got {got}, want {want:?}"))
            })
            .collect()
    }

    /// Polls the snapshot endpoint until every widget shows the truth over `samples`.
    pub async fn wait_exact(&self, server: &Server, samples: &[Sample], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let snapshots = self.snapshots(server).await;
            let wrong = self.mismatches(samples, |id| {
                snapshots
                    .iter()
                    .find(|s| s["widget_id"] == id)
                    .map_or(Value::Null, |s| s["value"].clone())
            });
            if wrong.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "values did not settle on the truth over {} events within {timeout:?}:\n{}",
                samples.len(),
                wrong.join("\n")
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Asserts that a WebSocket snapshot message shows the truth for every widget.
    pub fn assert_ws_snapshot(&self, message: &Value, samples: &[Sample]) {
        assert_eq!(message["type"], "snapshot", "{message}");
        let wrong = self.mismatches(samples, |id| value_in(message, id).unwrap_or(Value::Null));
        assert!(
            wrong.is_empty(),
            "WebSocket snapshot differs from the truth over {} events:\n{}\n{message}",
            samples.len(),
            wrong.join("\n")
        );
    }
}

/// A Kafka producer that waits for the broker's acknowledgement of every record.
pub fn kafka_producer(broker: &Broker) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "30000")
        .set("linger.ms", "1")
        .create()
        .expect("producer")
}

/// Produces events `from..to` in records of up to four; returns those acknowledged.
pub async fn produce_range(producer: &FutureProducer, from: u64, to: u64) -> Vec<Sample> {
    let mut acked = Vec::new();
    let mut i = from;
    while i < to {
        let end = (i + 4).min(to);
        acked.extend(produce_record(producer, i, end).await);
        i = end;
    }
    acked
}

/// One record holding events `from..to`, stamped now; the samples if the broker acknowledged.
pub async fn produce_record(producer: &FutureProducer, from: u64, to: u64) -> Vec<Sample> {
    let now = now_ms();
    let samples: Vec<Sample> = (from..to).map(sample).collect();
    let events: Vec<Value> = samples
        .iter()
        .map(|s| json!({"metric_name": METRIC, "value": s.value, "tags": {"host": s.host}, "event_time": now}))
        .collect();
    let payload = serde_json::to_vec(&events).expect("json");
    let key = format!("record-{from}");
    let record = FutureRecord::to("metrics").key(&key).payload(&payload);
    match producer.send(record, Duration::from_secs(30)).await {
        Ok(_) => samples,
        Err(_) => Vec::new(),
    }
}

/// A producer writing the stream continuously until stopped.
pub struct ContinuousProducer {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(Vec<Sample>, u64)>,
}

impl ContinuousProducer {
    /// Starts producing at event `first`.
    pub fn start(broker: &Broker, first: u64) -> ContinuousProducer {
        let producer = kafka_producer(broker);
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let task = tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut next = first;
            while !stopping.load(Ordering::SeqCst) {
                acked.extend(produce_record(&producer, next, next + 4).await);
                next += 4;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (acked, next - first)
        });
        ContinuousProducer { stop, task }
    }

    /// Stops; returns the acknowledged samples, having checked that the broker acknowledged
    /// every record (it is never down in these tests).
    pub async fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        let (acked, sent) = self.task.await.expect("producer task");
        assert_eq!(acked.len() as u64, sent, "the broker refused records");
        acked
    }
}
