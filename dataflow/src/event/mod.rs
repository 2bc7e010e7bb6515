//! The metric event: its JSON form, its validation, and decoding of HTTP bodies and Kafka
//! record values.
//!
//! A body or record value is one JSON event object or a JSON array of them:
//!
//! ```json
//! {"metric_name": "api.request.latency", "value": 12.5,
//!  "tags": {"host": "web-1", "region": "eu"}, "event_time": 1796000000000}
//! ```
//!
//! - `metric_name`: 1–200 characters of `[A-Za-z0-9_.:-]`;
//! - `value`: a finite number;
//! - `tags`: optional, an object of string values, at most 32 of them, keys of up to 128
//!   characters and values of up to 256 (see [`TagLimits`]);
//! - `event_time`: optional, epoch milliseconds as a non-negative integer, or an RFC 3339 string.
//!
//! Any other field is an error. Each element of an array is decoded on its own, so one bad
//! event is reported by its index and does not hide the others.
//!
//! # Examples
//!
//! ```
//! use dataflow::event::decode;
//!
//! let events = decode(br#"[{"metric_name": "cpu", "value": 0.5, "event_time": "2026-11-27T19:00:00Z"},
//!                          {"metric_name": "cpu", "value": "high"}]"#);
//! assert_eq!(events.len(), 2);
//! assert_eq!(events[0].as_ref().unwrap().event_time, Some(1_795_806_000_000));
//! let error = events[1].as_ref().unwrap_err();
//! assert_eq!((error.index, error.field.as_ref()), (Some(1), "value"));
//! ```

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

mod fast;
mod limits;

pub use fast::{EventRef, TagList, decode_each, decode_each_with};
pub use limits::TagLimits;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Longest accepted metric name, in characters.
pub const MAX_METRIC_NAME_LEN: usize = 200;

/// A validated metric event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    /// The metric's name.
    pub metric_name: String,
    /// The sample; always finite.
    pub value: f64,
    /// Tags of the series the sample belongs to.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Event time in epoch milliseconds; `None` when the producer left it out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_time: Option<u64>,
}

/// Why an event was rejected, named so it can be counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// Not JSON, or JSON of the wrong shape (not an object or array of objects).
    MalformedJson,
    /// A required field is absent.
    MissingField,
    /// A field this format does not have.
    UnknownField,
    /// `metric_name` empty, too long, or with characters outside `[A-Za-z0-9_.:-]`.
    InvalidMetricName,
    /// `value` not a finite number.
    InvalidValue,
    /// `tags` not an object of strings, or over the [`TagLimits`].
    InvalidTags,
    /// `event_time` not a non-negative integer or an RFC 3339 time.
    InvalidEventTime,
    /// `event_time` too far in the future (beyond the allowed clock skew).
    TooFarInFuture,
    /// `event_time` older than the longest window: it can no longer count anywhere.
    TooOld,
}

impl RejectReason {
    /// Every reason, for exporting counters.
    pub const ALL: [RejectReason; 9] = [
        RejectReason::MalformedJson,
        RejectReason::MissingField,
        RejectReason::UnknownField,
        RejectReason::InvalidMetricName,
        RejectReason::InvalidValue,
        RejectReason::InvalidTags,
        RejectReason::InvalidEventTime,
        RejectReason::TooFarInFuture,
        RejectReason::TooOld,
    ];

    /// A stable snake_case label, used in metrics.
    pub fn label(self) -> &'static str {
        match self {
            RejectReason::MalformedJson => "malformed_json",
            RejectReason::MissingField => "missing_field",
            RejectReason::UnknownField => "unknown_field",
            RejectReason::InvalidMetricName => "invalid_metric_name",
            RejectReason::InvalidValue => "invalid_value",
            RejectReason::InvalidTags => "invalid_tags",
            RejectReason::InvalidEventTime => "invalid_event_time",
            RejectReason::TooFarInFuture => "too_far_in_future",
            RejectReason::TooOld => "too_old",
        }
    }
}

/// A rejected event: which one, which field, and why.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{}{message}", index.map(|i| format!("event {i}: ")).unwrap_or_default())]
pub struct EventError {
    /// Index of the event in its array; `None` for a single object or an unparsable body.
    pub index: Option<usize>,
    /// The offending field (`""` when the event as a whole is malformed); for an unknown
    /// field, its name.
    pub field: Cow<'static, str>,
    /// Why, for counting.
    pub reason: RejectReason,
    /// What is wrong, for people.
    pub message: String,
}

impl EventError {
    fn new(reason: RejectReason, field: &'static str, message: impl Into<String>) -> Self {
        EventError {
            index: None,
            field: Cow::Borrowed(field),
            reason,
            message: message.into(),
        }
    }
}

/// Decodes a body or record value: one event object or an array of them, each element
/// decoded on its own. A body that is not JSON of that shape yields one error. Tags are held
/// to the [installed](TagLimits::installed) limits.
pub fn decode(bytes: &[u8]) -> Vec<Result<Event, EventError>> {
    decode_with(bytes, &TagLimits::installed())
}

/// [`decode`] with the tag limits `limits`.
pub fn decode_with(bytes: &[u8], limits: &TagLimits) -> Vec<Result<Event, EventError>> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        match serde_json::from_slice::<Vec<&RawValue>>(bytes) {
            Ok(elements) => elements
                .into_iter()
                .enumerate()
                .map(|(index, raw)| {
                    decode_one(raw.get().as_bytes(), limits).map_err(|mut error| {
                        error.index = Some(index);
                        error
                    })
                })
                .collect(),
            Err(error) => vec![Err(malformed(&error))],
        }
    } else {
        vec![decode_one(bytes, limits)]
    }
}

/// Decodes a body that must be valid as a whole: all events, or the first error.
pub fn decode_all(bytes: &[u8]) -> Result<Vec<Event>, EventError> {
    decode(bytes).into_iter().collect()
}

fn malformed(error: &serde_json::Error) -> EventError {
    EventError::new(
        RejectReason::MalformedJson,
        "",
        format!("malformed JSON: {error}"),
    )
}

/// The wire form, with every field loosely typed so that each can be checked and reported.
#[derive(Deserialize)]
struct WireEvent<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    metric_name: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    value: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    tags: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    event_time: Option<&'a RawValue>,
    #[serde(flatten)]
    unknown: BTreeMap<String, de::IgnoredAny>,
}

/// A field that is present, even if `null` (plain `Option` would make `null` look absent).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(deserializer).map(Some)
}

fn decode_one(bytes: &[u8], limits: &TagLimits) -> Result<Event, EventError> {
    let wire: WireEvent<'_> =
        serde_json::from_slice(bytes).map_err(|error| match error.classify() {
            serde_json::error::Category::Data if error.to_string().contains("event_time") => {
                EventError::new(
                    RejectReason::InvalidEventTime,
                    "event_time",
                    error.to_string(),
                )
            }
            serde_json::error::Category::Data => EventError::new(
                RejectReason::MalformedJson,
                "",
                format!("expected an event object: {error}"),
            ),
            _ => malformed(&error),
        })?;
    if let Some((name, _)) = wire.unknown.iter().next() {
        return Err(EventError {
            field: Cow::Owned(name.clone()),
            ..EventError::new(
                RejectReason::UnknownField,
                "",
                format!(
                    "unknown field `{name}`; an event has metric_name, value, tags, event_time"
                ),
            )
        });
    }

    let metric_name = match wire.metric_name {
        None => {
            return Err(EventError::new(
                RejectReason::MissingField,
                "metric_name",
                "metric_name is required",
            ));
        }
        Some(raw) => serde_json::from_str::<String>(raw.get()).map_err(|_| {
            EventError::new(
                RejectReason::InvalidMetricName,
                "metric_name",
                "metric_name must be a string",
            )
        })?,
    };
    validate_metric_name(&metric_name)?;

    let value = match wire.value {
        None => {
            return Err(EventError::new(
                RejectReason::MissingField,
                "value",
                "value is required",
            ));
        }
        Some(raw) => match serde_json::from_str::<f64>(raw.get()) {
            Ok(value) if value.is_finite() => value,
            _ => {
                return Err(EventError::new(
                    RejectReason::InvalidValue,
                    "value",
                    format!(
                        "value must be a finite number, got {}",
                        truncate(raw.get(), 40)
                    ),
                ));
            }
        },
    };

    let tags = match wire.tags {
        None => BTreeMap::new(),
        Some(raw) if raw.get() == "null" => BTreeMap::new(),
        Some(raw) => serde_json::from_str::<BTreeMap<String, String>>(raw.get()).map_err(|_| {
            EventError::new(
                RejectReason::InvalidTags,
                "tags",
                "tags must be an object of string values",
            )
        })?,
    };
    limits.check(
        tags.len(),
        tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )?;

    let event_time = match wire.event_time.map(|raw| serde_json::from_str(raw.get())) {
        None | Some(Ok(EventTime::Absent)) => None,
        Some(Ok(EventTime::Millis(ms))) => Some(ms),
        // Out of range (1e400), or nested past serde_json's depth limit.
        Some(Err(error)) => {
            return Err(EventError::new(
                RejectReason::InvalidEventTime,
                "event_time",
                format!("event_time must be epoch milliseconds or an RFC 3339 string: {error}"),
            ));
        }
        Some(Ok(EventTime::Invalid(message))) => {
            return Err(EventError::new(
                RejectReason::InvalidEventTime,
                "event_time",
                message,
            ));
        }
    };

    Ok(Event {
        metric_name,
        value,
        tags,
        event_time,
    })
}

/// Checks a metric name against the contract: 1–200 characters of `[A-Za-z0-9_.:-]`.
pub fn validate_metric_name(name: &str) -> Result<(), EventError> {
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
    if name.is_empty() || name.len() > MAX_METRIC_NAME_LEN || !valid_chars {
        return Err(EventError::new(
            RejectReason::InvalidMetricName,
            "metric_name",
            format!(
                "metric_name must be 1-{MAX_METRIC_NAME_LEN} characters of [A-Za-z0-9_.:-], got {:?}",
                truncate(name, 40)
            ),
        ));
    }
    Ok(())
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// `event_time` as found on the wire.
enum EventTime {
    Absent,
    Millis(u64),
    Invalid(String),
}

impl<'de> Deserialize<'de> for EventTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EventTimeVisitor;
        impl<'de> Visitor<'de> for EventTimeVisitor {
            type Value = EventTime;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("epoch milliseconds or an RFC 3339 string")
            }
            fn visit_u64<E: de::Error>(self, ms: u64) -> Result<EventTime, E> {
                Ok(EventTime::Millis(ms))
            }
            fn visit_i64<E: de::Error>(self, ms: i64) -> Result<EventTime, E> {
                Ok(match u64::try_from(ms) {
                    Ok(ms) => EventTime::Millis(ms),
                    Err(_) => {
                        EventTime::Invalid(format!("event_time must not be before 1970, got {ms}"))
                    }
                })
            }
            fn visit_f64<E: de::Error>(self, ms: f64) -> Result<EventTime, E> {
                Ok(if ms.fract() == 0.0 && (0.0..9.0e15).contains(&ms) {
                    EventTime::Millis(ms as u64)
                } else {
                    EventTime::Invalid(format!(
                        "event_time must be whole epoch milliseconds, got {ms}"
                    ))
                })
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<EventTime, E> {
                Ok(parse_rfc3339(text))
            }
            fn visit_unit<E: de::Error>(self) -> Result<EventTime, E> {
                Ok(EventTime::Absent)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<EventTime, E> {
                Ok(EventTime::Invalid(
                    "event_time must be epoch milliseconds or an RFC 3339 string".into(),
                ))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<EventTime, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                self.visit_bool(false)
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<EventTime, A::Error> {
                while map
                    .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
                    .is_some()
                {}
                self.visit_bool(false)
            }
        }
        deserializer.deserialize_any(EventTimeVisitor)
    }
}

fn parse_rfc3339(text: &str) -> EventTime {
    use time::format_description::well_known::Rfc3339;
    match time::OffsetDateTime::parse(text, &Rfc3339) {
        Ok(at) => match u64::try_from(at.unix_timestamp_nanos() / 1_000_000) {
            Ok(ms) => EventTime::Millis(ms),
            Err(_) => {
                EventTime::Invalid(format!("event_time must not be before 1970, got {text:?}"))
            }
        },
        Err(error) => EventTime::Invalid(format!(
            "event_time {:?} is not RFC 3339: {error}",
            truncate(text, 40)
        )),
    }
}

#[cfg(test)]
mod tests;
