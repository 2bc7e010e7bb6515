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
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bincode::Options;
use operators::registry::PaneSet;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The checkpoint format version this build writes and reads. Version 2: the body starts with
/// the pane layout. Version 3: a pane is a `SeriesPane` (its one sample, or a boxed `PaneSet`).
pub const FORMAT_VERSION: u32 = 3;

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
    let encoding = |reason: String| CheckpointError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("encoding: {reason}"),
    };
    let body = (layout, value);
    let length = bincode::serialized_size(&body).map_err(|e| encoding(e.to_string()))?;

    // The body is streamed to the file through the checksum, never held in memory whole (a
    // segment of a large state is gigabytes); the checksum is filled into the header after.
    let temporary = path.with_extension("tmp");
    let file = File::create(&temporary).map_err(io(&temporary))?;
    let mut out = Checksummed {
        inner: BufWriter::with_capacity(1 << 20, file),
        hasher: crc32fast::Hasher::new(),
        written: 0,
    };
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(kind.magic());
    header.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    header.extend_from_slice(&length.to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes());
    out.inner.write_all(&header).map_err(io(&temporary))?;
    bincode::serialize_into(&mut out, &body).map_err(|e| encoding(e.to_string()))?;
    if out.written != length {
        return Err(encoding(format!(
            "wrote {} bytes, expected {length}",
            out.written
        )));
    }
    let checksum = out.hasher.finalize();
    let mut file = out
        .inner
        .into_inner()
        .map_err(|e| e.into_error())
        .map_err(io(&temporary))?;
    file.seek(SeekFrom::Start(CHECKSUM_AT))
        .and_then(|_| file.write_all(&checksum.to_le_bytes()))
        .and_then(|()| file.sync_all())
        .map_err(io(&temporary))?;
    drop(file);
    fs::rename(&temporary, path).map_err(io(path))?;
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
    }
    Ok(HEADER_LEN as u64 + length)
}

/// Bytes of a file's header: magic (8), format version (4), body length (8), checksum (4).
const HEADER_LEN: usize = 24;
/// Where the header holds the body's checksum.
const CHECKSUM_AT: u64 = 20;

/// A writer (or reader) that checksums and counts what passes through it.
struct Checksummed<W> {
    inner: W,
    hasher: crc32fast::Hasher,
    written: u64,
}

impl<W: Write> Write for Checksummed<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(bytes)?;
        self.hasher.update(&bytes[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Reads and verifies a file written by [`write_atomic`].
pub fn read_verified<T: DeserializeOwned>(path: &Path, kind: Kind) -> Result<T, CheckpointError> {
    let corrupt = |reason: String| CheckpointError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let mut file = File::open(path).map_err(io(path))?;
    let file_len = file.metadata().map_err(io(path))?.len();
    if file_len < HEADER_LEN as u64 {
        return Err(corrupt(format!(
            "{file_len} bytes, shorter than the header"
        )));
    }
    let mut header = [0u8; HEADER_LEN];
    file.read_exact(&mut header).map_err(io(path))?;
    if &header[..8] != kind.magic() {
        return Err(corrupt(format!("not a {kind:?} file")));
    }
    let version = u32::from_le_bytes(header[8..12].try_into().unwrap_or_default());
    if version != FORMAT_VERSION {
        return Err(CheckpointError::Version {
            path: path.to_path_buf(),
            found: version,
        });
    }
    let length = u64::from_le_bytes(header[12..20].try_into().unwrap_or_default());
    let checksum = u32::from_le_bytes(header[20..24].try_into().unwrap_or_default());
    let body_len = file_len - HEADER_LEN as u64;
    if body_len != length {
        return Err(corrupt(format!(
            "body is {body_len} bytes, header says {length} (torn write?)"
        )));
    }

    // The body is decoded as it is read (a segment of a large state is gigabytes: it is never
    // held whole beside what it decodes to), through the checksum. Nothing decoded is returned
    // unless the checksum of the whole body matches; a body that does not is reported as
    // such even when decoding stopped early. Decoding is bounded by the body's length, so a
    // damaged length prefix cannot make it allocate more.
    let mut body = Checksummed {
        inner: std::io::BufReader::with_capacity(1 << 20, file.take(length)),
        hasher: crc32fast::Hasher::new(),
        written: 0,
    };
    let options = bincode::options()
        .with_fixint_encoding()
        .allow_trailing_bytes()
        .with_limit(length);
    let intact = |body: &mut Checksummed<_>| {
        std::io::copy(body, &mut std::io::sink()).is_ok()
            && body.hasher.clone().finalize() == checksum
    };
    let layout: String = match options.deserialize_from(&mut body) {
        Ok(layout) => layout,
        Err(_) if !intact(&mut body) => return Err(corrupt("checksum mismatch".into())),
        Err(e) => return Err(corrupt(format!("decoding: {e}"))),
    };
    let expected = PaneSet::layout();
    if layout != expected {
        if !intact(&mut body) {
            return Err(corrupt("checksum mismatch".into()));
        }
        return Err(CheckpointError::Layout {
            path: path.to_path_buf(),
            found: layout,
            expected,
        });
    }
    let value: Result<T, _> = options.deserialize_from(&mut body);
    if !intact(&mut body) {
        return Err(corrupt("checksum mismatch".into()));
    }
    value.map_err(|e| corrupt(format!("decoding: {e}")))
}

impl<R: Read> Read for Checksummed<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buffer)?;
        self.hasher.update(&buffer[..n]);
        self.written += n as u64;
        Ok(n)
    }
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

        // A damaged byte anywhere in the body, the length prefixes decoding reads first
        // included, is a checksum mismatch: never a huge allocation, a decoding error or data.
        for at in HEADER_LEN..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x80;
            fs::write(&path, &damaged).expect("damage");
            match read_verified::<Vec<u64>>(&path, Kind::Segment) {
                Err(CheckpointError::Corrupt { reason, .. }) => {
                    assert_eq!(reason, "checksum mismatch", "byte {at}")
                }
                other => panic!("byte {at}: {other:?}"),
            }
        }
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
