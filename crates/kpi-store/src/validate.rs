//! The rules a record must meet to be stored. Each rejection reason names the field and
//! the offending value, so a person fixing their export knows what to change.

use jiff::Timestamp;
use rust_decimal::Decimal;

use crate::record::{DealStatus, Record};

/// Longest record id, in bytes.
pub const MAX_ID_BYTES: usize = 256;

/// 1970-01-01T00:00:00Z, the earliest accepted timestamp.
const EARLIEST: Timestamp = Timestamp::UNIX_EPOCH;

/// Checks one record, returning why it cannot be stored.
///
/// The rules: the id is non-empty, at most 256 bytes, without control characters;
/// required strings are non-empty (deal owner, ticket agent, quota owner, subscription and
/// purchase `customer_id`, campaign name, stage names) and optional ids, when present, are
/// non-empty too; amounts are ≥ 0; times are in order (`closed_at ≥ created_at`, every
/// stage entered at or before `closed_at`, `resolved_at` and `first_response_at ≥
/// opened_at`, `churned_at ≥ acquired_at`, `converted_at ≥ created_at`, `ended_at ≥
/// started_at`, `period_end > period_start`, `stage_history` sorted by `entered_at`);
/// `closed_at` is present exactly when the deal is won or lost; `mrr_changes` is
/// non-empty, sorted by `at`, starts at or after `started_at` and has no negative MRR; a
/// survey's `scale_max ≥ 1` and `0 ≤ score ≤ scale_max`; an activity's type is named as
/// attributes are; a currency, when given, is an ISO 4217 code in uppercase (`EUR`); an
/// exchange rate names one, and its rate is above 0; a campaign's opens and clicks do
/// not exceed `delivered`; every timestamp lies in the years 1970..=9999; custom attributes
/// follow [`crate::attributes`]'s rules (names, at most 64, text of 1 to 256 bytes).
pub fn validate(record: &Record) -> Result<(), String> {
    check_id(record.id())?;
    crate::attributes::check(record.attributes(), EARLIEST)?;
    if let Some(code) = record.currency() {
        currency("currency", code)?;
    }
    match record {
        Record::Customer(c) => {
            time("acquired_at", c.acquired_at)?;
            opt_time("churned_at", c.churned_at)?;
            not_before("churned_at", c.churned_at, "acquired_at", c.acquired_at)?;
            opt_id("campaign_id", &c.campaign_id)?;
            opt_id("segment", &c.segment)?;
            opt_id("owner", &c.owner)
        }
        Record::Lead(l) => {
            time("created_at", l.created_at)?;
            opt_time("converted_at", l.converted_at)?;
            not_before("converted_at", l.converted_at, "created_at", l.created_at)?;
            opt_id("campaign_id", &l.campaign_id)?;
            opt_id("customer_id", &l.customer_id)
        }
        Record::Deal(d) => {
            required("owner", &d.owner)?;
            amount("amount", d.amount)?;
            time("created_at", d.created_at)?;
            opt_time("closed_at", d.closed_at)?;
            not_before("closed_at", d.closed_at, "created_at", d.created_at)?;
            match (d.status, d.closed_at) {
                (DealStatus::Open, Some(at)) => {
                    return Err(format!(
                        "closed_at {at} is set but the deal's status is open; an open deal has no closed_at"
                    ))
                }
                (DealStatus::Won, None) => {
                    return Err("closed_at is missing; a won deal needs the time it closed".into())
                }
                (DealStatus::Lost, None) => {
                    return Err("closed_at is missing; a lost deal needs the time it closed".into())
                }
                _ => {}
            }
            opt_id("customer_id", &d.customer_id)?;
            opt_id("campaign_id", &d.campaign_id)?;
            let mut previous: Option<Timestamp> = None;
            for (i, entry) in d.stage_history.iter().enumerate() {
                if entry.stage.is_empty() {
                    return Err(format!("stage_history[{i}].stage is empty"));
                }
                time(&format!("stage_history[{i}].entered_at"), entry.entered_at)?;
                if let Some(prev) = previous {
                    if entry.entered_at < prev {
                        return Err(format!(
                            "stage_history[{i}].entered_at {} is before stage_history[{}].entered_at {prev}; stages must be listed in the order they were entered",
                            entry.entered_at,
                            i - 1
                        ));
                    }
                }
                if let Some(closed) = d.closed_at {
                    if entry.entered_at > closed {
                        return Err(format!(
                            "stage_history[{i}].entered_at {} is after closed_at {closed}",
                            entry.entered_at
                        ));
                    }
                }
                previous = Some(entry.entered_at);
            }
            Ok(())
        }
        Record::Subscription(s) => {
            required("customer_id", &s.customer_id)?;
            time("started_at", s.started_at)?;
            opt_time("ended_at", s.ended_at)?;
            not_before("ended_at", s.ended_at, "started_at", s.started_at)?;
            opt_time("renewal_due_at", s.renewal_due_at)?;
            let Some(first) = s.mrr_changes.first() else {
                return Err(
                    "mrr_changes is empty; give at least the starting MRR (at, mrr)".into(),
                );
            };
            if first.at < s.started_at {
                return Err(format!(
                    "mrr_changes[0].at {} is before started_at {}",
                    first.at, s.started_at
                ));
            }
            let mut previous: Option<Timestamp> = None;
            for (i, change) in s.mrr_changes.iter().enumerate() {
                time(&format!("mrr_changes[{i}].at"), change.at)?;
                amount(&format!("mrr_changes[{i}].mrr"), change.mrr)?;
                if let Some(prev) = previous {
                    if change.at < prev {
                        return Err(format!(
                            "mrr_changes[{i}].at {} is before mrr_changes[{}].at {prev}; changes must be sorted by time",
                            change.at,
                            i - 1
                        ));
                    }
                }
                previous = Some(change.at);
            }
            Ok(())
        }
        Record::Purchase(p) => {
            required("customer_id", &p.customer_id)?;
            amount("amount", p.amount)?;
            time("at", p.at)
        }
        Record::Spend(s) => {
            amount("amount", s.amount)?;
            time("at", s.at)?;
            opt_id("campaign_id", &s.campaign_id)
        }
        Record::Campaign(c) => {
            required("name", &c.name)?;
            time("started_at", c.started_at)?;
            if c.opens > c.delivered {
                return Err(format!(
                    "opens {} is more than delivered {}",
                    c.opens, c.delivered
                ));
            }
            if c.clicks > c.delivered {
                return Err(format!(
                    "clicks {} is more than delivered {}",
                    c.clicks, c.delivered
                ));
            }
            Ok(())
        }
        Record::Ticket(t) => {
            required("agent", &t.agent)?;
            opt_id("customer_id", &t.customer_id)?;
            time("opened_at", t.opened_at)?;
            opt_time("first_response_at", t.first_response_at)?;
            opt_time("resolved_at", t.resolved_at)?;
            not_before(
                "first_response_at",
                t.first_response_at,
                "opened_at",
                t.opened_at,
            )?;
            not_before("resolved_at", t.resolved_at, "opened_at", t.opened_at)
        }
        Record::SurveyResponse(s) => {
            opt_id("customer_id", &s.customer_id)?;
            time("at", s.at)?;
            if s.scale_max < 1 {
                return Err(
                    "scale_max is 0; it must be at least 1 (10 for NPS, 5 for a 1–5 CSAT)".into(),
                );
            }
            if s.score.is_sign_negative() && !s.score.is_zero() {
                return Err(format!("score {} is negative", s.score));
            }
            if s.score > Decimal::from(s.scale_max) {
                return Err(format!(
                    "score {} is above scale_max {}",
                    s.score, s.scale_max
                ));
            }
            Ok(())
        }
        Record::Quota(q) => {
            required("owner", &q.owner)?;
            amount("amount", q.amount)?;
            time("period_start", q.period_start)?;
            time("period_end", q.period_end)?;
            if q.period_end <= q.period_start {
                return Err(format!(
                    "period_end {} is not after period_start {}",
                    q.period_end, q.period_start
                ));
            }
            Ok(())
        }
        Record::Activity(a) => {
            crate::attributes::check_name(&a.activity_type).map_err(|e| {
                format!(
                    "type: {}",
                    e.replace("an attribute name", "an activity type")
                )
            })?;
            time("occurred_at", a.occurred_at)?;
            opt_id("customer_id", &a.customer_id)?;
            opt_id("lead_id", &a.lead_id)?;
            opt_id("deal_id", &a.deal_id)?;
            opt_id("owner", &a.owner)?;
            a.amount.map_or(Ok(()), |v| amount("amount", v))
        }
        Record::FxRate(r) => {
            currency("currency", &r.currency)?;
            time("effective_at", r.effective_at)?;
            if r.rate <= Decimal::ZERO {
                return Err(format!(
                    "rate {} is not above 0; it is the value of one {} in the base currency",
                    r.rate, r.currency
                ));
            }
            Ok(())
        }
    }
}

fn currency(field: &str, code: &str) -> Result<(), String> {
    if !crate::currency::is_iso_code(code) {
        return Err(format!("{field} {}", crate::currency::code_problem(code)));
    }
    Ok(())
}

fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("id is empty".into());
    }
    if id.len() > MAX_ID_BYTES {
        return Err(format!(
            "id is {} bytes long; at most {MAX_ID_BYTES} are allowed",
            id.len()
        ));
    }
    if let Some(c) = id.chars().find(|c| c.is_control()) {
        return Err(format!(
            "id contains the control character U+{:04X}",
            u32::from(c)
        ));
    }
    Ok(())
}

fn required(field: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{field} is empty; it is required"));
    }
    Ok(())
}

fn opt_id(field: &str, value: &Option<String>) -> Result<(), String> {
    match value {
        Some(v) if v.is_empty() => Err(format!(
            "{field} is present but empty; leave it out when there is none"
        )),
        _ => Ok(()),
    }
}

fn amount(field: &str, value: Decimal) -> Result<(), String> {
    if value.is_sign_negative() && !value.is_zero() {
        return Err(format!("{field} {value} is negative"));
    }
    Ok(())
}

fn time(field: &str, t: Timestamp) -> Result<(), String> {
    if t < EARLIEST {
        return Err(format!(
            "{field} {t} is before 1970-01-01T00:00:00Z; timestamps must lie in the years 1970 to 9999"
        ));
    }
    // The upper bound holds by construction: a jiff Timestamp ends in 9999.
    Ok(())
}

fn opt_time(field: &str, t: Option<Timestamp>) -> Result<(), String> {
    t.map_or(Ok(()), |t| time(field, t))
}

fn not_before(
    field: &str,
    t: Option<Timestamp>,
    other_field: &str,
    other: Timestamp,
) -> Result<(), String> {
    match t {
        Some(t) if t < other => Err(format!("{field} {t} is before {other_field} {other}")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::*;

    fn t(s: &str) -> Timestamp {
        format!("{s}T00:00:00Z").parse().unwrap()
    }

    fn deal() -> Deal {
        Deal {
            currency: None,
            attributes: Default::default(),
            id: "d1".into(),
            owner: "alice".into(),
            amount: Decimal::from(100),
            created_at: t("2024-02-01"),
            closed_at: Some(t("2024-03-01")),
            status: DealStatus::Won,
            kind: DealKind::NewBusiness,
            customer_id: Some("c1".into()),
            campaign_id: None,
            stage_history: vec![
                StageEntry {
                    stage: "demo".into(),
                    entered_at: t("2024-02-01"),
                },
                StageEntry {
                    stage: "proposal".into(),
                    entered_at: t("2024-02-10"),
                },
            ],
        }
    }

    fn subscription() -> Subscription {
        Subscription {
            currency: None,
            attributes: Default::default(),
            id: "s1".into(),
            customer_id: "c1".into(),
            started_at: t("2024-01-01"),
            ended_at: None,
            mrr_changes: vec![
                MrrChange {
                    at: t("2024-01-01"),
                    mrr: Decimal::from(100),
                },
                MrrChange {
                    at: t("2024-03-01"),
                    mrr: Decimal::from(150),
                },
            ],
            renewal_due_at: None,
            renewed: None,
        }
    }

    fn reason(r: Record) -> String {
        validate(&r).expect_err("should be rejected")
    }

    #[test]
    fn valid_records_pass() {
        assert_eq!(validate(&Record::Deal(deal())), Ok(()));
        assert_eq!(validate(&Record::Subscription(subscription())), Ok(()));
    }

    #[test]
    fn ids_are_non_empty_short_and_printable() {
        let mut d = deal();
        d.id = String::new();
        assert_eq!(reason(Record::Deal(d.clone())), "id is empty");
        d.id = "x".repeat(257);
        assert_eq!(
            reason(Record::Deal(d.clone())),
            "id is 257 bytes long; at most 256 are allowed"
        );
        d.id = "x".repeat(256);
        assert_eq!(validate(&Record::Deal(d.clone())), Ok(()));
        d.id = "a\nb".into();
        assert_eq!(
            reason(Record::Deal(d)),
            "id contains the control character U+000A"
        );
    }

    #[test]
    fn deals() {
        let mut d = deal();
        d.owner = String::new();
        assert_eq!(reason(Record::Deal(d)), "owner is empty; it is required");
        let mut d = deal();
        d.amount = Decimal::new(-1, 2);
        assert_eq!(reason(Record::Deal(d)), "amount -0.01 is negative");
        let mut d = deal();
        d.closed_at = Some(t("2024-01-01"));
        assert_eq!(
            reason(Record::Deal(d)),
            "closed_at 2024-01-01T00:00:00Z is before created_at 2024-02-01T00:00:00Z"
        );
        let mut d = deal();
        d.status = DealStatus::Open;
        assert_eq!(
            reason(Record::Deal(d)),
            "closed_at 2024-03-01T00:00:00Z is set but the deal's status is open; an open deal has no closed_at"
        );
        let mut d = deal();
        d.closed_at = None;
        assert_eq!(
            reason(Record::Deal(d.clone())),
            "closed_at is missing; a won deal needs the time it closed"
        );
        d.status = DealStatus::Lost;
        assert_eq!(
            reason(Record::Deal(d)),
            "closed_at is missing; a lost deal needs the time it closed"
        );
        let mut d = deal();
        d.stage_history.swap(0, 1);
        assert_eq!(
            reason(Record::Deal(d)),
            "stage_history[1].entered_at 2024-02-01T00:00:00Z is before stage_history[0].entered_at 2024-02-10T00:00:00Z; stages must be listed in the order they were entered"
        );
        let mut d = deal();
        d.stage_history[1].entered_at = t("2024-03-02");
        assert_eq!(
            reason(Record::Deal(d)),
            "stage_history[1].entered_at 2024-03-02T00:00:00Z is after closed_at 2024-03-01T00:00:00Z"
        );
        let mut d = deal();
        d.stage_history[0].stage = String::new();
        assert_eq!(reason(Record::Deal(d)), "stage_history[0].stage is empty");
        let mut d = deal();
        d.campaign_id = Some(String::new());
        assert_eq!(
            reason(Record::Deal(d)),
            "campaign_id is present but empty; leave it out when there is none"
        );
    }

    #[test]
    fn subscriptions() {
        let mut s = subscription();
        s.customer_id = String::new();
        assert_eq!(
            reason(Record::Subscription(s)),
            "customer_id is empty; it is required"
        );
        let mut s = subscription();
        s.ended_at = Some(t("2023-12-31"));
        assert_eq!(
            reason(Record::Subscription(s)),
            "ended_at 2023-12-31T00:00:00Z is before started_at 2024-01-01T00:00:00Z"
        );
        let mut s = subscription();
        s.mrr_changes.clear();
        assert_eq!(
            reason(Record::Subscription(s)),
            "mrr_changes is empty; give at least the starting MRR (at, mrr)"
        );
        let mut s = subscription();
        s.mrr_changes[0].at = t("2023-12-01");
        assert_eq!(
            reason(Record::Subscription(s)),
            "mrr_changes[0].at 2023-12-01T00:00:00Z is before started_at 2024-01-01T00:00:00Z"
        );
        let mut s = subscription();
        s.mrr_changes[1].at = t("2023-12-01");
        s.started_at = t("2023-11-01");
        assert_eq!(
            reason(Record::Subscription(s)),
            "mrr_changes[1].at 2023-12-01T00:00:00Z is before mrr_changes[0].at 2024-01-01T00:00:00Z; changes must be sorted by time"
        );
        let mut s = subscription();
        s.mrr_changes[1].mrr = Decimal::from(-5);
        assert_eq!(
            reason(Record::Subscription(s)),
            "mrr_changes[1].mrr -5 is negative"
        );
    }

    #[test]
    fn customers_leads_purchases_spend() {
        let c = Customer {
            attributes: Default::default(),
            id: "c1".into(),
            acquired_at: t("2024-02-01"),
            churned_at: Some(t("2024-01-01")),
            source: Source::Sales,
            campaign_id: None,
            segment: None,
            owner: None,
        };
        assert_eq!(
            reason(Record::Customer(c)),
            "churned_at 2024-01-01T00:00:00Z is before acquired_at 2024-02-01T00:00:00Z"
        );
        let l = Lead {
            attributes: Default::default(),
            id: "l1".into(),
            created_at: t("2024-02-01"),
            source: Source::Sales,
            campaign_id: None,
            converted_at: Some(t("2024-01-31")),
            customer_id: None,
        };
        assert_eq!(
            reason(Record::Lead(l)),
            "converted_at 2024-01-31T00:00:00Z is before created_at 2024-02-01T00:00:00Z"
        );
        let p = Purchase {
            currency: None,
            attributes: Default::default(),
            id: "p1".into(),
            customer_id: String::new(),
            amount: Decimal::ONE,
            at: t("2024-01-01"),
        };
        assert_eq!(
            reason(Record::Purchase(p.clone())),
            "customer_id is empty; it is required"
        );
        let p = Purchase {
            customer_id: "c1".into(),
            amount: Decimal::NEGATIVE_ONE,
            ..p
        };
        assert_eq!(reason(Record::Purchase(p)), "amount -1 is negative");
        let s = Spend {
            currency: None,
            attributes: Default::default(),
            id: "x1".into(),
            at: t("2024-01-01"),
            amount: Decimal::new(-250, 2),
            category: SpendCategory::Tools,
            channel: None,
            campaign_id: None,
        };
        assert_eq!(reason(Record::Spend(s)), "amount -2.50 is negative");
    }

    #[test]
    fn campaigns() {
        let c = Campaign {
            currency: None,
            attributes: Default::default(),
            id: "k1".into(),
            name: "Spring".into(),
            channel: Channel::Email,
            started_at: t("2024-01-01"),
            delivered: 10,
            opens: 11,
            clicks: 0,
            unsubscribes: 0,
        };
        assert_eq!(
            reason(Record::Campaign(c.clone())),
            "opens 11 is more than delivered 10"
        );
        let c2 = Campaign {
            opens: 5,
            clicks: 12,
            ..c.clone()
        };
        assert_eq!(
            reason(Record::Campaign(c2)),
            "clicks 12 is more than delivered 10"
        );
        let c3 = Campaign {
            name: String::new(),
            opens: 0,
            ..c
        };
        assert_eq!(
            reason(Record::Campaign(c3)),
            "name is empty; it is required"
        );
    }

    #[test]
    fn tickets() {
        let tk = Ticket {
            attributes: Default::default(),
            id: "t1".into(),
            customer_id: None,
            agent: "ann".into(),
            opened_at: t("2024-01-02"),
            first_response_at: Some(t("2024-01-01")),
            resolved_at: None,
        };
        assert_eq!(
            reason(Record::Ticket(tk.clone())),
            "first_response_at 2024-01-01T00:00:00Z is before opened_at 2024-01-02T00:00:00Z"
        );
        let tk2 = Ticket {
            first_response_at: None,
            resolved_at: Some(t("2024-01-01")),
            ..tk.clone()
        };
        assert_eq!(
            reason(Record::Ticket(tk2)),
            "resolved_at 2024-01-01T00:00:00Z is before opened_at 2024-01-02T00:00:00Z"
        );
        let tk3 = Ticket {
            agent: String::new(),
            first_response_at: None,
            ..tk
        };
        assert_eq!(
            reason(Record::Ticket(tk3)),
            "agent is empty; it is required"
        );
    }

    #[test]
    fn surveys() {
        let s = SurveyResponse {
            attributes: Default::default(),
            id: "v1".into(),
            customer_id: None,
            kind: SurveyKind::Nps,
            score: Decimal::from(11),
            scale_max: 10,
            at: t("2024-01-01"),
        };
        assert_eq!(
            reason(Record::SurveyResponse(s.clone())),
            "score 11 is above scale_max 10"
        );
        let s2 = SurveyResponse {
            score: Decimal::NEGATIVE_ONE,
            ..s.clone()
        };
        assert_eq!(reason(Record::SurveyResponse(s2)), "score -1 is negative");
        let s3 = SurveyResponse {
            score: Decimal::ZERO,
            scale_max: 0,
            ..s.clone()
        };
        assert_eq!(
            reason(Record::SurveyResponse(s3)),
            "scale_max is 0; it must be at least 1 (10 for NPS, 5 for a 1–5 CSAT)"
        );
        let s4 = SurveyResponse {
            score: Decimal::from(10),
            ..s
        };
        assert_eq!(validate(&Record::SurveyResponse(s4)), Ok(()));
    }

    #[test]
    fn quotas() {
        let q = Quota {
            currency: None,
            attributes: Default::default(),
            id: "q1".into(),
            owner: "alice".into(),
            period_start: t("2024-01-01"),
            period_end: t("2024-01-01"),
            amount: Decimal::from(5),
        };
        assert_eq!(
            reason(Record::Quota(q.clone())),
            "period_end 2024-01-01T00:00:00Z is not after period_start 2024-01-01T00:00:00Z"
        );
        let q2 = Quota {
            owner: String::new(),
            ..q.clone()
        };
        assert_eq!(reason(Record::Quota(q2)), "owner is empty; it is required");
        let q3 = Quota {
            period_end: t("2024-04-01"),
            amount: Decimal::from(-5),
            ..q
        };
        assert_eq!(reason(Record::Quota(q3)), "amount -5 is negative");
    }

    #[test]
    fn timestamps_lie_in_1970_to_9999() {
        let mut d = deal();
        d.created_at = "1969-12-31T23:59:59Z".parse().unwrap();
        d.stage_history.clear();
        assert_eq!(
            reason(Record::Deal(d.clone())),
            "created_at 1969-12-31T23:59:59Z is before 1970-01-01T00:00:00Z; timestamps must lie in the years 1970 to 9999"
        );
        d.created_at = Timestamp::UNIX_EPOCH;
        assert_eq!(validate(&Record::Deal(d.clone())), Ok(()));
        // The latest instant a timestamp can hold is in 9999.
        let p = Purchase {
            currency: None,
            attributes: Default::default(),
            id: "p1".into(),
            customer_id: "c1".into(),
            amount: Decimal::ONE,
            at: Timestamp::MAX,
        };
        assert_eq!(
            Timestamp::MAX.to_zoned(jiff::tz::TimeZone::UTC).year(),
            9999
        );
        assert_eq!(validate(&Record::Purchase(p)), Ok(()));
    }
}
