//! [`PaneLog`]: the panes one series retains, in about 12 bytes per one-sample pane.
//!
//! A series sampled about once a pane for an hour retains 3,600 panes, almost all of one sample
//! ([`SeriesPane::One`]). Kept as `(end, SeriesPane)` in a deque each costs 32 bytes plus the
//! deque's slack; kept as a `PaneSet` of every aggregation's partials, 56. Here panes are
//! grouped in chunks of 64 consecutive pane numbers: a bit mask says which slots hold a pane
//! (so the end is implicit), a second which of those hold several samples; one-sample panes
//! keep their sample as two columns, the value (8 bytes) and how many milliseconds before the
//! pane's end it was taken (2 bytes), and the others a [`PaneSet`]. A full chunk of
//! one-sample panes is 640 bytes of columns and a 96-byte header: 11.5 bytes per pane.
//!
//! Finding a pane is a search among the chunks (O(log chunks); in practice the newest) and a
//! popcount within one; merging a late pane into the middle shifts at most 64 entries.

use std::collections::VecDeque;

use operators::registry::PaneSet;
use operators::series_pane::SeriesPane;

use crate::time::PANE_MS;

/// Slots per chunk: one `u64` of bits.
const CHUNK_SLOTS: u64 = 64;

// A sample's offset from its pane's end must fit the 16-bit column.
const _: () = assert!(PANE_MS <= u16::MAX as u64 + 1);

/// The panes of one series; see the module documentation.
#[derive(Default)]
pub struct PaneLog {
    /// Chunks in increasing order of `base`; none empty.
    chunks: VecDeque<Chunk>,
    /// Number of panes held.
    len: usize,
}

/// Up to 64 panes with consecutive numbers.
#[derive(Default)]
struct Chunk {
    /// Number (end / `PANE_MS`) of the pane in slot 0; a multiple of 64.
    base: u64,
    /// Slots holding a pane.
    present: u64,
    /// Slots holding a pane of several samples, in `sets`; the other present slots hold one
    /// sample, in `offsets` and `values`.
    many: u64,
    /// Per one-sample pane, in slot order: pane end minus the sample's event time, in ms.
    offsets: Vec<u16>,
    /// Per one-sample pane, in slot order: the sample's value.
    values: Vec<f64>,
    /// Per several-sample pane, in slot order.
    sets: Vec<PaneSet>,
}

impl Chunk {
    /// Index among the one-sample panes (`ones`) or the several-sample ones (`!ones`) that slot
    /// `slot` has or would have.
    fn rank(&self, slot: u32, ones: bool) -> usize {
        let kind = if ones {
            self.present & !self.many
        } else {
            self.many
        };
        (kind & ((1u64 << slot) - 1)).count_ones() as usize
    }

    fn get(&self, slot: u32) -> Option<SeriesPane> {
        let bit = 1u64 << slot;
        if self.present & bit == 0 {
            return None;
        }
        let end = (self.base + u64::from(slot)) * PANE_MS;
        Some(if self.many & bit != 0 {
            SeriesPane::from(self.sets[self.rank(slot, false)].clone())
        } else {
            let at = self.rank(slot, true);
            SeriesPane::One {
                time: end - u64::from(self.offsets[at]),
                value: self.values[at],
            }
        })
    }

    /// Removes the pane in `slot`, which must be present.
    fn take(&mut self, slot: u32) -> SeriesPane {
        let bit = 1u64 << slot;
        let pane = if self.many & bit != 0 {
            SeriesPane::from(self.sets.remove(self.rank(slot, false)))
        } else {
            let at = self.rank(slot, true);
            let end = (self.base + u64::from(slot)) * PANE_MS;
            SeriesPane::One {
                time: end - u64::from(self.offsets.remove(at)),
                value: self.values.remove(at),
            }
        };
        self.present &= !bit;
        self.many &= !bit;
        pane
    }

    /// Puts `pane` in `slot`, which must be empty.
    fn put(&mut self, slot: u32, pane: SeriesPane) {
        let bit = 1u64 << slot;
        let end = (self.base + u64::from(slot)) * PANE_MS;
        match pane {
            SeriesPane::One { time, value }
                if time <= end && end - time < PANE_MS && end - time <= u64::from(u16::MAX) =>
            {
                let at = self.rank(slot, true);
                self.offsets.insert(at, (end - time) as u16);
                self.values.insert(at, value);
            }
            // A sample outside its pane (not made by `pane_end`): kept whole.
            other => {
                let at = self.rank(slot, false);
                self.sets.insert(at, other.into_set());
                self.many |= bit;
            }
        }
        self.present |= bit;
    }

    /// Gives back the columns' spare capacity once the chunk will not grow (its newest slot is
    /// taken or the series moved past it).
    fn settle(&mut self) {
        self.offsets.shrink_to_fit();
        self.values.shrink_to_fit();
        self.sets.shrink_to_fit();
    }
}

impl PaneLog {
    /// Whether no pane is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of panes held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Merges `pane` into the pane ending at `end` (a multiple of [`PANE_MS`]).
    pub fn merge(&mut self, end: u64, pane: SeriesPane) {
        debug_assert_eq!(end % PANE_MS, 0, "pane end {end} not on a pane boundary");
        let number = end / PANE_MS;
        let base = number - number % CHUNK_SLOTS;
        let slot = (number - base) as u32;
        let at = match self.chunks.back() {
            // The common case: the newest chunk.
            Some(chunk) if chunk.base == base => self.chunks.len() - 1,
            Some(chunk) if chunk.base < base => {
                if let Some(previous) = self.chunks.back_mut() {
                    previous.settle();
                }
                self.chunks.push_back(Chunk {
                    base,
                    ..Chunk::default()
                });
                self.chunks.len() - 1
            }
            _ => match self.chunks.binary_search_by_key(&base, |c| c.base) {
                Ok(at) => at,
                Err(at) => {
                    self.chunks.insert(
                        at,
                        Chunk {
                            base,
                            ..Chunk::default()
                        },
                    );
                    at
                }
            },
        };
        let chunk = &mut self.chunks[at];
        if chunk.present & (1u64 << slot) == 0 {
            chunk.put(slot, pane);
            self.len += 1;
        } else {
            let mut held = chunk.take(slot);
            held.merge(&pane);
            chunk.put(slot, held);
        }
    }

    /// The pane ending at `end`, if held.
    pub fn get(&self, end: u64) -> Option<SeriesPane> {
        if !end.is_multiple_of(PANE_MS) {
            return None;
        }
        let number = end / PANE_MS;
        let base = number - number % CHUNK_SLOTS;
        let at = self.chunks.binary_search_by_key(&base, |c| c.base).ok()?;
        self.chunks[at].get((number - base) as u32)
    }

    /// Every pane ending after `horizon`, oldest first, with its end.
    pub fn after(&self, horizon: u64) -> impl Iterator<Item = (u64, SeriesPane)> + '_ {
        let first = self
            .chunks
            .partition_point(|c| (c.base + CHUNK_SLOTS) * PANE_MS <= horizon);
        self.chunks.range(first..).flat_map(move |chunk| {
            Slots(chunk.present).filter_map(move |slot| {
                let end = (chunk.base + u64::from(slot)) * PANE_MS;
                (end > horizon).then(|| (end, chunk.get(slot).expect("slot is present")))
            })
        })
    }

    /// Drops every pane ending at or before `horizon`.
    pub fn expire_through(&mut self, horizon: u64) {
        while let Some(chunk) = self.chunks.front_mut() {
            let first_end = chunk.base * PANE_MS;
            if first_end > horizon {
                break;
            }
            if (chunk.base + CHUNK_SLOTS - 1) * PANE_MS <= horizon {
                self.len -= chunk.present.count_ones() as usize;
                self.chunks.pop_front();
                continue;
            }
            // Part of this chunk: its slots up to the horizon's.
            let last_slot = (horizon / PANE_MS - chunk.base) as u32;
            let doomed = chunk.present & (u64::MAX >> (63 - last_slot));
            for slot in Slots(doomed) {
                chunk.take(slot);
                self.len -= 1;
            }
            if chunk.present == 0 {
                self.chunks.pop_front();
            }
            break;
        }
        if self.chunks.capacity() > 2 * self.chunks.len() + 4 {
            self.chunks.shrink_to_fit();
        }
    }
}

/// The positions of the set bits of a `u64`, lowest first.
struct Slots(u64);

impl Iterator for Slots {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        if self.0 == 0 {
            return None;
        }
        let slot = self.0.trailing_zeros();
        self.0 &= self.0 - 1;
        Some(slot)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use operators::registry::AggregationKind;
    use proptest::prelude::*;

    use super::*;

    /// What the log must hold: a plain map of merged panes.
    #[derive(Default)]
    struct Oracle(BTreeMap<u64, SeriesPane>);

    impl Oracle {
        fn merge(&mut self, end: u64, pane: &SeriesPane) {
            match self.0.get_mut(&end) {
                Some(held) => held.merge(pane),
                None => {
                    self.0.insert(end, pane.clone());
                }
            }
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        /// A sample in the pane numbered `pane`, `offset` ms before its end.
        Sample { pane: u64, offset: u64, value: i32 },
        /// Two samples as one set, in the pane numbered `pane`.
        Set { pane: u64, values: (i32, i32) },
        /// Drop panes numbered up to this.
        Expire(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0u64..300, 0..PANE_MS, -1000i32..1000)
                .prop_map(|(pane, offset, value)| Op::Sample { pane, offset, value }),
            1 => (0u64..300, (-1000i32..1000, -1000i32..1000))
                .prop_map(|(pane, values)| Op::Set { pane, values }),
            1 => (0u64..300).prop_map(Op::Expire),
        ]
    }

    /// Compares by projection: partials of every aggregation.
    fn same(a: &SeriesPane, b: &SeriesPane) -> bool {
        AggregationKind::ALL
            .iter()
            .all(|kind| a.project(*kind) == b.project(*kind))
    }

    proptest! {
        #[test]
        fn holds_what_a_map_of_merged_panes_holds(ops in prop::collection::vec(op(), 0..200)) {
            let mut log = PaneLog::default();
            let mut oracle = Oracle::default();
            for op in ops {
                match op {
                    Op::Sample { pane, offset, value } => {
                        let end = (pane + 1) * PANE_MS;
                        let sample = SeriesPane::one(end - offset, f64::from(value));
                        log.merge(end, sample.clone());
                        oracle.merge(end, &sample);
                    }
                    Op::Set { pane, values } => {
                        let end = (pane + 1) * PANE_MS;
                        let mut set = SeriesPane::one(end - 1, f64::from(values.0));
                        set.insert(end - 2, f64::from(values.1));
                        log.merge(end, set.clone());
                        oracle.merge(end, &set);
                    }
                    Op::Expire(pane) => {
                        let horizon = pane * PANE_MS;
                        log.expire_through(horizon);
                        oracle.0.retain(|end, _| *end > horizon);
                    }
                }
                prop_assert_eq!(log.len(), oracle.0.len());
            }
            let held: Vec<(u64, SeriesPane)> = log.after(0).collect();
            prop_assert_eq!(held.len(), oracle.0.len());
            for ((end, pane), (want_end, want)) in held.iter().zip(&oracle.0) {
                prop_assert_eq!(end, want_end);
                prop_assert!(same(pane, want), "pane {}: {:?} vs {:?}", end, pane, want);
                let got = log.get(*end).expect("held");
                prop_assert!(same(&got, want));
                // One-sample panes come back as one sample, exactly.
                prop_assert_eq!(got.sample(), want.sample());
            }
            let horizon = 150 * PANE_MS;
            let after: Vec<u64> = log.after(horizon).map(|(end, _)| end).collect();
            let want: Vec<u64> = oracle.0.keys().copied().filter(|e| *e > horizon).collect();
            prop_assert_eq!(after, want);
        }
    }

    #[test]
    fn a_full_hour_of_one_sample_panes_is_compact() {
        let mut log = PaneLog::default();
        let start = 1_700_000_000;
        for second in start..start + 3_600 {
            let end = second * PANE_MS;
            log.merge(end, SeriesPane::one(end - 250, 1.5));
        }
        let columns: usize = log
            .chunks
            .iter()
            .map(|c| {
                c.offsets.capacity() * 2
                    + c.values.capacity() * 8
                    + c.sets.capacity() * std::mem::size_of::<PaneSet>()
            })
            .sum();
        let headers = log.chunks.capacity() * std::mem::size_of::<Chunk>();
        let per_pane = (columns + headers) as f64 / 3_600.0;
        assert!(per_pane < 12.5, "{per_pane} bytes per pane");
        assert_eq!(
            log.get((start + 10) * PANE_MS),
            Some(SeriesPane::one((start + 10) * PANE_MS - 250, 1.5))
        );
    }
}
