//! Pane partials a source holds until their tick closes.
//!
//! This is the per-event hot path of pre-aggregation: every event finds its series' panes in
//! the map of its tick. The map is keyed by the series' identity encoded as one byte string
//! (length-prefixed metric, tag keys and values), built in a reused buffer per event, so a
//! lookup hashes one slice and compares one slice; comparing a borrowed series with an owned
//! `SeriesKey` field by field cost five short `memcmp` calls per event.

use std::collections::BTreeMap;

use operators::series_pane::SeriesPane;

use super::PaneRecord;
use crate::series::SeriesRef;

/// Partials of one tick: the panes of each series (the values), by encoded series identity.
pub type TickPanes = hashbrown::HashMap<Box<[u8]>, PaneRecord>;

/// Pane partials waiting for their tick to close, by tick.
#[derive(Default)]
pub struct PendingPanes {
    by_tick: BTreeMap<u64, TickPanes>,
    /// Scratch buffer for the encoded series of the event being added.
    key: Vec<u8>,
}

/// Appends `text` to `key`, length first, so that no two series encode alike.
fn push_field(key: &mut Vec<u8>, text: &str) {
    key.extend_from_slice(&(text.len() as u32).to_le_bytes());
    key.extend_from_slice(text.as_bytes());
}

impl PendingPanes {
    /// Adds one sample of `series`, in the pane ending at `pane`, to the panes of `tick`.
    pub fn add(&mut self, tick: u64, series: SeriesRef<'_, '_>, pane: u64, time: u64, value: f64) {
        self.key.clear();
        push_field(&mut self.key, series.metric);
        for (k, v) in series.tags {
            push_field(&mut self.key, k);
            push_field(&mut self.key, v);
        }
        let by_series = self.by_tick.entry(tick).or_default();
        let panes = match by_series.get_mut(self.key.as_slice()) {
            Some((_, panes)) => panes,
            None => {
                let record = (series.to_key(), Vec::new());
                &mut by_series
                    .entry(self.key.as_slice().into())
                    .or_insert(record)
                    .1
            }
        };
        // Usually one pane per series and tick; a replay brings many, in time order: look from
        // the newest.
        match panes.iter_mut().rev().find(|(end, _)| *end == pane) {
            Some((_, partials)) => partials.insert(time, value),
            None => panes.push((pane, SeriesPane::one(time, value))),
        }
    }

    /// A copy of everything held, with its tick.
    pub(super) fn snapshot(&self) -> Vec<(u64, PaneRecord)> {
        self.by_tick
            .iter()
            .flat_map(|(tick, panes)| panes.values().map(move |record| (*tick, record.clone())))
            .collect()
    }

    /// Removes and returns the ticks before `open` (their records are the map's values).
    pub fn take_closed(&mut self, open: u64) -> BTreeMap<u64, TickPanes> {
        let still_open = self.by_tick.split_off(&open);
        std::mem::replace(&mut self.by_tick, still_open)
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use operators::aggregation::WindowExtent;
    use operators::registry::AggregationKind;

    use super::*;
    use crate::series::SeriesKey;

    #[test]
    fn samples_of_one_series_and_pane_share_a_partial() {
        let mut pending = PendingPanes::default();
        let tags = [(Cow::Borrowed("host"), Cow::Borrowed("a"))];
        let other = [(Cow::Borrowed("hos"), Cow::Borrowed("ta"))];
        let series = |tags| SeriesRef { metric: "m", tags };
        pending.add(2_000, series(&tags), 2_000, 1_500, 1.0);
        pending.add(2_000, series(&tags), 2_000, 1_600, 2.0);
        pending.add(2_000, series(&tags), 1_000, 900, 4.0);
        pending.add(2_000, series(&other), 2_000, 1_700, 8.0);
        pending.add(3_000, series(&tags), 3_000, 2_500, 16.0);

        let closed: Vec<(u64, Vec<PaneRecord>)> = pending
            .take_closed(3_000)
            .into_iter()
            .map(|(tick, records)| (tick, records.into_values().collect()))
            .collect();
        assert_eq!(closed.len(), 1, "only the tick before 3 s");
        let (tick, mut records) = closed.into_iter().next().expect("one tick");
        assert_eq!(tick, 2_000);
        records.sort_by(|a, b| a.0.cmp(&b.0));
        let sums: Vec<(String, Vec<(u64, f64)>)> = records
            .iter()
            .map(|(key, panes)| {
                let tag = format!("{}={}", key.tags[0].0, key.tags[0].1);
                let sum = |p: &SeriesPane| {
                    let extent = WindowExtent {
                        window_ms: 1_000,
                        as_of: 0,
                    };
                    p.project(AggregationKind::Sum).finish(extent)
                };
                (
                    tag,
                    panes
                        .iter()
                        .map(|(end, p)| (*end, sum(p).unwrap_or(f64::NAN)))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            sums,
            vec![
                ("hos=ta".to_string(), vec![(2_000, 8.0)]),
                ("host=a".to_string(), vec![(2_000, 3.0), (1_000, 4.0)]),
            ]
        );
        assert_eq!(pending.snapshot().len(), 1, "the tick of 3 s is still held");
        let _: &SeriesKey = &pending.snapshot()[0].1.0;
    }
}
