use kpi_core::{
    percent, Dimension, Direction, Gather, InputKind, InputSpec, Inputs, Measure, Metric,
    MetricDescriptor, MetricError, ParamKind, ParamSpec, Params, SurveyKind, Unit, Value,
};

/// `success.csat`: positive / responses × 100.
pub struct Csat;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "success.csat",
    name: "Customer satisfaction (CSAT)",
    family: "success",
    description: "Share of the CSAT survey responses answered in the window that are positive. \
        Only responses on the chosen scale (scale_max equal to the scale param) are read: \
        responses counts all of them; positive counts those scoring at least the threshold \
        param.",
    formula: "positive / responses × 100",
    unit: Unit::Percent,
    direction: Direction::HigherIsBetter,
    inputs: &[
        InputSpec::custom(
            "positive",
            "CSAT responses in the window on the scale scoring at least the threshold",
            InputKind::Count,
        ),
        InputSpec::custom(
            "responses",
            "CSAT responses in the window on the scale",
            InputKind::Count,
        ),
    ],
    params: &[
        ParamSpec {
            name: "scale",
            description: "the top of the survey's scale (scale_max of the responses read)",
            default: "5",
            kind: ParamKind::Integer { min: 1, max: 100 },
        },
        ParamSpec {
            name: "threshold",
            description: "the lowest score counted as positive; at most the scale",
            default: "4",
            kind: ParamKind::Integer { min: 0, max: 100 },
        },
    ],
    dimensions: &[
        Dimension::Source,
        Dimension::Segment,
        Dimension::ANY_ATTRIBUTE,
        Dimension::ANY_CUSTOMER_ATTRIBUTE,
        Dimension::Cohort,
    ],
    default_group_by: &[],
};

/// The validated (scale, threshold) pair: the threshold must lie on the scale.
fn scale_and_threshold(params: &Params) -> Result<(u32, u32), MetricError> {
    let whole = |name: &str, default: u32| -> Result<u32, MetricError> {
        params.integer(name).map_or(Ok(default), |v| {
            u32::try_from(v).map_err(|_| MetricError::InvalidParam {
                param: name.to_owned(),
                reason: format!("{v} is not a score"),
            })
        })
    };
    let scale = whole("scale", 5)?;
    let threshold = whole("threshold", 4)?;
    if threshold > scale {
        return Err(MetricError::InvalidParam {
            param: "threshold".into(),
            reason: format!(
                "threshold {threshold} is above the scale {scale}: no response could be positive"
            ),
        });
    }
    Ok((scale, threshold))
}

impl Metric for Csat {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, params: &Params) -> Result<Value, MetricError> {
        scale_and_threshold(params)?;
        let positive = inputs.get("positive")?;
        let responses = inputs.get("responses")?;
        kpi_core::at_most(
            "positive",
            positive,
            "responses",
            responses,
            "positive responses are part of all responses",
        )?;
        percent(
            positive,
            responses,
            "no CSAT responses on this scale in the window (responses = 0)",
        )
    }

    fn gather(&self, ctx: &Gather<'_>) -> Result<Inputs, MetricError> {
        let (scale, threshold) = scale_and_threshold(ctx.params())?;
        let mut inputs = ctx.gather_declared(self.descriptor())?;
        let responses = |min| Measure::SurveyResponses {
            kind: SurveyKind::Csat,
            scale,
            min,
            max: u32::MAX,
        };
        for (name, measure) in [
            ("positive", responses(threshold)),
            ("responses", responses(0)),
        ] {
            if !ctx.is_explicit(name) {
                inputs.set(name, ctx.measure(measure)?);
            }
        }
        Ok(inputs)
    }
}

kpi_core::register_metric!(Csat);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;
    use kpi_core::{ComputeError, Decimal, Registry};

    fn csat(positive: i64, responses: i64, raw: &[(&str, &str)]) -> Result<Value, MetricError> {
        evaluate_with(
            &Csat,
            &inputs([("positive", positive), ("responses", responses)]),
            raw,
        )
    }

    fn csat_measure(scale: u32, min: u32) -> Measure {
        Measure::SurveyResponses {
            kind: SurveyKind::Csat,
            scale,
            min,
            max: u32::MAX,
        }
    }

    #[test]
    fn worked_example_scale_10_threshold_6_80_of_100_is_80() {
        assert_defined(csat(80, 100, &[("scale", "10"), ("threshold", "6")]), "80");
    }

    #[test]
    fn defaults_are_scale_5_threshold_4() {
        let p = params(&DESCRIPTOR, &[]);
        assert_eq!(p.integer("scale"), Some(5));
        assert_eq!(p.integer("threshold"), Some(4));
        assert_defined(csat(3, 4, &[]), "75");
    }

    #[test]
    fn rounds_to_two_places() {
        // 2 / 3 × 100 = 66.666… → 66.67
        assert_defined(csat(2, 3, &[]), "66.67");
    }

    #[test]
    fn no_responses_is_undefined() {
        assert!(matches!(csat(0, 0, &[]), Ok(Value::Undefined(_))));
    }

    #[test]
    fn more_positive_than_responses_is_invalid() {
        assert_invalid_input(csat(101, 100, &[]), "positive");
    }

    #[test]
    fn threshold_above_scale_is_an_invalid_param() {
        assert!(matches!(
            csat(1, 2, &[("scale", "5"), ("threshold", "6")]),
            Err(MetricError::InvalidParam { param, .. }) if param == "threshold"
        ));
        // The threshold may equal the scale: only top scores are positive.
        assert_defined(csat(1, 2, &[("scale", "5"), ("threshold", "5")]), "50");
    }

    #[test]
    fn out_of_range_params_are_rejected() {
        let raw = [("scale".to_owned(), "0".to_owned())].into_iter().collect();
        assert!(Params::parse(&DESCRIPTOR, &raw).is_err());
        let raw = [("threshold".to_owned(), "101".to_owned())]
            .into_iter()
            .collect();
        assert!(Params::parse(&DESCRIPTOR, &raw).is_err());
    }

    #[test]
    fn stored_responses_on_the_scale_feed_positive_and_responses() {
        let source = FakeSource::new([(csat_measure(10, 6), 80), (csat_measure(10, 0), 100)]);
        let row = compute_one(
            &[&Csat],
            &spec(
                "success.csat",
                year_2024(),
                &[("scale", "10"), ("threshold", "6")],
                &[],
            ),
            &source,
        );
        assert_eq!(
            row.inputs,
            inputs([("positive", "80"), ("responses", "100")])
        );
        assert_eq!(row.value, Value::Defined(Decimal::from(80)));
    }

    #[test]
    fn default_params_read_scale_5_threshold_4() {
        let source = FakeSource::new([(csat_measure(5, 4), 9), (csat_measure(5, 0), 12)]);
        let row = compute_one(
            &[&Csat],
            &spec("success.csat", year_2024(), &[], &[]),
            &source,
        );
        assert_eq!(row.inputs, inputs([("positive", "9"), ("responses", "12")]));
        assert_eq!(row.value, Value::Defined(Decimal::from(75)));
    }

    #[test]
    fn threshold_above_scale_fails_the_stored_compute_on_the_param() {
        let source = FakeSource::new([(csat_measure(5, 0), 12)]);
        let registry = Registry::from_metrics([&Csat as &'static dyn Metric]).unwrap();
        let err = registry
            .compute(
                &spec("success.csat", year_2024(), &[("threshold", "7")], &[]),
                Some(&source),
            )
            .unwrap_err();
        let ComputeError::InvalidArgument(violations) = err else {
            panic!("expected an invalid argument, got {err:?}");
        };
        assert_eq!(violations[0].field, "params[threshold]");
    }
}
