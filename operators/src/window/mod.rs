//! Sliding windows over panes: [`WindowState`], and [`SlidingWindow`], its implementation for
//! any [`Aggregation`].
//!
//! A window of length `w` as of closed time `T` holds the panes whose end `P` satisfies
//! `T - w < P <= T`. Panes enter when their first partial is merged in and leave when `T`
//! reaches `P + w`. Late data merges into the pane it belongs to, wherever that pane sits.
//!
//! Panes are stored by pane number in a paged circular buffer (`panes.rs`), so a partial
//! finds its pane in O(1) wherever it sits, and memory follows the panes held, not the window
//! length. The total is kept incrementally, by the aggregation's [`Eviction`] strategy:
//!
//! | | merge a partial (any pane) | a pane leaves | read the value |
//! |---|---|---|---|
//! | [`Eviction::Subtract`]: running total | O(1) | O(1) amortized | O(1) |
//! | [`Eviction::Recombine`]: FlatFAT over pages | O(log n) | O(log n) amortized | O(1) |
//!
//! `n` is the number of pages (of up to 64 panes) the window spans: at most 4,096 for a day of
//! 1 s panes. The running total is rebuilt from the panes once per window's worth of evictions
//! to bound floating-point drift, and reset exactly when the window empties. FlatFAT is from
//! Tangwongsan, Hirzel, Schneider and Wu, "General Incremental Sliding-Window Aggregation",
//! PVLDB 8(7), 2015; see `flat_fat.rs` for how it is adapted.
//!
//! Memory: about one partial per pane held, a 40-byte header per page the held panes span, and
//! for `Recombine` two partials per page for the tree. With `max` (8-byte partials), a day of
//! 1 s panes holding data every second takes about 0.8 MB (86,400 partials, 2,048 pages); with
//! data once a minute about 0.14 MB (1,440 partials over the same pages); an hour of
//! once-a-minute data about 5 KB.
//!
//! Panes are [`PANE_MS`] wide unless a window is made with [`SlidingWindow::with_pane_ms`]. A
//! partial whose pane end is not a multiple of the pane width, or which lies further from the
//! oldest pane than the ring reaches (about twice the window; neither happens in flowboard's
//! pipeline), is still counted correctly, in a sorted side map whose panes a `Recombine` read
//! folds one by one.
//!
//! # Examples
//!
//! ```
//! use operators::aggregations::Max;
//! use operators::registry::AggregationKind;
//! use operators::window::SlidingWindow;
//!
//! // A 3 s maximum; the pane ending at 2 s gets a late partial after the window reached 4 s.
//! let mut window = SlidingWindow::<Max>::new(3_000);
//! window.merge_pane(1_000, &9.0);
//! window.merge_pane(3_000, &4.0);
//! window.advance_to(4_000); // the pane ending at 1 s leaves
//! assert_eq!(window.value(4_000), Some(4.0));
//! window.merge_pane(2_000, &6.0);
//! assert_eq!(window.value(4_000), Some(6.0));
//! window.advance_to(5_000);
//! assert_eq!((window.value(5_000), window.next_expiry()), (Some(4.0), Some(6_000)));
//!
//! // The same, behind the object-safe trait the operator uses.
//! let mut window = AggregationKind::Max.new_window(3_000);
//! assert_eq!(window.value(0), None);
//! ```

mod flat_fat;
mod panes;
mod running_total;

use std::collections::BTreeMap;

use crate::aggregation::{Aggregation, Eviction, WindowExtent};
use crate::registry::{AnyPane, Select};

use self::flat_fat::FlatFat;
use self::panes::PaneRing;
use self::running_total::RunningTotal;

/// The pane width [`SlidingWindow::new`] assumes, in milliseconds: flowboard's panes (and the
/// step of its closed time) are one second wide.
pub const PANE_MS: u64 = 1_000;

/// A widget's sliding window, whatever its aggregation. See the module documentation.
pub trait WindowState: Send {
    /// The window length in milliseconds.
    fn window_ms(&self) -> u64;
    /// Merges `pane`, a partial of this window's aggregation, into the pane ending at `pane_end`.
    /// Partials of other aggregations and panes that already left the window are ignored.
    fn merge(&mut self, pane_end: u64, pane: &AnyPane);
    /// Evicts the panes that are out of the window as of `as_of`, i.e. those ending at or
    /// before `as_of - window`.
    fn advance_to(&mut self, as_of: u64);
    /// The window's result as of `as_of` (after [`WindowState::advance_to`] with that time).
    fn value(&mut self, as_of: u64) -> Option<f64>;
    /// The earliest time at which a pane leaves the window, if the window holds any.
    fn next_expiry(&self) -> Option<u64>;
    /// Number of panes held (panes into which at least one partial was merged, not yet evicted).
    fn len(&self) -> usize;
    /// Whether the window holds no panes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How the window total is kept; chosen by [`Aggregation::EVICTION`].
enum Total<A: Aggregation> {
    Subtract(RunningTotal<A>),
    Recombine(FlatFat<A>),
}

/// The sliding window of aggregation `A`. See the module documentation.
pub struct SlidingWindow<A: Aggregation> {
    window_ms: u64,
    pane_ms: u64,
    /// Time the window was last advanced to.
    as_of: u64,
    /// The panes held, by pane number `pane_end / pane_ms`.
    panes: PaneRing<A>,
    /// Panes the ring cannot hold, by pane end: ends off the pane grid, or too far from the
    /// oldest pane. Empty in normal operation.
    outliers: BTreeMap<u64, A::Pane>,
    total: Total<A>,
}

impl<A: Aggregation> SlidingWindow<A> {
    /// An empty window of `window_ms` milliseconds over panes [`PANE_MS`] wide.
    pub fn new(window_ms: u64) -> Self {
        Self::with_pane_ms(window_ms, PANE_MS)
    }

    /// An empty window of `window_ms` milliseconds over panes `pane_ms` wide (at least 1), whose
    /// ends are multiples of `pane_ms`. Allocates nothing until a partial arrives.
    pub fn with_pane_ms(window_ms: u64, pane_ms: u64) -> Self {
        let pane_ms = pane_ms.max(1);
        // Room for the window's panes and as many again (data ahead of the window's time, if
        // merged before advancing); beyond that, the side map.
        let panes_per_window = window_ms.div_ceil(pane_ms).max(1);
        let max_capacity = panes_per_window
            .checked_next_power_of_two()
            .and_then(|panes| panes.checked_mul(2))
            .unwrap_or(1 << 63);
        SlidingWindow {
            window_ms,
            pane_ms,
            as_of: 0,
            panes: PaneRing::new(max_capacity),
            outliers: BTreeMap::new(),
            total: match A::EVICTION {
                Eviction::Subtract => Total::Subtract(RunningTotal::new()),
                Eviction::Recombine => Total::Recombine(FlatFat::new()),
            },
        }
    }

    /// The pane width in milliseconds.
    pub fn pane_ms(&self) -> u64 {
        self.pane_ms
    }

    /// Partials allocated by the pane store, for memory accounting: about one per pane held
    /// (evicted panes keep theirs until the rest of their page of up to 64 panes leaves, and
    /// storage grows by doubling), plus the storage of the last page emptied, kept for reuse.
    pub fn allocated_partials(&self) -> usize {
        self.panes.allocated_partials()
    }

    /// Merges a partial of `A` into the pane ending at `pane_end`. Ignored if that pane already
    /// left the window.
    pub fn merge_pane(&mut self, pane_end: u64, partial: &A::Pane) {
        if pane_end.saturating_add(self.window_ms) <= self.as_of {
            return;
        }
        let index = pane_end / self.pane_ms;
        let in_ring = pane_end.is_multiple_of(self.pane_ms)
            && self.panes.fits(index)
            && (self.outliers.is_empty() || !self.outliers.contains_key(&pane_end));
        if in_ring {
            let placed = self.panes.merge(index, partial);
            match &mut self.total {
                Total::Subtract(total) => total.merge(partial),
                Total::Recombine(tree) if placed.relaid => tree.rebuild(&self.panes),
                Total::Recombine(tree) => tree.absorb(placed.page, partial),
            }
        } else {
            self.outliers
                .entry(pane_end)
                .and_modify(|pane| A::merge(pane, partial))
                .or_insert_with(|| partial.clone());
            if let Total::Subtract(total) = &mut self.total {
                total.merge(partial);
            }
        }
    }

    /// Evicts the panes ending at or before `as_of - window`, and moves the window's time to
    /// `as_of` (it never goes back).
    pub fn advance_to(&mut self, as_of: u64) {
        self.as_of = self.as_of.max(as_of);
        let Some(horizon) = self.as_of.checked_sub(self.window_ms) else {
            return; // no pane can have left yet
        };
        let SlidingWindow {
            panes,
            outliers,
            total,
            pane_ms,
            ..
        } = self;
        match total {
            Total::Subtract(total) => {
                panes.evict_through(horizon / *pane_ms, |_, _, pane| total.evict(&pane));
                while let Some(entry) = outliers.first_entry().filter(|e| *e.key() <= horizon) {
                    total.evict(&entry.remove());
                }
                panes.shrink();
                total.settle(panes, outliers);
            }
            Total::Recombine(tree) => {
                panes.evict_through(horizon / *pane_ms, |page, offset, _| {
                    tree.evicted(page, offset)
                });
                tree.refresh(panes);
                while let Some(entry) = outliers.first_entry().filter(|e| *e.key() <= horizon) {
                    entry.remove();
                }
                if panes.shrink() {
                    tree.rebuild(panes);
                }
            }
        }
    }

    /// The window's result as of `as_of` (after [`SlidingWindow::advance_to`] with that time).
    pub fn value(&self, as_of: u64) -> Option<f64> {
        let extent = WindowExtent {
            window_ms: self.window_ms,
            as_of,
        };
        match &self.total {
            Total::Subtract(total) => A::finish(total.total(), extent),
            Total::Recombine(tree) => match tree.root() {
                Some(root) if self.outliers.is_empty() => A::finish(root, extent),
                root => {
                    let mut total = root.cloned().unwrap_or_else(A::empty);
                    for pane in self.outliers.values() {
                        A::merge(&mut total, pane);
                    }
                    A::finish(&total, extent)
                }
            },
        }
    }

    /// The earliest time at which a pane leaves the window, if the window holds any.
    pub fn next_expiry(&self) -> Option<u64> {
        let oldest_in_ring = self.panes.oldest().map(|index| index * self.pane_ms);
        let oldest_outlier = self.outliers.keys().next().copied();
        let oldest = match (oldest_in_ring, oldest_outlier) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        oldest.map(|end| end.saturating_add(self.window_ms))
    }

    /// Number of panes held.
    pub fn len(&self) -> usize {
        self.panes.len() + self.outliers.len()
    }

    /// Whether the window holds no panes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<A: Aggregation> WindowState for SlidingWindow<A>
where
    AnyPane: Select<A>,
{
    fn window_ms(&self) -> u64 {
        self.window_ms
    }

    fn merge(&mut self, pane_end: u64, pane: &AnyPane) {
        if let Some(pane) = Select::<A>::select(pane) {
            self.merge_pane(pane_end, pane);
        }
    }

    fn advance_to(&mut self, as_of: u64) {
        SlidingWindow::advance_to(self, as_of);
    }

    fn value(&mut self, as_of: u64) -> Option<f64> {
        SlidingWindow::value(self, as_of)
    }

    fn next_expiry(&self) -> Option<u64> {
        SlidingWindow::next_expiry(self)
    }

    fn len(&self) -> usize {
        SlidingWindow::len(self)
    }
}
