//! Checkpoints and exact recovery, with real processes.
//!
//! A standalone `flowboard broker` outlives the servers; a Kafka producer in the test writes a
//! known, deterministic stream; servers are killed with SIGKILL at random points (some a few
//! milliseconds after a checkpoint boundary closes, while its files are being written),
//! stopped with SIGTERM, restarted with other worker counts or on a damaged checkpoint
//! directory. Afterwards every widget (snapshot endpoint and WebSocket snapshot) is compared
//! with the ground truth computed from every event the broker acknowledged: counts, minima
//! and maxima exactly, sums and averages within 1e-9 relative. Values are multiples of 1/8, so
//! the sums are in fact exact too.
//!
//! The broker-outage tests take the broker down for 10 s under HTTP ingest: every request
//! answers `503` within the ingest timeout, nothing acknowledged is lost, widgets turn stale.
//!
//! Random kill points come from a seeded RNG; the seed is printed, and `FLOWBOARD_TEST_SEED=N`
//! replays it.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};

/// How long values may take to settle after a restart (replay, first ticks) on a loaded machine.
const SETTLE: Duration = Duration::from_secs(60);
const METRIC: &str = "load";
const HOSTS: [&str; 3] = ["a", "b", "c"];

// ---------------------------------------------------------------------------------------------
// The known stream and its ground truth.
// ---------------------------------------------------------------------------------------------

/// What a produced event means to the widgets.
#[derive(Clone, Copy, Debug)]
struct Sample {
    host: &'static str,
    value: f64,
}

/// Event `i` of the stream: hosts in turn, values multiples of 1/8 in [1, 126].
fn sample(i: u64) -> Sample {
    Sample {
        host: HOSTS[(i % 3) as usize],
        value: 1.0 + ((i * 7919) % 1000) as f64 / 8.0,
    }
}

/// The widgets every recovery dashboard has: `(aggregation, host filter)`, all over 1 h.
const WIDGETS: [(&str, Option<&str>); 7] = [
    ("count", None),
    ("sum", None),
    ("min", None),
    ("max", None),
    ("avg", None),
    ("sum", Some("a")),
    ("count", Some("b")),
];

/// A widget's value over `samples`, computed from scratch.
fn truth(samples: &[Sample], aggregation: &str, host: Option<&str>) -> Option<f64> {
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
fn agrees(aggregation: &str, reported: &Value, expected: Option<f64>) -> bool {
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
struct Board {
    id: String,
    widgets: Vec<(String, &'static str, Option<&'static str>)>,
}

fn widget_json(metric: &str, aggregation: &str, filter: Value) -> Value {
    json!({"metric_name": metric, "aggregation": aggregation, "window_seconds": 3600,
           "refresh_interval_seconds": 1, "filter": filter,
           "display_config": {"chart": "number"}})
}

impl Board {
    async fn create(server: &Server) -> Board {
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
    async fn snapshots(&self, server: &Server) -> Vec<Value> {
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
    fn mismatches(&self, samples: &[Sample], value_of: impl Fn(&str) -> Value) -> Vec<String> {
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
    async fn wait_exact(&self, server: &Server, samples: &[Sample], timeout: Duration) {
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
    fn assert_ws_snapshot(&self, message: &Value, samples: &[Sample]) {
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
fn kafka_producer(broker: &Broker) -> FutureProducer {
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
async fn produce_range(producer: &FutureProducer, from: u64, to: u64) -> Vec<Sample> {
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
async fn produce_record(producer: &FutureProducer, from: u64, to: u64) -> Vec<Sample> {
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
struct ContinuousProducer {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(Vec<Sample>, u64)>,
}

impl ContinuousProducer {
    /// Starts producing at event `first`.
    fn start(broker: &Broker, first: u64) -> ContinuousProducer {
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
    async fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        let (acked, sent) = self.task.await.expect("producer task");
        assert_eq!(acked.len() as u64, sent, "the broker refused records");
        acked
    }
}

// ---------------------------------------------------------------------------------------------
// Reading what the server said about checkpoints.
// ---------------------------------------------------------------------------------------------

/// The boundary the server restored from, per its startup log; panics if it restored nothing.
fn restored_boundary(server: &Server) -> u64 {
    let line = server
        .startup_log
        .iter()
        .find(|l| l.contains("restoring from checkpoint"))
        .unwrap_or_else(|| {
            panic!(
                "the server did not restore from a checkpoint; startup log:\n{}",
                server.startup_log.join("\n")
            )
        });
    log_field(line, "boundary").unwrap_or_else(|| panic!("no boundary in {line:?}"))
}

/// The boundary of the final checkpoint a SIGTERM-stopped server reported.
fn final_boundary(stopped: &Stopped) -> u64 {
    assert!(stopped.exited, "the server did not exit on SIGTERM");
    let line = stopped
        .log
        .iter()
        .find(|l| l.contains("final checkpoint written"))
        .unwrap_or_else(|| {
            panic!(
                "no final checkpoint on SIGTERM; log:\n{}",
                stopped.log.join("\n")
            )
        });
    log_field(line, "boundary").unwrap_or_else(|| panic!("no boundary in {line:?}"))
}

/// The boundary of a manifest, from its file name.
fn manifest_boundary(path: &std::path::Path) -> u64 {
    let name = path.file_stem().and_then(|n| n.to_str()).unwrap_or("");
    name.trim_start_matches("manifest-")
        .parse()
        .expect("manifest name")
}

/// Polls until `dir` holds at least `n` manifests.
async fn wait_manifests(dir: &std::path::Path, n: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while checkpoint_files(dir, "manifest-").len() < n {
        assert!(
            Instant::now() < deadline,
            "fewer than {n} checkpoints in {} after {timeout:?}",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn seed() -> u64 {
    let seed = std::env::var("FLOWBOARD_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(now_ms);
    eprintln!("random kill points from seed {seed} (replay with FLOWBOARD_TEST_SEED={seed})");
    seed
}

/// Files in a checkpoint directory that are neither a manifest nor a segment: writes in
/// progress (the writer writes to a temporary name, then renames).
fn writes_in_progress(dir: &std::path::Path) -> usize {
    let complete = |name: &str| {
        name.ends_with(".ckpt") && (name.starts_with("manifest-") || name.starts_with("segment-"))
    };
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| !e.file_name().to_str().is_some_and(complete))
                .count()
        })
        .unwrap_or(0)
}

/// SIGKILLs the server the moment a checkpoint file is being written (watching its directory
/// for a temporary file), or after `patience` if none is seen. Returns the data dir, and
/// whether the kill left a write unfinished.
async fn kill_during_checkpoint_write(server: Server, patience: Duration) -> (PathBuf, bool) {
    tokio::task::spawn_blocking(move || {
        let dir = server.checkpoint_dir();
        let deadline = Instant::now() + patience;
        while writes_in_progress(&dir) == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(100));
        }
        let data_dir = server.kill9();
        (data_dir, writes_in_progress(&dir) > 0)
    })
    .await
    .expect("kill task")
}

const CHECKPOINT_EVERY_SECOND: [&str; 2] = ["--checkpoint-interval", "1s"];

// ---------------------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------------------

/// Kill -9 at random points while a producer writes continuously; restart on the same data dir
/// each time. Every restart restores a checkpoint (not the whole topic), and at the end every
/// widget equals the truth over every acknowledged event: nothing lost, nothing counted twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_then_values_are_exact() {
    let mut rng = StdRng::seed_from_u64(seed());
    let broker = Broker::start();
    let mut server = Server::start_with_brokers(
        temp_data_dir("rec-crash"),
        &broker,
        2,
        &CHECKPOINT_EVERY_SECOND,
    );
    let board = Board::create(&server).await;
    let started = now_ms();
    let producer = ContinuousProducer::start(&broker, 0);
    wait_manifests(&server.checkpoint_dir(), 1, Duration::from_secs(30)).await;

    let mut restored = Vec::new();
    let mut torn_writes = 0;
    for round in 0..6 {
        // Every other kill lands while a checkpoint file is being written (a few ms after a
        // boundary closed); the others at a random time.
        let (data_dir, torn) = if round % 2 == 0 {
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..1000))).await;
            kill_during_checkpoint_write(server, Duration::from_secs(3)).await
        } else {
            tokio::time::sleep(Duration::from_millis(rng.random_range(200..2500))).await;
            (server.kill9(), false)
        };
        torn_writes += usize::from(torn);
        server = Server::start_with_brokers(data_dir, &broker, 2, &CHECKPOINT_EVERY_SECOND);
        restored.push(restored_boundary(&server));
        eprintln!(
            "kill {round}: mid-write {torn}, restored boundary {}",
            restored[round]
        );
    }
    assert!(
        torn_writes > 0,
        "no kill interrupted a checkpoint write (none seen in progress)"
    );
    // Let the last life write a checkpoint of its own, then end the stream.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let acked = producer.finish().await;
    assert!(acked.len() > 1000, "only {} events produced", acked.len());

    board.wait_exact(&server, &acked, SETTLE).await;
    let mut stream = Stream::connect(&server, &board.id).await;
    let first = stream
        .next(Duration::from_secs(10))
        .await
        .expect("snapshot");
    board.assert_ws_snapshot(&first, &acked);

    // Restores came from checkpoints that held data, never went backwards, and moved on.
    assert!(
        restored[0] >= started / 1000 * 1000,
        "restored {restored:?}, started at {started}"
    );
    assert!(
        restored.windows(2).all(|w| w[0] <= w[1]),
        "restored boundaries went backwards: {restored:?}"
    );
    assert!(
        restored[5] > restored[0],
        "no checkpoint written after a restart: {restored:?}"
    );
    let manifests = checkpoint_files(&server.checkpoint_dir(), "manifest-");
    assert!((1..=3).contains(&manifests.len()), "{manifests:?}");
}

/// Stop with 2 workers, restart with 1, then kill -9 and restart with 3: the state restored
/// from a checkpoint written by another worker count gives the same values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_with_other_worker_counts_keeps_values() {
    let broker = Broker::start();
    let producer = kafka_producer(&broker);
    let server = Server::start_with_brokers(
        temp_data_dir("rec-workers"),
        &broker,
        2,
        &CHECKPOINT_EVERY_SECOND,
    );
    let board = Board::create(&server).await;
    let mut acked = produce_range(&producer, 0, 600).await;
    board.wait_exact(&server, &acked, SETTLE).await;

    let stopped = server.terminate();
    let last = final_boundary(&stopped);
    let server = Server::start_with_brokers(stopped.data_dir, &broker, 1, &CHECKPOINT_EVERY_SECOND);
    assert_eq!(restored_boundary(&server), last);
    board.wait_exact(&server, &acked, SETTLE).await;

    acked.extend(produce_range(&producer, 600, 1200).await);
    board.wait_exact(&server, &acked, SETTLE).await;
    wait_manifests(&server.checkpoint_dir(), 2, Duration::from_secs(30)).await;
    let data_dir = server.kill9();
    let server = Server::start_with_brokers(data_dir, &broker, 3, &CHECKPOINT_EVERY_SECOND);
    assert!(restored_boundary(&server) > last);
    board.wait_exact(&server, &acked, SETTLE).await;
    acked.extend(produce_range(&producer, 1200, 1500).await);
    board.wait_exact(&server, &acked, SETTLE).await;
}

/// Damage the newest checkpoint: first its manifest (bytes flipped), then, in a second round,
/// its newest segment (truncated). Each time the server says the checkpoint is unusable,
/// restores the previous one, replays Kafka from there and shows exact values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_newest_checkpoint_falls_back_to_the_previous_one() {
    let broker = Broker::start();
    let producer = kafka_producer(&broker);
    let data_dir = temp_data_dir("rec-corrupt");
    let checkpoints = data_dir.join("checkpoints");
    let server = Server::start_with_brokers(data_dir, &broker, 2, &CHECKPOINT_EVERY_SECOND);
    let board = Board::create(&server).await;
    let mut acked = produce_range(&producer, 0, 400).await;
    board.wait_exact(&server, &acked, SETTLE).await;
    wait_manifests(&checkpoints, 2, Duration::from_secs(30)).await;
    acked.extend(produce_range(&producer, 400, 800).await);
    board.wait_exact(&server, &acked, SETTLE).await;

    // Round 1: flip bytes in the middle of the newest manifest (the final one).
    let stopped = server.terminate();
    let manifests = checkpoint_files(&checkpoints, "manifest-");
    let newest = manifests.last().expect("a manifest").clone();
    assert_eq!(manifest_boundary(&newest), final_boundary(&stopped));
    let previous = manifest_boundary(&manifests[manifests.len() - 2]);
    let mut bytes = std::fs::read(&newest).expect("read manifest");
    let middle = bytes.len() / 2;
    for byte in &mut bytes[middle..middle + 4] {
        *byte ^= 0x5a;
    }
    std::fs::write(&newest, &bytes).expect("write manifest");

    let server = Server::start_with_brokers(stopped.data_dir, &broker, 2, &CHECKPOINT_EVERY_SECOND);
    assert_unusable_reported(&server, manifest_boundary(&newest));
    assert_eq!(restored_boundary(&server), previous);
    board.wait_exact(&server, &acked, SETTLE).await;

    // Round 2: events keep coming through the shutdown, so the final checkpoint has a segment
    // of its own; truncate that segment.
    let continuous = ContinuousProducer::start(&broker, 800);
    wait_manifests(&checkpoints, 2, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stopped = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .expect("terminate");
    acked.extend(continuous.finish().await);
    let newest_boundary = final_boundary(&stopped);
    let segment = checkpoint_files(&checkpoints, "segment-")
        .last()
        .expect("a segment")
        .clone();
    let expected = newest_manifest_without(&checkpoints, &segment);
    assert!(
        expected < newest_boundary,
        "the newest checkpoint does not use the newest segment"
    );
    let length = std::fs::metadata(&segment).expect("segment").len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .expect("open segment");
    file.set_len(length / 2).expect("truncate segment");

    let server = Server::start_with_brokers(stopped.data_dir, &broker, 2, &CHECKPOINT_EVERY_SECOND);
    assert_unusable_reported(&server, newest_boundary);
    assert_eq!(restored_boundary(&server), expected);
    board.wait_exact(&server, &acked, SETTLE).await;
}

fn assert_unusable_reported(server: &Server, boundary: u64) {
    assert!(
        server.startup_log.iter().any(
            |l| l.contains("checkpoint unusable") && log_field(l, "boundary") == Some(boundary)
        ),
        "checkpoint {boundary} not reported unusable; startup log:\n{}",
        server.startup_log.join("\n")
    );
}

/// The boundary of the newest manifest whose chain does not include `segment` (read with the
/// product's own checkpoint reader, only to know which one the server should fall back to).
fn newest_manifest_without(dir: &std::path::Path, segment: &std::path::Path) -> u64 {
    use dataflow::checkpoint::file::{Kind, read_verified};
    use dataflow::checkpoint::writer::{Manifest, segment_path};
    checkpoint_files(dir, "manifest-")
        .iter()
        .rev()
        .filter_map(|path| read_verified::<Manifest>(path, Kind::Manifest).ok())
        .find(|m| {
            !m.segments
                .iter()
                .any(|s| segment_path(dir, s.seq) == segment)
        })
        .map(|m| m.boundary)
        .expect("an older checkpoint not using the newest segment")
}

/// SIGTERM: WebSocket clients get a 1001 close frame, the log reports a final checkpoint, and
/// the restarted server restores exactly that boundary: a client reconnecting to the same
/// address gets the exact values in its very first message, before any new event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_final_checkpoint_then_reconnecting_clients_get_exact_snapshot() {
    let broker = Broker::start();
    let producer = kafka_producer(&broker);
    // No regular checkpoint falls inside the test: what is restored is the final one.
    let slow = ["--checkpoint-interval", "3600s"];
    let server = Server::start_with_brokers(temp_data_dir("rec-sigterm"), &broker, 2, &slow);
    let board = Board::create(&server).await;
    let acked = produce_range(&producer, 0, 500).await;
    board.wait_exact(&server, &acked, SETTLE).await;

    let mut stream = Stream::connect(&server, &board.id).await;
    let first = stream
        .next(Duration::from_secs(10))
        .await
        .expect("snapshot");
    board.assert_ws_snapshot(&first, &acked);
    let closing = tokio::spawn(async move { stream.close_code(Duration::from_secs(30)).await });
    let address = server.address().to_string();
    let url = server.ws_url(&format!("/stream/{}", board.id));
    let stopped = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .expect("terminate");
    assert_eq!(
        closing.await.expect("close task"),
        Some(1001),
        "close code on shutdown"
    );
    let last = final_boundary(&stopped);

    let server = Server::start_with_brokers_at(stopped.data_dir, &broker, 2, &address, &slow);
    assert_eq!(restored_boundary(&server), last);
    let mut stream = Stream::connect_retrying(&url, Duration::from_secs(10)).await;
    let first = stream
        .next(Duration::from_secs(10))
        .await
        .expect("snapshot");
    board.assert_ws_snapshot(&first, &acked);
    board.wait_exact(&server, &acked, Duration::ZERO).await;
}

/// Kill -9 under a connected client; the client reconnects to the restarted server on the same
/// address and its first message is a snapshot of the restored values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_after_sigkill_gets_restored_snapshot() {
    let broker = Broker::start();
    let producer = kafka_producer(&broker);
    let server = Server::start_with_brokers(
        temp_data_dir("rec-reconnect"),
        &broker,
        2,
        &CHECKPOINT_EVERY_SECOND,
    );
    let board = Board::create(&server).await;
    let acked = produce_range(&producer, 0, 500).await;
    board.wait_exact(&server, &acked, SETTLE).await;
    wait_manifests(&server.checkpoint_dir(), 2, Duration::from_secs(30)).await;
    let mut stream = Stream::connect(&server, &board.id).await;
    let first = stream
        .next(Duration::from_secs(10))
        .await
        .expect("snapshot");
    board.assert_ws_snapshot(&first, &acked);

    let address = server.address().to_string();
    let url = server.ws_url(&format!("/stream/{}", board.id));
    let data_dir = server.kill9();
    assert_eq!(
        stream.next(Duration::from_secs(10)).await,
        None,
        "stream ends with the server"
    );
    let server =
        Server::start_with_brokers_at(data_dir, &broker, 2, &address, &CHECKPOINT_EVERY_SECOND);
    restored_boundary(&server);
    let mut stream = Stream::connect_retrying(&url, Duration::from_secs(10)).await;
    let first = stream
        .next(Duration::from_secs(10))
        .await
        .expect("snapshot");
    board.assert_ws_snapshot(&first, &acked);
}

// ---------------------------------------------------------------------------------------------
// Broker outage under HTTP ingest.
// ---------------------------------------------------------------------------------------------

const LANES: usize = 4;
const INGEST_TIMEOUT: Duration = Duration::from_secs(2);

/// One `POST /ingest` of an outage lane: its index (the value is `2^index`), when it was sent
/// and answered, and the status (0: no answer at all).
#[derive(Clone, Copy, Debug)]
struct Request {
    index: u32,
    sent: Instant,
    answered: Instant,
    status: u16,
}

/// A lane: one event per request, request `i` with the unique value `2^i`, so the sum a widget
/// shows names exactly which requests it reflects.
async fn lane(base: String, lane: usize, stop: Arc<AtomicBool>) -> Vec<Request> {
    let client = http();
    let mut requests = Vec::new();
    for index in 0..50u32 {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let event = json!({"metric_name": "outage", "value": 2f64.powi(index as i32),
                           "tags": {"lane": lane.to_string()}, "event_time": now_ms()});
        let sent = Instant::now();
        let status = match client
            .post(format!("{base}/ingest"))
            .json(&event)
            .send()
            .await
        {
            Ok(response) => response.status().as_u16(),
            Err(_) => 0,
        };
        requests.push(Request {
            index,
            sent,
            answered: Instant::now(),
            status,
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    requests
}

/// Bits set in an exactly represented integer sum of distinct powers of two.
fn bits(sum: f64) -> BTreeSet<u32> {
    assert!(
        sum >= 0.0 && sum.fract() == 0.0 && sum < 2f64.powi(53),
        "not a set: {sum}"
    );
    let sum = sum as u64;
    (0..64).filter(|b| sum & (1 << b) != 0).collect()
}

/// When the broker was unreachable, as the lanes saw it.
struct Outage {
    /// The broker confirmed `down`.
    down: Instant,
    /// Just before `up` was sent.
    up: Instant,
}

/// Runs [`LANES`] lanes against `server`, takes the broker down for 10 s meanwhile, and
/// returns each lane's requests once ingest works again after the outage.
async fn ingest_through_outage(
    server: &Server,
    broker: &mut Broker,
) -> (Vec<Vec<Request>>, Outage) {
    let stop = Arc::new(AtomicBool::new(false));
    let lanes: Vec<_> = (0..LANES)
        .map(|l| tokio::spawn(lane(server.base.clone(), l, stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    broker.down();
    let down = Instant::now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let up = Instant::now();
    broker.up();
    // Run on until every lane had a request acknowledged after the outage (the producer's
    // reconnect backoff may take a few seconds).
    let deadline = Instant::now() + SETTLE;
    let probe = json!({"metric_name": "probe", "value": 1.0});
    while post(server, "/ingest", &probe).await.0 != 202 {
        assert!(
            Instant::now() < deadline,
            "ingest never recovered after the broker came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let mut all = Vec::new();
    for handle in lanes {
        all.push(handle.await.expect("lane"));
    }
    (all, Outage { down, up })
}

/// Polls a lane's sum and count widgets until they reflect every acknowledged request, then
/// checks that they reflect nothing that was not sent, and nothing twice.
async fn assert_lane_settles(server: &Server, dashboard: &Value, l: usize, requests: &[Request]) {
    let acknowledged: BTreeSet<u32> = requests
        .iter()
        .filter(|r| r.status == 202)
        .map(|r| r.index)
        .collect();
    let sent: BTreeSet<u32> = requests.iter().map(|r| r.index).collect();
    let id = dashboard["dashboard_id"].as_str().expect("id");
    let value = |widget: usize| {
        let widget = dashboard["widgets"][widget]["widget_id"]
            .as_str()
            .expect("widget_id");
        let path = format!("/dashboards/{id}/widgets/{widget}/snapshot");
        async move { get(server, &path).await.1["value"].as_f64().unwrap_or(0.0) }
    };
    let deadline = Instant::now() + SETTLE;
    loop {
        let (sum, count) = (value(2 * l).await, value(2 * l + 1).await);
        let reflected = bits(sum);
        if acknowledged.is_subset(&reflected) && count == reflected.len() as f64 {
            assert!(
                reflected.is_subset(&sent),
                "lane {l}: reflects {reflected:?}, sent only {sent:?}"
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "lane {l}: acknowledged {acknowledged:?} but the widgets reflect {reflected:?} (count {count})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The broker goes down for 10 s under HTTP ingest: requests answer 503, never 202 for what
/// was not written, and within the ingest timeout; after it is back, every acknowledged event
/// is reflected, and nothing is reflected that was not sent, or twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_ingest_answers_503_and_loses_nothing_acknowledged() {
    let mut broker = Broker::start();
    let timeout = format!("{}s", INGEST_TIMEOUT.as_secs());
    let server = Server::start_with_brokers(
        temp_data_dir("rec-outage"),
        &broker,
        2,
        &["--checkpoint-interval", "1s", "--ingest-timeout", &timeout],
    );
    let widgets: Vec<Value> = (0..LANES)
        .flat_map(|lane| {
            let filter = json!({ "lane": lane.to_string() });
            [
                widget_json("outage", "sum", filter.clone()),
                widget_json("outage", "count", filter),
            ]
        })
        .collect();
    let dashboard = create_dashboard(&server, "outage", Value::Array(widgets)).await;
    let (all, outage) = ingest_through_outage(&server, &mut broker).await;

    let during = |r: &&Request| r.sent > outage.down && r.answered < outage.up;
    for (l, requests) in all.iter().enumerate() {
        let table = describe(requests, &outage);
        assert!(
            requests.iter().filter(during).all(|r| r.status == 503),
            "lane {l}: not refused while the broker was down:\n{table}"
        );
        assert!(
            requests.iter().all(|r| r.status == 202 || r.status == 503),
            "lane {l}: answers other than 202 and 503:\n{table}"
        );
        assert!(
            requests
                .iter()
                .any(|r| r.status == 202 && r.answered < outage.down),
            "lane {l}: nothing acknowledged before the outage:\n{table}"
        );
    }
    for (l, requests) in all.iter().enumerate() {
        assert_lane_settles(&server, &dashboard, l, requests).await;
    }
    // Never hangs: every answer within the ingest timeout (plus scheduling slack), so a lane
    // gets several answers during the 10 s outage.
    let limit = INGEST_TIMEOUT + Duration::from_millis(1000);
    for (l, requests) in all.iter().enumerate() {
        assert!(
            requests.iter().all(|r| r.answered - r.sent <= limit)
                && requests.iter().filter(during).count() >= 3,
            "lane {l}: answers slower than {limit:?}:\n{}",
            describe(requests, &outage)
        );
    }
}

/// A lane's requests, one a line, timed relative to the outage.
fn describe(requests: &[Request], outage: &Outage) -> String {
    let at = |t: Instant| match t.checked_duration_since(outage.down) {
        Some(after) => format!("down+{:.2}s", after.as_secs_f64()),
        None => format!("down-{:.2}s", (outage.down - t).as_secs_f64()),
    };
    let up = outage.up - outage.down;
    let lines: Vec<String> = requests
        .iter()
        .map(|r| {
            let took = (r.answered - r.sent).as_secs_f64();
            format!(
                "#{:<2} sent {} took {took:.2}s: {}",
                r.index,
                at(r.sent),
                r.status
            )
        })
        .collect();
    format!(
        "(broker down at down+0, up at down+{:.2}s)\n{}",
        up.as_secs_f64(),
        lines.join("\n")
    )
}

/// While the broker is down the dataflow keeps serving the last values, flagged stale after
/// 2 × the refresh interval; once it is back the source reconnects on its own and the values
/// are current again.
///
/// Needs the Kafka source to stop advancing its watermark when the broker is unreachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_turns_widgets_stale_until_it_is_back() {
    let mut broker = Broker::start();
    let producer = kafka_producer(&broker);
    let server = Server::start_with_brokers(
        temp_data_dir("rec-stale"),
        &broker,
        2,
        &CHECKPOINT_EVERY_SECOND,
    );
    let board = Board::create(&server).await;
    let mut acked = produce_range(&producer, 0, 100).await;
    board.wait_exact(&server, &acked, SETTLE).await;
    let count = board.widgets[0].0.clone();
    let path = format!("/dashboards/{}/widgets/{count}/snapshot", board.id);
    let (_, snapshot) = get(&server, &path).await;
    assert_eq!(snapshot["stale"], false, "{snapshot}");

    broker.down();
    let down = Instant::now();
    let stale = loop {
        let (status, snapshot) = get(&server, &path).await;
        assert_eq!(status, 200, "{snapshot}");
        if snapshot["stale"] == true {
            break snapshot;
        }
        assert!(
            down.elapsed() < Duration::from_secs(8),
            "not stale {:?} after the broker went down (refresh 1 s): {snapshot}",
            down.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        stale["value"].as_f64(),
        Some(acked.len() as f64),
        "last value kept: {stale}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    broker.up();

    // Back: no longer stale, and new events count again.
    acked.extend(produce_range(&producer, 100, 200).await);
    board.wait_exact(&server, &acked, SETTLE).await;
    let deadline = Instant::now() + SETTLE;
    loop {
        let (_, snapshot) = get(&server, &path).await;
        if snapshot["stale"] == false {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still stale after the broker came back: {snapshot}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
