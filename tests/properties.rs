//! Property tests of everything that parses client input: the event decoders (the precise
//! `decode` and the fast `decode_each`) and the dashboard and widget-patch parsers.
//!
//! For arbitrary bytes, arbitrary JSON and valid inputs with bytes flipped: nothing panics, the
//! two decoders agree event by event (same events, or the same index, field and reason), and
//! the parsers refuse with a 4xx, never a 5xx. Valid events, dashboards and patches round-trip:
//! what is decoded is what was encoded.

use std::collections::BTreeMap;

use dataflow::event::{Event, EventError, EventRef, TagLimits, decode, decode_all, decode_each};
use flowboard::api::validate::{Rules, new_dashboard, rename, widget_patch};
use operators::registry::AggregationKind;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const RETENTION: u64 = 7_200;

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

/// Keys the parsers know, and others.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "metric_name",
            "value",
            "tags",
            "event_time",
            "name",
            "widgets",
            "add",
            "update",
            "remove",
            "widget_id",
            "aggregation",
            "window_seconds",
            "refresh_interval_seconds",
            "filter",
            "display_config",
            "type",
        ])
        .prop_map(str::to_string),
        "[a-z_]{0,8}",
        any::<String>(),
    ]
}

/// Any JSON value serde_json can hold, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[A-Za-z0-9_.:-]{0,12}".prop_map(Value::String),
        any::<String>().prop_map(Value::String),
        prop::sample::select(vec!["sum", "count", "avg", "max", "last", "NaN", "1e400"])
            .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn metric_name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_.:-]{1,200}"
}

/// Tags within the default limits: up to 32, keys of 1–128 characters, values up to 256.
fn tags() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map("\\PC{1,40}", "\\PC{0,60}", 0..=32)
}

fn valid_event() -> impl Strategy<Value = Event> {
    (
        metric_name(),
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
        tags(),
        prop::option::of(0..=4_102_444_800_000u64),
    )
        .prop_map(|(metric_name, value, tags, event_time)| Event {
            metric_name,
            value,
            tags,
            event_time,
        })
}

/// An object shaped like an event, each field valid or not.
fn event_like() -> impl Strategy<Value = Value> {
    (
        prop_oneof![metric_name().prop_map(Value::String), json_value()],
        prop_oneof![any::<i32>().prop_map(Value::from), json_value()],
        prop_oneof![
            tags().prop_map(|t| json!(t)),
            prop::collection::btree_map("[a-z]{1,3}", "[a-z]{0,3}", 30..40).prop_map(|t| json!(t)),
            json_value()
        ],
        prop_oneof![
            (0..4_102_444_800_000u64).prop_map(Value::from),
            json_value()
        ],
        prop::collection::vec(any::<bool>(), 4),
    )
        .prop_map(|(metric, value, tags, time, keep)| {
            let mut event = Map::new();
            for (keep, (name, field)) in keep.into_iter().zip([
                ("metric_name", metric),
                ("value", value),
                ("tags", tags),
                ("event_time", time),
            ]) {
                if keep || name == "metric_name" || name == "value" {
                    event.insert(name.to_string(), field);
                }
            }
            Value::Object(event)
        })
}

/// Bytes of `valid`, with some of them replaced.
fn mangled(valid: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    (
        valid,
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    )
        .prop_map(|(mut bytes, changes)| {
            if !bytes.is_empty() {
                for (at, byte) in changes {
                    let at = at.index(bytes.len());
                    bytes[at] = byte;
                }
            }
            bytes
        })
}

fn aggregation() -> impl Strategy<Value = &'static str> {
    prop::sample::select(
        AggregationKind::ALL
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>(),
    )
}

/// A valid widget as a client sends it (no id).
fn widget_spec() -> impl Strategy<Value = Value> {
    (
        metric_name(),
        aggregation(),
        1..=RETENTION,
        1..=86_400u64,
        prop::collection::btree_map("[a-z]{1,10}", "\\PC{0,20}", 0..4),
        // `null` means "the default" (`{}`), so it does not round-trip as itself.
        json_value().prop_filter("display_config: not null, at most 32 deep", |v| {
            !v.is_null() && depth(v) <= 32
        }),
    )
        .prop_map(|(metric, aggregation, window, refresh, filter, display)| {
            json!({"metric_name": metric, "aggregation": aggregation, "window_seconds": window,
                   "refresh_interval_seconds": refresh, "filter": filter, "display_config": display})
        })
}

fn dashboard_name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9 ._-]{0,60}"
}

fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(fields) => 1 + fields.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

// ---------------------------------------------------------------------------------------------
// The event decoders
// ---------------------------------------------------------------------------------------------

/// Decodes `bytes` both ways and checks they agree; returns how many events were valid.
fn decoders_agree(bytes: &[u8]) -> Result<usize, TestCaseError> {
    let precise = decode(bytes);
    let mut fast: Vec<Result<EventRef<'_>, EventError>> = Vec::new();
    decode_each(bytes, |event| fast.push(event));
    prop_assert_eq!(fast.len(), precise.len());
    let mut valid = 0;
    for (f, p) in fast.iter().zip(&precise) {
        match (f, p) {
            (Ok(f), Ok(p)) => {
                prop_assert_eq!(f, &EventRef::from(p.clone()));
                valid += 1;
            }
            (Err(f), Err(p)) => {
                prop_assert_eq!((f.index, &f.field, f.reason), (p.index, &p.field, p.reason));
            }
            _ => prop_assert!(false, "fast {:?}, precise {:?}", f, p),
        }
    }
    Ok(valid)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decoders_agree_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        decoders_agree(&bytes)?;
    }

    #[test]
    fn decoders_agree_on_arbitrary_json(value in json_value()) {
        decoders_agree(value.to_string().as_bytes())?;
    }

    #[test]
    fn decoders_agree_on_event_shaped_json(events in prop::collection::vec(event_like(), 1..4), array: bool) {
        let body = if array || events.len() > 1 { json!(events) } else { events[0].clone() };
        decoders_agree(body.to_string().as_bytes())?;
    }

    #[test]
    fn decoders_agree_on_mangled_events(
        bytes in mangled(prop::collection::vec(valid_event(), 1..3)
            .prop_map(|events| serde_json::to_vec(&events).expect("JSON")))
    ) {
        decoders_agree(&bytes)?;
    }

    #[test]
    fn valid_events_round_trip(events in prop::collection::vec(valid_event(), 1..5)) {
        let array = serde_json::to_vec(&events).expect("JSON");
        prop_assert_eq!(decode_all(&array).expect("valid"), events.clone());
        prop_assert_eq!(decoders_agree(&array)?, events.len());
        let single = serde_json::to_vec(&events[0]).expect("JSON");
        prop_assert_eq!(decode_all(&single).expect("valid"), vec![events[0].clone()]);
        prop_assert_eq!(decoders_agree(&single)?, 1);
    }

    #[test]
    fn events_over_the_tag_limit_are_refused_by_both(extra in 1..20usize) {
        let limit = TagLimits::DEFAULT.max_tags;
        let tags: BTreeMap<String, String> =
            (0..limit + extra).map(|i| (format!("k{i}"), "v".to_string())).collect();
        let body = json!({"metric_name": "m", "value": 1, "tags": tags}).to_string();
        prop_assert_eq!(decoders_agree(body.as_bytes())?, 0);
        let error = decode(body.as_bytes()).remove(0).expect_err("over the limit");
        prop_assert_eq!(error.field.as_ref(), "tags");
    }
}

// ---------------------------------------------------------------------------------------------
// The dashboard and widget-patch parsers
// ---------------------------------------------------------------------------------------------

fn rules() -> Rules {
    Rules::new(RETENTION)
}

/// Runs every parser on `bytes`: each may refuse, but only with a 4xx naming a field or none.
fn parsers_refuse_cleanly(bytes: &[u8]) -> Result<(), TestCaseError> {
    let statuses = [
        new_dashboard(bytes, &rules()).err().map(|e| e.status()),
        widget_patch(bytes, &rules()).err().map(|e| e.status()),
        rename(bytes).err().map(|e| e.status()),
    ];
    for status in statuses.into_iter().flatten() {
        prop_assert!(status.is_client_error(), "status {}", status);
    }
    Ok(())
}

/// A parsed widget as a client would send it again: without its id.
fn resent(widget: &flowboard::model::Widget) -> Value {
    let mut value = serde_json::to_value(widget).expect("JSON");
    if let Some(fields) = value.as_object_mut() {
        fields.remove("widget_id");
    }
    value
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parsers_refuse_arbitrary_bytes_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        parsers_refuse_cleanly(&bytes)?;
    }

    #[test]
    fn parsers_refuse_arbitrary_json_cleanly(value in json_value()) {
        parsers_refuse_cleanly(value.to_string().as_bytes())?;
    }

    #[test]
    fn parsers_refuse_mangled_dashboards_cleanly(
        bytes in mangled((dashboard_name(), prop::collection::vec(widget_spec(), 0..3))
            .prop_map(|(name, widgets)| json!({"name": name, "widgets": widgets}).to_string().into_bytes()))
    ) {
        parsers_refuse_cleanly(&bytes)?;
    }

    #[test]
    fn valid_dashboards_round_trip(
        name in dashboard_name(),
        widgets in prop::collection::vec(widget_spec(), 0..5),
    ) {
        let body = json!({"name": name, "widgets": widgets}).to_string();
        let parsed = new_dashboard(body.as_bytes(), &rules()).expect("valid");
        prop_assert_eq!(&parsed.name, &name);
        let again: Vec<Value> = parsed.widgets.iter().map(resent).collect();
        prop_assert_eq!(&again, &widgets);
        // What the server answers can be sent back as is.
        let body = json!({"name": parsed.name, "widgets": again}).to_string();
        let reparsed = new_dashboard(body.as_bytes(), &rules()).expect("still valid");
        let twice: Vec<Value> = reparsed.widgets.iter().map(resent).collect();
        prop_assert_eq!(twice, widgets);
        prop_assert_eq!(rename(json!({"name": name}).to_string().as_bytes()).expect("valid"), name);
    }

    #[test]
    fn valid_patches_round_trip(
        add in prop::collection::vec(widget_spec(), 0..3),
        updates in prop::collection::vec(
            (any::<u128>(), prop::option::of(metric_name()), prop::option::of(1..=RETENTION)),
            0..3,
        ),
        removes in prop::collection::vec(any::<u128>(), 0..3),
    ) {
        let mut ids: Vec<u128> = updates.iter().map(|u| u.0).chain(removes.iter().copied()).collect();
        ids.sort_unstable();
        ids.dedup();
        prop_assume!(ids.len() == updates.len() + removes.len());
        let update: Vec<Value> = updates
            .iter()
            .map(|(id, metric, window)| {
                let mut fields = Map::new();
                fields.insert("widget_id".into(), json!(uuid::Uuid::from_u128(*id)));
                if let Some(metric) = metric {
                    fields.insert("metric_name".into(), json!(metric));
                }
                if let Some(window) = window {
                    fields.insert("window_seconds".into(), json!(window));
                }
                Value::Object(fields)
            })
            .collect();
        let remove: Vec<uuid::Uuid> = removes.iter().map(|id| uuid::Uuid::from_u128(*id)).collect();
        let body = json!({"add": add, "update": update, "remove": remove}).to_string();
        let patch = widget_patch(body.as_bytes(), &rules()).expect("valid");
        let added: Vec<Value> = patch.add.iter().map(resent).collect();
        prop_assert_eq!(added, add);
        prop_assert_eq!(patch.remove, remove);
        prop_assert_eq!(patch.update.len(), updates.len());
        for (parsed, (id, metric, window)) in patch.update.iter().zip(&updates) {
            prop_assert_eq!(parsed.widget_id, uuid::Uuid::from_u128(*id));
            prop_assert_eq!(&parsed.metric_name, metric);
            prop_assert_eq!(parsed.window_seconds, *window);
            prop_assert_eq!(parsed.filter.as_ref(), None);
        }
    }
}
