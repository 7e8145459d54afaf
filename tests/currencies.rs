//! Currencies end to end through the real `kpid`: amounts in other currencies are converted
//! to the tenant's base currency at their own event's time with the latest `fx_rate` on or
//! before it; a missing rate makes the value undefined with a reason naming the currency
//! and date; MRR movements are converted at their own times; a change of base converts
//! everything again; unknown codes are refused at write with the record's index; and
//! `kpid import` reads the new fields from NDJSON.
//!
//! Every expected value is worked out by hand in the comments. The base is EUR unless a
//! test changes it; the rates: GBP 1.15 from 1 January 2024, 1.20 from 1 February.

mod common;

use std::process::Command;

use common::{customer, deal, record, ts, Kpid};
use kpi_proto::kpi::v1 as pb;
use pb::record::Record as Kind;
use pb::DealStatus::Won;

fn fx_rate(id: &str, currency: &str, effective_at: &str, rate: &str) -> pb::Record {
    record(Kind::FxRate(pb::FxRate {
        id: id.into(),
        currency: currency.into(),
        effective_at: ts(effective_at),
        rate: rate.into(),
        ..Default::default()
    }))
}

/// A won deal of `amount` in `currency` ("" for none) closed at `closed_at`.
fn won(id: &str, amount: &str, currency: &str, closed_at: &str) -> pb::Record {
    let mut r = deal(id, "ann", Won, amount, closed_at);
    if let Some(Kind::Deal(d)) = &mut r.record {
        d.currency = currency.into();
    }
    r
}

fn gbp_rates() -> Vec<pb::Record> {
    vec![
        fx_rate("gbp-jan", "GBP", "2024-01-01T00:00:00Z", "1.15"),
        fx_rate("gbp-feb", "GBP", "2024-02-01T00:00:00Z", "1.20"),
    ]
}

async fn put(kpid: &Kpid, records: Vec<pb::Record>) -> pb::PutRecordsResponse {
    kpid.records()
        .await
        .put_records(pb::PutRecordsRequest { records })
        .await
        .expect("PutRecords")
        .into_inner()
}

async fn put_all(kpid: &Kpid, records: Vec<pb::Record>) {
    let n = records.len() as u64;
    let put = put(kpid, records).await;
    assert_eq!(put.accepted, n, "rejected: {:?}", put.rejected);
}

async fn set_base(kpid: &Kpid, code: &str) {
    kpid.tenant()
        .await
        .update_settings(pb::UpdateSettingsRequest {
            settings: Some(pb::TenantSettings {
                base_currency: code.into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["base_currency".into()],
            }),
        })
        .await
        .expect("UpdateSettings");
}

/// A kpid whose base currency is `base`, holding `records`.
async fn serve(base: &str, records: Vec<pb::Record>) -> Kpid {
    let kpid = Kpid::start();
    set_base(&kpid, base).await;
    put_all(&kpid, records).await;
    kpid
}

/// (value, undefined reason, inputs) of each monthly row of `metric` from January to
/// April 2024.
async fn monthly(kpid: &Kpid, metric: &str) -> Vec<(String, String, Vec<(String, String)>)> {
    kpid.metrics()
        .await
        .compute(pb::ComputeRequest {
            metric_id: metric.into(),
            start: ts("2024-01-01T00:00:00Z"),
            end: ts("2024-04-01T00:00:00Z"),
            granularity: pb::Granularity::Month.into(),
            group_by: vec!["none".into()],
            ..Default::default()
        })
        .await
        .expect("Compute")
        .into_inner()
        .rows
        .into_iter()
        .map(|r| {
            let mut inputs: Vec<(String, String)> = r.inputs.into_iter().collect();
            inputs.sort();
            (r.value, r.undefined_reason, inputs)
        })
        .collect()
}

fn defined(value: &str, inputs: &[(&str, &str)]) -> (String, String, Vec<(String, String)>) {
    (
        value.into(),
        String::new(),
        inputs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

#[tokio::test]
async fn deals_convert_at_their_own_dates_and_a_missing_rate_is_undefined_until_sent() {
    let mut records = gbp_rates();
    records.extend([
        // January: 1 000 GBP at 1.15 = 1 150.00, plus 500 EUR (the base) = 1 650.00.
        won("d1", "1000", "GBP", "2024-01-15T00:00:00Z"),
        won("d3", "500", "EUR", "2024-01-20T00:00:00Z"),
        // February: 1 000 GBP at 1.20 = 1 200.00, 200 without a currency (the base), and
        // 100 CHF, for which there is no rate yet.
        won("d2", "1000", "GBP", "2024-02-10T00:00:00Z"),
        won("d4", "200", "", "2024-02-05T00:00:00Z"),
        won("d5", "100", "CHF", "2024-02-20T00:00:00Z"),
        // March: 10 GBP on the last second of March at 1.20 = 12.00.
        won("d6", "10", "GBP", "2024-03-31T23:59:59Z"),
    ]);
    let kpid = serve("EUR", records).await;
    let rows = monthly(&kpid, "sales.revenue").await;
    assert_eq!(rows[0], defined("1650", &[("won_amount", "1650")]));
    // February is undefined, naming the currency and the date; January and March are not.
    assert_eq!(rows[1].0, "");
    assert!(
        rows[1].1.contains("no CHF rate on or before 2024-02-20"),
        "{:?}",
        rows[1]
    );
    assert_eq!(rows[2], defined("12", &[("won_amount", "12")]));
    // Deal counts do not read amounts: February's win rate is defined.
    let win_rate = monthly(&kpid, "sales.win_rate").await;
    assert_eq!(win_rate[1].1, "", "{:?}", win_rate[1]);

    // A CHF rate of 1.05 from 1 February: 1 200.00 + 200 + 105.00 = 1 505.00.
    put_all(
        &kpid,
        vec![fx_rate("chf-feb", "CHF", "2024-02-01T00:00:00Z", "1.05")],
    )
    .await;
    let rows = monthly(&kpid, "sales.revenue").await;
    assert_eq!(rows[1], defined("1505", &[("won_amount", "1505")]));
    // A rate effective after the deal does not convert it: CHF from 21 February only.
    put_all(
        &kpid,
        vec![fx_rate("chf-feb", "CHF", "2024-02-21T00:00:00Z", "1.05")],
    )
    .await;
    let rows = monthly(&kpid, "sales.revenue").await;
    assert!(rows[1].1.contains("no CHF rate on or before 2024-02-20"));
}

#[tokio::test]
async fn mrr_movements_convert_at_their_own_times_and_the_mrr_bridge_holds() {
    let mut records = gbp_rates();
    records.push(customer("c1", "2024-01-10T00:00:00Z", pb::Source::Sales));
    // 100 GBP from 10 January (at 1.15: 115.00), 150 GBP from 15 February (at 1.20:
    // 180.00): the expansion is 180.00 − 115.00 = 65.00, and January's MRR is not
    // revalued when February's rate comes.
    records.push(record(Kind::Subscription(pb::Subscription {
        id: "s1".into(),
        customer_id: "c1".into(),
        started_at: ts("2024-01-10T00:00:00Z"),
        mrr_changes: vec![
            pb::MrrChange {
                at: ts("2024-01-10T00:00:00Z"),
                mrr: "100".into(),
            },
            pb::MrrChange {
                at: ts("2024-02-15T00:00:00Z"),
                mrr: "150".into(),
            },
        ],
        currency: "GBP".into(),
        ..Default::default()
    })));
    let kpid = serve("EUR", records).await;
    let mrr: Vec<String> = monthly(&kpid, "revenue.mrr")
        .await
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(mrr, ["115", "180", "180"]);
    let new: Vec<String> = monthly(&kpid, "revenue.new_mrr")
        .await
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(new, ["115", "0", "0"]);
    let expansion: Vec<String> = monthly(&kpid, "revenue.expansion_mrr")
        .await
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(expansion, ["0", "65", "0"]);
    // mrr at the end of February = at its start + its movements, exactly:
    // 180.00 = 115.00 + 65.00.
    let net_new = monthly(&kpid, "revenue.net_new_mrr").await;
    assert_eq!(net_new[1].0, "65");

    // Without the January rate, the starting MRR cannot be converted: January's MRR and
    // February's expansion (which reads the January level) are undefined; February's MRR
    // (the February level alone, at 1.20) is still 180.00.
    kpid.records()
        .await
        .delete_records(pb::DeleteRecordsRequest {
            keys: vec![pb::RecordKey {
                kind: "fx_rate".into(),
                id: "gbp-jan".into(),
            }],
        })
        .await
        .expect("DeleteRecords");
    let mrr = monthly(&kpid, "revenue.mrr").await;
    assert!(
        mrr[0].1.contains("no GBP rate on or before 2024-01-10"),
        "{mrr:?}"
    );
    assert_eq!(mrr[1].0, "180", "{mrr:?}");
    let expansion = monthly(&kpid, "revenue.expansion_mrr").await;
    assert!(expansion[1]
        .1
        .contains("no GBP rate on or before 2024-01-10"));
}

#[tokio::test]
async fn a_change_of_base_converts_every_amount_again_with_rates_towards_the_new_base() {
    let mut records = gbp_rates();
    records.extend([
        won("d1", "1000", "GBP", "2024-01-15T00:00:00Z"),
        won("d3", "500", "EUR", "2024-01-20T00:00:00Z"),
        won("d4", "200", "", "2024-01-25T00:00:00Z"),
        won("d5", "100", "USD", "2024-01-28T00:00:00Z"),
        fx_rate("usd-jan", "USD", "2024-01-01T00:00:00Z", "0.90"),
    ]);
    let kpid = serve("EUR", records).await;
    // In EUR: 1 150.00 + 500 + 200 + 90.00 = 1 940.00.
    assert_eq!(monthly(&kpid, "sales.revenue").await[0].0, "1940");

    // The base becomes GBP: the GBP deal needs no rate (1 000), the amount without a
    // currency is in the base (200 GBP), and the EUR deal needs a rate towards GBP, which
    // the tenant has not sent yet.
    set_base(&kpid, "GBP").await;
    let rows = monthly(&kpid, "sales.revenue").await;
    assert!(
        rows[0].1.contains("no EUR rate on or before 2024-01-20"),
        "{:?}",
        rows[0]
    );
    // EUR at 0.85 GBP from 1 January. The USD rate was towards EUR: it converts nothing
    // now, so the USD deal waits for a rate towards GBP (never a silent wrong number).
    put_all(
        &kpid,
        vec![fx_rate("eur-jan", "EUR", "2024-01-01T00:00:00Z", "0.85")],
    )
    .await;
    let rows = monthly(&kpid, "sales.revenue").await;
    assert!(
        rows[0].1.contains("no USD rate on or before 2024-01-28"),
        "{:?}",
        rows[0]
    );
    // USD at 0.78 GBP: 1 000 + 425.00 + 200 + 78.00 = 1 703.00.
    put_all(
        &kpid,
        vec![fx_rate("usd-jan", "USD", "2024-01-01T00:00:00Z", "0.78")],
    )
    .await;
    assert_eq!(
        monthly(&kpid, "sales.revenue").await[0],
        defined("1703", &[("won_amount", "1703")])
    );

    // A currency with no rate at all cannot be converted.
    let none = serve("EUR", vec![won("d9", "1", "USD", "2024-01-15T00:00:00Z")]).await;
    let rows = monthly(&none, "sales.revenue").await;
    assert!(rows[0].1.contains("no USD rate on or before 2024-01-15"));
}

#[tokio::test]
async fn unknown_currency_codes_and_bad_rates_are_refused_with_the_records_index() {
    let kpid = Kpid::start();
    let mut lower = won("d2", "10", "gbp", "2024-01-15T00:00:00Z");
    if let Some(Kind::Deal(d)) = &mut lower.record {
        d.currency = "gbp".into();
    }
    let put = put(
        &kpid,
        vec![
            won("d1", "10", "GBP", "2024-01-15T00:00:00Z"),
            lower,
            won("d3", "10", "ABC", "2024-01-15T00:00:00Z"),
            fx_rate("r1", "GBP", "2024-01-01T00:00:00Z", "0"),
            fx_rate("r2", "EURO", "2024-01-01T00:00:00Z", "1.1"),
            fx_rate("r3", "USD", "2024-01-01T00:00:00Z", "0.92"),
        ],
    )
    .await;
    assert_eq!(put.accepted, 2);
    let rejected: Vec<(u64, &str)> = put
        .rejected
        .iter()
        .map(|r| (r.index, r.reason.as_str()))
        .collect();
    assert_eq!(rejected.len(), 4, "{rejected:?}");
    assert_eq!(
        rejected.iter().map(|r| r.0).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert!(rejected[0].1.contains("currency `gbp` is not an ISO 4217"));
    assert!(rejected[1].1.contains("currency `ABC` is not an ISO 4217"));
    assert!(rejected[2].1.contains("rate 0 is not above 0"));
    assert!(rejected[3].1.contains("currency `EURO`"));
}

#[tokio::test]
async fn ndjson_import_reads_currencies_and_rates_without_importer_code() {
    let kpid = Kpid::start();
    set_base(&kpid, "EUR").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.ndjson");
    std::fs::write(
        &file,
        r#"{"fxRate": {"id": "r1", "currency": "GBP", "effectiveAt": "2024-01-01T00:00:00Z", "rate": "1.15"}}
{"deal": {"id": "d1", "owner": "ann", "amount": "1000", "currency": "GBP", "createdAt": "2024-01-01T00:00:00Z", "closedAt": "2024-01-15T00:00:00Z", "status": "won", "kind": "new_business"}}
"#,
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_kpid"))
        .args(["import", "--addr", &kpid.addr.to_string()])
        .arg(&file)
        .output()
        .expect("run kpid import");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // 1 000 GBP at 1.15 = 1 150.00.
    assert_eq!(monthly(&kpid, "sales.revenue").await[0].0, "1150");
}
