//! Tests of event decoding: the contract, errors naming fields, arrays, round trips.
use super::*;

fn error_of(body: &str) -> EventError {
    decode(body.as_bytes())
        .remove(0)
        .expect_err("should be rejected")
}

#[test]
fn accepts_the_contract_example() {
    let body = r#"{"metric_name": "api.request.latency", "value": 12.5,
                   "tags": {"host": "web-1", "region": "eu"}, "event_time": 1796000000000}"#;
    let event = decode_all(body.as_bytes()).expect("valid").remove(0);
    assert_eq!(event.metric_name, "api.request.latency");
    assert_eq!(event.value, 12.5);
    assert_eq!(event.tags.get("region").map(String::as_str), Some("eu"));
    assert_eq!(event.event_time, Some(1_796_000_000_000));
}

#[test]
fn names_the_bad_field() {
    let cases = [
        (r#"{"value": 1}"#, "metric_name", RejectReason::MissingField),
        (
            r#"{"metric_name": "", "value": 1}"#,
            "metric_name",
            RejectReason::InvalidMetricName,
        ),
        (
            r#"{"metric_name": "a b", "value": 1}"#,
            "metric_name",
            RejectReason::InvalidMetricName,
        ),
        (
            r#"{"metric_name": 7, "value": 1}"#,
            "metric_name",
            RejectReason::InvalidMetricName,
        ),
        (
            r#"{"metric_name": "m"}"#,
            "value",
            RejectReason::MissingField,
        ),
        (
            r#"{"metric_name": "m", "value": "1"}"#,
            "value",
            RejectReason::InvalidValue,
        ),
        (
            r#"{"metric_name": "m", "value": null}"#,
            "value",
            RejectReason::InvalidValue,
        ),
        (
            r#"{"metric_name": "m", "value": 1, "tags": {"a": 1}}"#,
            "tags",
            RejectReason::InvalidTags,
        ),
        (
            r#"{"metric_name": "m", "value": 1, "tags": []}"#,
            "tags",
            RejectReason::InvalidTags,
        ),
        (
            r#"{"metric_name": "m", "value": 1, "event_time": -5}"#,
            "event_time",
            RejectReason::InvalidEventTime,
        ),
        (
            r#"{"metric_name": "m", "value": 1, "event_time": "yesterday"}"#,
            "event_time",
            RejectReason::InvalidEventTime,
        ),
        (
            r#"{"metric_name": "m", "value": 1, "event_time": 1.5}"#,
            "event_time",
            RejectReason::InvalidEventTime,
        ),
        (
            r#"{"metric_name": "m", "value": 1, "extra": 1}"#,
            "extra",
            RejectReason::UnknownField,
        ),
        (
            r#"{"metric_name": "m", "value": 1"#,
            "",
            RejectReason::MalformedJson,
        ),
        (r#"42"#, "", RejectReason::MalformedJson),
    ];
    for (body, field, reason) in cases {
        let error = error_of(body);
        assert_eq!(
            (error.field.as_ref(), error.reason),
            (field, reason),
            "{body}: {error}"
        );
    }
}

#[test]
fn metric_name_length_is_bounded() {
    let ok = format!(r#"{{"metric_name": "{}", "value": 1}}"#, "a".repeat(200));
    assert!(decode_all(ok.as_bytes()).is_ok());
    let long = format!(r#"{{"metric_name": "{}", "value": 1}}"#, "a".repeat(201));
    assert_eq!(error_of(&long).reason, RejectReason::InvalidMetricName);
}

#[test]
fn arrays_are_decoded_per_element() {
    let results = decode(br#"[{"metric_name": "a", "value": 1}, {"metric_name": "b"}, {"metric_name": "c", "value": 3}]"#);
    assert!(results[0].is_ok() && results[2].is_ok());
    let error = results[1].as_ref().expect_err("second is bad");
    assert_eq!((error.index, error.field.as_ref()), (Some(1), "value"));
    assert!(error.to_string().starts_with("event 1: "), "{error}");
}

#[test]
fn round_trips_through_its_serialized_form() {
    let event = Event {
        metric_name: "m".into(),
        value: -0.25,
        tags: BTreeMap::from([("k".to_string(), "v".to_string())]),
        event_time: Some(5),
    };
    let bytes = serde_json::to_vec(&event).expect("serializes");
    assert_eq!(decode_all(&bytes).expect("decodes"), vec![event]);
}

#[test]
fn tags_are_bounded_in_number_and_length() {
    let tags = |n: usize| {
        (0..n)
            .map(|i| format!(r#""k{i}": "v""#))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let body = |tags: String| format!(r#"{{"metric_name": "m", "value": 1, "tags": {{{tags}}}}}"#);
    assert!(decode_all(body(tags(32)).as_bytes()).is_ok());
    let error = error_of(&body(tags(33)));
    assert_eq!(
        (error.field.as_ref(), error.reason),
        ("tags", RejectReason::InvalidTags)
    );
    assert!(error.message.contains("at most 32 tags"), "{error}");

    // Lengths count characters, not bytes.
    let key = |n: usize| body(format!(r#""{}": "v""#, "é".repeat(n)));
    assert!(decode_all(key(128).as_bytes()).is_ok());
    assert_eq!(error_of(&key(129)).reason, RejectReason::InvalidTags);
    let value = |n: usize| body(format!(r#""k": "{}""#, "ü".repeat(n)));
    assert!(decode_all(value(256).as_bytes()).is_ok());
    let error = error_of(&value(257));
    assert_eq!(
        (error.field.as_ref(), error.reason),
        ("tags", RejectReason::InvalidTags)
    );
    assert!(error.message.contains("257 characters"), "{error}");
}

#[test]
fn values_are_parsed_exactly() {
    // One the default serde_json parser reads one ulp off.
    for value in [
        -4.408792583866409e63,
        3.0206799649853503e112,
        0.1,
        5e-324,
        f64::MAX,
    ] {
        let body = format!(r#"{{"metric_name": "m", "value": {value:?}}}"#);
        assert_eq!(
            decode_all(body.as_bytes()).expect("valid")[0].value,
            value,
            "{body}"
        );
    }
}
