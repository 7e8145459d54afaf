//! Property tests over every marketing metric in the registry: calculator mode equals stored
//! mode on the same inputs, a ratio is undefined exactly when its denominator is 0, shares
//! stay in [0, 100], and the `precision` parameter rounds the exact formula value (all four
//! from the shared harness of `kpi_core::testing`); and the inputs CLV reads from the window
//! (years, profit per customer-year) match the catalogue.
//!
//! Each metric's valid inputs and params are derived from one random [`Pool`], respecting
//! its input kinds and the relations between inputs that cannot fail (a part never exceeds
//! its whole, a total over no records is 0, an acquisition cost is not negative). A metric
//! registered without a generator here fails.

use kpi_core::testing::proptest::prelude::*;
use kpi_core::testing::{
    amount, calculator, config, count, is_overflow, n, one_month, params_with_precision, part,
    stored_spec, total, Case, Family, ANY, NON_NEGATIVE, SHARE,
};
use kpi_core::{Decimal, Measure, Value};
use kpi_marketing as _;

/// The marketing family as the shared property tests see it.
const MARKETING: Family<Pool> = Family::new("marketing", pool, case, |p| p.precision, SHARES);

kpi_core::family_properties!(MARKETING);

/// Random raw material each metric's valid inputs and params are derived from.
#[derive(Debug, Clone)]
struct Pool {
    counts: [u32; 4],
    amounts: [Decimal; 4],
    /// A value that may be negative (a net lifetime value).
    signed: Decimal,
    /// Bits choosing optional params.
    pick: u8,
    precision: u32,
}

fn pool() -> BoxedStrategy<Pool> {
    (
        prop::array::uniform4(count()),
        prop::array::uniform4(amount()),
        (amount(), any::<bool>()),
        any::<u8>(),
        0u32..=6,
    )
        .prop_map(
            |(counts, amounts, (size, negative), pick, precision)| Pool {
                counts,
                amounts,
                signed: if negative { -size } else { size },
                pick,
                precision,
            },
        )
        .boxed()
}

/// A gross margin in [0, 1] with two places.
fn margin(x: u32) -> Decimal {
    Decimal::new(i64::from(x % 101), 2)
}

/// Spend category sets to pick from.
const CATEGORIES: [&str; 4] = ["all", "advertising", "advertising,salaries", "tools, other"];

/// Valid inputs for metric `id`, derived from `p`.
fn case(id: &str, p: &Pool) -> Case {
    let [c0, c1, c2, _] = p.counts;
    let [a0, a1, a2, a3] = p.amounts;
    let bit = |i: u8| p.pick & (1 << i) != 0;
    match id {
        "marketing.cac" => Case::new(vec![("spend", a0), ("new_customers", n(c0))])
            .param("categories", CATEGORIES[usize::from(p.pick % 4)])
            .over(n(c0))
            .range(NON_NEGATIVE),
        "marketing.cac_payback_months" => {
            let gm = margin(c2);
            Case::new(vec![("cac", a0), ("new_customer_mrr", a1)])
                .param("gross_margin", gm)
                .over(a1 * gm)
                .range(NON_NEGATIVE)
        }
        // ≥ −100: revenue is never negative, so at worst all the spend is lost.
        "marketing.campaign_roi" => {
            Case::new(vec![("attributed_revenue", a0), ("campaign_spend", a1)])
                .over(a1)
                .range((Some(-100), None))
        }
        "marketing.clv" => {
            let purchases = c0;
            let customers = if purchases == 0 {
                0
            } else {
                1 + c1 % purchases
            };
            let years = if a1.is_zero() { Decimal::ONE } else { a1 };
            Case::new(vec![
                ("revenue", total(a0, purchases)),
                ("purchases", n(purchases)),
                ("customers", n(customers)),
                ("years", years),
                ("lifespan_years", a2),
            ])
            .param_if(bit(0), "lifespan_years", a3)
            .over(n(customers))
            .range(NON_NEGATIVE)
        }
        "marketing.clv_net" => Case::new(vec![
            ("annual_profit_per_customer", a0),
            ("retention_years", a1),
            ("cac", a2),
        ])
        .param_if(bit(1), "retention_years", a3)
        .param_if(bit(2), "gross_margin", margin(c2))
        .range(ANY),
        "marketing.clv_cac_ratio" => Case::new(vec![("clv", p.signed), ("cac", a0)])
            .param("clv", if bit(3) { "clv_net" } else { "clv" })
            .over(a0)
            .range(ANY),
        "marketing.email_click_rate" => {
            Case::new(vec![("clicks", n(part(c1, c0))), ("delivered", n(c0))])
                .over(n(c0))
                .range(SHARE)
        }
        "marketing.email_open_rate" => {
            Case::new(vec![("opens", n(part(c1, c0))), ("delivered", n(c0))])
                .over(n(c0))
                .range(SHARE)
        }
        "marketing.email_revenue" => {
            Case::new(vec![("attributed_revenue", a0)]).range(NON_NEGATIVE)
        }
        "marketing.marketing_sourced_pct" => {
            if bit(4) {
                // Revenue basis: any non-negative amounts, a part of the total.
                let from_marketing = a0 * Decimal::new(i64::from(c1 % 101), 2);
                Case::new(vec![
                    ("from_marketing", from_marketing),
                    ("new_customers", a0),
                ])
                .param("basis", "revenue")
                .over(a0)
                .range(SHARE)
            } else {
                Case::new(vec![
                    ("from_marketing", n(part(c1, c0))),
                    ("new_customers", n(c0)),
                ])
                .param_if(bit(5), "basis", "count")
                .over(n(c0))
                .range(SHARE)
            }
        }
        other => panic!("no input generator for {other}: add one to this file"),
    }
}

/// The shares the catalogue bounds in this family, with their bounds.
const SHARES: &[(&str, i64, i64)] = &[
    ("marketing.email_open_rate", 0, 100),
    ("marketing.email_click_rate", 0, 100),
    ("marketing.marketing_sourced_pct", 0, 100),
];

proptest! {
    #![proptest_config(config())]

    /// Stored CLV spreads the window over years(W): one calendar month is 1/12 of a year,
    /// exactly as a caller giving `years` = 1/12 gets.
    #[test]
    fn clv_reads_years_from_the_window(p in pool()) {
        let metric = kpi_core::registry().unwrap().get("marketing.clv").expect("clv");
        let mut c = case("marketing.clv", &p);
        let twelfth = Decimal::ONE / Decimal::from(12);
        for (name, value) in &mut c.inputs {
            if *name == "years" {
                *value = twelfth;
            }
        }
        let calc = calculator(metric, &c, p.precision);
        let (mut spec, source) = stored_spec(metric, &c, one_month(), &["years"]);
        spec.params = params_with_precision(&c, p.precision);
        let store = kpi_core::registry().unwrap().compute(&spec, Some(&source));
        match (&calc, &store) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(&a[0].value, &b[0].value);
                prop_assert_eq!(b[0].inputs.try_get("years"), Some(twelfth));
            }
            (Err(a), Err(b)) => {
                prop_assert!(is_overflow(a), "{:?}", a);
                prop_assert_eq!(a, b);
            }
            _ => prop_assert!(false, "{:?} vs {:?} for {:?}", calc, store, c),
        }
    }

    /// Stored net CLV reads annual_profit_per_customer as purchase revenue × gross_margin
    /// over the active customers' years in the window (undefined with no active customer).
    #[test]
    fn clv_net_reads_profit_per_customer_year(p in pool()) {
        let metric = kpi_core::registry().unwrap().get("marketing.clv_net").expect("clv_net");
        let c = case("marketing.clv_net", &p);
        let [_, _, _, active] = p.counts;
        let revenue = p.amounts[3];
        let gm = c
            .params
            .get("gross_margin")
            .map_or(Decimal::ONE, |t| t.parse().expect("margin"));
        let (mut spec, mut source) =
            stored_spec(metric, &c, one_month(), &["annual_profit_per_customer"]);
        source.insert(Measure::CustomersActiveInWindow, n(active));
        source.insert(Measure::PurchaseRevenue, revenue);
        spec.params = params_with_precision(&c, p.precision);
        let store = kpi_core::registry().unwrap().compute(&spec, Some(&source));
        if active == 0 {
            prop_assert!(
                matches!(&store, Ok(rows) if matches!(rows[0].value, Value::Undefined(_))),
                "{:?}", store
            );
            return Ok(());
        }
        let customer_years = n(active) * (Decimal::ONE / Decimal::from(12));
        let Some(profit) = revenue.checked_mul(gm).and_then(|x| x.checked_div(customer_years))
        else {
            prop_assert!(matches!(&store, Err(e) if is_overflow(e)), "{:?}", store);
            return Ok(());
        };
        let mut given = c.clone();
        for (name, value) in &mut given.inputs {
            if *name == "annual_profit_per_customer" {
                *value = profit;
            }
        }
        let calc = calculator(metric, &given, p.precision);
        match (&calc, &store) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(&a[0].value, &b[0].value);
                prop_assert_eq!(b[0].inputs.try_get("annual_profit_per_customer"), Some(profit));
            }
            (Err(a), Err(b)) => {
                prop_assert!(is_overflow(a), "{:?}", a);
                prop_assert_eq!(a, b);
            }
            _ => prop_assert!(false, "{:?} vs {:?} for {:?}", calc, store, given),
        }
    }
}
