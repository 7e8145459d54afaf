use kpi_core::{
    ratio, Dimension, Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor,
    MetricError, Params, SurveyKind, Unit, Value,
};

/// `success.ces`: score_total / responses.
pub struct Ces;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "success.ces",
    name: "Customer effort score (CES)",
    family: "success",
    description: "Mean score of the CES survey responses answered in the window, on the \
        survey's own scale (higher = more agreement that it was easy). score_total sums the \
        scores of CES responses in the window; responses counts them, on any scale.",
    formula: "score_total / responses",
    unit: Unit::Score,
    direction: Direction::HigherIsBetter,
    inputs: &[
        InputSpec::stored(
            "score_total",
            "sum of the scores of CES responses in the window",
            InputKind::NonNegative,
            Measure::SurveyScoreTotal(SurveyKind::Ces),
        ),
        InputSpec::stored(
            "responses",
            "CES responses in the window",
            InputKind::Count,
            Measure::SurveyResponses {
                kind: SurveyKind::Ces,
                scale: 0,
                min: 0,
                max: u32::MAX,
            },
        ),
    ],
    params: &[],
    dimensions: &[
        Dimension::Source,
        Dimension::Segment,
        Dimension::ANY_ATTRIBUTE,
        Dimension::ANY_CUSTOMER_ATTRIBUTE,
        Dimension::Cohort,
    ],
    default_group_by: &[],
};

impl Metric for Ces {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        let score_total = inputs.get("score_total")?;
        let responses = inputs.get("responses")?;
        ratio(
            score_total,
            responses,
            "no CES responses in the window (responses = 0)",
        )
    }
}

kpi_core::register_metric!(Ces);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;
    use kpi_core::Decimal;

    fn ces(score_total: &str, responses: i64) -> Result<Value, MetricError> {
        evaluate_with(
            &Ces,
            &inputs([
                ("score_total", d(score_total)),
                ("responses", Decimal::from(responses)),
            ]),
            &[],
        )
    }

    #[test]
    fn mean_score_of_responses() {
        // Scores 5, 6 and 7 on a 1–7 scale: 18 / 3 = 6
        assert_defined(ces("18", 3), "6");
        // 4 responses totalling 22.5 → 5.625 → 5.63
        assert_defined(ces("22.5", 4), "5.63");
    }

    #[test]
    fn rounds_to_two_places() {
        // 11 / 3 = 3.666… → 3.67
        assert_defined(ces("11", 3), "3.67");
    }

    #[test]
    fn no_responses_is_undefined() {
        assert!(matches!(ces("0", 0), Ok(Value::Undefined(_))));
    }

    #[test]
    fn negative_total_is_rejected() {
        assert_invalid_input(ces("-1", 3), "score_total");
    }

    #[test]
    fn stored_measures_feed_score_total_and_responses() {
        let source = FakeSource::new([(
            Measure::SurveyResponses {
                kind: SurveyKind::Ces,
                scale: 0,
                min: 0,
                max: u32::MAX,
            },
            8,
        )])
        .with(Measure::SurveyScoreTotal(SurveyKind::Ces), "43.5");
        let row = compute_one(
            &[&Ces],
            &spec("success.ces", year_2024(), &[], &[]),
            &source,
        );
        assert_eq!(
            row.inputs,
            inputs([("responses", "8"), ("score_total", "43.5")])
        );
        // 43.5 / 8 = 5.4375 → 5.44
        assert_eq!(row.value, Value::Defined(Decimal::new(544, 2)));
    }
}
