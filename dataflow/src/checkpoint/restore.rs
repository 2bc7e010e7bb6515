//! Restoring on start: the newest checkpoint whose manifests and segments all verify.
//!
//! A single process keeps its checkpoints in the checkpoint directory itself. The processes of
//! a timely cluster each keep theirs in `p{index}of{processes}/` under a directory they share;
//! a cluster restores the newest boundary that *every* process wrote and that verifies, so the
//! processes restore one consistent state. When the cluster's shape is the same as when the
//! checkpoint was written, each process feeds back its own chain (its workers own the same
//! series again) and keeps writing it; when the shape changed (another number of processes),
//! process 0 feeds back every chain, the series stores redistribute the panes, and new chains
//! start with them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::{Scope, Stream};

use super::file::{self, CheckpointError, Kind};
use super::merge::open_chain;
use super::writer::{Manifest, existing_manifests, manifest_path};
use crate::kafka_source::PaneRecord;

/// Where process `process` of `processes` keeps its checkpoints under `root`.
pub fn process_dir(root: &Path, process: usize, processes: usize) -> PathBuf {
    if processes <= 1 {
        root.to_path_buf()
    } else {
        root.join(format!("p{process}of{processes}"))
    }
}

/// What one process restores.
#[derive(Debug)]
pub struct Restored {
    /// The boundary: the state reflects every tick up to and including it.
    pub boundary: u64,
    /// Per partition, the offset of the first record not reflected (from every process).
    pub offsets: BTreeMap<i32, i64>,
    /// The series panes this process feeds back.
    pub panes: Vec<PaneRecord>,
    /// The pending panes this process feeds back, with their ticks.
    pub pending: Vec<(u64, PaneRecord)>,
    /// This process's own manifest when the checkpoint was written by a cluster of the same
    /// shape: its writer continues that chain. `None`: the restored panes go into new chains.
    pub chain: Option<Manifest>,
}

/// Loads what process `process` of `processes` restores from the checkpoints under `root`:
/// the newest boundary every process of the writing cluster checkpointed and that verifies
/// (torn or corrupt checkpoints are logged and older ones tried). `None` when there is none.
pub fn load(root: &Path, process: usize, processes: usize, retention_ms: u64) -> Option<Restored> {
    // The cluster shapes that left checkpoints here; ours first.
    let mut shapes = vec![processes];
    shapes.extend(written_shapes(root).into_iter().filter(|k| *k != processes));
    for shape in shapes {
        let dirs: Vec<PathBuf> = (0..shape).map(|p| process_dir(root, p, shape)).collect();
        for dir in &dirs {
            remove_interrupted_writes(dir);
        }
        let mut common: Option<Vec<u64>> = None;
        for dir in &dirs {
            let here = existing_manifests(dir);
            common = Some(match common {
                None => here,
                Some(seen) => seen.into_iter().filter(|b| here.contains(b)).collect(),
            });
        }
        let mut boundaries = common.unwrap_or_default();
        boundaries.sort_unstable_by(|a, b| b.cmp(a));
        for boundary in boundaries {
            match load_boundary(&dirs, boundary, process, shape == processes, retention_ms) {
                Ok(restored) => {
                    if shape != processes {
                        tracing::info!(
                            written_by = shape,
                            now = processes,
                            "restoring a checkpoint of another cluster shape"
                        );
                    }
                    return Some(restored);
                }
                Err(error) => {
                    tracing::error!(%error, boundary, "checkpoint unusable; trying the previous one")
                }
            }
        }
    }
    None
}

fn load_boundary(
    dirs: &[PathBuf],
    boundary: u64,
    process: usize,
    same_shape: bool,
    retention_ms: u64,
) -> Result<Restored, CheckpointError> {
    let mut manifests = Vec::with_capacity(dirs.len());
    for dir in dirs {
        let path = manifest_path(dir, boundary);
        let manifest: Manifest = file::read_verified(&path, Kind::Manifest)?;
        if manifest.boundary != boundary {
            return Err(CheckpointError::Corrupt {
                path,
                reason: format!("manifest names boundary {}", manifest.boundary),
            });
        }
        manifests.push(manifest);
    }
    let horizon = boundary.saturating_sub(retention_ms);
    let offsets = manifests
        .iter()
        .flat_map(|m| m.offsets.iter().map(|(p, o)| (*p, *o)))
        .collect();
    // Which chains this process feeds back.
    let mine: Vec<usize> = match (same_shape, process) {
        (true, _) => vec![process],
        (false, 0) => (0..dirs.len()).collect(),
        (false, _) => Vec::new(),
    };
    let mut panes = Vec::new();
    let mut pending = Vec::new();
    // Decoded on every core: nothing else runs before the dataflow starts.
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    for index in mine {
        // Streamed: only the restored records are held, not also a map of them.
        for record in open_chain(&dirs[index], &manifests[index].segments, horizon, threads)? {
            panes.push(record?);
        }
        pending.extend(manifests[index].pending.iter().cloned());
    }
    let chain = same_shape.then(|| manifests.swap_remove(process));
    Ok(Restored {
        boundary,
        offsets,
        panes,
        pending,
        chain,
    })
}

/// The numbers of processes of clusters whose checkpoint directories are under `root` (1 for
/// checkpoints in `root` itself).
fn written_shapes(root: &Path) -> Vec<usize> {
    let mut shapes = Vec::new();
    if !existing_manifests(root).is_empty() {
        shapes.push(1);
    }
    if let Ok(entries) = std::fs::read_dir(root) {
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some((_, of)) = name
                .strip_prefix('p')
                .and_then(|rest| rest.split_once("of"))
                && let Ok(shape) = of.parse::<usize>()
                && !shapes.contains(&shape)
            {
                shapes.push(shape);
            }
        }
    }
    shapes
}

/// Temporary files are writes a crash interrupted.
fn remove_interrupted_writes(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.filter_map(Result::ok) {
            if entry.path().extension().is_some_and(|e| e == "tmp") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// The restored panes, split by the local worker that feeds them back: the one whose index
/// the series' route gives on this process, so that most records stay on their worker's side
/// of the exchange. Each worker takes its share once, by value: records are moved into the
/// dataflow, not cloned.
pub struct RestoredFeed {
    boundary: u64,
    /// Per local worker: panes at the boundary, and pending panes at their later ticks.
    parts: Vec<Mutex<Option<FeedPart>>>,
}

type FeedPart = (Vec<PaneRecord>, Vec<(u64, PaneRecord)>);

impl RestoredFeed {
    /// Takes `restored`'s panes apart for `locals` local workers of `peers` in all.
    pub fn split(restored: &mut Restored, locals: usize, peers: usize) -> RestoredFeed {
        let locals = locals.max(1);
        let peers = peers.max(locals);
        let local = |key: &crate::series::SeriesKey| (key.route() % peers as u64) as usize % locals;
        let mut parts: Vec<FeedPart> = (0..locals).map(|_| (Vec::new(), Vec::new())).collect();
        for record in std::mem::take(&mut restored.panes) {
            parts[local(&record.0)].0.push(record);
        }
        for (tick, record) in std::mem::take(&mut restored.pending) {
            parts[local(&record.0)].1.push((tick, record));
        }
        RestoredFeed {
            boundary: restored.boundary,
            parts: parts.into_iter().map(|p| Mutex::new(Some(p))).collect(),
        }
    }
}

/// A source of local worker `local`'s share of `feed`: its panes at the restored boundary and
/// the pending panes at their ticks, all given at the first activation.
pub fn restored_panes<'scope>(
    scope: Scope<'scope, u64>,
    feed: Arc<RestoredFeed>,
    local: usize,
) -> Stream<'scope, u64, Vec<PaneRecord>> {
    source(scope, "RestoredPanes", move |capability, _info| {
        let mut capability = Some(capability);
        move |output| {
            let Some(cap) = capability.take() else { return };
            let taken = feed
                .parts
                .get(local)
                .and_then(|part| part.lock().ok().and_then(|mut part| part.take()));
            let Some((panes, pending)) = taken else {
                return;
            };
            let boundary = feed.boundary;
            output
                .session(&cap.delayed(&boundary))
                .give_iterator(panes.into_iter());
            for (tick, record) in pending {
                output
                    .session(&cap.delayed(&tick.max(boundary)))
                    .give(record);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::file::FORMAT_VERSION;
    use crate::checkpoint::testing::temp_dir;

    fn manifest(boundary: u64) -> Manifest {
        Manifest {
            boundary,
            written_at: 0,
            offsets: [(0, 42)].into(),
            pending: Vec::new(),
            segments: Vec::new(),
            compacted_bytes: 0,
        }
    }

    #[test]
    fn checkpoints_of_an_older_format_are_refused() {
        let dir = temp_dir("restore-version");
        let path = manifest_path(&dir, 10);
        file::write_atomic(&path, Kind::Manifest, &manifest(10)).expect("written");
        let restored = load(&dir, 0, 1, 1000).expect("a checkpoint of this format restores");
        assert_eq!(restored.offsets, manifest(10).offsets);

        let mut bytes = std::fs::read(&path).expect("read");
        bytes[8..12].copy_from_slice(&(FORMAT_VERSION - 1).to_le_bytes());
        std::fs::write(&path, bytes).expect("write");
        assert!(matches!(
            file::read_verified::<Manifest>(&path, Kind::Manifest),
            Err(CheckpointError::Version { .. })
        ));
        assert!(
            load(&dir, 0, 1, 1000).is_none(),
            "the topic is replayed instead"
        );
    }
}
