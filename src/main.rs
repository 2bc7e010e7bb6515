//! The `flowboard` binary.

fn main() {}
