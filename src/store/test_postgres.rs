//! A real PostgreSQL for tests, each test with a database of its own.
//!
//! The server is the one `FLOWBOARD_TEST_DATABASE_URL` names (`scripts/test` starts one and
//! sets it; its user must be allowed to create databases), or else a throwaway cluster this test
//! process starts from Debian's `postgresql` package (`/usr/lib/postgresql/*/bin`): `initdb`
//! into a temporary directory, listening only on a Unix socket there, run as the `postgres` user
//! when the tests run as root (PostgreSQL refuses root). A shell that holds this process's end
//! of a pipe stops it and removes the directory when this process exits, however it exits.
//! Without either the tests fail, saying what to install.
//!
//! Also compiled into `tests/shared_store.rs` (by `#[path]`): std, tokio, sqlx and uuid only.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use sqlx::Connection;

/// The variable naming an existing PostgreSQL server for the tests.
pub const URL_VAR: &str = "FLOWBOARD_TEST_DATABASE_URL";

/// How long a freshly started server may take to accept connections.
const STARTUP: Duration = Duration::from_secs(60);

/// A database of its own for one test, on the test PostgreSQL server.
pub struct TestDatabase {
    /// Its URL, for `Store::connect` or `--database-url`.
    pub url: String,
    name: String,
}

impl TestDatabase {
    /// Creates an empty database.
    pub async fn create() -> TestDatabase {
        let server = server_url();
        let name = format!("flowboard_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = connect_admin(server).await;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("creating database {name} on the test PostgreSQL: {e}"));
        let _ = admin.close().await;
        TestDatabase {
            url: with_database(server, &name),
            name,
        }
    }

    /// Drops the database (whoever is still connected). A failed test leaves its database
    /// behind, to look at; a throwaway cluster goes with the test process anyway.
    pub async fn drop_database(self) {
        let mut admin = connect_admin(server_url()).await;
        let _ = sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut admin)
        .await;
        let _ = admin.close().await;
    }
}

/// The URL of the server's maintenance database: from [`URL_VAR`], or of a cluster started for
/// this process.
pub fn server_url() -> &'static str {
    static SERVER: OnceLock<String> = OnceLock::new();
    SERVER.get_or_init(|| match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => start_cluster(),
    })
}

/// Connects to the server, waiting while it starts.
async fn connect_admin(url: &str) -> sqlx::PgConnection {
    let deadline = Instant::now() + STARTUP;
    loop {
        match sqlx::PgConnection::connect(url).await {
            Ok(connection) => return connection,
            Err(error) if Instant::now() < deadline => {
                let _ = error;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!(
                "the test PostgreSQL at {url} does not answer within {STARTUP:?}: {error}{}",
                cluster_log()
            ),
        }
    }
}

/// `url` with its database (the path) replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let start = url.find("://").map_or(0, |at| at + 3);
    let authority_end = url[start..]
        .find(['/', '?'])
        .map_or(url.len(), |at| start + at);
    let query = url[authority_end..]
        .find('?')
        .map_or("", |at| &url[authority_end + at..]);
    format!("{}/{name}{query}", &url[..authority_end])
}

/// A cluster this process started: its directory and the shell that stops it.
struct Cluster {
    root: PathBuf,
    /// Holding the shell's standard input open keeps the cluster running.
    _keeper: Child,
}

static CLUSTER: Mutex<Option<Cluster>> = Mutex::new(None);

/// Stops PostgreSQL and removes its directory once its standard input ends (when the test
/// process that holds the other end exits). `$1` postgres binary, `$2` data, `$3` root.
const KEEPER: &str = r#"
"$1" -D "$2" -k "$3" -c listen_addresses= -c max_connections=300 \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off >"$3/log" 2>&1 &
pid=$!
read -r _ || true
kill -INT "$pid" 2>/dev/null
wait "$pid"
rm -rf "$3"
"#;

fn start_cluster() -> String {
    let bin = postgres_bin_dir().unwrap_or_else(|| {
        panic!(
            "PostgreSQL tests need a PostgreSQL server: none found under /usr/lib/postgresql/*/bin \
             or on PATH. Run scripts/test (it installs Debian's postgresql and starts one), or \
             `apt-get install -y postgresql`, or set {URL_VAR}=postgres://user:password@host/db \
             (a user allowed to CREATE DATABASE)"
        )
    });
    // Short: a Unix socket path is limited to about 100 bytes.
    let root = std::env::temp_dir().join(format!(
        "flowboard-pg-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    ));
    std::fs::create_dir(&root).expect("create the test PostgreSQL directory");
    let owner = postgres_owner();
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&root, Some(uid), Some(gid))
            .expect("give the test PostgreSQL directory to the postgres user");
    }
    let data = root.join("data");
    let output = as_owner(Command::new(bin.join("initdb")), owner, &root)
        .arg("-D")
        .arg(&data)
        .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"])
        .arg("--no-sync")
        .output()
        .expect("run initdb");
    if !output.status.success() {
        let _ = std::fs::remove_dir_all(&root);
        panic!(
            "initdb failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let keeper = as_owner(Command::new("sh"), owner, &root)
        .args(["-c", KEEPER, "flowboard-test-postgres"])
        .arg(bin.join("postgres"))
        .arg(&data)
        .arg(&root)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the test PostgreSQL");
    let url = format!(
        "postgres://postgres@localhost/postgres?host={}",
        root.display()
    );
    *CLUSTER.lock().unwrap_or_else(|e| e.into_inner()) = Some(Cluster {
        root,
        _keeper: keeper,
    });
    url
}

/// The server's log, when this process started it (to explain a failure).
fn cluster_log() -> String {
    let cluster = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    match cluster.as_ref() {
        Some(cluster) => format!(
            "\n--- PostgreSQL log ---\n{}",
            std::fs::read_to_string(cluster.root.join("log")).unwrap_or_default()
        ),
        None => String::new(),
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin`, or the directory of `initdb` on PATH.
fn postgres_bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).or_else(|| {
        std::env::split_paths(&std::env::var_os("PATH")?)
            .find(|dir| dir.join("initdb").exists() && dir.join("postgres").exists())
    })
}

/// The `postgres` user's uid and gid when this process runs as root, else `None` (run as
/// ourselves).
fn postgres_owner() -> Option<(u32, u32)> {
    let id = |args: &[&str]| -> Option<u32> {
        let output = Command::new("id").args(args).output().ok()?;
        String::from_utf8(output.stdout).ok()?.trim().parse().ok()
    };
    if id(&["-u"])? != 0 {
        return None;
    }
    let owner = id(&["-u", "postgres"]).zip(id(&["-g", "postgres"]));
    assert!(
        owner.is_some(),
        "running as root, but there is no `postgres` user to run the test PostgreSQL as \
         (PostgreSQL refuses root): install Debian's postgresql package, which creates it"
    );
    owner
}

fn as_owner(mut command: Command, owner: Option<(u32, u32)>, dir: &Path) -> Command {
    use std::os::unix::process::CommandExt;
    if let Some((uid, gid)) = owner {
        command.uid(uid).gid(gid).env("HOME", dir);
    }
    command.current_dir(dir);
    command
}

#[cfg(test)]
mod tests {
    #[test]
    fn with_database_replaces_only_the_path() {
        use super::with_database;
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres?sslmode=disable", "t1"),
            "postgres://u:p@h:5432/t1?sslmode=disable"
        );
        assert_eq!(
            with_database(
                "postgres://postgres@localhost/flowboard_test?host=/tmp/x/y",
                "t2"
            ),
            "postgres://postgres@localhost/t2?host=/tmp/x/y"
        );
        assert_eq!(with_database("postgres://h", "t3"), "postgres://h/t3");
        assert_eq!(
            with_database("postgres://h?x=1", "t4"),
            "postgres://h/t4?x=1"
        );
    }
}
