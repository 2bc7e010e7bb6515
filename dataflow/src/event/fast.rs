//! The hot path: Kafka record values decoded into events borrowed from the record's bytes,
//! with no allocation per event. A record the fast path cannot take as a whole (a wrong type,
//! a missing or unknown field, malformed JSON) is decoded again by the precise path of
//! [`super::decode`], which names the bad event and field; valid records never pay for that.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use smallvec::SmallVec;

use super::{
    Event, EventError, EventTime, RejectReason, TagLimits, decode_with, validate_metric_name,
};

/// Tags of a borrowed event, sorted by key, each key once.
pub type TagList<'a> = SmallVec<[(Cow<'a, str>, Cow<'a, str>); 4]>;

/// A validated event borrowed from the bytes it was decoded from.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRef<'a> {
    /// The metric's name.
    pub metric_name: Cow<'a, str>,
    /// The sample; always finite.
    pub value: f64,
    /// Tags, sorted by key.
    pub tags: TagList<'a>,
    /// Event time in epoch milliseconds, if the producer gave one.
    pub event_time: Option<u64>,
}

impl<'a> From<Event> for EventRef<'a> {
    fn from(event: Event) -> Self {
        EventRef {
            metric_name: Cow::Owned(event.metric_name),
            value: event.value,
            tags: event
                .tags
                .into_iter()
                .map(|(k, v)| (Cow::Owned(k), Cow::Owned(v)))
                .collect(),
            event_time: event.event_time,
        }
    }
}

/// Decodes a record value (one event or an array) and hands each event, or the error that
/// rejects it, to `each`, in order. Tags are held to the [installed](TagLimits::installed)
/// limits. See the module documentation.
///
/// # Examples
///
/// ```
/// use dataflow::event::decode_each;
///
/// let mut seen = Vec::new();
/// decode_each(br#"[{"metric_name":"cpu","value":1,"tags":{"b":"2","a":"1"}},{"metric_name":"cpu"}]"#, |event| {
///     seen.push(event.map(|e| (e.metric_name.to_string(), e.tags.len())).map_err(|e| e.field.to_string()));
/// });
/// assert_eq!(seen, vec![Ok(("cpu".to_string(), 2)), Err("value".to_string())]);
/// ```
pub fn decode_each<'a>(bytes: &'a [u8], each: impl FnMut(Result<EventRef<'a>, EventError>)) {
    decode_each_with(bytes, &TagLimits::installed(), each);
}

/// [`decode_each`] with the tag limits `limits`.
pub fn decode_each_with<'a>(
    bytes: &'a [u8],
    limits: &TagLimits,
    mut each: impl FnMut(Result<EventRef<'a>, EventError>),
) {
    let is_array = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let fast = if is_array {
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        EventsSeed::for_bytes(bytes.len())
            .deserialize(&mut deserializer)
            .and_then(|events| deserializer.end().map(|()| events))
    } else {
        serde_json::from_slice::<ObjectEvent<'a>>(bytes).map(|event| vec![event.0])
    };
    match fast {
        Ok(events) => {
            for (index, event) in events.into_iter().enumerate() {
                each(event.validate(limits).map_err(|mut error| {
                    error.index = is_array.then_some(index);
                    error
                }));
            }
        }
        Err(_) => {
            for result in decode_with(bytes, limits) {
                each(result.map(EventRef::from));
            }
        }
    }
}

/// Bytes of a typical event (metric name, value, a few tags, a time), to size the vector of a
/// record's events once: grown by doubling from empty, it was copied five or six times per
/// record of 100 events, a fifth of the Kafka source's time in `memmove`.
const TYPICAL_EVENT_BYTES: usize = 80;

/// Deserializes a JSON array of events into a vector sized for the record up front.
struct EventsSeed {
    capacity: usize,
}

impl EventsSeed {
    fn for_bytes(len: usize) -> Self {
        EventsSeed {
            capacity: (len / TYPICAL_EVENT_BYTES + 1).min(4_096),
        }
    }
}

impl<'de> DeserializeSeed<'de> for EventsSeed {
    type Value = Vec<FastEvent<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for EventsSeed {
    type Value = Vec<FastEvent<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut events = Vec::with_capacity(self.capacity);
        while let Some(ObjectEvent(event)) = seq.next_element()? {
            events.push(event);
        }
        Ok(events)
    }
}

/// A [`FastEvent`] that must be a JSON object: serde's derived struct decoding also accepts
/// an array of the fields in order (`["cpu", 1]`), which the contract (and the precise
/// decoder) does not.
struct ObjectEvent<'a>(FastEvent<'a>);

impl<'de> Deserialize<'de> for ObjectEvent<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectOnly;

        impl<'de> Visitor<'de> for ObjectOnly {
            type Value = ObjectEvent<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an event object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                FastEvent::deserialize(de::value::MapAccessDeserializer::new(map)).map(ObjectEvent)
            }
        }

        deserializer.deserialize_map(ObjectOnly)
    }
}

/// The wire form the fast path accepts: exactly the contract's fields and types.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FastEvent<'a> {
    #[serde(borrow)]
    metric_name: Cow<'a, str>,
    value: f64,
    #[serde(borrow, default)]
    tags: Tags<'a>,
    #[serde(default)]
    event_time: Option<EventTime>,
}

impl<'a> FastEvent<'a> {
    fn validate(self, limits: &TagLimits) -> Result<EventRef<'a>, EventError> {
        validate_metric_name(&self.metric_name)?;
        if !self.value.is_finite() {
            return Err(EventError::new(
                RejectReason::InvalidValue,
                "value",
                "value must be a finite number",
            ));
        }
        let tags = self.tags.sorted();
        limits.check(
            tags.len(),
            tags.iter().map(|(k, v)| (k.as_ref(), v.as_ref())),
        )?;
        let event_time = match self.event_time {
            None | Some(EventTime::Absent) => None,
            Some(EventTime::Millis(ms)) => Some(ms),
            Some(EventTime::Invalid(message)) => {
                return Err(EventError::new(
                    RejectReason::InvalidEventTime,
                    "event_time",
                    message,
                ));
            }
        };
        Ok(EventRef {
            metric_name: self.metric_name,
            value: self.value,
            tags,
            event_time,
        })
    }
}

/// A string borrowed from the input where it has no escapes.
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// Tags in the order given; `null` or absent is empty. [`Tags::sorted`] orders them by key.
#[derive(Default)]
struct Tags<'a>(TagList<'a>);

impl<'a> Tags<'a> {
    /// The tags sorted by key, a repeated key keeping its last value (as a JSON object decoded
    /// into a map would). O(n log n), so a record with many tags costs no more than a map.
    fn sorted(self) -> TagList<'a> {
        let mut tags = self.0;
        if tags.len() > 1 {
            // Stable: the values of a repeated key stay in the order given.
            tags.sort_by(|a, b| a.0.cmp(&b.0));
            tags.dedup_by(|later, kept| {
                let same = later.0 == kept.0;
                if same {
                    std::mem::swap(&mut later.1, &mut kept.1);
                }
                same
            });
        }
        tags
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Tags<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TagsVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for TagsVisitor<'a> {
            type Value = Tags<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of string values")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Tags::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut tags = TagList::new();
                while let Some((Text(key), Text(value))) =
                    map.next_entry::<Text<'de>, Text<'de>>()?
                {
                    tags.push((key, value));
                }
                Ok(Tags(tags))
            }
        }
        deserializer.deserialize_any(TagsVisitor(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::decode;

    fn fast(body: &str) -> Vec<Result<EventRef<'_>, EventError>> {
        let mut out = Vec::new();
        decode_each(body.as_bytes(), |e| out.push(e));
        out
    }

    #[test]
    fn agrees_with_the_precise_path() {
        let bodies = [
            r#"{"metric_name":"m","value":1.5,"tags":{"z":"1","a":"2"},"event_time":5}"#,
            r#"[{"metric_name":"m","value":1},{"metric_name":"n","value":-2,"tags":null,"event_time":"1970-01-01T00:00:01Z"}]"#,
            r#"[{"metric_name":"m","value":1},{"metric_name":"m","value":"x"},{"metric_name":"b a","value":1}]"#,
            r#"[{"metric_name":"m","value":1,"event_time":-1},{"metric_name":"m","value":1,"extra":1}]"#,
            r#"{"metric_name":"m\u0041","value":1,"tags":{"k\"":"v\n"}}"#,
            r#"{"metric_name":"m","value":1,"tags":{"a":"1","a":"2"}}"#,
            r#"not json"#,
            r#"[1, 2]"#,
            r#"{"metric_name":"m","value":1e400}"#,
            // Found by the fuzz target: serde's derived struct decoding also takes an array of
            // the fields in order; an event must be an object.
            r#"[["87",6]]"#,
            r#"[{"metric_name":"m","value":1},["m",1,{},5]]"#,
        ];
        for body in bodies {
            let precise: Vec<Result<EventRef<'_>, EventError>> = decode(body.as_bytes())
                .into_iter()
                .map(|r| r.map(EventRef::from))
                .collect();
            let fast = fast(body);
            assert_eq!(fast.len(), precise.len(), "{body}");
            for (f, p) in fast.iter().zip(&precise) {
                match (f, p) {
                    (Ok(f), Ok(p)) => assert_eq!(f, p, "{body}"),
                    (Err(f), Err(p)) => assert_eq!(
                        (f.index, &f.field, f.reason),
                        (p.index, &p.field, p.reason),
                        "{body}"
                    ),
                    _ => panic!("{body}: fast {f:?} precise {p:?}"),
                }
            }
        }
    }

    /// `n` tags `k0`..; `long` adds one whose key (`"key"`) or value (`"value"`) is 300 chars.
    fn tagged(n: usize, long: &str) -> String {
        let mut tags: Vec<String> = (0..n).map(|i| format!(r#""k{i}":"v""#)).collect();
        match long {
            "key" => tags.push(format!(r#""{}":"v""#, "é".repeat(300))),
            "value" => tags.push(format!(r#""k":"{}""#, "x".repeat(300))),
            _ => {}
        }
        format!(
            r#"{{"metric_name":"m","value":1,"tags":{{{}}}}}"#,
            tags.join(",")
        )
    }

    #[test]
    fn agrees_with_the_precise_path_on_tag_limits() {
        let repeated = format!(
            r#"{{"metric_name":"m","value":1,"tags":{{{},"k0":"again","k1":"again"}}}}"#,
            (0..32)
                .map(|i| format!(r#""k{i}":"v""#))
                .collect::<Vec<_>>()
                .join(",")
        );
        let bodies = [
            tagged(32, ""),
            tagged(33, ""),
            tagged(1, "key"),
            tagged(1, "value"),
            // 34 entries, 32 distinct keys: within the limit, the later values win.
            repeated,
            format!("[{},{}]", tagged(2, ""), tagged(40, "")),
        ];
        for body in &bodies {
            let precise: Vec<Result<EventRef<'_>, EventError>> = decode(body.as_bytes())
                .into_iter()
                .map(|r| r.map(EventRef::from))
                .collect();
            let fast = fast(body);
            assert_eq!(fast.len(), precise.len(), "{body}");
            for (f, p) in fast.iter().zip(&precise) {
                match (f, p) {
                    (Ok(f), Ok(p)) => assert_eq!(f, p, "{body}"),
                    (Err(f), Err(p)) => {
                        assert_eq!((f.index, &f.field, f.reason), (p.index, &p.field, p.reason));
                        assert_eq!(f.message, p.message, "{body}");
                    }
                    _ => panic!("{body}: fast {f:?} precise {p:?}"),
                }
            }
        }
        let verdicts: Vec<bool> = bodies.iter().map(|b| fast(b)[0].is_ok()).collect();
        assert_eq!(verdicts, [true, false, false, false, true, true]);
        let events = fast(&bodies[4]);
        let kept = events[0].as_ref().expect("valid");
        assert_eq!(kept.tags.len(), 32);
        assert_eq!(kept.tags[0], (Cow::Borrowed("k0"), Cow::Borrowed("again")));
    }

    #[test]
    fn limits_can_be_given() {
        let strict = TagLimits {
            max_tags: 1,
            max_key_chars: 2,
            max_value_chars: 3,
        };
        let verdict = |body: &str| {
            let mut out = Vec::new();
            decode_each_with(body.as_bytes(), &strict, |e| {
                out.push(e.map(|_| ()).map_err(|e| e.reason))
            });
            let precise: Vec<_> = decode_with(body.as_bytes(), &strict)
                .into_iter()
                .map(|e| e.map(|_| ()).map_err(|e| e.reason))
                .collect();
            assert_eq!(out, precise, "{body}");
            out.remove(0)
        };
        assert_eq!(
            verdict(r#"{"metric_name":"m","value":1,"tags":{"ab":"xyz"}}"#),
            Ok(())
        );
        for body in [
            r#"{"metric_name":"m","value":1,"tags":{"a":"x","b":"y"}}"#,
            r#"{"metric_name":"m","value":1,"tags":{"abc":"x"}}"#,
            r#"{"metric_name":"m","value":1,"tags":{"a":"wxyz"}}"#,
        ] {
            assert_eq!(verdict(body), Err(RejectReason::InvalidTags), "{body}");
        }
    }

    #[test]
    fn borrows_strings_without_escapes() {
        let body = r#"{"metric_name":"cpu","value":1,"tags":{"host":"a"}}"#;
        let events = fast(body);
        let event = events[0].as_ref().expect("valid");
        assert!(matches!(event.metric_name, Cow::Borrowed(_)));
        assert!(matches!(event.tags[0].0, Cow::Borrowed(_)));
    }
}
