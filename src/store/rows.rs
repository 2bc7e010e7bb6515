//! Rows ↔ records: reading dashboards with their widgets, and the column conversions.

use sqlx::any::AnyRow;
use sqlx::{Any, Row};
use uuid::Uuid;

use operators::registry::AggregationKind;

use super::StoreError;
use crate::model::{Dashboard, Widget};

/// Every dashboard column and every widget column, one row per widget (or one row with NULL
/// widget columns for a dashboard without widgets).
const SELECT_DASHBOARDS: &str = "SELECT d.id, d.name, d.created_at, d.updated_at, \
     w.widget_id, w.metric_name, w.aggregation, w.window_seconds, \
     w.refresh_interval_seconds, w.filter, w.display_config, w.generation \
     FROM dashboards d LEFT JOIN widgets w ON w.dashboard_id = d.id";

const ORDER: &str = " ORDER BY d.created_at, d.id, w.position";

/// Dashboards with their widgets (in position order): all of them, or the one with `id`.
pub(super) async fn load_dashboards<'e, E>(
    executor: E,
    id: Option<Uuid>,
) -> Result<Vec<Dashboard>, StoreError>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let rows = match id {
        None => {
            sqlx::query(&format!("{SELECT_DASHBOARDS}{ORDER}"))
                .fetch_all(executor)
                .await?
        }
        Some(id) => {
            sqlx::query(&format!("{SELECT_DASHBOARDS} WHERE d.id = $1{ORDER}"))
                .bind(id.to_string())
                .fetch_all(executor)
                .await?
        }
    };
    let mut dashboards = Vec::new();
    let mut current: Option<Dashboard> = None;
    for row in &rows {
        let id = uuid(row, "id")?;
        let mut dashboard = match current.take() {
            Some(dashboard) if dashboard.id == id => dashboard,
            previous => {
                dashboards.extend(previous);
                Dashboard {
                    id,
                    name: row.try_get("name")?,
                    widgets: Vec::new(),
                    created_at: unsigned(row, "created_at")?,
                    updated_at: unsigned(row, "updated_at")?,
                }
            }
        };
        if row.try_get::<Option<String>, _>("widget_id")?.is_some() {
            dashboard.widgets.push(widget(row)?);
        }
        current = Some(dashboard);
    }
    dashboards.extend(current);
    Ok(dashboards)
}

/// The widget in a row of [`SELECT_DASHBOARDS`] whose widget columns are not NULL.
fn widget(row: &AnyRow) -> Result<Widget, StoreError> {
    let widget_id = uuid(row, "widget_id")?;
    let corrupt = |what: &str, error: &dyn std::fmt::Display| {
        StoreError::Corrupt(format!("widget {widget_id}: {what}: {error}"))
    };
    let aggregation: String = row.try_get("aggregation")?;
    let filter: String = row.try_get("filter")?;
    let display_config: String = row.try_get("display_config")?;
    Ok(Widget {
        widget_id,
        metric_name: row.try_get("metric_name")?,
        aggregation: AggregationKind::from_name(&aggregation)
            .ok_or_else(|| corrupt("aggregation", &format!("unknown name {aggregation:?}")))?,
        window_seconds: unsigned(row, "window_seconds")?,
        refresh_interval_seconds: unsigned(row, "refresh_interval_seconds")?,
        filter: serde_json::from_str(&filter).map_err(|e| corrupt("filter", &e))?,
        display_config: serde_json::from_str(&display_config)
            .map_err(|e| corrupt("display_config", &e))?,
        generation: unsigned(row, "generation")?,
    })
}

fn uuid(row: &AnyRow, column: &str) -> Result<Uuid, StoreError> {
    let text: String = row.try_get(column)?;
    Uuid::parse_str(&text)
        .map_err(|e| StoreError::Corrupt(format!("{column} {text:?} is not a UUID: {e}")))
}

fn unsigned(row: &AnyRow, column: &str) -> Result<u64, StoreError> {
    let value: i64 = row.try_get(column)?;
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{column} is negative: {value}")))
}

/// A count or time as a `BIGINT`.
pub(super) fn bigint(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value)
        .map_err(|_| StoreError::OutOfRange(format!("{what} {value} is larger than a BIGINT")))
}

/// A value as JSON text.
pub(super) fn json_text<T: serde::Serialize>(value: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Corrupt(format!("{what} does not serialize: {e}")))
}
