//! `rate`: events per second over the window.
//!
//! The number of samples in the window divided by the window's length in seconds: a 60 s window
//! holding 30 samples reads `0.5`, an empty one `0`. It is `count / window_seconds`, exactly, at
//! every time, so a `rate` widget and a `count` widget over the same window always agree.
//!
//! Before a full window of history exists (right after a cold start with an empty topic) the
//! part of the window without data counts as a part without events, as it does for `count` and
//! `sum`: the rate ramps up over the first window length and is never overstated. Dividing by
//! the part of the window "observed so far" instead would need to know when history begins,
//! which a window cannot: a widget created later is backfilled from retained panes, a restart
//! restores older history from a checkpoint or the topic, and a series whose first sample
//! arrived a second ago may simply be quiet. (After a restart the history is restored, so there
//! is no ramp then.)
//!
//! Invertible: the partial counts samples (it is `sum`'s sum and count), subtracted when its pane
//! leaves the window. It is the very partial `sum` keeps, so `rate` is registered as sharing it
//! (`rate::Rate shares Sum`) and costs no memory per retained pane.
//!
//! # Examples
//!
//! ```
//! use operators::aggregation::{Aggregation, WindowExtent};
//! use operators::aggregations::Rate;
//!
//! let extent = WindowExtent { window_ms: 10_000, as_of: 20_000 };
//! let mut total = Rate::empty();
//! assert_eq!(Rate::finish(&total, extent), Some(0.0));
//! for time in [11_000, 12_500, 19_000, 19_999, 20_000] {
//!     Rate::insert(&mut total, time, 42.0); // the value does not matter, only that it came
//! }
//! assert_eq!(Rate::finish(&total, extent), Some(0.5)); // 5 events in 10 s
//!
//! // The pane holding the first two leaves the window.
//! let mut leaving = Rate::empty();
//! Rate::insert(&mut leaving, 11_000, 1.0);
//! Rate::insert(&mut leaving, 12_500, 1.0);
//! Rate::subtract(&mut total, &leaving);
//! assert_eq!(Rate::finish(&total, extent), Some(0.3));
//! ```

use crate::aggregation::{Aggregation, Eviction, SumCount, WindowExtent};

/// Samples per second over the window: count / window length in seconds; `0` for an empty
/// window. See the module documentation for the first window after a cold start.
pub struct Rate;

impl Aggregation for Rate {
    const NAME: &'static str = "rate";
    const EVICTION: Eviction = Eviction::Subtract;
    /// The sum and number of samples (the same partial as `sum`'s).
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
    fn finish(total: &SumCount, extent: WindowExtent) -> Option<f64> {
        (extent.window_ms > 0).then(|| total.count as f64 * 1_000.0 / extent.window_ms as f64)
    }
}
