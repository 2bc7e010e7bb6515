//! Restoring on start: the newest checkpoint whose manifest and segments all verify.

use std::path::Path;
use std::sync::Arc;

use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::{Scope, Stream};

use super::file::{self, CheckpointError, Kind};
use super::writer::{Manifest, existing_manifests, manifest_path, replay_chain};
use crate::kafka_source::PaneRecord;

/// A checkpoint loaded for restore.
#[derive(Debug)]
pub struct Restored {
    /// Its manifest: boundary, offsets, pending panes.
    pub manifest: Manifest,
    /// The series panes at the boundary, within the retention.
    pub panes: Vec<PaneRecord>,
}

/// Loads the newest valid checkpoint in `dir`, trying older ones when the newest is torn or
/// corrupt (each failure is logged). `None` when there is no usable checkpoint.
pub fn load_latest(dir: &Path, retention_ms: u64) -> Option<Restored> {
    // Temporary files are writes a crash interrupted.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.filter_map(Result::ok) {
            if entry.path().extension().is_some_and(|e| e == "tmp") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    let mut boundaries = existing_manifests(dir);
    boundaries.sort_unstable_by(|a, b| b.cmp(a));
    for boundary in boundaries {
        match load(dir, boundary, retention_ms) {
            Ok(restored) => return Some(restored),
            Err(error) => {
                tracing::error!(%error, boundary, "checkpoint unusable; trying the previous one");
            }
        }
    }
    None
}

fn load(dir: &Path, boundary: u64, retention_ms: u64) -> Result<Restored, CheckpointError> {
    let manifest: Manifest = file::read_verified(&manifest_path(dir, boundary), Kind::Manifest)?;
    if manifest.boundary != boundary {
        return Err(CheckpointError::Corrupt {
            path: manifest_path(dir, boundary),
            reason: format!("manifest names boundary {}", manifest.boundary),
        });
    }
    let panes = replay_chain(
        dir,
        &manifest.segments,
        boundary.saturating_sub(retention_ms),
    )?;
    Ok(Restored { manifest, panes })
}

/// Feeds a restored checkpoint back into the dataflow: the series panes at the boundary, and
/// the pending panes at their ticks. Each worker emits a share (series spread by position);
/// the series store's exchange routes them to their owners whatever the worker count was when
/// the checkpoint was written.
pub fn restored_panes<'scope>(
    scope: Scope<'scope, u64>,
    restored: Arc<Restored>,
    worker: usize,
    peers: usize,
) -> Stream<'scope, u64, Vec<PaneRecord>> {
    source(scope, "RestoredPanes", move |capability, _info| {
        let mut capability = Some(capability);
        move |output| {
            let Some(cap) = capability.take() else { return };
            let boundary = restored.manifest.boundary;
            let mine = |index: usize| index % peers == worker;
            let at_boundary = cap.delayed(&boundary);
            let mut session = output.session(&at_boundary);
            for (_, record) in restored.panes.iter().enumerate().filter(|(i, _)| mine(*i)) {
                session.give(record.clone());
            }
            drop(session);
            for (_, (tick, record)) in restored
                .manifest
                .pending
                .iter()
                .enumerate()
                .filter(|(i, _)| mine(*i))
            {
                output
                    .session(&cap.delayed(&(*tick).max(boundary)))
                    .give(record.clone());
            }
        }
    })
}
