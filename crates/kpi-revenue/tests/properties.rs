//! Property tests over every revenue metric in the registry: calculator mode equals stored
//! mode on the same inputs, a ratio is undefined exactly when its denominator is 0, amounts
//! stay non-negative, the `precision` parameter rounds the exact formula value, months(W)
//! is read from the window in the request's time zone, and net new MRR is the sum of the
//! five movement metrics computed in the same batch (the first four from the shared harness of
//! `kpi_core::testing`).
//!
//! Each metric's valid inputs are derived from one random [`Pool`], respecting its input
//! kinds and the relations between inputs that cannot fail (MRR with no paying customer is
//! 0). A metric registered without a generator here fails.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::ToSpan;
use kpi_core::testing::proptest::prelude::*;
use kpi_core::testing::{
    amount, calculator, config, count, is_overflow, n, one_month, params_with_precision,
    stored_spec, total, Case, FakeSource, Family, ANY, NON_NEGATIVE,
};
use kpi_core::{ComputeSpec, Decimal, Measure, Window};
use kpi_revenue as _;

/// The revenue family as the shared property tests see it.
const REVENUE: Family<Pool> = Family::new("revenue", pool, case, |p| p.precision, SHARES);

kpi_core::family_properties!(REVENUE);

/// Random raw material each metric's valid inputs are derived from.
#[derive(Debug, Clone)]
struct Pool {
    count: u32,
    amounts: [Decimal; 5],
    precision: u32,
}

fn pool() -> BoxedStrategy<Pool> {
    (count(), prop::array::uniform5(amount()), 0u32..=6)
        .prop_map(|(count, amounts, precision)| Pool {
            count,
            amounts,
            precision,
        })
        .boxed()
}

/// Valid inputs for metric `id`, derived from `p`.
fn case(id: &str, p: &Pool) -> Case {
    let c0 = p.count;
    let [a0, a1, a2, a3, a4] = p.amounts;
    match id {
        "revenue.arpa" => Case::new(vec![("mrr", total(a0, c0)), ("paying_customers", n(c0))])
            .over(n(c0))
            .range(NON_NEGATIVE),
        // Above 100 when the cohort expanded.
        "revenue.cohort_mrr_retention" => Case::new(vec![("mrr", a0), ("starting_mrr", a1)])
            .over(a1)
            .range(NON_NEGATIVE),
        "revenue.churned_mrr" => Case::new(vec![("churned_mrr", a0)]).range(NON_NEGATIVE),
        "revenue.contraction_mrr" => Case::new(vec![("contraction_mrr", a0)]).range(NON_NEGATIVE),
        "revenue.expansion_mrr" => Case::new(vec![("expansion_mrr", a0)]).range(NON_NEGATIVE),
        "revenue.mrr" => Case::new(vec![("mrr", a0)]).range(NON_NEGATIVE),
        // Can exceed 100 (MRR expanded, then lost, within the window).
        "revenue.mrr_churn_rate" => Case::new(vec![
            ("churned_mrr", a0),
            ("contraction_mrr", a1),
            ("mrr_at_start", a2),
        ])
        .over(a2)
        .range(NON_NEGATIVE),
        "revenue.net_new_mrr" => Case::new(vec![
            ("new_mrr", a0),
            ("expansion_mrr", a1),
            ("reactivation_mrr", a4),
            ("contraction_mrr", a2),
            ("churned_mrr", a3),
        ])
        .range(ANY),
        "revenue.new_customer_revenue" => {
            Case::new(vec![("new_customer_revenue", a0)]).range(NON_NEGATIVE)
        }
        "revenue.new_mrr" => Case::new(vec![("new_mrr", a0)]).range(NON_NEGATIVE),
        "revenue.reactivation_mrr" => Case::new(vec![("reactivation_mrr", a0)]).range(NON_NEGATIVE),
        "revenue.total_monthly_revenue" => {
            Case::new(vec![("mrr", a0), ("non_recurring", a1), ("months", a2)])
                .over(a2)
                .range(NON_NEGATIVE)
        }
        other => panic!("no input generator for {other}: add one to this file"),
    }
}

/// The catalogue bounds no share to [0, 100] in this family (MRR churn can exceed 100).
const SHARES: &[(&str, i64, i64)] = &[];

/// Zones whose local midnight always exists (DST changes at 01:00–03:00, or none).
fn time_zone() -> impl Strategy<Value = TimeZone> {
    prop::sample::select(vec![
        "UTC",
        "Europe/Paris",
        "America/New_York",
        "Australia/Sydney",
        "Asia/Tokyo",
    ])
    .prop_map(|name| {
        if name == "UTC" {
            TimeZone::UTC
        } else {
            TimeZone::get(name).expect("bundled time zone")
        }
    })
}

proptest! {
    #![proptest_config(config())]

    /// Stored total monthly revenue reads months(W) in the request's zone: a window from
    /// the first of a month to the first of a month k months later (local midnights) is k
    /// months, across DST changes; a window of d whole days not on a month start is
    /// d × 12 / 365 months.
    #[test]
    fn total_monthly_revenue_reads_months_from_the_window(
        p in pool(),
        tz in time_zone(),
        year in 1995i16..2050,
        month in 1i8..=12,
        day in prop_oneof![Just(1i8), 2i8..=28],
        length in 1i64..=24,
    ) {
        let metric = kpi_core::registry().unwrap().get("revenue.total_monthly_revenue").unwrap();
        let first = Date::new(year, month, day).expect("valid date");
        let last = if day == 1 {
            first.checked_add(length.months())
        } else {
            first.checked_add((length * 10).days())
        }
        .expect("in range");
        let local = |d: Date| d.to_zoned(tz.clone()).expect("in range").timestamp();
        let window = Window::new(local(first), local(last)).expect("window");
        let months = if day == 1 {
            Decimal::from(length)
        } else {
            // days(W) × 12 / 365, days(W) being elapsed time (a DST day is 23 or 25 hours)
            window.days() * Decimal::from(12) / Decimal::from(365)
        };
        let mut c = case("revenue.total_monthly_revenue", &p);
        c.inputs[2].1 = months;
        let (mut spec, source) = stored_spec(metric, &c, window, &["months"]);
        spec.time_zone = tz.clone();
        spec.params = params_with_precision(&c, p.precision);
        let store = kpi_core::registry().unwrap().compute(&spec, Some(&source));
        let calc = calculator(metric, &c, p.precision);
        match (&calc, &store) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(b[0].inputs.try_get("months"), Some(months));
                prop_assert_eq!(&a[0].value, &b[0].value);
            }
            (Err(a), Err(b)) => {
                prop_assert!(is_overflow(a), "{:?}", a);
                prop_assert_eq!(a, b);
            }
            _ => prop_assert!(false, "{:?} vs {:?} for {:?}", calc, store, c),
        }
    }

    /// In one stored batch, net new MRR equals new + expansion + reactivation −
    /// contraction − churned MRR as the five movement metrics answer them.
    #[test]
    fn net_new_mrr_is_the_sum_of_the_movements(p in pool()) {
        let [new, expansion, contraction, churned, reactivation] = p.amounts;
        let source = FakeSource::new([
            (Measure::NewMrr, new),
            (Measure::ExpansionMrr, expansion),
            (Measure::ReactivationMrr, reactivation),
            (Measure::ContractionMrr, contraction),
            (Measure::ChurnedMrr, churned),
        ]);
        let ids = [
            "revenue.net_new_mrr",
            "revenue.new_mrr",
            "revenue.expansion_mrr",
            "revenue.contraction_mrr",
            "revenue.churned_mrr",
            "revenue.reactivation_mrr",
        ];
        let specs: Vec<ComputeSpec> = ids
            .iter()
            .map(|id| {
                let mut spec = ComputeSpec::new(id, Some(one_month()));
                spec.params.insert("precision".into(), "28".into());
                spec
            })
            .collect();
        let answers = kpi_core::registry().unwrap().compute_batch(&specs, Some(&source));
        let values: Vec<Decimal> = answers
            .into_iter()
            .zip(ids)
            .map(|(rows, id)| {
                let rows = rows.unwrap_or_else(|e| panic!("{id}: {e:?}"));
                rows[0].value.as_decimal().unwrap_or_else(|| panic!("{id} undefined"))
            })
            .collect();
        prop_assert_eq!(
            values[0],
            values[1] + values[2] + values[5] - values[3] - values[4]
        );
    }
}
