//! `GET /healthz` and `GET /readyz`: liveness and readiness, for load balancers, orchestrators
//! and people.
//!
//! `/healthz` answers `200 {"status": "ok"}` whenever the process serves HTTP: restart it only
//! when that fails. `/readyz` answers `200` when the server can serve current values and `503`
//! otherwise, each with a JSON body naming every check and, in `not_ready`, what is wrong:
//!
//! - `store`: the dashboard store answers a query (within [`STORE_TIMEOUT`]).
//! - `kafka`: the brokers leading the dataflow's partitions answered recently, as the Kafka
//!   source's librdkafka statistics report it (nothing here waits on Kafka).
//! - `dataflow`: no worker failed, a first closed time exists, the closed time is at most
//!   [`ReadyLimits::max_closed_age`] behind the wall clock, and no partition's consumer lag is
//!   above [`ReadyLimits::max_lag`] (`--ready-max-lag`).
//!
//! ```text
//! {"status": "not_ready",
//!  "not_ready": ["kafka: the brokers leading our partitions stopped answering"],
//!  "checks": {"store": {"ok": true},
//!             "kafka": {"ok": false, "reason": "the brokers leading our partitions stopped answering"},
//!             "dataflow": {"ok": true, "closed_time": 1796000000000, "watermark_lag_seconds": 0.4,
//!                          "max_consumer_lag_seconds": 0.0, "max_consumer_lag_records": 0}}}
//! ```

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use dataflow::stats::PipelineStats;
use dataflow::time::now_ms;
use serde::Serialize;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use crate::store::Store;

/// How long `/readyz` waits for the dashboard store.
pub const STORE_TIMEOUT: Duration = Duration::from_secs(1);

/// How far behind the dataflow may be and still count as caught up.
#[derive(Clone, Copy, Debug)]
pub struct ReadyLimits {
    /// Largest consumer lag (wall clock minus the event time last read) of any partition.
    pub max_lag: Duration,
    /// Largest distance between the wall clock and the closed time.
    pub max_closed_age: Duration,
}

impl ReadyLimits {
    /// The limits for `--ready-max-lag` and `--watermark-delay`: the closed time may be 5 s
    /// plus the watermark delay behind (it advances a second at a time).
    pub fn new(max_lag: Duration, watermark_delay: Duration) -> ReadyLimits {
        ReadyLimits {
            max_lag,
            max_closed_age: Duration::from_secs(5) + watermark_delay,
        }
    }
}

/// What `/readyz` looks at. Cheap to clone.
#[derive(Clone)]
pub struct Health {
    store: Store,
    stats: Arc<PipelineStats>,
    limits: ReadyLimits,
}

/// One check's verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Check {
    /// Whether it passed.
    pub ok: bool,
    /// What is wrong, when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Check {
    fn from_problems(problems: Vec<String>) -> Check {
        Check {
            ok: problems.is_empty(),
            reason: (!problems.is_empty()).then(|| problems.join("; ")),
        }
    }
}

/// The dataflow check, with the numbers it judged.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DataflowCheck {
    /// The verdict.
    #[serde(flatten)]
    pub check: Check,
    /// The closed time, epoch ms (`null` before the first).
    pub closed_time: Option<u64>,
    /// Wall clock minus the closed time (`null` before the first).
    pub watermark_lag_seconds: Option<f64>,
    /// The largest consumer lag of any partition, in seconds.
    pub max_consumer_lag_seconds: f64,
    /// The largest consumer lag of any partition, in records.
    pub max_consumer_lag_records: i64,
}

/// Every check.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Checks {
    /// The dashboard store.
    pub store: Check,
    /// Kafka.
    pub kafka: Check,
    /// The dataflow.
    pub dataflow: DataflowCheck,
}

/// The body of `/readyz`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    /// `"check: reason"` for every failed check; empty when ready.
    pub not_ready: Vec<String>,
    /// Each check.
    pub checks: Checks,
}

impl Readiness {
    /// Combines the checks.
    pub fn new(checks: Checks) -> Readiness {
        let failed = [
            ("store", &checks.store),
            ("kafka", &checks.kafka),
            ("dataflow", &checks.dataflow.check),
        ];
        let not_ready: Vec<String> = failed
            .iter()
            .filter_map(|(name, check)| check.reason.as_ref().map(|r| format!("{name}: {r}")))
            .collect();
        Readiness {
            status: if not_ready.is_empty() {
                "ready"
            } else {
                "not_ready"
            },
            not_ready,
            checks,
        }
    }

    /// Whether every check passed.
    pub fn is_ready(&self) -> bool {
        self.not_ready.is_empty()
    }
}

impl Health {
    /// Readiness of a server with this store and dataflow.
    pub fn new(store: Store, stats: Arc<PipelineStats>, limits: ReadyLimits) -> Health {
        Health {
            store,
            stats,
            limits,
        }
    }

    /// Runs every check.
    pub async fn readiness(&self) -> Readiness {
        Readiness::new(Checks {
            store: self.store_check().await,
            kafka: kafka_check(&self.stats),
            dataflow: dataflow_check(&self.stats, self.limits, now_ms()),
        })
    }

    async fn store_check(&self) -> Check {
        let answer = tokio::time::timeout(STORE_TIMEOUT, self.store.ping()).await;
        let problem = match answer {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(format!("the dashboard store failed: {error}")),
            Err(_) => Some(format!(
                "the dashboard store did not answer within {STORE_TIMEOUT:?}"
            )),
        };
        Check::from_problems(problem.into_iter().collect())
    }
}

/// Whether Kafka answers, as the Kafka source last saw it.
pub fn kafka_check(stats: &PipelineStats) -> Check {
    let mut problems = Vec::new();
    if !stats.kafka_reachable.load(Ordering::Relaxed) {
        problems.push(
            "the brokers leading our partitions stopped answering (the watermark is held)".into(),
        );
    }
    Check::from_problems(problems)
}

/// Whether the dataflow is caught up at the wall clock `now_ms`.
pub fn dataflow_check(stats: &PipelineStats, limits: ReadyLimits, now_ms: u64) -> DataflowCheck {
    let mut problems = Vec::new();
    if stats.failed.load(Ordering::Relaxed) {
        problems.push("a dataflow worker failed".to_string());
    }
    let closed = Some(stats.closed_time.load(Ordering::Relaxed)).filter(|c| *c > 0);
    let watermark_lag = closed.map(|c| Duration::from_millis(now_ms.saturating_sub(c)));
    match watermark_lag {
        None => problems
            .push("no time closed yet (starting, or replaying Kafka from a checkpoint)".into()),
        Some(lag) if lag > limits.max_closed_age => problems.push(format!(
            "the closed time is {:.1} s behind the wall clock (at most {:.1} s allowed)",
            lag.as_secs_f64(),
            limits.max_closed_age.as_secs_f64()
        )),
        Some(_) => {}
    }
    let partitions = stats.partitions();
    let (mut max_lag_ms, mut max_records) = (0, 0);
    for (partition, progress) in &partitions {
        max_lag_ms = max_lag_ms.max(progress.lag_ms);
        max_records = max_records.max(progress.lag_records);
        let lag = Duration::from_millis(progress.lag_ms);
        if lag > limits.max_lag {
            problems.push(format!(
                "partition {partition} is {:.1} s behind ({} records; at most {:.1} s allowed by --ready-max-lag)",
                lag.as_secs_f64(),
                progress.lag_records,
                limits.max_lag.as_secs_f64()
            ));
        }
    }
    DataflowCheck {
        check: Check::from_problems(problems),
        closed_time: closed,
        watermark_lag_seconds: watermark_lag.map(|l| l.as_secs_f64()),
        max_consumer_lag_seconds: max_lag_ms as f64 / 1_000.0,
        max_consumer_lag_records: max_records,
    }
}

/// `GET /healthz` and `GET /readyz`.
pub fn routes(health: Health) -> BoxedFilter<(Response,)> {
    let healthz = warp::path("healthz")
        .and(warp::path::end())
        .and(warp::get())
        .map(|| warp::reply::json(&serde_json::json!({"status": "ok"})).into_response());
    let readyz = warp::path("readyz")
        .and(warp::path::end())
        .and(warp::get())
        .then(move || {
            let health = health.clone();
            async move {
                let readiness = health.readiness().await;
                let status = if readiness.is_ready() {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                warp::reply::with_status(warp::reply::json(&readiness), status).into_response()
            }
        });
    healthz.or(readyz).unify().boxed()
}

#[cfg(test)]
mod tests;
