//! One dashboard as the hub keeps it: its widgets in order, what its subscribers were last told
//! about each widget, its broadcast channel, and a cached snapshot message.
//!
//! Every message is serialized once here and broadcast as shared text; nothing in this file
//! does per-subscriber work. Update throttling lives in [`DashboardEntry::flush`]: a widget is
//! announced when its value or staleness differs from what subscribers were last told, and at
//! most once per its refresh interval; a change inside the interval waits for a later flush.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use dataflow::widget::WidgetKey;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::WidgetSnapshot;
use super::message::{Broadcast, StreamMessage};
use super::subscription::Start;
use super::values::{Values, same_value};
use crate::model::{Dashboard, Widget};

/// Messages a dashboard's channel holds for a slow subscriber before it lags (and resyncs).
pub(super) const CHANNEL_CAPACITY: usize = 256;

/// The hub's knowledge at one moment: what widget states are computed from.
pub(super) struct Moment<'a> {
    /// Closed time and values.
    pub(super) values: &'a Values,
    /// The clock, epoch milliseconds.
    pub(super) now_ms: u64,
    /// When the hub started, epoch milliseconds.
    pub(super) started_ms: u64,
    /// How far the Kafka consumer is behind (the largest partition lag), milliseconds.
    pub(super) lag_ms: u64,
}

/// What a widget's value is flagged with, beside the value itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Flags {
    /// The value's as-of is older than twice the refresh interval.
    pub(super) stale: bool,
    /// The consumer lags more than the widget's window: the value misses recent events.
    pub(super) incomplete: bool,
}

impl Moment<'_> {
    /// Whether a widget refreshed every `refresh_ms` is stale: its as-of (the closed time, or
    /// the hub's start before there is one) is more than two refresh intervals old.
    pub(super) fn stale(&self, refresh_ms: u64) -> bool {
        let since = self.values.closed().unwrap_or(self.started_ms);
        self.now_ms.saturating_sub(since) > refresh_ms.saturating_mul(2)
    }

    /// A widget's flags: stale by its refresh interval, incomplete by its window.
    fn flags(&self, refresh_ms: u64, window_ms: u64) -> Flags {
        Flags {
            stale: self.stale(refresh_ms),
            incomplete: self.lag_ms > window_ms,
        }
    }
}

/// One widget and what subscribers were last told about it.
struct WidgetEntry {
    key: WidgetKey,
    refresh_ms: u64,
    window_ms: u64,
    /// Flags at the last check; a change invalidates the cached snapshot.
    flags: Flags,
    /// The value and flags subscribers last saw, in a snapshot or an update.
    told_value: Option<f64>,
    told_flags: Flags,
    /// When the last update for this widget was broadcast, and the closed time it was as of.
    told_at: Option<Told>,
}

/// When an update was broadcast (wall clock) and the closed time its value was as of.
#[derive(Clone, Copy, Debug)]
struct Told {
    at_ms: u64,
    as_of: Option<u64>,
}

impl Told {
    /// Whether an update as of `as_of` must wait for the refresh interval (`refresh_ms`).
    ///
    /// Due once a refresh interval of wall clock passed, or once the value is a whole refresh
    /// interval of *data* time newer and at least half an interval of wall clock passed. The
    /// second rule keeps the arrival jitter of closed times from delaying updates: with the
    /// wall clock alone, a value arriving a few milliseconds earlier after its second closed
    /// than the previous one waits for the next tick, and every later one inherits that delay,
    /// so the push latency ratchets up to the worst jitter seen. The half-interval floor still
    /// spaces updates when closed times arrive in a burst (catching up after a stall).
    fn holds(&self, now_ms: u64, as_of: Option<u64>, refresh_ms: u64) -> bool {
        if now_ms >= self.at_ms.saturating_add(refresh_ms) {
            return false;
        }
        let data_due = matches!((self.as_of, as_of), (Some(told), Some(now)) if now >= told.saturating_add(refresh_ms));
        !(data_due && now_ms >= self.at_ms.saturating_add(refresh_ms / 2))
    }
}

impl WidgetEntry {
    /// A widget whose subscribers are about to see its current state in a snapshot.
    fn new(widget: &Widget, at: &Moment<'_>) -> WidgetEntry {
        let key = WidgetKey {
            id: widget.widget_id,
            generation: widget.generation,
        };
        let refresh_ms = widget.refresh_interval_seconds.saturating_mul(1_000);
        let window_ms = widget.window_seconds.saturating_mul(1_000);
        let flags = at.flags(refresh_ms, window_ms);
        WidgetEntry {
            key,
            refresh_ms,
            window_ms,
            flags,
            told_value: at.values.value(key),
            told_flags: flags,
            told_at: None,
        }
    }

    fn flags(&self, at: &Moment<'_>) -> Flags {
        at.flags(self.refresh_ms, self.window_ms)
    }

    fn snapshot(&self, at: &Moment<'_>, flags: Flags) -> WidgetSnapshot {
        WidgetSnapshot {
            widget_id: self.key.id,
            value: at.values.value(self.key),
            as_of: at.values.closed(),
            stale: flags.stale,
            incomplete: flags.incomplete,
        }
    }
}

/// The last snapshot message built, and what it was built from.
struct CachedSnapshot {
    version: u64,
    closed: Option<u64>,
    text: Arc<str>,
}

/// A dashboard and its subscribers.
pub(super) struct DashboardEntry {
    dashboard: Dashboard,
    widgets: Vec<WidgetEntry>,
    sender: broadcast::Sender<Broadcast>,
    /// Bumped by every new definition of the dashboard.
    revision: u64,
    /// Bumped whenever a snapshot's contents may change, other than by the closed time.
    version: u64,
    cached: Option<CachedSnapshot>,
}

impl DashboardEntry {
    /// A new dashboard, without subscribers.
    pub(super) fn new(dashboard: &Dashboard, at: &Moment<'_>) -> DashboardEntry {
        DashboardEntry {
            dashboard: dashboard.clone(),
            widgets: dashboard
                .widgets
                .iter()
                .map(|w| WidgetEntry::new(w, at))
                .collect(),
            sender: broadcast::Sender::new(CHANNEL_CAPACITY),
            revision: 0,
            version: 0,
            cached: None,
        }
    }

    /// The ids of the dashboard's widgets.
    pub(super) fn widget_ids(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.widgets.iter().map(|w| w.key.id)
    }

    /// Takes a new definition of the dashboard and, if anyone listens, broadcasts it followed
    /// by a snapshot. Returns the ids of the widgets it no longer has.
    pub(super) fn redefine(&mut self, dashboard: &Dashboard, at: &Moment<'_>) -> Vec<Uuid> {
        let mut old: HashMap<Uuid, WidgetEntry> =
            self.widgets.drain(..).map(|w| (w.key.id, w)).collect();
        for widget in &dashboard.widgets {
            let mut entry = WidgetEntry::new(widget, at);
            // Throttling carries over: a redefinition does not reset the refresh interval.
            entry.told_at = old.remove(&widget.widget_id).and_then(|w| w.told_at);
            self.widgets.push(entry);
        }
        self.dashboard = dashboard.clone();
        self.revision += 1;
        self.version += 1;
        if self.sender.receiver_count() > 0 {
            let message = StreamMessage::Dashboard {
                dashboard: &self.dashboard,
            };
            self.broadcast(message.encode());
            let snapshot = self.snapshot(at);
            self.broadcast(snapshot);
        }
        old.into_keys().collect()
    }

    /// Tells subscribers the dashboard is gone; dropping the entry then ends their streams.
    pub(super) fn delete(self) {
        if self.sender.receiver_count() > 0 {
            let message = StreamMessage::Deleted {
                dashboard_id: self.dashboard.id,
            };
            self.broadcast(message.encode());
        }
    }

    /// Marks that a widget's value changed, so the cached snapshot is out of date.
    pub(super) fn touch(&mut self) {
        self.version += 1;
    }

    /// The current state of one widget, staleness computed now.
    pub(super) fn widget_snapshot(&self, id: Uuid, at: &Moment<'_>) -> Option<WidgetSnapshot> {
        let widget = self.widgets.iter().find(|w| w.key.id == id)?;
        Some(widget.snapshot(at, widget.flags(at)))
    }

    /// Broadcasts an update for each widget (of `only`, or all) whose value or staleness
    /// differs from what subscribers were last told and whose refresh interval has passed.
    /// Returns how many updates were broadcast.
    pub(super) fn flush(&mut self, at: &Moment<'_>, only: Option<&HashSet<Uuid>>) -> usize {
        let subscribed = self.sender.receiver_count() > 0;
        let mut sent = 0;
        for widget in &mut self.widgets {
            if only.is_some_and(|only| !only.contains(&widget.key.id)) {
                continue;
            }
            let flags = widget.flags(at);
            if flags != widget.flags {
                widget.flags = flags;
                self.version += 1;
            }
            let value = at.values.value(widget.key);
            if same_value(value, widget.told_value) && flags == widget.told_flags {
                continue;
            }
            let throttled = widget
                .told_at
                .is_some_and(|told| told.holds(at.now_ms, at.values.closed(), widget.refresh_ms));
            if throttled {
                tracing::debug!(widget = %widget.key.id, ?value, "update held back by the refresh interval");
                continue;
            }
            tracing::debug!(widget = %widget.key.id, ?value, subscribed, "update sent");
            widget.told_value = value;
            widget.told_flags = flags;
            widget.told_at = Some(Told {
                at_ms: at.now_ms,
                as_of: at.values.closed(),
            });
            if subscribed {
                let update = widget.snapshot(at, flags);
                let text = StreamMessage::Update(&update).encode();
                // Sending fails only when nobody listens any more; then nobody misses it.
                let _ = self.sender.send(Broadcast {
                    text,
                    revision: self.revision,
                    as_of: update.as_of,
                });
                sent += 1;
            }
        }
        sent
    }

    /// Where a subscriber starts: a receiver for everything broadcast from now on and the
    /// snapshot it starts from, preceded by the definition if the subscriber has seen another
    /// revision (`seen`). Called under the hub's lock, so no update falls between the snapshot
    /// and the first message received.
    pub(super) fn start(&mut self, at: &Moment<'_>, seen: Option<u64>) -> Start {
        let definition = seen.filter(|seen| *seen != self.revision).map(|_| {
            StreamMessage::Dashboard {
                dashboard: &self.dashboard,
            }
            .encode()
        });
        Start::Stream {
            receiver: self.sender.subscribe(),
            snapshot: self.snapshot(at),
            revision: self.revision,
            definition,
        }
    }

    /// The snapshot message: every widget in dashboard order, staleness computed now. Built
    /// once per change and shared by every subscriber that connects or resyncs until the next.
    fn snapshot(&mut self, at: &Moment<'_>) -> Arc<str> {
        for widget in &mut self.widgets {
            let flags = widget.flags(at);
            if flags != widget.flags {
                widget.flags = flags;
                self.version += 1;
            }
        }
        let closed = at.values.closed();
        if let Some(cached) = &self.cached
            && cached.version == self.version
            && cached.closed == closed
        {
            return cached.text.clone();
        }
        let widgets: Vec<WidgetSnapshot> = self
            .widgets
            .iter()
            .map(|w| w.snapshot(at, w.flags))
            .collect();
        let text = StreamMessage::Snapshot {
            dashboard_id: self.dashboard.id,
            as_of: closed,
            widgets: &widgets,
        }
        .encode();
        self.cached = Some(CachedSnapshot {
            version: self.version,
            closed,
            text: text.clone(),
        });
        text
    }

    fn broadcast(&self, text: Arc<str>) {
        // Sending fails only when nobody listens any more; then nobody misses it.
        let _ = self.sender.send(Broadcast {
            text,
            revision: self.revision,
            as_of: None,
        });
    }

    /// WebSocket subscribers of the dashboard.
    pub(super) fn subscribers(&self) -> usize {
        self.sender.receiver_count()
    }

    /// Its number of widgets.
    pub(super) fn widget_count(&self) -> usize {
        self.widgets.len()
    }

    /// How many of its widgets are stale at `at`.
    pub(super) fn stale_widgets(&self, at: &Moment<'_>) -> usize {
        self.widgets
            .iter()
            .filter(|w| at.stale(w.refresh_ms))
            .count()
    }

    /// The shortest window of its widgets, in seconds.
    pub(super) fn shortest_window(&self) -> Option<u64> {
        self.dashboard
            .widgets
            .iter()
            .map(|w| w.window_seconds)
            .min()
    }
}
