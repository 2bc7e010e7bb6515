//! The embedded Kafka broker: librdkafka's mock cluster, in-process.
//!
//! It speaks the real Kafka protocol on a loopback port, so any Kafka client (`kcat`, the
//! flowboard server itself) can produce and consume. It keeps everything in memory, at most
//! about 5 MiB or 100,000 batches per partition (older batches are silently dropped; the
//! source reports the gap as lost records): for trying things out and for tests, not for data
//! you want to keep.

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

/// A running mock cluster with the flowboard topic created.
pub struct EmbeddedBroker {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

/// Errors starting the embedded broker.
#[derive(Debug, thiserror::Error)]
#[error("embedded Kafka broker: {0}")]
pub struct BrokerError(String);

impl EmbeddedBroker {
    /// Starts a one-broker cluster and creates `topic` with `partitions` partitions.
    pub fn start(topic: &str, partitions: i32) -> Result<EmbeddedBroker, BrokerError> {
        let cluster = MockCluster::new(1).map_err(|e| BrokerError(format!("starting: {e}")))?;
        cluster
            .create_topic(topic, partitions, 1)
            .map_err(|e| BrokerError(format!("creating topic `{topic}`: {e}")))?;
        // Where aggregation processes publish widget values for frontends.
        let values = crate::values_topic::DEFAULT_TOPIC;
        cluster
            .create_topic(values, partitions, 1)
            .map_err(|e| BrokerError(format!("creating topic `{values}`: {e}")))?;
        Ok(EmbeddedBroker { cluster })
    }

    /// The `host:port` list clients connect to.
    pub fn bootstrap_servers(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    /// Takes the broker down: clients see it unreachable until [`EmbeddedBroker::broker_up`].
    pub fn broker_down(&self) -> Result<(), BrokerError> {
        self.cluster
            .broker_down(1)
            .map_err(|e| BrokerError(format!("broker down: {e}")))
    }

    /// Brings the broker back up.
    pub fn broker_up(&self) -> Result<(), BrokerError> {
        self.cluster
            .broker_up(1)
            .map_err(|e| BrokerError(format!("broker up: {e}")))
    }
}
