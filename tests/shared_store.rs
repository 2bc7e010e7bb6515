//! Several servers sharing one PostgreSQL dashboard store (`--database-url`): a change made
//! through any of them reaches the others' REST answers, WebSocket clients and dataflows (also
//! from a `--frontend` without a dataflow of its own), and reaches its own clients once.
//!
//! The PostgreSQL is the one `FLOWBOARD_TEST_DATABASE_URL` names (`scripts/test` starts one),
//! or one this test process starts itself (see `src/store/test_postgres.rs`).

mod common;
#[path = "../src/store/test_postgres.rs"]
mod test_postgres;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use test_postgres::TestDatabase;

const WAIT: Duration = Duration::from_secs(20);

fn widget(metric: &str, aggregation: &str) -> Value {
    json!({"metric_name": metric, "aggregation": aggregation, "window_seconds": 60,
           "refresh_interval_seconds": 1})
}

fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {value}"))
}

/// Connects to `server`'s stream of `dashboard` once its hub knows the dashboard (until then
/// the upgrade is refused with a 404); returns the stream after its first snapshot.
async fn stream_once_known(server: &Server, dashboard: &str) -> Stream {
    let url = server.ws_url(&format!("/stream/{dashboard}"));
    let mut stream = Stream::connect_retrying(&url, WAIT).await;
    let first = stream.next(WAIT).await.expect("a first message");
    assert_eq!(first["type"], "snapshot", "{first}");
    stream
}

/// Every message `stream` sends within `period`.
async fn messages_for(stream: &mut Stream, period: Duration) -> Vec<Value> {
    let deadline = Instant::now() + period;
    let mut messages = Vec::new();
    while let Some(message) = stream
        .next(deadline.saturating_duration_since(Instant::now()))
        .await
    {
        messages.push(message);
    }
    messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_through_one_server_reach_the_others_clients_and_dataflow() {
    let database = TestDatabase::create().await;
    let a = Server::start("shared-a", &["--database-url", &database.url]);
    let b = Server::start("shared-b", &["--database-url", &database.url]);
    assert!(
        a.startup_log
            .iter()
            .any(|l| l.contains("dashboard store at postgres://")),
        "the log names the shared store: {:#?}",
        a.startup_log
    );

    // Created through A: B serves it over REST, and its hub learns it for B's clients.
    let dashboard = create_dashboard(&a, "shared", json!([widget("orders", "count")])).await;
    let id = str_of(&dashboard, "dashboard_id").to_string();
    let (status, listed) = get(&b, "/dashboards").await;
    assert_eq!(status, 200, "{listed}");
    assert!(
        listed
            .as_array()
            .is_some_and(|all| all.iter().any(|d| d["dashboard_id"] == id.as_str())),
        "{listed}"
    );
    let mut on_b = stream_once_known(&b, &id).await;
    let mut on_a = stream_once_known(&a, &id).await;

    // A widget added through A: B's clients get the new definition...
    let (status, patched) = patch(
        &a,
        &format!("/dashboards/{id}/widgets"),
        &json!({"add": [widget("orders", "sum")]}),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    let sum = str_of(&patched["widgets"][1], "widget_id").to_string();
    let definition = on_b
        .wait_for(WAIT, "B's clients get the new definition", |m| {
            m["type"] == "dashboard"
        })
        .await;
    assert_eq!(
        definition["dashboard"]["widgets"][1]["widget_id"],
        sum.as_str()
    );

    // ... and B's dataflow computes the widget: events ingested into B count in it.
    ingest(
        &b,
        vec![
            event("orders", 5.0, &[("shop", "x")]),
            event("orders", 7.0, &[("shop", "y")]),
        ],
    )
    .await;
    on_b.wait_for(WAIT, "the sum of orders on B = 12", |m| {
        value_in(m, &sum) == Some(json!(12.0))
    })
    .await;

    // A's own clients got the change once: from A's API, not again from A's store watcher
    // (three polls of it).
    let seen_on_a = messages_for(&mut on_a, Duration::from_millis(3_500)).await;
    let definitions = seen_on_a
        .iter()
        .filter(|m| m["type"] == "dashboard")
        .count();
    assert_eq!(
        definitions, 1,
        "one `dashboard` message on A: {seen_on_a:#?}"
    );

    // The other way round: renamed through B, A's clients see it.
    let (status, renamed) =
        patch(&b, &format!("/dashboards/{id}"), &json!({"name": "orders"})).await;
    assert_eq!(status, 200, "{renamed}");
    on_a.wait_for(WAIT, "A's clients see B's rename", |m| {
        m["type"] == "dashboard" && m["dashboard"]["name"] == "orders"
    })
    .await;

    // Deleted through A: B's clients are told and B forgets it.
    let (status, _) = delete(&a, &format!("/dashboards/{id}")).await;
    assert_eq!(status, 204);
    on_b.wait_for(WAIT, "B's clients are told of the deletion", |m| {
        m["type"] == "deleted"
    })
    .await;
    let (status, _) = get(&b, &format!("/dashboards/{id}")).await;
    assert_eq!(status, 404);

    drop((a, b));
    database.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn widgets_changed_through_a_frontend_reach_the_aggregating_dataflow() {
    // The scale-out shape: an aggregating process publishing its values, and a frontend
    // (no dataflow of its own) serving REST and WebSockets from the values topic.
    let database = TestDatabase::create().await;
    let broker = Broker::start();
    let shared = ["--database-url", database.url.as_str()];
    let aggregator = Server::start_with_brokers(
        temp_data_dir("shared-aggregator"),
        &broker,
        2,
        &[&shared[..], &["--publish-values"]].concat(),
    );
    let frontend = Server::start_with_brokers(
        temp_data_dir("shared-frontend"),
        &broker,
        1,
        &[&shared[..], &["--frontend"]].concat(),
    );

    // A dashboard created, then a widget added, through the frontend: only the aggregator's
    // store watcher can hand them to its dataflow.
    let dashboard =
        create_dashboard(&frontend, "via frontend", json!([widget("pay", "sum")])).await;
    let id = str_of(&dashboard, "dashboard_id").to_string();
    let sum = str_of(&dashboard["widgets"][0], "widget_id").to_string();
    let (status, patched) = patch(
        &frontend,
        &format!("/dashboards/{id}/widgets"),
        &json!({"add": [widget("pay", "max")]}),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    let max = str_of(&patched["widgets"][1], "widget_id").to_string();
    let mut stream = stream_once_known(&frontend, &id).await;

    ingest(
        &frontend,
        vec![event("pay", 3.0, &[]), event("pay", 4.0, &[])],
    )
    .await;
    stream
        .wait_for(WAIT, "the sum computed by the aggregator = 7", |m| {
            value_in(m, &sum) == Some(json!(7.0))
        })
        .await;
    stream
        .wait_for(WAIT, "the max computed by the aggregator = 4", |m| {
            value_in(m, &max) == Some(json!(4.0))
        })
        .await;

    drop((frontend, aggregator, broker));
    database.drop_database().await;
}

#[test]
fn database_url_is_documented_and_its_password_never_shown() {
    let secret = "hunter2-secret";
    let help = Command::new(env!("CARGO_BIN_EXE_flowboard"))
        .args(["serve", "--help"])
        .env(
            "FLOWBOARD_DATABASE_URL",
            format!("postgres://flow:{secret}@db.example/flowboard"),
        )
        .output()
        .expect("run flowboard serve --help");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("--database-url") && help.contains("FLOWBOARD_DATABASE_URL"),
        "{help}"
    );
    assert!(!help.contains(secret), "{help}");

    // A URL of another database is refused at startup, saying what to use, password hidden.
    let data_dir = temp_data_dir("shared-bad-url");
    let refused = Command::new(env!("CARGO_BIN_EXE_flowboard"))
        .arg("serve")
        .arg("--data-dir")
        .arg(&data_dir)
        .args([
            "--database-url",
            &format!("mysql://flow:{secret}@db/flowboard"),
        ])
        .output()
        .expect("run flowboard serve");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--database-url") && stderr.contains("postgres://"),
        "{stderr}"
    );
    assert!(!stderr.contains(secret), "{stderr}");
}

#[test]
fn an_unreachable_database_stops_the_server_without_showing_the_password() {
    let secret = "hunter2-secret";
    let data_dir = temp_data_dir("shared-unreachable");
    let socket_dir = data_dir.join("no-postgres-here");
    let url = format!(
        "postgres://flow:{secret}@localhost/flowboard?host={}",
        socket_dir.display()
    );
    let failed = Command::new(env!("CARGO_BIN_EXE_flowboard"))
        .arg("serve")
        .arg("--data-dir")
        .arg(&data_dir)
        .args([
            "--http",
            "127.0.0.1:0",
            "--workers",
            "1",
            "--partitions",
            "1",
        ])
        .env("FLOWBOARD_DATABASE_URL", &url)
        .env("NO_COLOR", "1")
        .output()
        .expect("run flowboard serve");
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success(), "{stderr}");
    assert!(
        stderr.contains("opening the dashboard store at postgres://flow:***@localhost/flowboard"),
        "{stderr}"
    );
    assert!(!stderr.contains(secret), "{stderr}");
}
