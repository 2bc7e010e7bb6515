//! Test fixtures: dashboards, sink batches and a hub on a manual clock.

use std::collections::BTreeMap;
use std::sync::Arc;

use dataflow::sink::{SinkBatch, WidgetUpdate};
use dataflow::widget::WidgetKey;
use operators::registry::AggregationKind;
use operators::window_aggregate::WindowChange;
use serde_json::Value;
use uuid::Uuid;

use super::{Hub, ManualClock, Subscription};
use crate::model::{Dashboard, Widget};

/// The clock's start: some time in 2026, epoch milliseconds.
pub(crate) const T0: u64 = 1_796_000_000_000;

/// A hub of `workers` workers on a manual clock showing [`T0`].
pub(crate) fn hub(workers: usize) -> (Hub, ManualClock) {
    let clock = ManualClock::new(T0);
    (Hub::with_clock(workers, Arc::new(clock.clone())), clock)
}

/// A sum widget refreshed every `refresh_seconds`, at generation 1.
pub(crate) fn widget(refresh_seconds: u64) -> Widget {
    Widget {
        widget_id: Uuid::new_v4(),
        metric_name: "api.requests".to_string(),
        aggregation: AggregationKind::Sum,
        window_seconds: 60,
        refresh_interval_seconds: refresh_seconds,
        filter: BTreeMap::new(),
        display_config: serde_json::json!({"chart": "line"}),
        generation: 1,
    }
}

/// A dashboard of `widgets`.
pub(crate) fn dashboard(widgets: Vec<Widget>) -> Dashboard {
    Dashboard {
        id: Uuid::new_v4(),
        name: "ops".to_string(),
        widgets,
        created_at: T0,
        updated_at: T0,
    }
}

/// A value of `widget` (its current generation) as of `as_of`.
pub(crate) fn value(widget: &Widget, value: f64, as_of: u64) -> WidgetUpdate {
    WidgetUpdate {
        widget: WidgetKey {
            id: widget.widget_id,
            generation: widget.generation,
        },
        change: WindowChange::Value(Some(value)),
        as_of,
    }
}

/// A batch from `worker`, closed through `closed_through`.
pub(crate) fn batch(worker: usize, closed_through: u64, updates: Vec<WidgetUpdate>) -> SinkBatch {
    SinkBatch {
        worker,
        closed_through,
        updates,
    }
}

/// Parses a message.
pub(crate) fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|err| panic!("bad JSON {text:?}: {err}"))
}

/// Every message ready on `subscription`, parsed.
pub(crate) fn drain(subscription: &mut Subscription) -> Vec<Value> {
    std::iter::from_fn(|| subscription.try_next())
        .map(|text| parse(&text))
        .collect()
}

/// The `(value, stale)` of the update messages among `messages`, for one widget.
pub(crate) fn updates_of(messages: &[Value], widget: &Widget) -> Vec<(Value, bool)> {
    messages
        .iter()
        .filter(|m| m["type"] == "update" && m["widget_id"] == widget.widget_id.to_string())
        .map(|m| (m["value"].clone(), m["stale"] == true))
        .collect()
}
