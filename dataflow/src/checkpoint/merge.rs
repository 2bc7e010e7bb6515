//! Rebuilding the state a chain of segments holds, one series at a time: a merge of the
//! segments' sorted record streams.
//!
//! Every segment holds its records sorted by series ([`sort_by_series`]), so the state the
//! chain rebuilds comes out of a k-way merge in series order: for each series, its panes from
//! every segment in chain order, a later pane replacing an earlier one with the same end, panes
//! ending at or before the retention horizon dropped, and a series left without panes dropped.
//! The merge holds one record per segment and the panes of one series, never the whole state
//! (which can be gigabytes), so compacting a chain ([`writer`](super::writer)) and restoring it
//! ([`restore`](super::restore)) run in bounded memory.
//!
//! The merge is generic over the pane type, so it does not depend on what a pane holds.
//!
//! # Examples
//!
//! ```
//! use dataflow::checkpoint::merge::ChainMerge;
//! use dataflow::series::SeriesKey;
//!
//! let a = SeriesKey { metric: "a".into(), tags: vec![] };
//! let b = SeriesKey { metric: "b".into(), tags: vec![] };
//! let older = vec![(a.clone(), vec![(10, "a10"), (20, "a20")]), (b.clone(), vec![(10, "b10")])];
//! let newer = vec![(a.clone(), vec![(20, "a20'"), (30, "a30")])];
//! let segments = [older, newer].map(|s| (std::path::PathBuf::new(), s.into_iter().map(Ok)));
//! // Panes ending at or before 10 are past the retention.
//! let state: Vec<_> = ChainMerge::new(segments.into(), 10)
//!     .collect::<Result<_, _>>()
//!     .expect("in-memory segments do not fail");
//! assert_eq!(state, vec![(a, vec![(20, "a20'"), (30, "a30")])]);
//! ```

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::file::{self, CheckpointError, SegmentReader};
use super::writer::{SegmentRef, segment_path};
use crate::series::SeriesKey;

/// The panes of one series, `(pane end, pane)`: a
/// [`PaneRecord`](crate::kafka_source::PaneRecord) with any pane type.
pub type SeriesPanes<P> = (SeriesKey, Vec<(u64, P)>);

/// Sorts a segment's records by series before it is written. The sort is stable: records of
/// the same series stay in the order they came in (earlier boundaries' first), so later panes
/// still replace earlier ones.
pub fn sort_by_series<P>(records: &mut [SeriesPanes<P>]) {
    records.sort_by(|a, b| a.0.cmp(&b.0));
}

/// Folds `records` (oldest first) into one record per series, in series order, each with the
/// latest pane of every end: what applying them in order leaves, as the merge of a chain of
/// one segment. For changes held in memory, which must not grow with every interval they are
/// held.
pub fn fold_records<P>(mut records: Vec<SeriesPanes<P>>) -> Vec<SeriesPanes<P>> {
    // Stable: the records of one series stay oldest first.
    sort_by_series(&mut records);
    let input = (PathBuf::new(), records.into_iter().map(Ok));
    // Sorted and in memory: the merge has nothing to fail on.
    ChainMerge::new(vec![input], 0)
        .filter_map(Result::ok)
        .collect()
}

/// Segments at least this large are decoded in parallel when asked to.
const PARALLEL_BYTES: u64 = 16 << 20;

/// Opens the segments of a chain (in `dir`, in chain order) and merges them; see
/// [`ChainMerge`]. Every segment is open until the merge ends. With `threads` above one, each
/// segment's blocks are decoded by that many threads ([`file::read_segment_parallel`]); the
/// largest segment of a chain holds most of the state.
pub fn open_chain<P: DeserializeOwned + Send + 'static>(
    dir: &Path,
    segments: &[SegmentRef],
    horizon: u64,
    threads: usize,
) -> Result<ChainMerge<P, SegmentReader<SeriesPanes<P>>>, CheckpointError> {
    let mut inputs = Vec::with_capacity(segments.len());
    for segment in segments {
        let path = segment_path(dir, segment.seq);
        let records = if threads > 1 && segment.bytes >= PARALLEL_BYTES {
            file::read_segment_parallel(&path, threads)?
        } else {
            file::read_segment(&path)?
        };
        inputs.push((path, records));
    }
    Ok(ChainMerge::new(inputs, horizon))
}

/// The state a chain of segments rebuilds, one series at a time in series order (see the
/// module documentation). Built from each segment's records in chain order, each with its path
/// (for errors).
///
/// Yields an error, and then ends, when a segment does (a read or verification failure, which
/// may come after the segment's last record) or is not sorted. Nothing built from the merge
/// may be committed before it has returned `None`: only then has every segment been verified.
pub struct ChainMerge<P, I> {
    inputs: Vec<Input<P, I>>,
    horizon: u64,
    failed: bool,
}

/// One segment of a merge: its records, and the next one not merged yet.
struct Input<P, I> {
    path: PathBuf,
    records: I,
    head: Option<SeriesPanes<P>>,
    started: bool,
}

impl<P, I> ChainMerge<P, I>
where
    I: Iterator<Item = Result<SeriesPanes<P>, CheckpointError>>,
{
    /// Merges `segments` (in chain order) and drops panes ending at or before `horizon`.
    pub fn new(segments: Vec<(PathBuf, I)>, horizon: u64) -> Self {
        let inputs = segments
            .into_iter()
            .map(|(path, records)| Input {
                path,
                records,
                head: None,
                started: false,
            })
            .collect();
        ChainMerge {
            inputs,
            horizon,
            failed: false,
        }
    }

    /// The next series with panes left, or `None` at the end of every segment.
    fn next_series(&mut self) -> Result<Option<SeriesPanes<P>>, CheckpointError> {
        for input in self.inputs.iter_mut().filter(|i| !i.started) {
            input.started = true;
            input.head = input.records.next().transpose()?;
        }
        loop {
            // The least series any segment holds next. A linear scan: a chain has few segments
            // next to the panes decoded per series.
            let Some(series) = self
                .inputs
                .iter()
                .filter_map(|i| i.head.as_ref().map(|(series, _)| series))
                .min()
                .cloned()
            else {
                return Ok(None);
            };
            let mut panes = Vec::new();
            for input in &mut self.inputs {
                while input.head.as_ref().is_some_and(|(s, _)| *s == series) {
                    if let Some((_, list)) = input.head.take() {
                        panes.extend(list.into_iter().filter(|(end, _)| *end > self.horizon));
                    }
                    input.advance(&series)?;
                }
            }
            if !panes.is_empty() {
                return Ok(Some((series, latest_per_end(panes))));
            }
        }
    }
}

impl<P, I> Input<P, I>
where
    I: Iterator<Item = Result<SeriesPanes<P>, CheckpointError>>,
{
    /// Reads the record after the one of `series`, just merged.
    fn advance(&mut self, series: &SeriesKey) -> Result<(), CheckpointError> {
        self.head = self.records.next().transpose()?;
        if self.head.as_ref().is_some_and(|(next, _)| next < series) {
            return Err(CheckpointError::Corrupt {
                path: self.path.clone(),
                reason: "records are not sorted by series".into(),
            });
        }
        Ok(())
    }
}

/// One pane per end, in order of end: of panes with the same end, the last one (the chain's
/// newest). `panes` are in chain order; within a segment's record they are usually sorted
/// already, so the stable sort mostly merges runs.
fn latest_per_end<P>(mut panes: Vec<(u64, P)>) -> Vec<(u64, P)> {
    panes.sort_by_key(|(end, _)| *end);
    let mut latest: Vec<(u64, P)> = Vec::with_capacity(panes.len());
    for (end, pane) in panes {
        match latest.last_mut() {
            Some(last) if last.0 == end => last.1 = pane,
            _ => latest.push((end, pane)),
        }
    }
    latest
}

impl<P, I> Iterator for ChainMerge<P, I>
where
    I: Iterator<Item = Result<SeriesPanes<P>, CheckpointError>>,
{
    type Item = Result<SeriesPanes<P>, CheckpointError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let next = self.next_series().transpose();
        self.failed = matches!(next, Some(Err(_)));
        next
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::checkpoint::testing::{
        damage_last_byte, replay, replay_chain, series, temp_dir, write_chain,
    };

    type Chain = Vec<Vec<SeriesPanes<u32>>>;

    /// Chains of up to 5 segments (some empty) over 7 series and 12 pane ends: series repeat
    /// within a segment and across segments, ends repeat across segments and within a record.
    fn chains() -> impl Strategy<Value = Chain> {
        let panes = prop::collection::vec((0u64..12, any::<u32>()), 0..4);
        let record = (0usize..7, panes).prop_map(|(index, panes)| (series(index), panes));
        let segment = prop::collection::vec(record, 0..8);
        prop::collection::vec(segment, 1..6)
    }

    fn merged_in_memory(mut chain: Chain, horizon: u64) -> Result<Chain, CheckpointError> {
        let inputs = chain
            .iter_mut()
            .map(|segment| {
                sort_by_series(segment);
                (PathBuf::new(), std::mem::take(segment).into_iter().map(Ok))
            })
            .collect();
        ChainMerge::new(inputs, horizon)
            .collect::<Result<Vec<_>, _>>()
            .map(|state| vec![state])
    }

    proptest! {
        #[test]
        fn merge_matches_the_oracle(chain in chains(), horizon in 0u64..12) {
            let expected = replay(chain.clone(), horizon);
            let merged = merged_in_memory(chain, horizon).expect("merged");
            prop_assert_eq!(&merged[0], &expected);
        }
    }

    proptest! {
        #[test]
        fn folded_records_match_the_oracle(chain in chains()) {
            let records: Vec<SeriesPanes<u32>> = chain.into_iter().flatten().collect();
            let expected = replay(vec![records.clone()], 0);
            prop_assert_eq!(fold_records(records), expected);
        }
    }

    proptest! {
        // Fewer cases: each writes and syncs its segments.
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn merge_of_segment_files_matches_the_oracle(chain in chains(), horizon in 0u64..12) {
            let dir = temp_dir("merge");
            let segments = write_chain(&dir, chain);
            let expected = replay_chain::<u32>(&dir, &segments, horizon).expect("oracle");
            let merged = open_chain::<u32>(&dir, &segments, horizon, 1)
                .expect("opened")
                .collect::<Result<Vec<_>, _>>()
                .expect("merged");
            prop_assert_eq!(merged, expected);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    #[test]
    fn later_segments_and_later_records_win() {
        let a = series(0);
        let chain = vec![
            vec![(a.clone(), vec![(5, 1), (6, 1)])],
            // The same series twice in a segment: carried, then current.
            vec![(a.clone(), vec![(6, 2)]), (a.clone(), vec![(6, 3), (7, 3)])],
            vec![],
        ];
        let merged = merged_in_memory(chain, 5).expect("merged");
        assert_eq!(merged[0], vec![(a, vec![(6, 3), (7, 3)])]);
    }

    #[test]
    fn an_unsorted_segment_is_refused() {
        let records = vec![(series(3), vec![(1, 1)]), (series(0), vec![(1, 1)])];
        let path = PathBuf::from("segment-unsorted");
        let mut merge = ChainMerge::new(vec![(path, records.into_iter().map(Ok))], 0);
        assert!(matches!(
            merge.next(),
            Some(Err(CheckpointError::Corrupt { reason, .. })) if reason.contains("not sorted")
        ));
        assert!(merge.next().is_none(), "a merge ends after an error");
    }

    #[test]
    fn a_segment_failing_verification_fails_the_merge_at_its_end() {
        let dir = temp_dir("merge-damaged");
        let chain = vec![
            vec![(series(0), vec![(1, 1)]), (series(4), vec![(1, 1)])],
            vec![(series(1), vec![(1, 2)]), (series(2), vec![(1, 2)])],
        ];
        let segments = write_chain(&dir, chain);
        damage_last_byte(&segment_path(&dir, 1));
        let results: Vec<_> = open_chain::<u32>(&dir, &segments, 0, 1)
            .expect("opened")
            .collect();
        // Records come out before the damage is known; the merge then fails and ends.
        assert!(results.iter().take(results.len() - 1).all(Result::is_ok));
        assert!(matches!(
            results.last(),
            Some(Err(CheckpointError::Corrupt { reason, .. })) if reason == "checksum mismatch"
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
