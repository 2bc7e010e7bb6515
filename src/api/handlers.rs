//! The handlers: validate, write to the store, tell the hub and the dataflow, answer.

use dataflow::widget::WidgetCommand;
use operators::registry::AggregationKind;
use uuid::Uuid;
use warp::Reply;
use warp::http::StatusCode;
use warp::reply::{Response, json, with_status};

use super::{Api, validate};
use crate::error::ApiError;
use crate::hub::WidgetSnapshot;
use crate::model::{Dashboard, Widget, WidgetPatch};
use crate::store::StoreError;

impl Api {
    pub(super) async fn create(&self, body: &[u8]) -> Response {
        answer(self.try_create(body).await, StatusCode::CREATED)
    }

    async fn try_create(&self, body: &[u8]) -> Result<Dashboard, ApiError> {
        let new = validate::new_dashboard(body, &self.rules)?;
        let _write = self.write_lock.lock().await;
        let dashboards = self.hub.dashboard_count();
        if dashboards >= self.max_dashboards {
            return Err(ApiError::LimitReached {
                field: None,
                message: format!(
                    "the server has {dashboards} dashboards, its limit; delete one first"
                ),
            });
        }
        let dashboard = self.store.create_dashboard(&new.name, &new.widgets).await?;
        self.publish(&dashboard, &dashboard.widgets, &[]);
        Ok(dashboard)
    }

    pub(super) async fn list(&self) -> Response {
        answer(self.store.list_dashboards().await, StatusCode::OK)
    }

    pub(super) async fn get(&self, id: Uuid) -> Response {
        answer(self.store.get_dashboard(id).await, StatusCode::OK)
    }

    pub(super) async fn rename(&self, id: Uuid, body: &[u8]) -> Response {
        answer(self.try_rename(id, body).await, StatusCode::OK)
    }

    async fn try_rename(&self, id: Uuid, body: &[u8]) -> Result<Dashboard, ApiError> {
        let name = validate::rename(body)?;
        let _write = self.write_lock.lock().await;
        let dashboard = self.store.rename_dashboard(id, &name).await?;
        self.publish(&dashboard, &[], &[]);
        Ok(dashboard)
    }

    pub(super) async fn patch_widgets(&self, id: Uuid, body: &[u8]) -> Response {
        answer(self.try_patch_widgets(id, body).await, StatusCode::OK)
    }

    async fn try_patch_widgets(&self, id: Uuid, body: &[u8]) -> Result<Dashboard, ApiError> {
        let patch = validate::widget_patch(body, &self.rules)?;
        let _write = self.write_lock.lock().await;
        if !patch.add.is_empty() {
            let current = self.store.get_dashboard(id).await?;
            let removed = current
                .widgets
                .iter()
                .filter(|w| patch.remove.contains(&w.widget_id))
                .count();
            let after = current.widgets.len() + patch.add.len() - removed;
            // A dashboard over a lowered limit may still shrink or stay as it is.
            if after > self.rules.widgets_per_dashboard && after > current.widgets.len() {
                return Err(validate::too_many_widgets("add", after, &self.rules));
            }
        }
        let outcome = self
            .store
            .patch_widgets(id, &patch)
            .await
            .map_err(|error| name_missing_widget(error, &patch))?;
        if !patch.is_empty() {
            self.publish(&outcome.dashboard, &outcome.upserted, &outcome.removed);
        }
        Ok(outcome.dashboard)
    }

    pub(super) async fn delete(&self, id: Uuid) -> Response {
        match self.try_delete(id).await {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(error) => error.response(),
        }
    }

    async fn try_delete(&self, id: Uuid) -> Result<(), ApiError> {
        let _write = self.write_lock.lock().await;
        let deleted = self.store.delete_dashboard(id).await?;
        for widget in &deleted.widgets {
            self.widgets.send(WidgetCommand::Remove(widget.widget_id));
        }
        self.hub.remove_dashboard(id);
        Ok(())
    }

    pub(super) async fn snapshot(&self, dashboard: Uuid, widget: Uuid) -> Response {
        let known = self.store.get_widget(dashboard, widget).await;
        let snapshot = known.map(|_| {
            // Known to the store but (not yet) to the hub: no value to report.
            self.hub
                .widget_snapshot(dashboard, widget)
                .unwrap_or(WidgetSnapshot {
                    widget_id: widget,
                    value: None,
                    as_of: None,
                    stale: true,
                    incomplete: false,
                })
        });
        answer(snapshot, StatusCode::OK)
    }

    /// Tells the hub about the dashboard as it now is, then the dataflow about the widgets
    /// whose queries are new (`upserted`) or gone (`removed`). The hub goes first, so it knows
    /// a widget's new generation before values for it arrive.
    fn publish(&self, dashboard: &Dashboard, upserted: &[Widget], removed: &[Uuid]) {
        self.hub.set_dashboard(dashboard);
        for widget in upserted {
            self.widgets.send(WidgetCommand::Upsert(widget.query()));
        }
        for &id in removed {
            self.widgets.send(WidgetCommand::Remove(id));
        }
    }
}

/// `GET /aggregations`: the registered aggregations, for the web UI.
pub(super) fn aggregations() -> Response {
    let names: Vec<&str> = AggregationKind::ALL.iter().map(|k| k.name()).collect();
    json(&serde_json::json!({ "aggregations": names })).into_response()
}

fn answer<T: serde::Serialize>(
    result: Result<T, impl Into<ApiError>>,
    status: StatusCode,
) -> Response {
    match result {
        Ok(value) => with_status(json(&value), status).into_response(),
        Err(error) => error.into().response(),
    }
}

/// A widget the patch names that is not in the dashboard, reported by the patch field
/// naming it (`update[1].widget_id`, `remove[0]`).
fn name_missing_widget(error: StoreError, patch: &WidgetPatch) -> ApiError {
    let StoreError::WidgetNotFound { dashboard, widget } = error else {
        return error.into();
    };
    let field = patch
        .update
        .iter()
        .position(|u| u.widget_id == widget)
        .map(|i| format!("update[{i}].widget_id"))
        .or_else(|| {
            let i = patch.remove.iter().position(|&id| id == widget)?;
            Some(format!("remove[{i}]"))
        })
        .unwrap_or_else(|| "widget_id".into());
    let message = format!("{field}: widget {widget} is not in dashboard {dashboard}");
    ApiError::not_found(field, message)
}
