//! The `window_aggregate` operator against from-scratch oracles, at every closed time.
//!
//! Modelled on differential dataflow's `reduce` oracle tests: random inputs (out-of-order,
//! early and late samples; window specs inserted, retracted and replaced mid-stream) are run
//! through the real timely operator, and every key's last reported value is compared at every
//! closed time with a recompute from scratch. See `support/harness.rs` for the model.
//!
//! Every aggregation in the registry is covered by `every_registered_aggregation_...` without
//! naming it; the built-ins also get a property test of their own against a plain-iterator
//! oracle, which is how a new aggregation's test reads: one line.

mod support;

use std::collections::BTreeMap;

use operators::registry::AggregationKind;
use operators::window_aggregate::{WindowChange, WindowSpec};

use support::harness::{
    KeyPlan, LONG, Oracles, PANE, SMALL, Sample, Scenario, check, check_aggregation, check_random,
    run,
};
use support::reference::{Compare, References};

#[test]
fn count_matches_a_plain_count() {
    check_aggregation(AggregationKind::Count, Some(References::COUNT));
}

#[test]
fn sum_matches_a_plain_sum() {
    check_aggregation(AggregationKind::Sum, Some(References::SUM));
}

#[test]
fn avg_matches_a_plain_mean() {
    check_aggregation(AggregationKind::Avg, Some(References::AVG));
}

#[test]
fn min_matches_a_plain_min() {
    check_aggregation(AggregationKind::Min, Some(References::MIN));
}

#[test]
fn max_matches_a_plain_max() {
    check_aggregation(AggregationKind::Max, Some(References::MAX));
}

/// Keys switch between every registered aggregation mid-stream; each value is checked against
/// the fresh-pane recompute, and against the plain-iterator oracle where there is one.
#[test]
fn every_registered_aggregation_matches_the_oracles_as_specs_change() {
    let oracles = Oracles {
        compare: Compare::DEFAULT,
        independent: AggregationKind::ALL
            .iter()
            .filter_map(|&kind| Some((kind, References::builtin(kind)?)))
            .collect(),
    };
    check_random(AggregationKind::ALL.to_vec(), SMALL, 64, &oracles);
    check_random(AggregationKind::ALL.to_vec(), LONG, 4, &oracles);
}

/// A widget whose spec is inserted, replaced (new aggregation), retracted, inserted again and
/// replaced (new length), with one late sample; every change spelled out.
#[test]
fn window_spec_changes_mid_stream() {
    let spec = |aggregation, seconds| {
        Some(WindowSpec {
            aggregation,
            window_ms: seconds * PANE,
        })
    };
    // Series 0: value `s` in the pane ending at `s` seconds, on time; and 100.0 in the pane
    // ending at 7 s, arriving at 8 s.
    let mut samples: Vec<Sample> = (1..=20)
        .map(|second| Sample {
            series: 0,
            event_time: second * PANE - 500,
            arrival: second * PANE,
            value: second as f64,
            batch: false,
        })
        .collect();
    samples.push(Sample {
        series: 0,
        event_time: 6_500,
        arrival: 8_000,
        value: 100.0,
        batch: true,
    });
    let widget = KeyPlan {
        series: 0,
        specs: vec![
            (0, spec(AggregationKind::Sum, 3)),
            (5_000, spec(AggregationKind::Max, 5)),
            (9_000, None),
            (12_000, spec(AggregationKind::Sum, 3)),
            (15_000, spec(AggregationKind::Sum, 5)),
        ],
    };
    let control = KeyPlan {
        series: 0,
        specs: vec![(0, spec(AggregationKind::Count, 2))],
    };
    let scenario = Scenario {
        ticks: 21,
        samples,
        keys: vec![widget, control],
    };
    let changes = run(&scenario);
    let oracles = Oracles {
        compare: Compare::Exact,
        independent: BTreeMap::new(),
    };
    if let Err(error) = check(&scenario, &changes, &oracles) {
        panic!("{error}");
    }

    // The widget's state after each time it changed.
    let mut widget_changes: BTreeMap<u64, WindowChange> = BTreeMap::new();
    for (time, key, change) in changes {
        if key == 0 {
            widget_changes.insert(time, change);
        }
    }
    let value = |v: f64| WindowChange::Value(Some(v));
    let mut expected: BTreeMap<u64, WindowChange> = [0.0, 1.0, 3.0, 6.0, 9.0]
        .into_iter()
        .enumerate()
        .map(|(second, sum)| (second as u64 * PANE, value(sum)))
        .collect();
    // Max over 5 s from 5 s on: a fresh window, which the late 100.0 reaches at 8 s.
    expected.extend([
        (5_000, value(5.0)),
        (6_000, value(6.0)),
        (7_000, value(7.0)),
    ]);
    expected.extend([(8_000, value(100.0)), (9_000, WindowChange::Removed)]);
    // Sum over 3 s from 12 s, over 5 s from 15 s, then draining after the last data at 20 s.
    let sums = [
        12.0, 25.0, 39.0, 15.0, 31.0, 48.0, 66.0, 85.0, 90.0, 74.0, 57.0, 39.0, 20.0, 0.0,
    ];
    expected.extend(
        sums.into_iter()
            .enumerate()
            .map(|(i, sum)| ((12 + i as u64) * PANE, value(sum))),
    );
    assert_eq!(widget_changes, expected);
}
