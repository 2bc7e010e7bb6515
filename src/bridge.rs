//! The bridge from timely worker threads to tokio: the dataflow's sink hands batches to an
//! unbounded channel (a send never blocks a worker), and one task applies them to the hub.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use dataflow::sink::{SinkBatch, SinkFn};
use dataflow::stats::PipelineStats;
use tokio::sync::mpsc;

use crate::hub::Hub;
use crate::values_topic::Publisher;

/// A sink callback for the dataflow, and the receiving end to pass to [`forward`].
pub fn channel() -> (SinkFn, mpsc::UnboundedReceiver<SinkBatch>) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let sink: SinkFn = Arc::new(move |batch| {
        // The receiver only goes away at shutdown; batches after that have nowhere to go.
        let _ = sender.send(batch);
    });
    (sink, receiver)
}

/// Hands sink batches to the hub (when this process serves its own dataflow's values) and to
/// the values topic (when values are published), until the dataflow stops, keeping the closed
/// time and the consumer lag in the dataflow's statistics.
pub async fn forward(
    mut batches: mpsc::UnboundedReceiver<SinkBatch>,
    hub: Option<Hub>,
    publisher: Option<Publisher>,
    stats: Arc<PipelineStats>,
    workers: usize,
) {
    let mut closed: Vec<Option<u64>> = vec![None; workers];
    while let Some(batch) = batches.recv().await {
        let lag_ms = stats
            .partitions()
            .values()
            .map(|p| p.lag_ms)
            .max()
            .unwrap_or(0);
        if let Some(publisher) = &publisher {
            publisher.publish(&batch, lag_ms);
        }
        let Some(hub) = &hub else { continue };
        if let Some(slot) = closed.get_mut(batch.worker) {
            *slot = Some(batch.closed_through);
        }
        if let Some(min) = closed
            .iter()
            .copied()
            .collect::<Option<Vec<u64>>>()
            .and_then(|c| c.into_iter().min())
        {
            stats.closed_time.store(min, Ordering::Relaxed);
        }
        hub.set_consumer_lag(lag_ms);
        hub.apply(batch);
    }
}
