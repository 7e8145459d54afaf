//! The columns of a CSV file of one record kind, read from its header row, and the message
//! of one row.
//!
//! A column is a field of the kind's message (`created_at` or `createdAt`), or one entry of
//! a map field: `<map>.<key>`, with `attr.` short for `attributes.` (`attr.region`). When
//! the map's values are messages with a oneof (`AttributeValue`), a `:<field>` suffix on the
//! header says which field of the value the cells set (`attr.seats:decimal`,
//! `attr.vip:flag`, `attr.renewal:time`); without one, the value's first field
//! (`text`).

use prost_reflect::{DynamicMessage, FieldDescriptor, MessageDescriptor};

use super::descriptors::snake_case;
use super::messages::MessageBuilder;
use super::scalars::{is_timestamp, Cell};

/// The header prefix of attribute columns, short for the `attributes` map field.
const ATTRIBUTE_PREFIX: &str = "attr";
/// The map field [`ATTRIBUTE_PREFIX`] names.
const ATTRIBUTES_FIELD: &str = "attributes";

/// What one column's cells set.
#[derive(Debug, Clone)]
enum Target {
    /// A field of the record's message.
    Field(FieldDescriptor),
    /// The entry `key` of a map field; `member` is the field of the value message the cell
    /// sets, when the map's values are messages.
    MapEntry {
        map: FieldDescriptor,
        key: String,
        member: Option<FieldDescriptor>,
    },
}

/// One column: what it sets, and its name as written in the header.
#[derive(Debug, Clone)]
struct Column {
    written: String,
    target: Target,
}

/// The columns of a CSV file of one message type (a record kind's), from its header row.
#[derive(Debug)]
pub(crate) struct Columns {
    message: MessageDescriptor,
    /// The message's path in errors: the kind's name (`deal`).
    path: String,
    columns: Vec<Column>,
}

impl Columns {
    /// The columns a header names for messages of type `message` at `path` (`deal`); an
    /// error (for the whole file) for an unknown or repeated one.
    pub(crate) fn from_header(
        header: &csv::StringRecord,
        message: MessageDescriptor,
        path: &str,
    ) -> Result<Self, String> {
        let mut columns: Vec<Column> = Vec::with_capacity(header.len());
        for written in header {
            let written = written.trim_start_matches('\u{feff}').trim();
            let target =
                target(&message, path, written).map_err(|reason| format!("line 1: {reason}"))?;
            if columns.iter().any(|c| same_target(&c.target, &target)) {
                return Err(format!("line 1: column `{written}` is given twice"));
            }
            columns.push(Column {
                written: written.to_owned(),
                target,
            });
        }
        Ok(Self {
            message,
            path: path.to_owned(),
            columns,
        })
    }

    /// The message of one row; empty cells are not set.
    pub(crate) fn message(&self, row: &csv::StringRecord) -> Result<DynamicMessage, String> {
        if row.len() != self.columns.len() {
            return Err(format!(
                "{} fields, but the header has {} columns",
                row.len(),
                self.columns.len()
            ));
        }
        let mut builder = MessageBuilder::new(self.message.clone(), &self.path);
        for (column, cell) in self.columns.iter().zip(row) {
            if cell.is_empty() {
                continue;
            }
            match &column.target {
                Target::Field(field) => builder.set(field, &column.written, Cell::Text(cell))?,
                Target::MapEntry { map, key, member } => {
                    builder.insert_entry(map, key, member.as_ref(), Cell::Text(cell))?
                }
            }
        }
        Ok(builder.finish())
    }
}

/// What the column `written` sets in messages of type `message` (records of the kind
/// `kind`).
fn target(message: &MessageDescriptor, kind: &str, written: &str) -> Result<Target, String> {
    if let Some(field) = message.get_field_by_name(&snake_case(written)) {
        if field.is_map() {
            return Err(format!(
                "column `{written}`: a map is read from one column per entry, `{}.<key>`",
                column_prefix(&field)
            ));
        }
        return Ok(Target::Field(field));
    }
    let unknown = || {
        let mut known: Vec<String> = message
            .fields()
            .map(|field| {
                if field.is_map() {
                    format!("{}.<key>", column_prefix(&field))
                } else {
                    field.name().to_owned()
                }
            })
            .collect();
        known.sort();
        format!(
            "unknown column `{written}` for {kind} records (columns: {})",
            known.join(", ")
        )
    };
    let Some((prefix, entry)) = written.split_once('.') else {
        return Err(unknown());
    };
    let map_name = if prefix == ATTRIBUTE_PREFIX {
        ATTRIBUTES_FIELD.to_owned()
    } else {
        snake_case(prefix)
    };
    let map = match message.get_field_by_name(&map_name) {
        Some(map) if map.is_map() => map,
        _ if prefix == ATTRIBUTE_PREFIX => {
            return Err(format!(
                "column `{written}`: {kind} records have no attributes"
            ))
        }
        _ => return Err(unknown()),
    };
    let value_message = map
        .kind()
        .as_message()
        .map(|entry| entry.map_entry_value_field().kind())
        .and_then(|kind| kind.as_message().cloned())
        .filter(|value| !is_timestamp(value));
    let (key, member) = match (&value_message, entry.rsplit_once(':')) {
        (Some(value), Some((key, member))) => (key, Some(member_named(value, written, member)?)),
        (Some(value), None) => (entry, Some(first_field(value, written)?)),
        (None, _) => (entry, None),
    };
    if key.is_empty() {
        return Err(format!("column `{written}`: no key after `{prefix}.`"));
    }
    Ok(Target::MapEntry {
        map,
        key: key.to_owned(),
        member,
    })
}

/// The header prefix of a map field's columns: `attr` for `attributes`, else its name.
fn column_prefix(map: &FieldDescriptor) -> &str {
    if map.name() == ATTRIBUTES_FIELD {
        ATTRIBUTE_PREFIX
    } else {
        map.name()
    }
}

/// The field `name` of a map's value message, as a column's `:name` suffix says.
fn member_named(
    value: &MessageDescriptor,
    written: &str,
    name: &str,
) -> Result<FieldDescriptor, String> {
    value.get_field_by_name(&snake_case(name)).ok_or_else(|| {
        let names: Vec<String> = value.fields().map(|f| f.name().to_owned()).collect();
        format!(
            "column `{written}`: `{name}` is not a type of {} (one of {})",
            value.name(),
            names.join(", ")
        )
    })
}

/// The first field of a map's value message, what a column without a suffix sets.
fn first_field(value: &MessageDescriptor, written: &str) -> Result<FieldDescriptor, String> {
    value
        .fields()
        .next()
        .ok_or_else(|| format!("column `{written}`: {} has no fields", value.name()))
}

/// Whether two columns set the same thing (`created_at` and `createdAt`; `attr.seats` and
/// `attr.seats:decimal`).
fn same_target(a: &Target, b: &Target) -> bool {
    match (a, b) {
        (Target::Field(a), Target::Field(b)) => a == b,
        (Target::MapEntry { map: a, key: x, .. }, Target::MapEntry { map: b, key: y, .. }) => {
            a == b && x == y
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::descriptors::RecordKind;
    use crate::cli::probe::probe;
    use kpi_proto::kpi::v1 as pb;
    use prost_reflect::{MapKey, Value};

    fn columns(message: MessageDescriptor, header: &[&str]) -> Result<Columns, String> {
        Columns::from_header(&csv::StringRecord::from(header.to_vec()), message, "probe")
    }

    fn row(columns: &Columns, cells: &[&str]) -> Result<DynamicMessage, String> {
        columns.message(&csv::StringRecord::from(cells.to_vec()))
    }

    #[test]
    fn attr_columns_are_typed_by_their_suffix_text_by_default() {
        let columns = columns(
            probe(),
            &[
                "attr.region",
                "attr.seats:decimal",
                "attr.vip:flag",
                "attr.renewal:time",
                "names.7",
            ],
        )
        .unwrap();
        let message = row(
            &columns,
            &["EMEA", "12", "TRUE", "2025-01-01T00:00:00Z", "seven"],
        )
        .unwrap();
        let attributes = message.get_field_by_name("attributes").unwrap();
        let attributes = attributes.as_map().unwrap();
        let member = |key: &str| {
            let value = attributes[&MapKey::String(key.into())]
                .as_message()
                .unwrap()
                .clone();
            let (field, value) = value.fields().next().unwrap();
            (field.name().to_owned(), value.clone())
        };
        assert_eq!(
            member("region"),
            ("text".into(), Value::String("EMEA".into()))
        );
        assert_eq!(
            member("seats"),
            ("decimal".into(), Value::String("12".into()))
        );
        assert_eq!(member("vip"), ("flag".into(), Value::Bool(true)));
        assert_eq!(member("renewal").0, "time");
        let names = message.get_field_by_name("names").unwrap();
        assert_eq!(
            names.as_map().unwrap()[&MapKey::I32(7)],
            Value::String("seven".into())
        );

        // Empty cells set nothing; a bad value names the entry and its type.
        let message = row(&columns, &["", "", "", "", ""]).unwrap();
        assert!(!message.has_field_by_name("attributes"));
        assert_eq!(
            row(&columns, &["", "", "maybe", "", ""]).unwrap_err(),
            "probe.attributes[vip].flag: `maybe` is not true or false"
        );
    }

    #[test]
    fn bad_map_columns_stop_the_file() {
        let cases: [(&[&str], &str); 6] = [
            (
                &["attr.seats:money"],
                "line 1: column `attr.seats:money`: `money` is not a type of Choice (one of text, decimal, flag, time)",
            ),
            (&["attr."], "line 1: column `attr.`: no key after `attr.`"),
            (
                &["attr.seats", "attr.seats:decimal"],
                "line 1: column `attr.seats:decimal` is given twice",
            ),
            (
                &["attributes"],
                "line 1: column `attributes`: a map is read from one column per entry, `attr.<key>`",
            ),
            (
                &["colour"],
                "line 1: unknown column `colour` for probe records (columns: attr.<key>, choice, names.<key>, numbers)",
            ),
            (
                &["names.seven"],
                "line 1: unknown column",
            ),
        ];
        for (header, expected) in cases {
            match columns(probe(), header) {
                Err(err) => assert!(err.starts_with(expected), "{header:?}: {err}"),
                Ok(columns) => {
                    let err = row(&columns, &["x"]).unwrap_err();
                    assert_eq!(
                        err, "probe.names[seven]: `seven` is not a whole number",
                        "{header:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn lists_and_messages_in_one_cell() {
        let columns = columns(probe(), &["numbers", "choice"]).unwrap();
        let message = row(&columns, &["1; 2;;3", "hi"]).unwrap();
        assert_eq!(
            message.get_field_by_name("numbers").unwrap().into_owned(),
            Value::List(vec![Value::I64(1), Value::I64(2), Value::I64(3)])
        );
        let choice = message.get_field_by_name("choice").unwrap();
        assert_eq!(
            choice
                .as_message()
                .unwrap()
                .get_field_by_name("text")
                .unwrap()
                .into_owned(),
            Value::String("hi".into())
        );
        // A oneof: the second part sets the second member, so two parts set two members.
        assert_eq!(
            row(&columns, &["", "hi@12"]).unwrap_err(),
            "probe.choice: `text` and `decimal` are both set, but value holds one of them"
        );
    }

    #[test]
    fn attr_columns_of_a_deal_and_of_a_message_without_attributes() {
        let deal = RecordKind::named("deal").unwrap();
        let header = ["id", "attr.region", "attr.seats:decimal"];
        let columns = Columns::from_header(
            &csv::StringRecord::from(header.to_vec()),
            deal.message(),
            "deal",
        )
        .unwrap();
        let message = row(&columns, &["d1", "EMEA", "12"]).unwrap();
        let record = crate::cli::messages::record(&deal, message).unwrap();
        let Some(pb::record::Record::Deal(d1)) = record.record else {
            panic!("{record:?}")
        };
        assert_eq!(
            d1.attributes["seats"].value,
            Some(pb::attribute_value::Value::Decimal("12".into()))
        );
        assert_eq!(
            d1.attributes["region"].value,
            Some(pb::attribute_value::Value::Text("EMEA".into()))
        );

        // A message with no `attributes` field (no record kind today) says so.
        let stage_entry = deal
            .message()
            .get_field_by_name("stage_history")
            .unwrap()
            .kind();
        let stage_entry = stage_entry.as_message().unwrap().clone();
        let header = csv::StringRecord::from(vec!["stage", "attr.region"]);
        assert_eq!(
            Columns::from_header(&header, stage_entry, "stage_entry").unwrap_err(),
            "line 1: column `attr.region`: stage_entry records have no attributes"
        );
    }
}
