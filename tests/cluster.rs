//! Scale-out with real processes on loopback: a timely cluster of two aggregation processes
//! with two workers each, two frontends (`--frontend`), one PostgreSQL dashboard store and one
//! Kafka broker, checked against a single-process server reading the same topic and against
//! the ground truth. Then the failures: a frontend dies (its client moves to the other and gets
//! a snapshot at once), an aggregation process dies (its peer exits too, frontends keep their
//! clients and mark values stale, the restarted cluster restores exactly).

mod common;
#[path = "../src/store/test_postgres.rs"]
mod test_postgres;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::{Value, json};
use test_postgres::TestDatabase;

const WAIT: Duration = Duration::from_secs(30);

/// A free loopback port for timely's networking.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Starts both aggregation processes (each waits for the other before it serves).
fn start_cluster(data_dir: &Path, hosts: &Path, broker: &str, database: &str) -> Vec<Server> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|process| {
                scope.spawn(move || {
                    let process = process.to_string();
                    Server::launch(
                        data_dir.to_path_buf(),
                        &[
                            "--http",
                            "127.0.0.1:0",
                            "--workers",
                            "2",
                            "--kafka-brokers",
                            broker,
                            "--database-url",
                            database,
                            "--processes",
                            "2",
                            "--process",
                            &process,
                            "--hosts",
                            hosts.to_str().expect("path"),
                            "--checkpoint-interval",
                            "1s",
                        ],
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("process started"))
            .collect()
    })
}

fn frontend(name: &str, broker: &str, database: &str) -> Server {
    Server::launch(
        temp_data_dir(name),
        &[
            "--frontend",
            "--http",
            "127.0.0.1:0",
            "--kafka-brokers",
            broker,
            "--database-url",
            database,
        ],
    )
}

/// Produces `events` (value i/8, one of ten hosts) spread over the topic's partitions.
fn produce_events(broker: &str, from: u64, to: u64) -> Vec<(String, f64)> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .create()
        .expect("producer");
    let mut sent = Vec::new();
    let now = now_ms();
    for i in from..to {
        let host = format!("h{}", i % 10);
        let value = i as f64 / 8.0;
        let payload = json!({"metric_name": "load", "value": value, "tags": {"host": host}, "event_time": now}).to_string();
        let key = format!("load-{host}");
        loop {
            match producer.send(BaseRecord::to("metrics").key(&key).payload(&payload)) {
                Ok(()) => break,
                Err(_) => producer.poll(Duration::from_millis(10)),
            }
        }
        sent.push((host, value));
    }
    producer
        .flush(Duration::from_secs(10))
        .expect("acknowledged");
    sent
}

/// What every widget must show for `sent`: count, sum, min, max, and the sum for host h3.
fn truth(sent: &[(String, f64)]) -> Vec<Option<f64>> {
    let values: Vec<f64> = sent.iter().map(|(_, v)| *v).collect();
    let extreme = |pick: fn(f64, f64) -> f64| values.iter().copied().reduce(pick);
    vec![
        Some(values.len() as f64),
        Some(values.iter().sum()),
        extreme(f64::min),
        extreme(f64::max),
        Some(sent.iter().filter(|(h, _)| h == "h3").map(|(_, v)| v).sum()),
    ]
}

/// Every widget's value in a snapshot message, in dashboard order.
fn snapshot_values(snapshot: &Value) -> Vec<Value> {
    snapshot["widgets"]
        .as_array()
        .map(|w| w.iter().map(|w| w["value"].clone()).collect())
        .unwrap_or_default()
}

/// Polls `server`'s snapshot endpoint until every widget shows `expected`.
async fn wait_values(
    server: &Server,
    dashboard: &str,
    widgets: &[String],
    expected: &[Option<f64>],
) {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut got = Vec::new();
        for widget in widgets {
            let (_, snapshot) = get(
                server,
                &format!("/dashboards/{dashboard}/widgets/{widget}/snapshot"),
            )
            .await;
            got.push(snapshot["value"].as_f64());
        }
        if got == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} shows {got:?}, expected {expected:?}",
            server.base
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_aggregation_processes_two_frontends_and_their_failures() {
    let database = TestDatabase::create().await;
    let broker = Broker::start();
    let shared = temp_data_dir("cluster");
    let hosts = shared.join("hosts");
    std::fs::write(
        &hosts,
        format!("127.0.0.1:{}\n127.0.0.1:{}\n", free_port(), free_port()),
    )
    .expect("hosts");

    let mut cluster = start_cluster(&shared, &hosts, &broker.bootstrap, &database.url);
    let front_1 = frontend("cluster-front-1", &broker.bootstrap, &database.url);
    let front_2 = frontend("cluster-front-2", &broker.bootstrap, &database.url);
    // The same topic, aggregated by one process on its own.
    let single = Server::launch(
        temp_data_dir("cluster-single"),
        &[
            "--http",
            "127.0.0.1:0",
            "--workers",
            "2",
            "--kafka-brokers",
            &broker.bootstrap,
            "--database-url",
            &database.url,
        ],
    );

    // A dashboard made through a frontend reaches the cluster's dataflow through the store.
    let widget = |aggregation: &str, filter: Value| json!({"metric_name": "load", "aggregation": aggregation, "window_seconds": 3600, "filter": filter});
    let dashboard = create_dashboard(
        &front_1,
        "cluster",
        json!([
            widget("count", json!({})),
            widget("sum", json!({})),
            widget("min", json!({})),
            widget("max", json!({})),
            widget("sum", json!({"host": "h3"}))
        ]),
    )
    .await;
    let id = dashboard["dashboard_id"].as_str().expect("id").to_string();
    let widgets: Vec<String> = dashboard["widgets"]
        .as_array()
        .expect("widgets")
        .iter()
        .map(|w| w["widget_id"].as_str().expect("id").to_string())
        .collect();
    let mut client_1 =
        Stream::connect_retrying(&front_1.ws_url(&format!("/stream/{id}")), WAIT).await;
    let mut client_2 =
        Stream::connect_retrying(&front_2.ws_url(&format!("/stream/{id}")), WAIT).await;
    // Wait until the cluster computes the new widgets (a zero count) before producing.
    wait_values(&front_2, &id, &widgets, &truth(&[])).await;

    let mut sent = produce_events(&broker.bootstrap, 0, 400);
    let expected = truth(&sent);
    for server in [&front_1, &front_2, &single] {
        wait_values(server, &id, &widgets, &expected).await;
    }
    // Both frontends' clients see the same values as the single process.
    for client in [&mut client_1, &mut client_2] {
        let count = widgets[0].clone();
        client
            .wait_for(WAIT, "the full count", |m| {
                value_in(m, &count) == Some(json!(expected[0]))
            })
            .await;
    }

    // A frontend dies: its client reconnects to the other and has the values at once.
    let _ = front_1.kill9();
    drop(client_1);
    let mut moved = Stream::connect_retrying(&front_2.ws_url(&format!("/stream/{id}")), WAIT).await;
    let first = moved.next(WAIT).await.expect("snapshot");
    assert_eq!(first["type"], "snapshot", "{first}");
    let want: Vec<Value> = expected.iter().map(|v| json!(v)).collect();
    assert_eq!(snapshot_values(&first), want, "{first}");

    // An aggregation process dies: its peer exits too (a timely cluster cannot lose a process).
    let process_1 = cluster.pop().expect("process 1");
    let _ = process_1.kill9();
    let mut process_0 = cluster.pop().expect("process 0");
    let status = process_0
        .wait_exit(WAIT)
        .expect("process 0 exits when its peer is gone");
    assert_eq!(status.code(), Some(70), "{:#?}", process_0.drain_log());
    // Frontends keep their clients, and mark the values stale.
    moved
        .wait_for(WAIT, "values turn stale", |m| {
            m["type"] == "update" && m["stale"] == true
        })
        .await;

    // Events produced while the cluster is down count once it is back, restored from its
    // checkpoints and replayed from their offsets.
    sent.extend(produce_events(&broker.bootstrap, 400, 500));
    let expected = truth(&sent);
    let cluster = start_cluster(&shared, &hosts, &broker.bootstrap, &database.url);
    for process in &cluster {
        assert!(
            process
                .startup_log
                .iter()
                .any(|l| l.contains("restoring from checkpoint")),
            "{:#?}",
            process.startup_log
        );
    }
    wait_values(&front_2, &id, &widgets, &expected).await;
    wait_values(&single, &id, &widgets, &expected).await;
    moved
        .wait_for(WAIT, "fresh values", |m| {
            value_in(m, &widgets[0]) == Some(json!(expected[0])) && m["stale"] == false
        })
        .await;
    drop(cluster);
    database.drop_database().await;
}
