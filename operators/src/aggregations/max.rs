//! `max`: the largest sample in the window.

use crate::aggregation::{Aggregation, Eviction, WindowExtent};

/// The largest sample in the window; `null` for an empty window. Not invertible: when the
/// largest sample expires the window recombines what is left.
///
/// The partial is a bare `f64` with `-∞` as the empty value: samples are always finite, so
/// `-∞` is never a real maximum, and a pane costs 8 bytes instead of 16 for an `Option`.
pub struct Max;

impl Aggregation for Max {
    const NAME: &'static str = "max";
    const EVICTION: Eviction = Eviction::Recombine;
    type Pane = f64;

    fn empty() -> f64 {
        f64::NEG_INFINITY
    }
    fn insert(pane: &mut f64, _time: u64, value: f64) {
        *pane = pane.max(value);
    }
    fn merge(into: &mut f64, other: &f64) {
        *into = into.max(*other);
    }
    fn finish(total: &f64, _extent: WindowExtent) -> Option<f64> {
        total.is_finite().then_some(*total)
    }
}
