//! `last`: the most recent sample in the window, by event time.
//!
//! "Most recent" is by the producer's event time, not by arrival: a late sample does not replace
//! a newer one that arrived first. Samples with the same event time are ordered by value, the
//! largest winning (IEEE total order, so `0.0` beats `-0.0`), which makes the merge a maximum
//! over one total order: commutative, associative and idempotent, so the result does not depend
//! on arrival order, pane boundaries or which worker merged what. Not invertible: when the most
//! recent sample's pane expires, the window recombines what is left (FlatFAT), like `max`.
//!
//! # Examples
//!
//! ```
//! use operators::aggregation::{Aggregation, WindowExtent};
//! use operators::aggregations::Last;
//!
//! let extent = WindowExtent { window_ms: 60_000, as_of: 3_000 };
//! let mut pane = Last::empty();
//! assert_eq!(Last::finish(&pane, extent), None); // an empty window has no last value
//! Last::insert(&mut pane, 2_500, 7.0);
//! Last::insert(&mut pane, 1_200, 9.0); // arrives later, happened earlier
//! assert_eq!(Last::finish(&pane, extent), Some(7.0));
//!
//! // A tie on event time goes to the larger value, whichever came first.
//! let mut other = Last::empty();
//! Last::insert(&mut other, 2_500, 4.0);
//! Last::merge(&mut other, &pane);
//! assert_eq!(Last::finish(&other, extent), Some(7.0));
//! ```

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::aggregation::{Aggregation, Eviction, WindowExtent};

/// The value of the sample with the latest event time in the window; `null` for an empty
/// window. See the module documentation for ties.
pub struct Last;

/// The latest sample of a pane (or window): 16 bytes, no `Option`.
///
/// Empty is `value = -∞` at time 0: samples are always finite, so every sample, even one at
/// time 0, comes after it.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Latest {
    /// Event time of the sample, epoch milliseconds.
    pub time: u64,
    /// Its value; `-∞` when the pane is empty.
    pub value: f64,
}

impl Latest {
    /// No sample.
    pub const NONE: Latest = Latest {
        time: 0,
        value: f64::NEG_INFINITY,
    };

    /// The order samples are ranked in: event time, then value.
    fn rank(&self, other: &Latest) -> Ordering {
        self.time
            .cmp(&other.time)
            .then(self.value.total_cmp(&other.value))
    }
}

/// Bit-for-bit equality, consistent with the ranking: `-0.0` and `0.0` are different partials.
impl PartialEq for Latest {
    fn eq(&self, other: &Latest) -> bool {
        self.rank(other) == Ordering::Equal
    }
}

impl Aggregation for Last {
    const NAME: &'static str = "last";
    const EVICTION: Eviction = Eviction::Recombine;
    type Pane = Latest;

    fn empty() -> Latest {
        Latest::NONE
    }
    fn insert(pane: &mut Latest, time: u64, value: f64) {
        Self::merge(pane, &Latest { time, value });
    }
    fn merge(into: &mut Latest, other: &Latest) {
        if other.rank(into) == Ordering::Greater {
            *into = *other;
        }
    }
    fn finish(total: &Latest, _extent: WindowExtent) -> Option<f64> {
        total.value.is_finite().then_some(total.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(samples: &[(u64, f64)]) -> Latest {
        let mut pane = Last::empty();
        for &(time, value) in samples {
            Last::insert(&mut pane, time, value);
        }
        pane
    }

    #[test]
    fn the_latest_event_time_wins_then_the_larger_value() {
        let samples = [(5, 1.0), (9, -3.0), (9, -4.0), (2, 100.0), (9, -3.5)];
        let mut reversed = samples;
        reversed.reverse();
        for order in [samples, reversed] {
            assert_eq!(of(&order), Latest { time: 9, value: -3.0 });
        }
        assert_eq!(of(&[(0, -0.0), (0, 0.0)]).value.to_bits(), 0.0f64.to_bits());
        assert_eq!(of(&[(0, 0.0), (0, -0.0)]).value.to_bits(), 0.0f64.to_bits());
        assert_ne!(of(&[(0, -0.0)]), of(&[(0, 0.0)]));
    }

    #[test]
    fn empty_is_the_identity_even_at_time_zero() {
        let extent = WindowExtent {
            window_ms: 1_000,
            as_of: 0,
        };
        assert_eq!(Last::finish(&Last::empty(), extent), None);
        let mut pane = Last::empty();
        Last::merge(&mut pane, &of(&[(0, -1e300)]));
        assert_eq!(Last::finish(&pane, extent), Some(-1e300));
        let mut merged = of(&[(0, -1e300)]);
        Last::merge(&mut merged, &Last::empty());
        assert_eq!(merged, pane);
    }
}
