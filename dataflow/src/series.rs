//! Series identity: a metric name plus a tag set, and the tag filters widgets select series by.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

/// One time series: a metric and a tag set. Tags are sorted by key, so equal tag sets compare
/// and hash equal.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SeriesKey {
    /// The metric name.
    pub metric: String,
    /// The tags, sorted by key.
    pub tags: Vec<(String, String)>,
}

impl SeriesKey {
    /// The series of `metric` with `tags`.
    pub fn new(metric: &str, tags: &BTreeMap<String, String>) -> Self {
        SeriesKey {
            metric: metric.to_string(),
            tags: tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }
    }

    /// Whether every tag of `filter` is present in this series with the same value.
    pub fn matches(&self, filter: &TagFilter) -> bool {
        filter.iter().all(|(key, value)| {
            self.tags
                .binary_search_by(|(k, _)| k.as_str().cmp(key))
                .is_ok_and(|at| &self.tags[at].1 == value)
        })
    }

    /// A stable hash, used to spread series over workers.
    pub fn route(&self) -> u64 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.hash(&mut hasher);
        hasher.finish()
    }
}

/// A widget's tag filter: `(key, value)` pairs, sorted by key, all of which must match.
pub type TagFilter = Vec<(String, String)>;

#[cfg(test)]
mod tests {
    use super::*;

    fn key(tags: &[(&str, &str)]) -> SeriesKey {
        let tags: BTreeMap<String, String> = tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        SeriesKey::new("m", &tags)
    }

    #[test]
    fn filter_requires_every_tag() {
        let series = key(&[("host", "a"), ("region", "eu")]);
        let filter = |pairs: &[(&str, &str)]| -> TagFilter {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(series.matches(&filter(&[])));
        assert!(series.matches(&filter(&[("region", "eu")])));
        assert!(series.matches(&filter(&[("host", "a"), ("region", "eu")])));
        assert!(!series.matches(&filter(&[("region", "us")])));
        assert!(!series.matches(&filter(&[("zone", "1")])));
    }

    #[test]
    fn tag_order_does_not_matter() {
        assert_eq!(
            key(&[("a", "1"), ("b", "2")]),
            key(&[("b", "2"), ("a", "1")])
        );
    }
}
