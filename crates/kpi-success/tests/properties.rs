//! Property tests over every customer-success metric in the registry: calculator mode
//! equals stored mode on the same inputs, a ratio is undefined exactly when its denominator
//! is 0, shares stay in [0, 100] and NPS in [−100, 100], and the `precision` parameter
//! rounds the exact formula value (all four from the shared harness of `kpi_core::testing`);
//! and NPS and CSAT read the survey measures the catalogue names.
//!
//! Each metric's valid inputs and params are derived from one random [`Pool`], respecting
//! its input kinds and the relations between inputs that cannot fail (a part never exceeds
//! its whole, promoters and detractors are some of the responses, a total over no records
//! is 0). A metric registered without a generator here fails.

use kpi_core::testing::proptest::prelude::*;
use kpi_core::testing::{
    amount, calculator, config, count, n, one_month, params_with_precision, part, stored_spec,
    total, Case, Family, NON_NEGATIVE, SHARE,
};
use kpi_core::{Decimal, Measure, SurveyKind};
use kpi_success as _;

/// The customer-success family as the shared property tests see it.
const SUCCESS: Family<Pool> = Family::new("success", pool, case, |p| p.precision, SHARES);

kpi_core::family_properties!(SUCCESS);

/// Random raw material each metric's valid inputs and params are derived from.
#[derive(Debug, Clone)]
struct Pool {
    counts: [u32; 4],
    amount: Decimal,
    /// Chooses the NPS scale.
    five_point_nps: bool,
    precision: u32,
}

fn pool() -> BoxedStrategy<Pool> {
    (
        prop::array::uniform4(count()),
        amount(),
        any::<bool>(),
        0u32..=6,
    )
        .prop_map(|(counts, amount, five_point_nps, precision)| Pool {
            counts,
            amount,
            five_point_nps,
            precision,
        })
        .boxed()
}

/// Valid inputs for metric `id`, derived from `p`.
fn case(id: &str, p: &Pool) -> Case {
    let [c0, c1, c2, c3] = p.counts;
    let a0 = p.amount;
    match id {
        "success.avg_resolution_hours" => Case::new(vec![
            ("resolution_hours_total", total(a0, c0)),
            ("resolved", n(c0)),
        ])
        .over(n(c0))
        .range(NON_NEGATIVE),
        "success.ces" => Case::new(vec![("score_total", total(a0, c0)), ("responses", n(c0))])
            .over(n(c0))
            .range(NON_NEGATIVE),
        "success.cohort_retention" => {
            Case::new(vec![("retained", n(part(c1, c0))), ("cohort_size", n(c0))])
                .over(n(c0))
                .range(SHARE)
        }
        "success.churn_rate" => Case::new(vec![("lost", n(part(c1, c0))), ("at_start", n(c0))])
            .over(n(c0))
            .range(SHARE),
        "success.csat" => {
            let scale = 1 + c2 % 100;
            let threshold = part(c3, scale);
            Case::new(vec![("positive", n(part(c1, c0))), ("responses", n(c0))])
                .param("scale", scale)
                .param("threshold", threshold)
                .over(n(c0))
                .range(SHARE)
        }
        "success.first_response_hours" => Case::new(vec![
            ("response_hours_total", total(a0, c0)),
            ("responded", n(c0)),
        ])
        .over(n(c0))
        .range(NON_NEGATIVE),
        "success.nps" => {
            let promoters = part(c1, c0);
            let detractors = part(c2, c0 - promoters);
            Case::new(vec![
                ("promoters", n(promoters)),
                ("detractors", n(detractors)),
                ("responses", n(c0)),
            ])
            .param("scale", if p.five_point_nps { "5" } else { "10" })
            .over(n(c0))
            .range((Some(-100), Some(100)))
        }
        "success.renewal_rate" => Case::new(vec![("renewed", n(part(c1, c0))), ("due", n(c0))])
            .over(n(c0))
            .range(SHARE),
        "success.repeat_customer_rate" => {
            Case::new(vec![("repeat", n(part(c1, c0))), ("buyers", n(c0))])
                .over(n(c0))
                .range(SHARE)
        }
        "success.retention_rate" => {
            // Existing customers still active at end are some of those active at start;
            // new customers kept come on top of them in at_end.
            let kept = part(c1, c0);
            let new_retained = c2;
            Case::new(vec![
                ("at_end", n(kept) + n(new_retained)),
                ("new_retained", n(new_retained)),
                ("at_start", n(c0)),
            ])
            .over(n(c0))
            .range(SHARE)
        }
        other => panic!("no input generator for {other}: add one to this file"),
    }
}

/// The shares (and the score) the catalogue bounds in this family, with their bounds.
const SHARES: &[(&str, i64, i64)] = &[
    ("success.churn_rate", 0, 100),
    ("success.cohort_retention", 0, 100),
    ("success.retention_rate", 0, 100),
    ("success.renewal_rate", 0, 100),
    ("success.csat", 0, 100),
    ("success.repeat_customer_rate", 0, 100),
    ("success.nps", -100, 100),
];

/// The survey measures the catalogue defines for NPS and CSAT inputs, for the params of `c`.
fn survey_measures(id: &str, c: &Case) -> Vec<(&'static str, Measure)> {
    let responses = |kind, scale, min, max| Measure::SurveyResponses {
        kind,
        scale,
        min,
        max,
    };
    let param = |name: &str| -> u32 { c.params[name].parse().expect("whole param") };
    match id {
        "success.nps" => {
            let scale = param("scale");
            let (promoters, detractors) = if scale == 5 {
                ((4, 5), (1, 2))
            } else {
                ((9, 10), (0, 6))
            };
            vec![
                (
                    "promoters",
                    responses(SurveyKind::Nps, scale, promoters.0, promoters.1),
                ),
                (
                    "detractors",
                    responses(SurveyKind::Nps, scale, detractors.0, detractors.1),
                ),
                ("responses", responses(SurveyKind::Nps, scale, 0, u32::MAX)),
            ]
        }
        "success.csat" => {
            let (scale, threshold) = (param("scale"), param("threshold"));
            vec![
                (
                    "positive",
                    responses(SurveyKind::Csat, scale, threshold, u32::MAX),
                ),
                ("responses", responses(SurveyKind::Csat, scale, 0, u32::MAX)),
            ]
        }
        other => panic!("{other} reads no survey"),
    }
}

proptest! {
    #![proptest_config(config())]

    /// NPS and CSAT read their inputs from the survey measures the catalogue names for the
    /// chosen scale (and threshold), and then equal calculator mode on the same numbers.
    #[test]
    fn surveys_read_the_catalogue_measures(p in pool()) {
        for id in ["success.nps", "success.csat"] {
            let metric = kpi_core::registry().unwrap().get(id).expect("registered");
            let mut c = case(id, &p);
            if id == "success.csat" && c.params["threshold"] == "0" {
                // Every response scores at least 0: positive and responses are one count.
                let responses = c.inputs[1].1;
                c.inputs[0].1 = responses;
            }
            let names: Vec<&str> = c.inputs.iter().map(|(k, _)| *k).collect();
            let (mut spec, mut source) = stored_spec(metric, &c, one_month(), &names);
            for (name, measure) in survey_measures(id, &c) {
                let value = c.inputs.iter().find(|(k, _)| *k == name).expect("input").1;
                source.insert(measure, value);
            }
            spec.params = params_with_precision(&c, p.precision);
            let store = kpi_core::registry().unwrap().compute(&spec, Some(&source));
            let calc = calculator(metric, &c, p.precision);
            prop_assert!(store.is_ok(), "{}: {:?} for {:?}", id, store, c);
            prop_assert!(calc.is_ok(), "{}: {:?} for {:?}", id, calc, c);
            let (store, calc) = (store.unwrap(), calc.unwrap());
            prop_assert_eq!(&store[0].value, &calc[0].value, "{}: {:?}", id, c);
            prop_assert_eq!(&store[0].inputs, &calc[0].inputs, "{}", id);
        }
    }
}
