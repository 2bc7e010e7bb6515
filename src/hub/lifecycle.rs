//! The hub's running parts: the ticker, shutdown, and the counts and instruments `/metrics`
//! reports.
//!
//! The ticker sends what [`Hub::apply`] could not: updates the refresh interval held back and
//! staleness flips while no batch arrives. Shutdown is a `watch` flag every WebSocket stream
//! and the ticker wait on; open subscriptions are counted so the server can wait for the
//! streams' close frames before exiting.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::{Hub, TICK};
use crate::metrics::HubMetrics;

/// Who watches what, for `/metrics`: see [`Hub::subscription_summary`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SubscriptionSummary {
    /// Dashboards the hub serves.
    pub dashboards: usize,
    /// Widgets of all dashboards.
    pub widgets: usize,
    /// Widgets whose dashboard has at least one subscriber.
    pub widgets_subscribed: usize,
    /// Sum over dashboards of widgets × subscribers: the copies one round of updates to every
    /// widget would be sent as.
    pub widget_subscriptions: usize,
    /// Widgets whose value is stale now.
    pub stale_widgets: usize,
    /// The shortest window of any widget, in seconds.
    pub shortest_window_seconds: Option<u64>,
}

impl SubscriptionSummary {
    /// Subscribers per watched widget, on average: `widget_subscriptions / widgets_subscribed`
    /// (0 when no widget is watched).
    pub fn fanout_ratio(&self) -> f64 {
        if self.widgets_subscribed == 0 {
            0.0
        } else {
            self.widget_subscriptions as f64 / self.widgets_subscribed as f64
        }
    }
}

impl Hub {
    /// How many times a subscriber lagged behind its dashboard's channel and was resent a
    /// snapshot (for `/metrics`).
    pub fn lagged_subscribers(&self) -> u64 {
        self.shared.lags.load(Ordering::Relaxed)
    }

    /// How many subscriptions (WebSocket streams) are open.
    pub fn open_streams(&self) -> usize {
        *self.shared.open_streams.borrow()
    }

    /// Completes once no subscription is open: after [`Hub::shutdown`], once every WebSocket
    /// stream sent its close frame (or gave up on a client that does not read).
    pub async fn wait_streams_closed(&self) {
        let mut receiver = self.shared.open_streams.subscribe();
        // The sender lives as long as `self`, so this only returns once the count is zero.
        let _ = receiver.wait_for(|open| *open == 0).await;
    }

    /// Spawns the task calling [`Hub::tick`] every [`TICK`] until [`Hub::shutdown`].
    pub fn spawn_ticker(&self) -> JoinHandle<()> {
        tokio::spawn(self.clone().run_ticker(TICK))
    }

    /// Calls [`Hub::tick`] every `period` until [`Hub::shutdown`].
    pub async fn run_ticker(self, period: Duration) {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let shutdown = self.wait_shutdown();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = interval.tick() => self.tick(),
            }
        }
    }

    /// Stops the ticker and closes every WebSocket stream with a close frame.
    pub fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
    }

    /// Completes once [`Hub::shutdown`] was called (at once if it already was).
    pub async fn wait_shutdown(&self) {
        let mut receiver = self.shared.shutdown.subscribe();
        // The sender lives as long as `self`, so this only returns once shutdown is set.
        let _ = receiver.wait_for(|shutdown| *shutdown).await;
    }

    pub(super) fn count_stream(&self, opened: bool) {
        self.shared.open_streams.send_modify(|open| {
            if opened {
                *open += 1;
            } else {
                *open = open.saturating_sub(1);
            }
        });
    }

    /// The hub's latency and broadcast instruments (registered by [`crate::metrics::Metrics`]).
    pub fn metrics(&self) -> &HubMetrics {
        &self.shared.metrics
    }

    /// Counts dashboards, widgets and subscriptions, and stale widgets. Cost: one pass over the
    /// dashboards and their widgets under the lock (no per-subscriber work).
    pub fn subscription_summary(&self) -> SubscriptionSummary {
        let now_ms = self.now_ms();
        let state = self.lock();
        let at = state.moment(now_ms);
        let mut summary = SubscriptionSummary::default();
        for entry in state.dashboards.values() {
            let (widgets, subscribers) = (entry.widget_count(), entry.subscribers());
            summary.dashboards += 1;
            summary.widgets += widgets;
            if subscribers > 0 {
                summary.widgets_subscribed += widgets;
            }
            summary.widget_subscriptions += widgets * subscribers;
            summary.stale_widgets += entry.stale_widgets(&at);
            summary.shortest_window_seconds = summary
                .shortest_window_seconds
                .into_iter()
                .chain(entry.shortest_window())
                .min();
        }
        summary
    }

    /// An update as of `as_of` is being handed to a client now.
    pub(super) fn count_push(&self, as_of: u64) {
        self.shared
            .metrics
            .pushed(self.now_ms().saturating_sub(as_of));
    }

    pub(super) fn count_lag(&self) {
        self.shared.lags.fetch_add(1, Ordering::Relaxed);
    }
}
