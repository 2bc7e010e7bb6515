//! Segments as streams of records: read one at a time as they are decoded, written from an
//! iterator, in the format of a segment written whole (a bincode `Vec` of the records).

use std::marker::PhantomData;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Body, CheckpointError, Draft, Kind, pane_layout};

/// Writes a segment from a stream of records, atomically like [`write_atomic`](super::write_atomic),
/// in the same format (a `Vec` of the records): [`read_verified`](super::read_verified) and
/// [`read_segment`] both read it. Returns
/// the number of bytes written.
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
    // The records' count, which a `Vec` encodes before them, is known only after the last one
    // (a compaction's output is a merge, filtered): a placeholder now, filled in at commit. The
    // body's checksum is assembled from its three runs; CRC-32s of consecutive runs combine.
    let mut checksum = draft.take_checksum();
    let count_at = draft.reserve(8)?;
    let mut count = 0u64;
    for record in records {
        draft.encode(&record?)?;
        count += 1;
    }
    let records_checksum = draft.take_checksum();
    let count_bytes = count.to_le_bytes();
    let mut count_checksum = crc32fast::Hasher::new();
    count_checksum.update(&count_bytes);
    checksum.combine(&count_checksum);
    checksum.combine(&records_checksum);
    draft.commit(checksum.finalize(), &[(count_at, &count_bytes)])
}

/// Opens a segment to read its records one at a time; see [`SegmentReader`].
pub fn read_segment<T: DeserializeOwned>(path: &Path) -> Result<SegmentReader<T>, CheckpointError> {
    // A small buffer: a compaction reads every segment of a chain at once.
    let mut body = Body::open(path, Kind::Segment, 64 << 10)?;
    let remaining = body.decode().map_err(|error| body.failed(error))?;
    Ok(SegmentReader {
        body,
        remaining,
        finished: false,
        records: PhantomData,
    })
}

/// The records of a segment, decoded one at a time as they are read ([`read_segment`]).
///
/// The checksum covers the whole file, so it is verified only after the last record: the
/// reader then yields an error if it does not match, after records of the damaged file. Commit
/// nothing built from the records before the reader has returned `None`. After an error it
/// returns `None`.
pub struct SegmentReader<T> {
    body: Body,
    remaining: u64,
    finished: bool,
    records: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Iterator for SegmentReader<T> {
    type Item = Result<T, CheckpointError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        if self.remaining == 0 {
            self.finished = true;
            return (!self.body.intact()).then(|| Err(self.body.mismatch()));
        }
        self.remaining -= 1;
        match self.body.decode() {
            Ok(record) => Some(Ok(record)),
            Err(error) => {
                self.finished = true;
                Some(Err(self.body.failed(error)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::super::{FORMAT_VERSION, HEADER_LEN, read_verified, write_atomic};
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

    #[test]
    fn streamed_and_whole_segments_read_either_way() {
        let dir = temp_dir("either");
        for records in [records(), Vec::new()] {
            let whole = dir.join("whole.ckpt");
            let stream = dir.join("stream.ckpt");
            let whole_bytes = write_atomic(&whole, Kind::Segment, &records).expect("written");
            let stream_bytes =
                write_segment(&stream, records.iter().cloned().map(Ok)).expect("written");
            assert_eq!(whole_bytes, stream_bytes);
            assert_eq!(
                fs::read(&whole).expect("read"),
                fs::read(&stream).expect("read")
            );
            assert_eq!(
                streamed::<(String, Vec<u64>)>(&whole).expect("read"),
                records
            );
            let read: Vec<(String, Vec<u64>)> =
                read_verified(&stream, Kind::Segment).expect("read");
            assert_eq!(read, records);
            assert!(!stream.with_extension("tmp").exists());
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
            let outcome = read_segment::<(String, Vec<u64>)>(&path)
                .and_then(|reader| reader.last().unwrap_or(Ok(Default::default())));
            match outcome {
                Err(CheckpointError::Corrupt { reason, .. }) => {
                    assert_eq!(reason, "checksum mismatch", "byte {at}")
                }
                other => panic!("byte {at}: {other:?}"),
            }
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
