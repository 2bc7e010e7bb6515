//! flowboard's dataflow: from Kafka records to per-widget sliding-window values.
//!
//! ```text
//! Kafka partitions ──▶ KafkaSource (per worker: assigned partitions, decode, pre-aggregate
//!                      into panes per series, watermark)
//!                 ──exchange by series──▶ SeriesStore (retained panes per series; broadcast join
//!                      with the widget collection; backfill of new widgets)
//!                 ──exchange by widget──▶ window_aggregate (operators crate)
//!                 ──▶ Sink (changed values + closed time, handed to a callback; never blocks)
//! ```
//!
//! # Layout
//!
//! - [`checkpoint`]: consistent checkpoints of pane state and Kafka offsets, and restore.
//! - [`event`]: the event format, its validation, and decoding of Kafka records / HTTP bodies.
//! - [`series`]: series identity (metric + tags) and tag filters.
//! - [`widget`]: a widget as the dataflow sees it, and the commands that change the widget set.
//! - [`time`]: panes, ticks and the watermark rule.
//! - [`kafka_source`]: the Kafka source operator; [`kafka_log`]: rate-limited client error logs.
//! - [`series_store`]: the series store operator.
//! - [`sink`]: the sink operator and what it hands to the outside.
//! - [`pipeline`]: builds the dataflow and runs it on its own threads.
//! - [`stats`]: counters shared with the HTTP side (metrics, health).

#![deny(missing_docs)]

pub mod checkpoint;
pub mod event;
pub mod kafka_log;
pub mod kafka_source;
pub mod pipeline;
pub mod series;
pub mod series_store;
pub mod sink;
pub mod stats;
pub mod time;
pub mod widget;
