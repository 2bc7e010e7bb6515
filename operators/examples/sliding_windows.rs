//! Sliding-window aggregates with the `operators` crate alone: no Kafka, no HTTP, no tokio.
//!
//! Run it with `cargo run -p operators --example sliding_windows`.
//!
//! Two series of samples, `cpu` readings and `http.request` events, are pre-aggregated into
//! one-second panes (a [`PaneSet`] per series and pane, as flowboard's Kafka source does), and
//! fed to the [`window_aggregate`](WindowAggregate::window_aggregate) operator for four widgets,
//! each a series read through a [`WindowSpec`]. After every closed time the example prints each
//! widget's value (`-` for `null`). One `cpu` sample is late: it happened at 3.1 s but reaches the
//! dataflow at 6 s, and counts from then on, for what is left of its life in each window.
//!
//! Aggregations are looked up by name, as the REST API does, so any aggregation registered in
//! `operators/src/aggregations/mod.rs` can be tried here by adding a line to `WIDGETS`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use differential_dataflow::input::Input;
use operators::registry::{AggregationKind, AnyPane, PaneSet};
use operators::window::PANE_MS;
use operators::window_aggregate::{WindowAggregate, WindowChange, WindowSpec};
use timely::dataflow::operators::probe::Handle;
use timely::dataflow::operators::{Input as _, Inspect, Probe};

/// The samples: series, event time (ms), value, and the closed time (ms) at which it reaches the
/// dataflow (at the end of its pane, unless it is late).
const SAMPLES: &[(&str, u64, f64, u64)] = &[
    ("cpu", 400, 50.0, 1_000),
    ("cpu", 1_300, 70.0, 2_000),
    ("cpu", 2_600, 95.0, 3_000),
    ("cpu", 4_200, 60.0, 5_000),
    ("cpu", 5_500, 55.0, 6_000),
    ("cpu", 3_100, 99.0, 6_000), // late
    ("cpu", 7_900, 40.0, 8_000),
    ("http.request", 100, 1.0, 1_000),
    ("http.request", 200, 1.0, 1_000),
    ("http.request", 900, 1.0, 1_000),
    ("http.request", 1_500, 1.0, 2_000),
    ("http.request", 2_100, 1.0, 3_000),
    ("http.request", 2_200, 1.0, 3_000),
    ("http.request", 2_300, 1.0, 3_000),
    ("http.request", 2_400, 1.0, 3_000),
    ("http.request", 6_700, 1.0, 7_000),
];

/// The widgets: name, series, aggregation, window length in seconds.
const WIDGETS: &[(&str, &str, &str, u64)] = &[
    ("cpu max/3s", "cpu", "max", 3),
    ("cpu last/5s", "cpu", "last", 5),
    ("req count/5s", "http.request", "count", 5),
    ("req rate/5s", "http.request", "rate", 5),
];

/// Closed times printed: every second from 0 to this, in seconds (the last data comes at 8 s;
/// the windows then drain).
const LAST_SECOND: u64 = 14;

fn main() {
    timely::execute_directly(|worker| {
        // Each widget's current value, as reported by the operator.
        let values: Rc<RefCell<BTreeMap<String, Option<f64>>>> = Rc::default();
        let probe = Handle::new();
        let (mut partials, mut specs) = worker.dataflow::<u64, _, _>(|scope| {
            let (partials, stream) = scope.new_input();
            let (specs, collection) = scope.new_collection();
            let seen = values.clone();
            stream
                .window_aggregate(collection)
                .inspect(move |(widget, change): &(String, WindowChange)| {
                    let mut seen = seen.borrow_mut();
                    match change {
                        WindowChange::Value(value) => seen.insert(widget.clone(), *value),
                        WindowChange::Removed => seen.remove(widget),
                    };
                })
                .probe_with(&probe);
            (partials, specs)
        });

        for &(widget, _, aggregation, seconds) in WIDGETS {
            let aggregation = AggregationKind::from_name(aggregation)
                .unwrap_or_else(|| panic!("no aggregation named {aggregation}"));
            let spec = WindowSpec {
                aggregation,
                window_ms: seconds * PANE_MS,
            };
            specs.insert((widget.to_string(), spec));
        }

        let names: Vec<&str> = WIDGETS.iter().map(|(name, ..)| *name).collect();
        println!("{:>6} | {}", "time", names.join(" | "));
        for second in 0..=LAST_SECOND {
            let time = second * PANE_MS;
            partials.advance_to(time);
            specs.advance_to(time);
            for (widget, pane_end, pane) in panes_arriving_at(time) {
                partials.send((widget.to_string(), pane_end, pane));
            }
            // Close `time`, and let the dataflow report everything up to it.
            partials.advance_to(time + 1);
            specs.advance_to(time + 1);
            specs.flush();
            worker.step_while(|| probe.less_than(&(time + 1)));

            let values = values.borrow();
            let row: Vec<String> = names
                .iter()
                .map(|name| match values.get(*name).copied().flatten() {
                    Some(value) => format!("{value:>width$}", width = name.len()),
                    None => format!("{:>width$}", "-", width = name.len()),
                })
                .collect();
            println!("{:>5}s | {}", second, row.join(" | "));
        }
    });
}

/// The partials that reach the dataflow at closed time `time`, per widget: the samples arriving
/// then, pre-aggregated into one [`PaneSet`] per series and pane, each projected to the
/// aggregation of every widget reading that series.
fn panes_arriving_at(time: u64) -> Vec<(&'static str, u64, AnyPane)> {
    let mut panes: BTreeMap<(&str, u64), PaneSet> = BTreeMap::new();
    for &(series, event_time, value, arrival) in SAMPLES {
        let pane_end = event_time.div_ceil(PANE_MS) * PANE_MS;
        if arrival.max(pane_end) == time {
            panes
                .entry((series, pane_end))
                .or_default()
                .insert(event_time, value);
        }
    }
    let mut partials = Vec::new();
    for ((series, pane_end), pane) in panes {
        for &(widget, reads, aggregation, _) in WIDGETS {
            if let (true, Some(kind)) = (reads == series, AggregationKind::from_name(aggregation)) {
                partials.push((widget, pane_end, pane.project(kind)));
            }
        }
    }
    partials
}
