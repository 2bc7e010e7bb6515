//! Bad input everywhere a client can reach, against one running server: every row of the
//! table is a request with a bad body, id or shape, answered with its 4xx status and a JSON
//! error naming the field at fault (`null` only where the body is not JSON at all, so has no
//! fields). Then garbage records on the Kafka topic, each counted by its reason. Afterwards
//! the stored dashboards and the widgets' values are exactly what they were, the server is
//! healthy, and its log holds no panic.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// One bad request and the answer it must get.
struct Row {
    name: &'static str,
    method: &'static str,
    path: String,
    body: Vec<u8>,
    status: u16,
    /// The `field` of the error; `None` for `null`.
    field: Option<&'static str>,
}

fn row(
    name: &'static str,
    method: &'static str,
    path: impl Into<String>,
    body: impl Into<Vec<u8>>,
    status: u16,
    field: Option<&'static str>,
) -> Row {
    Row {
        name,
        method,
        path: path.into(),
        body: body.into(),
        status,
        field,
    }
}

/// `depth` nested arrays around `1`.
fn nested_arrays(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

/// `depth` nested objects `{"a": …}` around `1`.
fn nested_objects(depth: usize) -> String {
    format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth))
}

/// A widget body with `extra` fields added to a valid sum of `m`.
fn widget_with(extra: &str) -> String {
    format!(r#"{{"metric_name": "m", "aggregation": "sum"{extra}}}"#)
}

/// A dashboard body with one widget made by [`widget_with`].
fn dashboard_with(extra: &str) -> String {
    format!(r#"{{"name": "d", "widgets": [{}]}}"#, widget_with(extra))
}

/// An event of the tracked metric with `extra` fields; `value` as given (JSON text).
fn tracked(value: &str, extra: &str) -> String {
    format!(r#"{{"metric_name": "tracked", "value": {value}{extra}}}"#)
}

fn tags(n: usize) -> String {
    let tags: Vec<String> = (0..n).map(|i| format!(r#""k{i}": "v""#)).collect();
    format!(r#", "tags": {{{}}}"#, tags.join(", "))
}

/// Every bad HTTP request. `d` is an existing dashboard with widgets `w` (first) and `w2`;
/// `missing` exists nowhere.
#[rustfmt::skip]
fn http_rows(d: &str, w: &str, w2: &str, missing: &str) -> Vec<Row> {
    let dashboards = "/dashboards".to_string();
    let dash = format!("/dashboards/{d}");
    let widgets = format!("/dashboards/{d}/widgets");
    let huge = vec![b' '; 11 * 1024 * 1024];
    let long_name = format!(r#"{{"name": "{}"}}"#, "x".repeat(201));
    let many_events = format!("[{}]", vec![tracked("1", ""); 10_001].join(","));
    let many_widgets = format!(
        r#"{{"name": "d", "widgets": [{}]}}"#,
        vec![widget_with(""); 101].join(",")
    );
    let mut invalid_utf8 = br#"{"name": "d"#.to_vec();
    invalid_utf8.extend_from_slice(&[0xff, 0xfe]);
    invalid_utf8.extend_from_slice(br#""}"#);
    let mut invalid_utf8_event = br#"{"metric_name": "tracked"#.to_vec();
    invalid_utf8_event.push(0xc3);
    invalid_utf8_event.extend_from_slice(br#"", "value": 1}"#);
    let ingest = "/ingest".to_string();
    vec![
        // --- POST /dashboards -------------------------------------------------------------
        row("empty body", "POST", &dashboards, "", 400, None),
        row("malformed JSON", "POST", &dashboards, r#"{"name": "#, 400, None),
        row("trailing garbage", "POST", &dashboards, r#"{"name": "d"} x"#, 400, None),
        row("not an object", "POST", &dashboards, "[1, 2]", 400, None),
        row("invalid UTF-8", "POST", &dashboards, invalid_utf8, 400, None),
        row("lone surrogate escape", "POST", &dashboards, r#"{"name": "\ud800"}"#, 400, Some("name")),
        row("NaN literal", "POST", &dashboards, dashboard_with(r#", "window_seconds": NaN"#), 400, None),
        row("Infinity literal", "POST", &dashboards, dashboard_with(r#", "window_seconds": Infinity"#), 400, None),
        row("deeply nested arrays", "POST", &dashboards, nested_arrays(100_000), 400, None),
        row("deeply nested objects", "POST", &dashboards, nested_objects(100_000), 400, None),
        row("huge body", "POST", &dashboards, huge.clone(), 413, None),
        row("missing name", "POST", &dashboards, r#"{"widgets": []}"#, 400, Some("name")),
        row("null name", "POST", &dashboards, r#"{"name": null}"#, 400, Some("name")),
        row("empty name", "POST", &dashboards, r#"{"name": ""}"#, 400, Some("name")),
        row("blank name", "POST", &dashboards, r#"{"name": "  \t "}"#, 400, Some("name")),
        row("over-long name", "POST", &dashboards, long_name.clone(), 400, Some("name")),
        row("name of the wrong type", "POST", &dashboards, r#"{"name": ["d"]}"#, 400, Some("name")),
        row("name nested too deep", "POST", &dashboards, format!(r#"{{"name": {}}}"#, nested_arrays(1_000)), 400, Some("name")),
        row("unknown field", "POST", &dashboards, r#"{"name": "d", "colour": "red"}"#, 400, Some("colour")),
        row("widgets not an array", "POST", &dashboards, r#"{"name": "d", "widgets": {}}"#, 400, Some("widgets")),
        row("widget not an object", "POST", &dashboards, r#"{"name": "d", "widgets": [5]}"#, 400, Some("widgets[0]")),
        row("too many widgets", "POST", &dashboards, many_widgets.clone(), 409, Some("widgets")),
        row("widget_id given", "POST", &dashboards, dashboard_with(&format!(r#", "widget_id": "{w}""#)), 400, Some("widgets[0].widget_id")),
        row("unknown widget field", "POST", &dashboards, dashboard_with(r#", "colour": 1"#), 400, Some("widgets[0].colour")),
        row("missing metric", "POST", &dashboards, r#"{"name": "d", "widgets": [{"aggregation": "sum"}]}"#, 400, Some("widgets[0].metric_name")),
        row("empty metric", "POST", &dashboards, r#"{"name": "d", "widgets": [{"metric_name": "", "aggregation": "sum"}]}"#, 400, Some("widgets[0].metric_name")),
        row("metric with a space", "POST", &dashboards, r#"{"name": "d", "widgets": [{"metric_name": "a b", "aggregation": "sum"}]}"#, 400, Some("widgets[0].metric_name")),
        row("metric of the wrong type", "POST", &dashboards, r#"{"name": "d", "widgets": [{"metric_name": 7, "aggregation": "sum"}]}"#, 400, Some("widgets[0].metric_name")),
        row("over-long metric", "POST", &dashboards, format!( r#"{{"name": "d", "widgets": [{{"metric_name": "{}", "aggregation": "sum"}}]}}"#, "m".repeat(201) ), 400, Some("widgets[0].metric_name")),
        row("missing aggregation", "POST", &dashboards, r#"{"name": "d", "widgets": [{"metric_name": "m"}]}"#, 400, Some("widgets[0].aggregation")),
        row("unknown aggregation", "POST", &dashboards, r#"{"name": "d", "widgets": [{"metric_name": "m", "aggregation": "median"}]}"#, 400, Some("widgets[0].aggregation")),
        row("window 0", "POST", &dashboards, dashboard_with(r#", "window_seconds": 0"#), 400, Some("widgets[0].window_seconds")),
        row("negative window", "POST", &dashboards, dashboard_with(r#", "window_seconds": -60"#), 400, Some("widgets[0].window_seconds")),
        row("window above the retention", "POST", &dashboards, dashboard_with(r#", "window_seconds": 3601"#), 400, Some("widgets[0].window_seconds")),
        row("fractional window", "POST", &dashboards, dashboard_with(r#", "window_seconds": 60.5"#), 400, Some("widgets[0].window_seconds")),
        row("window as a string", "POST", &dashboards, dashboard_with(r#", "window_seconds": "60""#), 400, Some("widgets[0].window_seconds")),
        row("window \"NaN\"", "POST", &dashboards, dashboard_with(r#", "window_seconds": "NaN""#), 400, Some("widgets[0].window_seconds")),
        row("window out of range (1e400)", "POST", &dashboards, dashboard_with(r#", "window_seconds": 1e400"#), 400, Some("widgets[0].window_seconds")),
        row("window a huge integer", "POST", &dashboards, dashboard_with(r#", "window_seconds": 100000000000000000000000000000"#), 400, Some("widgets[0].window_seconds")),
        row("refresh 0", "POST", &dashboards, dashboard_with(r#", "refresh_interval_seconds": 0"#), 400, Some("widgets[0].refresh_interval_seconds")),
        row("refresh -1e400", "POST", &dashboards, dashboard_with(r#", "refresh_interval_seconds": -1e400"#), 400, Some("widgets[0].refresh_interval_seconds")),
        row("filter not an object", "POST", &dashboards, dashboard_with(r#", "filter": ["host"]"#), 400, Some("widgets[0].filter")),
        row("filter value not a string", "POST", &dashboards, dashboard_with(r#", "filter": {"host": 1}"#), 400, Some("widgets[0].filter.host")),
        row("filter with too many tags", "POST", &dashboards, dashboard_with(&format!(r#", "filter": {}"#, &tags(33)[10..])), 400, Some("widgets[0].filter")),
        row("display_config nested too deep", "POST", &dashboards, dashboard_with(&format!(r#", "display_config": {}"#, nested_arrays(200))), 400, Some("widgets[0].display_config")),
        row("display_config out of range", "POST", &dashboards, dashboard_with(r#", "display_config": {"max": 1e999}"#), 400, Some("widgets[0].display_config")),
        // --- PATCH /dashboards/{id} ---------------------------------------------------------
        row("rename: malformed", "PATCH", &dash, "{", 400, None),
        row("rename: deeply nested", "PATCH", &dash, nested_objects(100_000), 400, None),
        row("rename: huge body", "PATCH", &dash, huge.clone(), 413, None),
        row("rename: missing name", "PATCH", &dash, "{}", 400, Some("name")),
        row("rename: empty name", "PATCH", &dash, r#"{"name": ""}"#, 400, Some("name")),
        row("rename: over-long name", "PATCH", &dash, long_name, 400, Some("name")),
        row("rename: name a number", "PATCH", &dash, r#"{"name": 1e400}"#, 400, Some("name")),
        row("rename: unknown field", "PATCH", &dash, r#"{"name": "e", "widgets": []}"#, 400, Some("widgets")),
        row("rename: invalid UUID", "PATCH", "/dashboards/not-a-uuid", r#"{"name": "e"}"#, 400, Some("dashboard_id")),
        row("rename: unknown dashboard", "PATCH", format!("/dashboards/{missing}"), r#"{"name": "e"}"#, 404, Some("dashboard_id")),
        // --- PATCH /dashboards/{id}/widgets -------------------------------------------------
        row("patch: malformed", "PATCH", &widgets, r#"{"add": ["#, 400, None),
        row("patch: deeply nested", "PATCH", &widgets, nested_arrays(100_000), 400, None),
        row("patch: huge body", "PATCH", &widgets, huge.clone(), 413, None),
        row("patch: unknown field", "PATCH", &widgets, r#"{"replace": []}"#, 400, Some("replace")),
        row("patch: add not an array", "PATCH", &widgets, r#"{"add": {}}"#, 400, Some("add")),
        row("patch: invalid widget added", "PATCH", &widgets, r#"{"add": [{"metric_name": "m", "aggregation": "mean"}]}"#, 400, Some("add[0].aggregation")),
        row("patch: too many widgets", "PATCH", &widgets, many_widgets.replace(r#""name": "d", "widgets""#, r#""add""#), 409, Some("add")),
        row("patch: update without id", "PATCH", &widgets, r#"{"update": [{"window_seconds": 60}]}"#, 400, Some("update[0].widget_id")),
        row("patch: update invalid UUID", "PATCH", &widgets, r#"{"update": [{"widget_id": "w-1"}]}"#, 400, Some("update[0].widget_id")),
        row("patch: update unknown widget", "PATCH", &widgets, format!(r#"{{"update": [{{"widget_id": "{missing}", "window_seconds": 60}}]}}"#), 404, Some("update[0].widget_id")),
        row("patch: update window 0", "PATCH", &widgets, format!(r#"{{"update": [{{"widget_id": "{w}", "window_seconds": 0}}]}}"#), 400, Some("update[0].window_seconds")),
        row("patch: update null metric", "PATCH", &widgets, format!(r#"{{"update": [{{"widget_id": "{w}", "metric_name": null}}]}}"#), 400, Some("update[0].metric_name")),
        row("patch: remove invalid UUID", "PATCH", &widgets, r#"{"remove": ["nope"]}"#, 400, Some("remove[0]")),
        row("patch: remove a number", "PATCH", &widgets, r#"{"remove": [1e400]}"#, 400, Some("remove[0]")),
        row("patch: remove unknown widget", "PATCH", &widgets, format!(r#"{{"remove": ["{w2}", "{missing}"]}}"#), 404, Some("remove[1]")),
        row("patch: duplicate in remove", "PATCH", &widgets, format!(r#"{{"remove": ["{w}", "{w}"]}}"#), 400, Some("remove[1]")),
        row("patch: updated and removed", "PATCH", &widgets, format!( r#"{{"update": [{{"widget_id": "{w}", "window_seconds": 60}}], "remove": ["{w}"]}}"# ), 400, Some("remove[0]")),
        row("patch: valid, unknown dashboard", "PATCH", format!("/dashboards/{missing}/widgets"), format!(r#"{{"add": [{}]}}"#, widget_with("")), 404, Some("dashboard_id")),
        row("patch: invalid dashboard id", "PATCH", "/dashboards/1234/widgets", "{}", 400, Some("dashboard_id")),
        // --- ids in paths -------------------------------------------------------------------
        row("get: invalid UUID", "GET", "/dashboards/not-a-uuid", "", 400, Some("dashboard_id")),
        row("get: percent-encoded garbage", "GET", "/dashboards/%FF%FE", "", 400, Some("dashboard_id")),
        row("get: unknown dashboard", "GET", format!("/dashboards/{missing}"), "", 404, Some("dashboard_id")),
        row("delete: invalid UUID", "DELETE", "/dashboards/0", "", 400, Some("dashboard_id")),
        row("delete: unknown dashboard", "DELETE", format!("/dashboards/{missing}"), "", 404, Some("dashboard_id")),
        row("snapshot: invalid widget id", "GET", format!("/dashboards/{d}/widgets/x/snapshot"), "", 400, Some("widget_id")),
        row("snapshot: unknown widget", "GET", format!("/dashboards/{d}/widgets/{missing}/snapshot"), "", 404, Some("widget_id")),
        row("snapshot: unknown dashboard", "GET", format!("/dashboards/{missing}/widgets/{w}/snapshot"), "", 404, Some("dashboard_id")),
        row("stream: invalid UUID", "GET", "/stream/not-a-uuid", "", 400, Some("dashboard_id")),
        row("stream: unknown dashboard", "GET", format!("/stream/{missing}"), "", 404, Some("dashboard_id")),
        // --- POST /ingest -------------------------------------------------------------------
        row("ingest: empty body", "POST", &ingest, "", 400, None),
        row("ingest: malformed JSON", "POST", &ingest, r#"{"metric_name": "tracked", "value": "#, 400, None),
        row("ingest: invalid UTF-8", "POST", &ingest, invalid_utf8_event, 400, None),
        row("ingest: NaN literal", "POST", &ingest, tracked("NaN", ""), 400, None),
        row("ingest: -Infinity literal", "POST", &ingest, tracked("-Infinity", ""), 400, None),
        row("ingest: deeply nested arrays", "POST", &ingest, nested_arrays(100_000), 400, None),
        row("ingest: deeply nested objects", "POST", &ingest, nested_objects(100_000), 400, None),
        row("ingest: huge body", "POST", &ingest, huge, 413, None),
        row("ingest: too many events", "POST", &ingest, many_events, 413, None),
        row("ingest: no events", "POST", &ingest, "[]", 400, None),
        row("ingest: not an event", "POST", &ingest, "[1]", 400, None),
        row("ingest: missing metric", "POST", &ingest, r#"{"value": 1}"#, 400, Some("metric_name")),
        row("ingest: empty metric", "POST", &ingest, r#"{"metric_name": "", "value": 1}"#, 400, Some("metric_name")),
        row("ingest: metric of the wrong type", "POST", &ingest, r#"{"metric_name": ["tracked"], "value": 1}"#, 400, Some("metric_name")),
        row("ingest: over-long metric", "POST", &ingest, format!(r#"{{"metric_name": "{}", "value": 1}}"#, "t".repeat(201)), 400, Some("metric_name")),
        row("ingest: missing value", "POST", &ingest, r#"{"metric_name": "tracked"}"#, 400, Some("value")),
        row("ingest: null value", "POST", &ingest, tracked("null", ""), 400, Some("value")),
        row("ingest: value a string", "POST", &ingest, tracked(r#""12""#, ""), 400, Some("value")),
        row("ingest: value \"NaN\"", "POST", &ingest, tracked(r#""NaN""#, ""), 400, Some("value")),
        row("ingest: value out of range (1e400)", "POST", &ingest, tracked("1e400", ""), 400, Some("value")),
        row("ingest: value -1e400", "POST", &ingest, tracked("-1e400", ""), 400, Some("value")),
        row("ingest: value nested too deep", "POST", &ingest, tracked(&nested_arrays(1_000), ""), 400, Some("value")),
        row("ingest: tags not an object", "POST", &ingest, tracked("1", r#", "tags": ["a"]"#), 400, Some("tags")),
        row("ingest: tag value not a string", "POST", &ingest, tracked("1", r#", "tags": {"a": 1}"#), 400, Some("tags")),
        row("ingest: too many tags", "POST", &ingest, tracked("1", &tags(33)), 400, Some("tags")),
        row("ingest: over-long tag key", "POST", &ingest, tracked("1", &format!(r#", "tags": {{"{}": "v"}}"#, "k".repeat(129))), 400, Some("tags")),
        row("ingest: over-long tag value", "POST", &ingest, tracked("1", &format!(r#", "tags": {{"k": "{}"}}"#, "v".repeat(257))), 400, Some("tags")),
        row("ingest: event_time a word", "POST", &ingest, tracked("1", r#", "event_time": "yesterday""#), 400, Some("event_time")),
        row("ingest: event_time negative", "POST", &ingest, tracked("1", r#", "event_time": -5"#), 400, Some("event_time")),
        row("ingest: event_time 1e400", "POST", &ingest, tracked("1", r#", "event_time": 1e400"#), 400, Some("event_time")),
        row("ingest: event_time far in the future", "POST", &ingest, tracked( "1", &format!(r#", "event_time": {}"#, now_ms() + 86_400_000), ), 400, Some("event_time")),
        row("ingest: unknown field", "POST", &ingest, tracked("1", r#", "unit": "ms""#), 400, Some("unit")),
        row("ingest: one bad event among good ones", "POST", &ingest, format!("[{}, {}]", tracked("1", ""), tracked(r#""x""#, "")), 400, Some("value")),
        row("ingest: wrong method", "PUT", &ingest, tracked("1", ""), 405, None),
    ]
}

/// Garbage records for the Kafka topic, each with the reason the dataflow must count it under.
#[rustfmt::skip]
fn kafka_rows() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let mut invalid_utf8 = br#"{"metric_name": "tracked"#.to_vec();
    invalid_utf8.push(0xff);
    invalid_utf8.extend_from_slice(br#"", "value": 1}"#);
    vec![
        ("invalid UTF-8", invalid_utf8, "malformed_json"),
        ("empty record", Vec::new(), "malformed_json"),
        ("not JSON", b"hello, kafka".to_vec(), "malformed_json"),
        ("NaN literal", tracked("NaN", "").into_bytes(), "malformed_json"),
        ("deeply nested arrays", nested_arrays(100_000).into_bytes(), "malformed_json"),
        ("deeply nested objects", nested_objects(100_000).into_bytes(), "malformed_json"),
        ("value out of range", tracked("1e400", "").into_bytes(), "invalid_value"),
        ("value of the wrong type", tracked(r#""12""#, "").into_bytes(), "invalid_value"),
        ("value nested too deep", tracked(&nested_arrays(5_000), "").into_bytes(), "invalid_value"),
        ("too many tags", tracked("1", &tags(33)).into_bytes(), "invalid_tags"),
        ("over-long tag value", tracked("1", &format!(r#", "tags": {{"k": "{}"}}"#, "v".repeat(257))).into_bytes(), "invalid_tags"),
        ("tags nested deep", tracked("1", &format!(r#", "tags": {{"k": {}}}"#, nested_arrays(5_000))).into_bytes(), "invalid_tags"),
        ("metric of the wrong type", br#"{"metric_name": 1, "value": 1}"#.to_vec(), "invalid_metric_name"),
        ("missing value", br#"{"metric_name": "tracked"}"#.to_vec(), "missing_field"),
        ("unknown field", tracked("1", r#", "extra": true"#).into_bytes(), "unknown_field"),
        ("event_time a word", tracked("1", r#", "event_time": "soon""#).into_bytes(), "invalid_event_time"),
        ("event_time in a year", tracked("1", &format!(r#", "event_time": {}"#, now_ms() + 365 * 86_400_000)).into_bytes(), "too_far_in_future"),
        ("event_time in 1970", tracked("1", r#", "event_time": 1"#).into_bytes(), "too_old"),
    ]
}

/// The widgets' values, by widget id.
async fn values(server: &Server, d: &str, widgets: &[String]) -> BTreeMap<String, Value> {
    let mut values = BTreeMap::new();
    for w in widgets {
        let (status, snapshot) =
            get(server, &format!("/dashboards/{d}/widgets/{w}/snapshot")).await;
        assert_eq!(status, 200, "{snapshot}");
        values.insert(w.clone(), snapshot["value"].clone());
    }
    values
}

fn kafka_rejected(reason: &str) -> String {
    format!(r#"flowboard_events_rejected_total{{path="kafka",reason="{reason}"}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_by_field_and_changes_nothing() {
    let server = Server::start("bad-input", &[]);

    // Something to protect: a dashboard whose widgets hold values.
    let dashboard = create_dashboard(
        &server,
        "protected",
        json!([
            {"metric_name": "tracked", "aggregation": "count", "window_seconds": 3600},
            {"metric_name": "tracked", "aggregation": "sum", "window_seconds": 3600},
            {"metric_name": "tracked", "aggregation": "max", "window_seconds": 3600},
        ]),
    )
    .await;
    let d = dashboard["dashboard_id"].as_str().expect("id").to_string();
    let widgets: Vec<String> = dashboard["widgets"]
        .as_array()
        .expect("widgets")
        .iter()
        .map(|w| w["widget_id"].as_str().expect("widget id").to_string())
        .collect();
    ingest(
        &server,
        vec![
            event("tracked", 1.0, &[]),
            event("tracked", 2.0, &[]),
            event("tracked", 3.0, &[]),
        ],
    )
    .await;
    let expected: BTreeMap<String, Value> = widgets
        .iter()
        .cloned()
        .zip([json!(3.0), json!(6.0), json!(3.0)])
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while values(&server, &d, &widgets).await != expected {
        assert!(
            Instant::now() < deadline,
            "the values never reached {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, stored_before) = get(&server, "/dashboards").await;

    // Every bad request.
    let missing = uuid::Uuid::new_v4().to_string();
    let rows = http_rows(&d, &widgets[0], &widgets[1], &missing);
    let mut failures = Vec::new();
    for row in &rows {
        let answer = send_raw(&server, row.method, &row.path, row.body.clone(), None).await;
        let message = answer.body["error"].as_str().unwrap_or_default();
        let field = answer.body["field"].as_str();
        if answer.status != row.status || field != row.field || message.is_empty() {
            failures.push(format!(
                "{}: {} {} → {} {}; expected {} naming {:?}",
                row.name, row.method, row.path, answer.status, answer.body, row.status, row.field
            ));
        }
        if let Some(named) = row.field
            && !message.contains(named)
            && answer.status == row.status
            && !named.ends_with("_id")
            && !row.path.starts_with("/ingest")
        {
            failures.push(format!(
                "{}: the message {message:?} does not name {named}",
                row.name
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );

    // The bad event of a mixed request is named by its index.
    let answer = send_raw(
        &server,
        "POST",
        "/ingest",
        format!("[{}, {}]", tracked("1", ""), tracked(r#""x""#, "")).into_bytes(),
        None,
    )
    .await;
    assert_eq!(answer.body["index"], 1, "{}", answer.body);

    // Garbage on the Kafka topic: each record counted under its reason.
    let records = kafka_rows();
    let mut want: BTreeMap<&str, f64> = BTreeMap::new();
    for (_, _, reason) in &records {
        *want.entry(*reason).or_default() += 1.0;
    }
    for (reason, count) in want.iter_mut() {
        *count += metric(&server, &kafka_rejected(reason)).await;
    }
    let payloads: Vec<(&str, Vec<u8>)> = records
        .iter()
        .map(|(_, payload, _)| ("tracked", payload.clone()))
        .collect();
    produce_raw(&server, &payloads);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut got = BTreeMap::new();
        for reason in want.keys() {
            got.insert(*reason, metric(&server, &kafka_rejected(reason)).await);
        }
        if got == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rejections by reason: {got:?}, expected {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Garbage on a stream is ignored and the stream keeps serving; a message over the size
    // limit closes it with 1009.
    let mut stream = Stream::connect(&server, &d).await;
    let snapshot = stream
        .next(Duration::from_secs(10))
        .await
        .expect("a snapshot");
    assert_eq!(snapshot["type"], "snapshot");
    for garbage in [
        Message::text("not json"),
        Message::text(r#"{"type": "unsubscribe"}"#),
        Message::text(r#"{"type": 5}"#),
        Message::text(nested_arrays(30_000)),
        Message::text(nested_objects(10_000)),
        Message::binary(vec![0xff_u8; 1_000]),
        Message::text(r#"{"type": "snapshot_request"}"#),
    ] {
        stream.send_message(garbage).await;
    }
    stream
        .wait_for(Duration::from_secs(10), "a snapshot after garbage", |m| {
            m["type"] == "snapshot"
        })
        .await;
    stream
        .send_message(Message::text(nested_arrays(100_000)))
        .await;
    assert_eq!(stream.close_code(Duration::from_secs(10)).await, Some(1009));

    // Nothing changed, nothing panicked.
    let (_, stored_after) = get(&server, "/dashboards").await;
    assert_eq!(stored_after, stored_before, "the stored dashboards changed");
    // Let any event that slipped through reach the values before comparing them.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        values(&server, &d, &widgets).await,
        expected,
        "the values changed"
    );
    let (status, _) = get(&server, "/healthz").await;
    assert_eq!(status, 200);
    let panics: Vec<String> = server
        .drain_log()
        .into_iter()
        .filter(|line| line.contains("panicked"))
        .collect();
    assert!(panics.is_empty(), "the server panicked: {panics:#?}");
}
