//! Time in the dataflow: epoch milliseconds, panes and ticks.
//!
//! Samples are pre-aggregated into panes of [`PANE_MS`]: the pane ending at `P` holds the
//! samples with `P - PANE_MS < event_time <= P`. The dataflow's timestamps are pane ends; the
//! closed time `T` (the watermark) advances one pane at a time, and a widget's value as of `T`
//! covers the panes ending in `(T - window, T]`, i.e. the samples with
//! `T - window < event_time <= T`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Width of a pane, and the step of the closed time, in milliseconds.
pub const PANE_MS: u64 = 1_000;

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
