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

/// The generation of a newly created widget.
pub const FIRST_GENERATION: u64 = 1;

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

/// A change to some fields of one widget; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WidgetUpdate {
    /// The widget changed.
    pub widget_id: Uuid,
    /// New metric.
    pub metric_name: Option<String>,
    /// New aggregation.
    pub aggregation: Option<AggregationKind>,
    /// New window length in seconds.
    pub window_seconds: Option<u64>,
    /// New refresh interval in seconds.
    pub refresh_interval_seconds: Option<u64>,
    /// New tag filter (replaces the old one as a whole).
    pub filter: Option<BTreeMap<String, String>>,
    /// New display settings (replace the old ones as a whole).
    pub display_config: Option<serde_json::Value>,
}

impl WidgetUpdate {
    /// Applies the change to `widget`, bumping its generation when its query (metric,
    /// aggregation, window or filter) ends up different. Returns whether it did.
    pub fn apply(&self, widget: &mut Widget) -> bool {
        let before = widget.query();
        if let Some(metric_name) = &self.metric_name {
            widget.metric_name.clone_from(metric_name);
        }
        if let Some(aggregation) = self.aggregation {
            widget.aggregation = aggregation;
        }
        if let Some(window_seconds) = self.window_seconds {
            widget.window_seconds = window_seconds;
        }
        if let Some(refresh) = self.refresh_interval_seconds {
            widget.refresh_interval_seconds = refresh;
        }
        if let Some(filter) = &self.filter {
            widget.filter.clone_from(filter);
        }
        if let Some(display_config) = &self.display_config {
            widget.display_config.clone_from(display_config);
        }
        let query_changed = widget.query() != before;
        if query_changed {
            widget.generation += 1;
        }
        query_changed
    }
}

/// A change to a dashboard's widgets, applied all at once or not at all.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WidgetPatch {
    /// New widgets, appended in this order (ids already assigned).
    pub add: Vec<Widget>,
    /// Changes to existing widgets.
    pub update: Vec<WidgetUpdate>,
    /// Ids of widgets to remove.
    pub remove: Vec<Uuid>,
}

impl WidgetPatch {
    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.update.is_empty() && self.remove.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn widget() -> Widget {
        Widget {
            widget_id: Uuid::new_v4(),
            metric_name: "cpu".into(),
            aggregation: AggregationKind::Sum,
            window_seconds: 60,
            refresh_interval_seconds: 1,
            filter: BTreeMap::new(),
            display_config: serde_json::json!({}),
            generation: FIRST_GENERATION,
        }
    }

    #[test]
    fn update_bumps_generation_only_when_the_query_changes() {
        let mut w = widget();
        let id = w.widget_id;
        let display = WidgetUpdate {
            widget_id: id,
            refresh_interval_seconds: Some(5),
            display_config: Some(serde_json::json!({"chart": "line"})),
            ..WidgetUpdate::default()
        };
        assert!(!display.apply(&mut w));
        assert_eq!((w.generation, w.refresh_interval_seconds), (1, 5));

        let same = WidgetUpdate {
            widget_id: id,
            metric_name: Some("cpu".into()),
            window_seconds: Some(60),
            ..WidgetUpdate::default()
        };
        assert!(!same.apply(&mut w));
        assert_eq!(w.generation, 1);

        let changes = [
            WidgetUpdate {
                metric_name: Some("mem".into()),
                ..WidgetUpdate::default()
            },
            WidgetUpdate {
                aggregation: Some(AggregationKind::Max),
                ..WidgetUpdate::default()
            },
            WidgetUpdate {
                window_seconds: Some(30),
                ..WidgetUpdate::default()
            },
            WidgetUpdate {
                filter: Some(BTreeMap::from([("host".into(), "a".into())])),
                ..WidgetUpdate::default()
            },
        ];
        for (i, change) in changes.iter().enumerate() {
            assert!(change.apply(&mut w));
            assert_eq!(w.generation, 2 + i as u64);
        }
    }
}
