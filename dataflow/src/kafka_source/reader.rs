//! One worker's reading state: per-partition cursors, the watermark, decoding records into
//! pending panes, and the checkpoint piece of a boundary.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, Timestamp as KafkaTimestamp};
use rdkafka::{Offset, TopicPartitionList};

use super::SourceConfig;
use super::client::{KafkaHealth, SourceContext};
use super::pending::PendingPanes;
use crate::checkpoint::SourcePiece;
use crate::event::{self, RejectReason};
use crate::series::SeriesRef;
use crate::stats::PipelineStats;
use crate::time::{PANE_MS, Watermarks, pane_end};

/// Most messages handled in one activation, so other operators get their turn.
const MESSAGES_PER_ACTIVATION: usize = 20_000;
/// Longest time spent reading in one activation.
const TIME_PER_ACTIVATION: Duration = Duration::from_millis(20);

/// Reading state of one partition.
#[derive(Debug, Default)]
struct Cursor {
    /// Offset of the next record we expect; `None` until the first record from `Beginning`.
    expected: Option<i64>,
    /// Event time of the newest event read.
    newest_event: u64,
    /// Whether the consumer reached the partition's end since it last had a record.
    caught_up: bool,
    /// Records lost to a moved log start, not yet reported to the statistics.
    lost: u64,
}

/// See the module documentation.
pub(super) struct Reader {
    config: SourceConfig,
    stats: Arc<PipelineStats>,
    cursors: HashMap<i32, Cursor>,
    watermarks: Watermarks,
    pub(super) pending: PendingPanes,
    partitions_seen: u64,
    reachable: bool,
}

impl Reader {
    pub(super) fn new(config: SourceConfig, stats: Arc<PipelineStats>) -> Reader {
        let ids: Vec<i32> = config.partitions.iter().map(|(p, _)| *p).collect();
        let cursors = config
            .partitions
            .iter()
            .map(|(partition, offset)| {
                let expected = match offset {
                    Offset::Offset(at) => Some(*at),
                    _ => None,
                };
                (
                    *partition,
                    Cursor {
                        expected,
                        ..Cursor::default()
                    },
                )
            })
            .collect();
        Reader {
            watermarks: Watermarks::new(&ids, config.grace_ms),
            config,
            stats,
            cursors,
            pending: PendingPanes::default(),
            partitions_seen: 0,
            reachable: true,
        }
    }

    /// Assigns partitions added to the topic since we started (ours: `partition % peers ==
    /// worker`), from their beginning.
    pub(super) fn discover_partitions(
        &mut self,
        consumer: &BaseConsumer<SourceContext>,
        worker: usize,
        peers: usize,
    ) {
        let Some(known) = self.config.topic_partitions.as_ref() else {
            return;
        };
        if known.version() == self.partitions_seen {
            return;
        }
        self.partitions_seen = known.version();
        for partition in known.partitions() {
            if partition as usize % peers != worker || self.cursors.contains_key(&partition) {
                continue;
            }
            let mut added = TopicPartitionList::new();
            let assigned = added
                .add_partition_offset(&self.config.topic, partition, Offset::Beginning)
                .and_then(|()| consumer.incremental_assign(&added));
            match assigned {
                Ok(()) => {
                    tracing::info!(partition, "new partition: reading it from the beginning");
                    self.cursors.insert(partition, Cursor::default());
                    self.watermarks.add_partition(partition);
                }
                Err(error) => tracing::error!(partition, %error, "cannot read new partition"),
            }
        }
    }

    /// Reads what the consumer has, within this activation's budget, into pending panes for
    /// ticks at or after `open`. Returns whether more may be waiting.
    pub(super) fn read(
        &mut self,
        consumer: &BaseConsumer<SourceContext>,
        open: u64,
        now: u64,
    ) -> bool {
        let started = Instant::now();
        let mut touched: Vec<i32> = Vec::new();
        let mut handled = 0;
        let mut more = false;
        while let Some(result) = consumer.poll(Duration::ZERO) {
            match result {
                Ok(message) => {
                    let partition = message.partition();
                    let offset = message.offset();
                    let record_time = match message.timestamp() {
                        KafkaTimestamp::CreateTime(ms) | KafkaTimestamp::LogAppendTime(ms)
                            if ms >= 0 =>
                        {
                            ms as u64
                        }
                        _ => now,
                    };
                    let cursor = self.cursors.entry(partition).or_default();
                    if let Some(expected) = cursor.expected
                        && offset > expected
                    {
                        let lost = (offset - expected) as u64;
                        tracing::error!(
                            partition,
                            expected,
                            offset,
                            lost,
                            "records lost: the partition's log start moved past the offset we needed (retention or broker size limit)"
                        );
                        cursor.lost += lost;
                    }
                    cursor.expected = Some(offset + 1);
                    cursor.caught_up = false;
                    let payload = message.payload().unwrap_or_default();
                    let newest = decode_record(
                        payload,
                        record_time,
                        open,
                        now,
                        &self.config,
                        &self.stats,
                        &mut self.pending,
                    );
                    if let Some(newest) = newest {
                        cursor.newest_event = cursor.newest_event.max(newest);
                        self.watermarks.observe(partition, newest);
                    }
                    touched.push(partition);
                    self.stats.records_read.fetch_add(1, Ordering::Relaxed);
                }
                Err(KafkaError::PartitionEOF(partition)) => {
                    self.cursors.entry(partition).or_default().caught_up = true;
                    self.watermarks.caught_up(partition);
                    touched.push(partition);
                }
                Err(error) => {
                    tracing::debug!(%error, "kafka consumer error");
                    break;
                }
            }
            handled += 1;
            if handled >= MESSAGES_PER_ACTIVATION || started.elapsed() >= TIME_PER_ACTIVATION {
                more = true;
                break;
            }
        }
        // Statistics once per partition and activation, not per record.
        touched.sort_unstable();
        touched.dedup();
        for partition in touched {
            let Some(cursor) = self.cursors.get_mut(&partition) else {
                continue;
            };
            let lost = std::mem::take(&mut cursor.lost);
            let (expected, caught_up, newest) =
                (cursor.expected, cursor.caught_up, cursor.newest_event);
            self.stats.update_partition(partition, |p| {
                p.lost_records += lost;
                if let Some(position) = expected {
                    p.position = position;
                }
                if caught_up {
                    p.lag_records = 0;
                    p.lag_ms = 0;
                } else {
                    p.lag_records = (p.high_watermark - p.position).max(0);
                    p.lag_ms = now.saturating_sub(newest);
                }
            });
        }
        more
    }

    /// The newest tick that may be closed now: the watermark, held where it is while Kafka is
    /// unreachable (records may be waiting there), rounded down to a pane end.
    pub(super) fn closed_through(&mut self, health: &KafkaHealth, now: u64) -> u64 {
        let reachable = health.reachable(now);
        if reachable != self.reachable {
            self.reachable = reachable;
            // Reachable only when every worker reaches its brokers.
            let unreachable = if reachable {
                self.stats
                    .kafka_unreachable_workers
                    .fetch_sub(1, Ordering::SeqCst)
                    - 1
            } else {
                self.stats
                    .kafka_unreachable_workers
                    .fetch_add(1, Ordering::SeqCst)
                    + 1
            };
            self.stats
                .kafka_reachable
                .store(unreachable == 0, Ordering::SeqCst);
            if reachable {
                tracing::info!("kafka reachable again; the watermark advances");
            } else {
                tracing::warn!("kafka unreachable; holding the watermark (values turn stale)");
            }
        }
        let watermark = if reachable {
            self.watermarks.watermark(now)
        } else {
            self.watermarks.current()
        };
        watermark / PANE_MS * PANE_MS
    }

    /// This source's checkpoint piece for `boundary`: the offsets read so far and the panes
    /// held for later ticks. Call after emitting every tick up to the boundary.
    pub(super) fn piece(&self, boundary: u64) -> SourcePiece {
        SourcePiece {
            worker: self.config.worker,
            boundary,
            offsets: self
                .cursors
                .iter()
                .filter_map(|(p, c)| c.expected.map(|o| (*p, o)))
                .collect(),
            pending: self.pending.snapshot(),
        }
    }
}

/// Decodes one record into `pending`; returns the newest event time it held.
fn decode_record(
    payload: &[u8],
    record_time: u64,
    open: u64,
    now: u64,
    config: &SourceConfig,
    stats: &PipelineStats,
    pending: &mut PendingPanes,
) -> Option<u64> {
    let mut newest = None;
    let mut accepted = 0;
    let mut late = 0;
    event::decode_each(payload, |result| {
        let event = match result {
            Ok(event) => event,
            Err(error) => {
                stats.reject(error.reason, 1);
                return;
            }
        };
        let time = event.event_time.unwrap_or(record_time);
        if time > now + config.max_future_ms {
            stats.reject(RejectReason::TooFarInFuture, 1);
            return;
        }
        let pane = pane_end(time);
        let tick = pane.max(open);
        // Too old for every window: relative to where it enters, and (before the first tick
        // closed, when `open` is still far behind) to the wall clock.
        if pane + config.retention_ms <= tick.max(now.saturating_sub(config.grace_ms)) {
            stats.reject(RejectReason::TooOld, 1);
            return;
        }
        if pane < open {
            late += 1;
        }
        newest = newest.max(Some(time));
        let series = SeriesRef {
            metric: &event.metric_name,
            tags: &event.tags,
        };
        pending.add(tick, series, pane, time, event.value);
        accepted += 1;
    });
    stats.events_accepted.fetch_add(accepted, Ordering::Relaxed);
    stats.events_late.fetch_add(late, Ordering::Relaxed);
    newest
}
