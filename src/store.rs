//! The dashboard store.
/// Placeholder until the store lands.
#[derive(Clone)]
pub struct Store;
