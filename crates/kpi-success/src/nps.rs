use kpi_core::{
    percent, Dimension, Direction, Gather, InputKind, InputSpec, Inputs, Measure, Metric,
    MetricDescriptor, MetricError, ParamKind, ParamSpec, Params, SurveyKind, Unit, Value,
};

/// `success.nps`: (promoters − detractors) / responses × 100.
pub struct Nps;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "success.nps",
    name: "Net promoter score",
    family: "success",
    description: "Net promoter score of the NPS survey responses answered in the window, from \
        −100 (all detractors) to 100 (all promoters). Only responses on the chosen scale \
        (scale_max equal to the scale param) are read: responses counts all of them; \
        promoters counts scores 9–10 on scale 10 or 4–5 on scale 5; detractors counts \
        scores 0–6 on scale 10 or 1–2 on scale 5. The rest are passives.",
    formula: "(promoters − detractors) / responses × 100",
    unit: Unit::Score,
    direction: Direction::HigherIsBetter,
    inputs: &[
        InputSpec::custom(
            "promoters",
            "NPS responses in the window scoring 9–10 (scale 10) or 4–5 (scale 5)",
            InputKind::Count,
        ),
        InputSpec::custom(
            "detractors",
            "NPS responses in the window scoring 0–6 (scale 10) or 1–2 (scale 5)",
            InputKind::Count,
        ),
        InputSpec::custom(
            "responses",
            "NPS responses in the window on the chosen scale",
            InputKind::Count,
        ),
    ],
    params: &[ParamSpec {
        name: "scale",
        description: "the survey's scale: 10 (promoters 9–10, detractors 0–6) or 5 \
            (promoters 4–5, detractors 1–2)",
        default: "10",
        kind: ParamKind::Choice(&["10", "5"]),
    }],
    dimensions: &[
        Dimension::Source,
        Dimension::Segment,
        Dimension::ANY_ATTRIBUTE,
        Dimension::ANY_CUSTOMER_ATTRIBUTE,
        Dimension::Cohort,
    ],
    default_group_by: &[],
};

/// The survey-response measures of promoters, detractors and all responses for a scale.
fn measures(params: &Params) -> Result<[(&'static str, Measure); 3], MetricError> {
    let (scale, promoters, detractors) = match params.choice("scale").unwrap_or("10") {
        "10" => (10, (9, 10), (0, 6)),
        "5" => (5, (4, 5), (1, 2)),
        other => {
            return Err(MetricError::InvalidParam {
                param: "scale".into(),
                reason: format!("`{other}` is not a supported NPS scale; use 10 or 5"),
            })
        }
    };
    let responses = |(min, max)| Measure::SurveyResponses {
        kind: SurveyKind::Nps,
        scale,
        min,
        max,
    };
    Ok([
        ("promoters", responses(promoters)),
        ("detractors", responses(detractors)),
        ("responses", responses((0, u32::MAX))),
    ])
}

impl Metric for Nps {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        let promoters = inputs.get("promoters")?;
        let detractors = inputs.get("detractors")?;
        let responses = inputs.get("responses")?;
        let rated = promoters
            .checked_add(detractors)
            .ok_or_else(|| MetricError::Overflow("promoters + detractors".into()))?;
        if rated > responses {
            return Err(MetricError::InvalidInput {
                input: "responses".into(),
                reason: format!(
                    "{promoters} promoters + {detractors} detractors is more than the \
                     {responses} responses they are part of"
                ),
            });
        }
        // |promoters − detractors| ≤ responses, so the difference cannot overflow.
        percent(
            promoters - detractors,
            responses,
            "no NPS responses on this scale in the window (responses = 0)",
        )
    }

    fn gather(&self, ctx: &Gather<'_>) -> Result<Inputs, MetricError> {
        let mut inputs = ctx.gather_declared(self.descriptor())?;
        for (name, measure) in measures(ctx.params())? {
            if !ctx.is_explicit(name) {
                inputs.set(name, ctx.measure(measure)?);
            }
        }
        Ok(inputs)
    }
}

kpi_core::register_metric!(Nps);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;
    use kpi_core::Decimal;

    fn nps(promoters: i64, detractors: i64, responses: i64) -> Result<Value, MetricError> {
        evaluate_with(
            &Nps,
            &inputs([
                ("promoters", promoters),
                ("detractors", detractors),
                ("responses", responses),
            ]),
            &[],
        )
    }

    fn nps_measure(scale: u32, min: u32, max: u32) -> Measure {
        Measure::SurveyResponses {
            kind: SurveyKind::Nps,
            scale,
            min,
            max,
        }
    }

    #[test]
    fn worked_example_5_promoters_3_passives_2_detractors_is_30() {
        // responses = 5 + 3 + 2 = 10; (5 − 2) / 10 × 100 = 30
        assert_defined(nps(5, 2, 10), "30");
    }

    #[test]
    fn can_be_negative_down_to_minus_100() {
        assert_defined(nps(1, 3, 10), "-20");
        assert_defined(nps(0, 4, 4), "-100");
        assert_defined(nps(4, 0, 4), "100");
    }

    #[test]
    fn rounds_to_two_places() {
        // (2 − 1) / 3 × 100 = 33.333… → 33.33; (1 − 2) / 3 × 100 → −33.33
        assert_defined(nps(2, 1, 3), "33.33");
        assert_defined(nps(1, 2, 3), "-33.33");
    }

    #[test]
    fn no_responses_is_undefined() {
        assert!(matches!(nps(0, 0, 0), Ok(Value::Undefined(_))));
    }

    #[test]
    fn more_promoters_and_detractors_than_responses_is_invalid() {
        assert_invalid_input(nps(6, 5, 10), "responses");
        assert!(matches!(
            nps(1, 0, 0),
            Err(MetricError::InvalidInput { .. })
        ));
    }

    #[test]
    fn unknown_scale_is_rejected_by_params() {
        let raw = [("scale".to_owned(), "7".to_owned())].into_iter().collect();
        assert!(Params::parse(&DESCRIPTOR, &raw).is_err());
    }

    #[test]
    fn scale_10_reads_promoters_9_to_10_and_detractors_0_to_6() {
        let source = FakeSource::new([
            (nps_measure(10, 9, 10), 5),
            (nps_measure(10, 0, 6), 2),
            (nps_measure(10, 0, u32::MAX), 10),
        ]);
        let row = compute_one(
            &[&Nps],
            &spec("success.nps", year_2024(), &[], &[]),
            &source,
        );
        assert_eq!(
            row.inputs,
            inputs([("detractors", "2"), ("promoters", "5"), ("responses", "10")])
        );
        assert_eq!(row.value, Value::Defined(Decimal::from(30)));
    }

    #[test]
    fn scale_5_reads_promoters_4_to_5_and_detractors_1_to_2() {
        let source = FakeSource::new([
            (nps_measure(5, 4, 5), 3),
            (nps_measure(5, 1, 2), 4),
            (nps_measure(5, 0, u32::MAX), 8),
        ]);
        let row = compute_one(
            &[&Nps],
            &spec("success.nps", year_2024(), &[("scale", "5")], &[]),
            &source,
        );
        assert_eq!(
            row.inputs,
            inputs([("detractors", "4"), ("promoters", "3"), ("responses", "8")])
        );
        // (3 − 4) / 8 × 100 = −12.5
        assert_eq!(row.value, Value::Defined(Decimal::new(-125, 1)));
    }

    #[test]
    fn explicit_responses_override_the_stored_count() {
        // The all-responses measure is absent: reading it would fail the compute.
        let source = FakeSource::new([(nps_measure(10, 9, 10), 5), (nps_measure(10, 0, 6), 2)]);
        let row = compute_one(
            &[&Nps],
            &spec("success.nps", year_2024(), &[], &[("responses", "20")]),
            &source,
        );
        assert_eq!(
            row.inputs,
            inputs([("detractors", "2"), ("promoters", "5"), ("responses", "20")])
        );
        assert_eq!(row.value, Value::Defined(Decimal::from(15)));
    }
}
