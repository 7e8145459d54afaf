//! NDJSON import: one `kpi.v1.Record` per line in the proto3 JSON mapping,
//! `{"deal": {"id": "d1", "createdAt": "2024-01-05T10:00:00Z", …}}`.
//!
//! lowerCamelCase and snake_case field names are both accepted; enums by full name
//! (`DEAL_STATUS_WON`), short name (`won`) or number; times RFC 3339; decimals as
//! strings (or JSON integers); `uint64` counters as numbers or strings; `null` means
//! "not set". Unknown fields are errors, so a typo never silently drops data.

use kpi_proto::kpi::v1 as pb;
use serde_json::Value;

use super::descriptors::RecordKind;
use super::messages::{message_from_json, record};

/// The record on one NDJSON line (without its line break).
pub(crate) fn parse_line(line: &str) -> Result<pb::Record, String> {
    let document: Value = serde_json::from_str(line).map_err(|e| {
        // The error's own position says `line 1`: the line is the file's line.
        let text = e.to_string();
        let message = text
            .rsplit_once(" at line ")
            .map_or(text.as_str(), |(m, _)| m);
        format!("not valid JSON: {message} (column {})", e.column())
    })?;
    let Value::Object(members) = &document else {
        return Err("a line must hold one JSON object such as {\"deal\": {…}}".to_owned());
    };
    let mut set = members.iter().filter(|(_, value)| !value.is_null());
    let Some((name, body)) = set.next() else {
        return Err(format!(
            "record: no kind set (one of {})",
            RecordKind::list()
        ));
    };
    if let Some((other, _)) = set.next() {
        return Err(format!(
            "record: more than one kind set (`{name}` and `{other}`): one record per line"
        ));
    }
    let kind = RecordKind::named(name).ok_or_else(|| {
        format!(
            "record: unknown kind `{name}` (one of {})",
            RecordKind::list()
        )
    })?;
    let Value::Object(fields) = body else {
        return Err(format!("{}: must be an object", kind.name()));
    };
    let message = message_from_json(kind.message(), kind.name(), fields)?;
    record(&kind, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::record::Record as Kind;

    #[test]
    fn the_brief_example_parses() {
        let record = parse_line(
            r#"{"deal": {"id": "d1", "owner": "ann", "amount": "1200.50", "createdAt": "2024-01-05T10:00:00Z", "status": "DEAL_STATUS_WON"}}"#,
        )
        .unwrap();
        let Some(Kind::Deal(deal)) = record.record else {
            panic!("{record:?}")
        };
        assert_eq!(deal.owner, "ann");
        assert_eq!(deal.status, 2);
    }

    #[test]
    fn snake_and_camel_kinds() {
        for line in [
            r#"{"survey_response": {"id": "s1", "scale_max": 10, "kind": "nps", "score": "9"}}"#,
            r#"{"surveyResponse": {"id": "s1", "scaleMax": "10", "kind": "SURVEY_KIND_NPS", "score": 9}}"#,
        ] {
            let record = parse_line(line).unwrap();
            let Some(Kind::SurveyResponse(s)) = record.record else {
                panic!("{record:?}")
            };
            assert_eq!((s.scale_max, s.kind, s.score.as_str()), (10, 1, "9"));
        }
    }

    #[test]
    fn a_kind_added_to_the_proto_imports_with_no_importer_change() {
        // `activity` came after the importer was made generic.
        let record = parse_line(
            r#"{"activity": {"id": "a1", "type": "call", "occurredAt": "2024-03-01T10:00:00+01:00", "dealId": "d1", "amount": 5, "attributes": {"minutes": {"decimal": "12"}}}}"#,
        )
        .unwrap();
        let Some(Kind::Activity(activity)) = record.record else {
            panic!("{record:?}")
        };
        assert_eq!(activity.r#type, "call");
        assert_eq!(activity.occurred_at.unwrap().seconds, 1_709_283_600);
        assert_eq!(activity.deal_id.as_deref(), Some("d1"));
        assert_eq!(activity.amount, "5");
        assert_eq!(
            activity.attributes["minutes"].value,
            Some(pb::attribute_value::Value::Decimal("12".into()))
        );
    }

    #[test]
    fn bad_lines_say_why() {
        let cases = [
            (
                "{\"deal\": ",
                "not valid JSON: EOF while parsing a value (column 9)",
            ),
            ("[1]", "a line must hold one JSON object"),
            ("{}", "record: no kind set (one of customer, lead, deal"),
            (r#"{"deal": {}, "lead": {}}"#, "more than one kind set"),
            (r#"{"deals": {}}"#, "record: unknown kind `deals`"),
            (r#"{"deal": 3}"#, "deal: must be an object"),
            (
                r#"{"deal": {"id": "d1", "amount": 12.5}}"#,
                "deal.amount: must be a decimal string",
            ),
            (
                r#"{"deal": {"id": "d1", "status": "closed"}}"#,
                "deal.status: `closed` is not a DealStatus value",
            ),
            (
                r#"{"deal": {"id": "d1", "colour": "red"}}"#,
                "deal: unknown field `colour`",
            ),
        ];
        for (line, expected) in cases {
            let err = parse_line(line).unwrap_err();
            assert!(err.contains(expected), "{line}: {err}");
        }
    }
}
