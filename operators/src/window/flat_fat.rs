//! [`FlatFat`]: the window total of a non-invertible aggregation, as a balanced tree of partial
//! aggregates over the pages of a [`PaneRing`].
//!
//! This is FlatFAT ("flat fixed-sized aggregator") from Tangwongsan, Hirzel, Schneider and Wu,
//! "General Incremental Sliding-Window Aggregation", PVLDB 8(7), 2015: a complete binary tree
//! stored in an array over the slots of a circular buffer, each node the merge of its children,
//! the root the merge of everything. Two adaptations:
//!
//! - Its leaves are the *pages* of the ring (up to 64 panes each), not single panes, so the
//!   tree costs two partials per 64 pane slots instead of two per pane; a page's leaf is
//!   refolded from the page's panes when one of them leaves, at most 63 merges.
//! - [`Aggregation::merge`] is commutative, so the panes' circular order does not matter and
//!   the window total is the root itself: no prefix/suffix queries around the ring's wrap.
//!
//! Costs, for `n` pages: a partial merged into any pane (late ones too) is O(log n): since
//! panes only grow, each ancestor absorbs the partial without looking at its sibling. A pane
//! leaving is O(64 + log n). Reading the total is O(1). A relayout of the ring rebuilds the tree
//! in O(n + panes held), amortized with the relayout itself.

use crate::aggregation::Aggregation;

use super::panes::PaneRing;

/// The tree of page totals. See the module documentation.
pub(super) struct FlatFat<A: Aggregation> {
    /// With `n` pages: node 1 is the root, node `i` has children `2i` and `2i + 1`, and node
    /// `n + p` is the total of page `p`. Node 0 is unused. Empty when the ring has no pages.
    nodes: Vec<A::Pane>,
    /// Pages a pane left since the last [`FlatFat::refresh`].
    stale: Vec<usize>,
}

impl<A: Aggregation> FlatFat<A> {
    /// The tree of a ring without pages.
    pub fn new() -> Self {
        FlatFat {
            nodes: Vec::new(),
            stale: Vec::new(),
        }
    }

    /// The merge of every pane in the ring, if it has pages.
    pub fn root(&self) -> Option<&A::Pane> {
        self.nodes.get(1)
    }

    /// Recomputes every node from `ring`, whose pages may have been renumbered.
    pub fn rebuild(&mut self, ring: &PaneRing<A>) {
        let pages = ring.page_count();
        self.stale.clear();
        self.nodes.clear();
        self.nodes.resize(2 * pages, A::empty());
        self.nodes.shrink_to(2 * pages);
        for page in 0..pages {
            self.nodes[pages + page] = ring.page_fold(page);
        }
        for node in (1..pages).rev() {
            self.nodes[node] = self.combine(node);
        }
    }

    /// Accounts for `partial` having been merged into a pane of page `page`.
    pub fn absorb(&mut self, page: usize, partial: &A::Pane) {
        let mut node = self.nodes.len() / 2 + page;
        while node >= 1 {
            A::merge(&mut self.nodes[node], partial);
            node /= 2;
        }
    }

    /// Notes that a pane left page `page`; the tree is right again after [`FlatFat::refresh`].
    pub fn evicted(&mut self, page: usize) {
        // Panes leave oldest first, so one page's evictions come together.
        if self.stale.last() != Some(&page) {
            self.stale.push(page);
        }
    }

    /// Recomputes the pages noted by [`FlatFat::evicted`], and their ancestors.
    pub fn refresh(&mut self, ring: &PaneRing<A>) {
        let leaves = self.nodes.len() / 2;
        for index in 0..self.stale.len() {
            let page = self.stale[index];
            let mut node = leaves + page;
            self.nodes[node] = ring.page_fold(page);
            node /= 2;
            while node >= 1 {
                self.nodes[node] = self.combine(node);
                node /= 2;
            }
        }
        self.stale.clear();
    }

    /// The merge of `node`'s children.
    fn combine(&self, node: usize) -> A::Pane {
        let mut total = self.nodes[2 * node].clone();
        A::merge(&mut total, &self.nodes[2 * node + 1]);
        total
    }
}
