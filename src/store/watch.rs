//! Follows a store that other processes write to: their dashboard and widget changes reach
//! this process's hub (and so its WebSocket clients) and its dataflow.
//!
//! A [`StoreWatcher`] polls [`Store::revision`] (one row) every interval. When it moved, it
//! loads the dashboards and compares them with what this process's hub and dataflow were last
//! told, by this process's REST API or by the watcher itself, and tells them the difference, as
//! the API does for its own writes: `hub.set_dashboard` for a new or changed dashboard (only if
//! it really changed: that sends a `dashboard` message to its clients), `hub.remove_dashboard`
//! for a deleted one, and, given a [`WidgetControl`], `Upsert(widget.query())` for every widget
//! added or whose query (metric, aggregation, window, filter, generation) changed, `Remove` for
//! every widget gone. The hub goes first, so it knows a widget's generation before values for
//! it arrive.
//!
//! The API's own writes are not told twice: the store reports each write of this process as it
//! commits, and the watcher counts it as told. A dashboard this process wrote while the watcher
//! was loading is left for the next poll, when the API has surely told the hub, so the watcher
//! never overwrites a newer state with the older one it loaded. Upserting an unchanged query is
//! a no-op in the dataflow.
//!
//! Start one per process that serves dashboards from a shared store, after telling the hub and
//! the dataflow the dashboards it starts with and before serving the API:
//!
//! ```no_run
//! # async fn example(store: flowboard::store::Store, hub: flowboard::hub::Hub,
//! #     control: dataflow::pipeline::WidgetControl) -> Result<(), flowboard::store::StoreError> {
//! use flowboard::store::watch;
//!
//! let dashboards = store.list_dashboards().await?;
//! for dashboard in &dashboards {
//!     hub.set_dashboard(dashboard);
//! }
//! // ... start the dataflow with their widgets, then:
//! let watcher = watch::spawn(store, hub, Some(control), watch::DEFAULT_INTERVAL, &dashboards);
//! // It stops on `hub.shutdown()` (or `watcher.abort()`).
//! # Ok(()) }
//! ```

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use dataflow::pipeline::WidgetControl;
use dataflow::widget::{WidgetCommand, WidgetQuery};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::TryRecvError;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::{LocalChange, Store, StoreError};
use crate::hub::Hub;
use crate::model::Dashboard;

/// How often [`spawn`]'s watcher polls by default: a change made through one frontend reaches
/// the others within about this long.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// Spawns a [`StoreWatcher`] polling `store` every `interval` until [`Hub::shutdown`].
///
/// `initial` is what `hub` and the dataflow behind `control` were started with (the dashboards
/// loaded at startup); changes made since are applied at the first poll. Without a `control`
/// (a process without a dataflow) only the hub is kept up to date.
pub fn spawn(
    store: Store,
    hub: Hub,
    control: Option<WidgetControl>,
    interval: Duration,
    initial: &[Dashboard],
) -> JoinHandle<()> {
    let watcher = StoreWatcher::new(store, hub, control, initial);
    tokio::spawn(watcher.run(interval))
}

/// What one [`StoreWatcher::poll`] told the hub and the dataflow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Dashboards created or changed (`hub.set_dashboard`).
    pub dashboards_set: usize,
    /// Dashboards deleted (`hub.remove_dashboard`).
    pub dashboards_removed: usize,
    /// `WidgetCommand::Upsert`s sent.
    pub widgets_upserted: usize,
    /// `WidgetCommand::Remove`s sent.
    pub widgets_removed: usize,
}

impl Applied {
    /// Whether the poll changed nothing.
    pub fn is_empty(&self) -> bool {
        *self == Applied::default()
    }
}

/// Brings a hub and a dataflow up to date with a store other processes write to.
pub struct StoreWatcher {
    store: Store,
    hub: Hub,
    control: Option<WidgetControl>,
    /// This process's committed writes.
    local: broadcast::Receiver<LocalChange>,
    /// The revision read before the last load (`None` before the first).
    revision: Option<u64>,
    /// Every dashboard as the hub and the dataflow were last told it.
    told: HashMap<Uuid, Dashboard>,
    /// Dashboards this process wrote during the last load: compared again at the next poll.
    deferred: HashSet<Uuid>,
}

impl StoreWatcher {
    /// A watcher for a hub and dataflow that were told `initial`. It follows this process's
    /// writes through `store` (or any clone of it) from now on.
    pub fn new(
        store: Store,
        hub: Hub,
        control: Option<WidgetControl>,
        initial: &[Dashboard],
    ) -> StoreWatcher {
        StoreWatcher {
            local: store.local_changes(),
            store,
            hub,
            control,
            revision: None,
            told: initial.iter().map(|d| (d.id, d.clone())).collect(),
            deferred: HashSet::new(),
        }
    }

    /// Polls [`StoreWatcher::poll`] every `interval` until [`Hub::shutdown`]. Failures are
    /// logged (once until the store answers again) and retried at the next interval.
    pub async fn run(mut self, interval: Duration) {
        let hub = self.hub.clone();
        let shutdown = hub.wait_shutdown();
        tokio::pin!(shutdown);
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = ticks.tick() => {}
            }
            match self.poll().await {
                Ok(applied) => {
                    if failing {
                        tracing::info!("dashboard store answers again");
                        failing = false;
                    }
                    if !applied.is_empty() {
                        tracing::info!(
                            ?applied,
                            "applied dashboard changes made by another process"
                        );
                    }
                }
                Err(error) if !failing => {
                    tracing::warn!(%error, "cannot read the dashboard store; changes made through other processes wait until it answers");
                    failing = true;
                }
                Err(_) => {}
            }
        }
    }

    /// Reads the revision and, if it moved (or a dashboard was deferred), loads the store and
    /// tells the hub and the dataflow what changed.
    pub async fn poll(&mut self) -> Result<Applied, StoreError> {
        let revision = self.store.revision().await?;
        // Writes of ours committed so far are in what we load next, and already told.
        self.take_local();
        if self.revision == Some(revision) && self.deferred.is_empty() {
            return Ok(Applied::default());
        }
        let dashboards = self.store.list_dashboards().await?;
        // Ours that committed during the load: the API may not have told the hub yet, and what
        // we loaded may be older. Compare them next time.
        self.deferred = self.take_local();

        let mut applied = Applied::default();
        let current: HashSet<Uuid> = dashboards.iter().map(|d| d.id).collect();
        for dashboard in dashboards {
            if !self.deferred.contains(&dashboard.id) {
                self.set(dashboard, &mut applied);
            }
        }
        let gone: Vec<Uuid> = self
            .told
            .keys()
            .filter(|id| !current.contains(id) && !self.deferred.contains(id))
            .copied()
            .collect();
        for id in gone {
            self.remove(id, &mut applied);
        }
        self.revision = Some(revision);
        Ok(applied)
    }

    /// Counts this process's writes committed so far as told; returns the dashboards they
    /// touched.
    fn take_local(&mut self) -> HashSet<Uuid> {
        let mut touched = HashSet::new();
        loop {
            match self.local.try_recv() {
                Ok(LocalChange::Saved(dashboard)) => {
                    touched.insert(dashboard.id);
                    self.told.insert(dashboard.id, dashboard);
                }
                Ok(LocalChange::Deleted(id)) => {
                    touched.insert(id);
                    self.told.remove(&id);
                }
                // Some of our writes were missed: what they told may be told again, never wrongly.
                Err(TryRecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "store watcher fell behind this process's writes");
                }
                Err(TryRecvError::Empty | TryRecvError::Closed) => return touched,
            }
        }
    }

    /// Tells the hub and the dataflow about `dashboard` unless they know it as it is.
    fn set(&mut self, dashboard: Dashboard, applied: &mut Applied) {
        let before = self.told.get(&dashboard.id);
        if before == Some(&dashboard) {
            return;
        }
        let mut old: HashMap<Uuid, WidgetQuery> = before
            .map(|d| d.widgets.iter().map(|w| (w.widget_id, w.query())).collect())
            .unwrap_or_default();
        self.hub.set_dashboard(&dashboard);
        applied.dashboards_set += 1;
        for widget in &dashboard.widgets {
            let query = widget.query();
            if old.remove(&widget.widget_id).as_ref() != Some(&query) {
                self.send(WidgetCommand::Upsert(query), applied);
            }
        }
        for id in old.into_keys() {
            self.send(WidgetCommand::Remove(id), applied);
        }
        self.told.insert(dashboard.id, dashboard);
    }

    /// Tells the dataflow and the hub that a dashboard is gone.
    fn remove(&mut self, id: Uuid, applied: &mut Applied) {
        if let Some(dashboard) = self.told.remove(&id) {
            for widget in &dashboard.widgets {
                self.send(WidgetCommand::Remove(widget.widget_id), applied);
            }
        }
        self.hub.remove_dashboard(id);
        applied.dashboards_removed += 1;
    }

    fn send(&self, command: WidgetCommand, applied: &mut Applied) {
        let Some(control) = &self.control else {
            return;
        };
        match &command {
            WidgetCommand::Upsert(_) => applied.widgets_upserted += 1,
            WidgetCommand::Remove(_) => applied.widgets_removed += 1,
        }
        control.send(command);
    }
}
