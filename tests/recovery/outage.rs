//! A broker outage under HTTP ingest: every request answers `503` within the ingest timeout
//! while the broker is down, nothing acknowledged is lost, and widgets turn stale until it is
//! back.
//!
//! Each lane sends one event per request, request `i` with the unique value `2^i`: the sum a
//! widget shows names exactly which requests it reflects, and its count tells whether any was
//! counted twice.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::SETTLE;
use crate::checkpoints::CHECKPOINT_EVERY_SECOND;
use crate::common::*;
use crate::stream::*;

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
    // Run on until ingest works again (the producer's reconnect backoff may take a few
    // seconds), and a little longer so the lanes get requests acknowledged after the outage.
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
/// 2 × the refresh interval (on the snapshot endpoint and to WebSocket clients); once it is
/// back the source reconnects on its own and the values are current again.
///
/// Needs the Kafka source to hold its watermark while the broker is unreachable (it stays
/// current, and the flag never comes, without that).
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
    let mut stream = Stream::connect(&server, &board.id).await;
    let is_stale = |flag: bool| {
        let count = count.clone();
        move |m: &Value| match m["type"].as_str() {
            Some("update") => m["widget_id"] == count.as_str() && m["stale"] == flag,
            Some("snapshot") => m["widgets"].as_array().is_some_and(|ws| {
                ws.iter()
                    .any(|w| w["widget_id"] == count.as_str() && w["stale"] == flag)
            }),
            _ => false,
        }
    };
    stream
        .wait_for(SETTLE, "a current snapshot", is_stale(false))
        .await;

    // 2 × refresh = 2 s, plus a second for the source to notice and the hub's tick.
    let limit = Duration::from_secs(5);
    broker.down();
    let down = Instant::now();
    let stale = loop {
        let (status, snapshot) = get(&server, &path).await;
        assert_eq!(status, 200, "{snapshot}");
        if snapshot["stale"] == true {
            break snapshot;
        }
        assert!(
            down.elapsed() < limit,
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
    stream
        .wait_for(limit, "stale: true pushed", is_stale(true))
        .await;
    broker.up();

    // Back: no longer stale, and new events count again.
    stream
        .wait_for(SETTLE, "stale: false pushed", is_stale(false))
        .await;
    acked.extend(produce_range(&producer, 100, 200).await);
    board.wait_exact(&server, &acked, SETTLE).await;
    let (_, snapshot) = get(&server, &path).await;
    assert_eq!(snapshot["stale"], false, "{snapshot}");
}
