//! Shared support for the window tests: from-scratch oracles and the operator harness.
//!
//! `reference` answers what a window's value should be without the window machinery;
//! `harness` runs the `window_aggregate` operator over random scenarios and checks it against
//! those answers at every closed time.

pub mod harness;
pub mod reference;
