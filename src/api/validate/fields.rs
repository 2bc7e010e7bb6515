//! Checks of single field values, each reporting the field by its path.

use std::collections::BTreeMap;

use serde_json::Value;
use uuid::Uuid;

use dataflow::event::{MAX_METRIC_NAME_LEN, TagLimits, validate_metric_name};
use operators::registry::AggregationKind;

use super::{MAX_DISPLAY_CONFIG_DEPTH, MAX_NAME_CHARS, MAX_REFRESH_SECONDS};
use crate::error::ApiError;

pub(super) fn name(value: Option<&Value>, field: &str) -> Result<String, ApiError> {
    let invalid = |what: &str| ApiError::bad_field(field, format!("{field} {what}"));
    let name = match value {
        None | Some(Value::Null) => return Err(invalid("is required")),
        Some(Value::String(name)) => name,
        Some(other) => {
            return Err(invalid(&format!(
                "must be a string, got {}",
                clip_json(other)
            )));
        }
    };
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(invalid(&format!(
            "must be 1 to {MAX_NAME_CHARS} characters, got {chars}"
        )));
    }
    if name.trim().is_empty() {
        return Err(invalid("must not be blank"));
    }
    Ok(name.clone())
}

pub(super) fn widget_id(value: &Value, field: &str) -> Result<Uuid, ApiError> {
    value
        .as_str()
        .and_then(|text| Uuid::parse_str(text).ok())
        .ok_or_else(|| {
            ApiError::bad_field(
                field,
                format!(
                    "{field} must be a widget id (a UUID string), got {}",
                    clip_json(value)
                ),
            )
        })
}

pub(super) fn metric_name(value: &Value, field: &str) -> Result<String, ApiError> {
    match value.as_str() {
        Some(name) if validate_metric_name(name).is_ok() => Ok(name.to_string()),
        _ => Err(ApiError::bad_field(
            field,
            format!(
                "{field} must be 1 to {MAX_METRIC_NAME_LEN} characters of [A-Za-z0-9_.:-], got {}",
                clip_json(value)
            ),
        )),
    }
}

pub(super) fn aggregation(value: &Value, field: &str) -> Result<AggregationKind, ApiError> {
    value
        .as_str()
        .and_then(AggregationKind::from_name)
        .ok_or_else(|| {
            let known: Vec<&str> = AggregationKind::ALL.iter().map(|k| k.name()).collect();
            ApiError::bad_field(
                field,
                format!(
                    "{field} must be one of {}, got {}",
                    known.join(", "),
                    clip_json(value)
                ),
            )
        })
}

pub(super) fn window_seconds(
    value: &Value,
    field: &str,
    retention_seconds: u64,
) -> Result<u64, ApiError> {
    seconds(value, field, retention_seconds, " (the retention)")
}

pub(super) fn refresh_seconds(value: &Value, field: &str) -> Result<u64, ApiError> {
    seconds(value, field, MAX_REFRESH_SECONDS, "")
}

fn seconds(value: &Value, field: &str, max: u64, why: &str) -> Result<u64, ApiError> {
    value
        .as_u64()
        .filter(|s| (1..=max).contains(s))
        .ok_or_else(|| {
            ApiError::bad_field(
                field,
                format!(
                    "{field} must be an integer from 1 to {max}{why}, got {}",
                    clip_json(value)
                ),
            )
        })
}

/// A tag filter: an object of tag names to strings, within the tag limits of events (a tag an
/// event may not carry can never match).
pub(super) fn filter(
    value: &Value,
    field: &str,
    limits: &TagLimits,
) -> Result<BTreeMap<String, String>, ApiError> {
    let Value::Object(tags) = value else {
        return Err(ApiError::bad_field(
            field,
            format!(
                "{field} must be an object of tag names to string values, got {}",
                clip_json(value)
            ),
        ));
    };
    if tags.len() > limits.max_tags {
        return Err(ApiError::bad_field(
            field,
            format!(
                "{field} has {} tags; events have at most {}",
                tags.len(),
                limits.max_tags
            ),
        ));
    }
    tags.iter()
        .map(|(key, value)| {
            if key.is_empty() {
                return Err(ApiError::bad_field(
                    field,
                    format!("{field} has an empty tag name"),
                ));
            }
            let chars = key.chars().count();
            if chars > limits.max_key_chars {
                return Err(ApiError::bad_field(
                    field,
                    format!(
                        "{field} has a tag name of {chars} characters ({}); tag names have at most {}",
                        clip(key),
                        limits.max_key_chars
                    ),
                ));
            }
            match value {
                Value::String(text) if text.chars().count() > limits.max_value_chars => {
                    let field = format!("{field}.{key}");
                    Err(ApiError::bad_field(
                        &field,
                        format!(
                            "{field} is {} characters long; tag values have at most {}",
                            text.chars().count(),
                            limits.max_value_chars
                        ),
                    ))
                }
                Value::String(text) => Ok((key.clone(), text.clone())),
                other => {
                    let field = format!("{field}.{key}");
                    Err(ApiError::bad_field(
                        &field,
                        format!("{field} must be a string, got {}", clip_json(other)),
                    ))
                }
            }
        })
        .collect()
}

/// Display settings: any JSON, nested at most [`MAX_DISPLAY_CONFIG_DEPTH`] deep.
pub(super) fn display_config(value: Value, field: &str) -> Result<Value, ApiError> {
    if depth(&value) > MAX_DISPLAY_CONFIG_DEPTH {
        return Err(ApiError::bad_field(
            field,
            format!("{field} is nested more than {MAX_DISPLAY_CONFIG_DEPTH} levels deep"),
        ));
    }
    Ok(value)
}

/// How deeply `value` nests arrays and objects (a scalar is 0). Recursive, which is safe:
/// serde_json parsed it, so it is at most 128 deep.
fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(fields) => 1 + fields.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

pub(super) fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

/// JSON text of `value`, shortened for an error message.
pub(super) fn clip_json(value: &Value) -> String {
    clip(&value.to_string())
}

/// `text`, shortened to 40 characters for an error message.
pub(crate) fn clip(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}
