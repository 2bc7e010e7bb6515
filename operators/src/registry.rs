//! The registry of aggregations: one line per aggregation.
//!
//! `aggregations!` turns the list at the bottom of this file into
//! - [`AggregationKind`], the enum the REST API, the WebSocket protocol and the web UI use,
//!   (de)serialized as the aggregation's [`Aggregation::NAME`];
//! - [`PaneSet`], the partials of *every* registered aggregation for one pane of one series,
//!   which is what the series store retains, so a widget added later with any aggregation can
//!   be backfilled from history;
//! - [`AnyPane`], the partial of one aggregation, which is what flows to a widget's window;
//! - [`AggregationKind::new_window`], a [`WindowState`] for a widget.
//!
//! Adding an aggregation is one file in `aggregations/` and one line below.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::aggregation::{Aggregation, WindowExtent};
use crate::window::{SlidingWindow, WindowState};

/// Access to the partial of aggregation `A` inside an [`AnyPane`] or a [`PaneSet`].
pub trait Select<A: Aggregation> {
    /// The partial of `A`, if this value holds one.
    fn select(&self) -> Option<&A::Pane>;
}

macro_rules! aggregations {
    ($($variant:ident : $ty:ty),* $(,)?) => {
        /// An aggregation a widget can ask for, by name.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum AggregationKind {
            $(
                #[doc = concat!("`", stringify!($ty), "`")]
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
        }

        /// The partials of every registered aggregation for one pane of one series.
        #[allow(non_snake_case)]
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        pub struct PaneSet {
            $(
                #[doc = concat!("Partial of `", stringify!($ty), "`.")]
                pub $variant: <$ty as Aggregation>::Pane,
            )*
        }

        impl PaneSet {
            /// The partials of no samples.
            pub fn empty() -> Self {
                PaneSet { $($variant: <$ty as Aggregation>::empty()),* }
            }
            /// Adds one sample to every partial.
            #[inline]
            pub fn insert(&mut self, time: u64, value: f64) {
                $(<$ty as Aggregation>::insert(&mut self.$variant, time, value);)*
            }
            /// Merges another pane's partials into these.
            pub fn merge(&mut self, other: &PaneSet) {
                $(<$ty as Aggregation>::merge(&mut self.$variant, &other.$variant);)*
            }
            /// The partial of one aggregation.
            pub fn project(&self, kind: AggregationKind) -> AnyPane {
                match kind { $(AggregationKind::$variant => AnyPane::$variant(self.$variant.clone())),* }
            }
        }

        impl Default for PaneSet {
            fn default() -> Self { Self::empty() }
        }

        /// The partial of one aggregation for one pane.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        pub enum AnyPane {
            $(
                #[doc = concat!("Partial of `", stringify!($ty), "`.")]
                $variant(<$ty as Aggregation>::Pane),
            )*
        }

        impl AnyPane {
            /// Which aggregation this partial belongs to.
            pub fn kind(&self) -> AggregationKind {
                match self { $(AnyPane::$variant(_) => AggregationKind::$variant),* }
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
                    Some(&self.$variant)
                }
            }
        )*
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

use crate::aggregations as agg;

aggregations! {
    Count: agg::Count,
    Sum: agg::Sum,
    Avg: agg::Avg,
    Min: agg::Min,
    Max: agg::Max,
}
