//! [`RunningTotal`]: the window total of an invertible aggregation, kept by merging panes in
//! and subtracting them out.
//!
//! Merging and subtracting are O(1). Floating-point subtraction leaves rounding behind, so the
//! total is rebuilt from the panes held once per window's worth of evictions (at least as many
//! as the panes held plus the ring's pages, which pays for the rebuild: amortized O(1)), and
//! reset to exactly [`Aggregation::empty`] whenever the window empties. The error is then that
//! of summing about two windows' worth of values, never of the whole stream.

use std::collections::BTreeMap;

use crate::aggregation::Aggregation;

use super::panes::PaneRing;

/// Evictions between two rebuilds, at the least.
const MIN_EVICTIONS_PER_REBUILD: usize = 64;

/// A subtract-on-evict window total. See the module documentation.
pub(super) struct RunningTotal<A: Aggregation> {
    /// The merge of every pane held, up to rounding.
    total: A::Pane,
    /// Panes subtracted since `total` was last rebuilt.
    evictions: usize,
}

impl<A: Aggregation> RunningTotal<A> {
    /// The total of no panes.
    pub fn new() -> Self {
        RunningTotal {
            total: A::empty(),
            evictions: 0,
        }
    }

    /// The merge of every pane held.
    pub fn total(&self) -> &A::Pane {
        &self.total
    }

    /// Accounts for `partial` having been merged into a pane.
    pub fn merge(&mut self, partial: &A::Pane) {
        A::merge(&mut self.total, partial);
    }

    /// Accounts for `pane` having left the window.
    pub fn evict(&mut self, pane: &A::Pane) {
        A::subtract(&mut self.total, pane);
        self.evictions += 1;
    }

    /// After evictions: resets the total if nothing is held, or rebuilds it when enough
    /// evictions have passed.
    pub fn settle(&mut self, ring: &PaneRing<A>, outliers: &BTreeMap<u64, A::Pane>) {
        let held = ring.len() + outliers.len();
        if held == 0 {
            self.total = A::empty();
            self.evictions = 0;
        } else if self.evictions >= (held + ring.page_count()).max(MIN_EVICTIONS_PER_REBUILD) {
            let mut total = A::empty();
            ring.for_each(|_, pane| A::merge(&mut total, pane));
            for pane in outliers.values() {
                A::merge(&mut total, pane);
            }
            self.total = total;
            self.evictions = 0;
        }
    }
}
