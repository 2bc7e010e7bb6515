//! [`PaneRing`]: the panes a window holds, stored by pane number in a paged circular buffer.
//!
//! Pane `i` (the pane ending at `i * pane_ms`) lives at position `i mod capacity`, so finding a
//! pane is O(1), whether it is the newest or a late arrival anywhere in the window. Positions
//! are grouped into pages of up to 64 slots. A page keeps only the partials it was given, in
//! slot order, found by rank in a bit mask of its slots (one popcount): memory follows the panes
//! held, plus a 40-byte header per page the window spans, whether data comes every second or
//! once a minute. Pages are an eighth of the largest ring a window may need, at most 64 slots: a
//! 24 h window of 1 s panes spans up to 2,048 pages of 64, a 1 min window 8 pages of 16.
//!
//! The capacity is a power of two with enough pages that the panes held, from the oldest to the
//! newest, never wrap around onto the page they started on: each page holds one run of
//! consecutive pane numbers, and panes leave a page from its start. It doubles when a merge
//! would break that, and shrinks to about twice the span when the span drops to a quarter of it;
//! each relayout moves every held pane, O(held panes + pages), amortized O(1) per change.

use std::mem;

use crate::aggregation::Aggregation;

/// log2 of the largest page: one `u64` of occupancy bits.
const MAX_PAGE_BITS: u32 = 6;

/// Where [`PaneRing::merge`] put a partial.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Placement {
    /// The page holding the pane.
    pub page: usize,
    /// Whether the ring was relaid out first, which renumbers every page.
    pub relaid: bool,
}

/// The panes on one page.
struct Page<P> {
    /// Slots with an entry in `partials`: those given a partial since the page was last empty.
    present: u64,
    /// Slots holding a pane: `present` but for the evicted ones, whose entries are left empty
    /// until the page empties.
    held: u64,
    /// The partials of the `present` slots, in slot order.
    partials: Vec<P>,
}

impl<P> Default for Page<P> {
    fn default() -> Self {
        Page {
            present: 0,
            held: 0,
            partials: Vec::new(),
        }
    }
}

impl<P> Page<P> {
    /// Where slot `offset`'s entry is (or would go) in `partials`.
    fn rank(&self, offset: usize) -> usize {
        (self.present & ((1u64 << offset) - 1)).count_ones() as usize
    }

    /// The slot and partial of every pane held, in slot order.
    fn held_partials(&self) -> impl Iterator<Item = (usize, &P)> {
        let held = self.held;
        Bits(self.present)
            .zip(&self.partials)
            .filter(move |(offset, _)| held & (1 << offset) != 0)
    }
}

/// A window's panes by pane number. See the module documentation.
pub(super) struct PaneRing<A: Aggregation> {
    /// The pages; a power of two of them, or none.
    pages: Vec<Page<A::Pane>>,
    /// log2 of the slots per page; fixed for the ring's life.
    page_bits: u32,
    /// The capacity the ring starts with, and never shrinks below while it holds panes: two
    /// pages.
    min_capacity: u64,
    /// The emptied `partials` of the last page to empty, kept for the next page to fill.
    spare: Vec<A::Pane>,
    /// Number of the oldest pane held; meaningful only when `len > 0`.
    oldest: u64,
    /// Number of the newest pane held; meaningful only when `len > 0`.
    newest: u64,
    /// Number of panes held.
    len: usize,
    /// The largest capacity this ring may grow to.
    max_capacity: u64,
}

impl<A: Aggregation> PaneRing<A> {
    /// An empty ring, allocating nothing, that may grow to `max_capacity` slots (a power of two,
    /// at least 2).
    pub fn new(max_capacity: u64) -> Self {
        assert!(
            max_capacity.is_power_of_two() && max_capacity >= 2,
            "ring capacity must be a power of two, at least 2"
        );
        let page_bits = max_capacity
            .trailing_zeros()
            .saturating_sub(3)
            .min(MAX_PAGE_BITS);
        PaneRing {
            pages: Vec::new(),
            page_bits,
            min_capacity: 2 << page_bits,
            spare: Vec::new(),
            oldest: 0,
            newest: 0,
            len: 0,
            max_capacity,
        }
    }

    /// Number of panes held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Number of the oldest pane held.
    pub fn oldest(&self) -> Option<u64> {
        (self.len > 0).then_some(self.oldest)
    }

    /// Number of pages; page numbers are `0..page_count()`.
    pub fn page_count(&self) -> usize {
        self.pages.len()
    }

    /// Number of slots the ring spans (a power of two, or zero).
    pub fn capacity(&self) -> u64 {
        (self.pages.len() as u64) << self.page_bits
    }

    /// Number of slots per page.
    pub fn page_len(&self) -> usize {
        1 << self.page_bits
    }

    /// Whether page `page` holds no pane.
    pub fn page_is_empty(&self, page: usize) -> bool {
        self.pages[page].held == 0
    }

    /// Partials allocated: for the panes held, the evicted ones awaiting the end of their page,
    /// and spare capacity.
    pub fn allocated_partials(&self) -> usize {
        let pages: usize = self.pages.iter().map(|page| page.partials.capacity()).sum();
        pages + self.spare.capacity()
    }

    /// Whether pane `index` can be held without the ring outgrowing its largest capacity.
    pub fn fits(&self, index: u64) -> bool {
        self.len == 0 || self.holds(index, self.max_capacity)
    }

    /// Merges `partial` into pane `index`, which must [`fit`](Self::fits).
    pub fn merge(&mut self, index: u64, partial: &A::Pane) -> Placement {
        debug_assert!(self.fits(index), "pane {index} does not fit the ring");
        let mut relaid = false;
        if self.len == 0 {
            if self.capacity() == 0 {
                self.reset(self.min_capacity);
                relaid = true;
            }
            (self.oldest, self.newest) = (index, index);
        } else {
            let mut capacity = self.capacity();
            while !self.holds(index, capacity) {
                capacity *= 2;
            }
            if capacity != self.capacity() {
                self.relayout(capacity);
                relaid = true;
            }
            self.oldest = self.oldest.min(index);
            self.newest = self.newest.max(index);
        }
        let (page, offset) = self.locate(index);
        self.merge_at(page, offset, partial);
        Placement { page, relaid }
    }

    /// Removes the panes numbered `horizon` or lower, oldest first, handing each to `evicted`
    /// with the page and slot it was in.
    pub fn evict_through(&mut self, horizon: u64, mut evicted: impl FnMut(usize, usize, A::Pane)) {
        while self.len > 0 && self.oldest <= horizon {
            let index = self.oldest;
            let (page, offset) = self.locate(index);
            let pane = self.remove(page, offset);
            evicted(page, offset, pane);
            if self.len > 0 {
                self.oldest = self.next_held(index + 1);
            }
        }
    }

    /// Gives memory back: all of it when no pane is held, half of it or more when the panes held
    /// span at most a quarter of the capacity. Returns whether the ring was relaid out.
    pub fn shrink(&mut self) -> bool {
        let capacity = self.capacity();
        if capacity <= self.min_capacity {
            return false;
        }
        if self.len == 0 {
            self.reset(0);
            return true;
        }
        let span = self.newest - self.oldest + 1;
        if span.saturating_mul(4) > capacity {
            return false;
        }
        let mut smaller = (span.next_power_of_two() * 2).max(self.min_capacity);
        while smaller < capacity && !self.holds(self.newest, smaller) {
            smaller *= 2;
        }
        if smaller == capacity {
            return false;
        }
        self.relayout(smaller);
        true
    }

    /// The merge of the panes on page `page`.
    pub fn page_fold(&self, page: usize) -> A::Pane {
        let mut total = A::empty();
        for (_, partial) in self.pages[page].held_partials() {
            A::merge(&mut total, partial);
        }
        total
    }

    /// Sets `suffixes[o]` to the merge of the panes on page `page` in slots `o` and up, for
    /// every slot `o` and one past the last (the empty partial).
    pub fn page_suffix_folds(&self, page: usize, suffixes: &mut Vec<A::Pane>) {
        let page_len = self.page_len();
        let entry = &self.pages[page];
        suffixes.clear();
        suffixes.resize(page_len + 1, A::empty());
        let mut rank = entry.partials.len();
        for offset in (0..page_len).rev() {
            let bit = 1u64 << offset;
            let mut total = suffixes[offset + 1].clone();
            if entry.present & bit != 0 {
                rank -= 1;
                if entry.held & bit != 0 {
                    A::merge(&mut total, &entry.partials[rank]);
                }
            }
            suffixes[offset] = total;
        }
    }

    /// Calls `f` with the number and partial of every pane held, in no particular order.
    pub fn for_each(&self, mut f: impl FnMut(u64, &A::Pane)) {
        for (page, entry) in self.pages.iter().enumerate() {
            for (offset, partial) in entry.held_partials() {
                f(self.index_at(page, offset), partial);
            }
        }
    }

    /// Whether a ring of `capacity` slots could hold the panes held and pane `index` without
    /// wrapping onto the oldest pane's page; requires `len > 0`.
    fn holds(&self, index: u64, capacity: u64) -> bool {
        let (low, high) = (self.oldest.min(index), self.newest.max(index));
        (high >> self.page_bits) - (low >> self.page_bits) < capacity >> self.page_bits
    }

    /// The page and slot of pane `index`; requires a non-zero capacity.
    fn locate(&self, index: u64) -> (usize, usize) {
        let position = index & (self.capacity() - 1);
        let page = (position >> self.page_bits) as usize;
        let offset = (position & ((1 << self.page_bits) - 1)) as usize;
        (page, offset)
    }

    /// The number of the pane held at `page`, `offset`: the one number in
    /// `[oldest, oldest + capacity)` with that position.
    fn index_at(&self, page: usize, offset: usize) -> u64 {
        let position = ((page as u64) << self.page_bits) | offset as u64;
        self.oldest + (position.wrapping_sub(self.oldest) & (self.capacity() - 1))
    }

    /// The first pane held numbered `from` or higher; requires one up to `newest`.
    fn next_held(&self, from: u64) -> u64 {
        let page_len = 1u64 << self.page_bits;
        let mut index = from;
        loop {
            let (page, offset) = self.locate(index);
            let bits = self.pages[page].held >> offset;
            if bits != 0 {
                return index + u64::from(bits.trailing_zeros());
            }
            // Nothing further on this page: go to the start of the next one.
            match (index | (page_len - 1)).checked_add(1) {
                Some(next) if next <= self.newest => index = next,
                _ => {
                    debug_assert!(false, "no pane held in [{from}, {}]", self.newest);
                    return self.newest;
                }
            }
        }
    }

    /// Merges `partial` into slot `offset` of page `page`, giving the slot an entry if needed.
    fn merge_at(&mut self, page: usize, offset: usize, partial: &A::Pane) {
        let bit = 1u64 << offset;
        let entry = &mut self.pages[page];
        let rank = entry.rank(offset);
        if entry.present & bit == 0 {
            if entry.partials.capacity() == 0 {
                // Reuse the last page's storage; or start small, as sparse data leaves one
                // partial per page.
                entry.partials = mem::take(&mut self.spare);
                entry.partials.reserve_exact(1);
            }
            entry.partials.insert(rank, partial.clone());
            entry.present |= bit;
        } else {
            A::merge(&mut entry.partials[rank], partial);
        }
        if entry.held & bit == 0 {
            entry.held |= bit;
            self.len += 1;
        }
    }

    /// Takes the pane in slot `offset` of page `page` out, recycling the page's storage if it
    /// was the last pane there.
    fn remove(&mut self, page: usize, offset: usize) -> A::Pane {
        let bit = 1u64 << offset;
        let entry = &mut self.pages[page];
        debug_assert!(entry.held & bit != 0, "removing a slot that holds no pane");
        let rank = entry.rank(offset);
        let pane = mem::replace(&mut entry.partials[rank], A::empty());
        entry.held &= !bit;
        self.len -= 1;
        if entry.held == 0 {
            let mut emptied = mem::take(&mut entry.partials);
            entry.present = 0;
            emptied.clear();
            if emptied.capacity() > self.spare.capacity() {
                self.spare = emptied;
            }
        }
        pane
    }

    /// Empties the ring and gives it `capacity` slots (a power of two no smaller than two pages,
    /// or zero).
    fn reset(&mut self, capacity: u64) {
        let pages = (capacity >> self.page_bits) as usize;
        self.pages = Vec::new();
        self.pages.resize_with(pages, Page::default);
        if pages == 0 {
            self.spare = Vec::new();
        }
        self.len = 0;
    }

    /// Moves every held pane to a ring of `capacity` slots, which must [hold](Self::holds) them.
    fn relayout(&mut self, capacity: u64) {
        debug_assert!(self.len == 0 || self.holds(self.newest, capacity));
        let mut panes = Vec::with_capacity(self.len);
        for page in 0..self.pages.len() {
            let Page {
                present,
                held,
                partials,
            } = mem::take(&mut self.pages[page]);
            for (offset, pane) in Bits(present).zip(partials) {
                if held & (1 << offset) != 0 {
                    panes.push((self.index_at(page, offset), pane));
                }
            }
        }
        let (oldest, newest) = (self.oldest, self.newest);
        self.reset(capacity);
        for (index, pane) in panes {
            let (page, offset) = self.locate(index);
            self.merge_at(page, offset, &pane);
        }
        (self.oldest, self.newest) = (oldest, newest);
    }
}

/// The positions of the set bits of a `u64`, lowest first.
struct Bits(u64);

impl Iterator for Bits {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.0 == 0 {
            return None;
        }
        let position = self.0.trailing_zeros() as usize;
        self.0 &= self.0 - 1;
        Some(position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregation::{Eviction, WindowExtent};

    /// A partial that is a plain number, to see where the ring keeps it.
    struct Count;

    impl Aggregation for Count {
        const NAME: &'static str = "tally";
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
        fn finish(total: &u64, _extent: WindowExtent) -> Option<f64> {
            Some(*total as f64)
        }
    }

    fn held(ring: &PaneRing<Count>) -> Vec<(u64, u64)> {
        let mut panes = Vec::new();
        ring.for_each(|index, pane| panes.push((index, *pane)));
        panes.sort();
        panes
    }

    #[test]
    fn grows_to_the_span_and_keeps_panes_in_place() {
        let mut ring = PaneRing::<Count>::new(1 << 20);
        assert_eq!((ring.capacity(), ring.allocated_partials()), (0, 0));
        ring.merge(1_000, &1);
        assert_eq!((ring.capacity(), ring.page_len()), (128, 64));
        ring.merge(1_005, &2);
        ring.merge(1_000, &3);
        let placed = ring.merge(1_300, &1);
        assert!(placed.relaid);
        assert_eq!(ring.capacity(), 512);
        assert_eq!(held(&ring), vec![(1_000, 4), (1_005, 2), (1_300, 1)]);
        // Three partials on two pages out of eight.
        assert!((3..=5).contains(&ring.allocated_partials()));
        ring.merge(999, &7);
        ring.merge(1_003, &7);
        assert_eq!(ring.oldest(), Some(999));
        let expected = vec![(999, 7), (1_000, 4), (1_003, 7), (1_005, 2), (1_300, 1)];
        assert_eq!(held(&ring), expected);
    }

    #[test]
    fn evicts_in_order_skipping_gaps_and_shrinks() {
        let mut ring = PaneRing::<Count>::new(1 << 20);
        for index in [10, 11, 200, 450, 451] {
            ring.merge(index, &index);
        }
        let mut evicted = Vec::new();
        ring.evict_through(300, |_, _, pane| evicted.push(pane));
        assert_eq!(evicted, vec![10, 11, 200]);
        assert_eq!((ring.oldest(), ring.len()), (Some(450), 2));
        assert!(ring.shrink());
        assert_eq!(ring.capacity(), 128);
        assert_eq!(held(&ring), vec![(450, 450), (451, 451)]);
        ring.evict_through(u64::MAX, |_, _, _| {});
        assert_eq!((ring.oldest(), ring.len()), (None, 0));
    }

    #[test]
    fn releases_memory_when_emptied() {
        let mut ring = PaneRing::<Count>::new(1 << 20);
        for index in 0..5_000 {
            ring.merge(index, &1);
        }
        assert_eq!(ring.capacity(), 8_192);
        assert!(ring.allocated_partials() <= 5_000 + 2 * 64);
        ring.evict_through(4_999, |_, _, _| {});
        assert!(ring.shrink());
        assert_eq!((ring.capacity(), ring.allocated_partials()), (0, 0));
    }

    #[test]
    fn refuses_panes_beyond_its_largest_capacity() {
        let mut ring = PaneRing::<Count>::new(16);
        // Pages of 2: panes 100 and 101 on one, seven more pages after or before.
        ring.merge(100, &1);
        assert_eq!(ring.page_len(), 2);
        assert!(ring.fits(115) && ring.fits(86));
        assert!(!ring.fits(116) && !ring.fits(85));
    }
}
