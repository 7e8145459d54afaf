//! The fields of one record being imported, whether they come from a JSON object (NDJSON)
//! or from a CSV row, read by proto field name with typed getters.
//!
//! A field is looked up by its snake_case proto name; JSON's lowerCamelCase names
//! (`createdAt`) are turned into snake_case first, so both spellings work. An absent
//! field, a JSON `null` and an empty CSV cell all mean "not set" and give the proto
//! default: whether a field is required is the server's call (it names the field in its
//! rejection). Errors name the field the way the server does: `deal.amount: …`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

/// One field's raw value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cell<'a> {
    /// A JSON value (never `null`).
    Json(&'a Value),
    /// The text of a CSV cell (never empty).
    Text(&'a str),
}

/// A protobuf enum as the importer reads it: by full name (`DEAL_STATUS_WON`), short
/// name (`won`, case-insensitive, `-` for `_`) or number.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EnumType {
    /// The message-level type name, for errors (`DealStatus`).
    pub(crate) name: &'static str,
    /// The value prefix (`DEAL_STATUS`).
    pub(crate) prefix: &'static str,
    /// The value's full name of a number, `None` when the number is not a value.
    pub(crate) name_of: fn(i32) -> Option<&'static str>,
    /// The number of a full value name.
    pub(crate) from_name: fn(&str) -> Option<i32>,
}

impl EnumType {
    /// The number of `text`: a full or short value name.
    pub(crate) fn parse(&self, text: &str) -> Result<i32, String> {
        let trimmed = text.trim();
        if let Some(number) = (self.from_name)(trimmed) {
            return Ok(number);
        }
        let short = trimmed.to_ascii_uppercase().replace(['-', ' '], "_");
        if let Some(number) = (self.from_name)(&format!("{}_{short}", self.prefix)) {
            return Ok(number);
        }
        Err(format!(
            "`{text}` is not a {} value (one of {})",
            self.name,
            self.short_names().join(", ")
        ))
    }

    /// The short names of every value but `_UNSPECIFIED`, lowercase (`open`, `won`, `lost`).
    pub(crate) fn short_names(&self) -> Vec<String> {
        (1..)
            .map_while(self.name_of)
            .map(|full| {
                full.strip_prefix(self.prefix)
                    .and_then(|rest| rest.strip_prefix('_'))
                    .unwrap_or(full)
                    .to_ascii_lowercase()
            })
            .collect()
    }
}

/// Declares the [`EnumType`] of a generated prost enum.
macro_rules! enum_type {
    ($ty:ident, $prefix:literal) => {
        $crate::cli::fields::EnumType {
            name: stringify!($ty),
            prefix: $prefix,
            name_of: |n| {
                kpi_proto::kpi::v1::$ty::try_from(n)
                    .ok()
                    .map(|v| v.as_str_name())
            },
            from_name: |s| kpi_proto::kpi::v1::$ty::from_str_name(s).map(|v| v as i32),
        }
    };
}
pub(crate) use enum_type;

/// `createdAt` → `created_at`; snake_case stays as it is.
pub(crate) fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.trim().chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The fields of one message, consumed by the getters; [`Fields::finish`] reports the
/// fields no getter asked for.
#[derive(Debug)]
pub(crate) struct Fields<'a> {
    /// The message's path in errors (`deal`, `deal.stage_history[1]`).
    path: String,
    /// The set fields by snake_case name, with the name as written.
    cells: BTreeMap<String, (String, Cell<'a>)>,
    /// Every name a getter asked for.
    asked: BTreeSet<&'static str>,
}

impl<'a> Fields<'a> {
    /// No fields: every getter gives its default.
    pub(crate) fn empty(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            cells: BTreeMap::new(),
            asked: BTreeSet::new(),
        }
    }

    /// The members of a JSON object. A field given twice (`createdAt` and `created_at`)
    /// is an error; `null` members are left out.
    pub(crate) fn from_json(
        path: impl Into<String>,
        object: &'a Map<String, Value>,
    ) -> Result<Self, String> {
        let mut fields = Self::empty(path);
        for (written, value) in object {
            if value.is_null() {
                continue;
            }
            fields.insert(written, Cell::Json(value))?;
        }
        Ok(fields)
    }

    /// Adds one field; an error if it is already set under another spelling.
    pub(crate) fn insert(&mut self, written: &str, cell: Cell<'a>) -> Result<(), String> {
        let name = snake_case(written);
        if let Some((first, _)) = self.cells.get(&name) {
            return Err(format!(
                "{}: `{first}` and `{written}` are the same field",
                self.path
            ));
        }
        self.cells.insert(name, (written.to_owned(), cell));
        Ok(())
    }

    /// `path.field`.
    fn field_path(&self, field: &str) -> String {
        format!("{}.{field}", self.path)
    }

    fn error(&self, field: &str, reason: impl std::fmt::Display) -> String {
        format!("{}: {reason}", self.field_path(field))
    }

    fn take(&mut self, field: &'static str) -> Option<Cell<'a>> {
        self.asked.insert(field);
        self.cells.remove(field).map(|(_, cell)| cell)
    }

    /// A plain string (an id, a name): a JSON string or integer, or the cell's text.
    pub(crate) fn string(&mut self, field: &'static str) -> Result<String, String> {
        Ok(self.optional_string(field)?.unwrap_or_default())
    }

    /// An `optional string`: `None` when not set.
    pub(crate) fn optional_string(
        &mut self,
        field: &'static str,
    ) -> Result<Option<String>, String> {
        match self.take(field) {
            None => Ok(None),
            Some(Cell::Text(text)) => Ok(Some(text.to_owned())),
            Some(Cell::Json(Value::String(text))) => Ok(Some(text.clone())),
            Some(Cell::Json(Value::Number(n))) if n.is_i64() || n.is_u64() => {
                Ok(Some(n.to_string()))
            }
            Some(Cell::Json(other)) => {
                Err(self.error(field, format!("must be a string, not {}", json_type(other))))
            }
        }
    }

    /// A decimal string (money, a score): a JSON string or integer (never a JSON
    /// fraction, which would go through binary floating point), or the cell's text. The
    /// server checks the decimal itself.
    pub(crate) fn decimal(&mut self, field: &'static str) -> Result<String, String> {
        match self.take(field) {
            None => Ok(String::new()),
            Some(Cell::Text(text)) => Ok(text.to_owned()),
            Some(Cell::Json(Value::String(text))) => Ok(text.clone()),
            Some(Cell::Json(Value::Number(n))) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
            Some(Cell::Json(Value::Number(n))) => Err(self.error(
                field,
                format!("must be a decimal string (\"{n}\"), not a JSON number: a fraction in JSON is not exact"),
            )),
            Some(Cell::Json(other)) => Err(self.error(
                field,
                format!("must be a decimal string, not {}", json_type(other)),
            )),
        }
    }

    /// A `google.protobuf.Timestamp` from RFC 3339 text (`2024-01-05T10:00:00Z`, any offset).
    pub(crate) fn timestamp(
        &mut self,
        field: &'static str,
    ) -> Result<Option<prost_types::Timestamp>, String> {
        let text = match self.take(field) {
            None => return Ok(None),
            Some(Cell::Text(text)) => text,
            Some(Cell::Json(Value::String(text))) => text.as_str(),
            Some(Cell::Json(other)) => {
                return Err(self.error(
                    field,
                    format!("must be an RFC 3339 time string, not {}", json_type(other)),
                ))
            }
        };
        parse_time(text)
            .map(Some)
            .map_err(|reason| self.error(field, reason))
    }

    /// An enum: its full or short name, or (JSON only) its number.
    pub(crate) fn enumeration(
        &mut self,
        field: &'static str,
        ty: &EnumType,
    ) -> Result<i32, String> {
        match self.take(field) {
            None => Ok(0),
            Some(Cell::Text(text)) => ty.parse(text).map_err(|e| self.error(field, e)),
            Some(Cell::Json(Value::String(text))) => {
                ty.parse(text).map_err(|e| self.error(field, e))
            }
            Some(Cell::Json(Value::Number(n))) => n
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .filter(|n| (ty.name_of)(*n).is_some())
                .ok_or_else(|| self.error(field, format!("{n} is not a {} value", ty.name))),
            Some(Cell::Json(other)) => Err(self.error(
                field,
                format!("must be a {} name, not {}", ty.name, json_type(other)),
            )),
        }
    }

    /// A `uint64`: a JSON number or string of digits, or the cell's text.
    pub(crate) fn uint64(&mut self, field: &'static str) -> Result<u64, String> {
        let parsed = match self.take(field) {
            None => return Ok(0),
            Some(Cell::Json(Value::Number(n))) => n.as_u64().ok_or_else(|| n.to_string()),
            Some(Cell::Json(Value::String(text))) => {
                text.trim().parse().map_err(|_| format!("`{text}`"))
            }
            Some(Cell::Text(text)) => text.trim().parse().map_err(|_| format!("`{text}`")),
            Some(Cell::Json(other)) => Err(json_type(other).to_owned()),
        };
        parsed.map_err(|shown| self.error(field, format!("{shown} is not a whole number ≥ 0")))
    }

    /// A `uint32`, read like [`Fields::uint64`].
    pub(crate) fn uint32(&mut self, field: &'static str) -> Result<u32, String> {
        let value = self.uint64(field)?;
        u32::try_from(value)
            .map_err(|_| self.error(field, format!("{value} is larger than {}", u32::MAX)))
    }

    /// An `optional bool`: JSON `true`/`false`, or the text `true`/`false` (any case).
    pub(crate) fn optional_bool(&mut self, field: &'static str) -> Result<Option<bool>, String> {
        match self.take(field) {
            None => Ok(None),
            Some(Cell::Json(Value::Bool(b))) => Ok(Some(*b)),
            Some(Cell::Text(text)) => match text.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                _ => Err(self.error(field, format!("`{text}` is not true or false"))),
            },
            Some(Cell::Json(other)) => Err(self.error(
                field,
                format!("must be true or false, not {}", json_type(other)),
            )),
        }
    }

    /// A repeated message field: a JSON array of objects, each read by `from_json`, or a
    /// CSV cell read by `from_text` (`stage@time;stage@time`).
    pub(crate) fn repeated<T>(
        &mut self,
        field: &'static str,
        from_json: impl Fn(&mut Fields<'a>) -> Result<T, String>,
        from_text: impl Fn(&str) -> Result<Vec<T>, String>,
    ) -> Result<Vec<T>, String> {
        match self.take(field) {
            None => Ok(Vec::new()),
            Some(Cell::Text(text)) => from_text(text).map_err(|e| self.error(field, e)),
            Some(Cell::Json(Value::Array(items))) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let path = format!("{}[{i}]", self.field_path(field));
                    let Value::Object(object) = item else {
                        return Err(format!(
                            "{path}: must be an object, not {}",
                            json_type(item)
                        ));
                    };
                    let mut fields = Fields::from_json(path, object)?;
                    let value = from_json(&mut fields)?;
                    fields.finish()?;
                    out.push(value);
                }
                Ok(out)
            }
            Some(Cell::Json(other)) => {
                Err(self.error(field, format!("must be an array, not {}", json_type(other))))
            }
        }
    }

    /// An error naming the first field no getter asked for.
    pub(crate) fn finish(self) -> Result<(), String> {
        match self.cells.values().next() {
            None => Ok(()),
            Some((written, _)) => Err(format!(
                "{}: unknown field `{written}` (fields: {})",
                self.path,
                self.asked.iter().copied().collect::<Vec<_>>().join(", ")
            )),
        }
    }

    /// Every field name a getter asked for so far.
    pub(crate) fn asked(&self) -> &BTreeSet<&'static str> {
        &self.asked
    }
}

/// An RFC 3339 instant (`2024-01-05T10:00:00Z`, `2024-01-05T11:00:00+01:00`).
pub(crate) fn parse_time(text: &str) -> Result<prost_types::Timestamp, String> {
    let t: jiff::Timestamp = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not an RFC 3339 time such as 2024-01-05T10:00:00Z"))?;
    Ok(super::timestamp_proto(t))
}

/// How a JSON value's type reads in an error.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const STATUS: EnumType = enum_type!(DealStatus, "DEAL_STATUS");
    const KIND: EnumType = enum_type!(DealKind, "DEAL_KIND");

    fn object(value: &Value) -> &Map<String, Value> {
        value.as_object().unwrap()
    }

    #[test]
    fn names_become_snake_case() {
        assert_eq!(snake_case("createdAt"), "created_at");
        assert_eq!(snake_case("surveyResponse"), "survey_response");
        assert_eq!(snake_case("created_at"), "created_at");
        assert_eq!(snake_case("id"), "id");
    }

    #[test]
    fn enums_parse_by_full_name_short_name_and_number() {
        assert_eq!(STATUS.parse("DEAL_STATUS_WON"), Ok(2));
        assert_eq!(STATUS.parse("won"), Ok(2));
        assert_eq!(STATUS.parse("Lost"), Ok(3));
        assert_eq!(KIND.parse("new_business"), Ok(1));
        assert_eq!(KIND.parse("cross-sell"), Ok(3));
        assert_eq!(
            STATUS.parse("closed"),
            Err("`closed` is not a DealStatus value (one of open, won, lost)".to_owned())
        );
        let doc = json!({"status": 3});
        let mut fields = Fields::from_json("deal", object(&doc)).unwrap();
        assert_eq!(fields.enumeration("status", &STATUS), Ok(3));
        let doc = json!({"status": 9});
        let mut fields = Fields::from_json("deal", object(&doc)).unwrap();
        assert_eq!(
            fields.enumeration("status", &STATUS),
            Err("deal.status: 9 is not a DealStatus value".to_owned())
        );
    }

    #[test]
    fn camel_and_snake_case_are_one_field() {
        let doc = json!({"createdAt": "2024-01-05T10:00:00Z"});
        let mut fields = Fields::from_json("deal", object(&doc)).unwrap();
        let ts = fields.timestamp("created_at").unwrap().unwrap();
        assert_eq!(ts.seconds, 1_704_448_800);
        fields.finish().unwrap();

        let doc =
            json!({"createdAt": "2024-01-05T10:00:00Z", "created_at": "2024-01-06T10:00:00Z"});
        let err = Fields::from_json("deal", object(&doc)).unwrap_err();
        assert!(err.contains("are the same field"), "{err}");
    }

    #[test]
    fn absent_null_and_unknown_fields() {
        let doc = json!({"id": "d1", "owner": null, "colour": "red"});
        let mut fields = Fields::from_json("deal", object(&doc)).unwrap();
        assert_eq!(fields.string("id").unwrap(), "d1");
        assert_eq!(fields.string("owner").unwrap(), "");
        assert_eq!(fields.optional_string("campaign_id").unwrap(), None);
        assert_eq!(fields.timestamp("closed_at").unwrap(), None);
        assert_eq!(
            fields.finish().unwrap_err(),
            "deal: unknown field `colour` (fields: campaign_id, closed_at, id, owner)"
        );
    }

    #[test]
    fn decimals_are_strings_or_integers_never_fractions() {
        let doc = json!({"a": "1200.50", "b": 1200, "c": 12.5, "d": true});
        let mut fields = Fields::from_json("deal", object(&doc)).unwrap();
        assert_eq!(fields.decimal("a").unwrap(), "1200.50");
        assert_eq!(fields.decimal("b").unwrap(), "1200");
        let err = fields.decimal("c").unwrap_err();
        assert!(
            err.starts_with("deal.c: must be a decimal string (\"12.5\")"),
            "{err}"
        );
        assert_eq!(
            fields.decimal("d").unwrap_err(),
            "deal.d: must be a decimal string, not a boolean"
        );
    }

    #[test]
    fn numbers_and_booleans() {
        let doc = json!({"delivered": "12", "opens": 7, "clicks": -1, "scale_max": 5_000_000_000u64, "renewed": true});
        let mut fields = Fields::from_json("campaign", object(&doc)).unwrap();
        assert_eq!(fields.uint64("delivered"), Ok(12));
        assert_eq!(fields.uint64("opens"), Ok(7));
        assert_eq!(
            fields.uint64("clicks"),
            Err("campaign.clicks: -1 is not a whole number ≥ 0".to_owned())
        );
        assert!(fields
            .uint32("scale_max")
            .unwrap_err()
            .contains("larger than"));
        assert_eq!(fields.optional_bool("renewed"), Ok(Some(true)));

        let mut text = Fields::empty("subscription");
        text.insert("renewed", Cell::Text("FALSE")).unwrap();
        text.insert("unsubscribes", Cell::Text("x")).unwrap();
        assert_eq!(text.optional_bool("renewed"), Ok(Some(false)));
        assert_eq!(
            text.uint64("unsubscribes"),
            Err("subscription.unsubscribes: `x` is not a whole number ≥ 0".to_owned())
        );
    }

    #[test]
    fn times_must_be_rfc3339() {
        let mut fields = Fields::empty("deal");
        fields
            .insert("created_at", Cell::Text("2024-01-05"))
            .unwrap();
        assert_eq!(
            fields.timestamp("created_at").unwrap_err(),
            "deal.created_at: `2024-01-05` is not an RFC 3339 time such as 2024-01-05T10:00:00Z"
        );
        let offset = parse_time("2024-01-05T11:00:00+01:00").unwrap();
        assert_eq!(offset, parse_time("2024-01-05T10:00:00Z").unwrap());
    }

    #[test]
    fn repeated_fields_name_the_bad_element() {
        let doc = json!({"stage_history": [{"stage": "demo"}, {"stage": "won", "enteredAt": 3}]});
        let mut fields = Fields::from_json("deal", object(&doc)).unwrap();
        let err = fields
            .repeated(
                "stage_history",
                |f| {
                    let stage = f.string("stage")?;
                    let at = f.timestamp("entered_at")?;
                    Ok((stage, at))
                },
                |_| Ok(Vec::new()),
            )
            .unwrap_err();
        assert_eq!(
            err,
            "deal.stage_history[1].entered_at: must be an RFC 3339 time string, not a number"
        );
    }
}
