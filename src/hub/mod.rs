//! Latest widget values and their fan-out to WebSocket clients.
//!
//! The bridge hands every worker's [`SinkBatch`] to [`Hub::apply`]. The hub holds updates back
//! until the dataflow's closed time (the minimum over workers) reaches them, so what it shows
//! is always the state of one closed time. A widget's value is shown only if it was computed
//! for the widget's current generation; its `as_of` is the closed time, and it is `stale` when
//! that is more than twice its refresh interval old.
//!
//! Each dashboard has a bounded broadcast channel of JSON text, serialized once per message
//! and shared by every subscriber. [`Hub::subscribe`] starts a client's [`Subscription`] with a
//! snapshot; a client that lags gets a fresh snapshot instead of the messages it missed.
//! Updates are throttled to one per widget per refresh interval (of wall clock, or of data time
//! with at least half an interval of wall clock between them, so that jitter in when closed
//! times arrive does not delay updates), and sent only when the value
//! (or staleness) changed; changes held back by the throttle, and staleness flips, are sent by
//! [`Hub::tick`], which [`Hub::spawn_ticker`] calls every [`TICK`].
//!
//! # Messages
//!
//! ```text
//! {"type":"snapshot","dashboard_id":"…","as_of":1796000000000,
//!  "widgets":[{"widget_id":"…","value":42.0,"as_of":1796000000000,"stale":false}, …]}
//! {"type":"update","widget_id":"…","value":43.5,"as_of":1796000001000,"stale":false}
//! {"type":"dashboard","dashboard":{"dashboard_id":"…","id":"…","name":"…","widgets":[…],…}}
//! {"type":"deleted","dashboard_id":"…"}
//! ```
//!
//! A snapshot lists every widget in dashboard order; `as_of` is the closed time (`null` before
//! there is one). `dashboard` (the new definition, followed by a snapshot) is sent when the
//! dashboard changes; `deleted` when it is removed, after which the stream ends.
//!
//! # Running and shutdown
//!
//! The server builds one `Hub::new(workers)`, passes clones to the REST API, the bridge and
//! [`crate::ws::routes`], and calls [`Hub::spawn_ticker`] once inside the runtime. On shutdown
//! it calls [`Hub::shutdown`], which stops the ticker and makes every WebSocket stream send a
//! close frame (`1001`) and end. warp's graceful shutdown does not wait for upgraded
//! connections, so after it the server awaits [`Hub::wait_streams_closed`] (under a timeout).
//!
//! One `std::sync::Mutex` guards the state; it is never held across an `.await`. Messages are
//! serialized and broadcast under it (so each dashboard's messages keep their order); nothing
//! done under it is per client beyond tokio's broadcast waking its waiting receivers.
//!
//! # Examples
//!
//! ```
//! use std::sync::Arc;
//! use dataflow::sink::{SinkBatch, WidgetUpdate};
//! use dataflow::widget::WidgetKey;
//! use flowboard::hub::{Hub, ManualClock};
//! use flowboard::model::{Dashboard, Widget};
//! use operators::registry::AggregationKind;
//! use operators::window_aggregate::WindowChange;
//!
//! let t0 = 1_796_000_000_000;
//! let hub = Hub::with_clock(1, Arc::new(ManualClock::new(t0)));
//! let widget = Widget {
//!     widget_id: uuid::Uuid::new_v4(),
//!     metric_name: "api.requests".into(),
//!     aggregation: AggregationKind::Sum,
//!     window_seconds: 60,
//!     refresh_interval_seconds: 1,
//!     filter: Default::default(),
//!     display_config: serde_json::json!({}),
//!     generation: 1,
//! };
//! let key = WidgetKey { id: widget.widget_id, generation: 1 };
//! let dashboard = Dashboard {
//!     id: uuid::Uuid::new_v4(),
//!     name: "ops".into(),
//!     widgets: vec![widget],
//!     created_at: t0,
//!     updated_at: t0,
//! };
//! hub.set_dashboard(&dashboard);
//! let mut stream = hub.subscribe(dashboard.id);
//! hub.apply(SinkBatch {
//!     worker: 0,
//!     closed_through: t0,
//!     updates: vec![WidgetUpdate { widget: key, change: WindowChange::Value(Some(42.0)), as_of: t0 }],
//! });
//! let snapshot = stream.try_next().unwrap();
//! assert!(snapshot.starts_with(r#"{"type":"snapshot""#));
//! let update = stream.try_next().unwrap();
//! assert!(update.contains(r#""value":42.0"#));
//! assert_eq!(hub.widget_snapshot(dashboard.id, key.id).unwrap().value, Some(42.0));
//! ```

mod clock;
mod dashboard;
mod lifecycle;
mod message;
mod subscription;
mod values;

#[cfg(test)]
pub(crate) mod fixture;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_stream;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use dataflow::sink::SinkBatch;
use serde::Serialize;
use tokio::sync::watch;
use uuid::Uuid;

pub use self::clock::{Clock, ManualClock, SystemClock};
pub use self::lifecycle::SubscriptionSummary;
pub use self::subscription::Subscription;

use self::dashboard::{DashboardEntry, Moment};
use self::message::StreamMessage;
use self::subscription::Start;
use self::values::Values;
use crate::metrics::HubMetrics;
use crate::model::Dashboard;

/// How often [`Hub::spawn_ticker`] sends throttled updates and staleness changes.
pub const TICK: Duration = Duration::from_millis(200);

/// One widget's current value, as the snapshot endpoint and snapshot messages report it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WidgetSnapshot {
    /// The widget.
    pub widget_id: Uuid,
    /// Its value; `null` where the aggregation has none (e.g. the maximum of an empty window)
    /// or before the first value.
    pub value: Option<f64>,
    /// The closed time the value is as of (epoch ms); `null` before the dataflow closed any time.
    pub as_of: Option<u64>,
    /// Whether `as_of` is older than twice the widget's refresh interval.
    pub stale: bool,
    /// Whether the Kafka consumer lags more than the widget's window, so the value misses
    /// events already produced (only sent when `true`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub incomplete: bool,
}

/// Latest values of every widget, and per-dashboard fan-out. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    clock: Arc<dyn Clock>,
    /// `true` once the server shuts down.
    shutdown: watch::Sender<bool>,
    /// Subscribers that lagged and were resynced with a snapshot.
    lags: AtomicU64,
    /// Live subscriptions (WebSocket streams).
    open_streams: watch::Sender<usize>,
    /// Push and aggregation latency, updates broadcast.
    metrics: HubMetrics,
}

/// Everything behind the lock.
struct State {
    started_ms: u64,
    /// The Kafka consumer's largest partition lag, milliseconds (see [`Hub::set_consumer_lag`]).
    lag_ms: u64,
    values: Values,
    dashboards: HashMap<Uuid, DashboardEntry>,
    /// The dashboard of each widget.
    owner: HashMap<Uuid, Uuid>,
}

impl State {
    fn moment(&self, now_ms: u64) -> Moment<'_> {
        Moment {
            values: &self.values,
            now_ms,
            started_ms: self.started_ms,
            lag_ms: self.lag_ms,
        }
    }

    /// The moment `now_ms`, and the dashboards to update with it.
    fn split(&mut self, now_ms: u64) -> (Moment<'_>, &mut HashMap<Uuid, DashboardEntry>) {
        let at = Moment {
            values: &self.values,
            now_ms,
            started_ms: self.started_ms,
            lag_ms: self.lag_ms,
        };
        (at, &mut self.dashboards)
    }
}

impl Hub {
    /// A hub fed by a dataflow of `workers` workers, on the system clock.
    pub fn new(workers: usize) -> Hub {
        Hub::with_clock(workers, Arc::new(SystemClock))
    }

    /// A hub fed by a dataflow of `workers` (at least one) workers, reading `clock`.
    pub fn with_clock(workers: usize, clock: Arc<dyn Clock>) -> Hub {
        let state = State {
            started_ms: clock.now_ms(),
            lag_ms: 0,
            values: Values::new(workers),
            dashboards: HashMap::new(),
            owner: HashMap::new(),
        };
        Hub {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                clock,
                shutdown: watch::Sender::new(false),
                lags: AtomicU64::new(0),
                open_streams: watch::Sender::new(0),
                metrics: HubMetrics::new(),
            }),
        }
    }

    /// Registers a new or changed dashboard (its widgets, refresh intervals, generations) and
    /// tells its WebSocket subscribers: a `dashboard` message, then a snapshot.
    pub fn set_dashboard(&self, dashboard: &Dashboard) {
        let now_ms = self.now_ms();
        let mut state = self.lock();
        let (at, dashboards) = state.split(now_ms);
        let removed = match dashboards.get_mut(&dashboard.id) {
            Some(entry) => entry.redefine(dashboard, &at),
            None => {
                dashboards.insert(dashboard.id, DashboardEntry::new(dashboard, &at));
                Vec::new()
            }
        };
        for id in removed {
            state.owner.remove(&id);
            state.values.forget(id);
        }
        for widget in &dashboard.widgets {
            state.owner.insert(widget.widget_id, dashboard.id);
        }
    }

    /// Forgets a deleted dashboard and tells its WebSocket subscribers (a `deleted` message),
    /// whose streams then end.
    pub fn remove_dashboard(&self, id: Uuid) {
        let mut state = self.lock();
        let Some(entry) = state.dashboards.remove(&id) else {
            return;
        };
        for widget in entry.widget_ids() {
            state.owner.remove(&widget);
            state.values.forget(widget);
        }
        entry.delete();
    }

    /// Takes a batch of value changes from a dataflow worker, and broadcasts the updates it
    /// makes due. Cost: the batch's updates plus the widgets they change; nothing per client.
    pub fn apply(&self, batch: SinkBatch) {
        let now_ms = self.now_ms();
        let mut guard = self.lock();
        let state = &mut *guard;
        let closed_before = state.values.closed();
        let changed = state.values.accept(batch);
        // Time 0 is the dataflow's start, not a closed time of any event.
        if let Some(closed) = state.values.closed()
            && closed > 0
            && Some(closed) != closed_before
        {
            self.shared.metrics.closed(now_ms.saturating_sub(closed));
        }
        if changed.is_empty() {
            return;
        }
        let mut widgets = HashSet::with_capacity(changed.len());
        let mut touched = Vec::new();
        for key in changed {
            if let Some(dashboard) = state.owner.get(&key.id)
                && let Some(entry) = state.dashboards.get_mut(dashboard)
            {
                entry.touch();
                widgets.insert(key.id);
                touched.push(*dashboard);
            }
        }
        touched.sort_unstable();
        touched.dedup();
        let (at, dashboards) = state.split(now_ms);
        let mut sent = 0;
        for dashboard in touched {
            if let Some(entry) = dashboards.get_mut(&dashboard) {
                sent += entry.flush(&at, Some(&widgets));
            }
        }
        self.shared.metrics.broadcast(sent);
    }

    /// Sends the updates the refresh interval held back, and staleness changes. Called by the
    /// ticker; public so tests (and callers driving time themselves) can call it.
    pub fn tick(&self) {
        let now_ms = self.now_ms();
        let mut state = self.lock();
        let (at, dashboards) = state.split(now_ms);
        let sent: usize = dashboards
            .values_mut()
            .map(|entry| entry.flush(&at, None))
            .sum();
        self.shared.metrics.broadcast(sent);
    }

    /// Follows a dataflow of `workers` workers (frontends learn the count from the values topic).
    pub fn set_workers(&self, workers: usize) {
        self.lock().values.set_workers(workers);
    }

    /// Records how far the Kafka consumer lags (its largest partition lag). Widgets with a
    /// shorter window are flagged `incomplete`; the flip is sent at the next flush.
    pub fn set_consumer_lag(&self, lag_ms: u64) {
        self.lock().lag_ms = lag_ms;
    }

    /// The current value of one widget of one dashboard.
    pub fn widget_snapshot(&self, dashboard: Uuid, widget: Uuid) -> Option<WidgetSnapshot> {
        let now_ms = self.now_ms();
        let state = self.lock();
        let entry = state.dashboards.get(&dashboard)?;
        entry.widget_snapshot(widget, &state.moment(now_ms))
    }

    /// Whether the hub knows the dashboard.
    pub fn contains_dashboard(&self, dashboard: Uuid) -> bool {
        self.lock().dashboards.contains_key(&dashboard)
    }

    /// How many dashboards the hub knows.
    pub fn dashboard_count(&self) -> usize {
        self.lock().dashboards.len()
    }

    /// The dataflow's closed time: the minimum over workers of their latest closed time, once
    /// every worker reported one.
    pub fn closed_time(&self) -> Option<u64> {
        self.lock().values.closed()
    }

    /// A client's stream of one dashboard: a snapshot, then updates. For an unknown dashboard
    /// the stream is one `deleted` message.
    pub fn subscribe(&self, dashboard: Uuid) -> Subscription {
        let start = self.start(dashboard, None);
        Subscription::new(self.clone(), dashboard, start)
    }

    /// Where a subscriber that has seen definition revision `seen` (re)starts.
    fn start(&self, dashboard: Uuid, seen: Option<u64>) -> Start {
        let now_ms = self.now_ms();
        let mut state = self.lock();
        let (at, dashboards) = state.split(now_ms);
        match dashboards.get_mut(&dashboard) {
            Some(entry) => entry.start(&at, seen),
            None => Start::Deleted(
                StreamMessage::Deleted {
                    dashboard_id: dashboard,
                }
                .encode(),
            ),
        }
    }

    fn now_ms(&self) -> u64 {
        self.shared.clock.now_ms()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic under the lock leaves consistent-enough state for a dashboard: keep serving.
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
