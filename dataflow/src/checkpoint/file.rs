//! Checkpoint files on disk: a framed, checksummed bincode body, written atomically.
//!
//! Frame: `magic (8 bytes) | format version (u32 LE) | body length (u64 LE) | CRC-32 of the
//! body (u32 LE) | body`. A file is written to a temporary name, synced, renamed into place, and
//! its directory synced, so a crash leaves either the old state or the complete new file. A
//! torn or altered file fails the length or checksum check and is reported as corrupt.
//!
//! The body starts with the pane layout, [`PaneSet::layout`]: the registered aggregations and
//! their pane versions, in the order their partials are serialized. A file with another layout
//! (written before an aggregation was added, removed or changed) is refused, not misread; with
//! no usable checkpoint the dataflow reads the topic from the beginning, which rebuilds the
//! panes of every aggregation, the new one included, from everything Kafka still holds. (Reading
//! old checkpoints by aggregation name instead would keep them usable, but would give a new
//! aggregation no partials for the history they hold: its widgets would silently miss up to a
//! retention's worth of data.)

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use operators::registry::PaneSet;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The checkpoint format version this build writes and reads. Version 2: the body starts with
/// the pane layout.
pub const FORMAT_VERSION: u32 = 2;

/// What a checkpoint file is, by its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A segment: series panes.
    Segment,
    /// A manifest: boundary, offsets, pending panes, segment list.
    Manifest,
}

impl Kind {
    fn magic(self) -> &'static [u8; 8] {
        match self {
            Kind::Segment => b"FBSEGMNT",
            Kind::Manifest => b"FBMANIFS",
        }
    }
}

/// Errors reading or writing checkpoint files.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file system failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is torn, altered or not a checkpoint file.
    #[error("{path}: corrupt checkpoint file: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Written by another format version.
    #[error("{path}: checkpoint format version {found}, this build reads version {FORMAT_VERSION}")]
    Version {
        /// The file.
        path: PathBuf,
        /// The version found.
        found: u32,
    },
    /// Written by a build with other aggregations registered (or other pane formats).
    #[error("{path}: checkpoint panes hold aggregations `{found}`, this build's are `{expected}`")]
    Layout {
        /// The file.
        path: PathBuf,
        /// The file's pane layout.
        found: String,
        /// This build's, [`PaneSet::layout`].
        expected: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `value` to `path` atomically: temporary file, fsync, rename, fsync of the directory.
/// Returns the number of bytes written.
pub fn write_atomic<T: Serialize>(
    path: &Path,
    kind: Kind,
    value: &T,
) -> Result<u64, CheckpointError> {
    write_with_layout(path, kind, &PaneSet::layout(), value)
}

fn write_with_layout<T: Serialize>(
    path: &Path,
    kind: Kind,
    layout: &str,
    value: &T,
) -> Result<u64, CheckpointError> {
    let body = bincode::serialize(&(layout, value)).map_err(|e| CheckpointError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("encoding: {e}"),
    })?;
    let mut frame = Vec::with_capacity(body.len() + 24);
    frame.extend_from_slice(kind.magic());
    frame.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    frame.extend_from_slice(&(body.len() as u64).to_le_bytes());
    frame.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    frame.extend_from_slice(&body);

    let temporary = path.with_extension("tmp");
    let mut file = File::create(&temporary).map_err(io(&temporary))?;
    file.write_all(&frame).map_err(io(&temporary))?;
    file.sync_all().map_err(io(&temporary))?;
    drop(file);
    fs::rename(&temporary, path).map_err(io(path))?;
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
    }
    Ok(frame.len() as u64)
}

/// Reads and verifies a file written by [`write_atomic`].
pub fn read_verified<T: DeserializeOwned>(path: &Path, kind: Kind) -> Result<T, CheckpointError> {
    let corrupt = |reason: String| CheckpointError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(io(path))?;
    if bytes.len() < 24 {
        return Err(corrupt(format!(
            "{} bytes, shorter than the header",
            bytes.len()
        )));
    }
    if &bytes[..8] != kind.magic() {
        return Err(corrupt(format!("not a {kind:?} file")));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap_or_default());
    if version != FORMAT_VERSION {
        return Err(CheckpointError::Version {
            path: path.to_path_buf(),
            found: version,
        });
    }
    let length = u64::from_le_bytes(bytes[12..20].try_into().unwrap_or_default());
    let checksum = u32::from_le_bytes(bytes[20..24].try_into().unwrap_or_default());
    let body = &bytes[24..];
    if body.len() as u64 != length {
        return Err(corrupt(format!(
            "body is {} bytes, header says {length} (torn write?)",
            body.len()
        )));
    }
    if crc32fast::hash(body) != checksum {
        return Err(corrupt("checksum mismatch".into()));
    }
    let mut rest = body;
    let layout: String =
        bincode::deserialize_from(&mut rest).map_err(|e| corrupt(format!("decoding: {e}")))?;
    let expected = PaneSet::layout();
    if layout != expected {
        return Err(CheckpointError::Layout {
            path: path.to_path_buf(),
            found: layout,
            expected,
        });
    }
    bincode::deserialize(rest).map_err(|e| corrupt(format!("decoding: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("flowboard-file-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn round_trips() {
        let path = temp("round").join("x.seg");
        write_atomic(&path, Kind::Segment, &vec![1u64, 2, 3]).expect("written");
        assert_eq!(
            read_verified::<Vec<u64>>(&path, Kind::Segment).expect("read"),
            vec![1, 2, 3]
        );
        assert!(!path.with_extension("tmp").exists());
    }

    #[test]
    fn detects_torn_altered_and_foreign_files() {
        let dir = temp("corrupt");
        let path = dir.join("x.seg");
        write_atomic(&path, Kind::Segment, &vec![7u64; 100]).expect("written");
        let bytes = fs::read(&path).expect("read");

        fs::write(&path, &bytes[..bytes.len() - 5]).expect("truncate");
        assert!(matches!(
            read_verified::<Vec<u64>>(&path, Kind::Segment),
            Err(CheckpointError::Corrupt { .. })
        ));

        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        fs::write(&path, &flipped).expect("flip");
        assert!(matches!(
            read_verified::<Vec<u64>>(&path, Kind::Segment),
            Err(CheckpointError::Corrupt { .. })
        ));

        fs::write(&path, &bytes).expect("restore");
        assert!(matches!(
            read_verified::<Vec<u64>>(&path, Kind::Manifest),
            Err(CheckpointError::Corrupt { .. })
        ));
    }

    #[test]
    fn refuses_panes_of_another_set_of_aggregations() {
        let path = temp("layout").join("x.seg");
        // As written by a build from before the last aggregation was registered.
        let layout = PaneSet::layout();
        let older = layout
            .rsplit_once(' ')
            .map_or("count/1", |(older, _)| older);
        write_with_layout(&path, Kind::Segment, older, &vec![1u64]).expect("written");
        match read_verified::<Vec<u64>>(&path, Kind::Segment) {
            Err(CheckpointError::Layout {
                found, expected, ..
            }) => {
                assert_eq!(found, older);
                assert_eq!(expected, layout);
            }
            other => panic!("expected a layout error, got {other:?}"),
        }
    }
}
