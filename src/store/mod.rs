//! The dashboard store: dashboards and their widgets, in an embedded SQLite database by default
//! or in a PostgreSQL database that several flowboard processes share.
//!
//! [`Store::open`] creates `flowboard.db` in the data directory (WAL journal, foreign keys on);
//! [`Store::connect`] takes a `postgres://` (or `sqlite:`) URL instead. Both go through sqlx's
//! `Any` driver, so there is one set of queries and one `migrations/` directory (embedded in the
//! binary), applied at open. The SQL is the common subset of the two: UUID strings as ids,
//! `BIGINT` epoch-millisecond times, JSON as `TEXT`, `$n` placeholders, `ON DELETE CASCADE`.
//!
//! Every write runs in one transaction and changes everything or nothing. Its first statement
//! bumps the store's revision (a one-row table), so writers queue on that row (PostgreSQL) or on
//! the database lock (SQLite) instead of failing to upgrade a read lock or deadlocking, and every
//! committed write has a revision of its own. [`Store::revision`] reads it: a cheap poll for
//! "did anything change", which [`watch`] uses to bring this process up to date with writes
//! made by others. Reads of a dashboard and its widgets are one query, so they never see half
//! of a write.

mod connect;
mod rows;
pub mod watch;
mod write;

#[cfg(test)]
pub(crate) mod test_postgres;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_watch;

use std::path::PathBuf;

use sqlx::AnyPool;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::model::{Dashboard, Widget};

pub use connect::{ConfiguredStoreError, DatabaseUrl, open_configured};
pub use write::PatchOutcome;

/// The database file inside the data directory.
pub const DATABASE_FILE: &str = "flowboard.db";

/// The schema, embedded from `migrations/` at compile time.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Errors of the dashboard store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No dashboard has this id.
    #[error("dashboard {0} not found")]
    DashboardNotFound(Uuid),
    /// The dashboard has no widget with this id.
    #[error("widget {widget} not found in dashboard {dashboard}")]
    WidgetNotFound {
        /// The dashboard searched.
        dashboard: Uuid,
        /// The widget id that is not in it.
        widget: Uuid,
    },
    /// The write collides with existing data (a duplicate id).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The data directory could not be created.
    #[error("creating the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why not.
        source: std::io::Error,
    },
    /// The database URL names no database flowboard can use.
    #[error("database URL {0}")]
    Url(String),
    /// The schema could not be brought up to date.
    #[error("migrating the dashboard database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database failed.
    #[error("dashboard database: {0}")]
    Database(sqlx::Error),
    /// A value does not fit its column (a bug: the API bounds every value it stores).
    #[error("value out of range for the dashboard database: {0}")]
    OutOfRange(String),
    /// A stored row does not decode (edited by hand, or written by a newer version).
    #[error("corrupt dashboard database: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.message().to_string())
            }
            _ => StoreError::Database(error),
        }
    }
}

/// Which database a store is kept in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file: one process (or several on one machine, with `--database-url sqlite:…`).
    Sqlite,
    /// A PostgreSQL database, shared by any number of processes.
    Postgres,
}

/// A write this process committed, as it is afterwards: what its REST API has told its own hub
/// and dataflow, so [`watch::StoreWatcher`] need not tell them again.
#[derive(Clone, Debug)]
pub(crate) enum LocalChange {
    /// The dashboard was created or changed, and now is this.
    Saved(Dashboard),
    /// The dashboard was deleted.
    Deleted(Uuid),
}

/// Local writes a watcher may fall behind on before it forgets which writes were local (it then
/// reloads the store and may repeat a `dashboard` message: never a wrong state).
const LOCAL_CHANGES_CAPACITY: usize = 1024;

/// Handle to the dashboard store. Cheap to clone (a connection pool).
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Every committed write of this process (of any clone of this handle), for watchers.
    /// Sending with no watcher subscribed costs nothing.
    local: broadcast::Sender<LocalChange>,
}

impl Store {
    fn with_pool(pool: AnyPool, backend: Backend) -> Store {
        Store {
            pool,
            backend,
            local: broadcast::Sender::new(LOCAL_CHANGES_CAPACITY),
        }
    }

    /// The database the store is kept in.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks that the database answers (for readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The store's revision: bumped by every committed write, by any process. A change means
    /// some dashboard or widget changed since the revision was last read.
    pub async fn revision(&self) -> Result<u64, StoreError> {
        let revision: i64 = sqlx::query_scalar("SELECT revision FROM store_revision WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        u64::try_from(revision)
            .map_err(|_| StoreError::Corrupt(format!("the store revision is negative: {revision}")))
    }

    /// Every dashboard with its widgets, oldest first.
    pub async fn list_dashboards(&self) -> Result<Vec<Dashboard>, StoreError> {
        rows::load_dashboards(&self.pool, None).await
    }

    /// One dashboard with its widgets.
    pub async fn get_dashboard(&self, id: Uuid) -> Result<Dashboard, StoreError> {
        rows::load_dashboards(&self.pool, Some(id))
            .await?
            .pop()
            .ok_or(StoreError::DashboardNotFound(id))
    }

    /// One widget of one dashboard.
    pub async fn get_widget(&self, dashboard: Uuid, widget: Uuid) -> Result<Widget, StoreError> {
        self.get_dashboard(dashboard)
            .await?
            .widgets
            .into_iter()
            .find(|w| w.widget_id == widget)
            .ok_or(StoreError::WidgetNotFound { dashboard, widget })
    }

    /// Every widget of every dashboard: the widget set the dataflow starts with.
    pub async fn all_widgets(&self) -> Result<Vec<Widget>, StoreError> {
        Ok(self
            .list_dashboards()
            .await?
            .into_iter()
            .flat_map(|d| d.widgets)
            .collect())
    }

    /// Follows this process's own committed writes (see [`LocalChange`]).
    pub(crate) fn local_changes(&self) -> broadcast::Receiver<LocalChange> {
        self.local.subscribe()
    }
}

/// The current time in epoch milliseconds.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
