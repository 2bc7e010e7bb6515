//! `count`: the number of samples in the window.

use crate::aggregation::{Aggregation, Eviction, WindowExtent};

/// The number of samples in the window; `0` for an empty window.
pub struct Count;

impl Aggregation for Count {
    const NAME: &'static str = "count";
    const EVICTION: Eviction = Eviction::Subtract;
    type Pane = u64;

    fn empty() -> u64 {
        0
    }
    fn insert(pane: &mut u64, _time: u64, _value: f64) {
        *pane += 1;
    }
    fn merge(into: &mut u64, other: &u64) {
        *into += *other;
    }
    fn subtract(total: &mut u64, leaving: &u64) {
        debug_assert!(*total >= *leaving, "count went negative");
        *total = total.saturating_sub(*leaving);
    }
    fn finish(total: &u64, _extent: WindowExtent) -> Option<f64> {
        Some(*total as f64)
    }
}
