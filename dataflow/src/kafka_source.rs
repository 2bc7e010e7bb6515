//! The Kafka source: reads this worker's partitions, decodes events, pre-aggregates them into
//! panes per series, and advances the dataflow's time with the watermark.
//!
//! Each worker owns a fixed subset of the topic's partitions (`partition % workers == index`)
//! and reads them with its own `BaseConsumer` and an explicit `assign`: no consumer group, no
//! rebalancing. Offsets are ours to choose (checkpoints own them); Kafka commits are never used.
//!
//! Events are pre-aggregated before they leave the worker: one [`PaneSet`] per series, pane and
//! tick, so what crosses the exchange grows with the number of series, not with the event rate.
//! An event enters the dataflow at the end of its pane; one whose pane has already closed
//! (late) enters at the current open tick and still counts for the rest of its life; one older
//! than the retention, or further in the future than the allowed clock skew, is dropped and
//! counted. The operator never blocks: it polls with a zero timeout, is woken by librdkafka when
//! messages arrive, and wakes itself to close ticks as the wall clock passes them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use operators::registry::PaneSet;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, Timestamp as KafkaTimestamp};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::{Scope, Stream};

use crate::checkpoint::{Boundaries, Piece, PieceSender, SourcePiece};
use crate::event::{self, RejectReason};
use crate::kafka_log::QuietErrors;
use crate::series::SeriesKey;
use crate::stats::PipelineStats;
use crate::time::{PANE_MS, Watermarks, now_ms, pane_end};

/// Pre-aggregated panes of one series: `(pane end, partials of its samples)`, usually one.
pub type PaneRecord = (SeriesKey, Vec<(u64, PaneSet)>);

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

/// Most messages handled in one activation, so other operators get their turn.
const MESSAGES_PER_ACTIVATION: usize = 20_000;
/// Longest time spent reading in one activation.
const TIME_PER_ACTIVATION: Duration = Duration::from_millis(20);
/// Longest sleep between activations when nothing arrives (for lag statistics and ticks).
const IDLE_WAKEUP: Duration = Duration::from_millis(100);

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
struct SourceContext {
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
    fn new() -> Self {
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

/// Per-partition reading state.
#[derive(Debug, Default)]
struct PartitionCursor {
    /// Offset of the next record we expect; `None` until the first record from `Beginning`.
    expected: Option<i64>,
    /// Event time of the last record read.
    last_event_time: u64,
}

/// Pane partials waiting for their tick to close, by tick.
#[derive(Default)]
pub(crate) struct PendingPanes {
    by_tick: BTreeMap<u64, HashMap<SeriesKey, Vec<(u64, PaneSet)>>>,
}

impl PendingPanes {
    fn add(&mut self, tick: u64, series: SeriesKey, pane: u64, time: u64, value: f64) {
        let panes = self
            .by_tick
            .entry(tick)
            .or_default()
            .entry(series)
            .or_default();
        match panes.iter_mut().find(|(end, _)| *end == pane) {
            Some((_, partials)) => partials.insert(time, value),
            None => {
                let mut partials = PaneSet::empty();
                partials.insert(time, value);
                panes.push((pane, partials));
            }
        }
    }

    /// A copy of everything held, with its tick.
    fn snapshot(&self) -> Vec<(u64, PaneRecord)> {
        self.by_tick
            .iter()
            .flat_map(|(tick, panes)| {
                panes
                    .iter()
                    .map(move |(series, list)| (*tick, (series.clone(), list.clone())))
            })
            .collect()
    }

    /// Removes and returns the ticks before `open`.
    fn take_closed(&mut self, open: u64) -> BTreeMap<u64, HashMap<SeriesKey, Vec<(u64, PaneSet)>>> {
        let still_open = self.by_tick.split_off(&open);
        std::mem::replace(&mut self.by_tick, still_open)
    }
}

/// Creates this worker's consumer, assigned to its partitions.
fn assigned_consumer(
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

/// Builds the source for this worker. A worker without partitions still advances time with
/// the wall clock.
pub fn kafka_source<'scope>(
    scope: Scope<'scope, u64>,
    config: SourceConfig,
    stats: Arc<PipelineStats>,
    stop: Arc<AtomicBool>,
) -> Result<Stream<'scope, u64, Vec<PaneRecord>>, KafkaError> {
    let health = Arc::new(KafkaHealth::new());
    let mut consumer = Some(assigned_consumer(&config, &stats, &health)?);
    let partition_ids: Vec<i32> = config.partitions.iter().map(|(p, _)| *p).collect();
    let (worker, peers) = (scope.index(), scope.peers());
    let mut partitions_seen = 0;
    let mut reachable = true;

    Ok(source(scope, "KafkaSource", move |capability, info| {
        let activator = scope.activator_for(info.address.clone());
        if let Some(consumer) = consumer.as_mut() {
            // librdkafka calls this from its own thread when messages arrive: wake the worker.
            let wake = scope.worker().sync_activator_for(info.address.to_vec());
            consumer.set_nonempty_callback(move || {
                let _ = wake.activate();
            });
        }

        let mut capability = Some(capability);
        if let Some(cap) = capability.as_mut() {
            cap.downgrade(&config.start_tick);
        }
        let mut watermarks = Watermarks::new(&partition_ids, config.grace_ms);
        let mut cursors: HashMap<i32, PartitionCursor> = HashMap::new();
        for (partition, offset) in &config.partitions {
            let expected = match offset {
                Offset::Offset(at) => Some(*at),
                _ => None,
            };
            cursors.insert(
                *partition,
                PartitionCursor {
                    expected,
                    last_event_time: 0,
                },
            );
        }
        let mut pending = PendingPanes::default();

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
            let started = Instant::now();
            let mut more = false;

            // Partitions added to the topic since we started: ours are read from the beginning.
            if let (Some(known), Some(consumer)) =
                (config.topic_partitions.as_ref(), consumer.as_ref())
                && known.version() != partitions_seen
            {
                partitions_seen = known.version();
                for partition in known.partitions() {
                    if partition as usize % peers != worker || cursors.contains_key(&partition) {
                        continue;
                    }
                    let mut added = TopicPartitionList::new();
                    let assigned = added
                        .add_partition_offset(&config.topic, partition, Offset::Beginning)
                        .and_then(|()| consumer.incremental_assign(&added));
                    match assigned {
                        Ok(()) => {
                            tracing::info!(
                                partition,
                                "new partition: reading it from the beginning"
                            );
                            cursors.insert(partition, PartitionCursor::default());
                            watermarks.add_partition(partition);
                        }
                        Err(error) => {
                            tracing::error!(partition, %error, "cannot read new partition")
                        }
                    }
                }
            }

            if let Some(consumer) = consumer.as_ref() {
                let mut handled = 0;
                while let Some(result) = consumer.poll(Duration::ZERO) {
                    match result {
                        Ok(message) => {
                            let partition = message.partition();
                            let offset = message.offset();
                            let record_time = match message.timestamp() {
                                KafkaTimestamp::CreateTime(ms)
                                | KafkaTimestamp::LogAppendTime(ms)
                                    if ms >= 0 =>
                                {
                                    ms as u64
                                }
                                _ => now,
                            };
                            let cursor = cursors.entry(partition).or_default();
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
                                stats.update_partition(partition, |p| p.lost_records += lost);
                            }
                            cursor.expected = Some(offset + 1);
                            stats.records_read.fetch_add(1, Ordering::Relaxed);
                            let payload = message.payload().unwrap_or_default();
                            let newest = decode_record(
                                payload,
                                record_time,
                                open,
                                now,
                                &config,
                                &stats,
                                &mut pending,
                            );
                            if let Some(newest) = newest {
                                watermarks.observe(partition, newest);
                                cursor.last_event_time = newest;
                            }
                            stats.update_partition(partition, |p| {
                                p.position = offset + 1;
                                p.lag_records = (p.high_watermark - p.position).max(0);
                                p.lag_ms = now.saturating_sub(cursor.last_event_time);
                            });
                        }
                        Err(KafkaError::PartitionEOF(partition)) => {
                            watermarks.caught_up(partition);
                            stats.update_partition(partition, |p| {
                                p.lag_records = 0;
                                p.lag_ms = 0;
                            });
                        }
                        Err(error) => {
                            tracing::warn!(%error, "kafka consumer error");
                            break;
                        }
                    }
                    handled += 1;
                    if handled >= MESSAGES_PER_ACTIVATION
                        || started.elapsed() >= TIME_PER_ACTIVATION
                    {
                        more = true;
                        break;
                    }
                }
            }

            // Close the ticks the watermark has passed and hand their panes downstream.
            // While Kafka is unreachable, time stands still: records may be waiting there.
            let now_reachable = health.reachable(now);
            if now_reachable != reachable {
                reachable = now_reachable;
                stats.kafka_reachable.store(reachable, Ordering::Relaxed);
                if reachable {
                    tracing::info!("kafka reachable again; the watermark advances");
                } else {
                    tracing::warn!("kafka unreachable; holding the watermark (values turn stale)");
                }
            }
            let watermark = if reachable {
                watermarks.watermark(now)
            } else {
                watermarks.current()
            };
            let closed = watermark / PANE_MS * PANE_MS;

            let next_open = (closed + PANE_MS).max(open);
            // At each checkpoint boundary closed now: first the ticks up to it, then a piece
            // with the offsets read so far and the panes held for later ticks.
            if let Some((boundaries, pieces)) = config.checkpoints.as_ref() {
                for boundary in
                    boundaries.crossed(open.saturating_sub(PANE_MS), next_open - PANE_MS)
                {
                    for (tick, panes) in pending.take_closed(boundary + PANE_MS) {
                        output
                            .session(&cap.delayed(&tick.max(open)))
                            .give_iterator(panes.into_iter());
                    }
                    pieces.send(Piece::Source(SourcePiece {
                        worker: config.worker,
                        boundary,
                        offsets: cursors
                            .iter()
                            .filter_map(|(p, c)| c.expected.map(|o| (*p, o)))
                            .collect(),
                        pending: pending.snapshot(),
                    }));
                }
            }
            for (tick, panes) in pending.take_closed(next_open) {
                let at = cap.delayed(&tick.max(open));
                let mut session = output.session(&at);
                session.give_iterator(panes.into_iter());
            }
            if next_open > open {
                cap.downgrade(&next_open);
            }

            if more {
                activator.activate();
            } else {
                // Wake up when the wall clock closes the next tick, or to refresh statistics.
                let next_close = next_open + config.grace_ms;
                let until_close = Duration::from_millis(next_close.saturating_sub(now_ms()).max(1));
                activator.activate_after(until_close.min(IDLE_WAKEUP));
            }
        }
    }))
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
    for result in event::decode(payload) {
        let event = match result {
            Ok(event) => event,
            Err(error) => {
                stats.reject(error.reason, 1);
                continue;
            }
        };
        let time = event.event_time.unwrap_or(record_time);
        if time > now + config.max_future_ms {
            stats.reject(RejectReason::TooFarInFuture, 1);
            continue;
        }
        let pane = pane_end(time);
        let tick = pane.max(open);
        if pane + config.retention_ms <= tick {
            stats.reject(RejectReason::TooOld, 1);
            continue;
        }
        if pane < open {
            late += 1;
        }
        newest = newest.max(Some(time));
        let series = SeriesKey::new(&event.metric_name, &event.tags);
        pending.add(tick, series, pane, time, event.value);
        accepted += 1;
    }
    stats.events_accepted.fetch_add(accepted, Ordering::Relaxed);
    stats.events_late.fetch_add(late, Ordering::Relaxed);
    newest
}
