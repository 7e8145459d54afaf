//! Checks that DuckDB's dashboard equals kpid's, so the timing comparison is honest.
//!
//! Rows are matched by (month, group). Inputs DuckDB computes exactly (counts, DECIMAL
//! sums) must equal kpid's exactly; those it computes as DOUBLE (durations, means; marked
//! `~`) must agree to nine significant digits. A value DuckDB computes exactly must equal
//! kpid's once rounded like kpid rounds (2 places, half away from zero); a DOUBLE value
//! must lie within half a cent of kpid's rounded one. Both must agree on "undefined". A
//! row one side lacks must have only zero inputs on the other (kpid drops grouped rows
//! whose inputs are all zero).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr as _;

use kpi_core::Decimal;
use kpi_proto::kpi::v1 as pb;
use rust_decimal::RoundingStrategy;
use serde::Deserialize;

/// One row of DuckDB's answer, as `duckdb_dashboard.py` writes it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct DuckRow {
    /// The month, `YYYY-MM-DD`.
    pub(crate) bucket: String,
    /// `dimension=value`, or "" for an ungrouped row.
    pub(crate) group: String,
    /// Input name → value (`~` first for a DOUBLE; null for SQL NULL).
    pub(crate) inputs: BTreeMap<String, Option<String>>,
    /// The value, null when undefined.
    pub(crate) value: Option<String>,
}

/// A number from either side: its value and whether it is exact.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Num {
    value: Decimal,
    exact: bool,
}

fn parse(text: &str) -> Option<Num> {
    let (body, exact) = match text.strip_prefix('~') {
        Some(rest) => (rest, false),
        None => (text, true),
    };
    Decimal::from_str(body)
        .or_else(|_| Decimal::from_scientific(body))
        .ok()
        .map(|value| Num { value, exact })
}

/// kpid's row in comparable form.
struct KpidRow {
    value: Option<Decimal>,
    inputs: BTreeMap<String, Decimal>,
}

fn bucket_text(t: &Option<prost_types::Timestamp>) -> String {
    t.as_ref()
        .and_then(|t| jiff::Timestamp::new(t.seconds, t.nanos).ok())
        .map(|t| t.strftime("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn group_text(group: &BTreeMap<String, String>) -> String {
    group
        .iter()
        .map(|(d, v)| format!("{d}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn kpid_rows(rows: &[pb::Row]) -> Result<BTreeMap<(String, String), KpidRow>, String> {
    let mut out = BTreeMap::new();
    for row in rows {
        let value = if row.value.is_empty() {
            None
        } else {
            Some(
                Decimal::from_str(&row.value)
                    .map_err(|e| format!("kpid value {}: {e}", row.value))?,
            )
        };
        let mut inputs = BTreeMap::new();
        for (name, v) in &row.inputs {
            let d = Decimal::from_str(v).map_err(|e| format!("kpid input {name}={v}: {e}"))?;
            inputs.insert(name.clone(), d);
        }
        out.insert(
            (bucket_text(&row.bucket_start), group_text(&row.group)),
            KpidRow { value, inputs },
        );
    }
    Ok(out)
}

fn tolerance(x: Decimal) -> Decimal {
    // Nine significant digits of the larger of 1 and |x|.
    x.abs().max(Decimal::ONE) * Decimal::new(1, 9)
}

fn input_matches(kpid: Decimal, duck: Num) -> bool {
    if duck.exact {
        kpid == duck.value
    } else {
        (kpid - duck.value).abs() <= tolerance(kpid)
    }
}

fn value_matches(kpid: Decimal, duck: Num) -> bool {
    if duck.exact {
        kpid == duck
            .value
            .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
    } else {
        (kpid - duck.value).abs() <= Decimal::new(5, 3) + tolerance(duck.value)
    }
}

/// What a comparison found.
#[derive(Debug, Default)]
pub(crate) struct Comparison {
    /// Metrics compared.
    pub(crate) metrics: Vec<String>,
    /// Rows compared.
    pub(crate) rows: usize,
    /// Inputs and values compared.
    pub(crate) values: usize,
    /// Disagreements, in words.
    pub(crate) mismatches: Vec<String>,
}

/// Compares DuckDB's rows with kpid's results, for every metric DuckDB answered.
pub(crate) fn compare(
    kpid: &[pb::BatchComputeResult],
    duck: &BTreeMap<String, Vec<DuckRow>>,
) -> Comparison {
    let mut c = Comparison::default();
    let by_id: HashMap<&str, &pb::BatchComputeResult> =
        kpid.iter().map(|r| (r.metric_id.as_str(), r)).collect();
    for (metric, duck_rows) in duck {
        let mut fail = |what: String| c.mismatches.push(format!("{metric} {what}"));
        let Some(result) = by_id.get(metric.as_str()) else {
            fail("is not in kpid's dashboard".into());
            continue;
        };
        if let Some(e) = &result.error {
            fail(format!("failed in kpid: {}", e.message));
            continue;
        }
        let k = match kpid_rows(&result.rows) {
            Ok(k) => k,
            Err(e) => {
                fail(e);
                continue;
            }
        };
        let mut d = BTreeMap::new();
        for row in duck_rows {
            d.insert((row.bucket.clone(), row.group.clone()), row);
        }
        let keys: BTreeSet<&(String, String)> = k.keys().chain(d.keys()).collect();
        for key in keys {
            let at = format!("{} {}", key.0, key.1);
            c.rows += 1;
            match (k.get(key), d.get(key)) {
                (Some(kr), Some(dr)) => {
                    for (name, kv) in &kr.inputs {
                        c.values += 1;
                        match dr.inputs.get(name) {
                            Some(Some(text)) => match parse(text) {
                                Some(dv) if input_matches(*kv, dv) => {}
                                _ => fail(format!("{at}: input {name} kpid={kv} duckdb={text}")),
                            },
                            _ => fail(format!("{at}: input {name} kpid={kv}, DuckDB has none")),
                        }
                    }
                    c.values += 1;
                    match (kr.value, dr.value.as_deref()) {
                        (None, None) => {}
                        (Some(kv), Some(text)) => match parse(text) {
                            Some(dv) if value_matches(kv, dv) => {}
                            _ => fail(format!("{at}: value kpid={kv} duckdb={text}")),
                        },
                        (kv, dv) => fail(format!(
                            "{at}: value kpid={} duckdb={}",
                            kv.map_or("undefined".into(), |v| v.to_string()),
                            dv.unwrap_or("undefined")
                        )),
                    }
                }
                (Some(kr), None) => {
                    if kr.inputs.values().any(|v| !v.is_zero()) {
                        fail(format!("{at}: kpid has a row DuckDB has not"));
                    }
                }
                (None, Some(dr)) => {
                    let zero = dr.inputs.values().all(|v| {
                        v.as_deref()
                            .and_then(parse)
                            .is_some_and(|n| n.value.is_zero())
                    });
                    if !zero {
                        fail(format!("{at}: DuckDB has a row kpid has not"));
                    }
                }
                (None, None) => unreachable!("keys come from one side or the other"),
            }
        }
        c.metrics.push(metric.clone());
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Option<prost_types::Timestamp> {
        let t: jiff::Timestamp = text.parse().unwrap();
        Some(prost_types::Timestamp {
            seconds: t.as_second(),
            nanos: 0,
        })
    }

    fn kpid_row(month: &str, value: &str, inputs: &[(&str, &str)]) -> pb::Row {
        pb::Row {
            bucket_start: ts(month),
            group: BTreeMap::new(),
            value: value.into(),
            undefined_reason: if value.is_empty() {
                "x".into()
            } else {
                String::new()
            },
            inputs: inputs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    fn duck_row(month: &str, value: Option<&str>, inputs: &[(&str, &str)]) -> DuckRow {
        DuckRow {
            bucket: month.into(),
            group: String::new(),
            inputs: inputs
                .iter()
                .map(|(k, v)| (k.to_string(), Some(v.to_string())))
                .collect(),
            value: value.map(str::to_owned),
        }
    }

    fn result(rows: Vec<pb::Row>) -> Vec<pb::BatchComputeResult> {
        vec![pb::BatchComputeResult {
            metric_id: "sales.win_rate".into(),
            rows,
            error: None,
        }]
    }

    #[test]
    fn equal_answers_agree_and_differences_are_named() {
        let kpid = result(vec![
            kpid_row(
                "2024-01-01T00:00:00Z",
                "33.33",
                &[("won", "1"), ("lost", "2")],
            ),
            kpid_row("2024-02-01T00:00:00Z", "", &[("won", "0"), ("lost", "0")]),
        ]);
        let mut duck = BTreeMap::new();
        duck.insert(
            "sales.win_rate".to_owned(),
            vec![
                duck_row(
                    "2024-01-01",
                    Some("~33.333333333333336"),
                    &[("won", "1"), ("lost", "2")],
                ),
                duck_row("2024-02-01", None, &[("won", "0"), ("lost", "0")]),
            ],
        );
        let c = compare(&kpid, &duck);
        assert!(c.mismatches.is_empty(), "{:?}", c.mismatches);
        assert_eq!((c.rows, c.values), (2, 6));

        duck.get_mut("sales.win_rate").unwrap()[0]
            .inputs
            .insert("lost".into(), Some("3".into()));
        duck.get_mut("sales.win_rate").unwrap()[1].value = Some("~0.0".into());
        let c = compare(&kpid, &duck);
        assert_eq!(
            c.mismatches,
            [
                "sales.win_rate 2024-01-01 : input lost kpid=2 duckdb=3",
                "sales.win_rate 2024-02-01 : value kpid=undefined duckdb=~0.0",
            ]
        );
    }

    #[test]
    fn exact_values_compare_after_kpids_rounding() {
        let n = |s: &str| parse(s).unwrap();
        assert!(value_matches(Decimal::new(1001, 2), n("10.005")));
        assert!(!value_matches(Decimal::new(1000, 2), n("10.005")));
        assert!(value_matches(Decimal::new(1000, 2), n("~10.004999")));
        assert!(!value_matches(Decimal::new(1000, 2), n("~10.01")));
        assert!(input_matches(Decimal::new(15, 1), n("1.50")));
        assert!(input_matches(
            Decimal::new(33333333333, 10),
            n("~3.3333333333")
        ));
        assert!(!input_matches(Decimal::new(15, 1), n("1.51")));
        assert_eq!(parse("~1e-05").unwrap().value, Decimal::new(1, 5));
    }

    #[test]
    fn a_missing_row_must_be_all_zero_on_the_other_side() {
        let kpid = result(vec![kpid_row(
            "2024-01-01T00:00:00Z",
            "",
            &[("won", "0"), ("lost", "0")],
        )]);
        let mut duck = BTreeMap::new();
        duck.insert(
            "sales.win_rate".to_owned(),
            vec![duck_row(
                "2024-03-01",
                Some("~50"),
                &[("won", "1"), ("lost", "1")],
            )],
        );
        let c = compare(&kpid, &duck);
        assert_eq!(
            c.mismatches,
            ["sales.win_rate 2024-03-01 : DuckDB has a row kpid has not"]
        );
    }
}
