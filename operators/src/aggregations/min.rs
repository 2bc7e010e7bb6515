//! `min`: the smallest sample in the window.

use crate::aggregation::{Aggregation, Eviction, WindowExtent};

/// The smallest sample in the window; `null` for an empty window. Not invertible: when the
/// smallest sample expires the window recombines what is left.
pub struct Min;

impl Aggregation for Min {
    const NAME: &'static str = "min";
    const EVICTION: Eviction = Eviction::Recombine;
    type Pane = Option<f64>;

    fn empty() -> Option<f64> {
        None
    }
    fn insert(pane: &mut Option<f64>, _time: u64, value: f64) {
        *pane = Some(pane.map_or(value, |m| m.min(value)));
    }
    fn merge(into: &mut Option<f64>, other: &Option<f64>) {
        if let Some(value) = *other {
            Self::insert(into, 0, value);
        }
    }
    fn finish(total: &Option<f64>, _extent: WindowExtent) -> Option<f64> {
        *total
    }
}
