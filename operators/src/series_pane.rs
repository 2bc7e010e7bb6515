//! [`SeriesPane`]: one pane of one series, kept as its single sample until it has more.
//!
//! Most panes of a series sampled about once a pane hold one sample, and the partials of
//! every registered aggregation over one sample are a function of that sample. So a pane keeps
//! the sample itself (16 bytes) and builds the [`PaneSet`] (the partials of every aggregation)
//! only when a second sample arrives. Nothing here knows which aggregations exist: a
//! one-sample pane is projected with the aggregation's own `insert`
//! ([`AggregationKind::partial`]), the same path [`PaneSet::insert`] takes, so any registered
//! aggregation gets identical partials either way (the tests below check every one).
//!
//! # Examples
//!
//! ```
//! use operators::aggregation::WindowExtent;
//! use operators::registry::AggregationKind;
//! use operators::series_pane::SeriesPane;
//!
//! let mut pane = SeriesPane::one(1_200, 3.0);
//! assert_eq!(pane.sample(), Some((1_200, 3.0)));
//! pane.insert(1_700, 5.0);
//! assert_eq!(pane.sample(), None, "two samples: a PaneSet now");
//! let extent = WindowExtent { window_ms: 10_000, as_of: 2_000 };
//! assert_eq!(pane.project(AggregationKind::Sum).finish(extent), Some(8.0));
//! assert_eq!(pane.project(AggregationKind::Last).finish(extent), Some(5.0));
//! ```

use serde::{Deserialize, Serialize};

use crate::registry::{AggregationKind, AnyPane, PaneSet};

/// The partials of one pane of one series; see the module documentation. 24 bytes: a set of
/// several samples' partials is boxed, so the common one-sample pane does not pay for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SeriesPane {
    /// Exactly one sample: its event time (epoch ms) and value.
    One {
        /// Event time, epoch milliseconds.
        time: u64,
        /// The value.
        value: f64,
    },
    /// The partials of every registered aggregation over two or more samples.
    Set(Box<PaneSet>),
}

impl SeriesPane {
    /// The pane of one sample.
    pub fn one(time: u64, value: f64) -> Self {
        SeriesPane::One { time, value }
    }

    /// The sample, if this pane holds exactly one.
    pub fn sample(&self) -> Option<(u64, f64)> {
        match self {
            SeriesPane::One { time, value } => Some((*time, *value)),
            SeriesPane::Set(_) => None,
        }
    }

    /// Adds one sample.
    #[inline]
    pub fn insert(&mut self, time: u64, value: f64) {
        self.as_set_mut().insert(time, value);
    }

    /// Merges another pane of the same series and pane end into this one.
    pub fn merge(&mut self, other: &SeriesPane) {
        match other {
            SeriesPane::One { time, value } => self.insert(*time, *value),
            SeriesPane::Set(set) => self.as_set_mut().merge(set),
        }
    }

    /// The partial of one aggregation.
    pub fn project(&self, kind: AggregationKind) -> AnyPane {
        match self {
            SeriesPane::One { time, value } => kind.partial([(*time, *value)]),
            SeriesPane::Set(set) => set.project(kind),
        }
    }

    /// The partials of every aggregation, built from the sample if needed.
    pub fn into_set(self) -> PaneSet {
        match self {
            SeriesPane::One { time, value } => set_of(time, value),
            SeriesPane::Set(set) => *set,
        }
    }

    /// Turns this pane into a set (if it is one sample) and returns the set.
    fn as_set_mut(&mut self) -> &mut PaneSet {
        if let SeriesPane::One { time, value } = *self {
            *self = SeriesPane::Set(Box::new(set_of(time, value)));
        }
        match self {
            SeriesPane::Set(set) => set,
            SeriesPane::One { .. } => unreachable!("converted above"),
        }
    }
}

impl From<PaneSet> for SeriesPane {
    fn from(set: PaneSet) -> Self {
        SeriesPane::Set(Box::new(set))
    }
}

/// The partials of every aggregation over one sample.
fn set_of(time: u64, value: f64) -> PaneSet {
    let mut set = PaneSet::empty();
    set.insert(time, value);
    set
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Whole values, so sums come out the same in any order of addition.
    fn sample() -> impl Strategy<Value = (u64, f64)> {
        (0u64..10_000, (-1_000_000i32..1_000_000).prop_map(f64::from))
    }

    proptest! {
        /// A pane kept as its sample, then grown sample by sample or merged from pieces,
        /// projects to what a `PaneSet` of the same samples projects to, for every registered
        /// aggregation.
        #[test]
        fn agrees_with_a_pane_set(
            samples in prop::collection::vec(sample(), 1..8),
            split in 0usize..8,
        ) {
            let mut set = PaneSet::empty();
            for (time, value) in &samples {
                set.insert(*time, *value);
            }
            let mut grown = SeriesPane::one(samples[0].0, samples[0].1);
            for (time, value) in &samples[1..] {
                grown.insert(*time, *value);
            }
            // The same samples as two panes merged: ones and sets both ways round.
            let split = split.clamp(1, samples.len());
            let piece = |part: &[(u64, f64)]| {
                let mut pane = SeriesPane::one(part[0].0, part[0].1);
                for (time, value) in &part[1..] {
                    pane.insert(*time, *value);
                }
                pane
            };
            let merged = if split < samples.len() {
                let mut merged = piece(&samples[..split]);
                merged.merge(&piece(&samples[split..]));
                merged
            } else {
                piece(&samples)
            };
            for kind in AggregationKind::ALL {
                prop_assert_eq!(grown.project(*kind), set.project(*kind), "{}", kind.name());
                prop_assert_eq!(merged.project(*kind), set.project(*kind), "{}", kind.name());
            }
            prop_assert_eq!(grown.clone().into_set(), set.clone());
            prop_assert_eq!(grown.sample().is_some(), samples.len() == 1);
        }
    }

    #[test]
    fn is_small() {
        assert_eq!(std::mem::size_of::<SeriesPane>(), 24);
    }
}
