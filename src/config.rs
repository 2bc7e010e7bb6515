//! The command line and the validated configuration it produces.
//!
//! Every flag has a default that runs everything on one machine (`flowboard serve`). Settings
//! are checked once at startup; an invalid one stops the server with what to do instead.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::auth::Tokens;
use crate::store::DatabaseUrl;

mod limits;

pub use limits::{LimitArgs, Limits, Rate, WsLimits};

/// The longest retention (and so the longest widget window) flowboard accepts.
pub const MAX_RETENTION: Duration = Duration::from_secs(86_400);

/// flowboard: real-time metrics dashboards over Kafka, timely dataflow and WebSockets.
#[derive(Debug, Parser)]
#[command(name = "flowboard", version, about, long_about = None)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: HTTP API, ingest, WebSocket push and the dataflow.
    Serve(Box<ServeArgs>),
    /// Run only the embedded Kafka broker (librdkafka's in-memory mock cluster), so servers can
    /// be stopped and restarted against a broker that outlives them.
    Broker(BrokerArgs),
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Flags of `flowboard serve`.
#[derive(Clone, Debug, Args)]
pub struct ServeArgs {
    /// Address for HTTP (REST, ingest, WebSocket). Use port 0 for any free port; the log names
    /// the bound address.
    #[arg(long, env = "FLOWBOARD_HTTP", default_value = "127.0.0.1:8080")]
    pub http: SocketAddr,

    /// Directory for the dashboard database and checkpoints.
    #[arg(long, env = "FLOWBOARD_DATA_DIR", default_value = "./flowboard-data")]
    pub data_dir: PathBuf,

    /// Dashboard store shared by several flowboard processes, instead of the SQLite file in the
    /// data directory: postgres://user:password@host:5432/database (or sqlite:PATH). Changes
    /// made through any process reach every process's WebSocket clients and dataflow within
    /// about a second. Prefer the environment variable: the URL may hold a password.
    #[arg(long, env = "FLOWBOARD_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Kafka bootstrap servers (host:port,...). When absent, an embedded in-memory broker is
    /// started in-process (for trying things out: it is not durable).
    #[arg(long, env = "FLOWBOARD_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,

    /// Kafka topic events are produced to and read from.
    #[arg(long, env = "FLOWBOARD_TOPIC", default_value = "metrics")]
    pub topic: String,

    /// Partitions of the topic, when flowboard creates it in the embedded broker.
    #[arg(long, default_value_t = 8)]
    pub partitions: i32,

    /// Timely worker threads [default: number of cores].
    #[arg(long, env = "FLOWBOARD_WORKERS")]
    pub workers: Option<usize>,

    /// History kept per series, and the longest window a widget may have (at most 24h).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub retention: Duration,

    /// How long after the wall clock passes a second the dataflow closes it, when Kafka is
    /// caught up. Events arriving later still count, from the next second on.
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    pub watermark_delay: Duration,

    /// Events stamped further than this into the future are rejected (HTTP) or dropped and
    /// counted (Kafka).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub max_clock_skew: Duration,

    /// How long `POST /ingest` waits for Kafka to acknowledge before answering 503.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub ingest_timeout: Duration,

    /// Time between checkpoints of the aggregation state and the Kafka offsets it reflects
    /// (whole seconds; restarts replay Kafka from the newest checkpoint).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub checkpoint_interval: Duration,

    /// Token required to `POST /ingest` (also accepted: the admin token). Prefer the
    /// environment variable or `--ingest-token-file`, which stay out of shell history.
    #[arg(long, env = "FLOWBOARD_INGEST_TOKEN", hide_env_values = true)]
    pub ingest_token: Option<String>,
    /// File holding the ingest token.
    #[arg(long, conflicts_with = "ingest_token")]
    pub ingest_token_file: Option<PathBuf>,

    /// Token required to create, change and delete dashboards and widgets.
    #[arg(long, env = "FLOWBOARD_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// File holding the admin token.
    #[arg(long, conflicts_with = "admin_token")]
    pub admin_token_file: Option<PathBuf>,

    /// Token required to read dashboards, snapshots and streams (also accepted: the admin
    /// token). Without it reads are open.
    #[arg(long, env = "FLOWBOARD_READ_TOKEN", hide_env_values = true)]
    pub read_token: Option<String>,
    /// File holding the read token.
    #[arg(long, conflicts_with = "read_token")]
    pub read_token_file: Option<PathBuf>,

    /// Serve a non-loopback address without ingest and admin tokens (anyone who can reach it
    /// may write).
    #[arg(long)]
    pub insecure: bool,

    /// Processes in the timely cluster (each runs `--workers` workers).
    #[arg(long, default_value_t = 1)]
    pub processes: usize,

    /// This process's index in the cluster, 0 to `--processes` - 1.
    #[arg(long, default_value_t = 0)]
    pub process: usize,

    /// File naming every process of the cluster, one `host:port` per line, in process order
    /// (timely's own networking connects them). Required with `--processes` > 1.
    #[arg(long)]
    pub hosts: Option<PathBuf>,

    /// Run only the frontend: REST, ingest, WebSocket and the web page, with widget values read
    /// from the values topic that the aggregation processes publish. Needs a shared store
    /// (`--database-url`) and Kafka (`--kafka-brokers`); dataflow flags are ignored.
    #[arg(long)]
    pub frontend: bool,

    /// Publish widget values to the values topic (always on with `--processes` > 1), so that
    /// `--frontend` processes can serve them.
    #[arg(long)]
    pub publish_values: bool,

    /// The compacted topic widget values are published to and read from.
    #[arg(long, default_value = crate::values_topic::DEFAULT_TOPIC)]
    pub values_topic: String,

    /// Log format; the level comes from RUST_LOG (default `info`).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// `GET /readyz` answers 503 while any partition's consumer lag is above this (or the
    /// dataflow's closed time is more than 5 s plus the watermark delay behind the clock).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub ready_max_lag: Duration,

    /// Limits on requests, events, dashboards, WebSocket connections and ingest rate.
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Flags of `flowboard broker`.
#[derive(Clone, Debug, Args)]
pub struct BrokerArgs {
    /// Topic to create.
    #[arg(long, default_value = "metrics")]
    pub topic: String,
    /// Partitions of the topic.
    #[arg(long, default_value_t = 8)]
    pub partitions: i32,
}

/// A configuration error found at startup.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting --{flag}: {message}")]
pub struct ConfigError {
    /// The flag at fault.
    pub flag: &'static str,
    /// What is wrong and what to do instead.
    pub message: String,
}

/// Validated settings of `flowboard serve`.
#[derive(Clone, Debug)]
pub struct Config {
    /// See [`ServeArgs::http`].
    pub http: SocketAddr,
    /// See [`ServeArgs::data_dir`].
    pub data_dir: PathBuf,
    /// See [`ServeArgs::database_url`].
    pub database_url: Option<DatabaseUrl>,
    /// See [`ServeArgs::kafka_brokers`].
    pub kafka_brokers: Option<String>,
    /// See [`ServeArgs::topic`].
    pub topic: String,
    /// See [`ServeArgs::partitions`].
    pub partitions: i32,
    /// Timely worker threads.
    pub workers: usize,
    /// See [`ServeArgs::retention`]; whole seconds.
    pub retention: Duration,
    /// See [`ServeArgs::watermark_delay`].
    pub watermark_delay: Duration,
    /// See [`ServeArgs::max_clock_skew`].
    pub max_clock_skew: Duration,
    /// See [`ServeArgs::ingest_timeout`].
    pub ingest_timeout: Duration,
    /// See [`ServeArgs::checkpoint_interval`].
    pub checkpoint_interval: Duration,
    /// See [`ServeArgs::log_format`].
    pub log_format: LogFormat,
    /// The timely cluster this process belongs to; `None` for a single process.
    pub cluster: Option<Cluster>,
    /// See [`ServeArgs::frontend`].
    pub frontend: bool,
    /// Whether widget values are published to the values topic.
    pub publish_values: bool,
    /// See [`ServeArgs::values_topic`].
    pub values_topic: String,
    /// See [`ServeArgs::ready_max_lag`].
    pub ready_max_lag: Duration,
    /// Tokens guarding ingest, dashboard writes and reads (see [`crate::auth`]).
    pub tokens: Tokens,
    /// Limits on what clients may ask (see [`Limits`]).
    pub limits: Limits,
}

impl Config {
    /// Checks the flags of `serve`.
    pub fn from_args(args: ServeArgs) -> Result<Config, ConfigError> {
        let fail = |flag, message: String| Err(ConfigError { flag, message });
        let workers = args
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        if workers == 0 || workers > 256 {
            return fail("workers", format!("{workers} workers; use 1 to 256"));
        }
        if args.retention < Duration::from_secs(1) || args.retention > MAX_RETENTION {
            return fail("retention", format!("{:?}; use 1s to 24h", args.retention));
        }
        if args.retention.subsec_nanos() != 0 {
            return fail(
                "retention",
                format!("{:?}; use whole seconds", args.retention),
            );
        }
        if args.partitions < 1 {
            return fail("partitions", format!("{}; use at least 1", args.partitions));
        }
        if args.topic.is_empty() || args.topic.len() > 249 {
            return fail(
                "topic",
                "use a Kafka topic name of 1 to 249 characters".into(),
            );
        }
        if args.watermark_delay > Duration::from_secs(60) {
            return fail(
                "watermark-delay",
                format!("{:?}; use at most 60s", args.watermark_delay),
            );
        }
        if args.checkpoint_interval < Duration::from_secs(1)
            || args.checkpoint_interval.subsec_nanos() != 0
        {
            return fail(
                "checkpoint-interval",
                format!(
                    "{:?}; use whole seconds, at least 1s",
                    args.checkpoint_interval
                ),
            );
        }
        if args.ingest_timeout.is_zero() {
            return fail(
                "ingest-timeout",
                "use a positive duration such as 5s".into(),
            );
        }
        if args.ready_max_lag.is_zero() {
            return fail(
                "ready-max-lag",
                "use a positive duration such as 30s".into(),
            );
        }
        let cluster = cluster(args.processes, args.process, args.hosts.as_deref())?;
        if args.frontend && args.kafka_brokers.is_none() {
            return fail(
                "frontend",
                "a frontend reads values from the aggregation cluster's Kafka: give --kafka-brokers".into(),
            );
        }
        if (args.frontend || cluster.is_some()) && args.database_url.is_none() {
            return fail(
                "database-url",
                "processes of a cluster and frontends share one dashboard store: give --database-url postgres://... (or sqlite:PATH of a file they all reach)".into(),
            );
        }
        if cluster.is_some() && args.kafka_brokers.is_none() {
            return fail(
                "processes",
                "the processes of a cluster share one Kafka: give --kafka-brokers (e.g. of `flowboard broker`)".into(),
            );
        }
        let limits = Limits::from_args(args.limits)?;
        let tokens = Tokens {
            ingest: token(
                "ingest-token",
                args.ingest_token,
                args.ingest_token_file.as_deref(),
            )?,
            admin: token(
                "admin-token",
                args.admin_token,
                args.admin_token_file.as_deref(),
            )?,
            read: token(
                "read-token",
                args.read_token,
                args.read_token_file.as_deref(),
            )?,
        };
        if !args.http.ip().is_loopback()
            && (tokens.ingest.is_none() || tokens.admin.is_none())
            && !args.insecure
        {
            return fail(
                "http",
                format!(
                    "{} is reachable from other machines, and without --ingest-token and --admin-token anyone there could write events and change dashboards; set both (or pass --insecure to accept that)",
                    args.http
                ),
            );
        }
        if args
            .kafka_brokers
            .as_deref()
            .is_some_and(|b| b.trim().is_empty())
        {
            return fail(
                "kafka-brokers",
                "empty; give host:port[,host:port...] or leave it out for the embedded broker"
                    .into(),
            );
        }
        let database_url = match args.database_url.as_deref().map(str::parse::<DatabaseUrl>) {
            Some(Err(message)) => return fail("database-url", message),
            Some(Ok(url)) => Some(url),
            None => None,
        };
        Ok(Config {
            http: args.http,
            data_dir: args.data_dir,
            database_url,
            kafka_brokers: args.kafka_brokers,
            topic: args.topic,
            partitions: args.partitions,
            workers,
            retention: args.retention,
            watermark_delay: args.watermark_delay,
            max_clock_skew: args.max_clock_skew,
            ingest_timeout: args.ingest_timeout,
            checkpoint_interval: args.checkpoint_interval,
            log_format: args.log_format,
            cluster,
            frontend: args.frontend,
            publish_values: args.publish_values || args.processes > 1,
            values_topic: args.values_topic,
            ready_max_lag: args.ready_max_lag,
            tokens,
            limits,
        })
    }
}

/// A token from its flag (or environment variable) or its file; blank is an error.
fn token(
    flag: &'static str,
    value: Option<String>,
    file: Option<&std::path::Path>,
) -> Result<Option<String>, ConfigError> {
    let fail = |message: String| Err(ConfigError { flag, message });
    let token = match (value, file) {
        (Some(value), _) => value,
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(text) => text.trim().to_string(),
            Err(error) => return fail(format!("reading {}: {error}", path.display())),
        },
        (None, None) => return Ok(None),
    };
    if token.trim().is_empty() {
        return fail(
            "the token is empty; give a long random string (e.g. `openssl rand -hex 32`)".into(),
        );
    }
    if token.len() < 16 {
        tracing::warn!("--{flag} is shorter than 16 characters; a long random token is safer");
    }
    Ok(Some(token))
}

/// A process's place in a timely cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    /// This process's index.
    pub process: usize,
    /// Every process's `host:port`, in process order.
    pub addresses: Vec<String>,
}

/// The cluster from `--processes`, `--process` and `--hosts`.
fn cluster(
    processes: usize,
    process: usize,
    hosts: Option<&std::path::Path>,
) -> Result<Option<Cluster>, ConfigError> {
    let fail = |flag, message: String| Err(ConfigError { flag, message });
    if processes == 0 {
        return fail("processes", "use at least 1".into());
    }
    if process >= processes {
        return fail(
            "process",
            format!(
                "{process} with --processes {processes}; use 0 to {}",
                processes - 1
            ),
        );
    }
    if processes == 1 {
        return Ok(None);
    }
    let Some(path) = hosts else {
        return fail(
            "hosts",
            "a cluster needs a hosts file: one host:port per process, in order".into(),
        );
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => return fail("hosts", format!("reading {}: {error}", path.display())),
    };
    let addresses: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_string)
        .collect();
    if addresses.len() != processes {
        return fail(
            "hosts",
            format!(
                "{} names {} addresses but --processes is {processes}",
                path.display(),
                addresses.len()
            ),
        );
    }
    if let Some(bad) = addresses.iter().find(|a| {
        a.rsplit_once(':')
            .is_none_or(|(_, port)| port.parse::<u16>().is_err())
    }) {
        return fail("hosts", format!("{bad:?} is not host:port"));
    }
    Ok(Some(Cluster { process, addresses }))
}
