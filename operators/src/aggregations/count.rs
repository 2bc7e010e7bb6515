//! `count`: the number of samples in the window.

use crate::aggregation::{Aggregation, Eviction, SumCount, WindowExtent};

/// The number of samples in the window; `0` for an empty window.
///
/// Its partial is `sum`'s (a sum and a count): registered as sharing it, `count` costs no
/// memory per retained pane.
pub struct Count;

impl Aggregation for Count {
    const NAME: &'static str = "count";
    const EVICTION: Eviction = Eviction::Subtract;
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
        Some(total.count as f64)
    }
}
