//! One client's view of a dashboard's stream: the snapshot it starts from, then the shared
//! messages of the dashboard's broadcast channel.
//!
//! Unlike a plain broadcast receiver, a subscription never skips messages silently: when the
//! client falls so far behind that the channel overwrote messages it had not read
//! (`RecvError::Lagged`), the subscription drops what is left of the backlog and starts over
//! from a fresh snapshot (preceded by the dashboard's definition if that changed meanwhile).

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use uuid::Uuid;

use super::Hub;
use super::message::Broadcast;

/// A client's stream of JSON text messages for one dashboard. See [`Hub::subscribe`].
pub struct Subscription {
    hub: Hub,
    dashboard: Uuid,
    /// `None` once the stream ended (the dashboard was deleted).
    receiver: Option<broadcast::Receiver<Broadcast>>,
    /// The revision of the dashboard definition the client has seen.
    revision: u64,
    /// Messages to hand out before reading the channel again.
    pending: VecDeque<Arc<str>>,
}

/// Where a (re)subscription starts.
pub(super) enum Start {
    /// The dashboard exists: a receiver, the snapshot it starts from, the definition revision,
    /// and the definition message if the subscriber had seen an earlier revision.
    Stream {
        receiver: broadcast::Receiver<Broadcast>,
        snapshot: Arc<str>,
        revision: u64,
        definition: Option<Arc<str>>,
    },
    /// The dashboard does not exist (any more): the `deleted` message.
    Deleted(Arc<str>),
}

impl Subscription {
    /// A subscription that first hands out `start`.
    pub(super) fn new(hub: Hub, dashboard: Uuid, start: Start) -> Subscription {
        hub.count_stream(true);
        let mut subscription = Subscription {
            hub,
            dashboard,
            receiver: None,
            revision: 0,
            pending: VecDeque::new(),
        };
        subscription.restart(start);
        subscription
    }

    /// The dashboard subscribed to.
    pub fn dashboard(&self) -> Uuid {
        self.dashboard
    }

    /// The next message; `None` once the stream ended. The first message is a snapshot.
    /// Cancel safe: a message is never lost if the future is dropped before completing.
    pub async fn next(&mut self) -> Option<Arc<str>> {
        loop {
            if let Some(text) = self.pending.pop_front() {
                return Some(text);
            }
            let received = self.receiver.as_mut()?.recv().await;
            match received {
                Ok(message) => return Some(self.deliver(message)),
                Err(RecvError::Lagged(missed)) => self.lagged(missed),
                Err(RecvError::Closed) => self.receiver = None,
            }
        }
    }

    /// The next message if one is ready, without waiting. `None` when none is ready or the
    /// stream ended (the next [`Subscription::next`] tells which).
    pub fn try_next(&mut self) -> Option<Arc<str>> {
        loop {
            if let Some(text) = self.pending.pop_front() {
                return Some(text);
            }
            match self.receiver.as_mut()?.try_recv() {
                Ok(message) => return Some(self.deliver(message)),
                Err(TryRecvError::Empty) => return None,
                Err(TryRecvError::Lagged(missed)) => self.lagged(missed),
                Err(TryRecvError::Closed) => self.receiver = None,
            }
        }
    }

    /// Drops whatever is queued and starts over from a fresh snapshot (for a client that asks
    /// for one, or lagged).
    pub fn resync(&mut self) {
        let start = self.hub.start(self.dashboard, Some(self.revision));
        self.restart(start);
    }

    fn deliver(&mut self, message: Broadcast) -> Arc<str> {
        if let Some(as_of) = message.as_of {
            self.hub.count_push(as_of);
        }
        self.revision = message.revision;
        message.text
    }

    fn lagged(&mut self, missed: u64) {
        tracing::debug!(dashboard = %self.dashboard, missed, "subscriber lagged; resending a snapshot");
        self.hub.count_lag();
        self.resync();
    }

    fn restart(&mut self, start: Start) {
        self.pending.clear();
        match start {
            Start::Stream {
                receiver,
                snapshot,
                revision,
                definition,
            } => {
                self.pending.extend(definition);
                self.pending.push_back(snapshot);
                self.receiver = Some(receiver);
                self.revision = revision;
            }
            Start::Deleted(deleted) => {
                self.pending.push_back(deleted);
                self.receiver = None;
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.count_stream(false);
    }
}
