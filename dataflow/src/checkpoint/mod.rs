//! Checkpoints: the series store's panes together with the Kafka offsets they reflect, so a
//! restart replays only what came after instead of the whole retention.
//!
//! # Consistency
//!
//! Checkpoints are taken at *boundaries*: pane ends that are multiples of the checkpoint
//! interval (plus one forced boundary at shutdown). Every operator contributes a [`Piece`] for
//! a boundary `B` at the moment it crosses it, without pausing the dataflow:
//! - each source, when it closes tick `B`: the offset of the next record of each of its
//!   partitions, and the panes it holds for ticks after `B` (events stamped ahead of the
//!   watermark, read from records before those offsets);
//! - each series store, after it has processed every time up to `B` and before any later one:
//!   the panes that changed since the previous boundary.
//!
//! Because data is stamped with the tick it enters at, a record before the offsets is either
//! in the stores' panes (ticks `<= B`) or in the sources' pending panes (ticks `> B`), exactly
//! once, and a record after them is in neither.
//!
//! # On disk
//!
//! `checkpoints/` holds segments (`segment-N.ckpt`, panes changed in one interval, written once)
//! and manifests (`manifest-B.ckpt`: boundary, offsets, pending panes and the chain of segments
//! that rebuilds the state). A segment's records are sorted by series, so the state a chain
//! rebuilds is a merge of its segments' record streams, one series at a time ([`merge`]): a
//! later pane replacing an earlier one, panes older than the retention dropped. Restoring reads
//! that merge; when the chain grows past twice the size of its last compaction the writer folds
//! it into one segment by writing that merge, in memory for a record per segment rather than
//! for the whole state. The newest three manifests
//! are kept, with the segments they need. Every file is framed with a format version, the pane
//! layout (which aggregations its panes hold) and a checksum, and written atomically
//! ([`file`](mod@file)); a corrupt newest checkpoint is reported and the previous one used
//! ([`restore`]). Checkpoints of another pane layout are refused, and the topic replayed from
//! the beginning.

pub mod file;
pub mod merge;
pub mod restore;
#[cfg(test)]
mod testing;
pub mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::kafka_source::PaneRecord;

/// A source's contribution to the checkpoint at a boundary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourcePiece {
    /// The worker it comes from.
    pub worker: usize,
    /// The boundary.
    pub boundary: u64,
    /// Per partition read, the offset of the first record not reflected.
    pub offsets: Vec<(i32, i64)>,
    /// Panes read but stamped for ticks after the boundary, with their tick.
    pub pending: Vec<(u64, PaneRecord)>,
}

/// A series store's contribution to the checkpoint at a boundary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StorePiece {
    /// The worker it comes from.
    pub worker: usize,
    /// The boundary.
    pub boundary: u64,
    /// Panes changed since the previous boundary (each with its full merged value), or, when
    /// `full`, every pane the store holds.
    pub panes: Vec<PaneRecord>,
    /// Whether `panes` is the store's whole state, sent once after
    /// [`Boundaries::request_full`].
    pub full: bool,
}

/// One operator's contribution to a checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub enum Piece {
    /// From a Kafka source.
    Source(SourcePiece),
    /// From a series store.
    Store(StorePiece),
}

/// Where operators send their pieces. Cheap to clone; never blocks.
#[derive(Clone, Debug)]
pub struct PieceSender(std::sync::mpsc::Sender<Piece>);

impl PieceSender {
    /// Hands a piece to the checkpoint writer (dropped if the writer has stopped).
    pub fn send(&self, piece: Piece) {
        let _ = self.0.send(piece);
    }

    /// A sender whose pieces a test receives.
    #[cfg(test)]
    pub(crate) fn for_test() -> (PieceSender, std::sync::mpsc::Receiver<Piece>) {
        let (sender, receiver) = std::sync::mpsc::channel();
        (PieceSender(sender), receiver)
    }
}

/// Which ticks are checkpoint boundaries: multiples of the interval, and one forced boundary
/// (set at shutdown for a final checkpoint). Shared by all operators so they agree.
#[derive(Clone, Debug)]
pub struct Boundaries {
    interval_ms: u64,
    forced: Arc<AtomicU64>,
    /// Requests for every store's whole state, counted (see [`Boundaries::request_full`]).
    full_requests: Arc<AtomicU64>,
}

impl Boundaries {
    /// Boundaries every `interval_ms` (a multiple of the pane width).
    pub fn new(interval_ms: u64) -> Self {
        Boundaries {
            interval_ms: interval_ms.max(1),
            forced: Arc::new(AtomicU64::new(u64::MAX)),
            full_requests: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Asks every series store to send its whole state, instead of its changes, at the next
    /// boundary it crosses: the checkpoint writer starts a new chain from them when the chain
    /// it was extending turned out unreadable.
    pub fn request_full(&self) {
        self.full_requests.fetch_add(1, Ordering::SeqCst);
    }

    /// How many times [`Boundaries::request_full`] was called.
    pub fn full_requests(&self) -> u64 {
        self.full_requests.load(Ordering::SeqCst)
    }

    /// Makes `tick` a boundary too (for a final checkpoint). It must be a tick no operator has
    /// closed yet.
    pub fn force(&self, tick: u64) {
        self.forced.store(tick, Ordering::SeqCst);
    }

    /// The boundaries `b` with `after < b <= through`, in order.
    pub fn crossed(&self, after: u64, through: u64) -> Vec<u64> {
        if through <= after {
            return Vec::new();
        }
        let mut crossed = Vec::new();
        let mut next = (after / self.interval_ms + 1) * self.interval_ms;
        // Skip whole runs when far behind (e.g. the first tick after start): only the newest
        // regular boundary in the range matters then.
        let last = through / self.interval_ms * self.interval_ms;
        if last > next {
            next = last;
        }
        if next <= through {
            crossed.push(next);
        }
        let forced = self.forced.load(Ordering::SeqCst);
        if forced > after && forced <= through && !crossed.contains(&forced) {
            crossed.push(forced);
            crossed.sort_unstable();
        }
        crossed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_in_a_range() {
        let b = Boundaries::new(10_000);
        assert_eq!(b.crossed(0, 9_000), Vec::<u64>::new());
        assert_eq!(b.crossed(9_000, 10_000), vec![10_000]);
        assert_eq!(b.crossed(10_000, 11_000), Vec::<u64>::new());
        // A long jump yields only the newest regular boundary.
        assert_eq!(b.crossed(0, 95_000), vec![90_000]);
        b.force(93_000);
        assert_eq!(b.crossed(0, 95_000), vec![90_000, 93_000]);
        assert_eq!(b.crossed(93_000, 95_000), Vec::<u64>::new());
    }
}
