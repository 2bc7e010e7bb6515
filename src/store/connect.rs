//! Opening a store: the embedded SQLite file in the data directory, or a database URL
//! (`postgres://…`, `sqlite:…`), with the migrations applied either way.
//!
//! Both databases are reached through sqlx's `Any` driver, which connects from a URL. SQLite's
//! settings that a URL cannot carry keep sqlx's defaults (foreign keys on, so `ON DELETE
//! CASCADE` works; a 5 s busy timeout, so writers queue), except the WAL journal, which is set
//! once at open and then stays with the database file.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyPool, ConnectOptions};

use super::{Backend, DATABASE_FILE, MIGRATOR, Store, StoreError};

/// Connections per process to a SQLite file (one writer at a time anyway).
const SQLITE_CONNECTIONS: u32 = 4;
/// Connections per process to PostgreSQL: the REST handlers, `/readyz` and the watcher.
const POSTGRES_CONNECTIONS: u32 = 8;
/// How long a query waits for a free connection (or a new one) before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

impl Store {
    /// Opens (creating it if needed) the store in `data_dir` and brings its schema up to date.
    pub async fn open(data_dir: &Path) -> Result<Store, StoreError> {
        tokio::fs::create_dir_all(data_dir)
            .await
            .map_err(|source| StoreError::DataDir {
                path: data_dir.to_path_buf(),
                source,
            })?;
        let options = SqliteConnectOptions::new().filename(data_dir.join(DATABASE_FILE));
        open_sqlite(options).await
    }

    /// Connects to the store at `url` and brings its schema up to date: `postgres://` or
    /// `postgresql://` for PostgreSQL (any libpq-style URL sqlx understands, e.g.
    /// `postgres://user:password@host:5432/flowboard` or, for a Unix socket,
    /// `postgres://user@localhost/flowboard?host=/run/postgresql`), or `sqlite:PATH` for a
    /// SQLite file (created if missing). Connections to PostgreSQL are not encrypted: keep it
    /// on a private network or a Unix socket.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        match backend_of(url)? {
            Backend::Postgres => {
                sqlx::any::install_default_drivers();
                let options = AnyConnectOptions::from_str(url)
                    .map_err(|e| StoreError::Url(format!("{}: {e}", DatabaseUrl(url.into()))))?;
                let pool = AnyPoolOptions::new()
                    .max_connections(POSTGRES_CONNECTIONS)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with(options)
                    .await?;
                migrate(pool, Backend::Postgres).await
            }
            Backend::Sqlite => {
                let options = SqliteConnectOptions::from_str(url)
                    .map_err(|e| StoreError::Url(format!("{}: {e}", DatabaseUrl(url.into()))))?;
                open_sqlite(options).await
            }
        }
    }
}

/// The store a server is configured with: `database_url` when given (`--database-url`), else
/// the embedded SQLite file in `data_dir`. Logs which, and says which in its error.
pub async fn open_configured(
    database_url: Option<&DatabaseUrl>,
    data_dir: &Path,
) -> Result<Store, ConfiguredStoreError> {
    let location = match database_url {
        Some(url) => format!("at {url}"),
        None => format!("in {}", data_dir.join(DATABASE_FILE).display()),
    };
    let opened = match database_url {
        Some(url) => Store::connect(url.expose()).await,
        None => Store::open(data_dir).await,
    };
    match opened {
        Ok(store) => {
            tracing::info!("dashboard store {location}");
            Ok(store)
        }
        Err(source) => Err(ConfiguredStoreError { location, source }),
    }
}

/// The configured store could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("opening the dashboard store {location}: {source}")]
pub struct ConfiguredStoreError {
    /// `at <url without password>` or `in <file>`.
    pub location: String,
    /// Why not.
    #[source]
    pub source: StoreError,
}

/// Opens a SQLite file through the `Any` driver: its settings become a URL.
async fn open_sqlite(options: SqliteConnectOptions) -> Result<Store, StoreError> {
    sqlx::any::install_default_drivers();
    // The URL must not depend on the working directory of whoever reads it.
    let file = std::path::absolute(options.get_filename())
        .map_err(|e| StoreError::Url(format!("sqlite file: {e}")))?;
    let url = options
        .filename(file)
        .create_if_missing(true)
        .to_url_lossy();
    let pool = AnyPoolOptions::new()
        .max_connections(SQLITE_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(AnyConnectOptions::from_url(&url)?)
        .await?;
    // Readers do not block the writer and vice versa. Kept in the file once set. Switching
    // needs the file to itself, and SQLite answers "database is locked" at once, without its
    // busy timeout, while another process opening the same fresh file holds it (processes of
    // a cluster starting together): try again, as the migrations do.
    retrying_sqlite("switching the SQLite store to WAL", is_busy, || {
        sqlx::query("PRAGMA journal_mode = WAL").execute(&pool)
    })
    .await?;
    migrate(pool, Backend::Sqlite).await
}

/// SQLite's `SQLITE_BUSY` (5) or `SQLITE_LOCKED` (6), or one of their extended codes (the low
/// byte is the primary code): another connection holds the file.
fn is_busy(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| matches!(code & 0xff, 5 | 6))
}

async fn migrate(pool: AnyPool, backend: Backend) -> Result<Store, StoreError> {
    // On PostgreSQL sqlx takes an advisory lock, so processes starting together migrate once.
    // SQLite has no such lock: processes opening one fresh file together (a cluster on one
    // machine) can both apply a migration; the loser's transaction rolls back whole, and trying
    // again finds it applied.
    let sqlite = backend == Backend::Sqlite;
    retrying_sqlite(
        "migrating the SQLite store",
        |_| sqlite,
        || MIGRATOR.run(&pool),
    )
    .await?;
    Ok(Store::with_pool(pool, backend))
}

/// How often a SQLite step that met another process opening the same file is tried again.
const SQLITE_ATTEMPTS: u32 = 8;

/// Runs `step`, and again (up to [`SQLITE_ATTEMPTS`] more times, waiting a little longer
/// each time) while it fails with an error `retry` accepts: the back-off of processes that
/// open one fresh SQLite file together.
async fn retrying_sqlite<T, E, F>(
    what: &str,
    retry: impl Fn(&E) -> bool,
    mut step: impl FnMut() -> F,
) -> Result<T, E>
where
    E: std::fmt::Display,
    F: std::future::Future<Output = Result<T, E>>,
{
    let mut attempt = 0;
    loop {
        match step().await {
            Err(error) if retry(&error) && attempt < SQLITE_ATTEMPTS => {
                attempt += 1;
                tracing::debug!(%error, attempt, "{what}: trying again");
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
            }
            done => return done,
        }
    }
}

fn backend_of(url: &str) -> Result<Backend, StoreError> {
    let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
    match scheme.to_ascii_lowercase().as_str() {
        "postgres" | "postgresql" => Ok(Backend::Postgres),
        "sqlite" => Ok(Backend::Sqlite),
        _ => Err(StoreError::Url(format!(
            "{}: use postgres://user:password@host/database (or sqlite:PATH)",
            DatabaseUrl(url.into())
        ))),
    }
}

/// A database URL from the command line. Its password never shows: `Debug` and `Display` print
/// `postgres://user:***@host/db`.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The URL with its password, to connect with.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The database it names.
    pub fn backend(&self) -> Backend {
        backend_of(&self.0).unwrap_or(Backend::Postgres)
    }
}

impl FromStr for DatabaseUrl {
    type Err = String;

    /// Accepts `postgres://`, `postgresql://` and `sqlite:` URLs.
    fn from_str(url: &str) -> Result<DatabaseUrl, String> {
        backend_of(url).map_err(|e| e.to_string())?;
        Ok(DatabaseUrl(url.to_string()))
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // scheme://user:password@host… → scheme://user:***@host…
        let url = &self.0;
        let Some(start) = url.find("://").map(|at| at + 3) else {
            return f.write_str(url);
        };
        let authority_end = url[start..]
            .find(['/', '?', '#'])
            .map_or(url.len(), |at| start + at);
        let authority = &url[start..authority_end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => write!(
                f,
                "{}{}:***{}",
                &url[..start],
                &authority[..colon],
                &url[start + at..]
            ),
            _ => f.write_str(url),
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_hide_their_password() {
        let shown = |url: &str| DatabaseUrl::from_str(url).expect("valid").to_string();
        assert_eq!(
            shown("postgres://flow:s3cret@db.example:5432/flowboard?sslmode=disable"),
            "postgres://flow:***@db.example:5432/flowboard?sslmode=disable"
        );
        assert_eq!(
            shown("postgresql://flow@db/flowboard"),
            "postgresql://flow@db/flowboard"
        );
        assert_eq!(
            shown("postgres://u:p@localhost/db?host=/run/postgresql"),
            "postgres://u:***@localhost/db?host=/run/postgresql"
        );
        assert_eq!(
            shown("sqlite:/var/lib/flowboard.db"),
            "sqlite:/var/lib/flowboard.db"
        );
        let url = DatabaseUrl::from_str("postgres://a:b@h/d").expect("valid");
        assert!(!format!("{url:?}").contains(":b@"));
        assert_eq!(url.expose(), "postgres://a:b@h/d");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn processes_opening_one_fresh_sqlite_file_together_all_migrate_it() {
        // Forty rounds: the race on switching a fresh file to WAL showed in about one in ten.
        for round in 0..40 {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite:{}?mode=rwc", dir.path().join("shared.db").display());
            // Separate pools, as separate processes would have.
            let opened = futures_util::future::join_all((0..4).map(|_| Store::connect(&url))).await;
            for store in opened {
                let store = store.unwrap_or_else(|e| panic!("round {round}: {e}"));
                assert!(store.list_dashboards().await.expect("list").is_empty());
            }
        }
    }

    #[test]
    fn other_schemes_are_refused_with_what_to_use() {
        for url in ["mysql://h/d", "flowboard.db", "http://h/d", ""] {
            let error = DatabaseUrl::from_str(url).expect_err("refused");
            assert!(error.contains("postgres://"), "{error}");
        }
        assert_eq!(
            DatabaseUrl::from_str("PostgreSQL://h/d").map(|u| u.backend()),
            Ok(Backend::Postgres)
        );
    }
}
