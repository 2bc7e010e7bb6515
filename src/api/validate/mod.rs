//! The wire format of dashboard requests, and its validation into model records.
//!
//! A body is parsed into a request struct whose fields are raw JSON text, each then parsed and
//! checked on its own and reported by its path (`widgets[2].window_seconds`): a value that is
//! JSON but not a usable one (a number out of range such as `1e400`, nesting deeper than
//! serde_json's limit of 128) is blamed on its field, not on the body. Fields the format does
//! not have are collected rather than refused by serde (`deny_unknown_fields` cannot say which
//! nested field it met), and reported by name. A field given as `null` counts as absent where
//! a default exists; in an update, `null` resets such a field to its default and is refused
//! for the required ones (`metric_name`, `aggregation`).
//!
//! A body that is not JSON at all (a syntax error, invalid UTF-8) has no field to blame: its
//! error has `"field": null` and a message giving the line and column.
//!
//! [`Rules`] holds what depends on the configuration: the retention (the longest window), the
//! tag limits (a filter is held to the limits of the events it matches) and the widgets a
//! dashboard may have (a quota: `409`).

use std::collections::{BTreeMap, HashMap};

use dataflow::event::TagLimits;
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::error::ApiError;
use crate::model::{FIRST_GENERATION, Widget, WidgetPatch, WidgetUpdate};

mod fields;

pub(crate) use fields::clip;
use fields::{
    aggregation, display_config, empty_object, filter, metric_name, name, refresh_seconds,
    widget_id, window_seconds,
};

/// Longest dashboard name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest refresh interval, in seconds.
pub const MAX_REFRESH_SECONDS: u64 = 86_400;
/// Window of a widget that does not say (capped at the retention).
pub const DEFAULT_WINDOW_SECONDS: u64 = 3_600;
/// Refresh interval of a widget that does not say.
pub const DEFAULT_REFRESH_SECONDS: u64 = 1;
/// Deepest nesting of a `display_config` (so that a dashboard, which nests it four levels
/// further, stays readable by JSON parsers with serde_json's depth limit of 128).
pub const MAX_DISPLAY_CONFIG_DEPTH: usize = 32;

/// What a valid request may hold, as configured.
#[derive(Clone, Copy, Debug)]
pub struct Rules {
    /// The longest window, in seconds.
    pub retention_seconds: u64,
    /// Limits on the tags of a widget's filter.
    pub tags: TagLimits,
    /// Most widgets a dashboard may have.
    pub widgets_per_dashboard: usize,
}

impl Rules {
    /// Windows up to `retention_seconds`, the default tag limits and widgets per dashboard.
    pub fn new(retention_seconds: u64) -> Rules {
        Rules {
            retention_seconds,
            tags: TagLimits::DEFAULT,
            widgets_per_dashboard: crate::config::Limits::default().widgets_per_dashboard,
        }
    }
}

/// A validated `POST /dashboards` body.
#[derive(Debug)]
pub struct NewDashboard {
    /// The dashboard's name.
    pub name: String,
    /// Its widgets, with fresh ids.
    pub widgets: Vec<Widget>,
}

/// `POST /dashboards`: `{"name", "widgets": [widget...]}`.
pub fn new_dashboard(body: &[u8], rules: &Rules) -> Result<NewDashboard, ApiError> {
    let body: DashboardBody = parse(body)?;
    refuse_unknown(&body.unknown, "", "name, widgets")?;
    let name = name(loose(body.name, "name")?.as_ref(), "name")?;
    let widgets = array(body.widgets, "widgets")?;
    if widgets.len() > rules.widgets_per_dashboard {
        return Err(too_many_widgets("widgets", widgets.len(), rules));
    }
    let widgets = widgets
        .into_iter()
        .enumerate()
        .map(|(i, raw)| new_widget(raw, &format!("widgets[{i}]"), rules))
        .collect::<Result<_, _>>()?;
    Ok(NewDashboard { name, widgets })
}

/// `PATCH /dashboards/{id}`: `{"name"}`.
pub fn rename(body: &[u8]) -> Result<String, ApiError> {
    let body: RenameBody = parse(body)?;
    refuse_unknown(&body.unknown, "", "name")?;
    name(loose(body.name, "name")?.as_ref(), "name")
}

/// The `409` for a dashboard that would have `count` widgets, blaming `field`.
pub fn too_many_widgets(field: &str, count: usize, rules: &Rules) -> ApiError {
    ApiError::LimitReached {
        field: Some(field.into()),
        message: format!(
            "{field}: the dashboard would have {count} widgets; at most {} are allowed per dashboard",
            rules.widgets_per_dashboard
        ),
    }
}

/// `PATCH /dashboards/{id}/widgets`: `{"add": [widget...], "update": [{"widget_id", ...}],
/// "remove": [widget_id...]}`, each list optional. A widget may appear only once in `update`
/// and `remove` together.
pub fn widget_patch(body: &[u8], rules: &Rules) -> Result<WidgetPatch, ApiError> {
    let body: PatchBody = parse(body)?;
    refuse_unknown(&body.unknown, "", "add, update, remove")?;
    let mut seen: HashMap<Uuid, String> = HashMap::new();
    let mut once = |id: Uuid, field: String| match seen.get(&id) {
        Some(first) => Err(ApiError::bad_field(
            &field,
            format!("{field}: widget {id} is already changed by {first}; name each widget once"),
        )),
        None => {
            seen.insert(id, field);
            Ok(id)
        }
    };
    let add = array(body.add, "add")?;
    if add.len() > rules.widgets_per_dashboard {
        return Err(too_many_widgets("add", add.len(), rules));
    }
    let add = add
        .into_iter()
        .enumerate()
        .map(|(i, raw)| new_widget(raw, &format!("add[{i}]"), rules))
        .collect::<Result<_, _>>()?;
    let mut update = Vec::new();
    for (i, raw) in array(body.update, "update")?.into_iter().enumerate() {
        let change = widget_update(raw, &format!("update[{i}]"), rules)?;
        once(change.widget_id, format!("update[{i}].widget_id"))?;
        update.push(change);
    }
    let mut remove = Vec::new();
    for (i, raw) in array(body.remove, "remove")?.into_iter().enumerate() {
        let field = format!("remove[{i}]");
        let value = loose(Some(raw), &field)?.unwrap_or(Value::Null);
        remove.push(once(widget_id(&value, &field)?, field)?);
    }
    Ok(WidgetPatch {
        add,
        update,
        remove,
    })
}

/// A field as raw JSON text, borrowed from the body.
type Raw<'a> = Option<&'a RawValue>;

#[derive(Deserialize)]
struct DashboardBody<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    name: Raw<'a>,
    #[serde(borrow, default, deserialize_with = "present")]
    widgets: Raw<'a>,
    #[serde(flatten)]
    unknown: BTreeMap<String, IgnoredAny>,
}

#[derive(Deserialize)]
struct RenameBody<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    name: Raw<'a>,
    #[serde(flatten)]
    unknown: BTreeMap<String, IgnoredAny>,
}

#[derive(Deserialize)]
struct PatchBody<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    add: Raw<'a>,
    #[serde(borrow, default, deserialize_with = "present")]
    update: Raw<'a>,
    #[serde(borrow, default, deserialize_with = "present")]
    remove: Raw<'a>,
    #[serde(flatten)]
    unknown: BTreeMap<String, IgnoredAny>,
}

/// A widget in `widgets`/`add` (no `widget_id`) or `update` (`widget_id` required), as raw
/// fields.
#[derive(Deserialize)]
struct WidgetBody<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    widget_id: Raw<'a>,
    #[serde(borrow, default, deserialize_with = "present")]
    metric_name: Raw<'a>,
    #[serde(borrow, default, deserialize_with = "present")]
    aggregation: Raw<'a>,
    #[serde(borrow, default, deserialize_with = "present")]
    window_seconds: Raw<'a>,
    #[serde(borrow, default, deserialize_with = "present")]
    refresh_interval_seconds: Raw<'a>,
    #[serde(borrow, default, deserialize_with = "present")]
    filter: Raw<'a>,
    #[serde(borrow, default, deserialize_with = "present")]
    display_config: Raw<'a>,
    #[serde(flatten)]
    unknown: BTreeMap<String, IgnoredAny>,
}

/// A widget's fields parsed, each still loose JSON (`None` when absent).
struct WidgetFields {
    widget_id: Option<Value>,
    metric_name: Option<Value>,
    aggregation: Option<Value>,
    window_seconds: Option<Value>,
    refresh_interval_seconds: Option<Value>,
    filter: Option<Value>,
    display_config: Option<Value>,
}

const WIDGET_FIELDS: &str =
    "metric_name, aggregation, window_seconds, refresh_interval_seconds, filter, display_config";

/// Tells an absent field (`None`) from one given as `null` (`Some` of the text `null`).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Raw<'de>, D::Error> {
    <&RawValue>::deserialize(deserializer).map(Some)
}

/// A raw field parsed as JSON; a value serde_json cannot hold is a 400 naming `field`.
fn loose(raw: Raw<'_>, field: &str) -> Result<Option<Value>, ApiError> {
    raw.map(|raw| {
        serde_json::from_str(raw.get()).map_err(|error| {
            // The position is within the field's text, which would only mislead.
            let error = error.to_string();
            let error = error.split(" at line ").next().unwrap_or(&error);
            ApiError::bad_field(
                field,
                format!("{field} is not a usable JSON value: {error}"),
            )
        })
    })
    .transpose()
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|error| match error.classify() {
        serde_json::error::Category::Data => {
            ApiError::bad_request(format!("expected a JSON object: {error}"))
        }
        _ => ApiError::bad_request(format!("malformed JSON: {error}")),
    })
}

fn refuse_unknown(
    unknown: &BTreeMap<String, IgnoredAny>,
    prefix: &str,
    known: &str,
) -> Result<(), ApiError> {
    match unknown.keys().next() {
        None => Ok(()),
        Some(key) => {
            let field = format!("{prefix}{key}");
            Err(ApiError::bad_field(
                &field,
                format!("unknown field {field}; the fields are {known}"),
            ))
        }
    }
}

fn new_widget(raw: &RawValue, path: &str, rules: &Rules) -> Result<Widget, ApiError> {
    let body = widget_body(raw, path)?;
    let field = |name: &str| format!("{path}.{name}");
    if body.widget_id.as_ref().is_some_and(|id| !id.is_null()) {
        return Err(ApiError::bad_field(
            field("widget_id"),
            format!(
                "{} is assigned by the server; leave it out",
                field("widget_id")
            ),
        ));
    }
    let required = |value: Option<Value>, name: &str| {
        value
            .filter(|v| !v.is_null())
            .ok_or_else(|| ApiError::bad_field(field(name), format!("{} is required", field(name))))
    };
    let given = |value: Option<Value>| value.filter(|v| !v.is_null());
    Ok(Widget {
        widget_id: Uuid::new_v4(),
        metric_name: metric_name(
            &required(body.metric_name, "metric_name")?,
            &field("metric_name"),
        )?,
        aggregation: aggregation(
            &required(body.aggregation, "aggregation")?,
            &field("aggregation"),
        )?,
        window_seconds: match given(body.window_seconds) {
            None => DEFAULT_WINDOW_SECONDS.min(rules.retention_seconds),
            Some(v) => window_seconds(&v, &field("window_seconds"), rules.retention_seconds)?,
        },
        refresh_interval_seconds: match given(body.refresh_interval_seconds) {
            None => DEFAULT_REFRESH_SECONDS,
            Some(v) => refresh_seconds(&v, &field("refresh_interval_seconds"))?,
        },
        filter: match given(body.filter) {
            None => BTreeMap::new(),
            Some(v) => filter(&v, &field("filter"), &rules.tags)?,
        },
        display_config: match given(body.display_config) {
            None => empty_object(),
            Some(v) => display_config(v, &field("display_config"))?,
        },
        generation: FIRST_GENERATION,
    })
}

fn widget_update(raw: &RawValue, path: &str, rules: &Rules) -> Result<WidgetUpdate, ApiError> {
    let retention_seconds = rules.retention_seconds;
    let body = widget_body(raw, path)?;
    let field = |name: &str| format!("{path}.{name}");
    let id = body.widget_id.ok_or_else(|| {
        ApiError::bad_field(
            field("widget_id"),
            format!("{} is required", field("widget_id")),
        )
    })?;
    // `null` for a required field is an error; for the others it means "back to the default".
    let not_null = |value: Value, name: &str| {
        if value.is_null() {
            Err(ApiError::bad_field(
                field(name),
                format!("{} cannot be null", field(name)),
            ))
        } else {
            Ok(value)
        }
    };
    Ok(WidgetUpdate {
        widget_id: widget_id(&id, &field("widget_id"))?,
        metric_name: body
            .metric_name
            .map(|v| metric_name(&not_null(v, "metric_name")?, &field("metric_name")))
            .transpose()?,
        aggregation: body
            .aggregation
            .map(|v| aggregation(&not_null(v, "aggregation")?, &field("aggregation")))
            .transpose()?,
        window_seconds: body
            .window_seconds
            .map(|v| match v {
                Value::Null => Ok(DEFAULT_WINDOW_SECONDS.min(retention_seconds)),
                v => window_seconds(&v, &field("window_seconds"), retention_seconds),
            })
            .transpose()?,
        refresh_interval_seconds: body
            .refresh_interval_seconds
            .map(|v| match v {
                Value::Null => Ok(DEFAULT_REFRESH_SECONDS),
                v => refresh_seconds(&v, &field("refresh_interval_seconds")),
            })
            .transpose()?,
        filter: body
            .filter
            .map(|v| match v {
                Value::Null => Ok(BTreeMap::new()),
                v => filter(&v, &field("filter"), &rules.tags),
            })
            .transpose()?,
        display_config: body
            .display_config
            .map(|v| match v {
                Value::Null => Ok(empty_object()),
                v => display_config(v, &field("display_config")),
            })
            .transpose()?,
    })
}

/// A widget's fields, each parsed on its own and blamed by its path.
fn widget_body(raw: &RawValue, path: &str) -> Result<WidgetFields, ApiError> {
    let body: WidgetBody = serde_json::from_str(raw.get()).map_err(|_| {
        ApiError::bad_field(
            path,
            format!("{path} must be a widget object, got {}", clip(raw.get())),
        )
    })?;
    refuse_unknown(
        &body.unknown,
        &format!("{path}."),
        &format!("widget_id, {WIDGET_FIELDS}"),
    )?;
    let field = |raw, name: &str| loose(raw, &format!("{path}.{name}"));
    Ok(WidgetFields {
        widget_id: field(body.widget_id, "widget_id")?,
        metric_name: field(body.metric_name, "metric_name")?,
        aggregation: field(body.aggregation, "aggregation")?,
        window_seconds: field(body.window_seconds, "window_seconds")?,
        refresh_interval_seconds: field(body.refresh_interval_seconds, "refresh_interval_seconds")?,
        filter: field(body.filter, "filter")?,
        display_config: field(body.display_config, "display_config")?,
    })
}

/// The elements of an array field, each as raw JSON; absent or `null` is empty.
fn array<'a>(raw: Raw<'a>, field: &str) -> Result<Vec<&'a RawValue>, ApiError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    if raw.get() == "null" {
        return Ok(Vec::new());
    }
    let not_an_array = || {
        ApiError::bad_field(
            field,
            format!("{field} must be an array, got {}", clip(raw.get())),
        )
    };
    if !raw.get().starts_with('[') {
        return Err(not_an_array());
    }
    serde_json::from_str(raw.get()).map_err(|_| not_an_array())
}
