//! One value of a field that is not a list, a map or a nested message, read by the field's
//! descriptor type from a JSON value (NDJSON) or a text (a CSV cell or part of one).
//!
//! The leniencies of the import formats live here: strings also take JSON integers, never
//! JSON fractions (money never goes through binary floating point); integers are JSON
//! numbers or strings of digits; enums are read by full name (`DEAL_STATUS_WON`), short
//! name (`won`, any case, `-` for `_`) or number; `google.protobuf.Timestamp` is RFC 3339
//! text with any offset.

use prost_reflect::{DynamicMessage, EnumDescriptor, Kind, MessageDescriptor, Value};
use serde_json::Value as Json;

/// The full name of the one message read from a scalar: a time.
pub(crate) const TIMESTAMP: &str = "google.protobuf.Timestamp";
/// The numbers of [`TIMESTAMP`]'s fields `seconds` and `nanos`.
const TIMESTAMP_SECONDS: u32 = 1;
const TIMESTAMP_NANOS: u32 = 2;

/// One raw value to read.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cell<'a> {
    /// A JSON value (never `null`).
    Json(&'a Json),
    /// Text: a CSV cell or a part of one (never empty).
    Text(&'a str),
}

impl<'a> Cell<'a> {
    /// The text of a CSV cell or of a JSON string.
    fn text(self) -> Option<&'a str> {
        match self {
            Cell::Text(text) => Some(text),
            Cell::Json(Json::String(text)) => Some(text),
            Cell::Json(_) => None,
        }
    }
}

/// Whether values of `kind` are read by [`scalar`] (every kind but messages other than
/// `google.protobuf.Timestamp`).
pub(crate) fn is_scalar(kind: &Kind) -> bool {
    match kind {
        Kind::Message(message) => is_timestamp(message),
        _ => true,
    }
}

/// Whether `message` is `google.protobuf.Timestamp`.
pub(crate) fn is_timestamp(message: &MessageDescriptor) -> bool {
    message.full_name() == TIMESTAMP
}

/// The value of `cell` as a `kind`, which [`is_scalar`]. Errors say what is wrong with the
/// value; the caller adds the field's path.
pub(crate) fn scalar(kind: &Kind, cell: Cell<'_>) -> Result<Value, String> {
    match kind {
        Kind::String => string(cell).map(Value::String),
        Kind::Bool => boolean(cell).map(Value::Bool),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            whole(cell, i32::MIN.into(), i32::MAX.into()).map(|n| Value::I32(n as i32))
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            whole(cell, i64::MIN.into(), i64::MAX.into()).map(|n| Value::I64(n as i64))
        }
        Kind::Uint32 | Kind::Fixed32 => {
            whole(cell, 0, u32::MAX.into()).map(|n| Value::U32(n as u32))
        }
        Kind::Uint64 | Kind::Fixed64 => {
            whole(cell, 0, u64::MAX.into()).map(|n| Value::U64(n as u64))
        }
        Kind::Double => float(cell).map(Value::F64),
        Kind::Float => float(cell).map(|f| Value::F32(f as f32)),
        Kind::Enum(ty) => enumeration(ty, cell).map(Value::EnumNumber),
        Kind::Message(message) if is_timestamp(message) => timestamp(message, cell),
        Kind::Message(message) => Err(format!("a {} is not read from one value", message.name())),
        Kind::Bytes => Err("bytes fields cannot be imported".to_owned()),
    }
}

/// A string: a JSON string or integer (never a fraction, which would have gone through
/// binary floating point), or the text as it is. Whether it is a valid decimal, id… is the
/// server's call.
fn string(cell: Cell<'_>) -> Result<String, String> {
    match cell {
        Cell::Text(text) => Ok(text.to_owned()),
        Cell::Json(Json::String(text)) => Ok(text.clone()),
        Cell::Json(Json::Number(n)) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        Cell::Json(Json::Number(n)) => Err(format!(
            "must be a decimal string (\"{n}\"), not a JSON number: a fraction in JSON is not exact"
        )),
        Cell::Json(other) => Err(format!("must be a string, not {}", json_type(other))),
    }
}

/// `true` or `false`: a JSON boolean, or the text in any case.
fn boolean(cell: Cell<'_>) -> Result<bool, String> {
    if let Cell::Json(Json::Bool(b)) = cell {
        return Ok(*b);
    }
    let Some(text) = cell.text() else {
        return Err(format!("must be true or false, not {}", shown(cell)));
    };
    match text.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("`{text}` is not true or false")),
    }
}

/// A whole number in `min..=max`: a JSON number or a string of digits.
fn whole(cell: Cell<'_>, min: i128, max: i128) -> Result<i128, String> {
    let at_least = if min == 0 { " ≥ 0" } else { "" };
    let parsed = match cell {
        Cell::Json(Json::Number(n)) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .ok_or_else(|| n.to_string()),
        _ => match cell.text() {
            Some(text) => text.trim().parse::<i128>().map_err(|_| format!("`{text}`")),
            None => Err(shown(cell).to_owned()),
        },
    };
    match parsed {
        Ok(n) if n > max => Err(format!("{n} is larger than {max}")),
        Ok(n) if n >= min => Ok(n),
        Ok(n) if min == 0 => Err(format!("{n} is not a whole number ≥ 0")),
        Ok(n) => Err(format!("{n} is smaller than {min}")),
        Err(shown) => Err(format!("{shown} is not a whole number{at_least}")),
    }
}

/// A floating-point number: a JSON number, or a number, `NaN`, `Infinity` or `-Infinity`
/// as text.
fn float(cell: Cell<'_>) -> Result<f64, String> {
    if let Cell::Json(Json::Number(n)) = cell {
        return n.as_f64().ok_or_else(|| format!("{n} is not a number"));
    }
    let Some(text) = cell.text() else {
        return Err(format!("must be a number, not {}", shown(cell)));
    };
    match text.trim() {
        "NaN" => Ok(f64::NAN),
        "Infinity" => Ok(f64::INFINITY),
        "-Infinity" => Ok(f64::NEG_INFINITY),
        number => number
            .parse()
            .map_err(|_| format!("`{text}` is not a number")),
    }
}

/// An enum value's number: its full name (`DEAL_STATUS_WON`, any case), its short name
/// (`won`, `Won`, `new-business`) or its number.
fn enumeration(ty: &EnumDescriptor, cell: Cell<'_>) -> Result<i32, String> {
    let not_a_value =
        |shown: &dyn std::fmt::Display| format!("{shown} is not a {} value", ty.name());
    if let Cell::Json(Json::Number(n)) = cell {
        return n
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .filter(|n| ty.get_value(*n).is_some())
            .ok_or_else(|| not_a_value(n));
    }
    let Some(text) = cell.text() else {
        return Err(format!("must be a {} name, not {}", ty.name(), shown(cell)));
    };
    let trimmed = text.trim();
    let upper = trimmed.to_ascii_uppercase().replace(['-', ' '], "_");
    let by_name = [
        trimmed.to_owned(),
        upper.clone(),
        format!("{}{upper}", enum_prefix(ty)),
    ]
    .iter()
    .find_map(|name| ty.get_value_by_name(name));
    if let Some(value) = by_name {
        return Ok(value.number());
    }
    if let Some(value) = trimmed.parse().ok().and_then(|n| ty.get_value(n)) {
        return Ok(value.number());
    }
    Err(format!(
        "{} (one of {})",
        not_a_value(&format_args!("`{text}`")),
        short_names(ty).join(", ")
    ))
}

/// The prefix every value name of `ty` shares, up to its last `_` (`DEAL_STATUS_`): what a
/// short name leaves out.
pub(crate) fn enum_prefix(ty: &EnumDescriptor) -> String {
    let mut names = ty.values().map(|value| value.name().to_owned());
    let Some(first) = names.next() else {
        return String::new();
    };
    let common = names.fold(first, |common, name| {
        let shared = common
            .bytes()
            .zip(name.bytes())
            .take_while(|(a, b)| a == b)
            .count();
        common[..shared].to_owned()
    });
    match common.rfind('_') {
        Some(end) => common[..=end].to_owned(),
        None => String::new(),
    }
}

/// The short names of every value but the zero one, lowercase (`open`, `won`, `lost`).
pub(crate) fn short_names(ty: &EnumDescriptor) -> Vec<String> {
    let prefix = enum_prefix(ty);
    ty.values()
        .filter(|value| value.number() != 0)
        .map(|value| {
            let name = value.name();
            name.strip_prefix(&prefix)
                .unwrap_or(name)
                .to_ascii_lowercase()
        })
        .collect()
}

/// A `google.protobuf.Timestamp` from RFC 3339 text.
fn timestamp(message: &MessageDescriptor, cell: Cell<'_>) -> Result<Value, String> {
    let Some(text) = cell.text() else {
        return Err(format!(
            "must be an RFC 3339 time string, not {}",
            shown(cell)
        ));
    };
    let time = parse_time(text)?;
    let mut value = DynamicMessage::new(message.clone());
    value.set_field_by_number(TIMESTAMP_SECONDS, Value::I64(time.seconds));
    value.set_field_by_number(TIMESTAMP_NANOS, Value::I32(time.nanos));
    Ok(Value::Message(value))
}

/// An RFC 3339 instant (`2024-01-05T10:00:00Z`, `2024-01-05T11:00:00+01:00`).
pub(crate) fn parse_time(text: &str) -> Result<prost_types::Timestamp, String> {
    let t: jiff::Timestamp = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not an RFC 3339 time such as 2024-01-05T10:00:00Z"))?;
    Ok(super::timestamp_proto(t))
}

/// How a value that is not text reads in an error (`a number`).
fn shown(cell: Cell<'_>) -> &'static str {
    match cell {
        Cell::Json(value) => json_type(value),
        Cell::Text(_) => "text",
    }
}

/// How a JSON value's type reads in an error.
pub(crate) fn json_type(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::descriptors::RecordKind;
    use serde_json::json;

    fn field_kind(kind: &str, field: &str) -> Kind {
        RecordKind::named(kind)
            .unwrap()
            .message()
            .get_field_by_name(field)
            .unwrap()
            .kind()
    }

    fn text(kind: &Kind, text: &str) -> Result<Value, String> {
        scalar(kind, Cell::Text(text))
    }

    fn json(kind: &Kind, value: Json) -> Result<Value, String> {
        scalar(kind, Cell::Json(&value))
    }

    #[test]
    fn enums_parse_by_full_name_short_name_and_number() {
        let status = field_kind("deal", "status");
        let kind = field_kind("deal", "kind");
        let Kind::Enum(status_enum) = &status else {
            panic!()
        };
        assert_eq!(enum_prefix(status_enum), "DEAL_STATUS_");
        assert_eq!(short_names(status_enum), ["open", "won", "lost"]);
        assert_eq!(text(&status, "DEAL_STATUS_WON"), Ok(Value::EnumNumber(2)));
        assert_eq!(text(&status, "deal_status_won"), Ok(Value::EnumNumber(2)));
        assert_eq!(text(&status, "won"), Ok(Value::EnumNumber(2)));
        assert_eq!(text(&status, " Lost "), Ok(Value::EnumNumber(3)));
        assert_eq!(text(&status, "3"), Ok(Value::EnumNumber(3)));
        assert_eq!(text(&kind, "new_business"), Ok(Value::EnumNumber(1)));
        assert_eq!(text(&kind, "cross-sell"), Ok(Value::EnumNumber(3)));
        assert_eq!(json(&status, json!(3)), Ok(Value::EnumNumber(3)));
        assert_eq!(
            text(&status, "closed"),
            Err("`closed` is not a DealStatus value (one of open, won, lost)".to_owned())
        );
        assert_eq!(
            json(&status, json!(9)),
            Err("9 is not a DealStatus value".to_owned())
        );
        assert_eq!(
            json(&status, json!(true)),
            Err("must be a DealStatus name, not a boolean".to_owned())
        );
    }

    #[test]
    fn strings_take_integers_never_fractions() {
        let amount = field_kind("deal", "amount");
        assert_eq!(
            json(&amount, json!("1200.50")),
            Ok(Value::String("1200.50".into()))
        );
        assert_eq!(json(&amount, json!(1200)), Ok(Value::String("1200".into())));
        assert_eq!(text(&amount, "12,5"), Ok(Value::String("12,5".into())));
        let err = json(&amount, json!(12.5)).unwrap_err();
        assert!(
            err.starts_with("must be a decimal string (\"12.5\"), not a JSON number"),
            "{err}"
        );
        assert_eq!(
            json(&amount, json!(true)),
            Err("must be a string, not a boolean".to_owned())
        );
    }

    #[test]
    fn counters_and_booleans() {
        let delivered = field_kind("campaign", "delivered");
        let scale_max = field_kind("survey_response", "scale_max");
        let renewed = field_kind("subscription", "renewed");
        assert_eq!(json(&delivered, json!("12")), Ok(Value::U64(12)));
        assert_eq!(json(&delivered, json!(7)), Ok(Value::U64(7)));
        assert_eq!(text(&delivered, " 7 "), Ok(Value::U64(7)));
        assert_eq!(
            json(&delivered, json!(-1)),
            Err("-1 is not a whole number ≥ 0".to_owned())
        );
        assert_eq!(
            text(&delivered, "x"),
            Err("`x` is not a whole number ≥ 0".to_owned())
        );
        assert_eq!(
            json(&delivered, json!(1.5)),
            Err("1.5 is not a whole number ≥ 0".to_owned())
        );
        assert_eq!(
            json(&scale_max, json!(5_000_000_000u64)),
            Err("5000000000 is larger than 4294967295".to_owned())
        );
        assert_eq!(json(&renewed, json!(true)), Ok(Value::Bool(true)));
        assert_eq!(text(&renewed, "FALSE"), Ok(Value::Bool(false)));
        assert_eq!(
            text(&renewed, "yes"),
            Err("`yes` is not true or false".to_owned())
        );
        assert_eq!(
            json(&renewed, json!(1)),
            Err("must be true or false, not a number".to_owned())
        );
    }

    #[test]
    fn signed_integers_and_floats() {
        assert_eq!(scalar(&Kind::Int32, Cell::Text("-5")), Ok(Value::I32(-5)));
        assert_eq!(
            scalar(&Kind::Int32, Cell::Text("3000000000")),
            Err("3000000000 is larger than 2147483647".to_owned())
        );
        assert_eq!(
            scalar(&Kind::Int64, Cell::Text("x")),
            Err("`x` is not a whole number".to_owned())
        );
        assert_eq!(
            scalar(&Kind::Double, Cell::Json(&json!(0.5))),
            Ok(Value::F64(0.5))
        );
        assert_eq!(
            scalar(&Kind::Double, Cell::Text("-Infinity")),
            Ok(Value::F64(f64::NEG_INFINITY))
        );
    }

    #[test]
    fn times_are_rfc3339_with_any_offset() {
        let created_at = field_kind("deal", "created_at");
        let Ok(Value::Message(time)) = text(&created_at, "2024-01-05T11:00:00+01:00") else {
            panic!()
        };
        let time: prost_types::Timestamp = time.transcode_to().unwrap();
        assert_eq!(time.seconds, 1_704_448_800);
        assert_eq!(
            text(&created_at, "2024-01-05"),
            Err("`2024-01-05` is not an RFC 3339 time such as 2024-01-05T10:00:00Z".to_owned())
        );
        assert_eq!(
            json(&created_at, json!(3)),
            Err("must be an RFC 3339 time string, not a number".to_owned())
        );
        assert_eq!(
            parse_time("2024-01-05T11:00:00+01:00"),
            parse_time("2024-01-05T10:00:00Z")
        );
    }
}
