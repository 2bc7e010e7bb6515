//! Every limit against a running server started with small ones: its status, its JSON error,
//! its header, its count in `/metrics`, and that what it refuses changes nothing. Clients from
//! other addresses come from other loopback addresses (`127.0.0.2`, …).

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

fn from(address: &str) -> reqwest::Client {
    let ip: IpAddr = address.parse().expect("an address");
    reqwest::Client::builder()
        .local_address(ip)
        .timeout(Duration::from_secs(15))
        .build()
        .expect("client")
}

async fn ingest_from(client: &reqwest::Client, server: &Server, events: &Value) -> Answer {
    let response = client
        .post(server.url("/ingest"))
        .json(events)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// A WebSocket stream of `dashboard` opened from `local` (an address of this machine).
async fn stream_from(
    server: &Server,
    local: &str,
    dashboard: &str,
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(local.parse().expect("ip"), 0))
        .expect("bind");
    let address: SocketAddr = server.address().parse().expect("server address");
    let tcp = socket.connect(address).await.expect("connect");
    let url = server.ws_url(&format!("/stream/{dashboard}"));
    let (socket, _) = tokio_tungstenite::client_async(url, tcp).await?;
    Ok(socket)
}

fn refused_status(result: Result<Socket, tokio_tungstenite::tungstenite::Error>) -> u16 {
    match result {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        other => panic!("expected a refused upgrade, got {other:?}"),
    }
}

async fn value_of(server: &Server, dashboard: &str, widget: &str) -> Value {
    let path = format!("/dashboards/{dashboard}/widgets/{widget}/snapshot");
    get(server, &path).await.1["value"].clone()
}

async fn wait_value(server: &Server, dashboard: &str, widget: &str, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let value = value_of(server, dashboard, widget).await;
        if value == json!(want) {
            return;
        }
        assert!(Instant::now() < deadline, "value {value}, expected {want}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn rejected(path: &str, reason: &str) -> String {
    format!(r#"flowboard_events_rejected_total{{path="{path}",reason="{reason}"}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_limit_has_its_status_and_error() {
    #[rustfmt::skip]
    let server = Server::start("limits", &[
        "--max-body-size", "4KiB",
        "--max-events-per-request", "12",
        "--max-tags-per-event", "2", "--max-tag-key-length", "4", "--max-tag-value-length", "5",
        "--max-widgets-per-dashboard", "2",
        "--max-dashboards", "2",
        "--max-ws-connections", "3", "--max-ws-connections-per-ip", "2",
        "--ingest-rate", "5", "--ingest-burst", "10",
    ]);
    let dashboard = create_dashboard(
        &server,
        "limited",
        json!([{"metric_name": "m", "aggregation": "count", "window_seconds": 3600}]),
    )
    .await;
    let d = dashboard["dashboard_id"].as_str().expect("id").to_string();
    let w = dashboard["widgets"][0]["widget_id"]
        .as_str()
        .expect("widget")
        .to_string();

    // Body size: 413, whatever the route.
    let big = format!(r#"{{"name": "{}"}}"#, "x".repeat(5_000));
    for path in ["/dashboards", "/ingest"] {
        let answer = send_raw(&server, "POST", path, big.clone().into_bytes(), None).await;
        assert_eq!(answer.status, 413, "{path}: {}", answer.body);
        assert!(
            answer.body["error"]
                .as_str()
                .is_some_and(|e| e.contains("4096"))
        );
    }

    // Events per request: 413, counted by reason, nothing written.
    let thirteen: Vec<Value> = (0..13).map(|_| event("m", 1.0, &[])).collect();
    let (status, error) = post(&server, "/ingest", &json!(thirteen)).await;
    assert_eq!((status, &error["field"]), (413, &Value::Null), "{error}");
    assert!(
        error["error"]
            .as_str()
            .is_some_and(|e| e.contains("at most 12"))
    );
    let counted = metric(&server, &rejected("http", "too_many_events")).await;
    assert_eq!(counted, 13.0);

    // Tags: 400 naming `tags` over HTTP; counted as invalid_tags on Kafka.
    for tags in [
        vec![("a", "1"), ("b", "2"), ("c", "3")],
        vec![("abcde", "1")],
        vec![("a", "123456")],
    ] {
        let (status, error) = post(&server, "/ingest", &event("m", 1.0, &tags)).await;
        assert_eq!((status, &error["field"]), (400, &json!("tags")), "{error}");
    }
    let before = metric(&server, &rejected("kafka", "invalid_tags")).await;
    produce(
        &server,
        "m",
        r#"{"metric_name": "m", "value": 1, "tags": {"a": "1", "b": "2", "c": "3"}}"#,
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(&server, &rejected("kafka", "invalid_tags")).await < before + 1.0 {
        assert!(
            Instant::now() < deadline,
            "the Kafka record was not counted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Widgets per dashboard and dashboards: 409.
    let widget = json!({"metric_name": "m", "aggregation": "sum"});
    let (status, error) = patch(
        &server,
        &format!("/dashboards/{d}/widgets"),
        &json!({"add": [widget, widget]}),
    )
    .await;
    assert_eq!((status, &error["field"]), (409, &json!("add")), "{error}");
    let (status, error) = post(
        &server,
        "/dashboards",
        &json!({"name": "three widgets", "widgets": [widget, widget, widget]}),
    )
    .await;
    assert_eq!(
        (status, &error["field"]),
        (409, &json!("widgets")),
        "{error}"
    );
    create_dashboard(&server, "second", json!([])).await;
    let (status, error) = post(&server, "/dashboards", &json!({"name": "third"})).await;
    assert_eq!(status, 409, "{error}");
    assert_eq!(
        get(&server, "/dashboards").await.1.as_array().map(Vec::len),
        Some(2)
    );

    // Ingest rate per client address (ingest is open): 10 at once, then 5 a second.
    let one = from("127.0.0.1");
    let two = from("127.0.0.2");
    let ten: Value = (0..10).map(|_| event("m", 1.0, &[])).collect();
    let answer = ingest_from(&one, &server, &ten).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    let answer = ingest_from(&one, &server, &json!([event("m", 1.0, &[])])).await;
    assert_eq!(answer.status, 429, "{}", answer.body);
    assert!(
        answer.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("rate"))
    );
    let retry: u64 = answer
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    assert_eq!(
        metric(&server, &rejected("http", "rate_limited")).await,
        1.0
    );
    // Another address has its own bucket.
    let answer = ingest_from(&two, &server, &ten).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    // After Retry-After the first one may send again.
    tokio::time::sleep(Duration::from_secs(retry)).await;
    let answer = ingest_from(&one, &server, &json!([event("m", 1.0, &[])])).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    // Everything accepted counts; nothing refused does.
    wait_value(&server, &d, &w, 21.0).await;

    // WebSocket streams: two per address, three in all.
    let _open = [
        stream_from(&server, "127.0.0.1", &d).await.expect("first"),
        stream_from(&server, "127.0.0.1", &d).await.expect("second"),
    ];
    assert_eq!(
        refused_status(stream_from(&server, "127.0.0.1", &d).await),
        429
    );
    let _third = stream_from(&server, "127.0.0.2", &d).await.expect("third");
    assert_eq!(
        refused_status(stream_from(&server, "127.0.0.3", &d).await),
        503
    );
    let answer = send_raw(&server, "GET", &format!("/stream/{d}"), Vec::new(), None).await;
    assert_eq!(
        answer.status, 426,
        "the limit is checked after the upgrade request"
    );

    let (status, _) = get(&server, "/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(value_of(&server, &d, &w).await, json!(21.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ingest_rate_is_per_token() {
    const INGEST: &str = "ingest-token-0123456789";
    const ADMIN: &str = "admin-token-0123456789";
    #[rustfmt::skip]
    let server = Server::start("limits-token", &[
        "--ingest-token", INGEST, "--admin-token", ADMIN,
        "--ingest-rate", "2", "--ingest-burst", "4",
    ]);
    let body = |n: usize| -> Vec<u8> {
        let events: Vec<Value> = (0..n).map(|_| event("rated", 1.0, &[])).collect();
        serde_json::to_vec(&events).expect("JSON")
    };
    let created = send_raw(
        &server,
        "POST",
        "/dashboards",
        br#"{"name": "rated", "widgets": [{"metric_name": "rated", "aggregation": "count"}]}"#
            .to_vec(),
        Some(ADMIN),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let d = created.body["dashboard_id"]
        .as_str()
        .expect("id")
        .to_string();
    let w = created.body["widgets"][0]["widget_id"]
        .as_str()
        .expect("widget")
        .to_string();

    // Larger than the burst: let through on a full bucket, leaving a debt of 2 s.
    let answer = send_raw(&server, "POST", "/ingest", body(8), Some(INGEST)).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    let answer = send_raw(&server, "POST", "/ingest", body(1), Some(INGEST)).await;
    assert_eq!(answer.status, 429, "{}", answer.body);
    let retry = answer
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok());
    assert!(matches!(retry, Some("3" | "2")), "Retry-After {retry:?}");
    // A request that fails validation is a 400, not a 429, and costs nothing.
    let answer = send_raw(&server, "POST", "/ingest", b"{}".to_vec(), Some(INGEST)).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    // The admin token has a bucket of its own.
    let answer = send_raw(&server, "POST", "/ingest", body(4), Some(ADMIN)).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    wait_value(&server, &d, &w, 12.0).await;
}
