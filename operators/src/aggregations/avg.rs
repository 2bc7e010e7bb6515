//! `avg`: the arithmetic mean of the samples in the window.

use crate::aggregation::{Aggregation, Eviction, SumCount, WindowExtent};

/// The mean of the samples in the window; `null` for an empty window.
///
/// Its partial is `sum`'s (a sum and a count): registered as sharing it, `avg` costs no memory
/// per retained pane.
pub struct Avg;

impl Aggregation for Avg {
    const NAME: &'static str = "avg";
    const EVICTION: Eviction = Eviction::Subtract;
    type Pane = SumCount;

    fn empty() -> SumCount {
        SumCount::default()
    }
    fn insert(pane: &mut SumCount, _time: u64, value: f64) {
        pane.sum += value;
        pane.count += 1;
    }
    fn merge(into: &mut SumCount, other: &SumCount) {
        into.sum += other.sum;
        into.count += other.count;
    }
    fn subtract(total: &mut SumCount, leaving: &SumCount) {
        total.sum -= leaving.sum;
        total.count = total.count.saturating_sub(leaving.count);
    }
    fn finish(total: &SumCount, _extent: WindowExtent) -> Option<f64> {
        (total.count > 0).then(|| total.sum / total.count as f64)
    }
}
