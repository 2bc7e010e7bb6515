//! From-scratch answers for the window tests: what a window's value should be, computed without
//! any of the window machinery under test.
//!
//! Two oracles. [`fresh`] folds every sample into one new pane with [`PaneSet::insert`] and
//! reads it out, so it works for every registered aggregation, a new one included, and checks
//! the *window machinery* (pane placement, merging, eviction, late data). The plain-iterator
//! [`References`] (sum, count, mean, min, max over the raw samples) are independent of the
//! aggregation code, so they also check what the built-in aggregations *compute*.

#![allow(dead_code)] // each test binary uses its own part of this module

use operators::registry::{AggregationKind, PaneSet};

/// How a window's value is compared with an oracle's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Compare {
    /// Bit-for-bit equal (min, max, count).
    Exact,
    /// Within this relative tolerance, with magnitudes below 1 compared absolutely (sums and
    /// means, whose rounding depends on the order of additions).
    Relative(f64),
}

impl Compare {
    /// The comparison to use when nothing better is known: sums and means are rounded in the
    /// order they were merged, so allow for it.
    pub const DEFAULT: Compare = Compare::Relative(1e-9);

    /// Whether `actual` matches `expected`.
    pub fn matches(self, actual: Option<f64>, expected: Option<f64>) -> bool {
        match (actual, expected) {
            (None, None) => true,
            (Some(a), Some(e)) => match self {
                Compare::Exact => a == e,
                Compare::Relative(tolerance) => {
                    (a - e).abs() <= tolerance * a.abs().max(e.abs()).max(1.0)
                }
            },
            _ => false,
        }
    }
}

/// An independent oracle for one aggregation: its value over the raw sample values.
#[derive(Clone, Copy, Debug)]
pub struct Reference {
    /// The aggregation's result over a window holding exactly these values.
    pub compute: fn(&[f64]) -> Option<f64>,
    /// How the window's value is compared with it.
    pub compare: Compare,
}

/// Plain-iterator oracles for the built-in aggregations.
pub struct References;

impl References {
    /// `sum`: 0 for an empty window.
    pub const SUM: Reference = Reference {
        compute: |values| Some(values.iter().sum()),
        compare: Compare::Relative(1e-9),
    };
    /// `count`: 0 for an empty window.
    pub const COUNT: Reference = Reference {
        compute: |values| Some(values.len() as f64),
        compare: Compare::Exact,
    };
    /// `avg`: the arithmetic mean, `null` for an empty window.
    pub const AVG: Reference = Reference {
        compute: |values| {
            (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
        },
        compare: Compare::Relative(1e-9),
    };
    /// `min`: `null` for an empty window.
    pub const MIN: Reference = Reference {
        compute: |values| values.iter().copied().reduce(f64::min),
        compare: Compare::Exact,
    };
    /// `max`: `null` for an empty window.
    pub const MAX: Reference = Reference {
        compute: |values| values.iter().copied().reduce(f64::max),
        compare: Compare::Exact,
    };

    /// The oracle of a built-in aggregation, by name; `None` for any other.
    pub fn builtin(kind: AggregationKind) -> Option<Reference> {
        match kind.name() {
            "sum" => Some(Self::SUM),
            "count" => Some(Self::COUNT),
            "avg" => Some(Self::AVG),
            "min" => Some(Self::MIN),
            "max" => Some(Self::MAX),
            _ => None,
        }
    }
}

/// The value of `kind` over a `window_ms` window as of `as_of` holding exactly `samples`
/// (event time, value), from scratch: every sample inserted into one fresh [`PaneSet`], its
/// partial projected and read out.
///
/// The read-out goes through a new window holding that single pane, the only public way to
/// reach an aggregation's `finish` from an [`AggregationKind`]: no eviction, no second pane,
/// nothing incremental is involved.
pub fn fresh(
    kind: AggregationKind,
    window_ms: u64,
    as_of: u64,
    samples: impl IntoIterator<Item = (u64, f64)>,
) -> Option<f64> {
    let mut pane = PaneSet::empty();
    for (time, value) in samples {
        pane.insert(time, value);
    }
    let mut window = kind.new_window(window_ms);
    window.advance_to(as_of);
    window.merge(as_of, &pane.project(kind));
    window.value(as_of)
}
