//! Sliding-window aggregation operators for timely and differential dataflow.
//!
//! flowboard keeps, for every widget of every dashboard, an aggregate (`count`, `sum`, `avg`,
//! `min`, `max`, `last`, `rate`, or one you add) over a sliding window of recent samples. This
//! crate holds the parts of that which know nothing of Kafka, HTTP or tokio. It is a library:
//! `examples/sliding_windows.rs` builds a small dataflow with it alone
//! (`cargo run -p operators --example sliding_windows`), and `README.md` shows how to add an
//! aggregation, which is one file and one line.
//!
//! # Layout
//!
//! - [`aggregation`]: the [`Aggregation`](aggregation::Aggregation) trait every aggregation
//!   implements — pane partials, merging, eviction, read-out.
//! - [`aggregations`]: the aggregations, one per file, and the list registering them (one line
//!   each).
//! - [`registry`]: the types generated from that list: [`AggregationKind`](registry::AggregationKind)
//!   (by name), the partials of one pane ([`PaneSet`](registry::PaneSet),
//!   [`AnyPane`](registry::AnyPane)).
//! - [`series_pane`]: [`SeriesPane`](series_pane::SeriesPane), one pane of one series, kept as
//!   its single sample until it has more.
//! - [`window`]: a sliding window over panes for any aggregation.
//! - [`window_aggregate`]: the timely operator keeping one window per key.
//! - [`progress`]: helpers for operators that handle times in order once complete.
//!
//! Time is epoch milliseconds (`u64`) throughout. Samples are pre-aggregated into panes of a
//! fixed width; windows are whole numbers of panes.
//!
//! # Examples
//!
//! An aggregation's window on its own, with panes one second wide: the most recent value by
//! event time, and events per second, over the last 3 seconds.
//!
//! ```
//! use operators::registry::{AggregationKind, PaneSet};
//!
//! let mut last = AggregationKind::Last.new_window(3_000);
//! let mut rate = AggregationKind::Rate.new_window(3_000);
//! for (pane_end, samples) in [(1_000, vec![(400, 7.0), (900, 2.0)]), (2_000, vec![(1_500, 4.0)])] {
//!     let mut pane = PaneSet::empty();
//!     for (event_time, value) in samples {
//!         pane.insert(event_time, value);
//!     }
//!     last.merge(pane_end, &pane.project(AggregationKind::Last));
//!     rate.merge(pane_end, &pane.project(AggregationKind::Rate));
//! }
//! assert_eq!((last.value(2_000), rate.value(2_000)), (Some(4.0), Some(1.0)));
//! // At 4 s the pane ending at 1 s has left the window.
//! last.advance_to(4_000);
//! rate.advance_to(4_000);
//! assert_eq!((last.value(4_000), rate.value(4_000)), (Some(4.0), Some(1.0 / 3.0)));
//! ```

#![deny(missing_docs)]

pub mod aggregation;
pub mod aggregations;
pub mod progress;
pub mod registry;
pub mod series_pane;
pub mod window;
pub mod window_aggregate;
