//! Wires the server together: state shared by the HTTP handlers, the routes, and startup.

use std::sync::Arc;

use dataflow::pipeline::WidgetControl;

use crate::config::Config;
use crate::hub::Hub;
use crate::ingest::Ingest;
use crate::store::Store;

/// What every HTTP handler can reach.
pub struct AppState {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// The dashboard store.
    pub store: Store,
    /// Latest widget values and WebSocket fan-out.
    pub hub: Hub,
    /// Sends widget changes into the dataflow.
    pub widgets: WidgetControl,
    /// Produces ingested events to Kafka.
    pub ingest: Ingest,
}

/// Shared handle to the state.
pub type SharedState = Arc<AppState>;
