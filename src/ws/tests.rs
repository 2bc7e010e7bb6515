//! WebSocket endpoint tests against a real server on `127.0.0.1:0`, with tokio-tungstenite and
//! reqwest as the clients. Hub time is a manual clock; waits are bounded by timeouts.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

use super::routes;
use crate::hub::Hub;
use crate::hub::fixture::{T0, batch, dashboard, hub, value, widget};

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Long enough for anything that should happen; only reached when a test fails.
const WAIT: Duration = Duration::from_secs(5);

async fn serve(hub: Hub) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(
        warp::serve(routes(
            hub,
            crate::auth::Auth::default(),
            crate::config::WsLimits::default(),
        ))
        .incoming(listener)
        .run(),
    );
    addr
}

async fn connect(addr: SocketAddr, path: &str) -> Result<Client, WsError> {
    let url = format!("ws://{addr}{path}");
    tokio_tungstenite::connect_async(url)
        .await
        .map(|(client, _response)| client)
}

/// The next frame from the server.
async fn next_frame(client: &mut Client) -> WsMessage {
    tokio::time::timeout(WAIT, client.next())
        .await
        .expect("a frame in time")
        .expect("the stream is open")
        .expect("a valid frame")
}

/// The next frame, which must be JSON text.
async fn next_json(client: &mut Client) -> Value {
    match next_frame(client).await {
        WsMessage::Text(text) => serde_json::from_str(text.as_str()).expect("JSON text"),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// The status and JSON body of a WebSocket handshake request that is refused.
async fn refused(addr: SocketAddr, path: &str) -> (u16, Value) {
    let status = match connect(addr, path).await {
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("upgraded"),
    };
    let response = reqwest::Client::new()
        .get(format!("http://{addr}{path}"))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .expect("a response");
    assert_eq!(response.status().as_u16(), status);
    (status, response.json().await.expect("a JSON body"))
}

#[tokio::test]
async fn an_unknown_dashboard_is_404_before_the_upgrade() {
    let (hub, _clock) = hub(1);
    let addr = serve(hub).await;
    let (status, body) = refused(addr, &format!("/stream/{}", Uuid::new_v4())).await;
    assert_eq!(status, 404);
    assert_eq!(body["field"], "dashboard_id");
    assert!(body["error"].is_string());
}

#[tokio::test]
async fn a_malformed_id_is_400_before_the_upgrade() {
    let (hub, _clock) = hub(1);
    let addr = serve(hub).await;
    let (status, body) = refused(addr, "/stream/not-a-uuid").await;
    assert_eq!(status, 400);
    assert_eq!(body["field"], "dashboard_id");
}

#[tokio::test]
async fn a_request_without_upgrade_is_426() {
    let (hub, _clock) = hub(1);
    let d = dashboard(vec![widget(1)]);
    hub.set_dashboard(&d);
    let addr = serve(hub).await;
    let response = reqwest::get(format!("http://{addr}/stream/{}", d.id))
        .await
        .expect("a response");
    assert_eq!(response.status().as_u16(), 426);
}

#[tokio::test]
async fn the_snapshot_comes_first_then_updates() {
    let (hub, clock) = hub(1);
    let w = widget(1);
    let d = dashboard(vec![w.clone()]);
    hub.set_dashboard(&d);
    hub.apply(batch(0, T0, vec![value(&w, 1.0, T0)]));
    let addr = serve(hub.clone()).await;
    let mut client = connect(addr, &format!("/stream/{}", d.id))
        .await
        .expect("upgraded");

    let snapshot = next_json(&mut client).await;
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["dashboard_id"], json!(d.id));
    assert_eq!(snapshot["widgets"][0]["value"], json!(1.0));

    clock.set(T0 + 1_000);
    hub.apply(batch(0, T0 + 1_000, vec![value(&w, 43.5, T0 + 1_000)]));
    assert_eq!(
        next_json(&mut client).await,
        json!({"type": "update", "widget_id": w.widget_id, "value": 43.5,
               "as_of": T0 + 1_000, "stale": false})
    );
}

#[tokio::test]
async fn pings_are_answered_and_a_snapshot_can_be_requested() {
    let (hub, _clock) = hub(1);
    let d = dashboard(vec![widget(1)]);
    hub.set_dashboard(&d);
    let addr = serve(hub).await;
    let mut client = connect(addr, &format!("/stream/{}", d.id))
        .await
        .expect("upgraded");
    assert_eq!(next_json(&mut client).await["type"], "snapshot");

    client
        .send(WsMessage::Ping(b"hi".to_vec().into()))
        .await
        .expect("ping");
    match next_frame(&mut client).await {
        WsMessage::Pong(payload) => assert_eq!(&payload[..], b"hi"),
        other => panic!("expected a pong, got {other:?}"),
    }

    // Other client messages are ignored; a snapshot request is answered.
    client.send(WsMessage::text("hello")).await.expect("send");
    client
        .send(WsMessage::text(r#"{"type":"snapshot_request"}"#))
        .await
        .expect("send");
    assert_eq!(next_json(&mut client).await["type"], "snapshot");
}

#[tokio::test]
async fn deleting_the_dashboard_sends_deleted_then_closes() {
    let (hub, _clock) = hub(1);
    let d = dashboard(vec![widget(1)]);
    hub.set_dashboard(&d);
    let addr = serve(hub.clone()).await;
    let mut client = connect(addr, &format!("/stream/{}", d.id))
        .await
        .expect("upgraded");
    assert_eq!(next_json(&mut client).await["type"], "snapshot");

    hub.remove_dashboard(d.id);
    assert_eq!(
        next_json(&mut client).await,
        json!({"type": "deleted", "dashboard_id": d.id})
    );
    match next_frame(&mut client).await {
        WsMessage::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Normal),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

#[tokio::test]
async fn shutdown_closes_every_stream_with_going_away() {
    let (hub, _clock) = hub(1);
    let d = dashboard(vec![widget(1)]);
    hub.set_dashboard(&d);
    let addr = serve(hub.clone()).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut client = connect(addr, &format!("/stream/{}", d.id))
            .await
            .expect("upgraded");
        assert_eq!(next_json(&mut client).await["type"], "snapshot");
        clients.push(client);
    }
    assert_eq!(hub.open_streams(), 3);

    hub.shutdown();
    for client in &mut clients {
        match next_frame(client).await {
            WsMessage::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Away),
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
    tokio::time::timeout(WAIT, hub.wait_streams_closed())
        .await
        .expect("every stream closed");
}

#[tokio::test]
async fn a_client_closing_ends_its_stream() {
    let (hub, _clock) = hub(1);
    let d = dashboard(vec![widget(1)]);
    hub.set_dashboard(&d);
    let addr = serve(hub.clone()).await;
    let mut client = connect(addr, &format!("/stream/{}", d.id))
        .await
        .expect("upgraded");
    assert_eq!(next_json(&mut client).await["type"], "snapshot");
    assert_eq!(hub.open_streams(), 1);
    client.close(None).await.expect("close");
    tokio::time::timeout(WAIT, hub.wait_streams_closed())
        .await
        .expect("the server ended the stream");
}
