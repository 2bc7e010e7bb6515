//! Test helpers for checkpoints: temporary directories, chains of segments written as the
//! writer writes them, and the oracle the streaming merge is checked against.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::file::{self, CheckpointError};
use super::merge::{SeriesPanes, sort_by_series};
use super::writer::{SegmentRef, segment_path};
use crate::series::SeriesKey;

/// A new empty directory for one test (or one proptest case).
pub fn temp_dir(name: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "flowboard-checkpoint-{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Series `index` of a small set; some with tags, so the order of tags counts as well.
pub fn series(index: usize) -> SeriesKey {
    let tags = match index % 3 {
        0 => vec![],
        1 => vec![("host".to_string(), format!("h{}", index % 2))],
        _ => vec![("az".to_string(), "x".to_string())],
    };
    SeriesKey {
        metric: format!("m{}", index / 3),
        tags,
    }
}

/// Writes `chain` as segments `0..` in `dir`, each sorted as the writer sorts it.
pub fn write_chain<P: Serialize>(dir: &Path, chain: Vec<Vec<SeriesPanes<P>>>) -> Vec<SegmentRef> {
    chain
        .into_iter()
        .enumerate()
        .map(|(seq, mut records)| {
            sort_by_series(&mut records);
            let path = segment_path(dir, seq as u64);
            let bytes =
                file::write_segment(&path, records.into_iter().map(Ok)).expect("segment written");
            SegmentRef {
                seq: seq as u64,
                bytes,
            }
        })
        .collect()
}

/// The oracle: the state a chain rebuilds, as restore computed it before segments were
/// sorted. Every segment read whole, every series' panes gathered in a map in chain order,
/// then sorted by end, the last of equal ends kept. Sorted by series, to compare.
pub fn replay_chain<P: DeserializeOwned>(
    dir: &Path,
    segments: &[SegmentRef],
    horizon: u64,
) -> Result<Vec<SeriesPanes<P>>, CheckpointError> {
    let mut chain = Vec::new();
    for segment in segments {
        let records = file::read_segment(&segment_path(dir, segment.seq))?;
        chain.push(records.collect::<Result<Vec<_>, _>>()?);
    }
    Ok(replay(chain, horizon))
}

/// [`replay_chain`] of segments in memory.
pub fn replay<P>(chain: Vec<Vec<SeriesPanes<P>>>, horizon: u64) -> Vec<SeriesPanes<P>> {
    let mut state: HashMap<SeriesKey, Vec<(u64, P)>> = HashMap::new();
    for segment in chain {
        for (series, list) in segment {
            state
                .entry(series)
                .or_default()
                .extend(list.into_iter().filter(|(end, _)| *end > horizon));
        }
    }
    let mut state: Vec<SeriesPanes<P>> = state
        .into_iter()
        .filter(|(_, panes)| !panes.is_empty())
        .map(|(series, mut panes)| {
            panes.sort_by_key(|(end, _)| *end);
            let mut latest: Vec<(u64, P)> = Vec::with_capacity(panes.len());
            for (end, partials) in panes {
                match latest.last_mut() {
                    Some(last) if last.0 == end => last.1 = partials,
                    _ => latest.push((end, partials)),
                }
            }
            (series, latest)
        })
        .collect();
    state.sort_by(|a, b| a.0.cmp(&b.0));
    state
}

/// Flips a bit of the file's last byte: found only by the checksum, after the last record.
pub fn damage_last_byte(path: &Path) {
    let mut bytes = std::fs::read(path).expect("read");
    if let Some(last) = bytes.last_mut() {
        *last ^= 0x01;
    }
    std::fs::write(path, bytes).expect("write");
}
