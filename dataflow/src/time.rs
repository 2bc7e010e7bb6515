//! Time in the dataflow: epoch milliseconds, panes and ticks.
//!
//! Samples are pre-aggregated into panes of [`PANE_MS`]: the pane ending at `P` holds the
//! samples with `P - PANE_MS < event_time <= P`. The dataflow's timestamps are pane ends; the
//! closed time `T` (the watermark) advances one pane at a time, and a widget's value as of `T`
//! covers the panes ending in `(T - window, T]`, i.e. the samples with
//! `T - window < event_time <= T`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Width of a pane, and the step of the closed time, in milliseconds: the pane width the
/// operators' windows assume.
pub const PANE_MS: u64 = operators::window::PANE_MS;

/// The end of the pane holding a sample taken at `event_ms`.
pub fn pane_end(event_ms: u64) -> u64 {
    event_ms.div_ceil(PANE_MS) * PANE_MS
}

/// The wall clock, in epoch milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panes_are_closed_on_the_right() {
        assert_eq!(pane_end(0), 0);
        assert_eq!(pane_end(1), 1_000);
        assert_eq!(pane_end(999), 1_000);
        assert_eq!(pane_end(1_000), 1_000);
        assert_eq!(pane_end(1_001), 2_000);
    }
}

/// The watermark rule for a set of Kafka partitions.
///
/// A partition that is caught up (the consumer reached its end) vouches for everything up to
/// the wall clock minus a grace period. A partition with records still to read vouches only for
/// the newest event time read from it (never beyond the wall clock minus grace). A partition
/// that has not reported at all yet vouches for nothing. The watermark is the minimum over
/// partitions, and never moves backwards.
///
/// # Examples
///
/// ```
/// use dataflow::time::Watermarks;
///
/// let mut marks = Watermarks::new(&[0, 1], 100);
/// assert_eq!(marks.watermark(10_000), 0);           // nothing known yet
/// marks.observe(0, 7_000);
/// marks.caught_up(1);
/// assert_eq!(marks.watermark(10_000), 7_000);       // partition 0 is still reading
/// marks.caught_up(0);
/// assert_eq!(marks.watermark(10_000), 9_900);       // both caught up: wall clock - grace
/// ```
#[derive(Clone, Debug)]
pub struct Watermarks {
    grace_ms: u64,
    partitions: Vec<(i32, PartitionMark)>,
    current: u64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum PartitionMark {
    Unknown,
    Reading { newest_event: u64 },
    CaughtUp { newest_event: u64 },
}

impl Watermarks {
    /// Watermarks over `partitions`, closing time `grace_ms` behind the wall clock.
    pub fn new(partitions: &[i32], grace_ms: u64) -> Self {
        Watermarks {
            grace_ms,
            partitions: partitions
                .iter()
                .map(|p| (*p, PartitionMark::Unknown))
                .collect(),
            current: 0,
        }
    }

    fn mark(&mut self, partition: i32) -> Option<&mut PartitionMark> {
        self.partitions
            .iter_mut()
            .find(|(p, _)| *p == partition)
            .map(|(_, mark)| mark)
    }

    /// Starts tracking a partition added after start (it vouches for nothing until read).
    pub fn add_partition(&mut self, partition: i32) {
        if !self.partitions.iter().any(|(p, _)| *p == partition) {
            self.partitions.push((partition, PartitionMark::Unknown));
        }
    }

    /// The watermark as last computed, without advancing it.
    pub fn current(&self) -> u64 {
        self.current
    }

    /// A record with `event_time` was read from `partition`.
    pub fn observe(&mut self, partition: i32, event_time: u64) {
        if let Some(mark) = self.mark(partition) {
            let newest = match *mark {
                PartitionMark::Unknown => event_time,
                PartitionMark::Reading { newest_event }
                | PartitionMark::CaughtUp { newest_event } => newest_event.max(event_time),
            };
            *mark = PartitionMark::Reading {
                newest_event: newest,
            };
        }
    }

    /// The consumer reached the end of `partition`.
    pub fn caught_up(&mut self, partition: i32) {
        if let Some(mark) = self.mark(partition) {
            let newest_event = match *mark {
                PartitionMark::Unknown => 0,
                PartitionMark::Reading { newest_event }
                | PartitionMark::CaughtUp { newest_event } => newest_event,
            };
            *mark = PartitionMark::CaughtUp { newest_event };
        }
    }

    /// Whether every partition has been read to its end at least once since it last had data.
    pub fn all_caught_up(&self) -> bool {
        self.partitions
            .iter()
            .all(|(_, mark)| matches!(mark, PartitionMark::CaughtUp { .. }))
    }

    /// The watermark at wall-clock time `now`: every event at or before it has been read.
    pub fn watermark(&mut self, now: u64) -> u64 {
        let wall = now.saturating_sub(self.grace_ms);
        let candidate = self
            .partitions
            .iter()
            .map(|(_, mark)| match *mark {
                PartitionMark::Unknown => 0,
                PartitionMark::Reading { newest_event } => newest_event.min(wall),
                PartitionMark::CaughtUp { .. } => wall,
            })
            .min()
            .unwrap_or(wall);
        self.current = self.current.max(candidate);
        self.current
    }
}
