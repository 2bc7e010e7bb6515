//! Segments as streams of records, in blocks: written from an iterator, read back a block at
//! a time, on the calling thread or decoded in parallel.
//!
//! A segment's body is the pane layout, then blocks, then a zero: each block is its length in
//! bytes (u64) and the bincode of a `Vec` of records (their count, then the records), about
//! [`BLOCK_BYTES`] long. Blocks let a reader find where the next records start without decoding
//! the ones before, so the blocks of one large segment decode on several threads (a restart
//! reads the state's one large segment), and each decodes from memory rather than through a
//! reader.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use bincode::Options;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Body, CheckpointError, Draft, Kind, encoding, pane_layout};

/// A block is written out once its records take this many bytes.
pub const BLOCK_BYTES: usize = 1 << 20;

/// Blocks read ahead for each decoding thread.
const READ_AHEAD: usize = 2;

/// Writes a segment from a stream of records, atomically like [`write_atomic`](super::write_atomic).
/// Returns the number of bytes written.
///
/// The first error `records` yields abandons the write (the temporary file is removed, nothing
/// replaces `path`) and is returned.
pub fn write_segment<T, I>(path: &Path, records: I) -> Result<u64, CheckpointError>
where
    T: Serialize,
    I: IntoIterator<Item = Result<T, CheckpointError>>,
{
    let mut draft = Draft::create(path, Kind::Segment)?;
    draft.encode(&pane_layout())?;
    let mut block = Vec::with_capacity(BLOCK_BYTES + (BLOCK_BYTES >> 4));
    let mut count = 0u64;
    for record in records {
        encoding()
            .serialize_into(&mut block, &record?)
            .map_err(|error| CheckpointError::Corrupt {
                path: path.to_path_buf(),
                reason: format!("encoding: {error}"),
            })?;
        count += 1;
        if block.len() >= BLOCK_BYTES {
            write_block(&mut draft, count, &block)?;
            block.clear();
            count = 0;
        }
    }
    if count > 0 {
        write_block(&mut draft, count, &block)?;
    }
    draft.write_raw(&0u64.to_le_bytes())?;
    let checksum = draft.take_checksum().finalize();
    draft.commit(checksum)
}

/// One block: its length, then the records' count and the records (a bincode `Vec`).
fn write_block(draft: &mut Draft<'_>, count: u64, records: &[u8]) -> Result<(), CheckpointError> {
    let length = 8 + records.len() as u64;
    draft.write_raw(&length.to_le_bytes())?;
    draft.write_raw(&count.to_le_bytes())?;
    draft.write_raw(records)
}

/// Opens a segment to read its records on the calling thread; see [`SegmentReader`].
pub fn read_segment<T: DeserializeOwned>(path: &Path) -> Result<SegmentReader<T>, CheckpointError> {
    // A small buffer: a compaction reads every segment of a chain at once.
    let blocks = Blocks::open(path, 64 << 10)?;
    Ok(SegmentReader {
        path: path.to_path_buf(),
        source: Source::Inline(blocks),
        block: Vec::new().into_iter(),
        finished: false,
    })
}

/// Opens a segment to read its records, decoded by `threads` threads while one more reads the
/// blocks ahead; see [`SegmentReader`]. For a restart, where decoding is all that happens.
pub fn read_segment_parallel<T>(
    path: &Path,
    threads: usize,
) -> Result<SegmentReader<T>, CheckpointError>
where
    T: DeserializeOwned + Send + 'static,
{
    let mut blocks = Blocks::open(path, 1 << 20)?;
    let threads = threads.max(1);
    let mut inputs: Vec<SyncSender<Block<Vec<u8>>>> = Vec::new();
    let mut outputs = Vec::new();
    for _ in 0..threads {
        let (input, blocks_in) = sync_channel::<Block<Vec<u8>>>(READ_AHEAD);
        let (decoded, output) = sync_channel(READ_AHEAD);
        spawn("checkpoint-decode", move || {
            for block in blocks_in {
                let records = match block {
                    Ok(Some(bytes)) => decode_block::<T>(&bytes).map(Some),
                    Ok(None) => Ok(None),
                    Err(failure) => Err(failure),
                };
                if decoded.send(records).is_err() {
                    return;
                }
            }
        })?;
        inputs.push(input);
        outputs.push(output);
    }
    spawn("checkpoint-read", move || {
        // Block `n` goes to decoder `n % threads`, so the reader takes them back in order;
        // after the last block, the end (or the error) goes the same way.
        for input in inputs.iter().cycle() {
            let block = blocks.next_block().map_err(Failure::Read);
            let last = !matches!(block, Ok(Some(_)));
            if input.send(block).is_err() || last {
                break;
            }
        }
    })?;
    Ok(SegmentReader {
        path: path.to_path_buf(),
        source: Source::Parallel { outputs, next: 0 },
        block: Vec::new().into_iter(),
        finished: false,
    })
}

fn spawn(name: &str, work: impl FnOnce() + Send + 'static) -> Result<(), CheckpointError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(work)
        .map(drop)
        .map_err(|source| CheckpointError::Io {
            path: PathBuf::from(name),
            source,
        })
}

/// The records of one block, decoded from memory.
fn decode_block<T: DeserializeOwned>(bytes: &[u8]) -> Result<Vec<T>, Failure> {
    encoding()
        .with_limit(bytes.len() as u64)
        .deserialize(bytes)
        .map_err(Failure::Decode)
}

/// Why a block could not be had.
enum Failure {
    /// Reading the segment failed (a reported error).
    Read(CheckpointError),
    /// A block did not decode: explained by whether the file matches its checksum.
    Decode(bincode::Error),
}

/// A block's bytes or records; `None` once the segment ended intact.
type Block<B> = Result<Option<B>, Failure>;

/// The blocks of a segment's body, read one at a time.
struct Blocks {
    body: Body,
}

impl Blocks {
    fn open(path: &Path, buffer: usize) -> Result<Blocks, CheckpointError> {
        Ok(Blocks {
            body: Body::open(path, Kind::Segment, buffer)?,
        })
    }

    /// The next block's bytes; `None` after the last, once the body's checksum matched. A
    /// length that does not fit the body is reported as a checksum mismatch when the body does
    /// not match (a damaged file), as corrupt otherwise.
    fn next_block(&mut self) -> Result<Option<Vec<u8>>, CheckpointError> {
        let mut length = [0u8; 8];
        if let Err(error) = self.body.reader.read_exact(&mut length) {
            return Err(self.body.failed(Box::new(bincode::ErrorKind::Io(error))));
        }
        let length = u64::from_le_bytes(length);
        if length == 0 {
            return if self.body.intact() && self.body.remaining() == 0 {
                Ok(None)
            } else {
                Err(self.body.mismatch())
            };
        }
        if length > self.body.remaining() {
            let reason = format!("a block of {length} bytes in what is left of the body");
            return Err(self
                .body
                .failed(Box::new(bincode::ErrorKind::Custom(reason))));
        }
        let mut bytes = vec![0u8; length as usize];
        if let Err(error) = self.body.reader.read_exact(&mut bytes) {
            return Err(self.body.failed(Box::new(bincode::ErrorKind::Io(error))));
        }
        Ok(Some(bytes))
    }
}

/// Where a reader's blocks come from.
enum Source<T> {
    /// Read and decoded by the reader's caller.
    Inline(Blocks),
    /// Decoded by threads, block `n` by thread `n % threads`, the end marked explicitly: a
    /// thread that stopped short is an error, not the end of the segment.
    Parallel {
        outputs: Vec<Receiver<Block<Vec<T>>>>,
        next: usize,
    },
}

/// The records of a segment, a block at a time ([`read_segment`], [`read_segment_parallel`]).
///
/// The checksum covers the whole file, so it is verified only after the last record: the
/// reader then yields an error if it does not match, after records of the damaged file. Commit
/// nothing built from the records before the reader has returned `None`. After an error it
/// returns `None`. A block that does not decode is reported as a checksum mismatch when the
/// file does not match its checksum (a torn or altered file), as a decoding error otherwise.
pub struct SegmentReader<T> {
    path: PathBuf,
    source: Source<T>,
    block: std::vec::IntoIter<T>,
    finished: bool,
}

impl<T: DeserializeOwned> SegmentReader<T> {
    /// The next block's records; `None` after the last.
    fn next_block(&mut self) -> Option<Result<Vec<T>, Failure>> {
        match &mut self.source {
            Source::Inline(blocks) => match blocks.next_block() {
                Ok(Some(bytes)) => Some(decode_block(&bytes)),
                Ok(None) => None,
                Err(error) => Some(Err(Failure::Read(error))),
            },
            Source::Parallel { outputs, next } => {
                let output = &outputs[*next % outputs.len()];
                *next += 1;
                match output.recv() {
                    Ok(block) => block.transpose(),
                    Err(_) => Some(Err(Failure::Read(CheckpointError::Corrupt {
                        path: self.path.clone(),
                        reason: "a thread reading the segment stopped before its end".into(),
                    }))),
                }
            }
        }
    }

    /// The error to report for `failure`: a block that did not decode is a checksum mismatch
    /// when the file does not match its checksum (a torn or altered file), else itself.
    fn explain(&self, failure: Failure) -> CheckpointError {
        let error = match failure {
            Failure::Read(error) => return error,
            Failure::Decode(error) => error,
        };
        let corrupt = |reason: String| CheckpointError::Corrupt {
            path: self.path.clone(),
            reason,
        };
        match super::body_matches(&self.path) {
            Ok(false) => corrupt("checksum mismatch".into()),
            Ok(true) => corrupt(format!("decoding: {error}")),
            Err(other) => other,
        }
    }
}

impl<T: DeserializeOwned> Iterator for SegmentReader<T> {
    type Item = Result<T, CheckpointError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(record) = self.block.next() {
                return Some(Ok(record));
            }
            if self.finished {
                return None;
            }
            match self.next_block() {
                Some(Ok(records)) => self.block = records.into_iter(),
                Some(Err(error)) => {
                    self.finished = true;
                    return Some(Err(self.explain(error)));
                }
                None => {
                    self.finished = true;
                    return None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::super::{FORMAT_VERSION, HEADER_LEN, read_verified};
    use super::*;
    use crate::checkpoint::testing::temp_dir;

    fn records() -> Vec<(String, Vec<u64>)> {
        (0..50)
            .map(|i| (format!("series-{i}"), (0..i % 4).collect()))
            .collect()
    }

    fn streamed<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, CheckpointError> {
        read_segment(path)?.collect()
    }

    /// Records over several blocks: about 3.5 MiB.
    fn many_records() -> Vec<(String, Vec<u64>)> {
        (0..60_000)
            .map(|i| (format!("series-{i:06}"), (0..i % 7).collect()))
            .collect()
    }

    fn parallel<T: DeserializeOwned + Send + 'static>(
        path: &Path,
    ) -> Result<Vec<T>, CheckpointError> {
        read_segment_parallel(path, 3)?.collect()
    }

    /// Both readers end the damaged segment at `path` (byte `at` altered) with a checksum
    /// mismatch.
    fn assert_both_readers_report_a_mismatch(path: &Path, at: usize) {
        for outcome in [
            streamed::<(String, Vec<u64>)>(path),
            parallel::<(String, Vec<u64>)>(path),
        ] {
            match outcome {
                Err(CheckpointError::Corrupt { reason, .. }) => {
                    assert_eq!(reason, "checksum mismatch", "byte {at}")
                }
                other => panic!("byte {at}: {:?}", other.map(|records| records.len())),
            }
        }
    }

    #[test]
    fn segments_read_back_inline_and_in_parallel() {
        let dir = temp_dir("round-trip");
        for records in [records(), many_records(), Vec::new()] {
            let path = dir.join("x.ckpt");
            let bytes = write_segment(&path, records.iter().cloned().map(Ok)).expect("written");
            assert_eq!(bytes, fs::metadata(&path).expect("written").len());
            assert_eq!(
                streamed::<(String, Vec<u64>)>(&path).expect("read"),
                records
            );
            assert_eq!(
                parallel::<(String, Vec<u64>)>(&path).expect("read"),
                records
            );
            assert!(!path.with_extension("tmp").exists());
        }
        let path = dir.join("x.ckpt");
        write_segment(&path, many_records().into_iter().map(Ok)).expect("written");
        let body = fs::metadata(&path).expect("written").len() as usize - HEADER_LEN;
        assert!(body > 3 * BLOCK_BYTES, "several blocks: {body} bytes");
    }

    #[test]
    fn a_damaged_block_in_the_middle_ends_a_parallel_read_with_a_checksum_mismatch() {
        let path = temp_dir("damaged-middle").join("x.ckpt");
        write_segment(&path, many_records().into_iter().map(Ok)).expect("written");
        let bytes = fs::read(&path).expect("read");
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8"));
        // The body: the layout (a length and a string), then blocks (a length and a `Vec`).
        let first_block = HEADER_LEN + 8 + u64_at(HEADER_LEN) as usize;
        let second_block = first_block + 8 + u64_at(first_block) as usize;
        // Records in two places, then the second block's length and its count.
        for at in [
            bytes.len() / 2,
            bytes.len() / 3,
            second_block,
            second_block + 8,
        ] {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x40;
            fs::write(&path, &damaged).expect("damage");
            assert_both_readers_report_a_mismatch(&path, at);
        }
    }

    #[test]
    fn a_failing_stream_writes_nothing() {
        let dir = temp_dir("failing");
        let path = dir.join("x.ckpt");
        let failure = CheckpointError::Corrupt {
            path: dir.join("input"),
            reason: "checksum mismatch".into(),
        };
        let records = records().into_iter().map(Ok).chain([Err(failure)]);
        assert!(matches!(
            write_segment(&path, records),
            Err(CheckpointError::Corrupt { reason, .. }) if reason == "checksum mismatch"
        ));
        assert_eq!(fs::read_dir(&dir).expect("dir").count(), 0, "no file left");
    }

    #[test]
    fn any_damaged_byte_ends_the_stream_with_a_checksum_mismatch() {
        let path = temp_dir("damaged").join("x.ckpt");
        write_segment(&path, records().into_iter().map(Ok)).expect("written");
        let bytes = fs::read(&path).expect("read");
        for at in HEADER_LEN..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x80;
            fs::write(&path, &damaged).expect("damage");
            assert_both_readers_report_a_mismatch(&path, at);
        }
    }

    #[test]
    fn segments_of_another_format_version_are_refused() {
        let path = temp_dir("version").join("x.ckpt");
        write_segment(&path, records().into_iter().map(Ok)).expect("written");
        let mut bytes = fs::read(&path).expect("read");
        bytes[8..12].copy_from_slice(&(FORMAT_VERSION - 1).to_le_bytes());
        fs::write(&path, &bytes).expect("write");
        let older = |read: Result<(), CheckpointError>| match read {
            Err(CheckpointError::Version { found, .. }) => found == FORMAT_VERSION - 1,
            _ => false,
        };
        assert!(older(read_segment::<(String, Vec<u64>)>(&path).map(|_| ())));
        assert!(older(
            read_verified::<Vec<(String, Vec<u64>)>>(&path, Kind::Segment).map(|_| ())
        ));
    }
}
