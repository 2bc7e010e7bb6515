//! [`PaneRing`]: the panes a window holds, stored by pane number in a paged circular buffer.
//!
//! Pane `i` (the pane ending at `i * pane_ms`) lives at position `i mod capacity`. The capacity
//! is a power of two no smaller than the span `newest - oldest + 1` of the panes held, so finding
//! a pane is O(1), whether it is the newest or a late arrival anywhere in the window. Positions
//! are grouped into pages of up to 64 slots with one occupancy bit per slot, and a page is
//! allocated only while it holds a pane: memory follows the panes actually held (one page per
//! run of 64 pane numbers with data, plus 24 bytes of index per page position), not the window
//! length. A 24 h window of 1 s panes with data in three panes holds three pages.
//!
//! The capacity doubles when a pane falls outside it and halves when the span drops to a quarter
//! of it; each relayout moves every held pane, O(held panes + pages), amortized O(1) per change.

use std::mem;

use crate::aggregation::Aggregation;

/// log2 of the largest page: one `u64` of occupancy bits.
const MAX_PAGE_BITS: u32 = 6;

/// The capacity a ring starts with, and never shrinks below while it holds panes.
const MIN_CAPACITY: u64 = 8;

/// Where [`PaneRing::merge`] put a partial.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Placement {
    /// The page holding the pane.
    pub page: usize,
    /// Whether the ring was relaid out first, which renumbers every page.
    pub relaid: bool,
}

/// A window's panes by pane number. See the module documentation.
pub(super) struct PaneRing<A: Aggregation> {
    /// `pages[p]`: the slots of page `p`, or `None` when it holds no pane. Slots that hold no
    /// pane are `A::empty()`.
    pages: Vec<Option<Box<[A::Pane]>>>,
    /// `held[p]` has bit `o` set when slot `o` of page `p` holds a pane.
    held: Vec<u64>,
    /// log2 of the slots per page.
    page_bits: u32,
    /// A page freed by eviction, kept for the next page to be allocated.
    spare: Option<Box<[A::Pane]>>,
    /// Number of the oldest pane held; meaningful only when `len > 0`.
    oldest: u64,
    /// Number of the newest pane held; meaningful only when `len > 0`.
    newest: u64,
    /// Number of panes held.
    len: usize,
    /// The largest capacity this ring may grow to (a power of two).
    max_capacity: u64,
}

impl<A: Aggregation> PaneRing<A> {
    /// An empty ring, allocating nothing, that may grow to `max_capacity` slots.
    pub fn new(max_capacity: u64) -> Self {
        assert!(
            max_capacity.is_power_of_two(),
            "ring capacity must be a power of two"
        );
        PaneRing {
            pages: Vec::new(),
            held: Vec::new(),
            page_bits: 0,
            spare: None,
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

    /// Number of pages (allocated or not); page numbers are `0..page_count()`.
    pub fn page_count(&self) -> usize {
        self.pages.len()
    }

    /// Number of slots the ring spans (a power of two, or zero).
    pub fn capacity(&self) -> u64 {
        (self.pages.len() as u64) << self.page_bits
    }

    /// Slots currently allocated: pages in use and the spare.
    pub fn allocated_slots(&self) -> usize {
        let pages = self.pages.iter().filter(|page| page.is_some()).count();
        (pages + usize::from(self.spare.is_some())) << self.page_bits
    }

    /// Whether pane `index` can be held without the ring outgrowing its largest capacity.
    pub fn fits(&self, index: u64) -> bool {
        self.len == 0 || self.span_with(index) <= self.max_capacity
    }

    /// Merges `partial` into pane `index`, which must [`fit`](Self::fits).
    pub fn merge(&mut self, index: u64, partial: &A::Pane) -> Placement {
        debug_assert!(self.fits(index), "pane {index} does not fit the ring");
        let mut relaid = false;
        if self.len == 0 {
            if self.capacity() == 0 {
                self.reset(MIN_CAPACITY.min(self.max_capacity));
                relaid = true;
            }
            (self.oldest, self.newest) = (index, index);
        } else {
            let span = self.span_with(index);
            if span > self.capacity() {
                self.relayout(span.next_power_of_two());
                relaid = true;
            }
            self.oldest = self.oldest.min(index);
            self.newest = self.newest.max(index);
        }
        let (page, offset) = self.locate(index);
        let slots = self.page_mut(page);
        A::merge(&mut slots[offset], partial);
        self.mark_held(page, offset);
        Placement { page, relaid }
    }

    /// Removes the panes numbered `horizon` or lower, oldest first, handing each to `evicted`
    /// with the page it was on.
    pub fn evict_through(&mut self, horizon: u64, mut evicted: impl FnMut(usize, A::Pane)) {
        while self.len > 0 && self.oldest <= horizon {
            let index = self.oldest;
            let (page, offset) = self.locate(index);
            let pane = self.remove(page, offset);
            evicted(page, pane);
            if self.len > 0 {
                self.oldest = self.next_held(index + 1);
            }
        }
    }

    /// Gives memory back: all of it when no pane is held, half of it when the panes held span at
    /// most a quarter of the capacity. Returns whether the ring was relaid out.
    pub fn shrink(&mut self) -> bool {
        let capacity = self.capacity();
        if capacity <= MIN_CAPACITY {
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
        self.relayout((span.next_power_of_two() * 2).max(MIN_CAPACITY));
        true
    }

    /// The merge of the panes on page `page`.
    pub fn page_fold(&self, page: usize) -> A::Pane {
        let mut total = A::empty();
        if let Some(slots) = &self.pages[page] {
            for_each_bit(self.held[page], |offset| {
                A::merge(&mut total, &slots[offset])
            });
        }
        total
    }

    /// Calls `f` with the number and partial of every pane held, in no particular order.
    pub fn for_each(&self, mut f: impl FnMut(u64, &A::Pane)) {
        for (page, slots) in self.pages.iter().enumerate() {
            if let Some(slots) = slots {
                for_each_bit(self.held[page], |offset| {
                    f(self.index_at(page, offset), &slots[offset]);
                });
            }
        }
    }

    /// `newest - oldest + 1` once `index` is held too; requires `len > 0`.
    fn span_with(&self, index: u64) -> u64 {
        let (low, high) = (self.oldest.min(index), self.newest.max(index));
        (high - low).saturating_add(1)
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
            let bits = self.held[page] >> offset;
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

    /// The slots of page `page`, allocating them if the page holds nothing yet.
    fn page_mut(&mut self, page: usize) -> &mut [A::Pane] {
        let page_len = 1usize << self.page_bits;
        let spare = &mut self.spare;
        self.pages[page].get_or_insert_with(|| {
            spare
                .take()
                .unwrap_or_else(|| vec![A::empty(); page_len].into_boxed_slice())
        })
    }

    fn mark_held(&mut self, page: usize, offset: usize) {
        let bit = 1u64 << offset;
        if self.held[page] & bit == 0 {
            self.held[page] |= bit;
            self.len += 1;
        }
    }

    /// Takes the pane at `page`, `offset` out, freeing the page if it was its last.
    fn remove(&mut self, page: usize, offset: usize) -> A::Pane {
        let bit = 1u64 << offset;
        debug_assert!(
            self.held[page] & bit != 0,
            "removing a slot that holds no pane"
        );
        self.held[page] &= !bit;
        self.len -= 1;
        let pane = match &mut self.pages[page] {
            Some(slots) => mem::replace(&mut slots[offset], A::empty()),
            None => A::empty(),
        };
        if self.held[page] == 0 {
            let freed = self.pages[page].take();
            if self.spare.is_none() {
                self.spare = freed;
            }
        }
        pane
    }

    /// Empties the ring and gives it `capacity` slots (a power of two, or zero).
    fn reset(&mut self, capacity: u64) {
        let page_bits = capacity.trailing_zeros().min(MAX_PAGE_BITS);
        let pages = (capacity >> page_bits) as usize;
        self.pages = Vec::new();
        self.pages.resize_with(pages, || None);
        self.held = vec![0; pages];
        if page_bits != self.page_bits || pages == 0 {
            self.spare = None;
        }
        self.page_bits = page_bits;
        self.len = 0;
    }

    /// Moves every held pane to a ring of `capacity` slots, which must cover their span.
    fn relayout(&mut self, capacity: u64) {
        debug_assert!(self.len == 0 || self.newest - self.oldest < capacity);
        let mut panes = Vec::with_capacity(self.len);
        for page in 0..self.pages.len() {
            if let Some(mut slots) = self.pages[page].take() {
                for_each_bit(self.held[page], |offset| {
                    let pane = mem::replace(&mut slots[offset], A::empty());
                    panes.push((self.index_at(page, offset), pane));
                });
            }
        }
        let (oldest, newest) = (self.oldest, self.newest);
        self.reset(capacity);
        for (index, pane) in panes {
            let (page, offset) = self.locate(index);
            self.page_mut(page)[offset] = pane;
            self.mark_held(page, offset);
        }
        (self.oldest, self.newest) = (oldest, newest);
    }
}

/// Calls `f` with the position of every set bit of `bits`, lowest first.
fn for_each_bit(mut bits: u64, mut f: impl FnMut(usize)) {
    while bits != 0 {
        f(bits.trailing_zeros() as usize);
        bits &= bits - 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregations::Count;

    fn held(ring: &PaneRing<Count>) -> Vec<(u64, u64)> {
        let mut panes = Vec::new();
        ring.for_each(|index, pane| panes.push((index, *pane)));
        panes.sort();
        panes
    }

    #[test]
    fn grows_to_the_span_and_keeps_panes_in_place() {
        let mut ring = PaneRing::<Count>::new(1 << 20);
        assert_eq!((ring.capacity(), ring.allocated_slots()), (0, 0));
        ring.merge(1_000, &1);
        assert_eq!(ring.capacity(), MIN_CAPACITY);
        ring.merge(1_005, &2);
        ring.merge(1_000, &3);
        let placed = ring.merge(1_300, &1);
        assert!(placed.relaid);
        assert_eq!(ring.capacity(), 512);
        assert_eq!(held(&ring), vec![(1_000, 4), (1_005, 2), (1_300, 1)]);
        // Two pages with data out of eight.
        assert_eq!(ring.allocated_slots(), 128);
        ring.merge(999, &7);
        assert_eq!(ring.oldest(), Some(999));
    }

    #[test]
    fn evicts_in_order_skipping_gaps_and_shrinks() {
        let mut ring = PaneRing::<Count>::new(1 << 20);
        for index in [10, 11, 200, 450, 451] {
            ring.merge(index, &index);
        }
        let mut evicted = Vec::new();
        ring.evict_through(300, |_, pane| evicted.push(pane));
        assert_eq!(evicted, vec![10, 11, 200]);
        assert_eq!((ring.oldest(), ring.len()), (Some(450), 2));
        assert!(ring.shrink());
        assert_eq!(ring.capacity(), MIN_CAPACITY);
        assert_eq!(held(&ring), vec![(450, 450), (451, 451)]);
        ring.evict_through(u64::MAX, |_, _| {});
        assert_eq!((ring.oldest(), ring.len()), (None, 0));
    }

    #[test]
    fn releases_memory_when_emptied() {
        let mut ring = PaneRing::<Count>::new(1 << 20);
        for index in 0..5_000 {
            ring.merge(index, &1);
        }
        assert_eq!(ring.capacity(), 8_192);
        ring.evict_through(4_999, |_, _| {});
        assert!(ring.shrink());
        assert_eq!((ring.capacity(), ring.allocated_slots()), (0, 0));
    }

    #[test]
    fn refuses_panes_beyond_its_largest_capacity() {
        let mut ring = PaneRing::<Count>::new(16);
        ring.merge(100, &1);
        assert!(ring.fits(115) && ring.fits(85));
        assert!(!ring.fits(116) && !ring.fits(84));
    }
}
