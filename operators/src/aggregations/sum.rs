//! `sum`: the sum of the samples in the window.

use crate::aggregation::{Aggregation, Eviction, SumCount, WindowExtent};

/// The sum of the samples in the window; `0` for an empty window.
///
/// Subtract-on-evict accumulates floating-point rounding; the window rebuilds its total from the
/// panes once per window length and resets it exactly when the window empties (see
/// [`crate::window`]), so the error stays that of summing one window.
///
/// The partial also counts the samples, so that `count`, `avg` and `rate` can share it.
pub struct Sum;

impl Aggregation for Sum {
    const NAME: &'static str = "sum";
    const EVICTION: Eviction = Eviction::Subtract;
    const PANE_VERSION: u32 = 2;
    type Pane = SumCount;

    fn empty() -> SumCount {
        SumCount::default()
    }
    fn insert(pane: &mut SumCount, _time: u64, value: f64) {
        pane.insert(value);
    }
    fn merge(into: &mut SumCount, other: &SumCount) {
        into.merge(other);
    }
    fn subtract(total: &mut SumCount, leaving: &SumCount) {
        total.subtract(leaving);
    }
    fn finish(total: &SumCount, _extent: WindowExtent) -> Option<f64> {
        Some(total.sum)
    }
}
