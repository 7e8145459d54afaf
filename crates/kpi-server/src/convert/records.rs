//! `kpi.v1.Record` ↔ [`kpi_store::Record`]. A conversion error is the reason a person
//! reads in `RejectedRecord.reason`, naming the field: `deal.amount: `12,5` is not a
//! decimal number …`. Semantic checks (closed_at before created_at, negative amounts…)
//! are the store's `validate()`; this module checks what the wire format cannot express:
//! required timestamps and enums, decimal strings, a non-empty id.

use jiff::Timestamp;
use kpi_core::engine::parse_decimal;
use kpi_core::Decimal;
use kpi_proto::kpi::v1 as pb;
use kpi_store as domain;
use pb::record::Record as Kind;

use super::{timestamp_from_proto, timestamp_to_proto};

/// Field paths of one record, prefixed with its kind (`deal.amount`).
struct Fields(&'static str);

impl Fields {
    fn path(&self, field: &str) -> String {
        format!("{}.{field}", self.0)
    }

    fn error(&self, field: &str, reason: impl std::fmt::Display) -> String {
        format!("{}: {reason}", self.path(field))
    }

    fn id(&self, id: String) -> Result<String, String> {
        if id.trim().is_empty() {
            return Err(self.error("id", "missing: every record needs an id"));
        }
        Ok(id)
    }

    fn time(&self, field: &str, ts: Option<prost_types::Timestamp>) -> Result<Timestamp, String> {
        match ts {
            Some(ts) => timestamp_from_proto(&ts).map_err(|e| self.error(field, e)),
            None => Err(self.error(field, "missing: a timestamp is required")),
        }
    }

    fn optional_time(
        &self,
        field: &str,
        ts: Option<prost_types::Timestamp>,
    ) -> Result<Option<Timestamp>, String> {
        ts.map(|ts| timestamp_from_proto(&ts).map_err(|e| self.error(field, e)))
            .transpose()
    }

    fn decimal(&self, field: &str, text: &str) -> Result<Decimal, String> {
        parse_decimal(text).map_err(|e| self.error(field, e))
    }

    /// Custom attributes: each value's one field set, decimals and times parsed. Names and
    /// sizes are the store's `validate()` rules.
    fn attributes(
        &self,
        map: std::collections::BTreeMap<String, pb::AttributeValue>,
    ) -> Result<domain::Attributes, String> {
        use pb::attribute_value::Value;
        map.into_iter()
            .map(|(name, value)| {
                let field = format!(
                    "attributes[{}]",
                    crate::error::clip(&name, domain::attributes::MAX_ATTRIBUTE_NAME_BYTES)
                );
                let value = match value.value {
                    None => {
                        return Err(self.error(
                            &field,
                            "no value set: set one of text, decimal, flag or time",
                        ))
                    }
                    Some(Value::Text(text)) => domain::AttributeValue::Text(text),
                    Some(Value::Decimal(text)) => {
                        domain::AttributeValue::Decimal(self.decimal(&field, &text)?)
                    }
                    Some(Value::Flag(flag)) => domain::AttributeValue::Flag(flag),
                    Some(Value::Time(ts)) => domain::AttributeValue::Time(
                        timestamp_from_proto(&ts).map_err(|e| self.error(&field, e))?,
                    ),
                };
                Ok((name, value))
            })
            .collect()
    }

    /// A required enum: the `_UNSPECIFIED` zero and unknown numbers are errors.
    fn required_enum<E, D>(
        &self,
        field: &str,
        raw: i32,
        type_name: &str,
        map: impl Fn(E) -> Option<D>,
    ) -> Result<D, String>
    where
        E: TryFrom<i32>,
    {
        match E::try_from(raw) {
            Ok(value) => map(value).ok_or_else(|| {
                self.error(
                    field,
                    format!("missing: {type_name}_UNSPECIFIED is not a value"),
                )
            }),
            Err(_) => Err(self.error(field, format!("{raw} is not a {type_name} value"))),
        }
    }
}

/// An optional string: absent or empty means none.
fn optional(text: Option<String>) -> Option<String> {
    text.filter(|t| !t.is_empty())
}

fn source(value: pb::Source) -> Option<domain::Source> {
    Some(match value {
        pb::Source::Unspecified => return None,
        pb::Source::Marketing => domain::Source::Marketing,
        pb::Source::Sales => domain::Source::Sales,
        pb::Source::Referral => domain::Source::Referral,
        pb::Source::Partner => domain::Source::Partner,
        pb::Source::Other => domain::Source::Other,
    })
}

fn source_to_proto(value: domain::Source) -> pb::Source {
    match value {
        domain::Source::Marketing => pb::Source::Marketing,
        domain::Source::Sales => pb::Source::Sales,
        domain::Source::Referral => pb::Source::Referral,
        domain::Source::Partner => pb::Source::Partner,
        domain::Source::Other => pb::Source::Other,
    }
}

fn deal_status(value: pb::DealStatus) -> Option<domain::DealStatus> {
    Some(match value {
        pb::DealStatus::Unspecified => return None,
        pb::DealStatus::Open => domain::DealStatus::Open,
        pb::DealStatus::Won => domain::DealStatus::Won,
        pb::DealStatus::Lost => domain::DealStatus::Lost,
    })
}

fn deal_status_to_proto(value: domain::DealStatus) -> pb::DealStatus {
    match value {
        domain::DealStatus::Open => pb::DealStatus::Open,
        domain::DealStatus::Won => pb::DealStatus::Won,
        domain::DealStatus::Lost => pb::DealStatus::Lost,
    }
}

fn deal_kind(value: pb::DealKind) -> Option<domain::DealKind> {
    Some(match value {
        pb::DealKind::Unspecified => return None,
        pb::DealKind::NewBusiness => domain::DealKind::NewBusiness,
        pb::DealKind::Upsell => domain::DealKind::Upsell,
        pb::DealKind::CrossSell => domain::DealKind::CrossSell,
        pb::DealKind::Renewal => domain::DealKind::Renewal,
    })
}

fn deal_kind_to_proto(value: domain::DealKind) -> pb::DealKind {
    match value {
        domain::DealKind::NewBusiness => pb::DealKind::NewBusiness,
        domain::DealKind::Upsell => pb::DealKind::Upsell,
        domain::DealKind::CrossSell => pb::DealKind::CrossSell,
        domain::DealKind::Renewal => pb::DealKind::Renewal,
    }
}

fn spend_category(value: pb::SpendCategory) -> Option<domain::SpendCategory> {
    Some(match value {
        pb::SpendCategory::Unspecified => return None,
        pb::SpendCategory::Advertising => domain::SpendCategory::Advertising,
        pb::SpendCategory::Salaries => domain::SpendCategory::Salaries,
        pb::SpendCategory::Commissions => domain::SpendCategory::Commissions,
        pb::SpendCategory::Overhead => domain::SpendCategory::Overhead,
        pb::SpendCategory::Tools => domain::SpendCategory::Tools,
        pb::SpendCategory::Other => domain::SpendCategory::Other,
    })
}

fn spend_category_to_proto(value: domain::SpendCategory) -> pb::SpendCategory {
    match value {
        domain::SpendCategory::Advertising => pb::SpendCategory::Advertising,
        domain::SpendCategory::Salaries => pb::SpendCategory::Salaries,
        domain::SpendCategory::Commissions => pb::SpendCategory::Commissions,
        domain::SpendCategory::Overhead => pb::SpendCategory::Overhead,
        domain::SpendCategory::Tools => pb::SpendCategory::Tools,
        domain::SpendCategory::Other => pb::SpendCategory::Other,
    }
}

fn channel(value: pb::Channel) -> Option<domain::Channel> {
    Some(match value {
        pb::Channel::Unspecified => return None,
        pb::Channel::Email => domain::Channel::Email,
        pb::Channel::Paid => domain::Channel::Paid,
        pb::Channel::Social => domain::Channel::Social,
        pb::Channel::Event => domain::Channel::Event,
        pb::Channel::Other => domain::Channel::Other,
    })
}

fn channel_to_proto(value: Option<domain::Channel>) -> pb::Channel {
    match value {
        None => pb::Channel::Unspecified,
        Some(domain::Channel::Email) => pb::Channel::Email,
        Some(domain::Channel::Paid) => pb::Channel::Paid,
        Some(domain::Channel::Social) => pb::Channel::Social,
        Some(domain::Channel::Event) => pb::Channel::Event,
        Some(domain::Channel::Other) => pb::Channel::Other,
    }
}

fn survey_kind(value: pb::SurveyKind) -> Option<domain::SurveyKind> {
    Some(match value {
        pb::SurveyKind::Unspecified => return None,
        pb::SurveyKind::Nps => domain::SurveyKind::Nps,
        pb::SurveyKind::Csat => domain::SurveyKind::Csat,
        pb::SurveyKind::Ces => domain::SurveyKind::Ces,
    })
}

fn survey_kind_to_proto(value: domain::SurveyKind) -> pb::SurveyKind {
    match value {
        domain::SurveyKind::Nps => pb::SurveyKind::Nps,
        domain::SurveyKind::Csat => pb::SurveyKind::Csat,
        domain::SurveyKind::Ces => pb::SurveyKind::Ces,
    }
}

/// Converts a wire record to a domain record; the error names the offending field.
pub(crate) fn record_from_proto(record: pb::Record) -> Result<domain::Record, String> {
    let Some(kind) = record.record else {
        return Err(
            "record: no kind set (set exactly one of customer, lead, deal, subscription, \
             purchase, spend, campaign, ticket, survey_response, quota, activity, fx_rate)"
                .to_owned(),
        );
    };
    Ok(match kind {
        Kind::Customer(c) => {
            let f = Fields("customer");
            domain::Record::Customer(domain::Customer {
                id: f.id(c.id)?,
                acquired_at: f.time("acquired_at", c.acquired_at)?,
                churned_at: f.optional_time("churned_at", c.churned_at)?,
                source: f.required_enum("source", c.source, "SOURCE", source)?,
                campaign_id: optional(c.campaign_id),
                segment: optional(c.segment),
                owner: optional(c.owner),
                attributes: f.attributes(c.attributes)?,
            })
        }
        Kind::Lead(l) => {
            let f = Fields("lead");
            domain::Record::Lead(domain::Lead {
                id: f.id(l.id)?,
                created_at: f.time("created_at", l.created_at)?,
                source: f.required_enum("source", l.source, "SOURCE", source)?,
                campaign_id: optional(l.campaign_id),
                converted_at: f.optional_time("converted_at", l.converted_at)?,
                customer_id: optional(l.customer_id),
                attributes: f.attributes(l.attributes)?,
            })
        }
        Kind::Deal(d) => {
            let f = Fields("deal");
            let stage_history = d
                .stage_history
                .into_iter()
                .enumerate()
                .map(|(i, s)| {
                    Ok(domain::StageEntry {
                        stage: s.stage,
                        entered_at: f
                            .time(&format!("stage_history[{i}].entered_at"), s.entered_at)?,
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            domain::Record::Deal(domain::Deal {
                id: f.id(d.id)?,
                owner: d.owner,
                amount: f.decimal("amount", &d.amount)?,
                created_at: f.time("created_at", d.created_at)?,
                closed_at: f.optional_time("closed_at", d.closed_at)?,
                status: f.required_enum("status", d.status, "DEAL_STATUS", deal_status)?,
                kind: f.required_enum("kind", d.kind, "DEAL_KIND", deal_kind)?,
                customer_id: optional(d.customer_id),
                campaign_id: optional(d.campaign_id),
                stage_history,
                attributes: f.attributes(d.attributes)?,
                currency: currency(d.currency),
            })
        }
        Kind::Subscription(s) => {
            let f = Fields("subscription");
            let mrr_changes = s
                .mrr_changes
                .into_iter()
                .enumerate()
                .map(|(i, c)| {
                    Ok(domain::MrrChange {
                        at: f.time(&format!("mrr_changes[{i}].at"), c.at)?,
                        mrr: f.decimal(&format!("mrr_changes[{i}].mrr"), &c.mrr)?,
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            domain::Record::Subscription(domain::Subscription {
                id: f.id(s.id)?,
                customer_id: s.customer_id,
                started_at: f.time("started_at", s.started_at)?,
                ended_at: f.optional_time("ended_at", s.ended_at)?,
                mrr_changes,
                renewal_due_at: f.optional_time("renewal_due_at", s.renewal_due_at)?,
                renewed: s.renewed,
                attributes: f.attributes(s.attributes)?,
                currency: currency(s.currency),
            })
        }
        Kind::Purchase(p) => {
            let f = Fields("purchase");
            domain::Record::Purchase(domain::Purchase {
                id: f.id(p.id)?,
                customer_id: p.customer_id,
                amount: f.decimal("amount", &p.amount)?,
                at: f.time("at", p.at)?,
                attributes: f.attributes(p.attributes)?,
                currency: currency(p.currency),
            })
        }
        Kind::Spend(s) => {
            let f = Fields("spend");
            let channel = match pb::Channel::try_from(s.channel) {
                Ok(c) => channel(c),
                Err(_) => {
                    return Err(f.error("channel", format!("{} is not a CHANNEL value", s.channel)))
                }
            };
            domain::Record::Spend(domain::Spend {
                id: f.id(s.id)?,
                at: f.time("at", s.at)?,
                amount: f.decimal("amount", &s.amount)?,
                category: f.required_enum(
                    "category",
                    s.category,
                    "SPEND_CATEGORY",
                    spend_category,
                )?,
                channel,
                campaign_id: optional(s.campaign_id),
                attributes: f.attributes(s.attributes)?,
                currency: currency(s.currency),
            })
        }
        Kind::Campaign(c) => {
            let f = Fields("campaign");
            domain::Record::Campaign(domain::Campaign {
                id: f.id(c.id)?,
                name: c.name,
                channel: f.required_enum("channel", c.channel, "CHANNEL", channel)?,
                started_at: f.time("started_at", c.started_at)?,
                delivered: c.delivered,
                opens: c.opens,
                clicks: c.clicks,
                unsubscribes: c.unsubscribes,
                attributes: f.attributes(c.attributes)?,
                currency: currency(c.currency),
            })
        }
        Kind::Ticket(t) => {
            let f = Fields("ticket");
            domain::Record::Ticket(domain::Ticket {
                id: f.id(t.id)?,
                customer_id: optional(t.customer_id),
                agent: t.agent,
                opened_at: f.time("opened_at", t.opened_at)?,
                first_response_at: f.optional_time("first_response_at", t.first_response_at)?,
                resolved_at: f.optional_time("resolved_at", t.resolved_at)?,
                attributes: f.attributes(t.attributes)?,
            })
        }
        Kind::SurveyResponse(r) => {
            let f = Fields("survey_response");
            domain::Record::SurveyResponse(domain::SurveyResponse {
                id: f.id(r.id)?,
                customer_id: optional(r.customer_id),
                kind: f.required_enum("kind", r.kind, "SURVEY_KIND", survey_kind)?,
                score: f.decimal("score", &r.score)?,
                scale_max: r.scale_max,
                at: f.time("at", r.at)?,
                attributes: f.attributes(r.attributes)?,
            })
        }
        Kind::Quota(q) => {
            let f = Fields("quota");
            domain::Record::Quota(domain::Quota {
                id: f.id(q.id)?,
                owner: q.owner,
                period_start: f.time("period_start", q.period_start)?,
                period_end: f.time("period_end", q.period_end)?,
                amount: f.decimal("amount", &q.amount)?,
                attributes: f.attributes(q.attributes)?,
                currency: currency(q.currency),
            })
        }
        Kind::Activity(a) => {
            let f = Fields("activity");
            domain::Record::Activity(domain::Activity {
                id: f.id(a.id)?,
                activity_type: a.r#type,
                occurred_at: f.time("occurred_at", a.occurred_at)?,
                customer_id: optional(a.customer_id),
                lead_id: optional(a.lead_id),
                deal_id: optional(a.deal_id),
                owner: optional(a.owner),
                amount: match a.amount.as_str() {
                    "" => None,
                    text => Some(f.decimal("amount", text)?),
                },
                attributes: f.attributes(a.attributes)?,
            })
        }
        Kind::FxRate(r) => {
            let f = Fields("fx_rate");
            domain::Record::FxRate(domain::FxRate {
                id: f.id(r.id)?,
                currency: r.currency,
                effective_at: f.time("effective_at", r.effective_at)?,
                rate: f.decimal("rate", &r.rate)?,
                attributes: f.attributes(r.attributes)?,
                base: None,
            })
        }
    })
}

/// A record's currency: empty on the wire is none (the base currency).
fn currency(code: String) -> Option<String> {
    (!code.is_empty()).then_some(code)
}

/// Custom attributes in their wire form.
fn attributes_to_proto(
    attributes: domain::Attributes,
) -> std::collections::BTreeMap<String, pb::AttributeValue> {
    use pb::attribute_value::Value;
    attributes
        .into_iter()
        .map(|(name, value)| {
            let value = match value {
                domain::AttributeValue::Text(text) => Value::Text(text),
                domain::AttributeValue::Decimal(d) => Value::Decimal(d.to_string()),
                domain::AttributeValue::Flag(flag) => Value::Flag(flag),
                domain::AttributeValue::Time(t) => Value::Time(timestamp_to_proto(t)),
            };
            (name, pb::AttributeValue { value: Some(value) })
        })
        .collect()
}

fn time(ts: Timestamp) -> Option<prost_types::Timestamp> {
    Some(timestamp_to_proto(ts))
}

fn optional_time(ts: Option<Timestamp>) -> Option<prost_types::Timestamp> {
    ts.map(timestamp_to_proto)
}

/// Converts a stored record to its wire form (what ListRecords answers; the benchmark
/// sends generated records in it).
pub fn record_to_proto(record: domain::Record) -> pb::Record {
    let kind = match record {
        domain::Record::Customer(c) => Kind::Customer(pb::Customer {
            id: c.id,
            acquired_at: time(c.acquired_at),
            churned_at: optional_time(c.churned_at),
            source: source_to_proto(c.source).into(),
            campaign_id: c.campaign_id,
            segment: c.segment,
            owner: c.owner,
            attributes: attributes_to_proto(c.attributes),
        }),
        domain::Record::Lead(l) => Kind::Lead(pb::Lead {
            id: l.id,
            created_at: time(l.created_at),
            source: source_to_proto(l.source).into(),
            campaign_id: l.campaign_id,
            converted_at: optional_time(l.converted_at),
            customer_id: l.customer_id,
            attributes: attributes_to_proto(l.attributes),
        }),
        domain::Record::Deal(d) => Kind::Deal(pb::Deal {
            id: d.id,
            owner: d.owner,
            amount: d.amount.to_string(),
            created_at: time(d.created_at),
            closed_at: optional_time(d.closed_at),
            status: deal_status_to_proto(d.status).into(),
            kind: deal_kind_to_proto(d.kind).into(),
            customer_id: d.customer_id,
            campaign_id: d.campaign_id,
            stage_history: d
                .stage_history
                .into_iter()
                .map(|s| pb::StageEntry {
                    stage: s.stage,
                    entered_at: time(s.entered_at),
                })
                .collect(),
            attributes: attributes_to_proto(d.attributes),
            currency: d.currency.unwrap_or_default(),
        }),
        domain::Record::Subscription(s) => Kind::Subscription(pb::Subscription {
            id: s.id,
            customer_id: s.customer_id,
            started_at: time(s.started_at),
            ended_at: optional_time(s.ended_at),
            mrr_changes: s
                .mrr_changes
                .into_iter()
                .map(|c| pb::MrrChange {
                    at: time(c.at),
                    mrr: c.mrr.to_string(),
                })
                .collect(),
            renewal_due_at: optional_time(s.renewal_due_at),
            renewed: s.renewed,
            attributes: attributes_to_proto(s.attributes),
            currency: s.currency.unwrap_or_default(),
        }),
        domain::Record::Purchase(p) => Kind::Purchase(pb::Purchase {
            id: p.id,
            customer_id: p.customer_id,
            amount: p.amount.to_string(),
            at: time(p.at),
            attributes: attributes_to_proto(p.attributes),
            currency: p.currency.unwrap_or_default(),
        }),
        domain::Record::Spend(s) => Kind::Spend(pb::Spend {
            id: s.id,
            at: time(s.at),
            amount: s.amount.to_string(),
            category: spend_category_to_proto(s.category).into(),
            channel: channel_to_proto(s.channel).into(),
            campaign_id: s.campaign_id,
            attributes: attributes_to_proto(s.attributes),
            currency: s.currency.unwrap_or_default(),
        }),
        domain::Record::Campaign(c) => Kind::Campaign(pb::Campaign {
            id: c.id,
            name: c.name,
            channel: channel_to_proto(Some(c.channel)).into(),
            started_at: time(c.started_at),
            delivered: c.delivered,
            opens: c.opens,
            clicks: c.clicks,
            unsubscribes: c.unsubscribes,
            attributes: attributes_to_proto(c.attributes),
            currency: c.currency.unwrap_or_default(),
        }),
        domain::Record::Ticket(t) => Kind::Ticket(pb::Ticket {
            id: t.id,
            customer_id: t.customer_id,
            agent: t.agent,
            opened_at: time(t.opened_at),
            first_response_at: optional_time(t.first_response_at),
            resolved_at: optional_time(t.resolved_at),
            attributes: attributes_to_proto(t.attributes),
        }),
        domain::Record::SurveyResponse(r) => Kind::SurveyResponse(pb::SurveyResponse {
            id: r.id,
            customer_id: r.customer_id,
            kind: survey_kind_to_proto(r.kind).into(),
            score: r.score.to_string(),
            scale_max: r.scale_max,
            at: time(r.at),
            attributes: attributes_to_proto(r.attributes),
        }),
        domain::Record::Quota(q) => Kind::Quota(pb::Quota {
            id: q.id,
            owner: q.owner,
            period_start: time(q.period_start),
            period_end: time(q.period_end),
            amount: q.amount.to_string(),
            attributes: attributes_to_proto(q.attributes),
            currency: q.currency.unwrap_or_default(),
        }),
        domain::Record::Activity(a) => Kind::Activity(pb::Activity {
            id: a.id,
            r#type: a.activity_type,
            occurred_at: time(a.occurred_at),
            customer_id: a.customer_id,
            lead_id: a.lead_id,
            deal_id: a.deal_id,
            owner: a.owner,
            amount: a.amount.map(|v| v.to_string()).unwrap_or_default(),
            attributes: attributes_to_proto(a.attributes),
        }),
        domain::Record::FxRate(r) => Kind::FxRate(pb::FxRate {
            id: r.id,
            currency: r.currency,
            effective_at: time(r.effective_at),
            rate: r.rate.to_string(),
            attributes: attributes_to_proto(r.attributes),
        }),
    };
    pb::Record { record: Some(kind) }
}

/// Parses a record kind named in a request (`deal`, `survey_response`).
pub(crate) fn record_kind(text: &str) -> Result<domain::RecordKind, String> {
    domain::RecordKind::parse(text).ok_or_else(|| {
        let kinds: Vec<_> = domain::RecordKind::ALL.iter().map(|k| k.as_str()).collect();
        format!(
            "`{text}` is not a record kind; expected one of {}",
            kinds.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Option<prost_types::Timestamp> {
        Some(timestamp_to_proto(text.parse().unwrap()))
    }

    fn deal() -> pb::Deal {
        pb::Deal {
            currency: String::new(),
            attributes: Default::default(),
            id: "d1".into(),
            owner: "alice".into(),
            amount: "1250.50".into(),
            created_at: ts("2024-01-10T09:00:00Z"),
            closed_at: ts("2024-02-01T17:00:00Z"),
            status: pb::DealStatus::Won.into(),
            kind: pb::DealKind::NewBusiness.into(),
            customer_id: Some("c1".into()),
            campaign_id: Some(String::new()),
            stage_history: vec![pb::StageEntry {
                stage: "proposal".into(),
                entered_at: ts("2024-01-20T00:00:00Z"),
            }],
        }
    }

    fn wrap(kind: Kind) -> pb::Record {
        pb::Record { record: Some(kind) }
    }

    #[test]
    fn a_deal_converts_with_exact_amount_and_empty_optionals_as_none() {
        let record = record_from_proto(wrap(Kind::Deal(deal()))).unwrap();
        let domain::Record::Deal(d) = &record else {
            panic!("not a deal: {record:?}");
        };
        assert_eq!(d.amount, Decimal::new(125050, 2));
        assert_eq!(d.status, domain::DealStatus::Won);
        assert_eq!(d.customer_id.as_deref(), Some("c1"));
        assert_eq!(d.campaign_id, None, "empty string means none");
        assert_eq!(d.stage_history[0].stage, "proposal");
    }

    #[test]
    fn a_malformed_amount_names_the_field() {
        let mut d = deal();
        d.amount = "12,5".into();
        let err = record_from_proto(wrap(Kind::Deal(d))).unwrap_err();
        assert!(
            err.starts_with("deal.amount: `12,5` is not a decimal number"),
            "{err}"
        );
    }

    #[test]
    fn missing_timestamps_enums_and_ids_name_the_field() {
        let mut d = deal();
        d.created_at = None;
        let err = record_from_proto(wrap(Kind::Deal(d))).unwrap_err();
        assert!(err.starts_with("deal.created_at: missing"), "{err}");

        let mut d = deal();
        d.status = pb::DealStatus::Unspecified.into();
        let err = record_from_proto(wrap(Kind::Deal(d))).unwrap_err();
        assert_eq!(
            err,
            "deal.status: missing: DEAL_STATUS_UNSPECIFIED is not a value"
        );

        let mut d = deal();
        d.kind = 42;
        let err = record_from_proto(wrap(Kind::Deal(d))).unwrap_err();
        assert_eq!(err, "deal.kind: 42 is not a DEAL_KIND value");

        let mut d = deal();
        d.stage_history[0].entered_at = None;
        let err = record_from_proto(wrap(Kind::Deal(d))).unwrap_err();
        assert!(
            err.starts_with("deal.stage_history[0].entered_at: missing"),
            "{err}"
        );

        let mut d = deal();
        d.id = " ".into();
        let err = record_from_proto(wrap(Kind::Deal(d))).unwrap_err();
        assert!(err.starts_with("deal.id: missing"), "{err}");
    }

    #[test]
    fn a_record_without_kind_is_rejected() {
        let err = record_from_proto(pb::Record { record: None }).unwrap_err();
        assert!(err.starts_with("record: no kind set"), "{err}");
    }

    #[test]
    fn nested_mrr_changes_name_their_index() {
        let s = pb::Subscription {
            id: "s1".into(),
            customer_id: "c1".into(),
            started_at: ts("2024-01-01T00:00:00Z"),
            mrr_changes: vec![
                pb::MrrChange {
                    at: ts("2024-01-01T00:00:00Z"),
                    mrr: "100".into(),
                },
                pb::MrrChange {
                    at: ts("2024-02-01T00:00:00Z"),
                    mrr: "1e3".into(),
                },
            ],
            ..Default::default()
        };
        let err = record_from_proto(wrap(Kind::Subscription(s))).unwrap_err();
        assert!(
            err.starts_with("subscription.mrr_changes[1].mrr: `1e3` is not a decimal number"),
            "{err}"
        );
    }

    #[test]
    fn spend_channel_is_optional_but_campaign_channel_is_required() {
        let spend = pb::Spend {
            id: "s1".into(),
            at: ts("2024-01-01T00:00:00Z"),
            amount: "10000".into(),
            category: pb::SpendCategory::Advertising.into(),
            ..Default::default()
        };
        let record = record_from_proto(wrap(Kind::Spend(spend))).unwrap();
        let domain::Record::Spend(s) = &record else {
            panic!("not spend: {record:?}");
        };
        assert_eq!(s.channel, None);

        let campaign = pb::Campaign {
            id: "cmp".into(),
            started_at: ts("2024-01-01T00:00:00Z"),
            ..Default::default()
        };
        let err = record_from_proto(wrap(Kind::Campaign(campaign))).unwrap_err();
        assert_eq!(
            err,
            "campaign.channel: missing: CHANNEL_UNSPECIFIED is not a value"
        );
    }

    fn attribute(value: pb::attribute_value::Value) -> pb::AttributeValue {
        pb::AttributeValue { value: Some(value) }
    }

    #[test]
    fn attributes_convert_each_type_and_name_the_bad_one() {
        use pb::attribute_value::Value;
        let mut deal = deal();
        deal.attributes = [
            ("region", attribute(Value::Text("EMEA".into()))),
            ("seats", attribute(Value::Decimal("12.50".into()))),
            ("vip", attribute(Value::Flag(true))),
            (
                "renewal",
                attribute(Value::Time(ts("2025-03-01T00:00:00Z").unwrap())),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let domain::Record::Deal(converted) =
            record_from_proto(wrap(Kind::Deal(deal.clone()))).unwrap()
        else {
            panic!("a deal")
        };
        assert_eq!(
            converted.attributes["seats"],
            domain::AttributeValue::Decimal(Decimal::new(1250, 2))
        );
        assert_eq!(
            converted.attributes["region"],
            domain::AttributeValue::Text("EMEA".into())
        );
        let Some(Kind::Deal(back)) = record_to_proto(domain::Record::Deal(converted)).record else {
            panic!("a deal")
        };
        assert_eq!(back.attributes, deal.attributes);

        let mut bad = deal.clone();
        bad.attributes
            .insert("seats".into(), attribute(Value::Decimal("12,5".into())));
        let err = record_from_proto(wrap(Kind::Deal(bad))).unwrap_err();
        assert!(err.starts_with("deal.attributes[seats]: "), "{err}");
        let mut unset = deal;
        unset
            .attributes
            .insert("x".repeat(1000), pb::AttributeValue { value: None });
        let err = record_from_proto(wrap(Kind::Deal(unset))).unwrap_err();
        assert!(err.contains("no value set"), "{err}");
        assert!(err.len() < 200, "the name is clipped: {err}");
    }

    #[test]
    fn every_kind_round_trips() {
        let records = vec![
            Kind::Customer(pb::Customer {
                attributes: [(
                    "plan".to_owned(),
                    attribute(pb::attribute_value::Value::Text("pro".into())),
                )]
                .into_iter()
                .collect(),
                id: "c1".into(),
                acquired_at: ts("2024-01-01T00:00:00Z"),
                churned_at: ts("2024-06-01T00:00:00Z"),
                source: pb::Source::Referral.into(),
                campaign_id: Some("cmp".into()),
                segment: Some("smb".into()),
                owner: None,
            }),
            Kind::Lead(pb::Lead {
                attributes: Default::default(),
                id: "l1".into(),
                created_at: ts("2024-01-01T00:00:00Z"),
                source: pb::Source::Marketing.into(),
                campaign_id: None,
                converted_at: ts("2024-01-05T00:00:00Z"),
                customer_id: Some("c1".into()),
            }),
            Kind::Deal(pb::Deal {
                campaign_id: Some("cmp".into()),
                ..deal()
            }),
            Kind::Subscription(pb::Subscription {
                currency: String::new(),
                attributes: Default::default(),
                id: "s1".into(),
                customer_id: "c1".into(),
                started_at: ts("2024-01-01T00:00:00Z"),
                ended_at: None,
                mrr_changes: vec![pb::MrrChange {
                    at: ts("2024-01-01T00:00:00Z"),
                    mrr: "199.99".into(),
                }],
                renewal_due_at: ts("2025-01-01T00:00:00Z"),
                renewed: Some(true),
            }),
            Kind::Purchase(pb::Purchase {
                currency: String::new(),
                attributes: Default::default(),
                id: "p1".into(),
                customer_id: "c1".into(),
                amount: "35".into(),
                at: ts("2024-03-01T00:00:00Z"),
            }),
            Kind::Spend(pb::Spend {
                currency: String::new(),
                attributes: Default::default(),
                id: "sp1".into(),
                at: ts("2024-01-01T00:00:00Z"),
                amount: "10000".into(),
                category: pb::SpendCategory::Tools.into(),
                channel: pb::Channel::Paid.into(),
                campaign_id: Some("cmp".into()),
            }),
            Kind::Campaign(pb::Campaign {
                currency: String::new(),
                attributes: Default::default(),
                id: "cmp".into(),
                name: "Spring".into(),
                channel: pb::Channel::Email.into(),
                started_at: ts("2024-03-01T00:00:00Z"),
                delivered: 1000,
                opens: 400,
                clicks: 50,
                unsubscribes: 3,
            }),
            Kind::Ticket(pb::Ticket {
                attributes: Default::default(),
                id: "t1".into(),
                customer_id: None,
                agent: "bob".into(),
                opened_at: ts("2024-01-01T08:00:00Z"),
                first_response_at: ts("2024-01-01T09:30:00Z"),
                resolved_at: None,
            }),
            Kind::SurveyResponse(pb::SurveyResponse {
                attributes: Default::default(),
                id: "r1".into(),
                customer_id: Some("c1".into()),
                kind: pb::SurveyKind::Nps.into(),
                score: "9".into(),
                scale_max: 10,
                at: ts("2024-01-01T00:00:00Z"),
            }),
            Kind::Quota(pb::Quota {
                currency: "GBP".into(),
                attributes: Default::default(),
                id: "q1".into(),
                owner: "alice".into(),
                period_start: ts("2024-01-01T00:00:00Z"),
                period_end: ts("2024-04-01T00:00:00Z"),
                amount: "100000".into(),
            }),
            Kind::Activity(pb::Activity {
                id: "a1".into(),
                r#type: "meeting".into(),
                occurred_at: ts("2024-01-05T10:00:00Z"),
                customer_id: Some("c1".into()),
                lead_id: Some("l1".into()),
                deal_id: Some("d1".into()),
                owner: Some("alice".into()),
                amount: "120.50".into(),
                attributes: Default::default(),
            }),
            Kind::FxRate(pb::FxRate {
                id: "gbp-2024".into(),
                currency: "GBP".into(),
                effective_at: ts("2024-01-01T00:00:00Z"),
                rate: "1.1650".into(),
                attributes: Default::default(),
            }),
        ];
        assert_eq!(records.len(), domain::RecordKind::ALL.len());
        for kind in records {
            let wire = wrap(kind);
            let record = record_from_proto(wire.clone()).unwrap();
            assert_eq!(record_to_proto(record), wire);
        }
    }

    #[test]
    fn record_kinds_parse_by_oneof_field_name() {
        assert_eq!(
            record_kind("survey_response").unwrap(),
            domain::RecordKind::SurveyResponse
        );
        let err = record_kind("deals").unwrap_err();
        assert!(
            err.contains("expected one of customer, lead, deal"),
            "{err}"
        );
    }
}
