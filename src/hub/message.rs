//! The JSON messages of `WS /stream/{dashboard_id}` (formats in the [hub](super#messages)
//! documentation), each serialized once and shared by every subscriber of the dashboard.
//!
//! Serialization happens under the hub's lock, once per message whatever the number of
//! subscribers; the channel carries the text as an `Arc<str>`.

use std::sync::Arc;

use serde::Serialize;
use uuid::Uuid;

use super::WidgetSnapshot;
use crate::model::Dashboard;

/// A message to the subscribers of one dashboard.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum StreamMessage<'a> {
    /// Every widget of the dashboard, in dashboard order.
    Snapshot {
        dashboard_id: Uuid,
        as_of: Option<u64>,
        widgets: &'a [WidgetSnapshot],
    },
    /// One widget's new value or staleness.
    Update(&'a WidgetSnapshot),
    /// The dashboard's definition changed; a snapshot follows.
    Dashboard { dashboard: &'a Dashboard },
    /// The dashboard was deleted; the stream ends.
    Deleted { dashboard_id: Uuid },
}

impl StreamMessage<'_> {
    /// The message as JSON text, ready to be shared by every subscriber.
    pub(super) fn encode(&self) -> Arc<str> {
        match serde_json::to_string(self) {
            Ok(text) => Arc::from(text),
            // Unreachable for these types (string keys, finite or null numbers), but a
            // serialization bug must not take the hub down.
            Err(err) => {
                tracing::error!(%err, "could not serialize a stream message");
                Arc::from(r#"{"type":"error","error":"internal serialization error"}"#)
            }
        }
    }
}

/// What travels on a dashboard's broadcast channel.
#[derive(Clone, Debug)]
pub(super) struct Broadcast {
    /// The message, serialized once.
    pub(super) text: Arc<str>,
    /// The revision of the dashboard definition the message belongs to, so a subscriber that
    /// lagged knows whether it missed a `dashboard` message.
    pub(super) revision: u64,
    /// For an update: the closed time its value is as of, to measure push latency.
    pub(super) as_of: Option<u64>,
}
