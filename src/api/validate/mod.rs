//! The wire format of dashboard requests, and its validation into model records.
//!
//! A body is parsed into a request struct whose fields are loose JSON, so that each field can
//! be checked on its own and reported by its path (`widgets[2].window_seconds`). Fields the
//! format does not have are collected rather than refused by serde (`deny_unknown_fields`
//! cannot say which nested field it met), and reported by name. A field given as `null`
//! counts as absent where a default exists; in an update, `null` resets such a field to its
//! default and is refused for the required ones (`metric_name`, `aggregation`).

use std::collections::{BTreeMap, HashMap};

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use uuid::Uuid;

use crate::error::ApiError;
use crate::model::{FIRST_GENERATION, Widget, WidgetPatch, WidgetUpdate};

mod fields;

pub(crate) use fields::clip;
use fields::{
    aggregation, clip_json, empty_object, filter, metric_name, name, refresh_seconds, widget_id,
    window_seconds,
};

/// Longest dashboard name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest refresh interval, in seconds.
pub const MAX_REFRESH_SECONDS: u64 = 86_400;
/// Window of a widget that does not say (capped at the retention).
pub const DEFAULT_WINDOW_SECONDS: u64 = 3_600;
/// Refresh interval of a widget that does not say.
pub const DEFAULT_REFRESH_SECONDS: u64 = 1;

/// A validated `POST /dashboards` body.
#[derive(Debug)]
pub struct NewDashboard {
    /// The dashboard's name.
    pub name: String,
    /// Its widgets, with fresh ids.
    pub widgets: Vec<Widget>,
}

/// `POST /dashboards`: `{"name", "widgets": [widget...]}`.
pub fn new_dashboard(body: &[u8], retention_seconds: u64) -> Result<NewDashboard, ApiError> {
    let body: DashboardBody = parse(body)?;
    refuse_unknown(&body.unknown, "", "name, widgets")?;
    let name = name(body.name.as_ref(), "name")?;
    let widgets = array(body.widgets, "widgets")?
        .into_iter()
        .enumerate()
        .map(|(i, value)| new_widget(value, &format!("widgets[{i}]"), retention_seconds))
        .collect::<Result<_, _>>()?;
    Ok(NewDashboard { name, widgets })
}

/// `PATCH /dashboards/{id}`: `{"name"}`.
pub fn rename(body: &[u8]) -> Result<String, ApiError> {
    let body: RenameBody = parse(body)?;
    refuse_unknown(&body.unknown, "", "name")?;
    name(body.name.as_ref(), "name")
}

/// `PATCH /dashboards/{id}/widgets`: `{"add": [widget...], "update": [{"widget_id", ...}],
/// "remove": [widget_id...]}`, each list optional. A widget may appear only once in `update`
/// and `remove` together.
pub fn widget_patch(body: &[u8], retention_seconds: u64) -> Result<WidgetPatch, ApiError> {
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
    let add = array(body.add, "add")?
        .into_iter()
        .enumerate()
        .map(|(i, value)| new_widget(value, &format!("add[{i}]"), retention_seconds))
        .collect::<Result<_, _>>()?;
    let mut update = Vec::new();
    for (i, value) in array(body.update, "update")?.into_iter().enumerate() {
        let change = widget_update(value, &format!("update[{i}]"), retention_seconds)?;
        once(change.widget_id, format!("update[{i}].widget_id"))?;
        update.push(change);
    }
    let mut remove = Vec::new();
    for (i, value) in array(body.remove, "remove")?.into_iter().enumerate() {
        let field = format!("remove[{i}]");
        remove.push(once(widget_id(&value, &field)?, field)?);
    }
    Ok(WidgetPatch {
        add,
        update,
        remove,
    })
}

#[derive(Deserialize)]
struct DashboardBody {
    #[serde(default, deserialize_with = "present")]
    name: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    widgets: Option<Value>,
    #[serde(flatten)]
    unknown: BTreeMap<String, IgnoredAny>,
}

#[derive(Deserialize)]
struct RenameBody {
    #[serde(default, deserialize_with = "present")]
    name: Option<Value>,
    #[serde(flatten)]
    unknown: BTreeMap<String, IgnoredAny>,
}

#[derive(Deserialize)]
struct PatchBody {
    #[serde(default, deserialize_with = "present")]
    add: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    update: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    remove: Option<Value>,
    #[serde(flatten)]
    unknown: BTreeMap<String, IgnoredAny>,
}

/// A widget in `widgets`/`add` (no `widget_id`) or `update` (`widget_id` required).
#[derive(Deserialize)]
struct WidgetBody {
    #[serde(default, deserialize_with = "present")]
    widget_id: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    metric_name: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    aggregation: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    window_seconds: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    refresh_interval_seconds: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    filter: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    display_config: Option<Value>,
    #[serde(flatten)]
    unknown: BTreeMap<String, IgnoredAny>,
}

const WIDGET_FIELDS: &str =
    "metric_name, aggregation, window_seconds, refresh_interval_seconds, filter, display_config";

/// Tells an absent field (`None`) from one given as `null` (`Some(Value::Null)`).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
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

fn new_widget(value: Value, path: &str, retention_seconds: u64) -> Result<Widget, ApiError> {
    let body = widget_body(value, path)?;
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
            None => DEFAULT_WINDOW_SECONDS.min(retention_seconds),
            Some(v) => window_seconds(&v, &field("window_seconds"), retention_seconds)?,
        },
        refresh_interval_seconds: match given(body.refresh_interval_seconds) {
            None => DEFAULT_REFRESH_SECONDS,
            Some(v) => refresh_seconds(&v, &field("refresh_interval_seconds"))?,
        },
        filter: match given(body.filter) {
            None => BTreeMap::new(),
            Some(v) => filter(&v, &field("filter"))?,
        },
        display_config: given(body.display_config).unwrap_or_else(empty_object),
        generation: FIRST_GENERATION,
    })
}

fn widget_update(
    value: Value,
    path: &str,
    retention_seconds: u64,
) -> Result<WidgetUpdate, ApiError> {
    let body = widget_body(value, path)?;
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
                v => filter(&v, &field("filter")),
            })
            .transpose()?,
        display_config: body
            .display_config
            .map(|v| if v.is_null() { empty_object() } else { v }),
    })
}

fn widget_body(value: Value, path: &str) -> Result<WidgetBody, ApiError> {
    let shown = clip_json(&value);
    let body: WidgetBody = serde_json::from_value(value).map_err(|_| {
        ApiError::bad_field(path, format!("{path} must be a widget object, got {shown}"))
    })?;
    refuse_unknown(
        &body.unknown,
        &format!("{path}."),
        &format!("widget_id, {WIDGET_FIELDS}"),
    )?;
    Ok(body)
}

fn array(value: Option<Value>, field: &str) -> Result<Vec<Value>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(ApiError::bad_field(
            field,
            format!("{field} must be an array, got {}", clip_json(&other)),
        )),
    }
}
