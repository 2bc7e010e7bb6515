//! Scenarios `ws` (fan-out under load) and `idle` (memory per idle connection).
//!
//! `--dashboards` dashboards each have `--widgets` widgets over the benchmark's metric,
//! filtered on one tag group (`group = gNN`, 100 of the 10,000 series each): count, max, avg and
//! sum, 60 s to 1 h windows. `--clients` WebSocket clients (tokio-tungstenite) are spread evenly
//! over the dashboards, connected `--connect-concurrency` at a time.
//!
//! `ws`: while the producer sends `--rate` events per second through Kafka (each stamped with
//! its send time), every client takes each `update` it receives and records *receipt time minus
//! the update's `as_of`*. `as_of` is the closed time T (a pane end) the value is as of, and the
//! events a value as of T reflects are those with `event_time <= T`; since every event's
//! `event_time` is its send time, the newest of them was sent just before T (within one
//! record's interval: 1 ms at 100,000 events/s). So the figure is the latency from the send of
//! the newest event an update reflects to its receipt by the client. Events sent earlier in the
//! same one-second pane waited up to one pane longer: that is the pane width, not a delay.
//!
//! `idle`: no events; the server's RSS before and after the clients connected (and read their
//! snapshot), divided by the clients.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::Options;
use crate::kafka::{CpuClock, TOPIC, unique_metric, wait_closed};
use crate::producer::{LoadProducer, Pace, Stamp, Workload, now_ms, partitions};
use crate::server::{Target, control_client};
use crate::stats::{Figures, Histogram};

/// What the clients saw.
#[derive(Default)]
struct Seen {
    connected: AtomicU64,
    failed: AtomicU64,
    snapshots: AtomicU64,
    updates: AtomicU64,
    closed: AtomicU64,
}

/// Creates the dashboards; returns their ids and one widget to wait on.
async fn dashboards(
    target: &Target,
    http: &reqwest::Client,
    metric: &str,
    options: &Options,
) -> (Vec<String>, String) {
    let kinds = [
        ("count", 60),
        ("max", 60),
        ("avg", 300),
        ("sum", 3600),
        ("min", 60),
        ("count", 3600),
    ];
    let mut ids = Vec::new();
    let mut first = None;
    for d in 0..options.dashboards {
        let widgets = (0..options.widgets)
            .map(|w| {
                let (aggregation, window) = kinds[w % kinds.len()];
                json!({"metric_name": metric, "aggregation": aggregation, "window_seconds": window,
                       "filter": {"group": format!("g{:02}", d % 100)}})
            })
            .collect();
        let (id, widgets) = target
            .create_dashboard(http, &format!("load {d}"), widgets)
            .await;
        first.get_or_insert_with(|| (id.clone(), widgets[0].clone()));
        ids.push(id);
    }
    let (dashboard, widget) = first.expect("at least one dashboard");
    wait_closed(target, http, &dashboard, &widget).await;
    (ids, dashboard)
}

/// Connects the clients; each records update latencies while `measuring` is set, until `stop`.
async fn connect(
    target: &Target,
    ids: &[String],
    options: &Options,
    latency: Arc<Histogram>,
    measuring: Arc<AtomicBool>,
    stop: watch::Receiver<bool>,
) -> (Arc<Seen>, Vec<tokio::task::JoinHandle<()>>) {
    let seen = Arc::new(Seen::default());
    let gate = Arc::new(Semaphore::new(options.connect_concurrency));
    let mut tasks = Vec::with_capacity(options.clients);
    for c in 0..options.clients {
        let url = target.ws_url(&format!("/stream/{}", ids[c % ids.len()]));
        let (seen, gate, latency, measuring, mut stop) = (
            seen.clone(),
            gate.clone(),
            latency.clone(),
            measuring.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            // Held until the snapshot arrived: the gate bounds handshakes in progress.
            let mut permit = Some(gate.acquire_owned().await.expect("gate"));
            let socket = match tokio_tungstenite::connect_async_with_config(
                &url,
                Some(client_config()),
                true,
            )
            .await
            {
                Ok((socket, _)) => socket,
                Err(_) => {
                    seen.failed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            };
            let (mut write, mut read) = socket.split();
            let mut first = true;
            loop {
                let message = tokio::select! {
                    message = read.next() => message,
                    _ = stop.wait_for(|stop| *stop) => break,
                };
                let Some(Ok(message)) = message else {
                    seen.closed.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                let Message::Text(text) = message else {
                    continue;
                };
                let received = now_ms();
                if first {
                    // Connected once the first message (the snapshot) arrived.
                    first = false;
                    seen.connected.fetch_add(1, Ordering::Relaxed);
                    permit.take();
                }
                if text.starts_with(r#"{"type":"update""#) {
                    if measuring.load(Ordering::Relaxed) {
                        seen.updates.fetch_add(1, Ordering::Relaxed);
                        if let Some(as_of) = as_of(&text) {
                            latency.record(received.saturating_sub(as_of));
                        }
                    }
                } else if text.starts_with(r#"{"type":"snapshot""#) {
                    seen.snapshots.fetch_add(1, Ordering::Relaxed);
                }
            }
            let _ = write.send(Message::Close(None)).await;
        }));
    }
    // Wait for every client to have its snapshot (or to have failed).
    let deadline = Instant::now() + Duration::from_secs(300);
    while seen.connected.load(Ordering::Relaxed) + seen.failed.load(Ordering::Relaxed)
        < options.clients as u64
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (seen, tasks)
}

/// A load client's WebSocket settings: a browser-sized 4 KiB read buffer. tungstenite's default
/// (128 KiB) is zeroed on every read, which took 45 % of the load generator's time (`perf`) and
/// delayed its clients' receipt of updates the server had already sent.
fn client_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(4 * 1024)
}

/// The `as_of` of an update message, read without parsing the whole message.
fn as_of(text: &str) -> Option<u64> {
    let at = text.find(r#""as_of":"#)? + r#""as_of":"#.len();
    let digits: &str = &text[at..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// Scenario `ws`.
pub async fn run(options: &Options) -> Figures {
    let target = Target::start(&options.target());
    let http = control_client();
    let metric = unique_metric("ws");
    let (ids, _) = dashboards(&target, &http, &metric, options).await;
    let partitions = partitions(&target.brokers, TOPIC);
    let workload = Workload::new(&metric, options.series, 100, options.events_per_record);
    let producer = LoadProducer::start(
        &target.brokers,
        TOPIC,
        partitions,
        workload,
        Stamp::Now,
        Pace {
            rate: Some(options.rate.unwrap_or(100_000.0)),
            limit: None,
        },
    );
    let rss_before = target.rss_bytes();
    let latency = Arc::new(Histogram::new());
    let measuring = Arc::new(AtomicBool::new(false));
    let (stop, stopped) = watch::channel(false);
    let connecting = Instant::now();
    let (seen, tasks) = connect(
        &target,
        &ids,
        options,
        latency.clone(),
        measuring.clone(),
        stopped,
    )
    .await;
    let connect_s = connecting.elapsed().as_secs_f64();
    tokio::time::sleep(options.warmup()).await;
    let cpu = CpuClock::start(&target);
    let (produced1, started) = (
        producer.state.produced.load(Ordering::Relaxed),
        Instant::now(),
    );
    let snapshots1 = seen.snapshots.load(Ordering::Relaxed);
    measuring.store(true, Ordering::SeqCst);
    tokio::time::sleep(options.duration() / 2).await;
    let rss_loaded = target.rss_bytes();
    tokio::time::sleep(options.duration() / 2).await;
    measuring.store(false, Ordering::SeqCst);
    let seconds = started.elapsed().as_secs_f64();
    let produced = producer.state.produced.load(Ordering::Relaxed) - produced1;
    let cpu = cpu.stop(&target);
    let _ = stop.send(true);
    for task in tasks {
        let _ = task.await;
    }
    producer.stop();
    let scrape = target.metrics(&http).await;

    let mut figures = Figures::new();
    let clients = seen.connected.load(Ordering::SeqCst) as f64;
    figures.insert("clients_connected", clients);
    figures.insert("clients_failed", seen.failed.load(Ordering::SeqCst) as f64);
    figures.insert("clients_dropped", seen.closed.load(Ordering::SeqCst) as f64);
    figures.insert("connect_s", connect_s);
    figures.insert("events_per_s", produced as f64 / seconds);
    figures.insert(
        "updates_per_s_received",
        seen.updates.load(Ordering::SeqCst) as f64 / seconds,
    );
    figures.insert(
        "resync_snapshots",
        (seen.snapshots.load(Ordering::SeqCst) - snapshots1) as f64,
    );
    for (name, q) in [
        ("latency_ms_p50", 0.5),
        ("latency_ms_p95", 0.95),
        ("latency_ms_p99", 0.99),
        ("latency_ms_max", 1.0),
    ] {
        figures.insert(name, latency.quantile(q).map_or(f64::NAN, |v| v as f64));
    }
    if let (Some(before), Some(loaded)) = (rss_before, rss_loaded) {
        figures.insert("rss_mb_loaded", loaded as f64 / 1e6);
        figures.insert(
            "rss_bytes_per_client_loaded",
            loaded.saturating_sub(before) as f64 / clients.max(1.0),
        );
    }
    figures.insert(
        "records_lost",
        scrape.sum("flowboard_kafka_records_lost_total"),
    );
    // The server's own view (whole run, warm-up included): closed time → values at the hub,
    // and closed time → update handed to a client's socket.
    let histograms = [
        (
            "flowboard_aggregation_latency_seconds",
            [
                "server_aggregation_ms_p50",
                "server_aggregation_ms_p95",
                "server_aggregation_ms_p99",
            ],
        ),
        (
            "flowboard_websocket_push_latency_seconds",
            [
                "server_push_ms_p50",
                "server_push_ms_p95",
                "server_push_ms_p99",
            ],
        ),
    ];
    for (metric, names) in histograms {
        for (name, q) in names.into_iter().zip([0.5, 0.95, 0.99]) {
            figures.insert(name, scrape.histogram_quantile(metric, q) * 1_000.0);
        }
    }
    cpu.record(&mut figures);
    figures
}

/// Scenario `idle`.
pub async fn run_idle(options: &Options) -> Figures {
    let target = Target::start(&options.target());
    let http = control_client();
    let metric = unique_metric("idle");
    let (ids, _) = dashboards(&target, &http, &metric, options).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = target.rss_bytes();
    let latency = Arc::new(Histogram::new());
    let measuring = Arc::new(AtomicBool::new(false));
    let (stop, stopped) = watch::channel(false);
    let (seen, tasks) = connect(&target, &ids, options, latency, measuring, stopped).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = target.rss_bytes();
    let scrape = target.metrics(&http).await;
    let _ = stop.send(true);
    for task in tasks {
        let _ = task.await;
    }
    let mut figures = Figures::new();
    let clients = seen.connected.load(Ordering::SeqCst) as f64;
    figures.insert("clients_connected", clients);
    figures.insert("clients_failed", seen.failed.load(Ordering::SeqCst) as f64);
    figures.insert(
        "server_connections_gauge",
        scrape.get("flowboard_websocket_connections"),
    );
    if let (Some(before), Some(after)) = (before, after) {
        figures.insert("rss_mb_before", before as f64 / 1e6);
        figures.insert("rss_mb_after", after as f64 / 1e6);
        figures.insert(
            "rss_bytes_per_idle_client",
            after.saturating_sub(before) as f64 / clients.max(1.0),
        );
    }
    figures
}
