//! One `kpi.v1.Record` of each kind from its [`Fields`], whatever file format they came
//! from, and the kind of a CSV file from its name.
//!
//! Repeated fields in a CSV cell: `stage_history` is `stage@time;stage@time`
//! (`qualification@2024-01-05T10:00:00Z;won@2024-02-01T09:30:00Z`), `mrr_changes` is
//! `time=mrr;time=mrr` (`2024-01-01T00:00:00Z=100;2024-04-01T00:00:00Z=150.50`).

use std::path::Path;

use kpi_proto::kpi::v1 as pb;
use kpi_store::RecordKind;
use pb::record::Record as Kind;

use super::fields::{enum_type, parse_time, EnumType, Fields};

const SOURCE: EnumType = enum_type!(Source, "SOURCE");
const DEAL_STATUS: EnumType = enum_type!(DealStatus, "DEAL_STATUS");
const DEAL_KIND: EnumType = enum_type!(DealKind, "DEAL_KIND");
const SPEND_CATEGORY: EnumType = enum_type!(SpendCategory, "SPEND_CATEGORY");
const CHANNEL: EnumType = enum_type!(Channel, "CHANNEL");
const SURVEY_KIND: EnumType = enum_type!(SurveyKind, "SURVEY_KIND");

/// The record of `kind` from `fields` (every field it does not know is an error).
pub(crate) fn record(kind: RecordKind, mut fields: Fields<'_>) -> Result<pb::Record, String> {
    let record = build(kind, &mut fields)?;
    fields.finish()?;
    Ok(pb::Record {
        record: Some(record),
    })
}

/// The proto field names of a kind's message, for checking a CSV header.
pub(crate) fn field_names(kind: RecordKind) -> Vec<&'static str> {
    let mut fields = Fields::empty(kind.as_str());
    // Every getter gives its default on an absent field, so this cannot fail; it only
    // records the names the builder asks for.
    let _ = build(kind, &mut fields);
    fields.asked().iter().copied().collect()
}

fn build(kind: RecordKind, f: &mut Fields<'_>) -> Result<Kind, String> {
    Ok(match kind {
        RecordKind::Customer => Kind::Customer(pb::Customer {
            id: f.string("id")?,
            acquired_at: f.timestamp("acquired_at")?,
            churned_at: f.timestamp("churned_at")?,
            source: f.enumeration("source", &SOURCE)?,
            campaign_id: f.optional_string("campaign_id")?,
            segment: f.optional_string("segment")?,
            owner: f.optional_string("owner")?,
        }),
        RecordKind::Lead => Kind::Lead(pb::Lead {
            id: f.string("id")?,
            created_at: f.timestamp("created_at")?,
            source: f.enumeration("source", &SOURCE)?,
            campaign_id: f.optional_string("campaign_id")?,
            converted_at: f.timestamp("converted_at")?,
            customer_id: f.optional_string("customer_id")?,
        }),
        RecordKind::Deal => Kind::Deal(pb::Deal {
            id: f.string("id")?,
            owner: f.string("owner")?,
            amount: f.decimal("amount")?,
            created_at: f.timestamp("created_at")?,
            closed_at: f.timestamp("closed_at")?,
            status: f.enumeration("status", &DEAL_STATUS)?,
            kind: f.enumeration("kind", &DEAL_KIND)?,
            customer_id: f.optional_string("customer_id")?,
            campaign_id: f.optional_string("campaign_id")?,
            stage_history: f.repeated("stage_history", stage_entry, stage_history_text)?,
        }),
        RecordKind::Subscription => Kind::Subscription(pb::Subscription {
            id: f.string("id")?,
            customer_id: f.string("customer_id")?,
            started_at: f.timestamp("started_at")?,
            ended_at: f.timestamp("ended_at")?,
            mrr_changes: f.repeated("mrr_changes", mrr_change, mrr_changes_text)?,
            renewal_due_at: f.timestamp("renewal_due_at")?,
            renewed: f.optional_bool("renewed")?,
        }),
        RecordKind::Purchase => Kind::Purchase(pb::Purchase {
            id: f.string("id")?,
            customer_id: f.string("customer_id")?,
            amount: f.decimal("amount")?,
            at: f.timestamp("at")?,
        }),
        RecordKind::Spend => Kind::Spend(pb::Spend {
            id: f.string("id")?,
            at: f.timestamp("at")?,
            amount: f.decimal("amount")?,
            category: f.enumeration("category", &SPEND_CATEGORY)?,
            channel: f.enumeration("channel", &CHANNEL)?,
            campaign_id: f.optional_string("campaign_id")?,
        }),
        RecordKind::Campaign => Kind::Campaign(pb::Campaign {
            id: f.string("id")?,
            name: f.string("name")?,
            channel: f.enumeration("channel", &CHANNEL)?,
            started_at: f.timestamp("started_at")?,
            delivered: f.uint64("delivered")?,
            opens: f.uint64("opens")?,
            clicks: f.uint64("clicks")?,
            unsubscribes: f.uint64("unsubscribes")?,
        }),
        RecordKind::Ticket => Kind::Ticket(pb::Ticket {
            id: f.string("id")?,
            customer_id: f.optional_string("customer_id")?,
            agent: f.string("agent")?,
            opened_at: f.timestamp("opened_at")?,
            first_response_at: f.timestamp("first_response_at")?,
            resolved_at: f.timestamp("resolved_at")?,
        }),
        RecordKind::SurveyResponse => Kind::SurveyResponse(pb::SurveyResponse {
            id: f.string("id")?,
            customer_id: f.optional_string("customer_id")?,
            kind: f.enumeration("kind", &SURVEY_KIND)?,
            score: f.decimal("score")?,
            scale_max: f.uint32("scale_max")?,
            at: f.timestamp("at")?,
        }),
        RecordKind::Quota => Kind::Quota(pb::Quota {
            id: f.string("id")?,
            owner: f.string("owner")?,
            period_start: f.timestamp("period_start")?,
            period_end: f.timestamp("period_end")?,
            amount: f.decimal("amount")?,
        }),
    })
}

fn stage_entry(f: &mut Fields<'_>) -> Result<pb::StageEntry, String> {
    Ok(pb::StageEntry {
        stage: f.string("stage")?,
        entered_at: f.timestamp("entered_at")?,
    })
}

fn mrr_change(f: &mut Fields<'_>) -> Result<pb::MrrChange, String> {
    Ok(pb::MrrChange {
        at: f.timestamp("at")?,
        mrr: f.decimal("mrr")?,
    })
}

/// The `;`-separated, non-empty items of a repeated CSV cell.
fn items(text: &str) -> impl Iterator<Item = &str> {
    text.split(';')
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// `stage@time;stage@time`.
fn stage_history_text(text: &str) -> Result<Vec<pb::StageEntry>, String> {
    items(text)
        .map(|item| {
            let (stage, at) = item
                .rsplit_once('@')
                .ok_or_else(|| format!("`{item}` is not stage@time"))?;
            Ok(pb::StageEntry {
                stage: stage.trim().to_owned(),
                entered_at: Some(parse_time(at)?),
            })
        })
        .collect()
}

/// `time=mrr;time=mrr`.
fn mrr_changes_text(text: &str) -> Result<Vec<pb::MrrChange>, String> {
    items(text)
        .map(|item| {
            let (at, mrr) = item
                .split_once('=')
                .ok_or_else(|| format!("`{item}` is not time=mrr"))?;
            Ok(pb::MrrChange {
                at: Some(parse_time(at)?),
                mrr: mrr.trim().to_owned(),
            })
        })
        .collect()
}

/// A kind by name: `deal`, `deals`, `survey-responses`, `surveyResponse`…
pub(crate) fn parse_kind(name: &str) -> Option<RecordKind> {
    let name = super::fields::snake_case(name).replace('-', "_");
    RecordKind::parse(&name).or_else(|| RecordKind::parse(name.strip_suffix('s')?))
}

/// The kind a CSV file holds, from its name without extension (`deals.csv`).
pub(crate) fn kind_of_file(path: &Path) -> Option<RecordKind> {
    parse_kind(path.file_stem()?.to_str()?)
}

/// For clap: a kind name.
pub(crate) fn kind_arg(text: &str) -> Result<RecordKind, String> {
    parse_kind(text).ok_or_else(|| {
        format!(
            "`{text}` is not a record kind (one of {})",
            RecordKind::ALL.map(RecordKind::as_str).join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::fields::Cell;
    use serde_json::json;

    #[test]
    fn every_kind_reads_every_field_from_json() {
        let doc = json!({
            "id": "d1", "owner": "ann", "amount": "1200.50", "createdAt": "2024-01-05T10:00:00Z",
            "closed_at": "2024-02-01T09:30:00Z", "status": "DEAL_STATUS_WON", "kind": "upsell",
            "customerId": "c1", "campaign_id": null,
            "stageHistory": [{"stage": "demo", "enteredAt": "2024-01-10T00:00:00Z"}]
        });
        let fields = Fields::from_json("deal", doc.as_object().unwrap()).unwrap();
        let record = record(RecordKind::Deal, fields).unwrap();
        let Some(Kind::Deal(deal)) = record.record else {
            panic!("{record:?}")
        };
        assert_eq!(deal.id, "d1");
        assert_eq!(deal.amount, "1200.50");
        assert_eq!(deal.status, pb::DealStatus::Won as i32);
        assert_eq!(deal.kind, pb::DealKind::Upsell as i32);
        assert_eq!(deal.customer_id.as_deref(), Some("c1"));
        assert_eq!(deal.campaign_id, None);
        assert_eq!(deal.closed_at.unwrap().seconds, 1_706_779_800);
        assert_eq!(deal.stage_history.len(), 1);
        assert_eq!(deal.stage_history[0].stage, "demo");
    }

    #[test]
    fn field_names_are_the_proto_names() {
        assert_eq!(
            field_names(RecordKind::Subscription),
            [
                "customer_id",
                "ended_at",
                "id",
                "mrr_changes",
                "renewal_due_at",
                "renewed",
                "started_at"
            ]
        );
        assert_eq!(
            field_names(RecordKind::SurveyResponse),
            ["at", "customer_id", "id", "kind", "scale_max", "score"]
        );
        for kind in RecordKind::ALL {
            assert!(field_names(kind).contains(&"id"), "{kind:?}");
        }
    }

    #[test]
    fn repeated_cells_use_the_documented_syntax() {
        let history =
            stage_history_text("qualification@2024-01-05T10:00:00Z; won@2024-02-01T09:30:00Z;")
                .unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[1].stage, "won");
        assert_eq!(history[1].entered_at.unwrap().seconds, 1_706_779_800);
        assert_eq!(
            stage_history_text("demo").unwrap_err(),
            "`demo` is not stage@time"
        );

        let changes =
            mrr_changes_text("2024-01-01T00:00:00Z=100;2024-04-01T00:00:00Z=150.50").unwrap();
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[1].mrr, "150.50");
        assert!(mrr_changes_text("2024-01-01=100")
            .unwrap_err()
            .contains("RFC 3339"));

        let mut fields = Fields::empty("subscription");
        fields
            .insert("mrr_changes", Cell::Text("2024-01-01T00:00:00Z=100"))
            .unwrap();
        fields.insert("renewed", Cell::Text("true")).unwrap();
        let record = record(RecordKind::Subscription, fields).unwrap();
        let Some(Kind::Subscription(sub)) = record.record else {
            panic!()
        };
        assert_eq!(sub.mrr_changes[0].mrr, "100");
        assert_eq!(sub.renewed, Some(true));
    }

    #[test]
    fn kinds_come_from_file_names() {
        assert_eq!(
            kind_of_file(Path::new("x/deals.csv")),
            Some(RecordKind::Deal)
        );
        assert_eq!(kind_of_file(Path::new("deal.csv")), Some(RecordKind::Deal));
        assert_eq!(
            kind_of_file(Path::new("survey_responses.csv")),
            Some(RecordKind::SurveyResponse)
        );
        assert_eq!(
            kind_of_file(Path::new("survey-response.csv")),
            Some(RecordKind::SurveyResponse)
        );
        assert_eq!(
            kind_of_file(Path::new("spend.csv")),
            Some(RecordKind::Spend)
        );
        assert_eq!(
            kind_of_file(Path::new("quotas.csv")),
            Some(RecordKind::Quota)
        );
        assert_eq!(kind_of_file(Path::new("export.csv")), None);
        assert!(kind_arg("dael").unwrap_err().contains("survey_response"));
    }
}
