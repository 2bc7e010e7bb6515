//! The aggregations flowboard offers, one per file, and the list that registers them.
//!
//! Each file implements [`Aggregation`](crate::aggregation::Aggregation) for one aggregation.
//! The list below is the only other place an aggregation is named: its line `module::Type`
//! declares the file's module, re-exports the type from here, and registers it in
//! [`crate::registry`], from where the REST API, the WebSocket protocol, checkpoints and the web
//! UI know it by its [`NAME`](crate::aggregation::Aggregation::NAME). Registration order is the
//! order of [`AggregationKind::ALL`](crate::registry::AggregationKind::ALL) and of the partials
//! in a checkpoint.
//!
//! A line `module::Type shares Other` registers an aggregation whose partial *is* the partial of
//! the already registered `Other`, built by the same `insert` (as `rate`'s is `sum`'s): the
//! [`PaneSet`](crate::registry::PaneSet) every retained pane holds then has no field for it,
//! which saves its size for every pane of every series. The two `Pane` types must be the same
//! (checked by the compiler), and the registry's tests check that the two `insert`s agree.

/// Calls the macro `$then` with the registered aggregations, `module::Type` or
/// `module::Type shares Other` each.
///
/// This is the registry: one line per aggregation.
macro_rules! registered {
    ($then:ident) => {
        $then! {
            count::Count shares Sum,
            sum::Sum,
            avg::Avg shares Sum,
            min::Min,
            max::Max,
            last::Last,
            rate::Rate shares Sum,
        }
    };
}
pub(crate) use registered;

/// Declares the module of each registered aggregation and re-exports its type.
macro_rules! declare_modules {
    ($($module:ident :: $ty:ident $(shares $owner:ident)?),* $(,)?) => {
        $(
            mod $module;
            pub use self::$module::$ty;
        )*
    };
}

registered!(declare_modules);
