//! Sliding windows over panes: [`WindowState`], and [`SlidingWindow`], its implementation for
//! any [`Aggregation`].
//!
//! A window of length `w` as of closed time `T` holds the panes whose end `P` satisfies
//! `T - w < P <= T`. Panes enter when their first partial is merged in and leave when `T`
//! reaches `P + w`. Late data merges into the pane it belongs to, wherever that pane sits.
//!
//! The total is kept incrementally, by the aggregation's [`Eviction`] strategy:
//! - [`Eviction::Subtract`]: a running total; a leaving pane is subtracted, O(1) per change. To
//!   keep floating-point rounding from accumulating, the total is rebuilt from the panes once per
//!   window's worth of evictions (amortized O(1)) and reset exactly when the window empties.
//! - [`Eviction::Recombine`]: the panes are combined without ever subtracting.

use std::collections::VecDeque;

use crate::aggregation::{Aggregation, Eviction, WindowExtent};
use crate::registry::{AnyPane, Select};

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
    /// Number of panes held.
    fn len(&self) -> usize;
    /// Whether the window holds no panes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The sliding window of aggregation `A`.
pub struct SlidingWindow<A: Aggregation> {
    window_ms: u64,
    /// Panes ordered by their end time, oldest first.
    panes: VecDeque<(u64, A::Pane)>,
    /// Merge of all panes, when `A` is invertible or when not `dirty`.
    total: A::Pane,
    /// Whether `total` must be recomputed before it is read.
    dirty: bool,
    /// Evictions since `total` was last rebuilt from the panes.
    evictions_since_rebuild: usize,
    /// Time the window was last advanced to.
    as_of: u64,
}

impl<A: Aggregation> SlidingWindow<A> {
    /// An empty window of `window_ms` milliseconds.
    pub fn new(window_ms: u64) -> Self {
        SlidingWindow {
            window_ms,
            panes: VecDeque::new(),
            total: A::empty(),
            dirty: false,
            evictions_since_rebuild: 0,
            as_of: 0,
        }
    }

    /// Merges a partial of `A` into the pane ending at `pane_end`.
    pub fn merge_pane(&mut self, pane_end: u64, pane: &A::Pane) {
        if pane_end + self.window_ms <= self.as_of {
            return; // already left the window
        }
        // Panes arrive almost in order: search from the back.
        let position = self.panes.iter().rposition(|(end, _)| *end <= pane_end);
        match position {
            Some(index) if self.panes[index].0 == pane_end => {
                A::merge(&mut self.panes[index].1, pane)
            }
            Some(index) => self.panes.insert(index + 1, (pane_end, pane.clone())),
            None => self.panes.push_front((pane_end, pane.clone())),
        }
        match A::EVICTION {
            Eviction::Subtract => A::merge(&mut self.total, pane),
            Eviction::Recombine => self.dirty = true,
        }
    }

    fn rebuild(&mut self) {
        let mut total = A::empty();
        for (_, pane) in &self.panes {
            A::merge(&mut total, pane);
        }
        self.total = total;
        self.dirty = false;
        self.evictions_since_rebuild = 0;
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
        self.as_of = self.as_of.max(as_of);
        let horizon = self.as_of.saturating_sub(self.window_ms);
        while let Some((end, _)) = self.panes.front() {
            if *end > horizon {
                break;
            }
            let Some((_, pane)) = self.panes.pop_front() else {
                break;
            };
            match A::EVICTION {
                Eviction::Subtract => {
                    A::subtract(&mut self.total, &pane);
                    self.evictions_since_rebuild += 1;
                }
                Eviction::Recombine => self.dirty = true,
            }
        }
        if self.panes.is_empty() {
            self.total = A::empty();
            self.dirty = false;
            self.evictions_since_rebuild = 0;
        } else if A::EVICTION == Eviction::Subtract
            && self.evictions_since_rebuild >= self.panes.len().max(64)
        {
            self.rebuild();
        }
    }

    fn value(&mut self, as_of: u64) -> Option<f64> {
        if self.dirty {
            self.rebuild();
        }
        A::finish(
            &self.total,
            WindowExtent {
                window_ms: self.window_ms,
                as_of,
            },
        )
    }

    fn next_expiry(&self) -> Option<u64> {
        self.panes.front().map(|(end, _)| end + self.window_ms)
    }

    fn len(&self) -> usize {
        self.panes.len()
    }
}
