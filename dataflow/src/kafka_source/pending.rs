//! Pane partials a source holds until their tick closes.

use std::collections::BTreeMap;

use operators::registry::PaneSet;

use super::PaneRecord;
use crate::series::{SeriesKey, SeriesRef};

/// Partials of one tick: the panes of each series.
pub(super) type TickPanes = hashbrown::HashMap<SeriesKey, Vec<(u64, PaneSet)>>;

/// Pane partials waiting for their tick to close, by tick.
#[derive(Default)]
pub(super) struct PendingPanes {
    by_tick: BTreeMap<u64, TickPanes>,
}

impl PendingPanes {
    /// Adds one sample of `series`, in the pane ending at `pane`, to the panes of `tick`.
    pub(super) fn add(
        &mut self,
        tick: u64,
        series: SeriesRef<'_, '_>,
        pane: u64,
        time: u64,
        value: f64,
    ) {
        let by_series = self.by_tick.entry(tick).or_default();
        let panes = match by_series.get_mut(&series) {
            Some(panes) => panes,
            None => by_series.entry(series.to_key()).or_default(),
        };
        // Usually one pane per series and tick; a replay brings many, in time order: look from
        // the newest.
        match panes.iter_mut().rev().find(|(end, _)| *end == pane) {
            Some((_, partials)) => partials.insert(time, value),
            None => {
                let mut partials = PaneSet::empty();
                partials.insert(time, value);
                panes.push((pane, partials));
            }
        }
    }

    /// A copy of everything held, with its tick.
    pub(super) fn snapshot(&self) -> Vec<(u64, PaneRecord)> {
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
    pub(super) fn take_closed(&mut self, open: u64) -> BTreeMap<u64, TickPanes> {
        let still_open = self.by_tick.split_off(&open);
        std::mem::replace(&mut self.by_tick, still_open)
    }
}
