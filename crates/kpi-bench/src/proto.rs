//! Stored records in their wire form (`kpi.v1.Record`), as a client sends them to Ingest.

use jiff::Timestamp;
use kpi_proto::kpi::v1 as pb;
use kpi_store::{Channel, DealKind, DealStatus, Record, Source, SpendCategory, SurveyKind};
use pb::record::Record as Kind;

fn time(t: Timestamp) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: t.as_second(),
        nanos: t.subsec_nanosecond(),
    })
}

fn optional_time(t: Option<Timestamp>) -> Option<prost_types::Timestamp> {
    t.and_then(time)
}

fn source(s: Source) -> pb::Source {
    match s {
        Source::Marketing => pb::Source::Marketing,
        Source::Sales => pb::Source::Sales,
        Source::Referral => pb::Source::Referral,
        Source::Partner => pb::Source::Partner,
        Source::Other => pb::Source::Other,
    }
}

fn channel(c: Option<Channel>) -> pb::Channel {
    match c {
        None => pb::Channel::Unspecified,
        Some(Channel::Email) => pb::Channel::Email,
        Some(Channel::Paid) => pb::Channel::Paid,
        Some(Channel::Social) => pb::Channel::Social,
        Some(Channel::Event) => pb::Channel::Event,
        Some(Channel::Other) => pb::Channel::Other,
    }
}

fn deal_status(s: DealStatus) -> pb::DealStatus {
    match s {
        DealStatus::Open => pb::DealStatus::Open,
        DealStatus::Won => pb::DealStatus::Won,
        DealStatus::Lost => pb::DealStatus::Lost,
    }
}

fn deal_kind(k: DealKind) -> pb::DealKind {
    match k {
        DealKind::NewBusiness => pb::DealKind::NewBusiness,
        DealKind::Upsell => pb::DealKind::Upsell,
        DealKind::CrossSell => pb::DealKind::CrossSell,
        DealKind::Renewal => pb::DealKind::Renewal,
    }
}

fn spend_category(c: SpendCategory) -> pb::SpendCategory {
    match c {
        SpendCategory::Advertising => pb::SpendCategory::Advertising,
        SpendCategory::Salaries => pb::SpendCategory::Salaries,
        SpendCategory::Commissions => pb::SpendCategory::Commissions,
        SpendCategory::Overhead => pb::SpendCategory::Overhead,
        SpendCategory::Tools => pb::SpendCategory::Tools,
        SpendCategory::Other => pb::SpendCategory::Other,
    }
}

fn survey_kind(k: SurveyKind) -> pb::SurveyKind {
    match k {
        SurveyKind::Nps => pb::SurveyKind::Nps,
        SurveyKind::Csat => pb::SurveyKind::Csat,
        SurveyKind::Ces => pb::SurveyKind::Ces,
    }
}

/// The wire form of a stored record.
pub(crate) fn record(record: &Record) -> pb::Record {
    let kind = match record {
        Record::Customer(c) => Kind::Customer(pb::Customer {
            attributes: Default::default(),
            id: c.id.clone(),
            acquired_at: time(c.acquired_at),
            churned_at: optional_time(c.churned_at),
            source: source(c.source).into(),
            campaign_id: c.campaign_id.clone(),
            segment: c.segment.clone(),
            owner: c.owner.clone(),
        }),
        Record::Lead(l) => Kind::Lead(pb::Lead {
            attributes: Default::default(),
            id: l.id.clone(),
            created_at: time(l.created_at),
            source: source(l.source).into(),
            campaign_id: l.campaign_id.clone(),
            converted_at: optional_time(l.converted_at),
            customer_id: l.customer_id.clone(),
        }),
        Record::Deal(d) => Kind::Deal(pb::Deal {
            attributes: Default::default(),
            id: d.id.clone(),
            owner: d.owner.clone(),
            amount: d.amount.to_string(),
            created_at: time(d.created_at),
            closed_at: optional_time(d.closed_at),
            status: deal_status(d.status).into(),
            kind: deal_kind(d.kind).into(),
            customer_id: d.customer_id.clone(),
            campaign_id: d.campaign_id.clone(),
            stage_history: d
                .stage_history
                .iter()
                .map(|s| pb::StageEntry {
                    stage: s.stage.clone(),
                    entered_at: time(s.entered_at),
                })
                .collect(),
        }),
        Record::Subscription(s) => Kind::Subscription(pb::Subscription {
            attributes: Default::default(),
            id: s.id.clone(),
            customer_id: s.customer_id.clone(),
            started_at: time(s.started_at),
            ended_at: optional_time(s.ended_at),
            mrr_changes: s
                .mrr_changes
                .iter()
                .map(|c| pb::MrrChange {
                    at: time(c.at),
                    mrr: c.mrr.to_string(),
                })
                .collect(),
            renewal_due_at: optional_time(s.renewal_due_at),
            renewed: s.renewed,
        }),
        Record::Purchase(p) => Kind::Purchase(pb::Purchase {
            attributes: Default::default(),
            id: p.id.clone(),
            customer_id: p.customer_id.clone(),
            amount: p.amount.to_string(),
            at: time(p.at),
        }),
        Record::Spend(s) => Kind::Spend(pb::Spend {
            attributes: Default::default(),
            id: s.id.clone(),
            at: time(s.at),
            amount: s.amount.to_string(),
            category: spend_category(s.category).into(),
            channel: channel(s.channel).into(),
            campaign_id: s.campaign_id.clone(),
        }),
        Record::Campaign(c) => Kind::Campaign(pb::Campaign {
            attributes: Default::default(),
            id: c.id.clone(),
            name: c.name.clone(),
            channel: channel(Some(c.channel)).into(),
            started_at: time(c.started_at),
            delivered: c.delivered,
            opens: c.opens,
            clicks: c.clicks,
            unsubscribes: c.unsubscribes,
        }),
        Record::Ticket(t) => Kind::Ticket(pb::Ticket {
            attributes: Default::default(),
            id: t.id.clone(),
            customer_id: t.customer_id.clone(),
            agent: t.agent.clone(),
            opened_at: time(t.opened_at),
            first_response_at: optional_time(t.first_response_at),
            resolved_at: optional_time(t.resolved_at),
        }),
        Record::SurveyResponse(r) => Kind::SurveyResponse(pb::SurveyResponse {
            attributes: Default::default(),
            id: r.id.clone(),
            customer_id: r.customer_id.clone(),
            kind: survey_kind(r.kind).into(),
            score: r.score.to_string(),
            scale_max: r.scale_max,
            at: time(r.at),
        }),
        Record::Quota(q) => Kind::Quota(pb::Quota {
            attributes: Default::default(),
            id: q.id.clone(),
            owner: q.owner.clone(),
            period_start: time(q.period_start),
            period_end: time(q.period_end),
            amount: q.amount.to_string(),
        }),
        Record::Activity(a) => Kind::Activity(pb::Activity {
            id: a.id.clone(),
            r#type: a.activity_type.clone(),
            occurred_at: time(a.occurred_at),
            customer_id: a.customer_id.clone(),
            lead_id: a.lead_id.clone(),
            deal_id: a.deal_id.clone(),
            owner: a.owner.clone(),
            amount: a.amount.map(|v| v.to_string()).unwrap_or_default(),
            attributes: Default::default(),
        }),
    };
    pb::Record { record: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_store::generate::{generate, DemoOptions};

    #[test]
    fn every_generated_kind_converts_with_its_fields() {
        let records = generate(&DemoOptions {
            records: 3_000,
            attributes_and_activities: true,
            ..DemoOptions::default()
        });
        let mut kinds = std::collections::BTreeSet::new();
        for r in &records {
            let wire = record(r);
            let kind = wire.record.expect("a kind");
            match (&kind, r) {
                (Kind::Deal(w), Record::Deal(d)) => {
                    assert_eq!(w.amount, d.amount.to_string());
                    assert_eq!(w.stage_history.len(), d.stage_history.len());
                    assert_eq!(
                        w.closed_at.as_ref().map(|t| t.seconds),
                        d.closed_at.map(|t| t.as_second())
                    );
                }
                (Kind::Subscription(w), Record::Subscription(s)) => {
                    assert_eq!(w.mrr_changes.len(), s.mrr_changes.len());
                    assert_eq!(w.mrr_changes[0].mrr, s.mrr_changes[0].mrr.to_string());
                }
                (Kind::SurveyResponse(w), Record::SurveyResponse(s)) => {
                    assert_eq!(w.scale_max, s.scale_max);
                    assert_eq!(w.kind, survey_kind(s.kind) as i32);
                }
                _ => {}
            }
            kinds.insert(r.kind().as_str());
        }
        assert_eq!(kinds.len(), kpi_store::RecordKind::ALL.len(), "{kinds:?}");
    }
}
