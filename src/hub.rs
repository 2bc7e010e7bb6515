//! Latest widget values and their fan-out.
/// Placeholder until the hub lands.
#[derive(Clone)]
pub struct Hub;
