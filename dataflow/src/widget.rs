//! Widgets as the dataflow sees them: what to aggregate (metric, tag filter, window spec),
//! keyed by widget id and generation, and the commands that change the widget set.

use operators::window_aggregate::WindowSpec;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::series::TagFilter;

/// Identifies one version of a widget. The generation changes whenever the widget's query
/// changes, so values computed for an earlier version are never taken for the current one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WidgetKey {
    /// The widget's id.
    pub id: Uuid,
    /// The version of the widget's query.
    pub generation: u64,
}

/// What one widget aggregates.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WidgetQuery {
    /// Which widget, and which version of it.
    pub key: WidgetKey,
    /// The metric aggregated.
    pub metric: String,
    /// Only series with all these tags count.
    pub filter: TagFilter,
    /// The aggregation and window length.
    pub spec: WindowSpec,
}

/// A change to the set of widgets the dataflow maintains.
#[derive(Clone, Debug, PartialEq)]
pub enum WidgetCommand {
    /// Add a widget, or replace the query of a widget with the same id.
    Upsert(WidgetQuery),
    /// Stop maintaining a widget.
    Remove(Uuid),
}
