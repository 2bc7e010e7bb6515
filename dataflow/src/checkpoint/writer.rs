//! The checkpoint writer: a thread that gathers the pieces of each boundary from every worker
//! and writes a segment and a manifest once a boundary is complete.
//!
//! Operators cross boundaries in increasing order, so once a boundary is complete every
//! operator has passed all earlier ones: an earlier boundary still missing pieces never will
//! be complete (an operator jumped over it). Its store pieces are carried into the complete
//! one (deltas compose: older first, newer panes replace), its source pieces dropped (the newer
//! offsets supersede them).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Instant;

use operators::series_pane::SeriesPane;
use serde::{Deserialize, Serialize};

use super::file::{self, CheckpointError, Kind};
use super::{Piece, PieceSender, SourcePiece, StorePiece};
use crate::kafka_source::PaneRecord;
use crate::series::SeriesKey;
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
        // Earlier boundaries will never complete: carry their store deltas forward.
        let mut carried: Vec<PaneRecord> = Vec::new();
        let later = self.gathering.split_off(&boundary);
        for (_, earlier) in std::mem::replace(&mut self.gathering, later) {
            for (_, piece) in earlier.stores {
                carried.extend(piece.panes);
            }
        }
        let Some(gathering) = self.gathering.remove(&boundary) else {
            return;
        };
        let started = Instant::now();
        match self.write(boundary, carried, gathering) {
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
                tracing::error!(%error, boundary, "writing checkpoint failed; the previous one stays in effect");
            }
        }
    }

    fn write(
        &mut self,
        boundary: u64,
        carried: Vec<PaneRecord>,
        gathering: Gathering,
    ) -> Result<Manifest, CheckpointError> {
        let mut segments = self
            .previous
            .as_ref()
            .map(|m| m.segments.clone())
            .unwrap_or_default();
        let mut compacted_bytes = self.previous.as_ref().map_or(0, |m| m.compacted_bytes);
        let mut panes = carried;
        let mut stores: Vec<StorePiece> = gathering.stores.into_values().collect();
        stores.sort_by_key(|p| p.worker);
        for piece in stores {
            panes.extend(piece.panes);
        }
        if !panes.is_empty() {
            let seq = self.next_seq;
            self.next_seq += 1;
            let bytes = file::write_atomic(&segment_path(&self.dir, seq), Kind::Segment, &panes)?;
            segments.push(SegmentRef { seq, bytes });
        }

        let mut offsets = self
            .previous
            .as_ref()
            .map(|m| m.offsets.clone())
            .unwrap_or_default();
        let mut pending = Vec::new();
        for (_, piece) in gathering.sources {
            offsets.extend(piece.offsets);
            pending.extend(piece.pending);
        }

        // Fold a long chain into one segment.
        let chain_bytes: u64 = segments.iter().map(|s| s.bytes).sum();
        if segments.len() > 1 && chain_bytes > 2 * compacted_bytes.max(1 << 20) {
            let state = replay_chain(
                &self.dir,
                &segments,
                boundary.saturating_sub(self.retention_ms),
            )?;
            let seq = self.next_seq;
            self.next_seq += 1;
            let bytes = file::write_atomic(&segment_path(&self.dir, seq), Kind::Segment, &state)?;
            segments = vec![SegmentRef { seq, bytes }];
            compacted_bytes = bytes;
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

/// Applies a chain of segments in order (later panes replace earlier ones), dropping panes
/// that end at or before `horizon`. Returns the state grouped by series.
pub fn replay_chain(
    dir: &Path,
    segments: &[SegmentRef],
    horizon: u64,
) -> Result<Vec<PaneRecord>, CheckpointError> {
    // Panes of each series in chain order; sorted once at the end, where a later pane with the
    // same end replaces an earlier one (a stable sort keeps chain order among equal ends).
    let mut state: HashMap<SeriesKey, Vec<(u64, SeriesPane)>> = HashMap::new();
    for segment in segments {
        let panes: Vec<PaneRecord> =
            file::read_verified(&segment_path(dir, segment.seq), Kind::Segment)?;
        for (series, list) in panes {
            state
                .entry(series)
                .or_default()
                .extend(list.into_iter().filter(|(end, _)| *end > horizon));
        }
    }
    Ok(state
        .into_iter()
        .filter(|(_, panes)| !panes.is_empty())
        .map(|(series, mut panes)| {
            panes.sort_by_key(|(end, _)| *end);
            let mut latest: Vec<(u64, SeriesPane)> = Vec::with_capacity(panes.len());
            for (end, partials) in panes {
                match latest.last_mut() {
                    Some(last) if last.0 == end => last.1 = partials,
                    _ => latest.push((end, partials)),
                }
            }
            (series, latest)
        })
        .collect())
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
