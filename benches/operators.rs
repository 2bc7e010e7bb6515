//! Micro benchmarks of the sliding-window hot paths: pane pre-aggregation, one window tick, and
//! a late merge.
//!
//! `window_tick/<aggregation>/<panes>` is what the `window_aggregate` operator does for one
//! widget at each closed time: evict the pane that left, merge the newest pane, read the value.
//! Its cost must stay flat (sum: running total) or grow with the logarithm (min/max: FlatFAT)
//! from 60 panes (1 min) to 86,400 (24 h), never linearly. Throughput is in ticks per second.
//! Random values let min/max stop their tree walks early; `window_tick_worst` feeds them
//! monotone values, so that every pane leaving holds the window's extreme and every eviction
//! walks the tree to its root (that case includes building each tick's partial).
//!
//! ```text
//! cargo bench --bench operators              # full run
//! cargo bench --bench operators -- --quick   # a few seconds per case
//! ```

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use operators::registry::{AggregationKind, AnyPane, PaneSet};
use operators::window::{PANE_MS, WindowState};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Window lengths, in one-second panes, with their names.
const WINDOWS: [(&str, u64); 4] = [("1min", 60), ("5min", 300), ("1h", 3_600), ("24h", 86_400)];

/// Aggregations benchmarked: one per eviction strategy and shape of partial.
const KINDS: [AggregationKind; 4] = [
    AggregationKind::Sum,
    AggregationKind::Avg,
    AggregationKind::Min,
    AggregationKind::Max,
];

/// Random sample values, the same on every run.
fn values(count: usize) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(7);
    (0..count).map(|_| rng.random_range(0.0..1_000.0)).collect()
}

/// Pane partials of `kind`, each of a few samples.
fn partials(kind: AggregationKind, count: usize) -> Vec<AnyPane> {
    values(count * 4)
        .chunks(4)
        .map(|chunk| {
            let mut pane = PaneSet::empty();
            for &value in chunk {
                pane.insert(0, value);
            }
            pane.project(kind)
        })
        .collect()
}

/// A window of `panes` panes, full: one partial in each of its panes, as of `panes` seconds.
fn full_window(kind: AggregationKind, panes: u64, partials: &[AnyPane]) -> Box<dyn WindowState> {
    let mut window = kind.new_window(panes * PANE_MS);
    for pane in 1..=panes {
        let now = pane * PANE_MS;
        window.advance_to(now);
        window.merge(now, &partials[pane as usize % partials.len()]);
    }
    window
}

/// `PaneSet::insert`: one sample into the partials of every registered aggregation.
fn pane_insert(c: &mut Criterion) {
    let values = values(1_024);
    let mut group = c.benchmark_group("pane_insert");
    group.throughput(Throughput::Elements(values.len() as u64));
    group.bench_function("1024_samples", |b| {
        b.iter(|| {
            let mut pane = PaneSet::empty();
            for (i, &value) in values.iter().enumerate() {
                pane.insert(i as u64, value);
            }
            black_box(pane)
        })
    });
    group.finish();
}

/// One closed time for one widget: evict, merge the newest pane, read.
fn window_tick(c: &mut Criterion) {
    let mut group = c.benchmark_group("window_tick");
    group.throughput(Throughput::Elements(1));
    for kind in KINDS {
        let partials = partials(kind, 4_096);
        for (name, panes) in WINDOWS {
            let mut window = full_window(kind, panes, &partials);
            let mut now = panes * PANE_MS;
            let id = BenchmarkId::new(kind.name(), format!("{name}_{panes}_panes"));
            group.bench_function(id, |b| {
                b.iter(|| {
                    now += PANE_MS;
                    window.advance_to(now);
                    let partial = &partials[(now / PANE_MS) as usize % partials.len()];
                    window.merge(now, partial);
                    black_box(window.value(now))
                })
            });
        }
    }
    group.finish();
}

/// One closed time for one widget, with every pane leaving holding the window's extreme: rising
/// values for min, falling ones for max.
fn window_tick_worst(c: &mut Criterion) {
    let mut group = c.benchmark_group("window_tick_worst");
    group.throughput(Throughput::Elements(1));
    for (kind, sign) in [(AggregationKind::Min, 1.0), (AggregationKind::Max, -1.0)] {
        let partial = |pane: u64| {
            let mut partial = PaneSet::empty();
            partial.insert(pane * PANE_MS, sign * pane as f64);
            partial.project(kind)
        };
        for (name, panes) in WINDOWS {
            let mut window = kind.new_window(panes * PANE_MS);
            for pane in 1..=panes {
                window.advance_to(pane * PANE_MS);
                window.merge(pane * PANE_MS, &partial(pane));
            }
            let mut pane = panes;
            let id = BenchmarkId::new(kind.name(), format!("{name}_{panes}_panes"));
            group.bench_function(id, |b| {
                b.iter(|| {
                    pane += 1;
                    let now = pane * PANE_MS;
                    window.advance_to(now);
                    window.merge(now, &partial(pane));
                    black_box(window.value(now))
                })
            });
        }
    }
    group.finish();
}

/// A partial merged into the newest pane, or into the pane ten back (late data), then a read;
/// the window does not slide.
fn late_merge(c: &mut Criterion) {
    let mut group = c.benchmark_group("late_merge");
    group.throughput(Throughput::Elements(1));
    for kind in [AggregationKind::Sum, AggregationKind::Max] {
        let partials = partials(kind, 4_096);
        let panes = 3_600;
        let now = panes * PANE_MS;
        for (name, pane_end) in [("newest", now), ("10_panes_back", now - 10 * PANE_MS)] {
            let mut window = full_window(kind, panes, &partials);
            let mut next = 0;
            let id = BenchmarkId::new(kind.name(), format!("1h_{name}"));
            group.bench_function(id, |b| {
                b.iter(|| {
                    next = (next + 1) % partials.len();
                    window.merge(pane_end, &partials[next]);
                    black_box(window.value(now))
                })
            });
        }
    }
    group.finish();
}

criterion_group!(
    benches,
    pane_insert,
    window_tick,
    window_tick_worst,
    late_merge
);
criterion_main!(benches);
