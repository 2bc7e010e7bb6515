//! Builds the dataflow and runs it on its own threads: one timely worker per thread, started
//! with `timely::execute` outside any async runtime.

mod topic;
mod widgets;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use differential_dataflow::input::{Input, InputSession};
use operators::window_aggregate::WindowAggregate;
use rdkafka::Offset;
use timely::dataflow::operators::Concat;
use uuid::Uuid;

use topic::spawn_partition_watcher;
pub use topic::topic_partitions;
pub use widgets::WidgetControl;
use widgets::apply_command;

use crate::checkpoint::Boundaries;
use crate::checkpoint::restore::{self, RestoredFeed, process_dir, restored_panes};
use crate::checkpoint::writer::CheckpointWriter;
use crate::kafka_source::{SourceConfig, TopicPartitions, kafka_source};
use crate::series_store::{StoreCheckpoints, series_store};
use crate::sink::{SinkFn, sink_changes};
use crate::stats::PipelineStats;
use crate::time::{PANE_MS, now_ms};
use crate::widget::{WidgetCommand, WidgetQuery};

/// How the dataflow runs.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// The topic events are read from.
    pub topic: String,
    /// Timely worker threads.
    pub workers: usize,
    /// History kept per series, in milliseconds; the longest window a widget may have.
    pub retention_ms: u64,
    /// How long after the wall clock passes a pane's end its time is closed, when partitions
    /// are caught up; events arriving later still count (they enter at the watermark).
    pub grace_ms: u64,
    /// Events stamped further than this into the future are dropped and counted.
    pub max_future_ms: u64,
    /// Where checkpoints are written and restored from; `None` disables them (every start
    /// reads the topic from the beginning).
    pub checkpoint_dir: Option<PathBuf>,
    /// Time between checkpoints, in milliseconds (a multiple of the pane width).
    pub checkpoint_interval_ms: u64,
    /// The timely cluster this process belongs to; `None` for a single process. `workers` is
    /// then the number of workers of each process.
    pub cluster: Option<ClusterSpec>,
}

/// A process's place in a timely cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSpec {
    /// This process's index.
    pub process: usize,
    /// Every process's `host:port`, in process order.
    pub addresses: Vec<String>,
}

/// Errors starting the dataflow.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Kafka could not be reached or the topic could not be read.
    #[error("kafka: {0}")]
    Kafka(String),
    /// The checkpoint directory could not be used.
    #[error("checkpoints: {0}")]
    Checkpoint(String),
    /// Timely could not start its workers.
    #[error("starting timely workers: {0}")]
    Timely(String),
}

/// A running dataflow.
pub struct Pipeline {
    control: WidgetControl,
    stats: Arc<PipelineStats>,
    stop: Arc<AtomicBool>,
    workers: Option<std::thread::JoinHandle<()>>,
    checkpoints: Option<(CheckpointWriter, Boundaries)>,
    grace_ms: u64,
}

impl Pipeline {
    /// Starts the dataflow with `widgets` as the initial widget set, delivering value changes
    /// to `sink`.
    pub fn start(
        config: PipelineConfig,
        widgets: Vec<WidgetQuery>,
        sink: SinkFn,
    ) -> Result<Pipeline, PipelineError> {
        let partitions = topic_partitions(&config.brokers, &config.topic)?;
        tracing::info!(topic = %config.topic, partitions = partitions.len(), workers = config.workers, "starting dataflow");
        let known_partitions = Arc::new(TopicPartitions::default());
        known_partitions.update(partitions.clone());

        let (control, commands) = WidgetControl::channel();
        let commands = Arc::new(Mutex::new(Some(commands)));

        let stats = Arc::new(PipelineStats::default());
        stats.kafka_reachable.store(true, Ordering::Relaxed);

        let stop = Arc::new(AtomicBool::new(false));
        spawn_partition_watcher(&config, known_partitions.clone(), stop.clone());

        let (process, processes) = config
            .cluster
            .as_ref()
            .map_or((0, 1), |c| (c.process, c.addresses.len()));
        // Restore the newest valid checkpoint, and keep writing the chain it belongs to.
        let restored = config
            .checkpoint_dir
            .as_deref()
            .and_then(|root| restore::load(root, process, processes, config.retention_ms));
        match &restored {
            Some(restored) => tracing::info!(
                boundary = restored.boundary,
                series = restored.panes.len(),
                partitions_with_offsets = restored.offsets.len(),
                "restoring from checkpoint; replaying Kafka from its offsets"
            ),
            None => {
                tracing::info!("no checkpoint to restore; reading the topic from the beginning")
            }
        }
        let boundaries =
            Boundaries::new(config.checkpoint_interval_ms.max(PANE_MS) / PANE_MS * PANE_MS);
        let (writer, pieces) = match &config.checkpoint_dir {
            Some(root) => {
                let previous = restored.as_ref().and_then(|r| r.chain.clone());
                let (writer, pieces) = CheckpointWriter::start(
                    process_dir(root, process, processes),
                    config.workers,
                    config.retention_ms,
                    previous,
                    stats.clone(),
                    boundaries.clone(),
                )
                .map_err(|e| PipelineError::Checkpoint(e.to_string()))?;
                (Some(writer), Some(pieces))
            }
            None => (None, None),
        };
        let restored_boundary = restored.as_ref().map(|r| r.boundary);
        let restored_in_chain = restored.as_ref().is_some_and(|r| r.chain.is_some());
        let start_tick = restored_boundary.map_or(0, |b| b + PANE_MS);
        let offsets = restored
            .as_ref()
            .map(|r| r.offsets.clone())
            .unwrap_or_default();
        let grace_ms = config.grace_ms;
        let worker_boundaries = boundaries.clone();
        let feed = restored.map(|mut restored| {
            Arc::new(RestoredFeed::split(
                &mut restored,
                config.workers,
                config.workers * processes,
            ))
        });

        let timely_config = match &config.cluster {
            None => timely::Config::process(config.workers),
            Some(cluster) => timely::Config {
                communication: timely::CommunicationConfig::Cluster {
                    threads: config.workers,
                    process: cluster.process,
                    addresses: cluster.addresses.clone(),
                    report: false,
                    zerocopy: false,
                },
                worker: timely::WorkerConfig::default(),
            },
        };
        let locals = config.workers;
        let worker_stats = stats.clone();
        let worker_stop = stop.clone();
        let guards = timely::execute(timely_config, move |worker| {
            let index = worker.index();
            let peers = worker.peers();
            let source_config = SourceConfig {
                brokers: config.brokers.clone(),
                topic: config.topic.clone(),
                partitions: partitions
                    .iter()
                    .filter(|p| (**p as usize) % peers == index)
                    .map(|p| (*p, offsets.get(p).map_or(Offset::Beginning, |o| Offset::Offset(*o))))
                    .collect(),
                grace_ms: config.grace_ms,
                max_future_ms: config.max_future_ms,
                retention_ms: config.retention_ms,
                start_tick,
                worker: index,
                checkpoints: pieces.clone().map(|p| (worker_boundaries.clone(), p)),
                topic_partitions: Some(known_partitions.clone()),
            };
            let store_checkpoints = pieces.clone().map(|pieces| StoreCheckpoints {
                boundaries: worker_boundaries.clone(),
                pieces,
                worker: index,
                restored_boundary,
                restored_in_chain,
            });
            let mut widget_input: InputSession<u64, WidgetQuery, isize> = worker.dataflow::<u64, _, _>(|scope| {
                let (input, widgets) = scope.new_collection::<WidgetQuery, isize>();
                let panes = match kafka_source(scope, source_config, worker_stats.clone(), worker_stop.clone()) {
                    Ok(panes) => panes,
                    Err(error) => {
                        tracing::error!(%error, worker = index, "cannot create the Kafka consumer; this worker reads nothing");
                        timely::dataflow::operators::generic::operator::empty(scope)
                    }
                };
                let panes = match &feed {
                    Some(feed) => panes.concat(restored_panes(scope, feed.clone(), index % locals)),
                    None => panes,
                };
                let contributions = series_store(panes, widgets.clone(), config.retention_ms, store_checkpoints);
                let specs = widgets.map(|query| (query.key, query.spec));
                sink_changes(contributions.window_aggregate(specs), index, sink.clone());
                input
            });

            // Worker 0 owns the widget set; the others only advance their (empty) inputs.
            let commands = if index == 0 { commands.lock().ok().and_then(|mut c| c.take()) } else { None };
            let mut current: HashMap<Uuid, WidgetQuery> = HashMap::new();
            if index == 0 {
                for query in &widgets {
                    apply_command(&mut widget_input, &mut current, WidgetCommand::Upsert(query.clone()));
                }
            }
            while !worker_stop.load(Ordering::Relaxed) {
                if let Some(commands) = commands.as_ref() {
                    while let Ok(command) = commands.try_recv() {
                        apply_command(&mut widget_input, &mut current, command);
                    }
                }
                let wall_open = now_ms().saturating_sub(config.grace_ms) / PANE_MS * PANE_MS + PANE_MS;
                if wall_open > *widget_input.time() {
                    widget_input.advance_to(wall_open);
                }
                widget_input.flush();
                worker.step_or_park(Some(Duration::from_millis(10)));
            }
        })
        .map_err(PipelineError::Timely)?;

        let join_stats = stats.clone();

        let join_stop = stop.clone();
        let workers = std::thread::Builder::new()
            .name("timely-join".into())
            .spawn(move || {
                // Joining panics too when timely's network threads died (a peer process of
                // the cluster went away): either way the dataflow is gone.
                let joined =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| guards.join()));
                let failed = match joined {
                    Ok(results) => {
                        results
                            .into_iter()
                            .filter_map(Result::err)
                            .inspect(|error| {
                                tracing::error!(%error, "timely worker failed");
                            })
                            .count()
                            > 0
                    }
                    Err(_) => {
                        tracing::error!(
                            "timely's communication failed (a process of the cluster is gone?)"
                        );
                        true
                    }
                };
                if failed || !join_stop.load(Ordering::SeqCst) {
                    join_stats.failed.store(true, Ordering::SeqCst);
                    join_stop.store(true, Ordering::SeqCst);
                }
            })
            .map_err(|e| PipelineError::Timely(e.to_string()))?;

        Ok(Pipeline {
            control,
            stats,
            stop,
            workers: Some(workers),
            checkpoints: writer.map(|w| (w, boundaries)),
            grace_ms,
        })
    }

    /// Sends widget changes into the dataflow.
    pub fn control(&self) -> WidgetControl {
        self.control.clone()
    }

    /// The dataflow's counters.
    pub fn stats(&self) -> Arc<PipelineStats> {
        self.stats.clone()
    }

    /// Takes a final checkpoint (waiting at most `timeout` for it), then stops the workers and
    /// waits for them and for the checkpoint writer.
    pub fn shutdown(mut self, timeout: Duration) {
        if let Some((_, boundaries)) = self.checkpoints.as_ref() {
            // A tick no source has closed yet: sources close ticks up to the wall clock minus grace.
            let last = now_ms().saturating_sub(self.grace_ms) / PANE_MS * PANE_MS + 2 * PANE_MS;
            boundaries.force(last);
            let deadline = std::time::Instant::now() + timeout;
            while self.stats.checkpoint_boundary.load(Ordering::Relaxed) < last
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            if self.stats.checkpoint_boundary.load(Ordering::Relaxed) >= last {
                tracing::info!(boundary = last, "final checkpoint written");
            } else {
                tracing::warn!(
                    "no final checkpoint within {timeout:?}; the next start replays from the previous one"
                );
            }
        }
        self.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = self.workers.take() {
            let _ = handle.join();
        }
        if let Some((writer, _)) = self.checkpoints.take() {
            writer.finish();
        }
    }
}
