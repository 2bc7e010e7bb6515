//! Store tests on both databases: a fresh store of either kind, and a macro that runs each test
//! body once on SQLite and once on PostgreSQL.

use tempfile::TempDir;

use super::test_postgres::TestDatabase;
use super::{Backend, DATABASE_FILE, Store};

/// A fresh, empty store, and what it lives in.
pub(crate) struct TestStore {
    pub(crate) store: Store,
    place: Place,
}

enum Place {
    Sqlite(TempDir),
    Postgres(TestDatabase),
}

impl TestStore {
    /// An empty store on `backend`.
    pub(crate) async fn new(backend: Backend) -> TestStore {
        let (place, _) = Place::new(backend).await;
        let store = open(&place).await;
        assert_eq!(store.backend(), backend);
        TestStore { store, place }
    }

    /// A store on `backend` that `prepare` (given its database URL) set up before it is opened.
    pub(crate) async fn prepared<F: Future<Output = ()>>(
        backend: Backend,
        prepare: impl FnOnce(String) -> F,
    ) -> TestStore {
        let (place, url) = Place::new(backend).await;
        prepare(url).await;
        let store = open(&place).await;
        TestStore { store, place }
    }

    /// Another handle on the same database, as another process (or a restart) would open it.
    pub(crate) async fn reopen(&self) -> Store {
        open(&self.place).await
    }

    /// The SQLite data directory, if the store is one.
    pub(crate) fn data_dir(&self) -> Option<std::path::PathBuf> {
        match &self.place {
            Place::Sqlite(dir) => Some(dir.path().join("data")),
            Place::Postgres(_) => None,
        }
    }

    /// Drops a PostgreSQL test database (a failed test keeps its own).
    pub(crate) async fn finish(self) {
        self.store.pool.close().await;
        if let Place::Postgres(database) = self.place {
            database.drop_database().await;
        }
    }
}

impl Place {
    /// A place for a database, and the database's URL.
    async fn new(backend: Backend) -> (Place, String) {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let data = dir.path().join("data");
                std::fs::create_dir_all(&data).expect("data dir");
                let url = format!("sqlite:{}?mode=rwc", data.join(DATABASE_FILE).display());
                (Place::Sqlite(dir), url)
            }
            Backend::Postgres => {
                let database = TestDatabase::create().await;
                let url = database.url.clone();
                (Place::Postgres(database), url)
            }
        }
    }
}

async fn open(place: &Place) -> Store {
    match place {
        Place::Sqlite(dir) => Store::open(&dir.path().join("data")).await,
        Place::Postgres(database) => Store::connect(&database.url).await,
    }
    .expect("open the test store")
}

/// Runs each named `async fn(Backend)` as a test on SQLite (`sqlite::name`) and on PostgreSQL
/// (`postgres::name`).
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::store::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::store::Backend::Postgres).await
                }
            )*
        }
    };
}
pub(crate) use on_both_backends;
