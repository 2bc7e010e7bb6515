//! The sink: hands each worker's changed widget values, and how far time has closed, to a
//! callback outside the dataflow.
//!
//! The callback runs on the worker thread and must not block (the tokio side passes an
//! unbounded channel's `send`). A worker calls it once per frontier advance, with the changes
//! at every newly closed time in time order.

use std::collections::BTreeMap;
use std::sync::Arc;

use operators::window_aggregate::WindowChange;
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;

use crate::time::PANE_MS;
use crate::widget::WidgetKey;

/// A widget value change at a closed time.
#[derive(Clone, Debug, PartialEq)]
pub struct WidgetUpdate {
    /// The widget (and version) that changed.
    pub widget: WidgetKey,
    /// Its new value, or its removal.
    pub change: WindowChange,
    /// The closed time the value is as of, epoch milliseconds.
    pub as_of: u64,
}

/// What one worker's sink hands out at a frontier advance.
#[derive(Clone, Debug, PartialEq)]
pub struct SinkBatch {
    /// The worker the batch comes from.
    pub worker: usize,
    /// Every time up to and including this one is closed at this worker: all its updates for
    /// those times have been handed out. The dataflow's closed time is the minimum over workers.
    pub closed_through: u64,
    /// The changes, in time order.
    pub updates: Vec<WidgetUpdate>,
}

/// Receives sink batches; called on worker threads, must not block.
pub type SinkFn = Arc<dyn Fn(SinkBatch) + Send + Sync>;

/// Attaches the sink to a stream of widget changes.
pub fn sink_changes(
    changes: Stream<'_, u64, Vec<(WidgetKey, WindowChange)>>,
    worker: usize,
    deliver: SinkFn,
) {
    let mut pending: BTreeMap<u64, Vec<(WidgetKey, WindowChange)>> = BTreeMap::new();
    let mut reported: Option<u64> = None;
    changes.sink(Pipeline, "Sink", move |(input, frontier)| {
        input.for_each(|stamp, data| {
            if let Some(time) = stamp.least() {
                pending.entry(*time).or_default().append(data);
            }
        });
        let Some(open) = frontier.frontier().first().copied() else {
            return;
        };
        let closed_through = open.saturating_sub(PANE_MS);
        if reported == Some(closed_through) {
            return;
        }
        let still_open = pending.split_off(&open);
        let done = std::mem::replace(&mut pending, still_open);
        let updates = done
            .into_iter()
            .flat_map(|(as_of, changes)| {
                changes
                    .into_iter()
                    .map(move |(widget, change)| WidgetUpdate {
                        widget,
                        change,
                        as_of,
                    })
            })
            .collect();
        reported = Some(closed_through);
        deliver(SinkBatch {
            worker,
            closed_through,
            updates,
        });
    });
}
