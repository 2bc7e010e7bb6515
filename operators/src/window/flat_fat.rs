//! [`FlatFat`]: the window total of a non-invertible aggregation, as a balanced tree of partial
//! aggregates over the pages of a [`PaneRing`].
//!
//! This is FlatFAT ("flat fixed-sized aggregator") from Tangwongsan, Hirzel, Schneider and Wu,
//! "General Incremental Sliding-Window Aggregation", PVLDB 8(7), 2015: a complete binary tree
//! stored in an array over the slots of a circular buffer, each node the merge of its children,
//! the root the merge of everything. Three adaptations:
//!
//! - Its leaves are the *pages* of the ring (up to 64 panes each), not single panes, so the
//!   tree costs two partials per 64 pane slots instead of two per pane.
//! - A page's leaf is recomputed from suffix folds of the page panes are leaving (the
//!   "two stacks" idea, as described in Tangwongsan, Hirzel and Schneider, "In-Order
//!   Sliding-Window Aggregation in Worst-Case Constant Time", applied to one page): the folds
//!   are built once, in up to 64 merges, when the first pane leaves the page, and each later
//!   eviction reads its leaf off them. A partial merged into that page (late data at the
//!   window's old end) drops them, to be rebuilt on the next eviction.
//! - [`Aggregation::merge`] is commutative, so the panes' circular order does not matter and
//!   the window total is the root itself: no prefix/suffix queries around the ring's wrap.
//!
//! Costs, for `n` pages: a partial merged into any pane (late ones too) is O(log n): since
//! panes only grow, each ancestor absorbs the partial without looking at its sibling. A pane
//! leaving is amortized O(1) for its leaf plus O(log n) up the tree. Both walks stop at the
//! first node that comes out unchanged (its ancestors cannot change either; this takes the
//! partials' `PartialEq` to be equality of partials): for min and max, most updates touch a
//! level or two. Reading the total is O(1). A relayout of the ring rebuilds the tree in
//! O(n + panes held), amortized with the relayout.

use crate::aggregation::Aggregation;

use super::panes::PaneRing;

/// The tree of page totals. See the module documentation.
pub(super) struct FlatFat<A: Aggregation> {
    /// With `n` pages: node 1 is the root, node `i` has children `2i` and `2i + 1`, and node
    /// `n + p` is the total of page `p`. Node 0 is unused. Empty when the ring has no pages.
    nodes: Vec<A::Pane>,
    /// Pages panes left since the last [`FlatFat::refresh`], each with the slot of the last one.
    stale: Vec<(usize, usize)>,
    /// For page `suffix_page`: `suffixes[o]` is the merge of the page's panes in slots `o` and
    /// up, as they were when it was built.
    suffixes: Vec<A::Pane>,
    /// The page `suffixes` describes, while no partial has been merged into it since.
    suffix_page: Option<usize>,
}

impl<A: Aggregation> FlatFat<A> {
    /// The tree of a ring without pages.
    pub fn new() -> Self {
        FlatFat {
            nodes: Vec::new(),
            stale: Vec::new(),
            suffixes: Vec::new(),
            suffix_page: None,
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
        self.suffix_page = None;
        if pages == 0 {
            self.suffixes = Vec::new();
        }
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
        if self.suffix_page == Some(page) {
            self.suffix_page = None;
        }
        let mut node = self.nodes.len() / 2 + page;
        while node >= 1 {
            let before = self.nodes[node].clone();
            A::merge(&mut self.nodes[node], partial);
            if self.nodes[node] == before {
                break;
            }
            node /= 2;
        }
    }

    /// Notes that the pane in slot `offset` of page `page` left; the tree is right again after
    /// [`FlatFat::refresh`].
    pub fn evicted(&mut self, page: usize, offset: usize) {
        // Panes leave oldest first, so one page's evictions come together, in slot order.
        match self.stale.last_mut() {
            Some((last, last_offset)) if *last == page => *last_offset = offset,
            _ => self.stale.push((page, offset)),
        }
    }

    /// Recomputes the pages noted by [`FlatFat::evicted`], and their ancestors.
    pub fn refresh(&mut self, ring: &PaneRing<A>) {
        let leaves = self.nodes.len() / 2;
        for index in 0..self.stale.len() {
            let (page, offset) = self.stale[index];
            // The panes left on the page are those after `offset`: panes leave a page from its
            // start (see `panes.rs`), and none was merged into it since the folds were built.
            let leaf = if ring.page_is_empty(page) {
                A::empty()
            } else {
                if self.suffix_page != Some(page) {
                    ring.page_suffix_folds(page, &mut self.suffixes);
                    self.suffix_page = Some(page);
                }
                self.suffixes[offset + 1].clone()
            };
            let mut node = leaves + page;
            let mut total = leaf;
            while self.nodes[node] != total {
                self.nodes[node] = total;
                node /= 2;
                if node == 0 {
                    break;
                }
                total = self.combine(node);
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
