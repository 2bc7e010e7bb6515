//! The checkpoint writer: a thread that gathers the pieces of each boundary from every worker
//! and writes a segment and a manifest once a boundary is complete.
//!
//! Operators cross boundaries in increasing order, so once a boundary is complete every
//! operator has passed all earlier ones: an earlier boundary still missing pieces never will
//! be complete (an operator jumped over it). Its store pieces are carried into the complete
//! one (deltas compose: older first, newer panes replace), its source pieces dropped (the newer
//! offsets supersede them).
//!
//! A checkpoint that fails keeps its changes for the next one (folded, so that a run of
//! failures holds each pane once). One that fails because the chain it extends does not read
//! back (a segment damaged or gone, found when the chain is folded) cannot be retried on that
//! chain: the writer asks every series store for its whole state ([`Boundaries::request_full`]),
//! which each sends at the next boundary it crosses, and writes the first checkpoint by which
//! every store has sent it as a new chain: each store's state plus its changes since. The
//! previous checkpoints stay in effect until then.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Instant;

use operators::series_pane::SeriesPane;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::file::{self, CheckpointError, Kind};
use super::merge::{fold_records, open_chain, sort_by_series};
use super::{Boundaries, Piece, PieceSender, SourcePiece, StorePiece};
use crate::kafka_source::PaneRecord;
use crate::stats::PipelineStats;
use crate::time::now_ms;

/// How many manifests (and the segments they need) are kept.
pub const KEEP_MANIFESTS: usize = 3;

/// One segment of a manifest's chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentRef {
    /// Sequence number: the file is `segment-{seq}.ckpt`.
    pub seq: u64,
    /// Its size in bytes.
    pub bytes: u64,
}

/// The description of one checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The boundary: the state reflects every tick up to and including it.
    pub boundary: u64,
    /// Wall-clock time it was written, epoch ms.
    pub written_at: u64,
    /// Per partition, the offset of the first record not reflected; partitions absent here
    /// are read from their beginning.
    pub offsets: BTreeMap<i32, i64>,
    /// Panes stamped for ticks after the boundary, with their tick.
    pub pending: Vec<(u64, PaneRecord)>,
    /// The segments whose panes, applied in order, rebuild the state.
    pub segments: Vec<SegmentRef>,
    /// Size of the chain's first segment when it was last compacted.
    pub compacted_bytes: u64,
}

/// Path of segment `seq` in `dir`.
pub fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("segment-{seq:020}.ckpt"))
}

/// Path of the manifest of `boundary` in `dir`.
pub fn manifest_path(dir: &Path, boundary: u64) -> PathBuf {
    dir.join(format!("manifest-{boundary:020}.ckpt"))
}

/// Pieces of one boundary received so far.
#[derive(Default)]
struct Gathering {
    sources: HashMap<usize, SourcePiece>,
    stores: HashMap<usize, StorePiece>,
}

/// The running writer; see the module documentation.
pub struct CheckpointWriter {
    thread: Option<std::thread::JoinHandle<()>>,
}

struct WriterState {
    dir: PathBuf,
    workers: usize,
    retention_ms: u64,
    stats: Arc<PipelineStats>,
    previous: Option<Manifest>,
    next_seq: u64,
    kept: VecDeque<Manifest>,
    gathering: BTreeMap<u64, Gathering>,
    /// Pane changes of boundaries whose checkpoint failed, in chain order: no manifest holds
    /// them, so the next checkpoint must, or a restore from it would miss them.
    unwritten: Vec<PaneRecord>,
    /// Where the stores are asked for their whole state.
    boundaries: Boundaries,
    /// While a new chain is being started (the one being extended is unreadable): per store
    /// worker that sent its whole state, that state and its changes since.
    rebasing: Option<BTreeMap<usize, Vec<PaneRecord>>>,
}

impl CheckpointWriter {
    /// Starts the writer for a dataflow of `workers` workers, continuing the chain of
    /// `previous` (the checkpoint restored at start, if any).
    pub fn start(
        dir: PathBuf,
        workers: usize,
        retention_ms: u64,
        previous: Option<Manifest>,
        stats: Arc<PipelineStats>,
        boundaries: Boundaries,
    ) -> Result<(CheckpointWriter, PieceSender), CheckpointError> {
        std::fs::create_dir_all(&dir).map_err(|source| CheckpointError::Io {
            path: dir.clone(),
            source,
        })?;
        let next_seq = existing_segments(&dir)
            .into_iter()
            .max()
            .map_or(0, |s| s + 1);
        let (sender, receiver) = mpsc::channel();
        let mut state = WriterState {
            dir,
            workers,
            retention_ms,
            stats,
            kept: previous.iter().cloned().collect(),
            previous,
            next_seq,
            gathering: BTreeMap::new(),
            unwritten: Vec::new(),
            boundaries,
            rebasing: None,
        };
        let thread = std::thread::Builder::new()
            .name("checkpoint-writer".into())
            .spawn(move || {
                for piece in receiver {
                    state.receive(piece);
                }
            })
            .map_err(|source| CheckpointError::Io {
                path: PathBuf::from("checkpoint-writer thread"),
                source,
            })?;
        Ok((
            CheckpointWriter {
                thread: Some(thread),
            },
            PieceSender(sender),
        ))
    }

    /// Waits until every piece sent has been handled (all senders must be dropped first).
    pub fn finish(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl WriterState {
    fn receive(&mut self, piece: Piece) {
        let boundary = match &piece {
            Piece::Source(p) => p.boundary,
            Piece::Store(p) => p.boundary,
        };
        if self
            .previous
            .as_ref()
            .is_some_and(|m| boundary <= m.boundary)
        {
            return; // already covered by a written checkpoint
        }
        let gathering = self.gathering.entry(boundary).or_default();
        match piece {
            Piece::Source(p) => {
                gathering.sources.insert(p.worker, p);
            }
            Piece::Store(p) => {
                gathering.stores.insert(p.worker, p);
            }
        }
        if gathering.sources.len() == self.workers && gathering.stores.len() == self.workers {
            self.complete(boundary);
        }
    }

    fn complete(&mut self, boundary: u64) {
        let Some(gathering) = self.gathering.remove(&boundary) else {
            return;
        };
        // The store pieces this checkpoint covers, oldest first: those of earlier boundaries
        // that will never complete (carried forward), then this one's.
        let later = self.gathering.split_off(&boundary);
        let mut pieces: Vec<StorePiece> = Vec::new();
        for (_, earlier) in std::mem::replace(&mut self.gathering, later) {
            pieces.extend(by_worker(earlier.stores));
        }
        pieces.extend(by_worker(gathering.stores));
        let sources = gathering.sources;
        let (mut panes, fresh) = match self.rebasing.as_mut() {
            None => {
                // Those of failed checkpoints come first.
                let mut panes = std::mem::take(&mut self.unwritten);
                panes.extend(pieces.into_iter().flat_map(|piece| piece.panes));
                (panes, false)
            }
            Some(states) => {
                // A store's whole state replaces what it sent before; its changes after it
                // are kept; changes of a store that has not sent its state yet are dropped.
                for piece in pieces {
                    if piece.full {
                        states.insert(piece.worker, piece.panes);
                    } else if let Some(state) = states.get_mut(&piece.worker) {
                        state.extend(piece.panes);
                    }
                }
                if states.len() < self.workers {
                    tracing::info!(
                        boundary,
                        stores = states.len(),
                        of = self.workers,
                        "no checkpoint yet: waiting for every store's whole state to start a new chain"
                    );
                    return;
                }
                let states = std::mem::take(states);
                self.rebasing = None;
                (states.into_values().flatten().collect::<Vec<_>>(), true)
            }
        };
        let started = Instant::now();
        match self.write(boundary, &mut panes, sources, fresh) {
            Ok(manifest) => {
                let bytes: u64 = manifest.segments.iter().map(|s| s.bytes).sum();
                self.stats
                    .checkpoint_boundary
                    .store(boundary, Ordering::Relaxed);
                self.stats
                    .checkpoint_written_at
                    .store(manifest.written_at, Ordering::Relaxed);
                self.stats.checkpoint_bytes.store(bytes, Ordering::Relaxed);
                self.stats
                    .checkpoint_duration_us
                    .store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                tracing::debug!(
                    boundary,
                    bytes,
                    segments = manifest.segments.len(),
                    "checkpoint written"
                );
                self.kept.push_back(manifest.clone());
                self.previous = Some(manifest);
                self.collect_garbage();
            }
            Err(error) => {
                self.stats
                    .checkpoint_failures
                    .fetch_add(1, Ordering::Relaxed);
                if fresh || chain_broken(&error) {
                    // Changes cannot go on a chain that does not restore: start a new one from
                    // every store's whole state.
                    tracing::error!(%error, boundary, "writing checkpoint failed and the chain of segments is unusable; asking every store for its whole state to start a new chain (the previous checkpoints stay in effect meanwhile)");
                    self.unwritten = Vec::new();
                    self.rebasing = Some(BTreeMap::new());
                    self.boundaries.request_full();
                } else {
                    tracing::error!(%error, boundary, "writing checkpoint failed; the previous one stays in effect, and the next one will hold this one's changes");
                    // Folded: however many checkpoints fail in a row, what is held is at most
                    // one pane per series and end, not every interval's changes.
                    self.unwritten = fold_records(panes);
                }
            }
        }
    }

    /// Writes the checkpoint of `boundary`: a segment of `panes` (the changes since the
    /// previous checkpoint, oldest first; sorted here) and a manifest with the sources' offsets.
    ///
    /// `fresh`: `panes` is the whole state, the first segment of a new chain.
    fn write(
        &mut self,
        boundary: u64,
        panes: &mut [PaneRecord],
        sources: HashMap<usize, SourcePiece>,
        fresh: bool,
    ) -> Result<Manifest, CheckpointError> {
        let chained = self.previous.as_ref().filter(|_| !fresh);
        let mut segments = chained.map(|m| m.segments.clone()).unwrap_or_default();
        let mut compacted_bytes = chained.map_or(0, |m| m.compacted_bytes);
        if !panes.is_empty() {
            // Sorted, so that chains merge as streams; carried pieces stay before the current
            // ones for the same series.
            sort_by_series(panes);
            let seq = self.next_seq;
            self.next_seq += 1;
            let bytes = file::write_segment(
                &segment_path(&self.dir, seq),
                panes.iter().map(Ok::<_, CheckpointError>),
            )?;
            segments.push(SegmentRef { seq, bytes });
            if fresh {
                compacted_bytes = bytes;
            }
        }

        let mut offsets = self
            .previous
            .as_ref()
            .map(|m| m.offsets.clone())
            .unwrap_or_default();
        let mut pending = Vec::new();
        for (_, piece) in sources {
            offsets.extend(piece.offsets);
            pending.extend(piece.pending);
        }

        // Fold a long chain into one segment.
        let chain_bytes: u64 = segments.iter().map(|s| s.bytes).sum();
        if segments.len() > 1 && chain_bytes > 2 * compacted_bytes.max(1 << 20) {
            let seq = self.next_seq;
            self.next_seq += 1;
            let horizon = boundary.saturating_sub(self.retention_ms);
            if let Some(segment) = compact::<SeriesPane>(&self.dir, &segments, horizon, seq)? {
                compacted_bytes = segment.bytes;
                segments = vec![segment];
            }
        }

        let manifest = Manifest {
            boundary,
            written_at: now_ms(),
            offsets,
            pending,
            segments,
            compacted_bytes,
        };
        file::write_atomic(
            &manifest_path(&self.dir, boundary),
            Kind::Manifest,
            &manifest,
        )?;
        Ok(manifest)
    }

    /// Keeps the newest manifests and the segments they reference; removes the rest.
    fn collect_garbage(&mut self) {
        while self.kept.len() > KEEP_MANIFESTS {
            if let Some(old) = self.kept.pop_front() {
                let _ = std::fs::remove_file(manifest_path(&self.dir, old.boundary));
            }
        }
        let live: std::collections::HashSet<u64> = self
            .kept
            .iter()
            .flat_map(|m| m.segments.iter().map(|s| s.seq))
            .collect();
        for seq in existing_segments(&self.dir) {
            if !live.contains(&seq) && seq < self.next_seq {
                let _ = std::fs::remove_file(segment_path(&self.dir, seq));
            }
        }
        // Manifests not kept (e.g. from before a restore that picked an older one).
        for boundary in existing_manifests(&self.dir) {
            if !self.kept.iter().any(|m| m.boundary == boundary) {
                let _ = std::fs::remove_file(manifest_path(&self.dir, boundary));
            }
        }
    }
}

/// Store pieces in worker order.
fn by_worker(stores: HashMap<usize, StorePiece>) -> Vec<StorePiece> {
    let mut stores: Vec<StorePiece> = stores.into_values().collect();
    stores.sort_by_key(|piece| piece.worker);
    stores
}

/// Folds the chain `segments` (in `dir`) into one segment, `seq`, merging their record streams
/// (see [`merge`](super::merge)): memory for a record per segment, not for the state.
///
/// `Ok(None)`: the chain could not be compacted now (e.g. a full disk, too many open files;
/// logged); it stays as it is and the checkpoint is written with it. `Err`: a segment of the
/// chain is missing, torn, altered or of another format. No checkpoint may then be written over
/// the chain (it would not restore): the error fails this checkpoint, and the previous ones
/// stay in effect. Either way nothing of the new segment is left behind.
fn compact<P: Serialize + DeserializeOwned + Send + 'static>(
    dir: &Path,
    segments: &[SegmentRef],
    horizon: u64,
    seq: u64,
) -> Result<Option<SegmentRef>, CheckpointError> {
    let path = segment_path(dir, seq);
    let written = open_chain::<P>(dir, segments, horizon, 1)
        .and_then(|merged| file::write_segment(&path, merged));
    match written {
        Ok(bytes) => Ok(Some(SegmentRef { seq, bytes })),
        Err(error) if chain_broken(&error) => Err(error),
        Err(error) => {
            tracing::warn!(%error, "compacting the checkpoint chain failed; it stays as it is");
            Ok(None)
        }
    }
}

/// Whether a compaction's error means the chain cannot be restored, rather than that it could
/// not be compacted now.
fn chain_broken(error: &CheckpointError) -> bool {
    match error {
        CheckpointError::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
        CheckpointError::Corrupt { .. }
        | CheckpointError::Version { .. }
        | CheckpointError::Layout { .. } => true,
    }
}

fn numbered(dir: &Path, prefix: &str) -> Vec<u64> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_prefix(prefix)?
                .strip_suffix(".ckpt")?
                .parse()
                .ok()
        })
        .collect()
}

/// Sequence numbers of the segment files in `dir`.
pub fn existing_segments(dir: &Path) -> Vec<u64> {
    numbered(dir, "segment-")
}

/// Boundaries of the manifest files in `dir`.
pub fn existing_manifests(dir: &Path) -> Vec<u64> {
    numbered(dir, "manifest-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::merge::SeriesPanes;
    use crate::checkpoint::testing::{
        damage_last_byte, replay_chain, series, temp_dir, write_chain,
    };
    use crate::series::SeriesKey;

    /// Series repeated within and across segments, pane ends repeated across segments, panes
    /// at or before the horizon (3), a series left with none of its panes, an empty segment.
    fn chain() -> Vec<Vec<SeriesPanes<u32>>> {
        vec![
            vec![
                (series(0), vec![(1, 10), (4, 10)]),
                (series(1), vec![(2, 10)]),
                (series(2), vec![(4, 10), (5, 10)]),
            ],
            vec![(series(2), vec![(5, 20)]), (series(0), vec![(4, 20)])],
            vec![],
            vec![
                (series(2), vec![(5, 30), (6, 30)]),
                (series(2), vec![(6, 31)]),
                (series(3), vec![(9, 30)]),
            ],
        ]
    }

    /// Every file in `dir` with its bytes.
    fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .expect("dir")
            .map(|e| e.expect("entry").path())
            .map(|path| {
                let bytes = std::fs::read(&path).unwrap_or_default();
                (path, bytes)
            })
            .collect();
        files.sort();
        files
    }

    #[test]
    fn compaction_writes_the_state_the_chain_rebuilds() {
        let dir = temp_dir("compact");
        let segments = write_chain(&dir, chain());
        let expected = replay_chain::<u32>(&dir, &segments, 3).expect("oracle");
        let compacted = compact::<u32>(&dir, &segments, 3, 9)
            .expect("compacted")
            .expect("written");
        let state: Vec<SeriesPanes<u32>> = file::read_segment(&segment_path(&dir, 9))
            .expect("open")
            .collect::<Result<_, _>>()
            .expect("read");
        assert_eq!(state, expected);
        assert_eq!(state[0], (series(0), vec![(4, 20)]));
        assert_eq!(compacted.seq, 9);
        assert!(!segment_path(&dir, 9).with_extension("tmp").exists());
    }

    #[test]
    fn a_corrupt_segment_fails_compaction_and_leaves_the_previous_chain() {
        let dir = temp_dir("compact-corrupt");
        let segments = write_chain(&dir, chain());
        // The newest segment is damaged where only its checksum tells, after its records have
        // been merged; the previous checkpoint's chain is the others.
        let (previous, newest) = segments.split_at(segments.len() - 1);
        damage_last_byte(&segment_path(&dir, newest[0].seq));
        let before = files(&dir);
        match compact::<u32>(&dir, &segments, 3, 9) {
            Err(CheckpointError::Corrupt { reason, .. }) => assert_eq!(reason, "checksum mismatch"),
            other => panic!("expected a corrupt segment, got {other:?}"),
        }
        assert_eq!(files(&dir), before, "nothing written, removed or changed");
        let restored = open_chain::<u32>(&dir, previous, 3, 1)
            .expect("opened")
            .collect::<Result<Vec<_>, _>>()
            .expect("the previous chain restores");
        assert_eq!(restored, replay_chain(&dir, previous, 3).expect("oracle"));
    }

    #[test]
    fn a_compaction_that_cannot_write_keeps_the_chain() {
        let dir = temp_dir("compact-unwritable");
        let segments = write_chain(&dir, chain());
        // The new segment's name is taken by a directory: the rename fails.
        std::fs::create_dir_all(segment_path(&dir, 9).join("taken")).expect("dir");
        let outcome = compact::<u32>(&dir, &segments, 3, 9);
        assert!(matches!(outcome, Ok(None)), "{outcome:?}");
        assert!(!segment_path(&dir, 9).with_extension("tmp").exists());
    }

    /// Records of `count` series with no panes, about 1 KB each: enough bytes to make the
    /// writer compact, without naming the pane type.
    fn bulky(boundary: u64, count: usize) -> Vec<PaneRecord> {
        (0..count)
            .map(|i| {
                let metric = format!("{boundary}-{i}-{}", "x".repeat(1000));
                (
                    SeriesKey {
                        metric,
                        tags: vec![],
                    },
                    Vec::new(),
                )
            })
            .collect()
    }

    /// A writer of one worker, with a retention nothing outlives, starting a new chain in `dir`.
    fn writer(dir: &Path, stats: &Arc<PipelineStats>) -> WriterState {
        WriterState {
            dir: dir.to_path_buf(),
            workers: 1,
            retention_ms: 1 << 40,
            stats: stats.clone(),
            previous: None,
            next_seq: 0,
            kept: VecDeque::new(),
            gathering: BTreeMap::new(),
            unwritten: Vec::new(),
            boundaries: Boundaries::new(10),
            rebasing: None,
        }
    }

    fn checkpoint(state: &mut WriterState, boundary: u64, panes: Vec<PaneRecord>) {
        state.receive(Piece::Source(SourcePiece {
            worker: 0,
            boundary,
            offsets: vec![(0, boundary as i64)],
            pending: Vec::new(),
        }));
        state.receive(Piece::Store(StorePiece {
            worker: 0,
            boundary,
            panes,
            full: false,
        }));
    }

    #[test]
    fn a_failed_compaction_fails_the_checkpoint_and_keeps_the_previous_ones() {
        let dir = temp_dir("writer-corrupt");
        let stats = Arc::new(PipelineStats::default());
        let mut state = writer(&dir, &stats);
        checkpoint(&mut state, 10, bulky(10, 700));
        checkpoint(&mut state, 20, bulky(20, 700));
        assert_eq!(state.previous.as_ref().map(|m| m.segments.len()), Some(2));
        damage_last_byte(&segment_path(&dir, 0));
        let before = files(&dir);

        // Past twice the 1 MiB floor: compaction, which meets the damaged segment.
        checkpoint(&mut state, 30, bulky(30, 700));
        assert_eq!(stats.checkpoint_failures.load(Ordering::Relaxed), 1);
        assert_eq!(state.previous.as_ref().map(|m| m.boundary), Some(20));
        assert!(!manifest_path(&dir, 30).exists());
        let after = files(&dir);
        for file in &before {
            assert!(after.contains(file), "{} changed", file.0.display());
        }
        assert!(
            !after
                .iter()
                .any(|(path, _)| path.extension().is_some_and(|e| e == "tmp"))
        );
    }

    #[test]
    fn the_changes_of_a_failed_checkpoint_are_in_the_next_one() {
        let dir = temp_dir("writer-failed");
        let stats = Arc::new(PipelineStats::default());
        let mut state = writer(&dir, &stats);
        let change = |s: usize, end: u64| (series(s), vec![(end, SeriesPane::one(end - 1, 1.5))]);
        checkpoint(&mut state, 10, vec![change(0, 1_000), change(1, 1_000)]);
        // The next segments' names are taken by directories: those checkpoints fail.
        let blocked: Vec<PathBuf> = (0..8)
            .map(|n| segment_path(&dir, state.next_seq + n))
            .collect();
        for path in &blocked {
            std::fs::create_dir_all(path.join("taken")).expect("dir");
        }
        checkpoint(&mut state, 20, vec![change(1, 2_000), change(2, 2_000)]);
        // Failing again and again with the same panes changed holds them once.
        for boundary in [22, 24, 26] {
            checkpoint(
                &mut state,
                boundary,
                vec![change(1, 2_000), change(2, 2_000)],
            );
        }
        assert_eq!(stats.checkpoint_failures.load(Ordering::Relaxed), 4);
        let held: usize = state.unwritten.iter().map(|(_, panes)| panes.len()).sum();
        assert_eq!(held, 2, "one pane per series and end");
        assert_eq!(state.previous.as_ref().map(|m| m.boundary), Some(10));
        for path in &blocked {
            std::fs::remove_dir_all(path).expect("unblocked");
        }
        checkpoint(&mut state, 30, vec![change(2, 3_000)]);
        let manifest: Manifest =
            file::read_verified(&manifest_path(&dir, 30), Kind::Manifest).expect("manifest 30");
        let restored: Vec<PaneRecord> = open_chain::<SeriesPane>(&dir, &manifest.segments, 0, 2)
            .expect("opened")
            .collect::<Result<_, _>>()
            .expect("restores");
        let ends: Vec<(SeriesKey, Vec<u64>)> = restored
            .into_iter()
            .map(|(key, panes)| (key, panes.into_iter().map(|(end, _)| end).collect()))
            .collect();
        let mut expected = vec![
            (series(0), vec![1_000]),
            (series(1), vec![1_000, 2_000]),
            (series(2), vec![2_000, 3_000]),
        ];
        expected.sort(); // a chain restores in series order
        assert_eq!(ends, expected);
        assert!(state.unwritten.is_empty());
    }

    /// Both workers' pieces of `boundary`; `full` says which workers send their whole state.
    fn two_workers(state: &mut WriterState, boundary: u64, pieces: [(Vec<PaneRecord>, bool); 2]) {
        for (worker, (panes, full)) in pieces.into_iter().enumerate() {
            state.receive(Piece::Source(SourcePiece {
                worker,
                boundary,
                offsets: vec![(worker as i32, boundary as i64)],
                pending: Vec::new(),
            }));
            state.receive(Piece::Store(StorePiece {
                worker,
                boundary,
                panes,
                full,
            }));
        }
    }

    #[test]
    fn an_unreadable_chain_is_replaced_by_a_new_one_from_every_stores_whole_state() {
        let dir = temp_dir("writer-rebase");
        let stats = Arc::new(PipelineStats::default());
        let mut state = writer(&dir, &stats);
        state.workers = 2;
        let pane = |s: usize, end: u64, value: f64| {
            (series(s), vec![(end, SeriesPane::one(end - 1, value))])
        };
        two_workers(
            &mut state,
            10,
            [(bulky(10, 700), false), (vec![pane(1, 1_000, 1.0)], false)],
        );
        two_workers(
            &mut state,
            20,
            [(bulky(20, 700), false), (Vec::new(), false)],
        );
        damage_last_byte(&segment_path(&dir, 0));
        // Compaction meets the damaged segment: the stores are asked for their whole state.
        two_workers(
            &mut state,
            30,
            [(bulky(30, 700), false), (Vec::new(), false)],
        );
        assert_eq!(state.boundaries.full_requests(), 1);
        assert_eq!(state.previous.as_ref().map(|m| m.boundary), Some(20));

        // Worker 0 answers at 40, worker 1 (behind) only at 50; changes before a store's whole
        // state are dropped, changes after it kept.
        two_workers(
            &mut state,
            40,
            [
                (vec![pane(0, 4_000, 4.0)], true),
                (vec![pane(1, 4_000, 99.0)], false),
            ],
        );
        assert!(
            !manifest_path(&dir, 40).exists(),
            "not every store's state yet"
        );
        two_workers(
            &mut state,
            50,
            [
                (vec![pane(0, 5_000, 5.0)], false),
                (
                    vec![(
                        series(1),
                        vec![
                            (1_000, SeriesPane::one(999, 1.0)),
                            (4_000, SeriesPane::one(3_999, 7.0)),
                        ],
                    )],
                    true,
                ),
            ],
        );
        let manifest: Manifest =
            file::read_verified(&manifest_path(&dir, 50), Kind::Manifest).expect("manifest 50");
        assert_eq!(manifest.segments.len(), 1, "a new chain of one segment");
        assert!(manifest.segments[0].seq > 2, "not the damaged chain");
        assert_eq!(manifest.offsets, [(0, 50), (1, 50)].into());
        let restored: Vec<PaneRecord> = open_chain::<SeriesPane>(&dir, &manifest.segments, 0, 1)
            .expect("opened")
            .collect::<Result<_, _>>()
            .expect("the new chain restores");
        let mut expected = vec![
            (
                series(0),
                vec![
                    (4_000, SeriesPane::one(3_999, 4.0)),
                    (5_000, SeriesPane::one(4_999, 5.0)),
                ],
            ),
            (
                series(1),
                vec![
                    (1_000, SeriesPane::one(999, 1.0)),
                    (4_000, SeriesPane::one(3_999, 7.0)),
                ],
            ),
        ];
        expected.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(restored, expected);
        assert!(state.rebasing.is_none());

        // The new chain goes on with changes as before.
        two_workers(
            &mut state,
            60,
            [(vec![pane(0, 6_000, 6.0)], false), (Vec::new(), false)],
        );
        assert_eq!(
            state
                .previous
                .as_ref()
                .map(|m| (m.boundary, m.segments.len())),
            Some((60, 2))
        );
    }
}
