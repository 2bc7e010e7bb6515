//! `WS /stream/{dashboard_id}`: a dashboard's live values over WebSocket.
//!
//! The request is checked before the upgrade, each refusal a JSON [`ApiError`]: an id that is
//! not a UUID → `400`, an unknown dashboard → `404`, no upgrade headers → `426`, the process
//! at its stream limit → `503` (with `Retry-After`), the client's address at its limit → `429`.
//! After the upgrade the client receives JSON text frames from its
//! [`Subscription`](crate::hub::Subscription): a
//! snapshot first, then updates, `dashboard` and `deleted` [messages](crate::hub#messages).
//! Client text frames are ignored, except `{"type": "snapshot_request"}`, answered with a fresh
//! snapshot; a client message may be at most [`MAX_CLIENT_MESSAGE`] bytes. Pings from the
//! client are answered by the WebSocket layer; the server pings every client every ping
//! interval (see [`WsLimits`]).
//!
//! # Close codes
//!
//! | code | reason | when |
//! |---|---|---|
//! | `1000` | [`DELETED`] | the dashboard was deleted (after a `deleted` message) |
//! | `1001` | [`SHUTTING_DOWN`] | the server shuts down ([`Hub::shutdown`]) |
//! | `1002` | [`PROTOCOL_ERROR`] | the client sent an invalid frame |
//! | `1008` | [`IDLE`] | nothing (not even a pong) came from the client for the idle timeout |
//! | `1009` | [`TOO_BIG`] | the client sent a message over [`MAX_CLIENT_MESSAGE`] |
//! | `1013` | [`TOO_SLOW`] | the client's socket accepted nothing for the send timeout |
//!
//! Every close but `1000` means "reconnect" (the next connection starts from a fresh
//! snapshot); `1013` and `1008` also suggest looking at the client's network. How a connection
//! stays bounded in memory is told in `connection`.

mod connection;
mod permits;
mod upgrade;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use uuid::Uuid;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::{Reply, Response};

use crate::auth::{Auth, Role};
use crate::config::WsLimits;
use crate::error::ApiError;
use crate::hub::Hub;
use upgrade::{Socket, Upgrade};

pub use connection::{MAX_WRITE_BUFFER, READ_BUFFER, SEND_BATCH, WRITE_BUFFER};
pub use permits::{Permit, Permits};

/// Largest message a client may send (it only ever needs to send a snapshot request).
pub const MAX_CLIENT_MESSAGE: usize = 64 * 1024;

/// Why the server closes a stream: the close frame's code and reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Closing {
    /// The close code.
    pub code: u16,
    /// The reason, at most 123 bytes.
    pub reason: &'static str,
}

/// The dashboard was deleted.
pub const DELETED: Closing = Closing {
    code: 1000,
    reason: "dashboard deleted",
};
/// The server shuts down.
pub const SHUTTING_DOWN: Closing = Closing {
    code: 1001,
    reason: "server shutting down",
};
/// The client sent a frame that is not valid WebSocket.
pub const PROTOCOL_ERROR: Closing = Closing {
    code: 1002,
    reason: "invalid frame",
};
/// The client sent nothing, not even a pong, for the idle timeout.
pub const IDLE: Closing = Closing {
    code: 1008,
    reason: "idle: no frame or pong from the client within the idle timeout",
};
/// The client sent a message over [`MAX_CLIENT_MESSAGE`].
pub const TOO_BIG: Closing = Closing {
    code: 1009,
    reason: "client messages are at most 64 KiB",
};
/// The client's socket accepted nothing for the send timeout.
pub const TOO_SLOW: Closing = Closing {
    code: 1013,
    reason: "too slow: nothing sent was read within the send timeout; reconnect",
};

/// `GET /stream/{dashboard_id}` with a WebSocket upgrade, within `limits`.
pub fn routes(hub: Hub, auth: Auth, limits: WsLimits) -> BoxedFilter<(Response,)> {
    let permits = Permits::new(&limits);
    warp::path!("stream" / String)
        .and(warp::get())
        .and(auth.require_allowing_query(Role::Read))
        .and(warp::addr::remote())
        .and(upgrade::request())
        .map(
            move |id: String, remote: Option<SocketAddr>, upgrade: Option<Upgrade>| match connect(
                &hub, &permits, limits, &id, remote, upgrade,
            ) {
                Ok(response) => response,
                Err(error) => error.into_response(),
            },
        )
        .boxed()
}

/// Checks the request, then upgrades it.
fn connect(
    hub: &Hub,
    permits: &Permits,
    limits: WsLimits,
    id: &str,
    remote: Option<SocketAddr>,
    upgrade: Option<Upgrade>,
) -> Result<Response, ApiError> {
    let Ok(dashboard) = Uuid::parse_str(id) else {
        return Err(ApiError::bad_field(
            "dashboard_id",
            format!(
                "dashboard_id must be a UUID, got {:?}",
                crate::api::validate::clip(id)
            ),
        ));
    };
    if !hub.contains_dashboard(dashboard) {
        return Err(ApiError::not_found(
            "dashboard_id",
            format!("no dashboard {dashboard}"),
        ));
    }
    let Some(upgrade) = upgrade else {
        return Err(ApiError::UpgradeRequired);
    };
    let permit = permits.take(remote.map(|address| address.ip()))?;
    let hub = hub.clone();
    Ok(upgrade.accept(move |socket| connection::run(socket, hub, dashboard, limits, permit)))
}

/// How long a closed stream waits for the client's close reply.
const CLOSE_REPLY_WAIT: Duration = Duration::from_secs(1);

/// Sends the close frame of `closing` (within `timeout`), then waits a moment for the client's
/// reply, discarding what it sends meanwhile: dropping a socket the client still writes to
/// (a pong, say) would reset the connection and could lose the close frame on its way.
async fn close(mut socket: Socket, closing: Closing, timeout: Duration) {
    let frame = Message::Close(Some(CloseFrame {
        code: closing.code.into(),
        reason: Utf8Bytes::from_static(closing.reason),
    }));
    match tokio::time::timeout(timeout, socket.send(frame)).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => {
            tracing::debug!(%err, "websocket close failed");
            return;
        }
        Err(_) => return,
    }
    let drained = async { while let Some(Ok(_)) = socket.next().await {} };
    let _ = tokio::time::timeout(CLOSE_REPLY_WAIT, drained).await;
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_limits;
