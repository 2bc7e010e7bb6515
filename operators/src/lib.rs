//! Sliding-window aggregation operators for timely and differential dataflow.
//!
//! flowboard keeps, for every widget of every dashboard, an aggregate (`sum`, `avg`, `min`,
//! `max`, `count`, or one you add) over a sliding window of recent samples. This crate holds the
//! parts of that which know nothing of Kafka, HTTP or tokio:
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
//! - [`window`]: a sliding window over panes for any aggregation.
//! - [`window_aggregate`]: the timely operator keeping one window per key.
//!
//! Time is epoch milliseconds (`u64`) throughout. Samples are pre-aggregated into panes of a
//! fixed width; windows are whole numbers of panes.

#![deny(missing_docs)]

pub mod aggregation;
pub mod aggregations;
pub mod registry;
pub mod window;
pub mod window_aggregate;
