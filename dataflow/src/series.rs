//! Series identity: a metric name plus a tag set, and the tag filters widgets select series by.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

/// One time series: a metric and a tag set. Tags are sorted by key, so equal tag sets compare
/// and hash equal.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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

impl Hash for SeriesKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_series(
            state,
            &self.metric,
            self.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            self.tags.len(),
        );
    }
}

/// The one way a series is hashed, shared by [`SeriesKey`] and [`SeriesRef`] so a borrowed
/// series finds its owned key in a map.
fn hash_series<'t, H: Hasher>(
    state: &mut H,
    metric: &str,
    tags: impl Iterator<Item = (&'t str, &'t str)>,
    len: usize,
) {
    metric.hash(state);
    state.write_usize(len);
    for (key, value) in tags {
        key.hash(state);
        value.hash(state);
    }
}

/// A series borrowed from a decoded event (tags sorted by key): looks up its [`SeriesKey`] in
/// a `hashbrown` map without allocating one.
#[derive(Clone, Copy, Debug)]
pub struct SeriesRef<'e, 'a> {
    /// The metric name.
    pub metric: &'e str,
    /// The tags, sorted by key.
    pub tags: &'e [(Cow<'a, str>, Cow<'a, str>)],
}

impl SeriesRef<'_, '_> {
    /// The owned key of this series.
    pub fn to_key(&self) -> SeriesKey {
        SeriesKey {
            metric: self.metric.to_string(),
            tags: self
                .tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }
}

impl Hash for SeriesRef<'_, '_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_series(
            state,
            self.metric,
            self.tags.iter().map(|(k, v)| (k.as_ref(), v.as_ref())),
            self.tags.len(),
        );
    }
}

impl hashbrown::Equivalent<SeriesKey> for SeriesRef<'_, '_> {
    fn equivalent(&self, key: &SeriesKey) -> bool {
        self.metric == key.metric
            && self.tags.len() == key.tags.len()
            && self
                .tags
                .iter()
                .zip(&key.tags)
                .all(|((k, v), (kk, vv))| k == kk && v == vv)
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
    fn a_borrowed_series_finds_its_key() {
        let owned = key(&[("host", "a"), ("region", "eu")]);
        let tags = [
            (Cow::Borrowed("host"), Cow::Borrowed("a")),
            (Cow::Borrowed("region"), Cow::Borrowed("eu")),
        ];
        let borrowed = SeriesRef {
            metric: "m",
            tags: &tags,
        };
        let mut map = hashbrown::HashMap::new();
        map.insert(owned.clone(), 7);
        assert_eq!(map.get(&borrowed), Some(&7));
        assert_eq!(borrowed.to_key(), owned);
        let other_tags = [(Cow::Borrowed("host"), Cow::Borrowed("b"))];
        assert_eq!(
            map.get(&SeriesRef {
                metric: "m",
                tags: &other_tags
            }),
            None
        );
    }

    #[test]
    fn tag_order_does_not_matter() {
        assert_eq!(
            key(&[("a", "1"), ("b", "2")]),
            key(&[("b", "2"), ("a", "1")])
        );
    }
}
