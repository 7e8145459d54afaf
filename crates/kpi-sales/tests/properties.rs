//! Property tests over every sales metric in the registry: calculator mode equals stored
//! mode on the same inputs, a ratio is undefined exactly when its denominator is 0, shares
//! stay in [0, 100], and the `precision` parameter rounds the exact formula value (the
//! shared harness of `kpi_core::testing`).
//!
//! Each metric's valid inputs are derived from one random [`Pool`], respecting its input
//! kinds and the relations between inputs that cannot fail (a part never exceeds its whole,
//! a total over no records is 0). A metric registered without a generator here fails.

use kpi_core::testing::proptest::prelude::*;
use kpi_core::testing::{amount, count, n, part, total, Case, Family, NON_NEGATIVE, SHARE};
use kpi_core::Decimal;
use kpi_sales as _;

/// The sales family as the shared property tests see it.
const SALES: Family<Pool> = Family::new("sales", pool, case, |p| p.precision, SHARES);

kpi_core::family_properties!(SALES);

/// Random raw material each metric's valid inputs are derived from.
#[derive(Debug, Clone)]
struct Pool {
    counts: [u32; 2],
    amounts: [Decimal; 2],
    precision: u32,
}

fn pool() -> BoxedStrategy<Pool> {
    (
        prop::array::uniform2(count()),
        prop::array::uniform2(amount()),
        0u32..=6,
    )
        .prop_map(|(counts, amounts, precision)| Pool {
            counts,
            amounts,
            precision,
        })
        .boxed()
}

/// Valid inputs for metric `id`, derived from `p`.
fn case(id: &str, p: &Pool) -> Case {
    let [c0, c1] = p.counts;
    let [a0, a1] = p.amounts;
    match id {
        "sales.win_rate" => Case::new(vec![("won", n(c0)), ("lost", n(c1))])
            .over(n(c0) + n(c1))
            .range(SHARE),
        "sales.average_deal_size" => Case::new(vec![("won_amount", total(a0, c0)), ("won", n(c0))])
            .over(n(c0))
            .range(NON_NEGATIVE),
        "sales.sales_cycle_days" => {
            Case::new(vec![("cycle_days_total", total(a0, c0)), ("won", n(c0))])
                .over(n(c0))
                .range(NON_NEGATIVE)
        }
        "sales.stage_duration_days" => Case::new(vec![
            ("stage_days_total", total(a0, c0)),
            ("stage_exits", n(c0)),
        ])
        .over(n(c0))
        .range(NON_NEGATIVE),
        // Can exceed 100: selling more than the quota.
        "sales.quota_attainment" => Case::new(vec![("won_amount", a0), ("quota", a1)])
            .over(a1)
            .range(NON_NEGATIVE),
        "sales.revenue" => Case::new(vec![("won_amount", a0)]).range(NON_NEGATIVE),
        "sales.revenue_per_rep" => Case::new(vec![("won_amount", total(a0, c0)), ("reps", n(c0))])
            .over(n(c0))
            .range(NON_NEGATIVE),
        "sales.leads_created" => Case::new(vec![("leads", n(c0))]).range(NON_NEGATIVE),
        "sales.activities" => Case::new(vec![("activities", n(c0))]).range(NON_NEGATIVE),
        "sales.lead_conversion_rate" => {
            Case::new(vec![("converted", n(part(c1, c0))), ("leads", n(c0))])
                .over(n(c0))
                .range(SHARE)
        }
        "sales.upsell_rate" => Case::new(vec![("upsold", n(part(c1, c0))), ("customers", n(c0))])
            .over(n(c0))
            .range(SHARE),
        other => panic!("no input generator for {other}: add one to this file"),
    }
}

/// The shares the catalogue bounds in this family, with their bounds.
const SHARES: &[(&str, i64, i64)] = &[
    ("sales.win_rate", 0, 100),
    ("sales.lead_conversion_rate", 0, 100),
    ("sales.upsell_rate", 0, 100),
];
