//! The `window_aggregate` operator: per-key sliding-window aggregates over pane partials, with
//! the set of windows itself a differential collection.
//!
//! Like differential's `count_total`, this is a specialization of `reduce` for a totally ordered
//! time: where `reduce` would recompute a key's aggregate from all of its values whenever one
//! changes, this keeps one [`WindowState`] per key and updates it in time proportional to the
//! change, whatever the window length.
//!
//! Inputs, at timely time `t` (epoch milliseconds, a multiple of the pane width):
//! - `(key, pane_end, partial)` with `pane_end <= t`: a partial for the pane ending at
//!   `pane_end`, which counts from `t` on and leaves the window at `pane_end + window`;
//! - a collection of `(key, WindowSpec)`: which windows exist. Inserting a spec creates an empty
//!   window; retracting it drops the window and emits [`WindowChange::Removed`].
//!
//! Output, at each time `t` where a key's value changed (new data, a pane leaving, a new window):
//! `(key, WindowChange::Value(v))`, `v` being the key's result as of `t`.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::fmt::Debug;
use std::hash::Hash;

use differential_dataflow::{ExchangeData, Hashable, VecCollection};
use serde::{Deserialize, Serialize};
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;

use crate::progress::{hold, joint_frontier, next_complete};
use crate::registry::{AggregationKind, AnyPane};
use crate::window::WindowState;

/// What a window computes: an aggregation over a window length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WindowSpec {
    /// The aggregation.
    pub aggregation: AggregationKind,
    /// The window length in milliseconds; a multiple of the pane width.
    pub window_ms: u64,
}

/// A change of a key's window, emitted at the time it happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum WindowChange {
    /// The key's new result (`None`: the aggregation's result for an empty window is undefined).
    Value(Option<f64>),
    /// The key's window spec was retracted; it has no value any more.
    Removed,
}

/// Extension trait for the `window_aggregate` operator on streams of pane partials.
pub trait WindowAggregate<'scope, K> {
    /// Maintains a sliding window per key of `specs` over the partials in `self`, and reports
    /// each key's result whenever it changes. See the module documentation.
    ///
    /// # Examples
    ///
    /// ```
    /// use operators::registry::{AggregationKind, PaneSet};
    /// use operators::window_aggregate::{WindowAggregate, WindowChange, WindowSpec};
    /// use differential_dataflow::input::Input;
    /// use timely::dataflow::operators::{Capture, Input as _};
    /// use timely::dataflow::operators::capture::Event;
    ///
    /// let captured = timely::execute_directly(|worker| {
    ///     let (mut partials, mut specs, captured) = worker.dataflow::<u64, _, _>(|scope| {
    ///         let (partials, stream) = scope.new_input();
    ///         let (specs, collection) = scope.new_collection();
    ///         (partials, specs, stream.window_aggregate(collection).capture())
    ///     });
    ///     // A 2 s maximum, with 9.0 in the pane ending at 1 s and 4.0 in the one ending at 2 s.
    ///     let spec = WindowSpec { aggregation: AggregationKind::Max, window_ms: 2_000 };
    ///     specs.insert(("cpu".to_string(), spec));
    ///     for (pane_end, value) in [(1_000, 9.0), (2_000, 4.0)] {
    ///         partials.advance_to(pane_end);
    ///         specs.advance_to(pane_end);
    ///         let mut pane = PaneSet::empty();
    ///         pane.insert(pane_end - 500, value);
    ///         partials.send(("cpu".to_string(), pane_end, pane.project(AggregationKind::Max)));
    ///     }
    ///     captured
    /// });
    /// let mut changes = Vec::new();
    /// for event in captured.try_iter() {
    ///     if let Event::Messages(time, data) = event {
    ///         let time = *time.least().unwrap();
    ///         changes.extend(data.into_iter().map(|(_, change)| (time, change)));
    ///     }
    /// }
    /// // The pane ending at 1 s leaves at 3 s, the one ending at 2 s at 4 s.
    /// assert_eq!(changes, vec![
    ///     (0, WindowChange::Value(None)),
    ///     (1_000, WindowChange::Value(Some(9.0))),
    ///     (3_000, WindowChange::Value(Some(4.0))),
    ///     (4_000, WindowChange::Value(None)),
    /// ]);
    /// ```
    fn window_aggregate(
        self,
        specs: VecCollection<'scope, u64, (K, WindowSpec), isize>,
    ) -> Stream<'scope, u64, Vec<(K, WindowChange)>>;
}

/// Window spec changes waiting for their time to close, by time.
type PendingSpecs<K> = BTreeMap<u64, Vec<((K, WindowSpec), isize)>>;

/// One key's window and what was last reported for it.
struct KeyedWindow {
    spec: WindowSpec,
    window: Box<dyn WindowState>,
    reported: Option<Option<f64>>,
    /// The expiry time a timer is pending for, if any.
    timer: Option<u64>,
}

impl<'scope, K> WindowAggregate<'scope, K> for Stream<'scope, u64, Vec<(K, u64, AnyPane)>>
where
    K: ExchangeData + Hash + Eq + Debug,
{
    fn window_aggregate(
        self,
        specs: VecCollection<'scope, u64, (K, WindowSpec), isize>,
    ) -> Stream<'scope, u64, Vec<(K, WindowChange)>> {
        let data_pact = Exchange::new(|(key, _, _): &(K, u64, AnyPane)| key.hashed());
        let spec_pact =
            Exchange::new(|((key, _), _, _): &((K, WindowSpec), u64, isize)| key.hashed());

        self.binary_frontier(
            specs.inner,
            data_pact,
            spec_pact,
            "WindowAggregate",
            |capability, _info| {
                let mut capability: Option<Capability<u64>> = Some(capability);
                let mut pending_data: BTreeMap<u64, Vec<(K, u64, AnyPane)>> = BTreeMap::new();
                let mut pending_specs: PendingSpecs<K> = BTreeMap::new();
                let mut windows: HashMap<K, KeyedWindow> = HashMap::new();
                let mut timers: BinaryHeap<Reverse<(u64, K)>> = BinaryHeap::new();

                move |(data_input, data_frontier), (spec_input, spec_frontier), output| {
                    data_input.for_each(|stamp, data| {
                        if let Some(time) = stamp.least() {
                            pending_data.entry(*time).or_default().append(data);
                        }
                    });
                    spec_input.for_each(|_time, data| {
                        for ((key, spec), time, diff) in data.drain(..) {
                            pending_specs
                                .entry(time)
                                .or_default()
                                .push(((key, spec), diff));
                        }
                    });

                    // Everything strictly before `frontier` is complete (`None`: everything is).
                    let frontier = joint_frontier([data_frontier, spec_frontier]);
                    while let Some(time) = next_complete(
                        frontier,
                        [
                            pending_specs.keys().next().copied(),
                            pending_data.keys().next().copied(),
                            timers.peek().map(|Reverse((time, _))| *time),
                        ],
                    ) {
                        let Some(cap) = capability.as_ref() else {
                            break;
                        };
                        let cap = cap.delayed(&time);
                        let mut touched: Vec<K> = Vec::new();

                        // 1. Window specs: retractions before insertions, so an update replaces.
                        if let Some(mut changes) = pending_specs.remove(&time) {
                            differential_dataflow::consolidation::consolidate(&mut changes);
                            changes.sort_by_key(|(_, diff)| *diff);
                            let mut session = output.session(&cap);
                            for ((key, spec), diff) in changes {
                                if diff < 0 {
                                    if windows.get(&key).is_some_and(|w| w.spec == spec) {
                                        windows.remove(&key);
                                        session.give((key, WindowChange::Removed));
                                    }
                                } else {
                                    let window = spec.aggregation.new_window(spec.window_ms);
                                    windows.insert(
                                        key.clone(),
                                        KeyedWindow {
                                            spec,
                                            window,
                                            reported: None,
                                            timer: None,
                                        },
                                    );
                                    touched.push(key);
                                }
                            }
                        }
                        // 2. Partials.
                        if let Some(data) = pending_data.remove(&time) {
                            for (key, pane_end, pane) in data {
                                debug_assert!(
                                    pane_end <= time,
                                    "partial for pane {pane_end} arrived early, at {time}"
                                );
                                if let Some(entry) = windows.get_mut(&key) {
                                    entry.window.advance_to(time);
                                    entry.window.merge(pane_end, &pane);
                                    touched.push(key);
                                }
                            }
                        }
                        // 3. Panes leaving their windows.
                        while let Some(Reverse((at, _))) = timers.peek() {
                            if *at > time {
                                break;
                            }
                            let Some(Reverse((at, key))) = timers.pop() else {
                                break;
                            };
                            if let Some(entry) = windows.get_mut(&key)
                                && entry.timer == Some(at)
                            {
                                entry.timer = None;
                                touched.push(key);
                            }
                        }

                        // Report what changed, and arm the next expiry of each touched window.
                        touched.sort();
                        touched.dedup();
                        let mut session = output.session(&cap);
                        for key in touched {
                            let Some(entry) = windows.get_mut(&key) else {
                                continue;
                            };
                            entry.window.advance_to(time);
                            let value = entry.window.value(time);
                            if entry.reported != Some(value) {
                                entry.reported = Some(value);
                                session.give((key.clone(), WindowChange::Value(value)));
                            }
                            let expiry = entry.window.next_expiry();
                            if expiry != entry.timer {
                                entry.timer = expiry;
                                if let Some(at) = expiry {
                                    timers.push(Reverse((at, key)));
                                }
                            }
                        }
                    }

                    // Keep a capability for the earliest time we may still report at: the
                    // frontier, or an expiry before it. (Every timer fired if it is empty.)
                    let earliest =
                        frontier.map(|f| timers.peek().map_or(f, |Reverse((t, _))| f.min(*t)));
                    hold(&mut capability, earliest);
                }
            },
        )
    }
}
