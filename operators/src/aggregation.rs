//! The [`Aggregation`] trait: how samples become pane partials, how partials combine, how a
//! pane leaves a window, and how a window's total is read out.
//!
//! Every aggregation flowboard offers — `count`, `sum`, `avg`, `min`, `max`, `last`, `rate` and
//! any added later — implements this one trait and is listed once in [`crate::aggregations`].
//! Nothing else in the code base names a particular aggregation.
//!
//! Samples are pre-aggregated into *panes*: the samples of one series whose event time falls in
//! `(end - pane_ms, end]`. A sliding window is a run of consecutive panes, of every series a
//! widget's filter matches; its total is the [`Aggregation::merge`] of their partials. What an
//! aggregation decides, and where:
//!
//! | | |
//! |---|---|
//! | how a value enters a pane | [`Aggregation::Pane`], [`Aggregation::empty`], [`Aggregation::insert`] |
//! | how panes merge | [`Aggregation::merge`] (associative, commutative, `empty` its identity) |
//! | how a pane leaves the window | [`Aggregation::EVICTION`]: [`Eviction::Subtract`] with [`Aggregation::subtract`] if invertible, else [`Eviction::Recombine`] (the window recombines what is left; see [`crate::window`]) |
//! | how the result is read out | [`Aggregation::finish`], given the [`WindowExtent`] |
//! | how it is serialized for checkpoints | `Pane`'s `serde` implementation, and [`Aggregation::PANE_VERSION`] |
//!
//! `operators/README.md` walks through adding one, step by step.

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// How a pane's contribution leaves a window total.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Eviction {
    /// The aggregation is invertible: [`Aggregation::subtract`] removes a pane from a total in
    /// O(1) (sum, count, avg, rate).
    Subtract,
    /// The aggregation can only merge (min, max, last): the window recombines the remaining panes
    /// with a structure whose cost per change does not grow linearly with the window length.
    Recombine,
}

/// The extent of the window a total was taken over, for aggregations whose result depends on it
/// (a rate divides by the window length).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowExtent {
    /// Window length in milliseconds.
    pub window_ms: u64,
    /// The closed time the window ends at (inclusive), epoch milliseconds.
    pub as_of: u64,
}

/// A sliding-window aggregation over `f64` samples, computed from per-pane partial aggregates.
///
/// `merge` must be associative and commutative, with [`Aggregation::empty`] as its identity:
/// panes from different series, workers and late arrivals are merged in any order.
///
/// # Examples
///
/// A maximum that reports `null` for an empty window:
///
/// ```
/// use operators::aggregation::{Aggregation, Eviction, WindowExtent};
///
/// struct Max;
/// impl Aggregation for Max {
///     const NAME: &'static str = "max";
///     const EVICTION: Eviction = Eviction::Recombine;
///     type Pane = Option<f64>;
///     fn empty() -> Self::Pane { None }
///     fn insert(pane: &mut Self::Pane, _time: u64, value: f64) {
///         *pane = Some(pane.map_or(value, |m| m.max(value)));
///     }
///     fn merge(into: &mut Self::Pane, other: &Self::Pane) {
///         if let Some(v) = *other { Self::insert(into, 0, v) }
///     }
///     fn finish(total: &Self::Pane, _extent: WindowExtent) -> Option<f64> { *total }
/// }
///
/// let mut pane = Max::empty();
/// Max::insert(&mut pane, 1_000, 3.0);
/// Max::insert(&mut pane, 1_500, 7.5);
/// assert_eq!(Max::finish(&pane, WindowExtent { window_ms: 60_000, as_of: 2_000 }), Some(7.5));
/// ```
pub trait Aggregation: 'static {
    /// The name clients use for this aggregation (`"sum"`), in the REST API, the WebSocket
    /// protocol, checkpoints and the web UI. Lower case, unique in the registry.
    const NAME: &'static str;

    /// How a pane leaves a window total.
    const EVICTION: Eviction;

    /// The partial aggregate of a pane, and of a whole window. It is stored for every retained
    /// pane of every series, so keep it small.
    ///
    /// It is written to checkpoints (and sent between timely processes) with its `serde`
    /// implementation, in bincode. `PartialEq` must be equality of partials: the window's
    /// FlatFAT stops a tree walk at the first node that comes out unchanged.
    type Pane: Clone + Debug + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static;

    /// The version of [`Aggregation::Pane`]'s serialized form. Bump it whenever you change the
    /// pane (its type, or what its fields mean): checkpoints are stamped with every registered
    /// aggregation's name and version ([`PaneSet::layout`](crate::registry::PaneSet::layout)),
    /// and a build whose layout differs refuses them instead of misreading them.
    const PANE_VERSION: u32 = 1;

    /// The partial aggregate of no samples; the identity of [`Aggregation::merge`].
    fn empty() -> Self::Pane;

    /// Adds one sample, taken at `time` (epoch milliseconds), to a pane.
    fn insert(pane: &mut Self::Pane, time: u64, value: f64);

    /// Merges `other` into `into`. Associative and commutative.
    fn merge(into: &mut Self::Pane, other: &Self::Pane);

    /// Removes `leaving` from `total`, where `leaving` was earlier merged into `total`.
    ///
    /// Called only when [`Aggregation::EVICTION`] is [`Eviction::Subtract`].
    fn subtract(_total: &mut Self::Pane, _leaving: &Self::Pane) {
        panic!(
            "aggregation `{}` declares Eviction::Subtract but does not implement subtract",
            Self::NAME
        )
    }

    /// The result for a window whose panes merge to `total`; `None` is reported as JSON `null`
    /// (for example the minimum of an empty window).
    fn finish(total: &Self::Pane, extent: WindowExtent) -> Option<f64>;
}

/// The sum and the number of samples: the partial `sum`, `count`, `avg` and `rate` all read
/// (they are registered as sharing it, so a retained pane stores it once).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SumCount {
    /// Sum of the samples.
    pub sum: f64,
    /// Number of samples.
    pub count: u64,
}

impl SumCount {
    /// Adds one sample.
    #[inline]
    pub fn insert(&mut self, value: f64) {
        self.sum += value;
        self.count += 1;
    }

    /// Adds another partial.
    pub fn merge(&mut self, other: &SumCount) {
        self.sum += other.sum;
        self.count += other.count;
    }

    /// Takes back a partial that was added before.
    pub fn subtract(&mut self, leaving: &SumCount) {
        self.sum -= leaving.sum;
        debug_assert!(self.count >= leaving.count, "count went negative");
        self.count = self.count.saturating_sub(leaving.count);
    }
}
