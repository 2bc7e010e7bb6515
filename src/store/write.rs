//! Writes: create, rename, patch widgets, delete. One transaction each, all or nothing, whose
//! first statement bumps the store's revision.

use sqlx::{Any, AnyConnection, Transaction};
use uuid::Uuid;

use super::rows::{bigint, json_text, load_dashboards};
use super::{LocalChange, Store, StoreError, now_ms};
use crate::model::{Dashboard, Widget, WidgetPatch};

/// What [`Store::patch_widgets`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct PatchOutcome {
    /// The dashboard after the patch.
    pub dashboard: Dashboard,
    /// Widgets added or whose query (and so generation) changed, as they are now: the
    /// dataflow has to (re)compute them.
    pub upserted: Vec<Widget>,
    /// Ids of the widgets removed.
    pub removed: Vec<Uuid>,
}

impl Store {
    /// Creates a dashboard with `widgets` (ids and generations already assigned).
    pub async fn create_dashboard(
        &self,
        name: &str,
        widgets: &[Widget],
    ) -> Result<Dashboard, StoreError> {
        let now = now_ms();
        let id = Uuid::new_v4();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO dashboards (id, name, created_at, updated_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id.to_string())
        .bind(name)
        .bind(bigint(now, "created_at")?)
        .bind(bigint(now, "updated_at")?)
        .execute(&mut *tx)
        .await?;
        for (position, widget) in (0..).zip(widgets) {
            insert_widget(&mut tx, id, position, widget).await?;
        }
        let dashboard = load_one(&mut tx, id).await?;
        tx.commit().await?;
        self.committed(LocalChange::Saved(dashboard.clone()));
        Ok(dashboard)
    }

    /// Renames a dashboard.
    pub async fn rename_dashboard(&self, id: Uuid, name: &str) -> Result<Dashboard, StoreError> {
        let mut tx = self.begin_write().await?;
        touch(&mut tx, id).await?;
        sqlx::query("UPDATE dashboards SET name = $1 WHERE id = $2")
            .bind(name)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        let dashboard = load_one(&mut tx, id).await?;
        tx.commit().await?;
        self.committed(LocalChange::Saved(dashboard.clone()));
        Ok(dashboard)
    }

    /// Removes, updates and adds widgets of a dashboard, in that order. An update bumps the
    /// widget's generation when its query changes. Fails without changing anything if the
    /// dashboard or any widget to update or remove is not there.
    pub async fn patch_widgets(
        &self,
        id: Uuid,
        patch: &WidgetPatch,
    ) -> Result<PatchOutcome, StoreError> {
        if patch.is_empty() {
            return Ok(PatchOutcome {
                dashboard: self.get_dashboard(id).await?,
                upserted: Vec::new(),
                removed: Vec::new(),
            });
        }
        let mut tx = self.begin_write().await?;
        touch(&mut tx, id).await?;
        let mut widgets = load_one(&mut tx, id).await?.widgets;
        let not_found = |widget| StoreError::WidgetNotFound {
            dashboard: id,
            widget,
        };

        for &widget_id in &patch.remove {
            let at = widgets
                .iter()
                .position(|w| w.widget_id == widget_id)
                .ok_or_else(|| not_found(widget_id))?;
            widgets.remove(at);
            sqlx::query("DELETE FROM widgets WHERE widget_id = $1")
                .bind(widget_id.to_string())
                .execute(&mut *tx)
                .await?;
        }

        let mut upserted = Vec::new();
        for update in &patch.update {
            let widget = widgets
                .iter_mut()
                .find(|w| w.widget_id == update.widget_id)
                .ok_or_else(|| not_found(update.widget_id))?;
            if update.apply(widget) {
                upserted.push(widget.clone());
            }
            update_widget(&mut tx, widget).await?;
        }

        let last: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(position), -1) FROM widgets WHERE dashboard_id = $1",
        )
        .bind(id.to_string())
        .fetch_one(&mut *tx)
        .await?;
        for (position, widget) in (last + 1..).zip(&patch.add) {
            insert_widget(&mut tx, id, position, widget).await?;
            upserted.push(widget.clone());
        }

        let dashboard = load_one(&mut tx, id).await?;
        tx.commit().await?;
        self.committed(LocalChange::Saved(dashboard.clone()));
        Ok(PatchOutcome {
            dashboard,
            upserted,
            removed: patch.remove.clone(),
        })
    }

    /// Deletes a dashboard and its widgets; returns what was deleted.
    pub async fn delete_dashboard(&self, id: Uuid) -> Result<Dashboard, StoreError> {
        let mut tx = self.begin_write().await?;
        touch(&mut tx, id).await?;
        let dashboard = load_one(&mut tx, id).await?;
        // The widgets go with it (ON DELETE CASCADE).
        sqlx::query("DELETE FROM dashboards WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.committed(LocalChange::Deleted(id));
        Ok(dashboard)
    }

    /// Begins a write: a transaction whose first statement bumps the store's revision. Being a
    /// write, it takes SQLite's database lock at once (a transaction that read first could fail
    /// to upgrade its lock); on PostgreSQL it locks the revision row, so writers run one after
    /// another, each seeing every write committed before it, and never deadlock.
    async fn begin_write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE store_revision SET revision = revision + 1 WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// Tells this process's watchers about a committed write (see [`LocalChange`]).
    fn committed(&self, change: LocalChange) {
        // Fails only when no watcher listens; then nobody needs to know.
        let _ = self.local.send(change);
    }
}

/// Sets the dashboard's `updated_at` to now; fails if there is no such dashboard.
async fn touch(tx: &mut AnyConnection, id: Uuid) -> Result<(), StoreError> {
    let done = sqlx::query("UPDATE dashboards SET updated_at = $1 WHERE id = $2")
        .bind(bigint(now_ms(), "updated_at")?)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::DashboardNotFound(id));
    }
    Ok(())
}

async fn load_one(tx: &mut AnyConnection, id: Uuid) -> Result<Dashboard, StoreError> {
    load_dashboards(&mut *tx, Some(id))
        .await?
        .pop()
        .ok_or(StoreError::DashboardNotFound(id))
}

async fn insert_widget(
    tx: &mut AnyConnection,
    dashboard: Uuid,
    position: i64,
    widget: &Widget,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO widgets (widget_id, dashboard_id, position, metric_name, aggregation, \
         window_seconds, refresh_interval_seconds, filter, display_config, generation) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(widget.widget_id.to_string())
    .bind(dashboard.to_string())
    .bind(position)
    .bind(&widget.metric_name)
    .bind(widget.aggregation.name())
    .bind(bigint(widget.window_seconds, "window_seconds")?)
    .bind(bigint(
        widget.refresh_interval_seconds,
        "refresh_interval_seconds",
    )?)
    .bind(json_text(&widget.filter, "filter")?)
    .bind(json_text(&widget.display_config, "display_config")?)
    .bind(bigint(widget.generation, "generation")?)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn update_widget(tx: &mut AnyConnection, widget: &Widget) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE widgets SET metric_name = $1, aggregation = $2, window_seconds = $3, \
         refresh_interval_seconds = $4, filter = $5, display_config = $6, generation = $7 \
         WHERE widget_id = $8",
    )
    .bind(&widget.metric_name)
    .bind(widget.aggregation.name())
    .bind(bigint(widget.window_seconds, "window_seconds")?)
    .bind(bigint(
        widget.refresh_interval_seconds,
        "refresh_interval_seconds",
    )?)
    .bind(json_text(&widget.filter, "filter")?)
    .bind(json_text(&widget.display_config, "display_config")?)
    .bind(bigint(widget.generation, "generation")?)
    .bind(widget.widget_id.to_string())
    .execute(&mut *tx)
    .await?;
    Ok(())
}
