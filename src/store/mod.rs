//! The dashboard store: dashboards and their widgets, kept in an embedded SQLite database.
//!
//! [`Store::open`] creates `flowboard.db` in the data directory (WAL journal, foreign keys on)
//! and applies the migrations in `migrations/`, which are embedded in the binary. The SQL is
//! kept portable to PostgreSQL: UUID strings as ids, `BIGINT` epoch-millisecond times, JSON as
//! `TEXT`, `$n` placeholders.
//!
//! Every write runs in one transaction and changes everything or nothing. Its first statement
//! writes (it touches the dashboard's `updated_at`), so concurrent writers queue on the
//! database lock instead of failing to upgrade a read lock. Reads of a dashboard and its widgets
//! are one query, so they never see half of a write.

mod rows;
mod write;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use uuid::Uuid;

use crate::model::{Dashboard, Widget};

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

/// Handle to the dashboard store. Cheap to clone (a connection pool).
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating it if needed) the store in `data_dir` and brings its schema up to date.
    pub async fn open(data_dir: &Path) -> Result<Store, StoreError> {
        tokio::fs::create_dir_all(data_dir)
            .await
            .map_err(|source| StoreError::DataDir {
                path: data_dir.to_path_buf(),
                source,
            })?;
        let options = SqliteConnectOptions::new()
            .filename(data_dir.join(DATABASE_FILE))
            .create_if_missing(true)
            // Readers do not block the writer and vice versa.
            .journal_mode(SqliteJournalMode::Wal)
            // ON DELETE CASCADE removes a dashboard's widgets with it.
            .foreign_keys(true)
            // A writer waits this long for another to finish before failing.
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Store { pool })
    }

    /// Checks that the database answers (for readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
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
}

/// The current time in epoch milliseconds.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
