//! The window structures on their own: random merges (in order, late, ahead, off the pane grid)
//! and evictions against a naive window that keeps every sample and recomputes from scratch.
//!
//! Every registered aggregation is exercised, over windows from one pane to a day of one-second
//! panes, dense and sparse. Values are compared with the aggregation's plain-iterator oracle
//! where it has one, or the fresh-pane oracle.

#[path = "support/reference.rs"]
mod reference;

use std::collections::BTreeMap;

use operators::aggregation::{SumCount, WindowExtent};
use operators::aggregations::{Avg, Count, Max, Min, Sum};
use operators::registry::{AggregationKind, PaneSet};
use operators::window::{PANE_MS, SlidingWindow, WindowState};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use reference::{Compare, References, fresh};

/// A window that keeps every sample by pane end and folds them from scratch on every read.
struct NaiveWindow {
    window_ms: u64,
    as_of: u64,
    panes: BTreeMap<u64, Vec<(u64, f64)>>,
}

impl NaiveWindow {
    fn new(window_ms: u64) -> Self {
        NaiveWindow {
            window_ms,
            as_of: 0,
            panes: BTreeMap::new(),
        }
    }
    fn merge(&mut self, pane_end: u64, samples: &[(u64, f64)]) {
        if pane_end.saturating_add(self.window_ms) > self.as_of {
            self.panes.entry(pane_end).or_default().extend(samples);
        }
    }
    fn advance_to(&mut self, as_of: u64) {
        self.as_of = self.as_of.max(as_of);
        while let Some(entry) = self.panes.first_entry() {
            if entry.key().saturating_add(self.window_ms) > self.as_of {
                break;
            }
            entry.remove();
        }
    }
    fn value(&self, kind: AggregationKind) -> Option<f64> {
        let samples: Vec<(u64, f64)> = self.panes.values().flatten().copied().collect();
        let extent = WindowExtent {
            window_ms: self.window_ms,
            as_of: self.as_of,
        };
        match References::of(kind) {
            Some(reference) => (reference.compute)(&samples, extent),
            None => fresh(kind, self.window_ms, self.as_of, samples),
        }
    }
    fn next_expiry(&self) -> Option<u64> {
        let first = self.panes.keys().next()?;
        Some(first.saturating_add(self.window_ms))
    }
}

/// Compares `window` with `naive` (value, panes held, next expiry).
fn assert_same(window: &mut dyn WindowState, naive: &NaiveWindow, kind: AggregationKind) {
    let expected = naive.value(kind);
    let actual = window.value(naive.as_of);
    let compare = References::of(kind).map_or(Compare::DEFAULT, |r| r.compare);
    assert!(
        compare.matches(actual, expected),
        "{kind} over {} ms as of {}: window says {actual:?}, recompute says {expected:?}",
        naive.window_ms,
        naive.as_of
    );
    assert_eq!(window.len(), naive.panes.len(), "{kind}: panes held");
    assert_eq!(
        window.next_expiry(),
        naive.next_expiry(),
        "{kind}: next expiry"
    );
}

/// How a random run places its partials.
#[derive(Clone, Copy)]
struct Traffic {
    /// Probability that a tick brings data.
    density: f64,
    /// Whether some partials are off the pane grid or far ahead of the window.
    outliers: bool,
}

/// Drives a window of `window_panes` one-second panes for `ticks` ticks of random traffic, and
/// compares it with the naive window every `check_every` ticks and at the end.
fn run(kind: AggregationKind, window_panes: u64, ticks: u64, traffic: Traffic, seed: u64) {
    let window_ms = window_panes * PANE_MS;
    let mut rng = StdRng::seed_from_u64(seed ^ window_panes.rotate_left(17));
    let mut window = kind.new_window(window_ms);
    let mut naive = NaiveWindow::new(window_ms);
    let check_every = (window_panes / 8).clamp(1, 4_999);
    for tick in 0..ticks {
        let now = tick * PANE_MS;
        window.advance_to(now);
        naive.advance_to(now);
        let partials = if rng.random_bool(traffic.density) {
            rng.random_range(1..=3)
        } else {
            0
        };
        for _ in 0..partials {
            let back = window_panes + 2;
            let pane_end = match rng.random_range(0..100) {
                0..70 => now,
                70..90 => now.saturating_sub(rng.random_range(1..=back.min(20)) * PANE_MS),
                90..96 => now.saturating_sub(rng.random_range(0..=back) * PANE_MS),
                96..98 => now + rng.random_range(1..=3) * PANE_MS,
                _ if traffic.outliers && rng.random_bool(0.5) => {
                    now.saturating_sub(rng.random_range(0..window_ms + 1))
                }
                _ if traffic.outliers => now + rng.random_range(3..10) * window_ms,
                _ => now,
            };
            let samples: Vec<(u64, f64)> = (0..rng.random_range(1..=3))
                .map(|_| (pane_end, rng.random_range(-1_000.0..1_000.0)))
                .collect();
            let mut pane = PaneSet::empty();
            for &(time, value) in &samples {
                pane.insert(time, value);
            }
            window.merge(pane_end, &pane.project(kind));
            naive.merge(pane_end, &samples);
        }
        if tick % check_every == 0 || tick + 1 == ticks {
            assert_same(window.as_mut(), &naive, kind);
        }
    }
    // Let everything expire: the window must come back to exactly empty.
    let end = (ticks + 20) * PANE_MS + 10 * window_ms;
    window.advance_to(end);
    naive.advance_to(end);
    assert_same(window.as_mut(), &naive, kind);
    assert!(window.is_empty());
}

const DENSE: Traffic = Traffic {
    density: 0.8,
    outliers: false,
};

#[test]
fn random_merges_and_evictions_match_a_naive_window() {
    let with_outliers = Traffic {
        density: 0.6,
        outliers: true,
    };
    for &kind in AggregationKind::ALL {
        for window_panes in [1, 2, 3, 7, 8, 9, 60, 63, 64, 65, 130, 300] {
            run(kind, window_panes, 600, DENSE, 1);
            run(kind, window_panes, 600, with_outliers, 2);
        }
    }
}

#[test]
fn hour_and_day_windows_match_a_naive_window() {
    for &kind in AggregationKind::ALL {
        run(kind, 3_600, 9_000, DENSE, 3);
        let sparse = Traffic {
            density: 0.05,
            outliers: false,
        };
        run(kind, 86_400, 100_000, sparse, 4);
    }
}

#[test]
fn a_day_window_allocates_for_the_panes_it_holds() {
    let day = 86_400 * PANE_MS;
    let hour = 3_600 * PANE_MS;
    let mut window = SlidingWindow::<Max>::new(day);
    assert_eq!(window.allocated_partials(), 0);
    // Three panes spread over the day: three partials, not 86,400 slots.
    for (at, value) in [(hour, 5.0), (9 * hour, 7.0), (20 * hour, 6.0)] {
        window.advance_to(at);
        window.merge_pane(at, &value);
    }
    assert_eq!(window.allocated_partials(), 3);
    assert_eq!(window.value(20 * hour), Some(7.0));
    // An hour of data every second costs about an hour of partials.
    for second in 1..=3_600 {
        let now = 20 * hour + second * PANE_MS;
        window.advance_to(now);
        window.merge_pane(now, &1.0);
    }
    let allocated = window.allocated_partials();
    assert!(allocated <= 3 + 3_600 + 2 * 64, "{allocated}");
    // Once everything left, nothing stays allocated.
    window.advance_to(30 * hour + day);
    assert_eq!((window.len(), window.allocated_partials()), (0, 0));
    assert_eq!(window.value(30 * hour + day), None);

    // A day of data once a minute: about a partial per minute.
    let mut window = SlidingWindow::<Min>::new(day);
    for minute in 1..=3 * 1_440 {
        let now = minute * 60 * PANE_MS;
        window.advance_to(now);
        window.merge_pane(now, &(minute as f64));
    }
    assert_eq!(window.len(), 1_440);
    let allocated = window.allocated_partials();
    assert!(allocated <= 2 * 1_440, "{allocated}");
    assert_eq!(window.value(3 * day), Some(2.0 * 1_440.0 + 1.0));
}

#[test]
fn min_and_max_retract_an_expiring_extreme_even_after_late_data() {
    let mut min = SlidingWindow::<Min>::new(5 * PANE_MS);
    let mut max = SlidingWindow::<Max>::new(5 * PANE_MS);
    let (mut lows, mut highs) = (Vec::new(), Vec::new());
    for second in 1..=12u64 {
        let now = second * PANE_MS;
        min.advance_to(now);
        max.advance_to(now);
        let value = match second {
            1 => 9.0,
            2..=4 => second as f64,
            _ => 0.5 * second as f64,
        };
        min.merge_pane(now, &-value);
        max.merge_pane(now, &value);
        if second == 5 {
            // Late: into the pane ending at 2 s, which stays until 7 s.
            min.merge_pane(2 * PANE_MS, &-100.0);
            max.merge_pane(2 * PANE_MS, &100.0);
        }
        lows.push(min.value(now).map(|v| -v));
        highs.push(max.value(now));
    }
    let expected: Vec<Option<f64>> = [
        9.0, 9.0, 9.0, 9.0, 100.0, 100.0, 4.0, 4.0, 4.5, 5.0, 5.5, 6.0,
    ]
    .into_iter()
    .map(Some)
    .collect();
    assert_eq!(highs, expected);
    assert_eq!(lows, expected);
}

#[test]
fn a_running_sum_recovers_from_cancellation_and_resets_exactly() {
    let window_ms = 60 * PANE_MS;
    let mut sum = SlidingWindow::<Sum>::new(window_ms);
    let mut naive = NaiveWindow::new(window_ms);
    for second in 0..2_000u64 {
        let now = second * PANE_MS;
        sum.advance_to(now);
        naive.advance_to(now);
        // 0.1 every second, and now and then a huge value that swamps it while it is held.
        let value = if second % 500 == 7 { 1e17 } else { 0.1 };
        sum.merge_pane(
            now,
            &SumCount {
                sum: value,
                count: 1,
            },
        );
        naive.merge(now, &[(now, value)]);
        // The huge value leaves 60 s after it came; by 64 evictions later the total has been
        // rebuilt from the panes and is accurate again.
        let phase = second % 500;
        if !(7..7 + 60 + 65).contains(&phase) {
            let expected = naive.value(AggregationKind::Sum);
            assert!(
                Compare::Relative(1e-12).matches(sum.value(now), expected),
                "at {second} s: {:?} vs {expected:?}",
                sum.value(now)
            );
        }
    }
    sum.advance_to(10_000 * PANE_MS);
    assert_eq!(sum.value(10_000 * PANE_MS), Some(0.0));
    let mut avg = SlidingWindow::<Avg>::new(window_ms);
    let mut count = SlidingWindow::<Count>::new(window_ms);
    for second in 0..100u64 {
        avg.advance_to(second * PANE_MS);
        count.advance_to(second * PANE_MS);
        let mut pane = PaneSet::empty();
        pane.insert(second * PANE_MS, 0.1 * second as f64);
        avg.merge(second * PANE_MS, &pane.project(AggregationKind::Avg));
        count.merge(second * PANE_MS, &pane.project(AggregationKind::Count));
    }
    avg.advance_to(1_000 * PANE_MS);
    count.advance_to(1_000 * PANE_MS);
    assert_eq!(avg.value(1_000 * PANE_MS), None);
    assert_eq!(count.value(1_000 * PANE_MS), Some(0.0));
}

#[test]
fn degenerate_windows_and_panes_do_not_panic() {
    for &kind in AggregationKind::ALL {
        for window_ms in [0, 1, 999, 2_500, u64::MAX / 2, u64::MAX] {
            let mut window = kind.new_window(window_ms);
            let mut naive = NaiveWindow::new(window_ms);
            let mut pane = PaneSet::empty();
            pane.insert(1, 1.0);
            for (as_of, pane_end) in [
                (0, 0),
                (0, 1),
                (1_000, 1_500),
                (1_000, 999),
                (3_000, u64::MAX),
            ] {
                window.advance_to(as_of);
                naive.advance_to(as_of);
                window.merge(pane_end, &pane.project(kind));
                naive.merge(pane_end, &[(1, 1.0)]);
                if window_ms > 0 {
                    assert_same(window.as_mut(), &naive, kind);
                }
            }
            window.advance_to(u64::MAX);
            let _ = window.value(u64::MAX);
        }
    }
    let mut tiny_panes = SlidingWindow::<Sum>::with_pane_ms(10, 0);
    tiny_panes.merge_pane(7, &SumCount { sum: 2.0, count: 1 });
    assert_eq!((tiny_panes.pane_ms(), tiny_panes.value(7)), (1, Some(2.0)));
}
