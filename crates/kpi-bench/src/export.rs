//! The records as CSV files, one per table, for DuckDB to load: the tables and columns
//! `duckdb_dashboard.py` declares (lists of a record — stage history, MRR changes — become
//! their own tables with a `seq` column).
//!
//! Times are written as `YYYY-MM-DD HH:MM:SS` (UTC), absent values as empty fields, and
//! decimals as they are; a time with a fraction of a second or an amount with more than
//! [`MAX_SCALE`] decimal places is refused rather than silently rounded by DuckDB's column
//! types.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use anyhow::{bail, Context as _};
use jiff::Timestamp;
use kpi_core::Decimal;
use kpi_store::{Channel, DealKind, DealStatus, Record, Source, SpendCategory, SurveyKind};

/// Decimal places DuckDB's money columns (`DECIMAL(18,4)`) keep.
pub(crate) const MAX_SCALE: u32 = 4;

/// The tables, in the order `duckdb_dashboard.py` loads them, with their header.
const TABLES: [(&str, &[&str]); 14] = [
    (
        "customers",
        &[
            "id",
            "acquired_at",
            "churned_at",
            "source",
            "campaign_id",
            "segment",
            "owner",
        ],
    ),
    (
        "leads",
        &[
            "id",
            "created_at",
            "source",
            "campaign_id",
            "converted_at",
            "customer_id",
        ],
    ),
    (
        "deals",
        &[
            "id",
            "owner",
            "amount",
            "created_at",
            "closed_at",
            "status",
            "kind",
            "customer_id",
            "campaign_id",
            "currency",
        ],
    ),
    ("deal_stages", &["deal_id", "seq", "stage", "entered_at"]),
    (
        "subscriptions",
        &[
            "id",
            "customer_id",
            "started_at",
            "ended_at",
            "renewal_due_at",
            "renewed",
            "currency",
        ],
    ),
    ("mrr_changes", &["subscription_id", "seq", "at", "mrr"]),
    (
        "purchases",
        &["id", "customer_id", "amount", "at", "currency"],
    ),
    (
        "spend",
        &[
            "id",
            "at",
            "amount",
            "category",
            "channel",
            "campaign_id",
            "currency",
        ],
    ),
    (
        "campaigns",
        &[
            "id",
            "name",
            "channel",
            "started_at",
            "delivered",
            "opens",
            "clicks",
            "unsubscribes",
        ],
    ),
    (
        "tickets",
        &[
            "id",
            "customer_id",
            "agent",
            "opened_at",
            "first_response_at",
            "resolved_at",
        ],
    ),
    (
        "surveys",
        &["id", "customer_id", "kind", "score", "scale_max", "at"],
    ),
    (
        "quotas",
        &[
            "id",
            "owner",
            "period_start",
            "period_end",
            "amount",
            "currency",
        ],
    ),
    (
        "activities",
        &[
            "id",
            "type",
            "occurred_at",
            "customer_id",
            "lead_id",
            "deal_id",
            "owner",
            "amount",
        ],
    ),
    ("fx_rates", &["id", "currency", "effective_at", "rate"]),
];

fn time(t: Timestamp) -> anyhow::Result<String> {
    if t.subsec_nanosecond() != 0 {
        bail!("{t} has a fraction of a second; the CSV export writes whole seconds");
    }
    Ok(t.strftime("%Y-%m-%d %H:%M:%S").to_string())
}

fn opt_time(t: Option<Timestamp>) -> anyhow::Result<String> {
    t.map_or(Ok(String::new()), time)
}

fn money(d: Decimal) -> anyhow::Result<String> {
    if d.scale() > MAX_SCALE {
        bail!("{d} has more than {MAX_SCALE} decimal places");
    }
    Ok(d.to_string())
}

fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

fn source(s: Source) -> &'static str {
    match s {
        Source::Marketing => "marketing",
        Source::Sales => "sales",
        Source::Referral => "referral",
        Source::Partner => "partner",
        Source::Other => "other",
    }
}

fn channel(c: Channel) -> &'static str {
    match c {
        Channel::Email => "email",
        Channel::Paid => "paid",
        Channel::Social => "social",
        Channel::Event => "event",
        Channel::Other => "other",
    }
}

fn status(s: DealStatus) -> &'static str {
    match s {
        DealStatus::Open => "open",
        DealStatus::Won => "won",
        DealStatus::Lost => "lost",
    }
}

fn deal_kind(k: DealKind) -> &'static str {
    match k {
        DealKind::NewBusiness => "new_business",
        DealKind::Upsell => "upsell",
        DealKind::CrossSell => "cross_sell",
        DealKind::Renewal => "renewal",
    }
}

fn category(c: SpendCategory) -> &'static str {
    kpi_core::SpendCategories::NAMES[c.index()]
}

fn survey_kind(k: SurveyKind) -> &'static str {
    match k {
        SurveyKind::Nps => "nps",
        SurveyKind::Csat => "csat",
        SurveyKind::Ces => "ces",
    }
}

/// Writes `records` as the CSV tables into `dir` (created if missing); how many bytes.
pub(crate) fn write_csv(records: &[Record], dir: &Path) -> anyhow::Result<u64> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut writers = Vec::with_capacity(TABLES.len());
    for (name, header) in TABLES {
        let path = dir.join(format!("{name}.csv"));
        let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut w = csv::Writer::from_writer(BufWriter::with_capacity(1 << 20, file));
        w.write_record(header)?;
        writers.push(w);
    }
    let [customers, leads, deals, stages, subs, changes, purchases, spend, campaigns, tickets, surveys, quotas, activities, fx_rates] =
        writers.as_mut_slice()
    else {
        unreachable!("one writer per table");
    };
    for r in records {
        match r {
            Record::Customer(c) => customers.write_record([
                c.id.clone(),
                time(c.acquired_at)?,
                opt_time(c.churned_at)?,
                source(c.source).into(),
                opt(&c.campaign_id),
                opt(&c.segment),
                opt(&c.owner),
            ])?,
            Record::Lead(l) => leads.write_record([
                l.id.clone(),
                time(l.created_at)?,
                source(l.source).into(),
                opt(&l.campaign_id),
                opt_time(l.converted_at)?,
                opt(&l.customer_id),
            ])?,
            Record::Deal(d) => {
                deals.write_record([
                    d.id.clone(),
                    d.owner.clone(),
                    money(d.amount)?,
                    time(d.created_at)?,
                    opt_time(d.closed_at)?,
                    status(d.status).into(),
                    deal_kind(d.kind).into(),
                    opt(&d.customer_id),
                    opt(&d.campaign_id),
                    opt(&d.currency),
                ])?;
                for (i, s) in d.stage_history.iter().enumerate() {
                    stages.write_record([
                        d.id.clone(),
                        i.to_string(),
                        s.stage.clone(),
                        time(s.entered_at)?,
                    ])?;
                }
            }
            Record::Subscription(s) => {
                subs.write_record([
                    s.id.clone(),
                    s.customer_id.clone(),
                    time(s.started_at)?,
                    opt_time(s.ended_at)?,
                    opt_time(s.renewal_due_at)?,
                    s.renewed.map(|b| b.to_string()).unwrap_or_default(),
                    opt(&s.currency),
                ])?;
                for (i, c) in s.mrr_changes.iter().enumerate() {
                    changes.write_record([
                        s.id.clone(),
                        i.to_string(),
                        time(c.at)?,
                        money(c.mrr)?,
                    ])?;
                }
            }
            Record::Purchase(p) => purchases.write_record([
                p.id.clone(),
                p.customer_id.clone(),
                money(p.amount)?,
                time(p.at)?,
                opt(&p.currency),
            ])?,
            Record::Spend(s) => spend.write_record([
                s.id.clone(),
                time(s.at)?,
                money(s.amount)?,
                category(s.category).into(),
                s.channel.map(channel).unwrap_or_default().into(),
                opt(&s.campaign_id),
                opt(&s.currency),
            ])?,
            Record::Campaign(c) => campaigns.write_record([
                c.id.clone(),
                c.name.clone(),
                channel(c.channel).into(),
                time(c.started_at)?,
                c.delivered.to_string(),
                c.opens.to_string(),
                c.clicks.to_string(),
                c.unsubscribes.to_string(),
            ])?,
            Record::Ticket(t) => tickets.write_record([
                t.id.clone(),
                opt(&t.customer_id),
                t.agent.clone(),
                time(t.opened_at)?,
                opt_time(t.first_response_at)?,
                opt_time(t.resolved_at)?,
            ])?,
            Record::SurveyResponse(s) => surveys.write_record([
                s.id.clone(),
                opt(&s.customer_id),
                survey_kind(s.kind).into(),
                money(s.score)?,
                s.scale_max.to_string(),
                time(s.at)?,
            ])?,
            Record::Quota(q) => quotas.write_record([
                q.id.clone(),
                q.owner.clone(),
                time(q.period_start)?,
                time(q.period_end)?,
                money(q.amount)?,
                opt(&q.currency),
            ])?,
            Record::Activity(a) => activities.write_record([
                a.id.clone(),
                a.activity_type.clone(),
                time(a.occurred_at)?,
                opt(&a.customer_id),
                opt(&a.lead_id),
                opt(&a.deal_id),
                opt(&a.owner),
                a.amount.map(money).transpose()?.unwrap_or_default(),
            ])?,
            Record::FxRate(r) => fx_rates.write_record([
                r.id.clone(),
                r.currency.clone(),
                time(r.effective_at)?,
                money(r.rate)?,
            ])?,
        }
    }
    let mut bytes = 0;
    for (w, (name, _)) in writers.into_iter().zip(TABLES) {
        w.into_inner()
            .map_err(|e| anyhow::anyhow!("writing {name}.csv: {e}"))?;
        bytes += std::fs::metadata(dir.join(format!("{name}.csv")))?.len();
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_store::generate::{generate, DemoOptions};

    #[test]
    fn writes_every_table_with_its_header_and_rows() {
        let records = generate(&DemoOptions {
            records: 2_000,
            currencies: true,
            ..DemoOptions::default()
        });
        let dir = std::env::temp_dir().join(format!("kpi-bench-export-{}", std::process::id()));
        write_csv(&records, &dir).unwrap();
        let deals = records
            .iter()
            .filter(|r| matches!(r, Record::Deal(_)))
            .count();
        let text = std::fs::read_to_string(dir.join("deals.csv")).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            "id,owner,amount,created_at,closed_at,status,kind,customer_id,campaign_id,currency"
        );
        assert_eq!(lines.count(), deals);
        for (name, _) in TABLES {
            assert!(dir.join(format!("{name}.csv")).exists(), "{name}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_what_duckdb_would_round() {
        let t: Timestamp = "2024-01-01T00:00:00.5Z".parse().unwrap();
        assert!(time(t).is_err());
        assert_eq!(
            time("2024-03-05T06:07:08Z".parse().unwrap()).unwrap(),
            "2024-03-05 06:07:08"
        );
        assert!(money(Decimal::new(12345, 5)).is_err());
        assert_eq!(money(Decimal::new(1250, 2)).unwrap(), "12.50");
    }
}
