//! The consumer side of the source: librdkafka settings, the context receiving statistics and
//! errors, Kafka's health as seen from those, and the partition list kept up to date by the
//! pipeline's watcher thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, TopicPartitionList};

use super::SourceConfig;
use crate::kafka_log::QuietErrors;
use crate::stats::PipelineStats;
use crate::time::now_ms;

/// The topic's partition ids, refreshed by a watcher thread outside the dataflow (fetching
/// metadata blocks, which an operator must not do).
#[derive(Debug, Default)]
pub struct TopicPartitions {
    version: AtomicU64,
    partitions: std::sync::Mutex<Vec<i32>>,
}

impl TopicPartitions {
    /// Records the partitions now in the topic (bumps the version when they changed).
    pub fn update(&self, mut partitions: Vec<i32>) {
        partitions.sort_unstable();
        if let Ok(mut known) = self.partitions.lock()
            && *known != partitions
        {
            *known = partitions;
            self.version.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Changes whenever the partition list changes.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::SeqCst)
    }

    /// The partition ids.
    pub fn partitions(&self) -> Vec<i32> {
        self.partitions
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default()
    }
}

/// The Kafka consumer settings, each with why it is set.
pub fn consumer_config(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        // Required by librdkafka for a consumer, but unused: partitions are assigned
        // explicitly and offsets are never committed.
        .set("group.id", "flowboard")
        // Checkpoints own the offsets; Kafka commits would be a second, inconsistent truth.
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // Tells us when a partition is caught up, which lets the watermark follow the clock.
        .set("enable.partition.eof", "true")
        // Deliver records soon after they are produced instead of waiting for a full fetch:
        // event-to-browser latency matters more than fetch efficiency at low rates.
        .set("fetch.wait.max.ms", "10")
        // If our offset is gone (retention), start from what is left; the gap is detected
        // and reported as lost records.
        .set("auto.offset.reset", "earliest")
        // Per-partition high watermarks and lag, delivered through the context every second.
        .set("statistics.interval.ms", "1000")
        .set("client.id", "flowboard-source");
    config
}

/// Receives librdkafka statistics and records per-partition high watermarks.
pub(super) struct SourceContext {
    topic: String,
    stats: Arc<PipelineStats>,
    health: Arc<KafkaHealth>,
    errors: QuietErrors,
}

/// Whether the brokers leading our partitions answer, as seen by librdkafka.
///
/// The watermark may only follow the wall clock while Kafka is reachable: otherwise records
/// could be waiting in an unreachable broker, and values would be passed off as current.
#[derive(Debug)]
pub struct KafkaHealth {
    /// Wall-clock time of the last statistics report in which every leader was up.
    last_healthy_ms: AtomicU64,
    /// Set by a transport error, cleared by the next healthy report.
    suspect: AtomicBool,
}

/// How long without a healthy statistics report (sent every second) before Kafka counts as
/// unreachable.
const UNREACHABLE_AFTER_MS: u64 = 3_000;

impl KafkaHealth {
    pub(super) fn new() -> Self {
        KafkaHealth {
            last_healthy_ms: AtomicU64::new(now_ms()),
            suspect: AtomicBool::new(false),
        }
    }

    /// Whether Kafka answered recently.
    pub fn reachable(&self, now: u64) -> bool {
        !self.suspect.load(Ordering::Relaxed)
            && now.saturating_sub(self.last_healthy_ms.load(Ordering::Relaxed))
                <= UNREACHABLE_AFTER_MS
    }
}

impl ClientContext for SourceContext {
    /// Reaching the end of a partition is how we learn it is caught up, not an error.
    fn error(&self, error: KafkaError, reason: &str) {
        let end_of_partition = matches!(
            error,
            KafkaError::PartitionEOF(_)
                | KafkaError::Global(rdkafka::types::RDKafkaErrorCode::PartitionEOF)
        );
        if !end_of_partition {
            self.errors.report("consumer", &error, reason);
        }
        if matches!(
            error,
            KafkaError::Global(
                rdkafka::types::RDKafkaErrorCode::AllBrokersDown
                    | rdkafka::types::RDKafkaErrorCode::BrokerTransportFailure
            )
        ) {
            self.health.suspect.store(true, Ordering::Relaxed);
        }
    }

    fn stats(&self, statistics: Statistics) {
        let Some(topic) = statistics.topics.get(&self.topic) else {
            return;
        };
        let leader_up = |leader: i32| {
            statistics
                .brokers
                .values()
                .any(|broker| broker.nodeid == leader && broker.state == "UP")
        };
        let healthy = topic
            .partitions
            .iter()
            .filter(|(partition, stats)| **partition >= 0 && stats.desired)
            .all(|(_, stats)| leader_up(stats.leader));
        if healthy {
            self.health
                .last_healthy_ms
                .store(now_ms(), Ordering::Relaxed);
            self.health.suspect.store(false, Ordering::Relaxed);
        }

        for (partition, stats) in &topic.partitions {
            if *partition < 0 || stats.hi_offset < 0 || !stats.desired {
                continue;
            }
            self.stats.update_partition(*partition, |progress| {
                progress.high_watermark = stats.hi_offset;
                progress.lag_records = (stats.hi_offset - progress.position).max(0);
            });
        }
    }
}

impl ConsumerContext for SourceContext {}

/// Creates this worker's consumer, assigned to its partitions.
pub(super) fn assigned_consumer(
    config: &SourceConfig,
    stats: &Arc<PipelineStats>,
    health: &Arc<KafkaHealth>,
) -> Result<BaseConsumer<SourceContext>, KafkaError> {
    let context = SourceContext {
        topic: config.topic.clone(),
        stats: stats.clone(),
        health: health.clone(),
        errors: QuietErrors::default(),
    };
    let consumer: BaseConsumer<SourceContext> =
        consumer_config(&config.brokers).create_with_context(context)?;
    let mut assignment = TopicPartitionList::new();
    for (partition, offset) in &config.partitions {
        assignment.add_partition_offset(&config.topic, *partition, *offset)?;
    }
    consumer.assign(&assignment)?;
    Ok(consumer)
}
