//! The `kpi.v1` descriptors the importer reads records through, and the record kinds they
//! define: one kind per field of `kpi.v1.Record`'s `oneof record` (`customer`, `deal`,
//! `survey_response`…), so a kind added to the proto imports with no importer change.

use std::path::Path;
use std::sync::LazyLock;

use prost_reflect::{DescriptorPool, FieldDescriptor, MessageDescriptor};

/// The full name of the message every imported line or row becomes.
const RECORD_MESSAGE: &str = "kpi.v1.Record";
/// The oneof of [`RECORD_MESSAGE`] whose fields are the record kinds.
const RECORD_ONEOF: &str = "record";

/// Every message and enum of `kpi.v1` and its imports, from `kpi_proto::FILE_DESCRIPTOR_SET`.
static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    DescriptorPool::decode(kpi_proto::FILE_DESCRIPTOR_SET)
        .expect("kpi-proto's descriptor set is valid (it is built from the same .proto files)")
});

/// The descriptor of `kpi.v1.Record`.
static RECORD: LazyLock<MessageDescriptor> = LazyLock::new(|| {
    POOL.get_message_by_name(RECORD_MESSAGE)
        .expect("kpi.v1.Record is in kpi-proto's descriptor set")
});

/// A record kind: one field of `kpi.v1.Record`'s `oneof record`; its message type is the
/// message of the record (`deal` → `kpi.v1.Deal`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordKind(FieldDescriptor);

impl RecordKind {
    /// Every kind, in the oneof's order.
    pub(crate) fn all() -> Vec<RecordKind> {
        RECORD
            .oneofs()
            .find(|oneof| oneof.name() == RECORD_ONEOF)
            .expect("kpi.v1.Record has `oneof record`")
            .fields()
            .map(RecordKind)
            .collect()
    }

    /// The kind's name, the oneof field's proto name (`survey_response`).
    pub(crate) fn name(&self) -> &str {
        self.0.name()
    }

    /// The oneof field of `kpi.v1.Record` this kind is.
    pub(crate) fn field(&self) -> &FieldDescriptor {
        &self.0
    }

    /// The message of a record of this kind (`kpi.v1.Deal`).
    pub(crate) fn message(&self) -> MessageDescriptor {
        self.0
            .kind()
            .as_message()
            .cloned()
            .expect("every field of `oneof record` is a message")
    }

    /// The kind named exactly as the oneof field, in snake_case or lowerCamelCase
    /// (`survey_response`, `surveyResponse`), as NDJSON's outer key must be.
    pub(crate) fn named(name: &str) -> Option<RecordKind> {
        RECORD
            .get_field_by_name(&snake_case(name))
            .filter(|field| {
                field
                    .containing_oneof()
                    .is_some_and(|oneof| oneof.name() == RECORD_ONEOF)
            })
            .map(RecordKind)
    }

    /// The kind a name means, leniently: `deal`, `deals`, `survey-responses`,
    /// `surveyResponse`…, as a CSV file name or `--kind` may say it.
    pub(crate) fn parse(name: &str) -> Option<RecordKind> {
        let name = snake_case(name).replace('-', "_");
        Self::named(&name).or_else(|| Self::named(name.strip_suffix('s')?))
    }

    /// The kind a CSV file holds, from its name without extension (`deals.csv`).
    pub(crate) fn of_file(path: &Path) -> Option<RecordKind> {
        Self::parse(path.file_stem()?.to_str()?)
    }

    /// Every kind's name, for errors: `customer, lead, deal, …`.
    pub(crate) fn list() -> String {
        Self::all()
            .iter()
            .map(RecordKind::name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// For clap: a kind name.
pub(crate) fn kind_arg(text: &str) -> Result<RecordKind, String> {
    RecordKind::parse(text).ok_or_else(|| {
        format!(
            "`{text}` is not a record kind (one of {})",
            RecordKind::list()
        )
    })
}

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

/// The field of `message` a JSON member or CSV column names: its proto name
/// (`created_at`), its JSON name (`createdAt`) or any spelling that turns into the proto
/// name in snake_case.
pub(crate) fn field_named(message: &MessageDescriptor, written: &str) -> Option<FieldDescriptor> {
    message
        .get_field_by_name(written)
        .or_else(|| message.get_field_by_json_name(written))
        .or_else(|| message.get_field_by_name(&snake_case(written)))
}

/// The proto names of a message's fields, sorted, for errors.
pub(crate) fn field_list(message: &MessageDescriptor) -> Vec<String> {
    let mut names: Vec<String> = message.fields().map(|f| f.name().to_owned()).collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_snake_case() {
        assert_eq!(snake_case("createdAt"), "created_at");
        assert_eq!(snake_case("surveyResponse"), "survey_response");
        assert_eq!(snake_case("created_at"), "created_at");
        assert_eq!(snake_case("id"), "id");
    }

    #[test]
    fn kinds_are_the_record_oneof() {
        let names: Vec<String> = RecordKind::all()
            .iter()
            .map(|k| k.name().to_owned())
            .collect();
        for kind in kpi_store::RecordKind::ALL {
            assert!(names.contains(&kind.as_str().to_owned()), "{kind:?}");
        }
        let deal = RecordKind::named("deal").unwrap();
        assert_eq!(deal.message().full_name(), "kpi.v1.Deal");
        assert_eq!(
            RecordKind::named("surveyResponse").unwrap().name(),
            "survey_response"
        );
        assert_eq!(RecordKind::named("deals"), None);
    }

    #[test]
    fn kinds_come_from_file_names() {
        let kind = |name: &str| RecordKind::of_file(Path::new(name)).map(|k| k.name().to_owned());
        assert_eq!(kind("x/deals.csv").as_deref(), Some("deal"));
        assert_eq!(kind("deal.csv").as_deref(), Some("deal"));
        assert_eq!(
            kind("survey_responses.csv").as_deref(),
            Some("survey_response")
        );
        assert_eq!(
            kind("survey-response.csv").as_deref(),
            Some("survey_response")
        );
        assert_eq!(kind("spend.csv").as_deref(), Some("spend"));
        assert_eq!(kind("quotas.csv").as_deref(), Some("quota"));
        assert_eq!(kind("export.csv"), None);
        assert!(kind_arg("dael").unwrap_err().contains("survey_response"));
    }

    #[test]
    fn fields_are_found_by_proto_or_json_name() {
        let deal = RecordKind::named("deal").unwrap().message();
        for written in ["created_at", "createdAt"] {
            assert_eq!(field_named(&deal, written).unwrap().name(), "created_at");
        }
        assert!(field_named(&deal, "colour").is_none());
        assert_eq!(field_list(&deal)[0], "amount");
    }
}
