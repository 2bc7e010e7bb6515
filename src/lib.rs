//! The flowboard server: CLI and configuration, the REST API for dashboards, HTTP ingest into
//! Kafka, the WebSocket fan-out of widget values, and the bridge to the timely dataflow.
//!
//! # Layout
//!
//! - [`config`]: command line and the validated [`config::Config`].
//! - [`broker`]: the embedded Kafka broker (librdkafka's mock cluster).
//! - [`model`]: dashboards and widgets.
//! - [`store`]: the dashboard store (embedded SQLite, or a shared PostgreSQL), and the watcher
//!   that follows changes other processes make to a shared one.
//! - [`auth`]: bearer tokens for ingest, dashboard writes and reads.
//! - [`api`]: REST routes for dashboards, widgets and snapshots; [`error`]: their errors.
//! - [`ingest`]: `POST /ingest` → Kafka.
//! - [`hub`]: latest widget values, staleness, refresh throttling, per-dashboard fan-out.
//! - [`ws`]: `WS /stream/{dashboard_id}`.
//! - [`ui`]: the web dashboard at `/`, its assets compiled into the binary.
//! - [`bridge`]: where timely worker threads hand values to tokio.
//! - [`values_topic`]: widget values through Kafka, for frontends outside the timely cluster.
//! - [`metrics`]: `GET /metrics`; [`health`]: `GET /healthz` and `GET /readyz`.
//! - [`server`]: wires it all together and runs it.

#![deny(missing_docs)]

pub mod api;
pub mod auth;
pub mod bridge;
pub mod broker;
pub mod config;
pub mod error;
pub mod health;
pub mod hub;
pub mod ingest;
pub mod metrics;
pub mod model;
pub mod server;
pub mod store;
pub mod ui;
pub mod values_topic;
pub mod ws;
