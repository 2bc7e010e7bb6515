//! Bounds on an event's tags: how many an event may carry and how long their keys and values
//! may be, so that no producer can make one series key (and everything keyed by it: panes,
//! checkpoints, widget joins) arbitrarily large.
//!
//! Both decoders apply the same checks in the same order (the number of tags, then each tag in
//! key order: key, then value), so they agree on which error rejects an event.
//!
//! HTTP ingest passes its limits explicitly ([`super::decode_with`]). The Kafka source calls
//! [`super::decode_each`], which reads the limits the server [`TagLimits::install`]s once at
//! startup (the defaults until then): the dataflow is built far from the configuration, and one
//! process serves one configuration.

use std::sync::OnceLock;

use super::{EventError, RejectReason};

/// Most tags, longest key and longest value (in characters) an event may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TagLimits {
    /// Most tags per event.
    pub max_tags: usize,
    /// Longest tag key, in characters.
    pub max_key_chars: usize,
    /// Longest tag value, in characters.
    pub max_value_chars: usize,
}

static INSTALLED: OnceLock<TagLimits> = OnceLock::new();

impl Default for TagLimits {
    fn default() -> Self {
        TagLimits::DEFAULT
    }
}

impl TagLimits {
    /// 32 tags, keys of up to 128 characters, values of up to 256.
    pub const DEFAULT: TagLimits = TagLimits {
        max_tags: 32,
        max_key_chars: 128,
        max_value_chars: 256,
    };

    /// Makes these the limits of [`super::decode`] and [`super::decode_each`] in this process.
    /// Once only: a second call with other limits fails and returns the installed ones.
    pub fn install(self) -> Result<(), TagLimits> {
        let installed = *INSTALLED.get_or_init(|| self);
        if installed == self {
            Ok(())
        } else {
            Err(installed)
        }
    }

    /// The installed limits, or the defaults.
    pub fn installed() -> TagLimits {
        INSTALLED.get().copied().unwrap_or(TagLimits::DEFAULT)
    }

    /// Checks `count` tags, given in key order, each key once.
    pub fn check<'t>(
        &self,
        count: usize,
        tags: impl IntoIterator<Item = (&'t str, &'t str)>,
    ) -> Result<(), EventError> {
        let invalid = |message: String| EventError::new(RejectReason::InvalidTags, "tags", message);
        if count > self.max_tags {
            return Err(invalid(format!(
                "an event may have at most {} tags, this one has {count}",
                self.max_tags
            )));
        }
        // A string's length in bytes bounds its length in characters: count only long ones.
        let too_long = |text: &str, max: usize| text.len() > max && text.chars().count() > max;
        for (key, value) in tags {
            if too_long(key, self.max_key_chars) {
                return Err(invalid(format!(
                    "tag key {:?} is {} characters long; at most {} are allowed",
                    super::truncate(key, 40),
                    key.chars().count(),
                    self.max_key_chars
                )));
            }
            if too_long(value, self.max_value_chars) {
                return Err(invalid(format!(
                    "the value of tag {:?} is {} characters long; at most {} are allowed",
                    super::truncate(key, 40),
                    value.chars().count(),
                    self.max_value_chars
                )));
            }
        }
        Ok(())
    }
}
