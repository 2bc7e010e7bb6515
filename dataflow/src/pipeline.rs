//! Builds the dataflow and runs it on its own threads: one timely worker per thread, started
//! with `timely::execute` outside any async runtime.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;

use crate::sink::SinkFn;
use crate::stats::PipelineStats;
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
        let _ = (config, widgets, sink);
        todo!("pipeline")
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
