//! `WS /stream/{dashboard_id}`: a dashboard's live values over WebSocket.
//!
//! The id is checked before the upgrade: not a UUID → `400`, unknown dashboard → `404`, no
//! upgrade headers → `426`, each with a JSON `{"error", "field"}` body. After the upgrade the
//! client receives JSON text frames from its [`Subscription`]: a snapshot first, then updates,
//! `dashboard` and `deleted` [messages](crate::hub#messages). Client text frames are ignored,
//! except `{"type": "snapshot_request"}`, answered with a fresh snapshot. Pings are answered
//! by the WebSocket layer.
//!
//! The stream ends with a close frame when the dashboard is deleted (`1000`), or when the
//! server shuts down (`1001`, on [`Hub::shutdown`]); a client that does not read what it is
//! sent for [`SEND_TIMEOUT`] is dropped.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};
use warp::ws::{Message, WebSocket, Ws};

use crate::auth::{Auth, Role};
use crate::hub::{Hub, Subscription};

/// How long a client may take to accept what it is sent before it is dropped.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// At most this many ready messages are written before one flush.
const BATCH: usize = 64;

/// Close code for a normal end (the dashboard was deleted).
const CLOSE_NORMAL: u16 = 1000;
/// Close code for a server going away.
const CLOSE_GOING_AWAY: u16 = 1001;

/// `GET /stream/{dashboard_id}` with a WebSocket upgrade.
pub fn routes(hub: Hub, auth: Auth) -> BoxedFilter<(Response,)> {
    let upgrade = warp::ws().map(Some).or(warp::any().map(|| None)).unify();
    warp::path!("stream" / String)
        .and(warp::get())
        .and(auth.require_allowing_query(Role::Read))
        .and(upgrade)
        .map(move |id: String, ws: Option<Ws>| connect(hub.clone(), &id, ws))
        .boxed()
}

/// Checks the request, then upgrades it.
fn connect(hub: Hub, id: &str, ws: Option<Ws>) -> Response {
    let Ok(dashboard) = Uuid::parse_str(id) else {
        return error(
            StatusCode::BAD_REQUEST,
            "dashboard_id is not a UUID",
            Some("dashboard_id"),
        );
    };
    if !hub.contains_dashboard(dashboard) {
        return error(
            StatusCode::NOT_FOUND,
            "no dashboard with this id",
            Some("dashboard_id"),
        );
    }
    let Some(ws) = ws else {
        return error(
            StatusCode::UPGRADE_REQUIRED,
            "this endpoint needs a WebSocket upgrade",
            None,
        );
    };
    ws.on_upgrade(move |socket| stream(socket, hub, dashboard))
        .into_response()
}

/// The JSON error body.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

fn error(status: StatusCode, message: &str, field: Option<&str>) -> Response {
    let body = ErrorBody {
        error: message,
        field,
    };
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}

/// A client message the stream acts on.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    SnapshotRequest,
}

/// What woke the connection up.
enum Event {
    Shutdown,
    Client(Option<Result<Message, warp::Error>>),
    Hub(Option<std::sync::Arc<str>>),
}

/// Runs one upgraded connection until the client leaves, the dashboard is deleted, or the
/// server shuts down.
async fn stream(mut socket: WebSocket, hub: Hub, dashboard: Uuid) {
    let mut subscription = hub.subscribe(dashboard);
    let shutdown = hub.wait_shutdown();
    tokio::pin!(shutdown);
    loop {
        let event = tokio::select! {
            biased;
            () = &mut shutdown => Event::Shutdown,
            frame = socket.next() => Event::Client(frame),
            text = subscription.next() => Event::Hub(text),
        };
        match event {
            Event::Shutdown => {
                close(socket, CLOSE_GOING_AWAY, "server shutting down").await;
                return;
            }
            Event::Client(Some(Ok(message))) => {
                if message.is_close() {
                    // The WebSocket layer queued the close reply; flush it.
                    let _ = socket.close().await;
                    return;
                }
                let request = message
                    .to_str()
                    .ok()
                    .and_then(|text| serde_json::from_str::<ClientMessage>(text).ok());
                if let Some(ClientMessage::SnapshotRequest) = request {
                    subscription.resync();
                }
            }
            Event::Client(Some(Err(err))) => {
                tracing::debug!(%dashboard, %err, "websocket read failed");
                return;
            }
            Event::Client(None) => return,
            Event::Hub(Some(text)) => {
                let sent = send(&mut socket, &mut subscription, text);
                match tokio::time::timeout(SEND_TIMEOUT, sent).await {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => {
                        tracing::debug!(%dashboard, %err, "websocket write failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%dashboard, "websocket client too slow; dropped");
                        return;
                    }
                }
            }
            Event::Hub(None) => {
                close(socket, CLOSE_NORMAL, "dashboard deleted").await;
                return;
            }
        }
    }
}

/// Writes `first` and whatever else is ready (up to [`BATCH`]), then flushes once. The text is
/// shared; the one copy per client is the frame buffer the WebSocket layer needs.
async fn send(
    socket: &mut WebSocket,
    subscription: &mut Subscription,
    first: std::sync::Arc<str>,
) -> Result<(), warp::Error> {
    socket.feed(Message::text(&*first)).await?;
    for _ in 1..BATCH {
        let Some(text) = subscription.try_next() else {
            break;
        };
        socket.feed(Message::text(&*text)).await?;
    }
    socket.flush().await
}

/// Sends a close frame and closes the connection, within [`SEND_TIMEOUT`].
async fn close(mut socket: WebSocket, code: u16, reason: &'static str) {
    let closing = async move {
        socket.send(Message::close_with(code, reason)).await?;
        socket.close().await
    };
    if let Ok(Err(err)) = tokio::time::timeout(SEND_TIMEOUT, closing).await {
        tracing::debug!(%err, "websocket close failed");
    }
}

#[cfg(test)]
mod tests;
