//! Counters the dataflow keeps for the HTTP side: events accepted and rejected by reason,
//! late events, per-partition consumer position and lag, and the watermark.
//!
//! Written by worker threads with relaxed atomics (or a short lock for the per-partition table),
//! read by `/metrics` and health checks. Nothing here is on the per-event path except a
//! counter increment per batch.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::event::RejectReason;

/// Consumer progress on one partition.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PartitionProgress {
    /// Offset of the next record to read.
    pub position: i64,
    /// The partition's high watermark (offset after the last record) when last seen.
    pub high_watermark: i64,
    /// Records behind: `high_watermark - position`.
    pub lag_records: i64,
    /// Wall clock minus the event time of the last record read, when behind; 0 when caught up.
    pub lag_ms: u64,
    /// Records lost because the partition's log start moved past the offset we needed
    /// (retention, or the embedded broker's size limit).
    pub lost_records: u64,
}

/// Counters shared between the workers and the HTTP side.
#[derive(Debug, Default)]
pub struct PipelineStats {
    /// Events decoded from Kafka and counted in panes.
    pub events_accepted: AtomicU64,
    /// Events rejected on the Kafka path, by reason (indexed like [`RejectReason::ALL`]).
    pub events_rejected: [AtomicU64; RejectReason::ALL.len()],
    /// Events that arrived after their pane had closed and entered at the watermark.
    pub events_late: AtomicU64,
    /// Kafka records read.
    pub records_read: AtomicU64,
    /// The dataflow's closed time (minimum over workers), epoch ms.
    pub closed_time: AtomicU64,
    /// Per-partition consumer progress.
    pub partitions: Mutex<BTreeMap<i32, PartitionProgress>>,
    /// Boundary of the newest checkpoint written (0: none yet).
    pub checkpoint_boundary: AtomicU64,
    /// Wall-clock time the newest checkpoint was written, epoch ms.
    pub checkpoint_written_at: AtomicU64,
    /// Bytes of the newest checkpoint's segment chain.
    pub checkpoint_bytes: AtomicU64,
    /// How long writing the newest checkpoint took, microseconds.
    pub checkpoint_duration_us: AtomicU64,
    /// Checkpoints that failed to be written.
    pub checkpoint_failures: AtomicU64,
    /// Whether the Kafka brokers leading our partitions answered recently (per the source).
    pub kafka_reachable: std::sync::atomic::AtomicBool,
    /// How many workers currently cannot reach their brokers.
    pub kafka_unreachable_workers: std::sync::atomic::AtomicUsize,
    /// Set when a worker stopped abnormally: the dataflow no longer makes progress.
    pub failed: std::sync::atomic::AtomicBool,
}

impl PipelineStats {
    /// Counts `n` rejected events of `reason`.
    pub fn reject(&self, reason: RejectReason, n: u64) {
        if let Some(at) = RejectReason::ALL.iter().position(|r| *r == reason) {
            self.events_rejected[at].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Rejected events by reason.
    pub fn rejected(&self) -> Vec<(RejectReason, u64)> {
        RejectReason::ALL
            .iter()
            .zip(&self.events_rejected)
            .map(|(reason, count)| (*reason, count.load(Ordering::Relaxed)))
            .collect()
    }

    /// Records the progress of one partition.
    pub fn set_partition(&self, partition: i32, progress: PartitionProgress) {
        if let Ok(mut partitions) = self.partitions.lock() {
            partitions.insert(partition, progress);
        }
    }

    /// A copy of the per-partition progress table.
    pub fn partitions(&self) -> BTreeMap<i32, PartitionProgress> {
        self.partitions
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default()
    }
}

impl PipelineStats {
    /// Updates the progress of one partition in place.
    pub fn update_partition(&self, partition: i32, update: impl FnOnce(&mut PartitionProgress)) {
        if let Ok(mut partitions) = self.partitions.lock() {
            update(partitions.entry(partition).or_default());
        }
    }
}
