//! The aggregations flowboard ships with, one per file. Each is registered by one line in
//! [`crate::registry`].

mod avg;
mod count;
mod max;
mod min;
mod sum;

pub use avg::Avg;
pub use count::Count;
pub use max::Max;
pub use min::Min;
pub use sum::Sum;
