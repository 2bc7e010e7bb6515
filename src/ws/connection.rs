//! One upgraded WebSocket connection: hands the client its [`Subscription`]'s messages, answers
//! its requests, pings it, and closes it when it leaves, falls silent or stops reading.
//!
//! # What a connection holds
//!
//! A client's queue is not a per-client buffer: it is the client's position in its dashboard's
//! broadcast channel (256 shared messages). A client that falls further behind gets a fresh
//! snapshot instead of the messages it missed — the latest value of every widget, which is
//! what coalescing would give — and [`SEND_BATCH`] messages at most are written before one
//! flush. Besides the shared channel a connection holds the WebSocket read buffer
//! ([`READ_BUFFER`], more only while a larger client message arrives), the write buffer
//! (written out past [`WRITE_BUFFER`], hard cap [`MAX_WRITE_BUFFER`]) and at most a definition
//! and a snapshot waiting to be sent; so however far a client falls behind, its memory stays
//! bounded, and an idle client costs a few KiB.
//!
//! A client whose socket accepts nothing for the send timeout is closed with code `1013`; one
//! that sends nothing, not even a pong to the pings sent every ping interval, for the idle
//! timeout is closed with `1008`. The close frame waits behind what the client has not read,
//! so a client that never reads sees only the end of the TCP connection.

use std::pin::pin;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::error::CapacityError;
use tokio_tungstenite::tungstenite::{Bytes, Error, Message, Utf8Bytes};
use uuid::Uuid;

use super::permits::Permit;
use super::upgrade::Socket;
use super::{DELETED, IDLE, PROTOCOL_ERROR, SHUTTING_DOWN, TOO_BIG, TOO_SLOW, close};
use crate::config::WsLimits;
use crate::hub::{Hub, Subscription};

/// At most this many ready messages are written before one flush.
pub const SEND_BATCH: usize = 64;

/// A connection's write buffer is written out to the socket once it holds more than this: a
/// batch of updates (~100 bytes each) still goes out in one write, and a burst of them does not
/// grow the buffer further. (The buffer keeps the capacity of the largest frame written
/// through it, such as a snapshot.)
pub const WRITE_BUFFER: usize = 8 * 1024;

/// Hard cap of a connection's write buffer (what the socket has not taken yet plus the frame
/// being written): room for a snapshot of a large dashboard. A write beyond it fails and ends
/// the connection.
pub const MAX_WRITE_BUFFER: usize = 16 * 1024 * 1024;

/// A connection's read buffer, allocated and touched when it opens. Clients send only small
/// messages (a snapshot request, pongs, a close); the buffer grows for a larger one, up to
/// [`MAX_CLIENT_MESSAGE`](super::MAX_CLIENT_MESSAGE).
pub const READ_BUFFER: usize = 4 * 1024;

/// A client message the stream acts on.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    SnapshotRequest,
}

/// What woke the connection up.
enum Event {
    Shutdown,
    Client(Option<Result<Message, Error>>),
    Ping,
    IdleCheck,
    Hub(Option<Arc<str>>),
}

/// Runs one upgraded connection until the client leaves, the dashboard is deleted, the server
/// shuts down, or the client is too slow or silent. `_permit` holds its place among the open
/// streams until then.
pub(super) async fn run(
    mut socket: Socket,
    hub: Hub,
    dashboard: Uuid,
    limits: WsLimits,
    _permit: Permit,
) {
    let mut subscription = hub.subscribe(dashboard);
    let mut shutdown = pin!(hub.wait_shutdown());
    let start = Instant::now();
    let mut pings = tokio::time::interval_at(start + limits.ping_interval, limits.ping_interval);
    pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut heard = start;
    // One timer, moved on only when it fires: no timer work per message.
    let mut idle = pin!(tokio::time::sleep_until(start + limits.idle_timeout));
    loop {
        let event = tokio::select! {
            biased;
            () = &mut shutdown => Event::Shutdown,
            frame = socket.next() => Event::Client(frame),
            _ = pings.tick() => Event::Ping,
            () = &mut idle => Event::IdleCheck,
            text = subscription.next() => Event::Hub(text),
        };
        match event {
            Event::Shutdown => {
                close(socket, SHUTTING_DOWN, limits.send_timeout).await;
                return;
            }
            Event::Client(Some(Ok(message))) => {
                heard = Instant::now();
                match message {
                    Message::Close(_) => {
                        // The WebSocket layer queued the close reply; flush it.
                        let _ = SinkExt::close(&mut socket).await;
                        return;
                    }
                    Message::Text(text) => {
                        let request = serde_json::from_str::<ClientMessage>(text.as_str());
                        if let Ok(ClientMessage::SnapshotRequest) = request {
                            subscription.resync();
                        }
                    }
                    _ => {}
                }
            }
            Event::Client(Some(Err(err))) => {
                tracing::debug!(%dashboard, %err, "websocket read failed");
                // Over the message size limit the connection can still say so; otherwise the
                // connection is broken and the attempt ends at once.
                let reason = match err {
                    Error::Capacity(CapacityError::MessageTooLong { .. }) => TOO_BIG,
                    _ => PROTOCOL_ERROR,
                };
                close(socket, reason, limits.send_timeout).await;
                return;
            }
            Event::Client(None) => return,
            Event::Ping => {
                let ping = socket.send(Message::Ping(Bytes::new()));
                match tokio::time::timeout(limits.send_timeout, ping).await {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => {
                        tracing::debug!(%dashboard, %err, "websocket ping failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%dashboard, "websocket client too slow for a ping");
                        close(socket, TOO_SLOW, limits.send_timeout).await;
                        return;
                    }
                }
            }
            Event::IdleCheck => {
                let deadline = heard + limits.idle_timeout;
                if Instant::now() >= deadline {
                    tracing::debug!(%dashboard, "websocket client idle; closing");
                    close(socket, IDLE, limits.send_timeout).await;
                    return;
                }
                idle.as_mut().reset(deadline);
            }
            Event::Hub(Some(text)) => {
                let sent = send(&mut socket, &mut subscription, text);
                match tokio::time::timeout(limits.send_timeout, sent).await {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => {
                        tracing::debug!(%dashboard, %err, "websocket write failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%dashboard, "websocket client too slow; closing");
                        close(socket, TOO_SLOW, limits.send_timeout).await;
                        return;
                    }
                }
            }
            Event::Hub(None) => {
                close(socket, DELETED, limits.send_timeout).await;
                return;
            }
        }
    }
}

/// Writes `first` and whatever else is ready (up to [`SEND_BATCH`]), then flushes once. The
/// text is shared by the dashboard's clients; each client copies it into a message, which the
/// WebSocket layer frames into its write buffer.
async fn send(
    socket: &mut Socket,
    subscription: &mut Subscription,
    first: Arc<str>,
) -> Result<(), Error> {
    socket.feed(text_message(&first)).await?;
    for _ in 1..SEND_BATCH {
        let Some(text) = subscription.try_next() else {
            break;
        };
        socket.feed(text_message(&text)).await?;
    }
    socket.flush().await
}

/// A text frame of `text`.
fn text_message(text: &str) -> Message {
    Message::Text(Utf8Bytes::from(text))
}
