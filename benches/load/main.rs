//! flowboard's end-to-end load benchmark: drives a running flowboard as real clients would
//! (an rdkafka producer, HTTP clients, WebSocket clients) and reports what it sustained.
//!
//! ```text
//! cargo bench --bench load -- kafka            # Kafka path throughput + ceilings (3 runs)
//! cargo bench --bench load -- http             # POST /ingest throughput
//! cargo bench --bench load -- ws               # 10,000 clients under 100,000 events/s
//! cargo bench --bench load -- idle             # RSS per idle WebSocket connection
//! cargo bench --bench load -- state            # RSS of 10,000 series × 1 h of panes
//! cargo bench --bench load -- recovery         # crash → first correct snapshot, 2 densities
//! cargo bench --bench load -- cluster          # Kafka path: 1 process × 2 workers vs 2 × 1
//! cargo bench --bench load -- all              # all of the above
//! cargo bench --bench load -- kafka --runs 1 --duration 10   # a quick look
//! cargo bench --bench load -- --help           # every option
//! ```
//!
//! By default each run starts its own `flowboard broker` and `flowboard serve --workers 2`
//! (the release build) on loopback, and kills them afterwards, also on Ctrl-C or a panic;
//! `--brokers` uses another Kafka-compatible broker, `--url` (with `--brokers`, and
//! `--server-pid` for memory figures) attaches to a server already running. Every run prints
//! its figures as a `RESULT` JSON line; the end of a scenario prints the median, minimum and
//! maximum over runs and a `SUMMARY` JSON line. The open-file limit is raised for 10,000
//! sockets (children inherit it).
//!
//! Under `cargo test` (no `--bench` argument) it does a tiny smoke run of every scenario, in
//! seconds, so CI checks that the benchmark still works. The scenarios are described in their
//! modules: [`kafka`], [`http`], [`ws`], [`state`], [`recovery`]; `cluster` is `kafka` (without
//! ceilings) once with one process of `--workers` workers and once with `--processes` 2
//! processes (a timely cluster over loopback sharing a SQLite store) of half as many each.

mod http;
mod kafka;
mod producer;
mod recovery;
mod server;
mod state;
mod stats;
mod ws;

use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::server::TargetOptions;
use crate::stats::{Figures, print_summary};

/// What to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Kafka,
    Http,
    Ws,
    Idle,
    State,
    Recovery,
    Cluster,
    All,
}

/// flowboard's end-to-end load benchmark.
#[derive(Clone, Debug, Parser)]
#[command(name = "load")]
pub struct Options {
    /// Scenarios to run.
    #[arg(value_enum)]
    scenarios: Vec<Scenario>,
    /// Runs per scenario (each with a fresh broker and server).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 5.0)]
    warmup: f64,
    /// Timely workers of the server started (`cluster`: in all, over its processes).
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Aggregation processes started (`cluster` compares 1 with this).
    #[arg(long, default_value_t = 1)]
    pub processes: usize,
    /// Partitions of the topic in the broker started.
    #[arg(long, default_value_t = 8)]
    partitions: i32,
    /// Distinct series (values of the `series` tag of one metric).
    #[arg(long, default_value_t = 10_000)]
    pub series: usize,
    /// Events per Kafka record.
    #[arg(long, default_value_t = 100)]
    pub events_per_record: usize,
    /// Kafka producer rate, events/s (`kafka`: default as fast as the server keeps up; `ws`:
    /// default 100,000).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Closed-loop producers keep at most this many events produced but not yet decoded by the
    /// server (0: open loop).
    #[arg(long, default_value_t = 400_000)]
    pub in_flight: u64,
    /// `kafka`: skip the ceilings (bare consumer, bare decoding).
    #[arg(long)]
    pub no_ceilings: bool,
    /// Seconds each ceiling is measured.
    #[arg(long, default_value_t = 5.0)]
    ceiling_seconds: f64,
    /// `http`: concurrent connections.
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// `http`: events per request.
    #[arg(long, default_value_t = 1_000)]
    pub batch: usize,
    /// `ws`/`idle`: WebSocket clients.
    #[arg(long, default_value_t = 10_000)]
    pub clients: usize,
    /// `ws`/`idle`: dashboards the clients spread over.
    #[arg(long, default_value_t = 100)]
    pub dashboards: usize,
    /// `ws`/`idle`: widgets per dashboard.
    #[arg(long, default_value_t = 4)]
    pub widgets: usize,
    /// `ws`/`idle`: WebSocket handshakes in flight at once.
    #[arg(long, default_value_t = 200)]
    pub connect_concurrency: usize,
    /// `recovery`: events per series per second of the first fill.
    #[arg(long, default_value_t = 1)]
    pub recovery_base_density: u64,
    /// `recovery`: events per series per second of the second, denser fill.
    #[arg(long, default_value_t = 3)]
    pub recovery_density: u64,
    /// `recovery`: crashes and restarts per fill.
    #[arg(long, default_value_t = 3)]
    pub restarts: usize,
    /// `state`, `recovery`: retention filled, seconds.
    #[arg(long, default_value_t = 3_600)]
    pub retention_s: u64,
    /// `state`: how long to wait after the fill before measuring the settled RSS, seconds.
    #[arg(long, default_value_t = 30)]
    pub settle_s: u64,
    /// Extra flags for the `flowboard serve` started (repeat for each), e.g.
    /// `--server-arg=--checkpoint-interval=100000s`.
    #[arg(long, allow_hyphen_values = true)]
    server_arg: Vec<String>,
    /// Attach to this server (`http://HOST:PORT`) instead of starting one.
    #[arg(long)]
    url: Option<String>,
    /// Use these Kafka bootstrap servers instead of starting `flowboard broker`.
    #[arg(long)]
    brokers: Option<String>,
    /// With `--url`: the server's pid, for RSS and CPU figures.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

impl Options {
    pub fn target(&self) -> TargetOptions {
        TargetOptions {
            url: self.url.clone(),
            brokers: self.brokers.clone(),
            server_pid: self.server_pid,
            workers: self.workers,
            processes: self.processes,
            partitions: self.partitions,
            extra_args: self.server_arg.clone(),
        }
    }
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.duration)
    }
    pub fn warmup(&self) -> Duration {
        Duration::from_secs_f64(self.warmup)
    }
    pub fn ceiling_time(&self) -> Duration {
        Duration::from_secs_f64(self.ceiling_seconds)
    }

    /// The tiny run `cargo test` does: every scenario, in seconds.
    fn smoke() -> Options {
        let mut options = Options::parse_from(["load", "all"]);
        options.runs = 1;
        options.duration = 2.0;
        options.warmup = 1.0;
        options.series = 200;
        options.rate = Some(5_000.0);
        options.in_flight = 20_000;
        options.ceiling_seconds = 0.5;
        options.connections = 2;
        options.batch = 100;
        options.clients = 20;
        options.dashboards = 4;
        options.widgets = 2;
        options.retention_s = 30;
        options.settle_s = 1;
        options
    }
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let options = if bench {
        Options::parse()
    } else {
        Options::smoke()
    };
    match rlimit::increase_nofile_limit(65_536) {
        Ok(limit) if (limit as usize) < options.clients + 1_000 => {
            eprintln!(
                "warning: open-file limit is {limit}; {} clients may not fit",
                options.clients
            )
        }
        Ok(_) => {}
        Err(error) => eprintln!("warning: cannot raise the open-file limit: {error}"),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    server::install_cleanup(&runtime);
    print_machine();

    let mut scenarios = options.scenarios.clone();
    if scenarios.is_empty() || scenarios.contains(&Scenario::All) {
        scenarios = vec![
            Scenario::Kafka,
            Scenario::Http,
            Scenario::Ws,
            Scenario::Idle,
            Scenario::State,
            Scenario::Recovery,
            Scenario::Cluster,
        ];
    }
    for scenario in scenarios {
        let name = format!("{scenario:?}").to_lowercase();
        let mut runs: Vec<Figures> = Vec::new();
        for run in 1..=options.runs {
            eprintln!(
                "-- {name}: run {run}/{} (load average {})",
                options.runs,
                load_average()
            );
            let figures = runtime.block_on(async {
                match scenario {
                    Scenario::Kafka => kafka::run(&options).await,
                    Scenario::Http => http::run(&options).await,
                    Scenario::Ws => ws::run(&options).await,
                    Scenario::Idle => ws::run_idle(&options).await,
                    Scenario::State => state::run(&options).await,
                    Scenario::Recovery => recovery::run(&options).await,
                    Scenario::Cluster => cluster(&options).await,
                    Scenario::All => unreachable!("expanded above"),
                }
            });
            println!(
                "RESULT {}",
                serde_json::json!({"scenario": name, "run": run, "load_average": load_average(), "figures": figures})
            );
            if !bench {
                check_smoke(&name, &figures);
            }
            runs.push(figures);
        }
        print_summary(&name, &runs);
    }
    server::cleanup_all();
}

/// `kafka` without ceilings with one process, then with `--processes` (at least 2) sharing
/// the same number of workers; figures prefixed `p1_` and `pN_`.
async fn cluster(options: &Options) -> Figures {
    let mut figures = Figures::new();
    let processes = options.processes.max(2);
    for processes in [1, processes] {
        let mut each = options.clone();
        each.processes = processes;
        each.workers = (options.workers / processes).max(1);
        each.no_ceilings = true;
        for (name, value) in kafka::run(&each).await {
            figures.insert(format!("p{processes}_{name}").leak(), value);
        }
    }
    figures
}

/// The smoke run must show that each scenario did what it measures.
fn check_smoke(name: &str, figures: &Figures) {
    let at_least = |figure: &str, min: f64| {
        let value = figures.get(figure).copied().unwrap_or(f64::NAN);
        assert!(
            value >= min,
            "{name}: {figure} = {value}, expected at least {min}"
        );
    };
    match name {
        "kafka" => {
            at_least("events_per_s_reflected", 1.0);
            at_least("all_counted", 1.0);
            at_least("ceiling_consume_events_per_s", 1.0);
            at_least("ceiling_decode_events_per_s", 1.0);
        }
        "http" => {
            at_least("events_per_s_accepted", 1.0);
            at_least("all_counted", 1.0);
        }
        "ws" => {
            at_least("clients_connected", 20.0);
            at_least("updates_per_s_received", 1.0);
        }
        "idle" => at_least("clients_connected", 20.0),
        "state" => at_least("window_count", 1.0),
        "recovery" => {
            at_least("d1_start_to_correct_snapshot_s", 0.0);
            at_least("d3_start_to_correct_snapshot_s", 0.0);
        }
        "cluster" => {
            at_least("p1_all_counted", 1.0);
            at_least("p2_all_counted", 1.0);
        }
        _ => {}
    }
}

/// The machine, for the record: cores, memory, load.
fn print_machine() {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0.0, |kb| kb as f64 / 1_048_576.0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    println!(
        "MACHINE {}",
        serde_json::json!({"cores": cores, "memory_gib": (memory * 10.0).round() / 10.0, "cpu": model,
                           "load_average": load_average(), "date": chrono_like_now()})
    );
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The UTC date and time, RFC 3339, without a date crate.
fn chrono_like_now() -> String {
    let ms = producer::now_ms();
    let (days, secs) = (ms / 86_400_000, (ms / 1_000) % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3_600,
        secs / 60 % 60,
        secs % 60
    )
}
