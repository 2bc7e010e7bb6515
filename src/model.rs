//! Dashboards and widgets: the records users create over the REST API, as stored and as sent.

use std::collections::BTreeMap;

use dataflow::widget::{WidgetKey, WidgetQuery};
use operators::registry::AggregationKind;
use operators::window_aggregate::WindowSpec;
use serde::Serialize;
use uuid::Uuid;

/// A widget: one aggregate of one metric over a sliding window, and how to show it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Widget {
    /// The widget's id, assigned by the server.
    pub widget_id: Uuid,
    /// The metric aggregated.
    pub metric_name: String,
    /// The aggregation.
    pub aggregation: AggregationKind,
    /// The window length in seconds, 1 up to the retention.
    pub window_seconds: u64,
    /// Updates are pushed at most once per this many seconds (at least 1).
    pub refresh_interval_seconds: u64,
    /// Only series carrying all these tags count.
    pub filter: BTreeMap<String, String>,
    /// Free-form display settings, stored and returned as given.
    pub display_config: serde_json::Value,
    /// Version of the widget's query; bumped whenever metric, aggregation, window or filter change.
    #[serde(skip)]
    pub generation: u64,
}

impl Widget {
    /// What the dataflow computes for this widget.
    pub fn query(&self) -> WidgetQuery {
        WidgetQuery {
            key: WidgetKey {
                id: self.widget_id,
                generation: self.generation,
            },
            metric: self.metric_name.clone(),
            filter: self
                .filter
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            spec: WindowSpec {
                aggregation: self.aggregation,
                window_ms: self.window_seconds * 1_000,
            },
        }
    }
}

/// A dashboard: a named set of widgets.
#[derive(Clone, Debug, PartialEq)]
pub struct Dashboard {
    /// The dashboard's id, assigned by the server.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its widgets, in the order they were added.
    pub widgets: Vec<Widget>,
    /// Creation time, epoch milliseconds.
    pub created_at: u64,
    /// Time of the last change, epoch milliseconds.
    pub updated_at: u64,
}

impl Serialize for Dashboard {
    /// `{"dashboard_id", "id" (the same, for clients that expect it), "name", "widgets",
    /// "created_at", "updated_at"}`.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Dashboard", 6)?;
        s.serialize_field("dashboard_id", &self.id)?;
        s.serialize_field("id", &self.id)?;
        s.serialize_field("name", &self.name)?;
        s.serialize_field("widgets", &self.widgets)?;
        s.serialize_field("created_at", &self.created_at)?;
        s.serialize_field("updated_at", &self.updated_at)?;
        s.end()
    }
}
