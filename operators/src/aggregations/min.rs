//! `min`: the smallest sample in the window.

use crate::aggregation::{Aggregation, Eviction, WindowExtent};

/// The smallest sample in the window; `null` for an empty window. Not invertible: when the
/// smallest sample expires the window recombines what is left.
///
/// The partial is a bare `f64` with `+∞` as the empty value: samples are always finite, so
/// `+∞` is never a real minimum, and a pane costs 8 bytes instead of 16 for an `Option`.
pub struct Min;

impl Aggregation for Min {
    const NAME: &'static str = "min";
    const EVICTION: Eviction = Eviction::Recombine;
    type Pane = f64;

    fn empty() -> f64 {
        f64::INFINITY
    }
    fn insert(pane: &mut f64, _time: u64, value: f64) {
        *pane = pane.min(value);
    }
    fn merge(into: &mut f64, other: &f64) {
        *into = into.min(*other);
    }
    fn finish(total: &f64, _extent: WindowExtent) -> Option<f64> {
        total.is_finite().then_some(*total)
    }
}
