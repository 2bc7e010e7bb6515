//! [`PaneLog`]: the panes one series retains, in about 12 bytes per one-sample pane.
//!
//! A series sampled about once a pane for an hour retains 3,600 panes, almost all of one sample
//! ([`SeriesPane::One`]). Kept as `(end, SeriesPane)` in a deque each costs 32 bytes plus the
//! deque's slack; kept as a `PaneSet` of every aggregation's partials, 56. Here panes are
//! grouped in chunks of 64 consecutive pane numbers: a bit mask says which slots hold a pane
//! (so the end is implicit), a second which of those hold several samples; one-sample panes
//! keep their sample as two columns, the value (8 bytes) and how many milliseconds before the
//! pane's end it was taken (2 bytes), and the others a [`PaneSet`]. A full chunk of
//! one-sample panes is 640 bytes of columns and a 104-byte header: 11.6 bytes per pane.
//!
//! Once a chunk is complete (the series has moved on to the next), its values are stored as
//! decimal mantissas when they all are: `mantissa / 10^scale` with a 32-bit mantissa and one
//! scale per chunk, kept only if it gives back the very same `f64` bit for bit, as metrics
//! written with a few decimals do (`12.5`, `0.03`, `1024`). Then a pane costs 4 bytes of value
//! and about 7.6 bytes in all. Values with more digits stay `f64`; a late value that does not
//! fit the chunk's scale turns the chunk back to `f64`. (VictoriaMetrics stores values as
//! decimal mantissas too, for the same reason.)
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
    values: Values,
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
                value: self.values.get(at),
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
            // Fits the 16-bit column: PANE_MS is at most 2^16 (asserted above).
            SeriesPane::One { time, value } if time <= end && end - time < PANE_MS => {
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
        self.values.compact();
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

/// The values of a chunk's one-sample panes; see the module documentation.
enum Values {
    /// As they are.
    Exact(Vec<f64>),
    /// Each `mantissa / 10^scale`, which is the value bit for bit.
    Decimal {
        /// Decimal digits after the point.
        scale: u8,
        /// One per value.
        mantissas: Vec<i32>,
    },
}

impl Default for Values {
    fn default() -> Self {
        Values::Exact(Vec::new())
    }
}

/// Powers of ten a chunk's values may be scaled by; all exact in `f64`.
const POWERS_OF_TEN: [f64; 10] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/// `value` as a mantissa at `scale`, if `mantissa / 10^scale` gives back `value` bit for bit.
fn mantissa(value: f64, scale: u8) -> Option<i32> {
    let power = POWERS_OF_TEN[usize::from(scale)];
    let scaled = (value * power).round();
    if !(f64::from(i32::MIN)..=f64::from(i32::MAX)).contains(&scaled) {
        return None;
    }
    let mantissa = scaled as i32;
    (decimal(mantissa, scale).to_bits() == value.to_bits()).then_some(mantissa)
}

/// The value of `mantissa` at `scale`.
fn decimal(mantissa: i32, scale: u8) -> f64 {
    f64::from(mantissa) / POWERS_OF_TEN[usize::from(scale)]
}

impl Values {
    fn get(&self, at: usize) -> f64 {
        match self {
            Values::Exact(values) => values[at],
            Values::Decimal { scale, mantissas } => decimal(mantissas[at], *scale),
        }
    }

    fn remove(&mut self, at: usize) -> f64 {
        match self {
            Values::Exact(values) => values.remove(at),
            Values::Decimal { scale, mantissas } => decimal(mantissas.remove(at), *scale),
        }
    }

    fn insert(&mut self, at: usize, value: f64) {
        if let Values::Decimal { scale, mantissas } = self {
            if let Some(mantissa) = mantissa(value, *scale) {
                mantissas.insert(at, mantissa);
                return;
            }
            // Does not fit this chunk's scale: back to `f64`.
            let exact = mantissas.iter().map(|m| decimal(*m, *scale)).collect();
            *self = Values::Exact(exact);
        }
        if let Values::Exact(values) = self {
            values.insert(at, value);
        }
    }

    /// Stores the values as decimal mantissas at the smallest scale that gives each back
    /// exactly, if there is one; else as they are, without spare capacity.
    fn compact(&mut self) {
        let Values::Exact(values) = self else {
            return;
        };
        if values.is_empty() {
            *values = Vec::new();
            return;
        }
        for scale in 0..POWERS_OF_TEN.len() as u8 {
            let mantissas: Option<Vec<i32>> = values.iter().map(|v| mantissa(*v, scale)).collect();
            if let Some(mantissas) = mantissas {
                *self = Values::Decimal { scale, mantissas };
                return;
            }
        }
        values.shrink_to_fit();
    }

    /// Bytes allocated.
    #[cfg(test)]
    fn allocated(&self) -> usize {
        match self {
            Values::Exact(values) => values.capacity() * 8,
            Values::Decimal { mantissas, .. } => mantissas.capacity() * 4,
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
        Sample { pane: u64, offset: u64, value: f64 },
        /// Two samples as one set, in the pane numbered `pane`.
        Set { pane: u64, values: (i32, i32) },
        /// Drop panes numbered up to this.
        Expire(u64),
        /// Compact every chunk's values, as when the series moves past it.
        Settle,
    }

    /// Values of every kind a chunk stores differently: whole, with a few decimals (both
    /// decimal-encodable), with many digits, and the awkward ones.
    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            (-1_000_000i32..1_000_000).prop_map(f64::from),
            (-100_000i32..100_000).prop_map(|m| f64::from(m) / 10.0),
            (-100_000i32..100_000).prop_map(|m| f64::from(m) / 1_000.0),
            -1e12f64..1e12,
            Just(-0.0),
            Just(f64::MIN_POSITIVE),
            Just(f64::MAX),
            Just(2_147_483_647.0),
            Just(2_147_483_648.0),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0u64..300, 0..PANE_MS, value())
                .prop_map(|(pane, offset, value)| Op::Sample { pane, offset, value }),
            1 => (0u64..300, (-1000i32..1000, -1000i32..1000))
                .prop_map(|(pane, values)| Op::Set { pane, values }),
            1 => (0u64..300).prop_map(Op::Expire),
            1 => Just(Op::Settle),
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
                        let sample = SeriesPane::one(end - offset, value);
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
                    Op::Settle => log.chunks.iter_mut().for_each(Chunk::settle),
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
                // One-sample panes come back as one sample, bit for bit.
                let bits = |pane: &SeriesPane| pane.sample().map(|(t, v)| (t, v.to_bits()));
                prop_assert_eq!(bits(&got), bits(want));
            }
            let horizon = 150 * PANE_MS;
            let after: Vec<u64> = log.after(horizon).map(|(end, _)| end).collect();
            let want: Vec<u64> = oracle.0.keys().copied().filter(|e| *e > horizon).collect();
            prop_assert_eq!(after, want);
        }
    }

    /// Bytes per pane of an hour of one-sample panes valued `value(second)`.
    fn bytes_per_pane_of_an_hour(value: impl Fn(u64) -> f64) -> f64 {
        let mut log = PaneLog::default();
        let start = 1_700_000_000;
        for second in start..start + 3_600 {
            let end = second * PANE_MS;
            log.merge(end, SeriesPane::one(end - 250, value(second)));
        }
        let end = (start + 10) * PANE_MS;
        assert_eq!(
            log.get(end),
            Some(SeriesPane::one(end - 250, value(start + 10)))
        );
        let columns: usize = log
            .chunks
            .iter()
            .map(|c| {
                c.offsets.capacity() * 2
                    + c.values.allocated()
                    + c.sets.capacity() * std::mem::size_of::<PaneSet>()
            })
            .sum();
        let headers = log.chunks.capacity() * std::mem::size_of::<Chunk>();
        (columns + headers) as f64 / 3_600.0
    }

    #[test]
    fn an_hour_of_one_sample_panes_is_compact() {
        // One decimal: 4-byte mantissas once each chunk is complete.
        let decimals = bytes_per_pane_of_an_hour(|s| (s % 1_000) as f64 / 10.0);
        assert!(decimals < 8.5, "{decimals} bytes per pane");
        // Full precision: 8-byte values.
        let exact = bytes_per_pane_of_an_hour(|s| s as f64 * std::f64::consts::PI);
        assert!(exact < 12.5, "{exact} bytes per pane");
    }
}
