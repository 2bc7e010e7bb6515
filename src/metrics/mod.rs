//! `GET /metrics`: the server's metrics in the Prometheus text format.
//!
//! Two kinds of metrics meet in one registry. Instruments on the measuring paths
//! ([`IngestMetrics`] in `POST /ingest`, [`HubMetrics`] in the value hub) are `prometheus`
//! handles, observed with a few atomic operations. Everything the dataflow and the hub already
//! count (events per reason, partition lag, closed time, checkpoints, connections,
//! subscriptions) is read at scrape time by the `scrape` module, so the dataflow stays free of any
//! metrics library and nothing is added to the per-event path. Every metric is listed, with
//! its meaning, in the README's Observability section (a unit test keeps the two in step).
//!
//! The `prometheus` crate is used without its default features: an explicit [`Registry`]
//! rather than a process-global recorder (tests build as many servers as they like), and the
//! text encoder only (no protobuf).
//!
//! # Examples
//!
//! ```
//! use std::sync::Arc;
//! use flowboard::hub::Hub;
//! use flowboard::metrics::{IngestMetrics, MetricSources, Metrics};
//!
//! let metrics = Metrics::new(MetricSources {
//!     stats: Arc::new(dataflow::stats::PipelineStats::default()),
//!     hub: Hub::new(1),
//!     ingest: IngestMetrics::new(),
//!     workers: 1,
//!     checkpoint_interval: std::time::Duration::from_secs(10),
//!     retention: std::time::Duration::from_secs(3600),
//! });
//! let text = metrics.render().unwrap();
//! assert!(text.contains("flowboard_dataflow_workers 1\n"));
//! ```

mod instruments;
mod scrape;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, PoisonError};

use dataflow::time::now_ms;
use prometheus::{Encoder, Registry, TextEncoder};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::http::header::CONTENT_TYPE;
use warp::reply::{Reply, Response};

pub use self::instruments::{
    HubMetrics, IngestMetrics, IngestOutcome, LATENCY_BUCKETS, REASON_KAFKA_UNAVAILABLE,
    REASON_RATE_LIMITED, REASON_REQUEST_INVALID, REASON_TOO_MANY_EVENTS, REQUEST_BUCKETS,
};
pub use self::scrape::MetricSources;
use self::scrape::Scraped;

/// The server's metrics registry. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    /// Scrape-time families; the lock keeps a refresh and its encoding together.
    scraped: Mutex<Scraped>,
}

/// Why the metrics could not be rendered.
#[derive(Debug, thiserror::Error)]
#[error("encoding metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

impl Metrics {
    /// A registry of every flowboard metric, reading `sources` at each scrape.
    pub fn new(sources: MetricSources) -> Metrics {
        let registry = Registry::new();
        let scraped = Scraped::new(sources, now_ms());
        for collector in scraped.collectors() {
            // Every family has its own name, so registration cannot conflict.
            if let Err(error) = registry.register(collector) {
                tracing::error!(%error, "metric not registered");
            }
        }
        let build = prometheus::IntGaugeVec::new(
            prometheus::Opts::new(
                "flowboard_build_info",
                "Always 1; the version label names the running flowboard.",
            ),
            &["version"],
        )
        .expect("valid metric");
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        if let Err(error) = registry.register(Box::new(build)) {
            tracing::error!(%error, "metric not registered");
        }
        Metrics {
            inner: Arc::new(Inner {
                registry,
                scraped: Mutex::new(scraped),
            }),
        }
    }

    /// The current values in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> Result<String, MetricsError> {
        let scraped = self
            .inner
            .scraped
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        scraped.refresh(now_ms());
        let families = self.inner.registry.gather();
        let mut text = Vec::new();
        TextEncoder::new().encode(&families, &mut text)?;
        drop(scraped);
        Ok(String::from_utf8_lossy(&text).into_owned())
    }
}

/// `GET /metrics`.
pub fn routes(metrics: Metrics) -> BoxedFilter<(Response,)> {
    warp::path("metrics")
        .and(warp::path::end())
        .and(warp::get())
        .map(move || match metrics.render() {
            Ok(text) => {
                warp::reply::with_header(text, CONTENT_TYPE, TextEncoder::new().format_type())
                    .into_response()
            }
            Err(error) => {
                tracing::error!(%error, "rendering /metrics failed");
                warp::reply::with_status(error.to_string(), StatusCode::INTERNAL_SERVER_ERROR)
                    .into_response()
            }
        })
        .boxed()
}
