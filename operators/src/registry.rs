//! The registry of aggregations: the types generated from the list of registered aggregations.
//!
//! The list in [`crate::aggregations`], one line per aggregation, becomes
//! - [`AggregationKind`], the enum the REST API, the WebSocket protocol and the web UI use,
//!   (de)serialized as the aggregation's [`Aggregation::NAME`];
//! - [`PaneSet`], the partials of *every* registered aggregation for one pane of one series,
//!   which is what the series store retains, so a widget added later with any aggregation can
//!   be backfilled from history (an aggregation whose partial is another's, like `rate`'s is
//!   `count`'s, is registered as sharing it and costs nothing per pane);
//! - [`AnyPane`], the partial of one aggregation, which is what flows to a widget's window;
//! - [`AggregationKind::new_window`], a [`WindowState`] for a widget.
//!
//! Adding an aggregation is one file in `aggregations/` and one line in that list; nothing here
//! changes.
//!
//! # Examples
//!
//! ```
//! use operators::aggregation::WindowExtent;
//! use operators::registry::{AggregationKind, PaneSet};
//!
//! // Aggregations by name, as the REST API reads them.
//! let max = AggregationKind::from_name("max").unwrap();
//! assert_eq!(max.name(), "max");
//! assert!(AggregationKind::ALL.contains(&max));
//!
//! // One pane of one series holds the partials of every aggregation; a widget's window gets
//! // the one of its aggregation.
//! let mut pane = PaneSet::empty();
//! pane.insert(1_200, 3.0);
//! pane.insert(1_700, 5.0);
//! let extent = WindowExtent { window_ms: 10_000, as_of: 2_000 };
//! assert_eq!(pane.project(max).finish(extent), Some(5.0));
//! assert_eq!(pane.project(AggregationKind::Count).finish(extent), Some(2.0));
//! ```

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::aggregation::{Aggregation, WindowExtent};
use crate::window::{SlidingWindow, WindowState};

/// Access to the partial of aggregation `A` inside an [`AnyPane`] or a [`PaneSet`].
pub trait Select<A: Aggregation> {
    /// The partial of `A`, if this value holds one.
    fn select(&self) -> Option<&A::Pane>;
}

/// Generates the registry types from the list in [`crate::aggregations`]. Each variant, field
/// and partial is named after the aggregation's type (`Count`).
macro_rules! define_registry {
    ($($module:ident :: $variant:ident $(shares $owner:ident)?),* $(,)?) => {
        define_registry!(@types $($variant: crate::aggregations::$variant [$($owner)?]),*);
    };
    (@types $($variant:ident : $ty:ty [$($owner:ident)?]),*) => {
        /// An aggregation a widget can ask for, by name.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum AggregationKind {
            $(
                #[doc = concat!("[`", stringify!($variant), "`](crate::aggregations::", stringify!($variant), ")")]
                $variant,
            )*
        }

        impl AggregationKind {
            /// Every registered aggregation, in registration order.
            pub const ALL: &'static [AggregationKind] = &[$(AggregationKind::$variant),*];

            /// The name clients use for this aggregation.
            pub fn name(self) -> &'static str {
                match self { $(AggregationKind::$variant => <$ty as Aggregation>::NAME),* }
            }

            /// The aggregation called `name`, if one is registered.
            pub fn from_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|kind| kind.name() == name)
            }

            /// An empty sliding window of `window_ms` milliseconds for this aggregation.
            pub fn new_window(self, window_ms: u64) -> Box<dyn WindowState> {
                match self { $(AggregationKind::$variant => Box::new(SlidingWindow::<$ty>::new(window_ms))),* }
            }

            /// This aggregation's partial of `samples` (event time, value), built with its own
            /// [`Aggregation::empty`] and [`Aggregation::insert`]. The dataflow builds partials
            /// with [`PaneSet::insert`] instead; for an aggregation sharing another's partial
            /// the two must agree, which the registry's tests check.
            pub fn partial(self, samples: impl IntoIterator<Item = (u64, f64)>) -> AnyPane {
                match self {
                    $(AggregationKind::$variant => {
                        let mut pane = <$ty as Aggregation>::empty();
                        for (time, value) in samples {
                            <$ty as Aggregation>::insert(&mut pane, time, value);
                        }
                        AnyPane::$variant(pane)
                    })*
                }
            }
        }

        /// The partials of every registered aggregation for one pane of one series: what the
        /// series store retains, so a widget added later with any aggregation can be backfilled
        /// from history, and what checkpoints hold.
        ///
        /// One partial per registered aggregation, except that an aggregation registered as
        /// sharing another's partial (`rate::Rate shares Sum`) has none of its own: its
        /// projection is the other's partial, so it costs no memory per pane.
        #[allow(non_snake_case)]
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        pub struct PaneSet {
            $($variant: own_partial!($ty; $($owner)?),)*
        }

        impl PaneSet {
            /// The partials of no samples.
            pub fn empty() -> Self {
                PaneSet { $($variant: own_partial!(empty $ty; $($owner)?)),* }
            }
            /// Adds one sample to every partial.
            #[inline]
            pub fn insert(&mut self, time: u64, value: f64) {
                $(if_own!([$($owner)?] <$ty as Aggregation>::insert(&mut self.$variant, time, value));)*
            }
            /// Merges another pane's partials into these.
            pub fn merge(&mut self, other: &PaneSet) {
                $(if_own!([$($owner)?] <$ty as Aggregation>::merge(&mut self.$variant, &other.$variant));)*
            }
            /// What a serialized `PaneSet` holds: every registered aggregation in order, as
            /// `name/version` ([`Aggregation::PANE_VERSION`]) when it has its own partial, or
            /// `name=other` when it shares `other`'s; space-separated. Checkpoints are stamped
            /// with it, so that a build registering other aggregations (or other pane formats)
            /// refuses them instead of misreading them.
            pub fn layout() -> String {
                let entries: Vec<String> = vec![$(layout_entry!($ty; $($owner)?)),*];
                entries.join(" ")
            }
            /// The partial of one aggregation.
            pub fn project(&self, kind: AggregationKind) -> AnyPane {
                match kind { $(AggregationKind::$variant => AnyPane::$variant(partial_of!(self.$variant; $($owner)?).clone())),* }
            }
        }

        impl Default for PaneSet {
            fn default() -> Self { Self::empty() }
        }

        /// The partial of one aggregation for one pane.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        pub enum AnyPane {
            $(
                #[doc = concat!("Partial of [`", stringify!($variant), "`](crate::aggregations::", stringify!($variant), ").")]
                $variant(<$ty as Aggregation>::Pane),
            )*
        }

        impl AnyPane {
            /// Which aggregation this partial belongs to.
            pub fn kind(&self) -> AggregationKind {
                match self { $(AnyPane::$variant(_) => AggregationKind::$variant),* }
            }

            /// Merges `other`, a partial of the same aggregation, into this one (as
            /// [`Aggregation::merge`]); a partial of another aggregation is a caller's bug and
            /// is left out.
            pub fn merge(&mut self, other: &AnyPane) {
                match (self, other) {
                    $((AnyPane::$variant(into), AnyPane::$variant(other)) => <$ty as Aggregation>::merge(into, other),)*
                    #[allow(unreachable_patterns)]
                    (into, other) => debug_assert!(false, "merging {:?} into {:?}", other.kind(), into.kind()),
                }
            }

            /// The aggregation's result for a window whose panes merge to this partial.
            pub fn finish(&self, extent: WindowExtent) -> Option<f64> {
                match self { $(AnyPane::$variant(pane) => <$ty as Aggregation>::finish(pane, extent)),* }
            }
        }

        $(
            impl Select<$ty> for AnyPane {
                fn select(&self) -> Option<&<$ty as Aggregation>::Pane> {
                    #[allow(irrefutable_let_patterns, unreachable_patterns)]
                    match self { AnyPane::$variant(pane) => Some(pane), _ => None }
                }
            }
            impl Select<$ty> for PaneSet {
                fn select(&self) -> Option<&<$ty as Aggregation>::Pane> {
                    Some(&partial_of!(self.$variant; $($owner)?))
                }
            }
        )*
    };
}

/// The type (or, with `empty`, the empty value) of an aggregation's own field in a [`PaneSet`]:
/// its partial, or nothing if it shares another's.
macro_rules! own_partial {
    ($ty:ty;) => {
        <$ty as Aggregation>::Pane
    };
    ($ty:ty; $owner:ident) => {
        ()
    };
    (empty $ty:ty;) => {
        <$ty as Aggregation>::empty()
    };
    (empty $ty:ty; $owner:ident) => {
        ()
    };
}

/// An aggregation's entry in [`PaneSet::layout`].
macro_rules! layout_entry {
    ($ty:ty;) => {
        format!(
            "{}/{}",
            <$ty as Aggregation>::NAME,
            <$ty as Aggregation>::PANE_VERSION
        )
    };
    ($ty:ty; $owner:ident) => {
        format!(
            "{}={}",
            <$ty as Aggregation>::NAME,
            AggregationKind::$owner.name()
        )
    };
}

/// The tokens that follow, for an aggregation with its own partial; nothing for one sharing.
macro_rules! if_own {
    ([] $($own:tt)*) => { $($own)* };
    ([$owner:ident] $($own:tt)*) => {};
}

/// The partial an aggregation reads in a [`PaneSet`]: its own field, or the one it shares.
macro_rules! partial_of {
    ($set:ident . $variant:ident;) => {
        $set.$variant
    };
    ($set:ident . $variant:ident; $owner:ident) => {
        $set.$owner
    };
}

impl Serialize for AggregationKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for AggregationKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        AggregationKind::from_name(&name).ok_or_else(|| {
            let known: Vec<&str> = AggregationKind::ALL.iter().map(|k| k.name()).collect();
            serde::de::Error::custom(format!(
                "unknown aggregation `{name}`, expected one of: {}",
                known.join(", ")
            ))
        })
    }
}

impl std::fmt::Display for AggregationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

crate::aggregations::registered!(define_registry);

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Samples with repeated times and values, signed zeros, and a random tail; every value a
    /// multiple of 0.5, so that sums are exact in any order.
    fn samples(seed: u64) -> Vec<(u64, f64)> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut samples = vec![(0, 0.0), (0, -0.0), (5, 2.5), (5, 2.5), (3, -7.0), (5, 1.0)];
        samples.extend((0..50).map(|_| {
            (
                rng.random_range(0..20),
                f64::from(rng.random_range(-20..=20)) / 2.0,
            )
        }));
        samples
    }

    /// What a window reads from a [`PaneSet`] (the dataflow's partials, in which an aggregation
    /// may share another's) is what the aggregation builds on its own, in any order and split
    /// over merged panes.
    #[test]
    fn every_aggregation_reads_from_a_pane_set_the_partial_it_builds_itself() {
        for seed in 0..20 {
            let samples = samples(seed);
            let (front, back) = samples.split_at(samples.len() / 3);
            let mut set = PaneSet::empty();
            let mut other = PaneSet::empty();
            for &(time, value) in back.iter().rev() {
                set.insert(time, value);
            }
            for &(time, value) in front {
                other.insert(time, value);
            }
            set.merge(&other);
            for &kind in AggregationKind::ALL {
                let own = kind.partial(samples.iter().copied());
                assert_eq!(set.project(kind), own, "{kind}, seed {seed}");
            }
        }
    }

    #[test]
    fn the_layout_names_every_aggregation_in_order() {
        let layout = PaneSet::layout();
        let names: Vec<&str> = layout
            .split(' ')
            .map(|entry| entry.split(['/', '=']).next().unwrap_or_default())
            .collect();
        let registered: Vec<&str> = AggregationKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names, registered);
        assert!(
            layout.starts_with("count=sum sum/2 avg=sum min/1 max/1"),
            "{layout}"
        );
    }

    #[test]
    fn names_round_trip() {
        for &kind in AggregationKind::ALL {
            assert_eq!(AggregationKind::from_name(kind.name()), Some(kind));
            assert_eq!(kind.to_string(), kind.name());
        }
        assert_eq!(AggregationKind::from_name("p99"), None);
    }
}
