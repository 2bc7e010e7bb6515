//! An oracle harness for the `window_aggregate` operator: random scenarios of samples and window
//! specs, run through the real timely operator, with every key's last reported value checked at
//! every closed time against a from-scratch recompute.
//!
//! A [`Scenario`] is a few series of samples, each with an event time and the closed time it
//! arrives at (early, on time, or late, possibly too late for the shorter windows), and a few
//! keys (widgets), each reading one series through a window spec that is inserted, retracted
//! and replaced over time. The harness feeds the operator as flowboard's dataflow does: at each
//! closed time `t`, the spec changes of `t`, then for each key the partials of its samples
//! delivered at `t` (at `max(arrival, pane end)`, some panes split over two partials),
//! projected to the key's current aggregation. Its model of the result as of `T` for a key whose
//! current spec `(aggregation, w)` was put in place at `since`: the samples of its series whose
//! pane `P` satisfies `T - w < P <= T` and that were delivered in `[since, T]`, folded into one
//! fresh pane ([`reference::fresh`]), and optionally the aggregation's plain-iterator
//! [`Reference`]. A key without a spec must have no value (never reported, or `Removed`).
//!
//! [`check_aggregation`] is the one-line property test for an aggregation.

use std::collections::{BTreeMap, BTreeSet};

use differential_dataflow::input::Input;
use operators::registry::{AggregationKind, AnyPane, PaneSet};
use operators::window_aggregate::{WindowAggregate, WindowChange, WindowSpec};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use timely::dataflow::operators::capture::Event;
use timely::dataflow::operators::{Capture, Input as _};

use super::reference::{self, Compare, Reference};

/// Pane width and closed-time step, in milliseconds.
pub const PANE: u64 = 1_000;

/// Window lengths scenarios choose from, in panes.
pub const WINDOW_PANES: [u64; 8] = [1, 2, 3, 5, 10, 30, 64, 65];

/// One sample of one series.
#[derive(Clone, Debug)]
pub struct Sample {
    /// The series it belongs to.
    pub series: usize,
    /// Event time, epoch milliseconds.
    pub event_time: u64,
    /// The closed time at which it reaches the operator; before its pane ends if early.
    pub arrival: u64,
    /// The value.
    pub value: f64,
    /// Which of two partials of its pane and delivery time it travels in.
    pub batch: bool,
}

impl Sample {
    /// The end of the pane holding it.
    pub fn pane_end(&self) -> u64 {
        self.event_time.div_ceil(PANE) * PANE
    }
    /// When its partial is fed to the operator: when it arrived, or when its pane closed.
    pub fn delivery(&self) -> u64 {
        self.arrival.max(self.pane_end())
    }
}

/// One key's series and window spec over time.
#[derive(Clone, Debug)]
pub struct KeyPlan {
    /// The series the key reads.
    pub series: usize,
    /// From each time on, the key's spec (`None`: no window); sorted by time.
    pub specs: Vec<(u64, Option<WindowSpec>)>,
}

impl KeyPlan {
    /// The spec in force at `time`, and since when (when it was last put in place). Of several
    /// entries at one time only the last counts, as differential consolidates them.
    fn spec_at(&self, time: u64) -> Option<(u64, WindowSpec)> {
        let mut current = None;
        for (index, &(from, spec)) in self.specs.iter().enumerate() {
            if from > time {
                break;
            }
            if self
                .specs
                .get(index + 1)
                .is_some_and(|(next, _)| *next == from)
            {
                continue;
            }
            current = match (current, spec) {
                (Some((since, old)), Some(new)) if old == new => Some((since, old)),
                (_, spec) => spec.map(|spec| (from, spec)),
            };
        }
        current
    }
}

/// A run of the operator: samples, keys, and how many closed times get data.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Closed times `0, PANE, .., (ticks - 1) * PANE` carry data and spec changes.
    pub ticks: u64,
    /// The samples, in no particular order.
    pub samples: Vec<Sample>,
    /// The keys; key `k` is `k as u64` in the operator.
    pub keys: Vec<KeyPlan>,
}

/// How large random scenarios get.
#[derive(Clone, Copy, Debug)]
pub struct Size {
    /// Closed times with data.
    pub ticks: u64,
    /// Samples, at most.
    pub samples: usize,
    /// Keys, at most.
    pub keys: usize,
    /// Spec changes per key, at most.
    pub changes: usize,
}

/// Many small scenarios: quick to run and to shrink.
pub const SMALL: Size = Size {
    ticks: 40,
    samples: 80,
    keys: 4,
    changes: 4,
};

/// A few long ones: windows slide many times over.
pub const LONG: Size = Size {
    ticks: 400,
    samples: 1_500,
    keys: 6,
    changes: 8,
};

/// Random scenarios whose keys use the aggregations in `kinds`.
pub fn scenarios(kinds: Vec<AggregationKind>, size: Size) -> impl Strategy<Value = Scenario> {
    assert!(!kinds.is_empty(), "scenarios need at least one aggregation");
    (2..=size.ticks, 1..=2usize).prop_flat_map(move |(ticks, series)| {
        let last = (ticks - 1) * PANE;
        let sample = (
            0..series,
            0..=last,
            -3i64..=8,
            -1_000.0..1_000.0f64,
            any::<bool>(),
        )
            .prop_map(move |(series, event_time, lateness, value, batch)| {
                let pane_end = event_time.div_ceil(PANE) * PANE;
                let arrival = pane_end
                    .saturating_add_signed(lateness * PANE as i64)
                    .min(last);
                Sample {
                    series,
                    event_time,
                    arrival,
                    value,
                    batch,
                }
            });
        let spec = prop::option::weighted(
            0.8,
            (
                prop::sample::select(kinds.clone()),
                prop::sample::select(WINDOW_PANES.to_vec()),
            ),
        )
        .prop_map(|spec| {
            spec.map(|(aggregation, panes)| WindowSpec {
                aggregation,
                window_ms: panes * PANE,
            })
        });
        let key = (
            0..series,
            prop::collection::vec((0..ticks, spec), 1..=size.changes),
        )
            .prop_map(|(series, mut specs)| {
                specs.sort_by_key(|(tick, _)| *tick);
                let specs = specs
                    .into_iter()
                    .map(|(tick, spec)| (tick * PANE, spec))
                    .collect();
                KeyPlan { series, specs }
            });
        (
            prop::collection::vec(sample, 0..=size.samples),
            prop::collection::vec(key, 1..=size.keys),
        )
            .prop_map(move |(samples, keys)| Scenario {
                ticks,
                samples,
                keys,
            })
    })
}

/// What a check compares the operator's values with.
#[derive(Clone, Debug)]
pub struct Oracles {
    /// How values are compared with the fresh-pane recompute.
    pub compare: Compare,
    /// Independent oracles, by aggregation.
    pub independent: BTreeMap<AggregationKind, Reference>,
}

/// Window spec updates by time: `((key, spec), diff)`.
type SpecChanges = BTreeMap<u64, Vec<((u64, WindowSpec), isize)>>;

/// Runs the operator over `scenario`: every reported change, in the order reported, with its
/// time and key.
pub fn run(scenario: &Scenario) -> Vec<(u64, u64, WindowChange)> {
    let mut spec_changes: SpecChanges = BTreeMap::new();
    let mut partials: BTreeMap<(u64, u64, u64, bool), PaneSet> = BTreeMap::new();
    for (key, plan) in scenario.keys.iter().enumerate() {
        let key = key as u64;
        let mut current: Option<WindowSpec> = None;
        for &(time, _) in &plan.specs {
            let next = plan.spec_at(time).map(|(_, spec)| spec);
            if next != current {
                let changes = spec_changes.entry(time).or_default();
                changes.extend(current.map(|old| ((key, old), -1)));
                changes.extend(next.map(|new| ((key, new), 1)));
                current = next;
            }
        }
        for sample in scenario.samples.iter().filter(|s| s.series == plan.series) {
            let at = (sample.delivery(), key, sample.pane_end(), sample.batch);
            partials
                .entry(at)
                .or_default()
                .insert(sample.event_time, sample.value);
        }
    }
    let mut deliveries: BTreeMap<u64, Vec<(u64, u64, AnyPane)>> = BTreeMap::new();
    for ((time, key, pane_end, _), pane) in partials {
        // Project to the key's aggregation at that time; keys without a window get some
        // partial anyway, which the operator must ignore.
        let kind = scenario.keys[key as usize]
            .spec_at(time)
            .map_or(AggregationKind::ALL[0], |(_, spec)| spec.aggregation);
        deliveries
            .entry(time)
            .or_default()
            .push((key, pane_end, pane.project(kind)));
    }

    let ticks = scenario.ticks;
    let captured = timely::execute_directly(move |worker| {
        let (mut partial_input, mut spec_input, captured) = worker.dataflow::<u64, _, _>(|scope| {
            let (partial_input, partials) = scope.new_input();
            let (spec_input, specs) = scope.new_collection();
            (
                partial_input,
                spec_input,
                partials.window_aggregate(specs).capture(),
            )
        });
        for tick in 0..ticks {
            let time = tick * PANE;
            partial_input.advance_to(time);
            spec_input.advance_to(time);
            for (update, diff) in spec_changes.remove(&time).unwrap_or_default() {
                spec_input.update(update, diff);
            }
            for partial in deliveries.remove(&time).unwrap_or_default() {
                partial_input.send(partial);
            }
            spec_input.flush();
            worker.step();
        }
        captured
    });

    let mut changes = Vec::new();
    for event in captured.try_iter() {
        if let Event::Messages(stamp, data) = event {
            let time = *stamp.least().expect("a message has a time");
            changes.extend(data.into_iter().map(|(key, change)| (time, key, change)));
        }
    }
    changes.sort_by_key(|(time, _, _)| *time); // stable: keeps each time's order
    changes
}

/// Checks the changes `run` reported for `scenario` at every closed time, up to the time the
/// last pane has left every window.
pub fn check(
    scenario: &Scenario,
    changes: &[(u64, u64, WindowChange)],
    oracles: &Oracles,
) -> Result<(), String> {
    let longest = WINDOW_PANES.iter().max().copied().unwrap_or(1) * PANE;
    let horizon = scenario.ticks * PANE + longest;
    let mut times: BTreeSet<u64> = (0..=horizon / PANE).map(|tick| tick * PANE).collect();
    times.extend(changes.iter().map(|(time, _, _)| *time));

    let mut reported: BTreeMap<u64, &WindowChange> = BTreeMap::new();
    let mut next_change = changes.iter().peekable();
    for as_of in times {
        while let Some((_, key, change)) = next_change.next_if(|(time, _, _)| *time <= as_of) {
            reported.insert(*key, change);
        }
        for (key, plan) in scenario.keys.iter().enumerate() {
            let actual = reported.get(&(key as u64)).copied();
            let Some((since, spec)) = plan.spec_at(as_of) else {
                if let Some(WindowChange::Value(value)) = actual {
                    return Err(format!(
                        "key {key} has no window at {as_of} but reports {value:?}"
                    ));
                }
                continue;
            };
            let Some(WindowChange::Value(actual)) = actual.cloned() else {
                return Err(format!(
                    "key {key} ({spec:?}) has no value at {as_of}: {actual:?}"
                ));
            };
            let counted: Vec<&Sample> = scenario
                .samples
                .iter()
                .filter(|s| s.series == plan.series)
                .filter(|s| (since..=as_of).contains(&s.delivery()))
                .filter(|s| s.pane_end() <= as_of && s.pane_end() + spec.window_ms > as_of)
                .collect();
            let samples = counted.iter().map(|s| (s.event_time, s.value));
            let expected = reference::fresh(spec.aggregation, spec.window_ms, as_of, samples);
            let mut verdicts = vec![("fresh pane", expected, oracles.compare)];
            if let Some(independent) = oracles.independent.get(&spec.aggregation) {
                let values: Vec<f64> = counted.iter().map(|s| s.value).collect();
                verdicts.push((
                    "plain iterator",
                    (independent.compute)(&values),
                    independent.compare,
                ));
            }
            for (oracle, expected, compare) in verdicts {
                if !compare.matches(actual, expected) {
                    return Err(format!(
                        "key {key} ({} over {} ms, since {since}) as of {as_of}: operator says \
                         {actual:?}, {oracle} recompute says {expected:?} ({} samples)",
                        spec.aggregation,
                        spec.window_ms,
                        counted.len()
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Runs `cases` random scenarios of `size` through the operator and checks each.
pub fn check_random(kinds: Vec<AggregationKind>, size: Size, cases: u32, oracles: &Oracles) {
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&scenarios(kinds.clone(), size), |scenario| {
        check(&scenario, &run(&scenario), oracles).map_err(TestCaseError::fail)
    });
    if let Err(error) = result {
        panic!("window_aggregate disagrees with the oracle for {kinds:?}: {error}");
    }
}

/// The property test of one aggregation: many small random scenarios and a few long ones, each
/// checked at every closed time against the fresh-pane recompute and, if given, an independent
/// `reference`. A new aggregation's test is one line:
///
/// ```ignore
/// #[test]
/// fn p99_matches_the_oracle() { check_aggregation(AggregationKind::P99, None) }
/// ```
pub fn check_aggregation(kind: AggregationKind, reference: Option<Reference>) {
    let oracles = Oracles {
        compare: reference.map_or(Compare::DEFAULT, |r| r.compare),
        independent: reference.map(|r| (kind, r)).into_iter().collect(),
    };
    check_random(vec![kind], SMALL, 48, &oracles);
    check_random(vec![kind], LONG, 3, &oracles);
}
