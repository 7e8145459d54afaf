//! A protobuf message built from its descriptor, field by field, whatever the field's
//! shape: scalars (through [`scalar`]), lists, maps, nested messages and oneofs.
//!
//! From JSON (NDJSON), a message is an object in the proto3 JSON mapping: members named in
//! lowerCamelCase or as in the proto, `null` for "not set", lists as arrays, maps as
//! objects, nested messages as objects. From text (a CSV cell), a list is its elements
//! separated by `;` and a message is its fields in proto order separated by `@` or `=`
//! (`demo@2024-01-10T00:00:00Z`; the fields an element leaves out at its end are not set).
//! Errors name the field as the server does: `deal.stage_history[1].entered_at: …`.

use std::collections::HashMap;

use kpi_proto::kpi::v1 as pb;
use prost_reflect::prost::{self, Message as _};
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, ReflectMessage as _, Value,
};
use serde_json::{Map, Value as Json};

use super::descriptors::{field_list, field_named, RecordKind};
use super::scalars::{is_scalar, json_type, scalar, Cell};

/// The separator of a list's elements in a CSV cell.
pub(crate) const ELEMENT_SEPARATOR: char = ';';
/// The separators of a message's fields in a CSV cell.
pub(crate) const FIELD_SEPARATORS: [char; 2] = ['@', '='];

/// A message being filled in: refuses a field set twice (`createdAt` and `created_at`)
/// and two fields of one oneof. `'w` is the life of the names fields are set under.
#[derive(Debug)]
pub(crate) struct MessageBuilder<'w> {
    message: DynamicMessage,
    /// The message's path in errors (`deal`, `deal.stage_history[1]`).
    path: String,
    /// The numbers of the fields set so far, with their names as written.
    written: Vec<(u32, &'w str)>,
}

impl<'w> MessageBuilder<'w> {
    /// An empty message of type `descriptor` at `path`.
    pub(crate) fn new(descriptor: MessageDescriptor, path: impl Into<String>) -> Self {
        Self {
            message: DynamicMessage::new(descriptor),
            path: path.into(),
            written: Vec::new(),
        }
    }

    /// The message's descriptor.
    pub(crate) fn descriptor(&self) -> MessageDescriptor {
        self.message.descriptor()
    }

    /// `path.field`.
    pub(crate) fn field_path(&self, field: &FieldDescriptor) -> String {
        format!("{}.{}", self.path, field.name())
    }

    /// The field a member or column named `written` sets; an error for an unknown one.
    pub(crate) fn field(&self, written: &str) -> Result<FieldDescriptor, String> {
        field_named(&self.descriptor(), written).ok_or_else(|| {
            format!(
                "{}: unknown field `{written}` (fields: {})",
                self.path,
                field_list(&self.descriptor()).join(", ")
            )
        })
    }

    /// The name a field numbered `number` was set under, if it was.
    fn written_as(&self, number: u32) -> Option<&'w str> {
        self.written
            .iter()
            .find(|(set, _)| *set == number)
            .map(|(_, written)| *written)
    }

    /// Notes that `field` is set under the name `written`: an error when it already is,
    /// or when another member of its oneof is.
    fn claim(&mut self, field: &FieldDescriptor, written: &'w str) -> Result<(), String> {
        if let Some(first) = self.written_as(field.number()) {
            return Err(format!(
                "{}: `{first}` and `{written}` are the same field",
                self.path
            ));
        }
        let oneof = field.containing_oneof().filter(|o| !o.is_synthetic());
        if let Some(oneof) = oneof {
            if let Some(other) = oneof.fields().find_map(|f| self.written_as(f.number())) {
                return Err(format!(
                    "{}: `{other}` and `{written}` are both set, but {} holds one of them",
                    self.path,
                    oneof.name()
                ));
            }
        }
        self.written.push((field.number(), written));
        Ok(())
    }

    /// Sets `field`, named `written`, from `cell`.
    pub(crate) fn set(
        &mut self,
        field: &FieldDescriptor,
        written: &'w str,
        cell: Cell<'_>,
    ) -> Result<(), String> {
        self.claim(field, written)?;
        let value = field_value(field, &|| self.field_path(field), cell)?;
        self.message.set_field(field, value);
        Ok(())
    }

    /// Adds `key` → the value of `cell` to the map `field`; `member` is the field of the
    /// map's value message that `cell` sets, when the values are messages (`attributes`
    /// values are `AttributeValue`s: `decimal`, `flag`…). An error when the key is set.
    pub(crate) fn insert_entry(
        &mut self,
        field: &FieldDescriptor,
        key: &str,
        member: Option<&FieldDescriptor>,
        cell: Cell<'_>,
    ) -> Result<(), String> {
        let path = &self.path;
        let entry_path = || format!("{path}.{}[{key}]", field.name());
        let entry = map_entry(field);
        let map_key = map_key(&entry.map_entry_key_field().kind(), key)
            .map_err(|e| format!("{}: {e}", entry_path()))?;
        let value_field = entry.map_entry_value_field();
        let value = match (member, value_field.kind()) {
            (Some(member), Kind::Message(value_message)) => {
                let member_path = || format!("{}.{}", entry_path(), member.name());
                let mut value = DynamicMessage::new(value_message);
                value.set_field(member, field_value(member, &member_path, cell)?);
                Value::Message(value)
            }
            (Some(_), _) => return Err(format!("{}: the values are not messages", entry_path())),
            (None, kind) => single_value(&kind, &entry_path, cell)?,
        };
        let Value::Map(map) = self.message.get_field_mut(field) else {
            unreachable!("a map field holds a map");
        };
        if map.insert(map_key, value).is_some() {
            return Err(format!("{}: given twice", entry_path()));
        }
        Ok(())
    }

    /// The finished message.
    pub(crate) fn finish(self) -> DynamicMessage {
        self.message
    }
}

/// A message of type `descriptor` from a JSON object; `null` members are not set.
pub(crate) fn message_from_json(
    descriptor: MessageDescriptor,
    path: &str,
    object: &Map<String, Json>,
) -> Result<DynamicMessage, String> {
    let mut builder = MessageBuilder::new(descriptor, path);
    for (written, value) in object.iter().filter(|(_, value)| !value.is_null()) {
        let field = builder.field(written)?;
        builder.set(&field, written, Cell::Json(value))?;
    }
    Ok(builder.finish())
}

/// A message of type `descriptor` from text: its fields in proto order, separated by `@`
/// or `=`; the fields left out at the end and the empty parts are not set.
pub(crate) fn message_from_text(
    descriptor: MessageDescriptor,
    path: &str,
    text: &str,
) -> Result<DynamicMessage, String> {
    let fields: Vec<FieldDescriptor> = descriptor.fields().collect();
    let parts: Vec<&str> = text.split(FIELD_SEPARATORS).map(str::trim).collect();
    if parts.len() > fields.len() {
        let form: Vec<&str> = fields.iter().map(FieldDescriptor::name).collect();
        return Err(format!(
            "{path}: `{text}` is not {} (the fields of {} separated by @ or =)",
            form.join("@"),
            descriptor.name()
        ));
    }
    let mut builder = MessageBuilder::new(descriptor, path);
    for (field, part) in fields.iter().zip(parts) {
        if !part.is_empty() {
            builder.set(field, field.name(), Cell::Text(part))?;
        }
    }
    Ok(builder.finish())
}

/// The path of a value in errors (`deal.stage_history[1]`), only made when needed.
type LazyPath<'a> = &'a dyn Fn() -> String;

/// The value of `field` (at `path`) from `cell`, whatever its shape.
fn field_value(
    field: &FieldDescriptor,
    path: LazyPath<'_>,
    cell: Cell<'_>,
) -> Result<Value, String> {
    if field.is_map() {
        map_value(field, path, cell)
    } else if field.is_list() {
        list_value(&field.kind(), path, cell)
    } else {
        single_value(&field.kind(), path, cell)
    }
}

/// One value of `kind`: a scalar, or a message from a JSON object or from text.
fn single_value(kind: &Kind, path: LazyPath<'_>, cell: Cell<'_>) -> Result<Value, String> {
    match (kind, cell) {
        (Kind::Message(message), Cell::Json(Json::Object(object))) if !is_scalar(kind) => {
            message_from_json(message.clone(), &path(), object).map(Value::Message)
        }
        (Kind::Message(message), Cell::Text(text)) if !is_scalar(kind) => {
            message_from_text(message.clone(), &path(), text).map(Value::Message)
        }
        (Kind::Message(_), Cell::Json(other)) if !is_scalar(kind) => Err(format!(
            "{}: must be an object, not {}",
            path(),
            json_type(other)
        )),
        _ => scalar(kind, cell).map_err(|e| format!("{}: {e}", path())),
    }
}

/// A list of `kind`: a JSON array, or text whose elements are separated by `;` (empty
/// elements skipped).
fn list_value(kind: &Kind, path: LazyPath<'_>, cell: Cell<'_>) -> Result<Value, String> {
    let element_path = |i: usize| format!("{}[{i}]", path());
    let values = match cell {
        Cell::Json(Json::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Json::Null => Err(format!("{}: must not be null", element_path(i))),
                item => single_value(kind, &|| element_path(i), Cell::Json(item)),
            })
            .collect::<Result<_, _>>()?,
        Cell::Text(text) => text
            .split(ELEMENT_SEPARATOR)
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .enumerate()
            .map(|(i, item)| single_value(kind, &|| element_path(i), Cell::Text(item)))
            .collect::<Result<_, _>>()?,
        Cell::Json(other) => {
            return Err(format!(
                "{}: must be an array, not {}",
                path(),
                json_type(other)
            ))
        }
    };
    Ok(Value::List(values))
}

/// A map: a JSON object whose members are its entries (`null` members skipped). In CSV a
/// map is read from columns of its own ([`MessageBuilder::insert_entry`]), not one cell.
fn map_value(field: &FieldDescriptor, path: LazyPath<'_>, cell: Cell<'_>) -> Result<Value, String> {
    let object = match cell {
        Cell::Json(Json::Object(object)) => object,
        Cell::Json(other) => {
            return Err(format!(
                "{}: must be an object, not {}",
                path(),
                json_type(other)
            ))
        }
        Cell::Text(_) => {
            return Err(format!(
                "{}: a map is not read from one cell; give each entry a column of its own",
                path()
            ))
        }
    };
    let entry = map_entry(field);
    let (key_kind, value_kind) = (
        entry.map_entry_key_field().kind(),
        entry.map_entry_value_field().kind(),
    );
    let mut map = HashMap::with_capacity(object.len());
    for (key, value) in object.iter().filter(|(_, value)| !value.is_null()) {
        let entry_path = || format!("{}[{key}]", path());
        let key = map_key(&key_kind, key).map_err(|e| format!("{}: {e}", entry_path()))?;
        map.insert(
            key,
            single_value(&value_kind, &entry_path, Cell::Json(value))?,
        );
    }
    Ok(Value::Map(map))
}

/// The entry message of a map field.
fn map_entry(field: &FieldDescriptor) -> MessageDescriptor {
    field
        .kind()
        .as_message()
        .cloned()
        .expect("a map field's kind is its entry message")
}

/// A map key of `kind` from its text (JSON object keys are strings whatever the key type).
fn map_key(kind: &Kind, text: &str) -> Result<MapKey, String> {
    Ok(match scalar(kind, Cell::Text(text))? {
        Value::String(s) => MapKey::String(s),
        Value::Bool(b) => MapKey::Bool(b),
        Value::I32(n) => MapKey::I32(n),
        Value::I64(n) => MapKey::I64(n),
        Value::U32(n) => MapKey::U32(n),
        Value::U64(n) => MapKey::U64(n),
        other => return Err(format!("{other:?} cannot be a map key")),
    })
}

/// The `kpi.v1.Record` holding `message` as a record of `kind`: `message` encoded as the
/// `oneof record` field `kind`, decoded as a `kpi.v1.Record`. (Encoding the message under
/// its tag here, rather than a `Record` `DynamicMessage`, saves one pass over its fields.)
pub(crate) fn record(kind: &RecordKind, message: DynamicMessage) -> Result<pb::Record, String> {
    let mut bytes = Vec::with_capacity(256);
    prost::encoding::message::encode(kind.field().number(), &message, &mut bytes);
    pb::Record::decode(bytes.as_slice())
        .map_err(|e| format!("{}: cannot be encoded: {e}", kind.name()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::probe::probe;
    use pb::record::Record as Kind;
    use serde_json::json;

    fn kind(name: &str) -> RecordKind {
        RecordKind::named(name).unwrap()
    }

    /// The record of `kind` from a JSON object.
    fn from_json(kind_name: &str, object: Json) -> Result<pb::Record, String> {
        let kind = kind(kind_name);
        let message = message_from_json(kind.message(), kind.name(), object.as_object().unwrap())?;
        record(&kind, message)
    }

    #[test]
    fn a_deal_reads_every_field_from_json() {
        let record = from_json(
            "deal",
            json!({
                "id": "d1", "owner": "ann", "amount": 1200, "createdAt": "2024-01-05T10:00:00Z",
                "closed_at": "2024-02-01T09:30:00Z", "status": "DEAL_STATUS_WON", "kind": "upsell",
                "customerId": "c1", "campaign_id": null,
                "stageHistory": [{"stage": "demo", "enteredAt": "2024-01-10T00:00:00Z"}]
            }),
        )
        .unwrap();
        let Some(Kind::Deal(deal)) = record.record else {
            panic!("{record:?}")
        };
        assert_eq!(deal.id, "d1");
        assert_eq!(deal.amount, "1200");
        assert_eq!(deal.status, pb::DealStatus::Won as i32);
        assert_eq!(deal.kind, pb::DealKind::Upsell as i32);
        assert_eq!(deal.customer_id.as_deref(), Some("c1"));
        assert_eq!(deal.campaign_id, None);
        assert_eq!(deal.closed_at.unwrap().seconds, 1_706_779_800);
        assert_eq!(deal.stage_history.len(), 1);
        assert_eq!(deal.stage_history[0].stage, "demo");
        assert_eq!(
            deal.stage_history[0].entered_at.unwrap().seconds,
            1_704_844_800
        );
    }

    #[test]
    fn unknown_and_twice_given_fields_are_errors() {
        let err = from_json("deal", json!({"id": "d1", "colour": "red"})).unwrap_err();
        assert!(
            err.starts_with("deal: unknown field `colour` (fields: amount, ")
                && err.contains(" campaign_id, closed_at, created_at,"),
            "{err}"
        );
        assert!(from_json("deal", json!({"id": "d1", "colour": null})).is_ok());
        let err = from_json(
            "deal",
            json!({"createdAt": "2024-01-05T10:00:00Z", "created_at": "2024-01-06T10:00:00Z"}),
        )
        .unwrap_err();
        assert_eq!(err, "deal: `createdAt` and `created_at` are the same field");
        let err =
            from_json("deal", json!({"stageHistory": [{"stage": "x", "at": 1}]})).unwrap_err();
        assert!(
            err.starts_with(
                "deal.stage_history[0]: unknown field `at` (fields: entered_at, stage)"
            ),
            "{err}"
        );
    }

    #[test]
    fn errors_name_the_element_and_the_field() {
        let cases = [
            (
                json!({"stage_history": [{"stage": "demo"}, {"stage": "won", "enteredAt": 3}]}),
                "deal.stage_history[1].entered_at: must be an RFC 3339 time string, not a number",
            ),
            (
                json!({"stage_history": [null]}),
                "deal.stage_history[0]: must not be null",
            ),
            (
                json!({"stage_history": ["demo"]}),
                "deal.stage_history[0]: must be an object, not a string",
            ),
            (
                json!({"stage_history": {"stage": "demo"}}),
                "deal.stage_history: must be an array, not an object",
            ),
            (
                json!({"amount": 12.5}),
                "deal.amount: must be a decimal string (\"12.5\"), not a JSON number: a fraction in JSON is not exact",
            ),
        ];
        for (doc, expected) in cases {
            assert_eq!(from_json("deal", doc).unwrap_err(), expected);
        }
    }

    #[test]
    fn repeated_message_cells_are_fields_in_proto_order() {
        let deal = kind("deal").message();
        let history = deal.get_field_by_name("stage_history").unwrap();
        let mut builder = MessageBuilder::new(deal, "deal");
        builder
            .set(
                &history,
                "stage_history",
                Cell::Text("qualification@2024-01-05T10:00:00Z; won@2024-02-01T09:30:00Z;"),
            )
            .unwrap();
        let deal = record(&kind("deal"), builder.finish()).unwrap();
        let Some(Kind::Deal(deal)) = deal.record else {
            panic!()
        };
        assert_eq!(deal.stage_history.len(), 2);
        assert_eq!(deal.stage_history[1].stage, "won");
        assert_eq!(
            deal.stage_history[1].entered_at.unwrap().seconds,
            1_706_779_800
        );

        let subscription = kind("subscription").message();
        let changes = subscription.get_field_by_name("mrr_changes").unwrap();
        let mut builder = MessageBuilder::new(subscription.clone(), "subscription");
        builder
            .set(
                &changes,
                "mrr_changes",
                Cell::Text("2024-01-01T00:00:00Z=100;2024-04-01T00:00:00Z=150.50"),
            )
            .unwrap();
        let sub = record(&kind("subscription"), builder.finish()).unwrap();
        let Some(Kind::Subscription(sub)) = sub.record else {
            panic!()
        };
        let mrr: Vec<&str> = sub.mrr_changes.iter().map(|c| c.mrr.as_str()).collect();
        assert_eq!(mrr, ["100", "150.50"]);

        let mut builder = MessageBuilder::new(subscription, "subscription");
        let err = builder
            .set(&changes, "mrr_changes", Cell::Text("2024-01-01=100"))
            .unwrap_err();
        assert!(
            err.starts_with("subscription.mrr_changes[0].at: `2024-01-01` is not an RFC 3339 time"),
            "{err}"
        );
        let err = builder
            .set(
                &changes,
                "mrrChanges",
                Cell::Text("2024-01-01T00:00:00Z=1=2"),
            )
            .unwrap_err();
        assert_eq!(
            err,
            "subscription: `mrr_changes` and `mrrChanges` are the same field"
        );
        let err = message_from_text(
            changes.kind().as_message().unwrap().clone(),
            "subscription.mrr_changes[0]",
            "2024-01-01T00:00:00Z=1=2",
        )
        .unwrap_err();
        assert_eq!(
            err,
            "subscription.mrr_changes[0]: `2024-01-01T00:00:00Z=1=2` is not at@mrr (the fields of MrrChange separated by @ or =)"
        );
        // An element may stop early: the fields it leaves out are not set.
        let entry = message_from_text(
            history.kind().as_message().unwrap().clone(),
            "deal.stage_history[0]",
            "demo",
        )
        .unwrap();
        let entry: pb::StageEntry = entry.transcode_to().unwrap();
        assert_eq!((entry.stage.as_str(), entry.entered_at), ("demo", None));
    }

    #[test]
    fn maps_lists_and_oneofs_from_json() {
        let probe = probe();
        let doc = json!({
            "attributes": {"region": {"text": "EMEA"}, "seats": {"decimal": 12}, "gone": null,
                       "renewal": {"time": "2025-01-01T01:00:00+01:00"}},
            "numbers": [1, "-2"],
            "choice": {"flag": true},
            "names": {"7": "seven"}
        });
        let message = message_from_json(probe, "probe", doc.as_object().unwrap()).unwrap();
        let attributes = message.get_field_by_name("attributes").unwrap();
        let attributes = attributes.as_map().unwrap();
        assert_eq!(attributes.len(), 3);
        let text = |key: &str, member: &str| {
            attributes[&MapKey::String(key.into())]
                .as_message()
                .unwrap()
                .get_field_by_name(member)
                .unwrap()
                .into_owned()
        };
        assert_eq!(text("region", "text"), Value::String("EMEA".into()));
        assert_eq!(text("seats", "decimal"), Value::String("12".into()));
        let renewal: prost_types::Timestamp = text("renewal", "time")
            .as_message()
            .unwrap()
            .transcode_to()
            .unwrap();
        assert_eq!(renewal.seconds, 1_735_689_600);
        assert_eq!(
            message.get_field_by_name("numbers").unwrap().into_owned(),
            Value::List(vec![Value::I64(1), Value::I64(-2)])
        );
        let names = message.get_field_by_name("names").unwrap();
        assert_eq!(
            names.as_map().unwrap()[&MapKey::I32(7)],
            Value::String("seven".into())
        );
    }

    #[test]
    fn map_and_oneof_errors() {
        let probe = probe();
        let cases = [
            (
                json!({"choice": {"text": "a", "flag": false}}),
                // JSON members are read in name order.
                "probe.choice: `flag` and `text` are both set, but value holds one of them",
            ),
            (
                json!({"attributes": {"seats": {"decimal": 1.5}}}),
                "probe.attributes[seats].decimal: must be a decimal string (\"1.5\"), not a JSON number: a fraction in JSON is not exact",
            ),
            (
                json!({"attributes": {"seats": {"money": "1"}}}),
                "probe.attributes[seats]: unknown field `money` (fields: decimal, flag, text, time)",
            ),
            (
                json!({"attributes": ["x"]}),
                "probe.attributes: must be an object, not an array",
            ),
            (
                json!({"names": {"seven": "7"}}),
                "probe.names[seven]: `seven` is not a whole number",
            ),
            (
                json!({"numbers": [1.5]}),
                "probe.numbers[0]: 1.5 is not a whole number",
            ),
        ];
        for (doc, expected) in cases {
            let err =
                message_from_json(probe.clone(), "probe", doc.as_object().unwrap()).unwrap_err();
            assert_eq!(err, expected);
        }
    }

    #[test]
    fn map_entries_from_cells() {
        let probe = probe();
        let attributes = probe.get_field_by_name("attributes").unwrap();
        let choice = attributes
            .kind()
            .as_message()
            .unwrap()
            .map_entry_value_field();
        let choice = choice.kind().as_message().unwrap().clone();
        let decimal = choice.get_field_by_name("decimal").unwrap();
        let mut builder = MessageBuilder::new(probe.clone(), "probe");
        builder
            .insert_entry(&attributes, "seats", Some(&decimal), Cell::Text("12"))
            .unwrap();
        assert_eq!(
            builder
                .insert_entry(&attributes, "seats", Some(&decimal), Cell::Text("13"))
                .unwrap_err(),
            "probe.attributes[seats]: given twice"
        );
        let flag = choice.get_field_by_name("flag").unwrap();
        assert_eq!(
            builder
                .insert_entry(&attributes, "vip", Some(&flag), Cell::Text("maybe"))
                .unwrap_err(),
            "probe.attributes[vip].flag: `maybe` is not true or false"
        );
        let names = probe.get_field_by_name("names").unwrap();
        builder
            .insert_entry(&names, "7", None, Cell::Text("seven"))
            .unwrap();
        let message = builder.finish();
        assert_eq!(
            message
                .get_field_by_name("attributes")
                .unwrap()
                .as_map()
                .unwrap()
                .len(),
            1
        );

        let mut builder = MessageBuilder::new(probe, "probe");
        assert_eq!(
            builder
                .set(&attributes, "attributes", Cell::Text("x"))
                .unwrap_err(),
            "probe.attributes: a map is not read from one cell; give each entry a column of its own"
        );
    }
}
