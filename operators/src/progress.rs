//! Helpers for operators that handle times in order, once all their inputs have passed them:
//! the joint frontier of several inputs, the next complete time, and holding a capability.
//!
//! # Examples
//!
//! ```
//! use operators::progress::next_complete;
//!
//! // Inputs have passed every time before 3_000: of the pending times, 1_000 is next.
//! assert_eq!(next_complete(Some(3_000), [Some(2_000), Some(1_000), None]), Some(1_000));
//! // 3_000 itself is not complete yet.
//! assert_eq!(next_complete(Some(3_000), [Some(3_000)]), None);
//! // An empty frontier: every time is complete.
//! assert_eq!(next_complete(None, [Some(9_000)]), Some(9_000));
//! ```

use timely::dataflow::operators::Capability;
use timely::progress::frontier::MutableAntichain;

/// The earliest time not yet complete at one of `frontiers` (totally ordered times); `None`
/// when every time is complete at all of them.
pub fn joint_frontier<'a>(
    frontiers: impl IntoIterator<Item = &'a MutableAntichain<u64>>,
) -> Option<u64> {
    frontiers
        .into_iter()
        .filter_map(|f| f.frontier().first().copied())
        .min()
}

/// The earliest of `pending` times that is complete before `frontier` (see [`joint_frontier`]).
pub fn next_complete(
    frontier: Option<u64>,
    pending: impl IntoIterator<Item = Option<u64>>,
) -> Option<u64> {
    pending
        .into_iter()
        .flatten()
        .min()
        .filter(|time| frontier.is_none_or(|f| *time < f))
}

/// Keeps `capability` at `earliest`, the first time the operator may still produce at (moving
/// it forward only), or gives it up when there is none.
pub fn hold(capability: &mut Option<Capability<u64>>, earliest: Option<u64>) {
    match earliest {
        Some(time) => {
            if let Some(capability) = capability.as_mut()
                && *capability.time() < time
            {
                capability.downgrade(&time);
            }
        }
        None => *capability = None,
    }
}
