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
//!
//! A segment's body is the layout then its records in blocks of about a MiB (module
//! `segment`), sorted by series so that a chain of segments is merged as sorted streams
//! ([`merge`](super::merge)). Segments are written from a stream of records and read a block
//! at a time ([`write_segment`], [`read_segment`], [`read_segment_parallel`]): a segment of a
//! large state is never held whole in memory. (Format version 4; version 3 segments were one
//! bincode `Vec`, which only one thread could decode.)

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Take, Write};
use std::path::{Path, PathBuf};

use bincode::Options;
use operators::registry::PaneSet;
use serde::Serialize;
use serde::de::DeserializeOwned;

mod segment;

pub use segment::{SegmentReader, read_segment, read_segment_parallel, write_segment};

/// The checkpoint format version this build writes and reads. Version 2: the body starts with
/// the pane layout. Version 3: a pane is a `SeriesPane` (its one sample, or a boxed `PaneSet`),
/// and a segment's records are sorted by series, so a chain is merged as streams; older
/// segments are refused, and the topic replayed.
pub const FORMAT_VERSION: u32 = 4;

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

/// The bincode encoding of every body: fixed-size integers, as timely's bincode uses.
fn encoding() -> impl Options {
    bincode::options().with_fixint_encoding()
}

/// Writes `value` to `path` atomically: temporary file, fsync, rename, fsync of the directory.
/// Returns the number of bytes written.
pub fn write_atomic<T: Serialize>(
    path: &Path,
    kind: Kind,
    value: &T,
) -> Result<u64, CheckpointError> {
    write_with_layout(path, kind, &pane_layout(), value)
}

/// The pane layout of this build's checkpoints, [`PaneSet::layout`]; the one place the file
/// format names the pane type.
fn pane_layout() -> String {
    PaneSet::layout()
}

fn write_with_layout<T: Serialize>(
    path: &Path,
    kind: Kind,
    layout: &str,
    value: &T,
) -> Result<u64, CheckpointError> {
    let mut draft = Draft::create(path, kind)?;
    draft.encode(&(layout, value))?;
    let checksum = draft.take_checksum().finalize();
    draft.commit(checksum)
}

/// Bytes of a file's header: magic (8), format version (4), body length (8), checksum (4).
const HEADER_LEN: usize = 24;
/// Where the header holds the body's length.
const LENGTH_AT: u64 = 12;
/// Where the header holds the body's checksum.
const CHECKSUM_AT: u64 = 20;

/// A checkpoint file being written under a temporary name: the header, whose body length and
/// checksum [`Draft::commit`] fills in, then the body, streamed through the checksum (never
/// held in memory whole: a segment of a large state is gigabytes). A draft dropped before it is
/// committed (an error on the way) is removed.
struct Draft<'a> {
    path: &'a Path,
    temporary: PathBuf,
    body: Checksummed<BufWriter<File>>,
    committed: bool,
}

impl<'a> Draft<'a> {
    fn create(path: &'a Path, kind: Kind) -> Result<Self, CheckpointError> {
        let temporary = path.with_extension("tmp");
        let file = File::create(&temporary).map_err(io(&temporary))?;
        let mut draft = Draft {
            path,
            temporary,
            body: Checksummed::new(BufWriter::with_capacity(1 << 20, file)),
            committed: false,
        };
        let mut header = [0u8; HEADER_LEN];
        header[..8].copy_from_slice(kind.magic());
        header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        draft
            .body
            .inner
            .write_all(&header)
            .map_err(io(&draft.temporary))?;
        Ok(draft)
    }

    /// Appends `value` to the body.
    fn encode<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CheckpointError> {
        encoding()
            .serialize_into(&mut self.body, value)
            .map_err(|error| match *error {
                bincode::ErrorKind::Io(source) => CheckpointError::Io {
                    path: self.temporary.clone(),
                    source,
                },
                other => CheckpointError::Corrupt {
                    path: self.path.to_path_buf(),
                    reason: format!("encoding: {other}"),
                },
            })
    }

    /// Appends `bytes` to the body as they are.
    fn write_raw(&mut self, bytes: &[u8]) -> Result<(), CheckpointError> {
        self.body.write_all(bytes).map_err(io(&self.temporary))
    }

    /// The checksum of the body appended since the previous call (or the start); the next
    /// call's starts after it.
    fn take_checksum(&mut self) -> crc32fast::Hasher {
        std::mem::take(&mut self.body.hasher)
    }

    /// Fills in the header, syncs the file, renames it into place and syncs the directory.
    /// Returns the file's size.
    fn commit(mut self, checksum: u32) -> Result<u64, CheckpointError> {
        let length = self.body.written;
        let out = &mut self.body.inner;
        let filled = out.flush().and_then(|()| {
            let file = out.get_mut();
            let mut fill = |at: u64, bytes: &[u8]| {
                file.seek(SeekFrom::Start(at))?;
                file.write_all(bytes)
            };
            fill(LENGTH_AT, &length.to_le_bytes())?;
            fill(CHECKSUM_AT, &checksum.to_le_bytes())?;
            file.sync_all()
        });
        filled.map_err(io(&self.temporary))?;
        fs::rename(&self.temporary, self.path).map_err(io(self.path))?;
        self.committed = true;
        if let Some(dir) = self.path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io(dir))?;
        }
        Ok(HEADER_LEN as u64 + length)
    }
}

impl Drop for Draft<'_> {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.temporary);
        }
    }
}

/// A writer (or reader) that checksums and counts what passes through it.
struct Checksummed<W> {
    inner: W,
    hasher: crc32fast::Hasher,
    written: u64,
}

impl<W> Checksummed<W> {
    fn new(inner: W) -> Self {
        Checksummed {
            inner,
            hasher: crc32fast::Hasher::new(),
            written: 0,
        }
    }
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

impl<R: Read> Read for Checksummed<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buffer)?;
        self.hasher.update(&buffer[..n]);
        self.written += n as u64;
        Ok(n)
    }
}

/// Reads and verifies a file written by [`write_atomic`] (or, as a `Vec`, [`write_segment`]).
pub fn read_verified<T: DeserializeOwned>(path: &Path, kind: Kind) -> Result<T, CheckpointError> {
    let mut body = Body::open(path, kind, 1 << 20)?;
    // Nothing decoded is returned unless the checksum of the whole body matches; a body that
    // does not is reported as such even when decoding stopped early.
    match body.decode() {
        Ok(value) if body.intact() => Ok(value),
        Ok(_) => Err(body.mismatch()),
        Err(error) => Err(body.failed(error)),
    }
}

/// A checkpoint file's body being read: the header checked (kind, format version, length) and
/// the pane layout; the rest decoded as it is read, through the checksum.
struct Body {
    path: PathBuf,
    /// Buffered above the checksum, so the checksum sees the buffer's large reads (its SIMD
    /// path) rather than bincode's reads of a few bytes (its byte-at-a-time path, 8 % of a
    /// restart's time).
    reader: BufReader<Checksummed<Take<File>>>,
    length: u64,
    checksum: u32,
}

impl Body {
    fn open(path: &Path, kind: Kind, buffer: usize) -> Result<Body, CheckpointError> {
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
        let mut body = Body {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(buffer, Checksummed::new(file.take(length))),
            length,
            checksum,
        };
        let layout: String = body.decode().map_err(|error| body.failed(error))?;
        let expected = pane_layout();
        if layout != expected {
            if !body.intact() {
                return Err(body.mismatch());
            }
            return Err(CheckpointError::Layout {
                path: path.to_path_buf(),
                found: layout,
                expected,
            });
        }
        Ok(body)
    }

    /// Decodes the next value. Decoding is bounded by the body's length, so a damaged length
    /// prefix cannot make it allocate more.
    fn decode<T: DeserializeOwned>(&mut self) -> bincode::Result<T> {
        encoding()
            .allow_trailing_bytes()
            .with_limit(self.length)
            .deserialize_from(&mut self.reader)
    }

    /// Bytes of the body not read yet.
    fn remaining(&self) -> u64 {
        self.reader.get_ref().inner.limit() + self.reader.buffer().len() as u64
    }

    /// Whether the whole body matches its checksum (reads what is left of it).
    fn intact(&mut self) -> bool {
        std::io::copy(&mut self.reader, &mut std::io::sink()).is_ok()
            && self.reader.get_ref().hasher.clone().finalize() == self.checksum
    }

    fn mismatch(&self) -> CheckpointError {
        CheckpointError::Corrupt {
            path: self.path.clone(),
            reason: "checksum mismatch".into(),
        }
    }

    /// What to report when decoding failed: a damaged body (the usual cause: a torn or altered
    /// file) as a checksum mismatch, else the decoding error itself.
    fn failed(&mut self, error: bincode::Error) -> CheckpointError {
        if !self.intact() {
            return self.mismatch();
        }
        CheckpointError::Corrupt {
            path: self.path.clone(),
            reason: format!("decoding: {error}"),
        }
    }
}

/// Whether the segment at `path` matches its checksum, read afresh (to explain a block that
/// did not decode). A file that does not even open as a segment does not.
fn body_matches(path: &Path) -> Result<bool, CheckpointError> {
    match Body::open(path, Kind::Segment, 1 << 20) {
        Ok(mut body) => Ok(body.intact()),
        Err(CheckpointError::Io { path, source }) => Err(CheckpointError::Io { path, source }),
        Err(_) => Ok(false),
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
