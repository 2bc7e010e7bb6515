//! The Kafka source: reads this worker's partitions, decodes events, pre-aggregates them into
//! panes per series, and advances the dataflow's time with the watermark.
//!
//! Each worker owns a fixed subset of the topic's partitions (`partition % workers == index`)
//! and reads them with its own `BaseConsumer` and an explicit `assign`: no consumer group, no
//! rebalancing. Offsets are ours to choose (checkpoints own them); Kafka commits are never used.
//!
//! Events are pre-aggregated before they leave the worker: one [`SeriesPane`] per series, pane
//! and tick (the sample itself while it is one), so what crosses the exchange grows with the number of series, not with the event rate.
//! An event enters the dataflow at the end of its pane; one whose pane has already closed
//! (late) enters at the current open tick and still counts for the rest of its life; one older
//! than the retention, or further in the future than the allowed clock skew, is dropped and
//! counted. The operator never blocks: it polls with a zero timeout, is woken by librdkafka when
//! messages arrive, and wakes itself to close ticks as the wall clock passes them.
//!
//! # Layout
//!
//! - [`client`]: consumer settings, statistics and error handling, Kafka's health, the topic's
//!   partition list.
//! - `reader`: per-partition cursors, the watermark, decoding, checkpoint pieces.
//! - [`PendingPanes`]: panes held until their tick closes (public for the benchmarks).

pub mod client;
mod pending;
mod reader;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use operators::series_pane::SeriesPane;
use rdkafka::Offset;
use rdkafka::error::KafkaError;
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::{Scope, Stream};

pub use client::{KafkaHealth, TopicPartitions, consumer_config};
pub use pending::{PendingPanes, TickPanes};

use crate::checkpoint::{Boundaries, Piece, PieceSender};
use crate::series::SeriesKey;
use crate::stats::PipelineStats;
use crate::time::{PANE_MS, now_ms};
use client::assigned_consumer;
use reader::Reader;

/// Pre-aggregated panes of one series: `(pane end, partials of its samples)`, usually one.
pub type PaneRecord = (SeriesKey, Vec<(u64, SeriesPane)>);

/// What one worker's source reads and how it stamps time.
#[derive(Clone, Debug)]
pub struct SourceConfig {
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// The topic.
    pub topic: String,
    /// The partitions this worker reads, each with the offset to start at.
    pub partitions: Vec<(i32, Offset)>,
    /// See `PipelineConfig::grace_ms`.
    pub grace_ms: u64,
    /// See `PipelineConfig::max_future_ms`.
    pub max_future_ms: u64,
    /// See `PipelineConfig::retention_ms`.
    pub retention_ms: u64,
    /// The first tick this source may emit at: one past the restored checkpoint's boundary.
    pub start_tick: u64,
    /// This worker's index, for checkpoint pieces.
    pub worker: usize,
    /// Where to send checkpoint pieces, and at which ticks; `None` without checkpoints.
    pub checkpoints: Option<(Boundaries, PieceSender)>,
    /// The topic's partitions as last seen by the pipeline's watcher, to pick up new ones.
    pub topic_partitions: Option<Arc<TopicPartitions>>,
}

/// Longest sleep between activations when nothing arrives (for lag statistics and ticks).
const IDLE_WAKEUP: Duration = Duration::from_millis(100);

/// Builds the source for this worker. A worker without partitions still advances time with
/// the wall clock.
pub fn kafka_source<'scope>(
    scope: Scope<'scope, u64>,
    config: SourceConfig,
    stats: Arc<PipelineStats>,
    stop: Arc<AtomicBool>,
) -> Result<Stream<'scope, u64, Vec<PaneRecord>>, KafkaError> {
    let health = Arc::new(KafkaHealth::new());
    let mut consumer = assigned_consumer(&config, &stats, &health)?;
    let (worker, peers) = (scope.index(), scope.peers());
    let checkpoints = config.checkpoints.clone();
    let (start_tick, grace_ms) = (config.start_tick, config.grace_ms);
    let mut reader = Reader::new(config, stats);

    Ok(source(scope, "KafkaSource", move |capability, info| {
        let activator = scope.activator_for(info.address.clone());
        // librdkafka calls this from its own thread when messages arrive: wake the worker.
        let wake = scope.worker().sync_activator_for(info.address.to_vec());
        consumer.set_nonempty_callback(move || {
            let _ = wake.activate();
        });
        let mut capability = Some(capability);
        if let Some(cap) = capability.as_mut() {
            cap.downgrade(&start_tick);
        }

        move |output| {
            if stop.load(Ordering::Relaxed) {
                capability = None;
                return;
            }
            let Some(cap) = capability.as_mut() else {
                return;
            };
            let open = *cap.time();
            let now = now_ms();
            reader.discover_partitions(&consumer, worker, peers);
            let more = reader.read(&consumer, open, now);
            let next_open = (reader.closed_through(&health, now) + PANE_MS).max(open);

            // Emit the ticks now closed. At each checkpoint boundary among them: first the
            // ticks up to it, then the piece (offsets read, panes held for later ticks).
            if let Some((boundaries, pieces)) = checkpoints.as_ref() {
                for boundary in
                    boundaries.crossed(open.saturating_sub(PANE_MS), next_open - PANE_MS)
                {
                    for (tick, panes) in reader.pending.take_closed(boundary + PANE_MS) {
                        output
                            .session(&cap.delayed(&tick.max(open)))
                            .give_iterator(panes.into_values());
                    }
                    pieces.send(Piece::Source(reader.piece(boundary)));
                }
            }
            for (tick, panes) in reader.pending.take_closed(next_open) {
                output
                    .session(&cap.delayed(&tick.max(open)))
                    .give_iterator(panes.into_values());
            }
            if next_open > open {
                cap.downgrade(&next_open);
            }

            if more {
                activator.activate();
            } else {
                // Wake up when the wall clock closes the next tick, or to refresh statistics.
                let next_close = next_open + grace_ms;
                let until_close = Duration::from_millis(next_close.saturating_sub(now_ms()).max(1));
                activator.activate_after(until_close.min(IDLE_WAKEUP));
            }
        }
    }))
}
