//! The series store: retained panes of every series, joined with the widget set.
//!
//! Each worker keeps the series routed to it (by hash of metric and tags) with their panes for
//! the retention period. The widget collection is small and is broadcast to every worker, where
//! it is joined locally with the series (a broadcast join: each series is matched against the
//! widgets of its metric, each widget against the series of its metric and its tag filter).
//!
//! At each closed time, in this order:
//! 1. widget changes: a removed widget loses its subscriptions; a new widget (or a new version
//!    of one) subscribes to every matching series and is backfilled with the panes those series
//!    retain inside its window, so it shows the history already received, not a value that
//!    starts from zero;
//! 2. new partials: merged into their series' retained pane and forwarded, projected to each
//!    subscriber's aggregation, as long as the pane is inside the subscriber's window;
//! 3. panes older than the retention are dropped, and series left without panes are forgotten.
//!
//! A series' panes are kept in a `PaneLog` (module `pane_log`): about 7.6 bytes for a pane of
//! one sample whose value has a few decimals, 11.6 otherwise.

mod pane_log;

use std::collections::{BTreeMap, HashMap};

use differential_dataflow::VecCollection;
use operators::progress::{hold, joint_frontier, next_complete};
use operators::registry::AnyPane;
use operators::series_pane::SeriesPane;
use operators::window_aggregate::WindowSpec;
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::Broadcast;
use uuid::Uuid;

use crate::checkpoint::{Boundaries, Piece, PieceSender, StorePiece};
use crate::kafka_source::PaneRecord;
use crate::series::SeriesKey;
use crate::widget::{WidgetKey, WidgetQuery};
use pane_log::PaneLog;

/// A partial for a widget's window: `(widget, pane end, partial of its aggregation)`.
pub type Contribution = (WidgetKey, u64, AnyPane);

/// The contributions of one time, combined per widget and pane before they leave the worker:
/// partials of many series for the same pane merge into one (their merge is associative and
/// commutative), so a widget over 10,000 series receives one partial per pane and worker, not
/// 10,000.
#[derive(Default)]
struct Contributions {
    by_pane: HashMap<(WidgetKey, u64), AnyPane>,
}

impl Contributions {
    fn add(&mut self, widget: WidgetKey, pane_end: u64, partial: AnyPane) {
        match self.by_pane.entry((widget, pane_end)) {
            std::collections::hash_map::Entry::Occupied(mut held) => held.get_mut().merge(&partial),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(partial);
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.by_pane.is_empty()
    }

    fn drain(&mut self) -> impl Iterator<Item = Contribution> + '_ {
        self.by_pane
            .drain()
            .map(|((widget, pane_end), partial)| (widget, pane_end, partial))
    }
}

/// One retained series.
struct Series {
    key: SeriesKey,
    /// Retained panes.
    panes: PaneLog,
    /// Widgets whose metric and filter match this series.
    subscribers: Vec<(WidgetKey, WindowSpec)>,
    /// Ends of panes changed since the last checkpoint piece.
    dirty: Vec<u64>,
}

/// Everything one worker's store holds.
#[derive(Default)]
struct StoreState {
    series: Vec<Option<Series>>,
    free: Vec<usize>,
    index: HashMap<SeriesKey, usize>,
    by_metric: HashMap<String, Vec<usize>>,
    widgets: HashMap<Uuid, WidgetQuery>,
    /// Slots of series with panes changed since the last checkpoint piece.
    dirty: Vec<usize>,
}

impl StoreState {
    fn insert_series(&mut self, key: SeriesKey) -> usize {
        let subscribers = self
            .widgets
            .values()
            .filter(|w| w.metric == key.metric && key.matches(&w.filter))
            .map(|w| (w.key, w.spec))
            .collect();
        let series = Series {
            key: key.clone(),
            panes: PaneLog::default(),
            subscribers,
            dirty: Vec::new(),
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.series[slot] = Some(series);
                slot
            }
            None => {
                self.series.push(Some(series));
                self.series.len() - 1
            }
        };
        self.by_metric
            .entry(key.metric.clone())
            .or_default()
            .push(slot);
        self.index.insert(key, slot);
        slot
    }

    fn remove_widget(&mut self, id: Uuid) {
        let Some(query) = self.widgets.remove(&id) else {
            return;
        };
        for slot in self.by_metric.get(&query.metric).into_iter().flatten() {
            if let Some(series) = self.series[*slot].as_mut() {
                series.subscribers.retain(|(key, _)| key.id != id);
            }
        }
    }

    fn add_widget(&mut self, query: WidgetQuery, time: u64, out: &mut Contributions) {
        let horizon = time.saturating_sub(query.spec.window_ms);
        for slot in self.by_metric.get(&query.metric).into_iter().flatten() {
            let Some(series) = self.series[*slot].as_mut() else {
                continue;
            };
            if !series.key.matches(&query.filter) {
                continue;
            }
            series.subscribers.push((query.key, query.spec));
            for (pane_end, partials) in series.panes.after(horizon) {
                out.add(
                    query.key,
                    pane_end,
                    partials.project(query.spec.aggregation),
                );
            }
        }
        self.widgets.insert(query.key.id, query);
    }

    fn add_partials(
        &mut self,
        key: SeriesKey,
        panes: Vec<(u64, SeriesPane)>,
        time: u64,
        out: &mut Contributions,
    ) {
        let slot = match self.index.get(&key) {
            Some(slot) => *slot,
            None => self.insert_series(key),
        };
        let Some(series) = self.series[slot].as_mut() else {
            return;
        };
        if series.dirty.is_empty() {
            self.dirty.push(slot);
        }
        for (pane_end, partials) in panes {
            series.dirty.push(pane_end);
            for (widget, spec) in &series.subscribers {
                if pane_end + spec.window_ms > time {
                    out.add(*widget, pane_end, partials.project(spec.aggregation));
                }
            }
            series.panes.merge(pane_end, partials);
        }
    }

    /// The panes changed since the last call, with their current merged partials.
    fn take_changes(&mut self) -> Vec<PaneRecord> {
        let mut changes = Vec::with_capacity(self.dirty.len());
        for slot in std::mem::take(&mut self.dirty) {
            let Some(series) = self.series.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            let mut ends = std::mem::take(&mut series.dirty);
            ends.sort_unstable();
            ends.dedup();
            let panes: Vec<(u64, SeriesPane)> = ends
                .into_iter()
                .filter_map(|end| series.panes.get(end).map(|pane| (end, pane)))
                .collect();
            if !panes.is_empty() {
                changes.push((series.key.clone(), panes));
            }
        }
        changes
    }

    /// Forgets which panes changed since the last checkpoint piece, without building the
    /// piece (after a restore: millions of panes, already in the chain).
    /// Every pane of every series, for a full checkpoint piece; the changes so far are in it.
    fn take_all(&mut self) -> Vec<PaneRecord> {
        self.forget_changes();
        self.series
            .iter()
            .flatten()
            .map(|series| {
                (
                    series.key.clone(),
                    series.panes.after(0).collect::<Vec<_>>(),
                )
            })
            .filter(|(_, panes)| !panes.is_empty())
            .collect()
    }

    fn forget_changes(&mut self) {
        for slot in std::mem::take(&mut self.dirty) {
            if let Some(series) = self.series.get_mut(slot).and_then(Option::as_mut) {
                series.dirty = Vec::new();
            }
        }
    }

    fn expire(&mut self, time: u64, retention_ms: u64) {
        let horizon = time.saturating_sub(retention_ms);
        let mut emptied = Vec::new();
        for (slot, entry) in self.series.iter_mut().enumerate() {
            let Some(series) = entry.as_mut() else {
                continue;
            };
            series.panes.expire_through(horizon);
            if series.panes.is_empty() {
                emptied.push(slot);
            }
        }
        for slot in emptied {
            if let Some(series) = self.series[slot].take() {
                self.index.remove(&series.key);
                if let Some(slots) = self.by_metric.get_mut(&series.key.metric) {
                    slots.retain(|s| *s != slot);
                    if slots.is_empty() {
                        self.by_metric.remove(&series.key.metric);
                    }
                }
                self.free.push(slot);
            }
        }
    }
}

/// What a store needs to contribute to checkpoints.
pub struct StoreCheckpoints {
    /// Which ticks are boundaries.
    pub boundaries: Boundaries,
    /// Where pieces go.
    pub pieces: PieceSender,
    /// This worker's index.
    pub worker: usize,
    /// The boundary of the checkpoint restored at start, whose panes arrive at that time.
    pub restored_boundary: Option<u64>,
    /// Whether the restored panes are already in the chain this process keeps writing (the
    /// cluster has the shape that wrote them); if not, they are changes to checkpoint anew.
    pub restored_in_chain: bool,
}

impl StoreCheckpoints {
    /// Sends a piece for every boundary in `(checked_through, through]`: the changes since the
    /// previous one, or the whole state if a full one was requested since `full_answered`.
    fn send_pieces(
        &self,
        state: &mut StoreState,
        checked_through: &mut u64,
        full_answered: &mut u64,
        through: u64,
    ) {
        for boundary in self.boundaries.crossed(*checked_through, through) {
            let requested = self.boundaries.full_requests();
            let full = requested > *full_answered;
            let panes = if full {
                *full_answered = requested;
                tracing::info!(
                    worker = self.worker,
                    boundary,
                    "sending the whole state for a new checkpoint chain"
                );
                state.take_all()
            } else {
                state.take_changes()
            };
            self.pieces.send(Piece::Store(StorePiece {
                worker: self.worker,
                boundary,
                panes,
                full,
            }));
        }
        *checked_through = (*checked_through).max(through);
    }
}

/// Joins pane partials with the widget collection; see the module documentation.
pub fn series_store<'scope>(
    panes: Stream<'scope, u64, Vec<PaneRecord>>,
    widgets: VecCollection<'scope, u64, WidgetQuery, isize>,
    retention_ms: u64,
    checkpoints: Option<StoreCheckpoints>,
) -> Stream<'scope, u64, Vec<Contribution>> {
    let pane_pact = Exchange::new(|(series, _): &PaneRecord| series.route());
    let widget_changes = widgets.inner.broadcast();

    panes.binary_frontier(
        widget_changes,
        pane_pact,
        Pipeline,
        "SeriesStore",
        move |capability, _info| {
            let mut capability: Option<Capability<u64>> = Some(capability);
            let mut pending_panes: BTreeMap<u64, Vec<PaneRecord>> = BTreeMap::new();
            let mut pending_widgets: BTreeMap<u64, Vec<(WidgetQuery, isize)>> = BTreeMap::new();
            let mut state = StoreState::default();
            let mut last_expired = 0;
            // Boundaries up to this one have had their piece sent.
            let mut checked_through = checkpoints
                .as_ref()
                .and_then(|c| c.restored_boundary)
                .unwrap_or(0);
            // Requests for the whole state answered (none is pending at start).
            let mut full_answered = checkpoints
                .as_ref()
                .map_or(0, |c| c.boundaries.full_requests());

            move |(pane_input, pane_frontier), (widget_input, widget_frontier), output| {
                pane_input.for_each(|stamp, data| {
                    if let Some(time) = stamp.least() {
                        pending_panes.entry(*time).or_default().append(data);
                    }
                });
                widget_input.for_each(|_stamp, data| {
                    for (query, time, diff) in data.drain(..) {
                        pending_widgets.entry(time).or_default().push((query, diff));
                    }
                });

                let frontier = joint_frontier([pane_frontier, widget_frontier]);
                while let Some(time) = next_complete(
                    frontier,
                    [
                        pending_widgets.keys().next().copied(),
                        pending_panes.keys().next().copied(),
                    ],
                ) {
                    let Some(cap) = capability.as_ref() else {
                        break;
                    };
                    // Boundaries before this time: the state now is the state at them.
                    if let Some(checkpoints) = checkpoints.as_ref() {
                        checkpoints.send_pieces(
                            &mut state,
                            &mut checked_through,
                            &mut full_answered,
                            time.saturating_sub(1),
                        );
                    }
                    let mut out = Contributions::default();

                    if let Some(mut changes) = pending_widgets.remove(&time) {
                        differential_dataflow::consolidation::consolidate(&mut changes);
                        for (query, diff) in &changes {
                            if *diff < 0
                                && state
                                    .widgets
                                    .get(&query.key.id)
                                    .is_some_and(|w| w.key == query.key)
                            {
                                state.remove_widget(query.key.id);
                            }
                        }
                        for (query, diff) in changes {
                            if diff > 0 {
                                state.remove_widget(query.key.id);
                                state.add_widget(query, time, &mut out);
                            }
                        }
                    }
                    if let Some(records) = pending_panes.remove(&time) {
                        for (key, panes) in records {
                            state.add_partials(key, panes, time, &mut out);
                        }
                    }
                    if !out.is_empty() {
                        output
                            .session(&cap.delayed(&time))
                            .give_iterator(out.drain());
                    }
                    // Restored panes are already in the checkpoint chain: not changes.
                    if checkpoints
                        .as_ref()
                        .is_some_and(|c| c.restored_in_chain && c.restored_boundary == Some(time))
                    {
                        state.forget_changes();
                    }
                }
                if let (Some(checkpoints), Some(f)) = (checkpoints.as_ref(), frontier) {
                    checkpoints.send_pieces(
                        &mut state,
                        &mut checked_through,
                        &mut full_answered,
                        f.saturating_sub(1),
                    );
                }

                // Drop what the retention no longer covers, once per closed tick.
                let closed = frontier.map_or(u64::MAX, |f| f.saturating_sub(1));
                if closed != u64::MAX && closed >= last_expired + 1_000 {
                    state.expire(closed, retention_ms);
                    last_expired = closed;
                }

                hold(&mut capability, frontier);
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> SeriesKey {
        SeriesKey {
            metric: "m".into(),
            tags: vec![("series".into(), name.into())],
        }
    }

    fn pane(end: u64) -> (u64, SeriesPane) {
        (end, SeriesPane::one(end - 1, end as f64))
    }

    /// The pieces a store sends as it crosses boundaries, each as (full, series → pane ends).
    #[test]
    fn a_requested_full_piece_holds_every_pane_once_then_changes_resume() {
        let boundaries = Boundaries::new(2_000);
        let (pieces, received) = PieceSender::for_test();
        let checkpoints = StoreCheckpoints {
            boundaries: boundaries.clone(),
            pieces,
            worker: 0,
            restored_boundary: None,
            restored_in_chain: false,
        };
        let mut state = StoreState::default();
        let (mut through, mut answered) = (0, 0);
        let mut cross = |state: &mut StoreState, to: u64| {
            checkpoints.send_pieces(state, &mut through, &mut answered, to);
            let Ok(Piece::Store(piece)) = received.try_recv() else {
                panic!("no store piece at {to}");
            };
            let mut panes: Vec<(String, Vec<u64>)> = piece
                .panes
                .into_iter()
                .map(|(key, panes)| {
                    (
                        key.tags[0].1.clone(),
                        panes.into_iter().map(|(end, _)| end).collect(),
                    )
                })
                .collect();
            panes.sort();
            (piece.full, panes)
        };
        let mut out = Contributions::default();
        state.add_partials(key("a"), vec![pane(1_000), pane(2_000)], 2_000, &mut out);
        state.add_partials(key("b"), vec![pane(1_000)], 2_000, &mut out);
        assert_eq!(
            cross(&mut state, 2_000),
            (
                false,
                vec![("a".into(), vec![1_000, 2_000]), ("b".into(), vec![1_000])]
            )
        );
        state.add_partials(key("a"), vec![pane(3_000)], 3_000, &mut out);
        boundaries.request_full();
        assert_eq!(
            cross(&mut state, 4_000),
            (
                true,
                vec![
                    ("a".into(), vec![1_000, 2_000, 3_000]),
                    ("b".into(), vec![1_000])
                ]
            )
        );
        state.add_partials(key("b"), vec![pane(5_000)], 5_000, &mut out);
        assert_eq!(
            cross(&mut state, 6_000),
            (false, vec![("b".into(), vec![5_000])])
        );
    }
}
