//! `POST /ingest`: validates events and produces them to Kafka, answering only once Kafka has
//! acknowledged them.
//!
//! A request is validated as a whole before anything is written: the first bad event gets a
//! `400` naming its index and field, and nothing of the request reaches Kafka. Valid events
//! without an `event_time` are stamped with the time the request arrived, so a replay of the
//! topic computes the same values. Events are grouped by metric name into one JSON-array record
//! per metric (keyed by the metric name, so a metric's events stay in one partition and in
//! order). `202 {"accepted": n}` is sent when every record is acknowledged; if Kafka cannot take
//! them within the ingest timeout the answer is `503` (records already acknowledged stay
//! written: retrying may duplicate them).
//!
//! Limits ([`Ingest::with_limits`]): a request of more than `--max-events-per-request` events
//! is `413` (counted before any event is decoded); tags over the tag limits are a `400` naming
//! `tags`; with `--ingest-rate`, a request its token's (or, with open ingest, its client
//! address's) [bucket](rate) cannot pay for is `429` with `Retry-After`. Refused requests write
//! nothing, and the rate is checked only once a request is valid, so invalid requests cost a
//! producer nothing of its rate.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dataflow::event::{self, Event, EventError, TagLimits};
use dataflow::kafka_log::QuietContext;
use dataflow::time::now_ms;
use futures_util::future::join_all;
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

use crate::auth::{Auth, Role};
use crate::config::Limits;
use crate::error::ApiError;
use crate::metrics::{
    IngestMetrics, IngestOutcome, REASON_KAFKA_UNAVAILABLE, REASON_RATE_LIMITED,
    REASON_TOO_MANY_EVENTS,
};

pub mod rate;

pub use rate::{RateKey, RateLimiter};

/// Why an ingest request failed.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// An event is invalid; nothing was written.
    #[error(transparent)]
    Invalid(#[from] EventError),
    /// The request holds no events.
    #[error("the request holds no events")]
    Empty,
    /// The request holds more events than allowed; nothing was written.
    #[error("the request holds {count} events; at most {limit} are allowed per request (split it)")]
    TooManyEvents {
        /// Events in the request.
        count: usize,
        /// `--max-events-per-request`.
        limit: usize,
    },
    /// The sender's rate limit has no room for the request now; nothing was written.
    #[error("ingest rate limit reached; retry in {retry_after} s")]
    RateLimited {
        /// Seconds until the request would be let through.
        retry_after: u64,
    },
    /// Kafka did not acknowledge in time, or refused.
    #[error("kafka unavailable: {0}")]
    Unavailable(String),
}

/// Produces ingested events to Kafka. Cheap to clone.
#[derive(Clone)]
pub struct Ingest {
    producer: FutureProducer<QuietContext>,
    topic: Arc<str>,
    timeout: Duration,
    max_clock_skew_ms: u64,
    metrics: IngestMetrics,
    max_events: usize,
    tags: TagLimits,
    rate: Option<Arc<RateLimiter>>,
}

impl Ingest {
    /// A producer for `topic` at `brokers`; a request fails with 503 if Kafka has not
    /// acknowledged it within `timeout`.
    pub fn new(
        brokers: &str,
        topic: &str,
        timeout: Duration,
        max_clock_skew: Duration,
    ) -> Result<Ingest, IngestError> {
        let producer: FutureProducer<QuietContext> = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            // Wait for all in-sync replicas: a 202 must mean the events are durable.
            .set("acks", "all")
            // Retries inside librdkafka must not duplicate records.
            .set("enable.idempotence", "true")
            // Give up (and answer 503) when Kafka has not acknowledged within the ingest timeout.
            .set("message.timeout.ms", timeout.as_millis().to_string())
            // Batch concurrent requests together; a few ms of latency for much higher throughput.
            .set("linger.ms", "5")
            .set("compression.type", "lz4")
            .set("client.id", "flowboard-ingest")
            .create_with_context(QuietContext::default())
            .map_err(|e| IngestError::Unavailable(format!("creating the producer: {e}")))?;
        Ok(Ingest {
            producer,
            topic: topic.into(),
            timeout,
            max_clock_skew_ms: max_clock_skew.as_millis() as u64,
            metrics: IngestMetrics::new(),
            max_events: Limits::default().events_per_request,
            tags: TagLimits::DEFAULT,
            rate: None,
        })
    }

    /// Applies the events-per-request, tag and rate limits of `limits`.
    pub fn with_limits(mut self, limits: &Limits) -> Ingest {
        self.max_events = limits.events_per_request;
        self.tags = limits.tags;
        self.rate = limits
            .ingest_rate
            .map(|rate| Arc::new(RateLimiter::new(rate)));
        self
    }

    /// Events accepted and rejected by reason, and request durations (registered by
    /// [`crate::metrics::Metrics`]).
    pub fn metrics(&self) -> IngestMetrics {
        self.metrics.clone()
    }

    /// Validates `body` (one event or an array) and writes it; returns how many events were
    /// accepted. `sender` is whose rate limit it counts against. Counts the events and times
    /// the request for `/metrics`.
    pub async fn ingest(&self, body: &[u8], sender: &RateKey) -> Result<usize, IngestError> {
        let started = Instant::now();
        let result = self.validate_and_produce(body, sender).await;
        let outcome = match &result {
            Ok(accepted) => {
                self.metrics.accepted(*accepted);
                IngestOutcome::Accepted
            }
            Err(IngestError::Unavailable(_)) => IngestOutcome::Unavailable,
            Err(IngestError::RateLimited { .. }) => IngestOutcome::RateLimited,
            Err(_) => IngestOutcome::Invalid,
        };
        self.metrics.request(outcome, started.elapsed());
        result
    }

    async fn validate_and_produce(
        &self,
        body: &[u8],
        sender: &RateKey,
    ) -> Result<usize, IngestError> {
        let arrived = now_ms();
        let count = events_in(body);
        if count > self.max_events {
            self.metrics.rejected(REASON_TOO_MANY_EVENTS, count);
            return Err(IngestError::TooManyEvents {
                count,
                limit: self.max_events,
            });
        }
        let decoded = event::decode_with(body, &self.tags);
        if decoded.iter().any(Result::is_err) {
            let valid = decoded.iter().filter(|e| e.is_ok()).count();
            let reasons = decoded
                .iter()
                .filter_map(|e| e.as_ref().err().map(|e| e.reason));
            self.metrics.invalid_request(reasons, valid);
        }
        let mut events = decoded.into_iter().collect::<Result<Vec<Event>, _>>()?;
        if events.is_empty() {
            return Err(IngestError::Empty);
        }
        let too_far = |event: &Event| {
            event
                .event_time
                .is_some_and(|time| time > arrived + self.max_clock_skew_ms)
        };
        let future = events.iter().filter(|e| too_far(e)).count();
        if future > 0 {
            self.metrics.invalid_request(
                std::iter::repeat_n(event::RejectReason::TooFarInFuture, future),
                events.len() - future,
            );
        }
        for (index, event) in events.iter_mut().enumerate() {
            let time = *event.event_time.get_or_insert(arrived);
            if time > arrived + self.max_clock_skew_ms {
                return Err(IngestError::Invalid(EventError {
                    index: Some(index),
                    field: "event_time".into(),
                    reason: event::RejectReason::TooFarInFuture,
                    message: format!(
                        "event_time {time} is {} ms in the future; at most {} ms is allowed",
                        time - arrived,
                        self.max_clock_skew_ms
                    ),
                }));
            }
        }
        let count = events.len();
        if let Some(rate) = &self.rate
            && let Err(retry_after) = rate.take(sender, count, tokio::time::Instant::now())
        {
            self.metrics.rejected(REASON_RATE_LIMITED, count);
            return Err(IngestError::RateLimited { retry_after });
        }
        if let Err(error) = self.produce(events).await {
            self.metrics.rejected(REASON_KAFKA_UNAVAILABLE, count);
            return Err(error);
        }
        Ok(count)
    }

    async fn produce(&self, events: Vec<Event>) -> Result<(), IngestError> {
        let mut by_metric: BTreeMap<String, Vec<Event>> = BTreeMap::new();
        for event in events {
            by_metric
                .entry(event.metric_name.clone())
                .or_default()
                .push(event);
        }
        let mut records = Vec::with_capacity(by_metric.len());
        for (metric, events) in &by_metric {
            let payload =
                serde_json::to_vec(events).map_err(|e| IngestError::Unavailable(e.to_string()))?;
            records.push((metric.clone(), payload));
        }
        let sends = records.iter().map(|(metric, payload)| {
            let record = FutureRecord::to(&self.topic)
                .key(metric.as_str())
                .payload(payload.as_slice());
            self.producer.send(record, Timeout::After(self.timeout))
        });
        // librdkafka's idempotent producer does not always enforce its message timeout while
        // no broker is reachable: bound the wait ourselves, so a client gets its 503 in time.
        let Ok(results) = tokio::time::timeout(self.timeout, join_all(sends)).await else {
            return Err(IngestError::Unavailable(format!(
                "not acknowledged within {:?}",
                self.timeout
            )));
        };
        for result in results {
            if let Err((error, _)) = result {
                return Err(IngestError::Unavailable(error.to_string()));
            }
        }
        Ok(())
    }
}

/// How many events a body holds: the elements of its array (counted without decoding them),
/// else 1. A body that is not JSON counts as 1 (decoding then says what is wrong).
fn events_in(body: &[u8]) -> usize {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'[') {
        return 1;
    }
    // A vector of a zero-sized type: counts without allocating.
    serde_json::from_slice::<Vec<serde::de::IgnoredAny>>(body).map_or(1, |events| events.len())
}

/// `POST /ingest`, with request bodies up to `body_limit` bytes. With `open` ingest (no
/// ingest token) the rate limit is per client address, else per token.
pub fn routes(ingest: Ingest, body_limit: u64, auth: Auth, open: bool) -> BoxedFilter<(Response,)> {
    warp::path("ingest")
        .and(warp::path::end())
        .and(warp::post())
        .and(auth.require(Role::Ingest))
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::addr::remote())
        .and(crate::api::extract::body(body_limit))
        .then(
            move |authorization: Option<String>, remote: Option<SocketAddr>, body: Vec<u8>| {
                let ingest = ingest.clone();
                // Only requests with a valid token (or any, when open) get here.
                let token = authorization
                    .as_deref()
                    .and_then(|header| header.split_whitespace().nth(1))
                    .map(str::to_string);
                let sender = match (open, token, remote) {
                    (false, Some(token), _) => RateKey::Token(token),
                    (_, _, Some(remote)) => RateKey::Address(remote.ip()),
                    _ => RateKey::Unknown,
                };
                async move {
                    match ingest.ingest(&body, &sender).await {
                        Ok(accepted) => warp::reply::with_status(
                            warp::reply::json(&serde_json::json!({ "accepted": accepted })),
                            StatusCode::ACCEPTED,
                        )
                        .into_response(),
                        Err(error) => ApiError::from(error).into_response(),
                    }
                }
            },
        )
        .boxed()
}
