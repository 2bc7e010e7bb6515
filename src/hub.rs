//! Latest widget values and their fan-out to WebSocket clients.
//!
//! (Interface only; implementation in progress.)

use serde::Serialize;
use uuid::Uuid;

use dataflow::sink::SinkBatch;

use crate::model::Dashboard;

/// One widget's current value, as the snapshot endpoint and snapshot messages report it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WidgetSnapshot {
    /// The widget.
    pub widget_id: Uuid,
    /// Its value; `null` for an empty window of avg/min/max or before the first value.
    pub value: Option<f64>,
    /// The closed time the value is as of (epoch ms); `null` before the dataflow closed any time.
    pub as_of: Option<u64>,
    /// Whether `as_of` is older than twice the widget's refresh interval.
    pub stale: bool,
}

/// Latest values of every widget, and per-dashboard fan-out. Cheap to clone.
#[derive(Clone)]
pub struct Hub;

impl Hub {
    /// A hub fed by a dataflow of `workers` workers.
    pub fn new(workers: usize) -> Hub {
        let _ = workers;
        Hub
    }

    /// Registers a new or changed dashboard (its widgets, refresh intervals, generations) and
    /// tells its WebSocket subscribers.
    pub fn set_dashboard(&self, dashboard: &Dashboard) {
        let _ = dashboard;
    }

    /// Forgets a deleted dashboard and tells its WebSocket subscribers.
    pub fn remove_dashboard(&self, id: Uuid) {
        let _ = id;
    }

    /// Takes a batch of value changes from a dataflow worker.
    pub fn apply(&self, batch: SinkBatch) {
        let _ = batch;
    }

    /// The current value of one widget of one dashboard.
    pub fn widget_snapshot(&self, dashboard: Uuid, widget: Uuid) -> Option<WidgetSnapshot> {
        let _ = (dashboard, widget);
        None
    }
}
