//! A client that never reads, beside one that does, while 100,000 widget updates flow to their
//! dashboard: the server's memory stays within a bound below what holding the updates for the
//! slow client would take, and the other client keeps receiving every value within 1 s of the
//! time it is as of.
//!
//! 5,000 widgets show the latest value of one metric, which changes every 2 s: 2,500 updates a
//! second. (Values change more slowly than the widgets' 1 s refresh interval, so the refresh
//! throttle never holds one back: each is sent as soon as it is computed, and 1 s measures the
//! path from the dataflow to the client.) That is more than a dashboard's channel holds (256
//! messages), so clients also fall behind within each burst and get the values as a snapshot,
//! the coalesced form of the updates they missed; the reading client is timed on both.
//!
//! The slow client is kept connected throughout (long send and idle timeouts), so the bound
//! holds by construction (its queue is a position in the dashboard's shared channel and a
//! bounded write buffer), not because it was closed. `src/ws/tests_limits.rs` checks that, with
//! a short send timeout, it is closed with 1013.
//!
//! A second test opens 500 idle streams (each reads its snapshot, then nothing) and checks what
//! each costs the server's resident memory: at most [`IDLE_STREAM_BOUND`].

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Widgets on the dashboard: each changes every 2 s.
const WIDGETS: usize = 5_000;
/// Updates that must flow to the dashboard while the server is watched.
const UPDATES: f64 = 100_000.0;
/// Most the server's resident memory may grow while they flow. Holding them for the slow
/// client would take more than 12 MiB (100,000 messages of over 120 bytes each).
const RSS_GROWTH_BOUND: u64 = 8 << 20;

/// Idle streams opened to measure what one costs the server.
const IDLE_STREAMS: u64 = 500;
/// Most the server's resident memory may grow per idle stream. With tungstenite's default
/// buffers (a 128 KiB read buffer, zero-filled at the first read) it was ~139 KB.
const IDLE_STREAM_BOUND: u64 = 48 << 10;

/// What the client that reads saw.
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    /// Update messages.
    updates: u64,
    /// Widget values, in updates and snapshots.
    values: u64,
    /// Bytes of text.
    bytes: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_does_not_grow_the_server_or_slow_the_others() {
    let widgets = WIDGETS.to_string();
    #[rustfmt::skip]
    let server = Server::start("slow-client", &[
        "--max-widgets-per-dashboard", &widgets,
        "--ws-send-timeout", "10m", "--ws-idle-timeout", "10m",
    ]);
    // Every widget shows the latest value of the same metric, which counts up every 2 s. Short
    // windows, so the dataflow's window state is full before the baseline is taken and does
    // not grow with the test's length.
    let specs: Vec<Value> = (0..WIDGETS)
        .map(|_| json!({"metric_name": "load", "aggregation": "last", "window_seconds": 10}))
        .collect();
    let dashboard = create_dashboard(&server, "busy", json!(specs)).await;
    let d = dashboard["dashboard_id"].as_str().expect("id").to_string();

    // Events every 100 ms until told to stop.
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let producer = {
        let base = server.base.clone();
        tokio::spawn(async move {
            let client = http();
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            let started = Instant::now();
            while !*stopped.borrow_and_update() {
                tick.tick().await;
                let counter = started.elapsed().as_secs() / 2;
                let body =
                    json!([{"metric_name": "load", "value": counter, "event_time": now_ms()}]);
                let _ = client
                    .post(format!("{base}/ingest"))
                    .json(&body)
                    .send()
                    .await;
            }
        })
    };

    // The slow client: connects, then never reads a byte.
    let url = server.ws_url(&format!("/stream/{d}"));
    let (_slow, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("slow client connects");
    // The client that reads: everything, timing each value against its as-of time.
    let (mut normal, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("normal client connects");
    let (report, reports) = tokio::sync::watch::channel(Seen::default());
    // Largest receive time minus `as_of` of an update or snapshot, ms (reset at the baseline).
    let worst_ms = Arc::new(AtomicU64::new(0));
    let worst = worst_ms.clone();
    let reader = tokio::spawn(async move {
        let mut seen = Seen::default();
        while let Some(Ok(frame)) = normal.next().await {
            let Message::Text(text) = frame else { continue };
            // Scanned, not parsed: the reader must not be the slow one on a busy machine.
            let values = if text.starts_with(r#"{"type":"update""#) {
                1
            } else if text.starts_with(r#"{"type":"snapshot""#) {
                text.matches(r#""widget_id""#).count() as u64
            } else {
                continue;
            };
            seen.bytes += text.len() as u64;
            seen.updates += u64::from(text.starts_with(r#"{"type":"update""#));
            seen.values += values;
            // The first `as_of` of an update or a snapshot is the message's.
            if let Some(as_of) = as_of(&text) {
                worst.fetch_max(now_ms().saturating_sub(as_of), Ordering::Relaxed);
            }
            report.send_replace(seen);
        }
    });

    // Warm up (the first snapshots, the windows filling), then take the baseline.
    let broadcast = "flowboard_widget_updates_broadcast_total";
    let warm = Instant::now() + Duration::from_secs(60);
    while metric(&server, broadcast).await < 6.0 * WIDGETS as f64 {
        assert!(Instant::now() < warm, "updates do not flow");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The baseline is the settled level: the highest over 10 s (a checkpoint included), probed
    // as during the measurement.
    let mut baseline = 0;
    let settled = Instant::now() + Duration::from_secs(10);
    while Instant::now() < settled {
        baseline = baseline.max(server.rss_bytes());
        metric(&server, broadcast).await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let before = *reports.borrow();
    worst_ms.store(0, Ordering::Relaxed);
    let started = metric(&server, broadcast).await;
    let mut peak = baseline;
    let deadline = Instant::now() + Duration::from_secs(300);
    while metric(&server, broadcast).await < started + UPDATES {
        assert!(Instant::now() < deadline, "100,000 updates did not flow");
        peak = peak.max(server.rss_bytes());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    peak = peak.max(server.rss_bytes());
    let after = *reports.borrow();
    let worst_ms = worst_ms.load(Ordering::Relaxed);
    let connections = metric(&server, "flowboard_websocket_connections").await;
    let _ = stop.send(true);
    let _ = producer.await;
    reader.abort();

    let values = after.values - before.values;
    let summary = format!(
        "RSS {} MiB before, {} MiB at the peak; the client that reads got {values} values \
         ({} in updates, the rest in snapshots), {} MiB, at worst {} ms after their as-of time",
        baseline >> 20,
        peak >> 20,
        after.updates - before.updates,
        (after.bytes - before.bytes) >> 20,
        worst_ms,
    );
    eprintln!("{summary}");
    assert_eq!(connections, 2.0, "both clients stayed connected: {summary}");
    assert!(
        peak <= baseline + RSS_GROWTH_BOUND,
        "memory grew: {summary}"
    );
    assert!(worst_ms <= 1_000, "values came late: {summary}");
    assert!(
        values as f64 >= 0.9 * UPDATES,
        "values went missing: {summary}"
    );
}

/// The number after the first `"as_of":` of a message.
fn as_of(text: &str) -> Option<u64> {
    let at = text.find(r#""as_of":"#)? + r#""as_of":"#.len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_stream_costs_the_server_a_few_kib() {
    let server = Server::start("idle-streams", &[]);
    let specs = json!([{"metric_name": "load", "aggregation": "count", "window_seconds": 60}]);
    let dashboard = create_dashboard(&server, "idle", specs).await;
    let url = server.ws_url(&format!(
        "/stream/{}",
        dashboard["dashboard_id"].as_str().expect("id")
    ));
    // The clients' own buffers are in this process, not the server's; small ones all the same.
    let config = WebSocketConfig::default().read_buffer_size(4 << 10);
    let open = || async {
        let (mut client, _) =
            tokio_tungstenite::connect_async_with_config(&url, Some(config), false)
                .await
                .expect("client connects");
        match tokio::time::timeout(Duration::from_secs(10), client.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => assert!(text.starts_with(r#"{"type":"snapshot""#)),
            other => panic!("expected the snapshot, got {other:?}"),
        }
        client
    };

    // A few streams first, so that what the first one sets up is in the baseline.
    let mut clients = Vec::new();
    for _ in 0..20 {
        clients.push(open().await);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = server.rss_bytes();
    for _ in 0..IDLE_STREAMS {
        clients.push(open().await);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = server.rss_bytes();
    let connections = metric(&server, "flowboard_websocket_connections").await;

    let per_stream = after.saturating_sub(before) / IDLE_STREAMS;
    let summary = format!(
        "RSS {} KiB before, {} KiB after {IDLE_STREAMS} more idle streams: {per_stream} bytes \
         each",
        before >> 10,
        after >> 10,
    );
    eprintln!("{summary}");
    assert_eq!(connections, (IDLE_STREAMS + 20) as f64, "{summary}");
    assert!(per_stream <= IDLE_STREAM_BOUND, "{summary}");
}
