//! Builds the dataflow and runs it on its own threads: one timely worker per thread, started
//! with `timely::execute` outside any async runtime.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use differential_dataflow::input::{Input, InputSession};
use operators::window_aggregate::WindowAggregate;
use rdkafka::Offset;
use rdkafka::consumer::{BaseConsumer, Consumer};
use uuid::Uuid;

use crate::kafka_source::{SourceConfig, consumer_config, kafka_source};
use crate::series_store::series_store;
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
}

/// Errors starting the dataflow.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Kafka could not be reached or the topic could not be read.
    #[error("kafka: {0}")]
    Kafka(String),
    /// Timely could not start its workers.
    #[error("starting timely workers: {0}")]
    Timely(String),
}

/// Sends widget changes into the running dataflow. Cheap to clone; never blocks.
#[derive(Clone, Debug)]
pub struct WidgetControl {
    sender: mpsc::Sender<WidgetCommand>,
}

impl WidgetControl {
    /// A control whose commands arrive at `receiver`.
    pub fn channel() -> (WidgetControl, mpsc::Receiver<WidgetCommand>) {
        let (sender, receiver) = mpsc::channel();
        (WidgetControl { sender }, receiver)
    }

    /// Queues a widget change; it takes effect at the dataflow's next tick. Changes after the
    /// dataflow stopped are dropped (there is nothing left to change).
    pub fn send(&self, command: WidgetCommand) {
        let _ = self.sender.send(command);
    }
}

/// A running dataflow.
pub struct Pipeline {
    control: WidgetControl,
    stats: Arc<PipelineStats>,
    stop: Arc<AtomicBool>,
    workers: Option<std::thread::JoinHandle<()>>,
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
        let (control, commands) = WidgetControl::channel();
        let commands = Arc::new(Mutex::new(Some(commands)));
        let stats = Arc::new(PipelineStats::default());
        let stop = Arc::new(AtomicBool::new(false));

        let timely_config = timely::Config::process(config.workers);
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
                    .map(|p| (*p, Offset::Beginning))
                    .collect(),
                grace_ms: config.grace_ms,
                max_future_ms: config.max_future_ms,
                retention_ms: config.retention_ms,
            };
            let mut widget_input: InputSession<u64, WidgetQuery, isize> = worker.dataflow::<u64, _, _>(|scope| {
                let (input, widgets) = scope.new_collection::<WidgetQuery, isize>();
                let panes = match kafka_source(scope, source_config, worker_stats.clone(), worker_stop.clone()) {
                    Ok(panes) => panes,
                    Err(error) => {
                        tracing::error!(%error, worker = index, "cannot create the Kafka consumer; this worker reads nothing");
                        timely::dataflow::operators::generic::operator::empty(scope)
                    }
                };
                let contributions = series_store(panes, widgets.clone(), config.retention_ms);
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

        let workers = std::thread::Builder::new()
            .name("timely-join".into())
            .spawn(move || {
                for result in guards.join() {
                    if let Err(error) = result {
                        tracing::error!(%error, "timely worker failed");
                    }
                }
            })
            .map_err(|e| PipelineError::Timely(e.to_string()))?;

        Ok(Pipeline {
            control,
            stats,
            stop,
            workers: Some(workers),
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

    /// Stops the workers and waits for them.
    pub fn shutdown(mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(handle) = self.workers.take() {
            let _ = handle.join();
        }
    }
}

/// Applies a widget change to worker 0's widget input.
fn apply_command(
    input: &mut InputSession<u64, WidgetQuery, isize>,
    current: &mut HashMap<Uuid, WidgetQuery>,
    command: WidgetCommand,
) {
    match command {
        WidgetCommand::Upsert(query) => {
            if current.get(&query.key.id) == Some(&query) {
                return;
            }
            if let Some(old) = current.insert(query.key.id, query.clone()) {
                input.remove(old);
            }
            input.insert(query);
        }
        WidgetCommand::Remove(id) => {
            if let Some(old) = current.remove(&id) {
                input.remove(old);
            }
        }
    }
}

/// How long to wait for the topic's metadata at startup.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// The partitions of `topic`, asked of the brokers.
pub fn topic_partitions(brokers: &str, topic: &str) -> Result<Vec<i32>, PipelineError> {
    let consumer: BaseConsumer = consumer_config(brokers)
        .create()
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
