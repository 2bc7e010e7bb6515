//! The stream's limits against a real server on `127.0.0.1:0`: connection limits before the
//! upgrade, clients closed for being idle, too slow or too talkative, each with its close code,
//! and clients that keep up staying connected.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};

use super::routes;
use crate::config::WsLimits;
use crate::hub::Hub;
use crate::hub::fixture::{T0, batch, dashboard, hub, value, widget};

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn serve(hub: Hub, limits: WsLimits) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local address");
    let routes = routes(hub, crate::auth::Auth::default(), limits);
    tokio::spawn(warp::serve(routes).incoming(listener).run());
    addr
}

async fn connect(addr: SocketAddr, id: uuid::Uuid) -> Result<Client, WsError> {
    tokio_tungstenite::connect_async(format!("ws://{addr}/stream/{id}"))
        .await
        .map(|(client, _)| client)
}

/// Reads (answering pings, as tungstenite does) until the close frame; its code, or `None` if
/// the connection ended without one. Fails after `within`.
async fn close_code(client: &mut Client, within: Duration) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, client.next()).await {
            Err(_) => panic!("no close within {within:?}"),
            Ok(None | Some(Err(_))) => return None,
            Ok(Some(Ok(WsMessage::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => {}
        }
    }
}

#[tokio::test]
async fn streams_beyond_the_limits_are_refused_before_the_upgrade() {
    let (hub, _clock) = hub(1);
    let d = dashboard(vec![widget(1)]);
    hub.set_dashboard(&d);
    let per_address = WsLimits {
        connections: 10,
        connections_per_ip: 2,
        ..WsLimits::default()
    };
    let addr = serve(hub.clone(), per_address).await;
    let _a = connect(addr, d.id).await.expect("first");
    let _b = connect(addr, d.id).await.expect("second");
    match connect(addr, d.id).await {
        Err(WsError::Http(response)) => assert_eq!(response.status().as_u16(), 429),
        other => panic!("expected a 429, got {other:?}"),
    }
    drop(_a);
    // The place is freed once the server noticed the client left.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match connect(addr, d.id).await {
            Ok(_) => break,
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => panic!("the place was not freed: {error}"),
        }
    }

    let in_total = WsLimits {
        connections: 1,
        connections_per_ip: 10,
        ..WsLimits::default()
    };
    let addr = serve(hub, in_total).await;
    let _only = connect(addr, d.id).await.expect("first");
    let response = reqwest::Client::new()
        .get(format!("http://{addr}/stream/{}", d.id))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .expect("a response");
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("5")
    );
    let body: Value = response.json().await.expect("a JSON error");
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("limit")),
        "{body}"
    );
}

#[tokio::test]
async fn a_silent_client_is_closed_as_idle_and_a_listening_one_is_not() {
    let (hub, _clock) = hub(1);
    let d = dashboard(vec![widget(1)]);
    hub.set_dashboard(&d);
    let limits = WsLimits {
        ping_interval: Duration::from_millis(100),
        idle_timeout: Duration::from_millis(400),
        ..WsLimits::default()
    };
    let addr = serve(hub.clone(), limits).await;

    // Reading answers the pings: still connected after several idle timeouts.
    let mut listening = connect(addr, d.id).await.expect("upgraded");
    let mut pings = 0;
    let until = tokio::time::Instant::now() + Duration::from_millis(1_500);
    while let Ok(frame) = tokio::time::timeout_at(until, listening.next()).await {
        match frame {
            Some(Ok(WsMessage::Ping(_))) => pings += 1,
            Some(Ok(WsMessage::Close(frame))) => panic!("closed: {frame:?}"),
            Some(Ok(_)) => {}
            other => panic!("stream ended: {other:?}"),
        }
    }
    assert!(pings >= 5, "{pings} pings in 1.5 s");

    // Not reading (so not answering pings): closed with 1008 once the idle timeout passed.
    let mut silent = connect(addr, d.id).await.expect("upgraded");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        close_code(&mut silent, Duration::from_secs(5)).await,
        Some(1008)
    );
    drop(listening);
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_as_too_slow() {
    const ROUNDS: u64 = 10;
    let (hub, clock) = hub(1);
    let widgets: Vec<_> = (0..2_000).map(|_| widget(1)).collect();
    let d = dashboard(widgets.clone());
    hub.set_dashboard(&d);
    let send_timeout = Duration::from_secs(2);
    let limits = WsLimits {
        send_timeout,
        ..WsLimits::default()
    };
    let addr = serve(hub.clone(), limits).await;
    let mut slow = connect(addr, d.id).await.expect("upgraded");
    let mut keeping_up = connect(addr, d.id).await.expect("upgraded");

    // The slow client asks for 60 snapshots of ~200 KB and reads nothing: far more than the
    // socket buffers between it and the server hold, so its socket is full within moments.
    let started = tokio::time::Instant::now();
    for _ in 0..60 {
        slow.send(WsMessage::text(r#"{"type":"snapshot_request"}"#))
            .await
            .expect("request sent");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Meanwhile another client keeps receiving every update.
    let last = format!(r#""value":{}.0"#, ROUNDS - 1);
    let reader = tokio::spawn(async move {
        let mut got_last = false;
        while let Some(Ok(frame)) = keeping_up.next().await {
            if let WsMessage::Text(text) = frame
                && text.contains(&last)
            {
                got_last = true;
                break;
            }
        }
        (got_last, keeping_up)
    });
    for round in 0..ROUNDS {
        let at = T0 + (round + 1) * 1_000;
        clock.set(at);
        let values = widgets.iter().map(|w| value(w, round as f64, at)).collect();
        hub.apply(batch(0, at, values));
        tokio::task::yield_now().await;
    }
    let (got_last, _keeping_up) = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("the client that reads got the last value")
        .expect("reader");
    assert!(got_last);

    // One send timeout after its socket filled up the slow client is closed, and the server
    // offers the close frame, behind everything unread, for one more send timeout. Reading
    // then gets to it.
    tokio::time::sleep_until(started + send_timeout + Duration::from_millis(700)).await;
    let code = close_code(&mut slow, Duration::from_secs(10)).await;
    assert_eq!(code, Some(1013));
    tokio::time::timeout(Duration::from_secs(5), async {
        while hub.open_streams() > 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the slow stream ended, the other one not");
}

#[tokio::test]
async fn a_client_message_over_the_limit_is_closed_with_1009() {
    let (hub, _clock) = hub(1);
    let d = dashboard(vec![widget(1)]);
    hub.set_dashboard(&d);
    let addr = serve(hub, WsLimits::default()).await;
    let mut client = connect(addr, d.id).await.expect("upgraded");
    client
        .send(WsMessage::text("x".repeat(super::MAX_CLIENT_MESSAGE + 1)))
        .await
        .expect("sent");
    assert_eq!(
        close_code(&mut client, Duration::from_secs(5)).await,
        Some(1009)
    );
}
