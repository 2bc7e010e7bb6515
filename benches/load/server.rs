//! The flowboard under test: started by the benchmark (a `flowboard broker` and a
//! `flowboard serve` against it, each its own process) or attached to with `--url`/`--brokers`;
//! and what the benchmark reads of it: `/metrics`, widget snapshots, its RSS.
//!
//! Every process started is registered in [`CHILDREN`] and killed when its handle drops, on
//! Ctrl-C, and on a panic ([`install_cleanup`]); data directories are removed likewise.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Processes and directories to clean up, by process id.
static CHILDREN: Mutex<Vec<(u32, Child)>> = Mutex::new(Vec::new());
static DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Kills every registered process and removes every registered directory.
pub fn cleanup_all() {
    if let Ok(mut children) = CHILDREN.lock() {
        for (_, child) in children.iter_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        children.clear();
    }
    if let Ok(mut dirs) = DIRS.lock() {
        for dir in dirs.drain(..) {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Cleans up on a panic and on Ctrl-C / SIGTERM (then exits with 130).
pub fn install_cleanup(runtime: &tokio::runtime::Runtime) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        cleanup_all();
        previous(info);
    }));
    runtime.spawn(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
        eprintln!("interrupted: stopping the processes started");
        cleanup_all();
        std::process::exit(130);
    });
}

fn kill(pid: u32) {
    if let Ok(mut children) = CHILDREN.lock()
        && let Some(at) = children.iter().position(|(p, _)| *p == pid)
    {
        let (_, mut child) = children.swap_remove(at);
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A started process, killed on drop, with the lines it logged.
struct Started {
    pid: u32,
}

impl Drop for Started {
    fn drop(&mut self) {
        kill(self.pid);
    }
}

/// Starts `flowboard args…` and waits until it logged every one of `wanted` (a prefix each);
/// returns what followed each prefix on its line.
fn start(args: &[String], wanted: &[&str]) -> (Started, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowboard"))
        .args(args)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped()) // `flowboard broker` reads commands; keep its stdin open
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn flowboard");
    let pid = child.id();
    let stderr = child.stderr.take().expect("stderr");
    CHILDREN.lock().expect("registry").push((pid, child));
    let started = Started { pid };
    let (lines, log) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("ERROR") || line.contains("records lost") {
                eprintln!("[flowboard {pid}] {line}");
            }
            let _ = lines.send(line);
        }
    });
    let mut found: Vec<Option<String>> = vec![None; wanted.len()];
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen: Vec<String> = Vec::new();
    while found.iter().any(Option::is_none) {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = log.recv_timeout(left).unwrap_or_else(|why| {
            let tail = seen[seen.len().saturating_sub(20)..].join("\n");
            let status = CHILDREN.lock().ok().and_then(|mut children| {
                let (_, child) = children.iter_mut().find(|(p, _)| *p == pid)?;
                child.try_wait().ok().flatten()
            });
            panic!("flowboard {args:?} did not start (waiting for {wanted:?}: {why:?}, exit status {status:?}); it logged:\n{tail}")
        });
        seen.push(line.clone());
        for (slot, prefix) in found.iter_mut().zip(wanted) {
            if let Some(at) = line.find(prefix) {
                let rest = line[at + prefix.len()..].split_whitespace().next();
                *slot = rest.map(str::to_string);
            }
        }
    }
    // Keep draining the log so the process never blocks on a full pipe.
    std::thread::spawn(move || while log.recv().is_ok() {});
    (started, found.into_iter().flatten().collect())
}

/// Where the flowboard under test is.
pub struct Target {
    /// `http://127.0.0.1:PORT` (of process 0 of a cluster).
    pub base: String,
    /// Every server process's base URL: one, or each process of a cluster.
    pub bases: Vec<String>,
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// The server's process id, for its RSS (`None` when attached without `--server-pid`).
    pub pid: Option<u32>,
    /// Every server process's id (each process of a cluster), for CPU figures.
    pub pids: Vec<u32>,
    /// The broker's process id, when the benchmark started it.
    pub broker_pid: Option<u32>,
    /// The command line of each server process started, for [`Target::restart`].
    server_args: Vec<Vec<String>>,
    servers: Vec<Started>,
    _broker: Option<Started>,
}

/// How to get a flowboard.
#[derive(Clone, Debug)]
pub struct TargetOptions {
    pub url: Option<String>,
    pub brokers: Option<String>,
    pub server_pid: Option<u32>,
    pub workers: usize,
    /// Aggregation processes: 1, or a cluster (`--processes N`) sharing a SQLite store.
    pub processes: usize,
    pub partitions: i32,
    pub extra_args: Vec<String>,
}

impl Target {
    /// Starts a broker (unless `--brokers`) and a server (unless `--url`).
    pub fn start(options: &TargetOptions) -> Target {
        if let Some(url) = &options.url {
            let base = url.trim_end_matches('/').to_string();
            return Target {
                bases: vec![base.clone()],
                base,
                brokers: options.brokers.clone().expect("--url needs --brokers"),
                pid: options.server_pid,
                pids: options.server_pid.into_iter().collect(),
                broker_pid: None,
                server_args: Vec::new(),
                servers: Vec::new(),
                _broker: None,
            };
        }
        let (broker, brokers) = match &options.brokers {
            Some(brokers) => (None, brokers.clone()),
            None => {
                let args = vec![
                    "broker".into(),
                    "--partitions".into(),
                    options.partitions.to_string(),
                ];
                let (started, found) = start(&args, &["kafka bootstrap servers: "]);
                (Some(started), found[0].clone())
            }
        };
        let data_dir =
            std::env::temp_dir().join(format!("flowboard-load-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&data_dir).expect("data dir");
        DIRS.lock().expect("registry").push(data_dir.clone());
        let mut args: Vec<String> = [
            "serve",
            "--http",
            "127.0.0.1:0",
            "--workers",
            &options.workers.to_string(),
            "--kafka-brokers",
            &brokers,
            "--data-dir",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(data_dir.display().to_string());
        // Every load client connects from 127.0.0.1: lift the per-address stream limit (its
        // default, 1,000, would refuse most of 10,000 clients with 429).
        args.extend([
            "--max-ws-connections-per-ip".to_string(),
            "100000".to_string(),
        ]);
        args.extend(options.extra_args.iter().cloned());
        let server_args = if options.processes > 1 {
            cluster_args(&args, &data_dir, options.processes)
        } else {
            vec![args]
        };
        // The processes of a cluster each wait for the others before they listen.
        let started: Vec<(Started, Vec<String>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = server_args
                .iter()
                .map(|args| scope.spawn(move || start(args, &["listening on "])))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("server started"))
                .collect()
        });
        let bases: Vec<String> = started.iter().map(|(_, found)| found[0].clone()).collect();
        let servers: Vec<Started> = started.into_iter().map(|(server, _)| server).collect();
        let pids: Vec<u32> = servers.iter().map(|s| s.pid).collect();
        eprintln!(
            "flowboard serve pids {pids:?} at {bases:?}; broker pid {:?} at {brokers}",
            broker.as_ref().map(|b| b.pid)
        );
        Target {
            base: bases[0].clone(),
            bases,
            brokers,
            pid: Some(pids[0]),
            pids,
            broker_pid: broker.as_ref().map(|b| b.pid),
            server_args,
            servers,
            _broker: broker,
        }
    }

    /// Kills the server (`SIGKILL`, a crash) and starts it again with the same command line,
    /// data directory and broker; returns how long the new process took to listen. A single
    /// server only.
    pub fn restart(&mut self) -> Duration {
        assert_eq!(
            self.server_args.len(),
            1,
            "restart: one server started here"
        );
        self.servers.clear();
        let started = Instant::now();
        let (server, found) = start(&self.server_args[0], &["listening on "]);
        let to_listen = started.elapsed();
        self.base = found[0].clone();
        self.bases = vec![self.base.clone()];
        self.pid = Some(server.pid);
        self.pids = vec![server.pid];
        self.servers = vec![server];
        to_listen
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("{}{path}", self.base.replacen("http://", "ws://", 1))
    }

    /// The server's resident set size in bytes (`VmRSS`), if its pid is known.
    pub fn rss_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid?)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    }

    /// CPU time (user + system) of process `pid` so far, in seconds.
    pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
        let after = stat.rsplit(')').next()?;
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(ticks as f64 / 100.0)
    }

    /// CPU time of all of `pids` so far, in seconds (`None` when there are none).
    pub fn cpu_seconds_of(pids: &[u32]) -> Option<f64> {
        let times: Option<Vec<f64>> = pids.iter().map(|&p| Target::cpu_seconds(Some(p))).collect();
        times.filter(|t| !t.is_empty()).map(|t| t.iter().sum())
    }

    /// Scrapes `/metrics` of every server process; a cluster's samples are summed by series.
    pub async fn metrics(&self, http: &reqwest::Client) -> Scrape {
        let mut scrape = Scrape {
            values: BTreeMap::new(),
        };
        for base in &self.bases {
            let text = http
                .get(format!("{base}/metrics"))
                .send()
                .await
                .expect("GET /metrics")
                .text()
                .await
                .unwrap_or_default();
            for (series, value) in Scrape::parse(&text).values {
                *scrape.values.entry(series).or_default() += value;
            }
        }
        scrape
    }

    /// Creates a dashboard; returns its id and its widgets' ids.
    pub async fn create_dashboard(
        &self,
        http: &reqwest::Client,
        name: &str,
        widgets: Vec<Value>,
    ) -> (String, Vec<String>) {
        let response = http
            .post(self.url("/dashboards"))
            .json(&json!({"name": name, "widgets": widgets}))
            .send()
            .await
            .expect("POST /dashboards");
        assert_eq!(response.status().as_u16(), 201, "create dashboard");
        let body: Value = response.json().await.expect("dashboard JSON");
        let id = body["dashboard_id"]
            .as_str()
            .expect("dashboard_id")
            .to_string();
        let widgets = body["widgets"]
            .as_array()
            .expect("widgets")
            .iter()
            .map(|w| w["widget_id"].as_str().expect("widget_id").to_string())
            .collect();
        (id, widgets)
    }

    /// A widget's `(value, as_of)`.
    pub async fn snapshot(
        &self,
        http: &reqwest::Client,
        dashboard: &str,
        widget: &str,
    ) -> (Option<f64>, Option<u64>) {
        self.try_snapshot(http, dashboard, widget)
            .await
            .expect("GET snapshot")
    }

    /// A widget's `(value, as_of)`, or the error while the server does not answer (yet).
    pub async fn try_snapshot(
        &self,
        http: &reqwest::Client,
        dashboard: &str,
        widget: &str,
    ) -> Result<(Option<f64>, Option<u64>), reqwest::Error> {
        let body: Value = http
            .get(self.url(&format!(
                "/dashboards/{dashboard}/widgets/{widget}/snapshot"
            )))
            .send()
            .await?
            .json()
            .await?;
        Ok((body["value"].as_f64(), body["as_of"].as_u64()))
    }
}

/// The command lines of `processes` cluster processes sharing `data_dir` (their checkpoints),
/// a hosts file of free loopback ports in it, and a SQLite dashboard store in it.
fn cluster_args(args: &[String], data_dir: &std::path::Path, processes: usize) -> Vec<Vec<String>> {
    let hosts = data_dir.join("hosts");
    // Ports below Linux's ephemeral range (32768–60999), so that no client connection made
    // meanwhile (Kafka, HTTP) takes one between this check and the process binding it.
    let ports: Vec<String> = (0..processes)
        .map(|_| {
            loop {
                let port = rand::random_range(20_000..32_000u16);
                if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                    break format!("127.0.0.1:{port}\n");
                }
            }
        })
        .collect();
    std::fs::write(&hosts, ports.concat()).expect("hosts file");
    let database = format!(
        "sqlite:{}?mode=rwc",
        data_dir.join("dashboards.db").display()
    );
    (0..processes)
        .map(|process| {
            let mut args = args.to_vec();
            args.extend([
                "--processes".to_string(),
                processes.to_string(),
                "--process".to_string(),
                process.to_string(),
                "--hosts".to_string(),
                hosts.display().to_string(),
                "--database-url".to_string(),
                database.clone(),
            ]);
            args
        })
        .collect()
}

/// A parsed `/metrics` scrape: series name with labels → value.
pub struct Scrape {
    values: BTreeMap<String, f64>,
}

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let values = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (name, value) = l.rsplit_once(' ')?;
                Some((name.to_string(), value.parse().ok()?))
            })
            .collect();
        Scrape { values }
    }

    /// The value of one series, e.g. `flowboard_events_accepted_total{path="kafka"}`.
    pub fn get(&self, series: &str) -> f64 {
        self.values.get(series).copied().unwrap_or(0.0)
    }

    /// The `q` quantile of a Prometheus histogram, interpolated linearly inside its bucket as
    /// PromQL's `histogram_quantile` does; `NaN` when empty.
    pub fn histogram_quantile(&self, metric: &str, q: f64) -> f64 {
        let prefix = format!("{metric}_bucket{{le=\"");
        let mut buckets: Vec<(f64, f64)> = self
            .values
            .iter()
            .filter_map(|(k, v)| {
                let le = k.strip_prefix(&prefix)?.strip_suffix("\"}")?;
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                Some((le, *v))
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let Some(&(_, total)) = buckets.last() else {
            return f64::NAN;
        };
        if total == 0.0 {
            return f64::NAN;
        }
        let rank = q * total;
        let (mut lower, mut below) = (0.0, 0.0);
        for (le, count) in buckets {
            if count >= rank {
                if le.is_infinite() {
                    return lower;
                }
                return lower + (le - lower) * (rank - below) / (count - below).max(1e-9);
            }
            (lower, below) = (le, count);
        }
        lower
    }

    /// The sum over all label sets of a metric.
    pub fn sum(&self, metric: &str) -> f64 {
        self.values
            .iter()
            .filter(|(k, _)| *k == metric || k.starts_with(&format!("{metric}{{")))
            .map(|(_, v)| v)
            .sum()
    }
}

/// An HTTP client for control requests (not the ingest load).
pub fn control_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client")
}
