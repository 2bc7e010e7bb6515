//! The dataflow's closed time and the widget values as of it.
//!
//! Every worker reports how far it has closed time; the dataflow's closed time is the minimum
//! over workers, unknown until each has reported once. Updates for later times are held back
//! until the closed time reaches them, so the values here are always those of one consistent
//! time, whichever worker computed them.
//!
//! Values are kept per widget id with the generation they were computed for, including for
//! widgets no dashboard shows yet (the dataflow may see a new widget before the hub does).
//! Whether a value is shown is decided by the reader, who knows the current generation.

use std::collections::{BTreeMap, HashMap};

use dataflow::sink::{SinkBatch, WidgetUpdate};
use dataflow::widget::WidgetKey;
use operators::window_aggregate::WindowChange;
use uuid::Uuid;

/// Closed time and latest values.
pub(super) struct Values {
    /// The latest `closed_through` of each worker; `None` until the worker reported.
    worker_closed: Vec<Option<u64>>,
    /// The minimum of `worker_closed` once every worker reported.
    closed: Option<u64>,
    /// Updates for times after `closed`, by time.
    held: BTreeMap<u64, Vec<WidgetUpdate>>,
    /// The latest value of each widget id, with the generation it was computed for.
    latest: HashMap<Uuid, (u64, Option<f64>)>,
}

impl Values {
    /// No closed time and no values, for a dataflow of `workers` workers.
    pub(super) fn new(workers: usize) -> Values {
        assert!(workers > 0, "a dataflow has at least one worker");
        Values {
            worker_closed: vec![None; workers],
            closed: None,
            held: BTreeMap::new(),
            latest: HashMap::new(),
        }
    }

    /// The dataflow's closed time, if every worker reported one.
    /// Follows a dataflow that now has `workers` workers (a frontend learns it from the values
    /// topic). Workers beyond the new count are forgotten; new ones have not reported yet.
    pub(super) fn set_workers(&mut self, workers: usize) {
        self.worker_closed.resize(workers.max(1), None);
    }

    pub(super) fn closed(&self) -> Option<u64> {
        self.closed
    }

    /// The value of `widget`, if the latest value of its id was computed for its generation.
    pub(super) fn value(&self, widget: WidgetKey) -> Option<f64> {
        match self.latest.get(&widget.id) {
            Some((generation, value)) if *generation == widget.generation => *value,
            _ => None,
        }
    }

    /// Forgets a widget that no dashboard shows any more.
    pub(super) fn forget(&mut self, id: Uuid) {
        self.latest.remove(&id);
    }

    /// Takes a worker's batch: holds its updates, advances the closed time, and applies the
    /// held updates it reached, in time order. Returns the widgets whose value changed.
    pub(super) fn accept(&mut self, batch: SinkBatch) -> Vec<WidgetKey> {
        let Some(slot) = self.worker_closed.get_mut(batch.worker) else {
            tracing::error!(
                worker = batch.worker,
                workers = self.worker_closed.len(),
                "sink batch from an unknown worker ignored"
            );
            return Vec::new();
        };
        *slot = Some(slot.map_or(batch.closed_through, |c| c.max(batch.closed_through)));
        for update in batch.updates {
            self.held.entry(update.as_of).or_default().push(update);
        }
        // `None` orders first: the minimum is `None` until every worker reported.
        let closed = self.worker_closed.iter().copied().min().flatten();
        if closed > self.closed {
            self.closed = closed;
        }
        let Some(closed) = self.closed else {
            return Vec::new();
        };
        let mut changed = Vec::new();
        while let Some(entry) = self.held.first_entry() {
            if *entry.key() > closed {
                break;
            }
            for update in entry.remove() {
                if self.apply(&update) {
                    changed.push(update.widget);
                }
            }
        }
        changed
    }

    /// Applies one released update; whether it changed anything.
    fn apply(&mut self, update: &WidgetUpdate) -> bool {
        let WidgetKey { id, generation } = update.widget;
        match update.change {
            WindowChange::Value(value) => match self.latest.get(&id) {
                // A value of an older generation arriving late never replaces a newer one.
                Some((latest, _)) if *latest > generation => false,
                _ => {
                    let previous = self.latest.insert(id, (generation, value));
                    previous.is_none_or(|p| !same(p, (generation, value)))
                }
            },
            WindowChange::Removed => {
                if self.latest.get(&id).is_some_and(|(g, _)| *g == generation) {
                    self.latest.remove(&id);
                    true
                } else {
                    false
                }
            }
        }
    }

    /// How many updates wait for the closed time.
    #[cfg(test)]
    pub(super) fn held_len(&self) -> usize {
        self.held.values().map(Vec::len).sum()
    }
}

/// Equality of (generation, value), with values compared bit for bit so a NaN equals itself.
fn same(a: (u64, Option<f64>), b: (u64, Option<f64>)) -> bool {
    a.0 == b.0 && same_value(a.1, b.1)
}

/// Equality of values, bit for bit so a NaN equals itself and an unchanged value is never resent.
pub(super) fn same_value(a: Option<f64>, b: Option<f64>) -> bool {
    a.map(f64::to_bits) == b.map(f64::to_bits)
}
