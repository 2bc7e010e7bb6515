//! The topic's partitions: looked up at start, and again every few seconds on a thread of its
//! own (the lookup blocks), so partitions added later are read too.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};

use super::{PipelineConfig, PipelineError};
use crate::kafka_log::QuietContext;
use crate::kafka_source::{TopicPartitions, consumer_config};

/// How often the topic's partitions are looked up again, to read partitions added later.
const PARTITION_REFRESH: Duration = Duration::from_secs(10);

/// Looks up the topic's partitions every [`PARTITION_REFRESH`] on a thread of its own (the
/// lookup blocks), until the pipeline stops.
pub(super) fn spawn_partition_watcher(
    config: &PipelineConfig,
    known: Arc<TopicPartitions>,
    stop: Arc<AtomicBool>,
) {
    let (brokers, topic) = (config.brokers.clone(), config.topic.clone());
    let spawned = std::thread::Builder::new()
        .name("partition-watch".into())
        .spawn(move || {
            let mut waited = Duration::ZERO;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                waited += Duration::from_millis(200);
                if waited < PARTITION_REFRESH {
                    continue;
                }
                waited = Duration::ZERO;
                match topic_partitions(&brokers, &topic) {
                    Ok(partitions) => known.update(partitions),
                    Err(error) => {
                        tracing::debug!(%error, "partition lookup failed; retrying later")
                    }
                }
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "cannot watch for new partitions");
    }
}

/// How long to wait for the topic's metadata at startup.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// The partitions of `topic`, asked of the brokers.
pub fn topic_partitions(brokers: &str, topic: &str) -> Result<Vec<i32>, PipelineError> {
    let consumer: BaseConsumer<QuietContext> = consumer_config(brokers)
        .create_with_context(QuietContext::default())
        .map_err(|e| PipelineError::Kafka(format!("creating a consumer for {brokers}: {e}")))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), METADATA_TIMEOUT)
        .map_err(|e| {
            PipelineError::Kafka(format!(
                "reading metadata of topic `{topic}` from {brokers}: {e}"
            ))
        })?;
    let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Err(PipelineError::Kafka(format!(
            "topic `{topic}` not found at {brokers}"
        )));
    };
    if let Some(error) = found.error() {
        return Err(PipelineError::Kafka(format!(
            "topic `{topic}` at {brokers}: {:?}; create it (e.g. with 8 partitions) or pass --topic",
            error
        )));
    }
    let mut partitions: Vec<i32> = found.partitions().iter().map(|p| p.id()).collect();
    partitions.sort_unstable();
    if partitions.is_empty() {
        return Err(PipelineError::Kafka(format!(
            "topic `{topic}` has no partitions"
        )));
    }
    Ok(partitions)
}
