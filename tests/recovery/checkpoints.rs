//! What the server says and leaves on disk about checkpoints: the boundaries it restored
//! from and wrote at shutdown, the files in its checkpoint directory, and a kill timed to land
//! while one of them is being written.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::*;

/// Flags for a checkpoint every second.
pub const CHECKPOINT_EVERY_SECOND: [&str; 2] = ["--checkpoint-interval", "1s"];

/// The boundary the server restored from, per its startup log; panics if it restored nothing.
pub fn restored_boundary(server: &Server) -> u64 {
    let line = server
        .startup_log
        .iter()
        .find(|l| l.contains("restoring from checkpoint"))
        .unwrap_or_else(|| {
            panic!(
                "the server did not restore from a checkpoint; startup log:\n{}",
                server.startup_log.join("\n")
            )
        });
    log_field(line, "boundary").unwrap_or_else(|| panic!("no boundary in {line:?}"))
}

/// The boundary of the final checkpoint a SIGTERM-stopped server reported.
pub fn final_boundary(stopped: &Stopped) -> u64 {
    assert!(stopped.exited, "the server did not exit on SIGTERM");
    let line = stopped
        .log
        .iter()
        .find(|l| l.contains("final checkpoint written"))
        .unwrap_or_else(|| {
            panic!(
                "no final checkpoint on SIGTERM; log:\n{}",
                stopped.log.join("\n")
            )
        });
    log_field(line, "boundary").unwrap_or_else(|| panic!("no boundary in {line:?}"))
}

/// The boundary of a manifest, from its file name.
pub fn manifest_boundary(path: &Path) -> u64 {
    let name = path.file_stem().and_then(|n| n.to_str()).unwrap_or("");
    name.trim_start_matches("manifest-")
        .parse()
        .expect("manifest name")
}

/// Polls until `dir` holds a checkpoint whose boundary is after `time`; returns its boundary.
pub async fn wait_checkpoint_after(dir: &Path, time: u64, timeout: Duration) -> u64 {
    let deadline = Instant::now() + timeout;
    loop {
        let newest = checkpoint_files(dir, "manifest-")
            .last()
            .map(|m| manifest_boundary(m));
        if let Some(boundary) = newest.filter(|b| *b > time) {
            return boundary;
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint after {time} in {} within {timeout:?} (newest: {newest:?})",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn seed() -> u64 {
    let seed = std::env::var("FLOWBOARD_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(now_ms);
    eprintln!("random kill points from seed {seed} (replay with FLOWBOARD_TEST_SEED={seed})");
    seed
}

/// Files in a checkpoint directory that are neither a manifest nor a segment: writes in
/// progress (the writer writes to a temporary name, then renames).
pub fn writes_in_progress(dir: &Path) -> usize {
    let complete = |name: &str| {
        name.ends_with(".ckpt") && (name.starts_with("manifest-") || name.starts_with("segment-"))
    };
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| !e.file_name().to_str().is_some_and(complete))
                .count()
        })
        .unwrap_or(0)
}

/// SIGKILLs the server the moment a checkpoint file is being written (watching its directory
/// for a temporary file), or after `patience` if none is seen. Returns the data dir, and
/// whether the kill left a write unfinished.
pub async fn kill_during_checkpoint_write(server: Server, patience: Duration) -> (PathBuf, bool) {
    tokio::task::spawn_blocking(move || {
        let dir = server.checkpoint_dir();
        let deadline = Instant::now() + patience;
        while writes_in_progress(&dir) == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(100));
        }
        let data_dir = server.kill9();
        (data_dir, writes_in_progress(&dir) > 0)
    })
    .await
    .expect("kill task")
}

/// Asserts that the server reported checkpoint `boundary` unusable at startup.
pub fn assert_unusable_reported(server: &Server, boundary: u64) {
    assert!(
        server.startup_log.iter().any(
            |l| l.contains("checkpoint unusable") && log_field(l, "boundary") == Some(boundary)
        ),
        "checkpoint {boundary} not reported unusable; startup log:\n{}",
        server.startup_log.join("\n")
    );
}

/// The boundary of the newest manifest whose chain does not include `segment` (read with the
/// product's own checkpoint reader, only to know which one the server should fall back to).
pub fn newest_manifest_without(dir: &Path, segment: &Path) -> u64 {
    use dataflow::checkpoint::file::{Kind, read_verified};
    use dataflow::checkpoint::writer::{Manifest, segment_path};
    checkpoint_files(dir, "manifest-")
        .iter()
        .rev()
        .filter_map(|path| read_verified::<Manifest>(path, Kind::Manifest).ok())
        .find(|m| {
            !m.segments
                .iter()
                .any(|s| segment_path(dir, s.seq) == segment)
        })
        .map(|m| m.boundary)
        .expect("an older checkpoint not using the newest segment")
}
