//! `sum`: the sum of the samples in the window.

use crate::aggregation::{Aggregation, Eviction, WindowExtent};

/// The sum of the samples in the window; `0` for an empty window.
///
/// Subtract-on-evict accumulates floating-point rounding; the window rebuilds its total from the
/// panes once per window length and resets it exactly when the window empties (see
/// [`crate::window`]), so the error stays that of summing one window.
pub struct Sum;

impl Aggregation for Sum {
    const NAME: &'static str = "sum";
    const EVICTION: Eviction = Eviction::Subtract;
    type Pane = f64;

    fn empty() -> f64 {
        0.0
    }
    fn insert(pane: &mut f64, _time: u64, value: f64) {
        *pane += value;
    }
    fn merge(into: &mut f64, other: &f64) {
        *into += *other;
    }
    fn subtract(total: &mut f64, leaving: &f64) {
        *total -= *leaving;
    }
    fn finish(total: &f64, _extent: WindowExtent) -> Option<f64> {
        Some(*total)
    }
}
