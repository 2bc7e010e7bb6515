//! The values topic: how aggregation processes hand widget values to WebSocket frontends that
//! are not members of the timely cluster, and to each other.
//!
//! Every aggregation process publishes its workers' sink batches to a compacted Kafka topic
//! (`flowboard-values` by default): one record per changed widget value, keyed by widget, and
//! one progress record per batch, keyed by worker, saying how far that worker has closed time.
//! A worker's records all go to one partition (`worker % partitions`), so a reader sees its
//! values before the progress that covers them. Compaction keeps the latest value of every
//! widget and the latest progress of every worker, so a frontend that starts (or restarts)
//! reads the topic from the beginning and has the current snapshot at once, then follows it.
//!
//! A reader rebuilds the workers' sink batches and hands them to its [`Hub`], which holds each
//! value until every worker's closed time has passed it, exactly as in one process. When the
//! aggregation cluster stops, progress stops: values turn stale in every frontend and come back
//! when it resumes.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dataflow::kafka_log::QuietContext;
use dataflow::sink::{SinkBatch, WidgetUpdate};
use dataflow::stats::PipelineStats;
use dataflow::widget::WidgetKey;
use operators::window_aggregate::WindowChange;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::hub::Hub;

/// The topic values are published to unless configured otherwise.
pub const DEFAULT_TOPIC: &str = "flowboard-values";

/// One record of the values topic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Record {
    /// A widget's new value (`null`: the aggregation has none) as of a closed time.
    Value {
        worker: usize,
        widget_id: Uuid,
        generation: u64,
        value: Option<f64>,
        as_of: u64,
    },
    /// A widget no longer maintained.
    Removed {
        worker: usize,
        widget_id: Uuid,
        generation: u64,
        as_of: u64,
    },
    /// Every time up to `closed_through` is closed at `worker`, one of `workers`; its process's
    /// Kafka consumer lags `lag_ms` behind (widgets with shorter windows are incomplete).
    Progress {
        worker: usize,
        workers: usize,
        closed_through: u64,
        #[serde(default)]
        lag_ms: u64,
    },
}

/// Errors setting up the values topic.
#[derive(Debug, thiserror::Error)]
#[error("values topic `{topic}`: {message}")]
pub struct ValuesTopicError {
    topic: String,
    message: String,
}

/// Creates the values topic if it does not exist: compacted, `partitions` partitions.
pub async fn ensure_topic(
    brokers: &str,
    topic: &str,
    partitions: i32,
) -> Result<(), ValuesTopicError> {
    let fail = |message: String| ValuesTopicError {
        topic: topic.to_string(),
        message,
    };
    let (lookup_brokers, lookup_topic) = (brokers.to_string(), topic.to_string());
    let existing =
        tokio::task::spawn_blocking(move || partition_count(&lookup_brokers, &lookup_topic))
            .await
            .map_err(|e| fail(e.to_string()))?;
    if existing.is_some_and(|count| count > 0) {
        return Ok(());
    }
    let admin: AdminClient<QuietContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create_with_context(QuietContext::default())
        .map_err(|e| fail(format!("creating an admin client: {e}")))?;
    let new = NewTopic::new(topic, partitions.max(1), TopicReplication::Fixed(1))
        // Keep the latest record per key: every widget's value, every worker's progress.
        .set("cleanup.policy", "compact");
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let created = tokio::time::timeout(
        Duration::from_secs(15),
        admin.create_topics([&new], &options),
    )
    .await
    .map_err(|_| fail("Kafka did not answer the request to create it within 15 s".into()))?
    .map_err(|e| fail(e.to_string()))?;
    for result in created {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(fail(format!("cannot create it: {code}"))),
        }
    }
    tracing::info!(%topic, partitions, "created the values topic (compacted)");
    Ok(())
}

/// The number of partitions of `topic`, if Kafka knows it (blocks up to 10 s).
fn partition_count(brokers: &str, topic: &str) -> Option<usize> {
    let consumer: BaseConsumer<QuietContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create_with_context(QuietContext::default())
        .ok()?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .ok()?;
    let found = metadata.topics().iter().find(|t| t.name() == topic)?;
    found.error().is_none().then(|| found.partitions().len())
}

/// Publishes sink batches to the values topic. Sending never blocks: records are queued in
/// librdkafka and delivered by its thread.
pub struct Publisher {
    producer: ThreadedProducer<rdkafka::producer::DefaultProducerContext>,
    topic: String,
    partitions: i32,
    workers: usize,
    dropped: AtomicBool,
}

impl Publisher {
    /// A publisher for a dataflow of `workers` workers in all (every process).
    pub fn new(brokers: &str, topic: &str, workers: usize) -> Result<Publisher, ValuesTopicError> {
        let fail = |message: String| ValuesTopicError {
            topic: topic.to_string(),
            message,
        };
        let producer: ThreadedProducer<_> = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            // Values of one worker must stay in order (a value before the progress covering it).
            .set("enable.idempotence", "true")
            // Frontends want values soon; batches are small and frequent.
            .set("linger.ms", "2")
            .set("client.id", "flowboard-values")
            .create()
            .map_err(|e| fail(format!("creating the producer: {e}")))?;
        let metadata = producer
            .client()
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .map_err(|e| fail(format!("reading its metadata: {e}")))?;
        let partitions = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map_or(0, |t| t.partitions().len() as i32);
        if partitions == 0 {
            return Err(fail("it has no partitions (create it, compacted)".into()));
        }
        Ok(Publisher {
            producer,
            topic: topic.to_string(),
            partitions,
            workers,
            dropped: AtomicBool::new(false),
        })
    }

    /// Publishes one worker's batch: its value changes, then its progress (with how far this
    /// process's consumer lags).
    pub fn publish(&self, batch: &SinkBatch, lag_ms: u64) {
        let partition = (batch.worker % self.partitions as usize) as i32;
        for update in &batch.updates {
            let WidgetKey { id, generation } = update.widget;
            let record = match update.change {
                WindowChange::Value(value) => Record::Value {
                    worker: batch.worker,
                    widget_id: id,
                    generation,
                    value,
                    as_of: update.as_of,
                },
                WindowChange::Removed => Record::Removed {
                    worker: batch.worker,
                    widget_id: id,
                    generation,
                    as_of: update.as_of,
                },
            };
            self.send(partition, &format!("widget:{id}"), &record);
        }
        let progress = Record::Progress {
            worker: batch.worker,
            workers: self.workers,
            closed_through: batch.closed_through,
            lag_ms,
        };
        self.send(partition, &format!("progress:{}", batch.worker), &progress);
    }

    fn send(&self, partition: i32, key: &str, record: &Record) {
        let Ok(payload) = serde_json::to_vec(record) else {
            return;
        };
        let sent = self.producer.send(
            BaseRecord::to(&self.topic)
                .partition(partition)
                .key(key)
                .payload(&payload),
        );
        match sent {
            Ok(()) => self.dropped.store(false, Ordering::Relaxed),
            Err((error, _)) => {
                if !self.dropped.swap(true, Ordering::Relaxed) {
                    // Frontends see the values stop (stale) until the queue drains; say so once.
                    tracing::error!(%error, "cannot queue values for the values topic; frontends will show stale values");
                }
            }
        }
    }
}

/// Reads the values topic from the beginning, forever, into `hub` (on a thread of its own: it
/// blocks on Kafka). Keeps `stats.closed_time` and `stats.kafka_reachable` up to date for
/// `/metrics` and `/readyz`.
pub fn spawn_reader(
    brokers: &str,
    topic: &str,
    hub: Hub,
    stats: Arc<PipelineStats>,
) -> Result<(), ValuesTopicError> {
    let fail = |message: String| ValuesTopicError {
        topic: topic.to_string(),
        message,
    };
    let consumer: BaseConsumer<QuietContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "flowboard-values-reader")
        // Every reader reads everything, from the beginning: no group, no commits.
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create_with_context(QuietContext::default())
        .map_err(|e| fail(format!("creating the consumer: {e}")))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(|e| fail(format!("reading its metadata: {e}")))?;
    let mut assignment = TopicPartitionList::new();
    for topic_metadata in metadata.topics().iter().filter(|t| t.name() == topic) {
        for partition in topic_metadata.partitions() {
            assignment
                .add_partition_offset(topic, partition.id(), Offset::Beginning)
                .map_err(|e| fail(e.to_string()))?;
        }
    }
    if assignment.count() == 0 {
        return Err(fail("it has no partitions".into()));
    }
    consumer
        .assign(&assignment)
        .map_err(|e| fail(e.to_string()))?;
    std::thread::Builder::new()
        .name("values-reader".into())
        .spawn(move || read(consumer, hub, stats))
        .map_err(|e| fail(e.to_string()))?;
    Ok(())
}

/// Rebuilds sink batches from records and applies them.
#[derive(Default)]
struct Rebuild {
    workers: usize,
    pending: HashMap<usize, Vec<WidgetUpdate>>,
    /// Latest as-of seen per widget: a value read late from another worker's partition (after
    /// the widget moved between workers) never replaces a newer one.
    newest: HashMap<Uuid, u64>,
    closed: HashMap<usize, u64>,
    /// Each worker's process's consumer lag, as last published.
    lags: HashMap<usize, u64>,
}

fn read(consumer: BaseConsumer<QuietContext>, hub: Hub, stats: Arc<PipelineStats>) {
    let mut rebuild = Rebuild::default();
    loop {
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Ok(message)) => {
                stats.kafka_reachable.store(true, Ordering::Relaxed);
                let Some(payload) = message.payload() else {
                    continue;
                };
                match serde_json::from_slice::<Record>(payload) {
                    Ok(record) => rebuild.take(record, &hub, &stats),
                    Err(error) => {
                        tracing::warn!(%error, "skipping an unreadable record of the values topic")
                    }
                }
            }
            Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(error)) => {
                stats.kafka_reachable.store(false, Ordering::Relaxed);
                tracing::debug!(%error, "values topic");
            }
        }
    }
}

impl Rebuild {
    fn take(&mut self, record: Record, hub: &Hub, stats: &PipelineStats) {
        let (worker, widget_id, generation, change, as_of) = match record {
            Record::Progress {
                worker,
                workers,
                closed_through,
                lag_ms,
            } => {
                if workers != self.workers {
                    self.workers = workers;
                    hub.set_workers(workers);
                    self.closed.retain(|w, _| *w < workers);
                    self.lags.retain(|w, _| *w < workers);
                }
                if worker >= workers {
                    return; // a worker of a larger, earlier cluster
                }
                self.closed.insert(worker, closed_through);
                self.lags.insert(worker, lag_ms);
                hub.set_consumer_lag(self.lags.values().copied().max().unwrap_or(0));
                if self.closed.len() == workers
                    && let Some(min) = self.closed.values().min()
                {
                    stats.closed_time.store(*min, Ordering::Relaxed);
                }
                let updates = self.pending.remove(&worker).unwrap_or_default();
                hub.apply(SinkBatch {
                    worker,
                    closed_through,
                    updates,
                });
                return;
            }
            Record::Value {
                worker,
                widget_id,
                generation,
                value,
                as_of,
            } => (
                worker,
                widget_id,
                generation,
                WindowChange::Value(value),
                as_of,
            ),
            Record::Removed {
                worker,
                widget_id,
                generation,
                as_of,
            } => (worker, widget_id, generation, WindowChange::Removed, as_of),
        };
        let newest = self.newest.entry(widget_id).or_insert(0);
        if as_of < *newest {
            return;
        }
        *newest = as_of;
        self.pending.entry(worker).or_default().push(WidgetUpdate {
            widget: WidgetKey {
                id: widget_id,
                generation,
            },
            change,
            as_of,
        });
    }
}
