use kpi_core::{
    ratio, Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor, MetricError,
    Params, Unit, Value,
};

/// `sales.revenue_per_rep`: won_amount / reps.
pub struct RevenuePerRep;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "sales.revenue_per_rep",
    name: "Revenue per rep",
    family: "sales",
    description: "Won revenue per sales rep who closed deals in the window. won_amount is the \
                  sum of `amount` of the deals with status won whose closed_at is in the window; \
                  reps counts the distinct owners of the deals (won or lost) whose closed_at is \
                  in the window.",
    formula: "won_amount / reps",
    unit: Unit::Currency,
    direction: Direction::HigherIsBetter,
    inputs: &[
        InputSpec::stored(
            "won_amount",
            "sum of the amounts of deals won, closed in the window",
            InputKind::NonNegative,
            Measure::WonAmount,
        ),
        InputSpec::stored(
            "reps",
            "distinct owners of deals closed (won or lost) in the window",
            InputKind::Count,
            Measure::ClosingReps,
        ),
    ],
    params: &[],
    dimensions: crate::DEAL_DIMENSIONS,
    default_group_by: &[],
};

impl Metric for RevenuePerRep {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        let won_amount = inputs.get("won_amount")?;
        let reps = inputs.get("reps")?;
        crate::total_needs_records("won_amount", won_amount, "reps", reps)?;
        ratio(
            won_amount,
            reps,
            "no rep closed a deal in the window (reps = 0)",
        )
    }
}

kpi_core::register_metric!(RevenuePerRep);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;

    fn revenue_per_rep(won_amount: &str, reps: &str) -> Result<Value, MetricError> {
        evaluate_with(
            &RevenuePerRep,
            &inputs([("won_amount", won_amount), ("reps", reps)]),
            &[],
        )
    }

    #[test]
    fn revenue_split_over_closing_reps() {
        // 90 000 won by 4 reps who closed deals → 22 500
        assert_defined(revenue_per_rep("90000", "4"), "22500");
    }

    #[test]
    fn reps_who_only_lost_still_count() {
        // a rep with only lost deals closes nothing won: 0 over 1 rep → 0
        assert_defined(revenue_per_rep("0", "1"), "0");
    }

    #[test]
    fn rounds_to_two_places() {
        // 1 000 / 3 = 333.333… → 333.33
        assert_defined(revenue_per_rep("1000", "3"), "333.33");
    }

    #[test]
    fn precision_param_sets_the_places() {
        let given = inputs([("won_amount", "1000"), ("reps", "3")]);
        assert_defined(
            evaluate_with(&RevenuePerRep, &given, &[("precision", "3")]),
            "333.333",
        );
    }

    #[test]
    fn no_reps_is_undefined() {
        assert_undefined(
            revenue_per_rep("0", "0"),
            "no rep closed a deal in the window (reps = 0)",
        );
    }

    #[test]
    fn revenue_without_reps_is_invalid() {
        assert_invalid_input(revenue_per_rep("500", "0"), "won_amount");
        assert_invalid_input(revenue_per_rep("500", "1.5"), "reps");
    }

    #[test]
    fn stored_deals_feed_the_inputs() {
        let fake = FakeSource::new([(Measure::WonAmount, "90000"), (Measure::ClosingReps, "4")]);
        let row = compute_one(
            &[&RevenuePerRep],
            &spec("sales.revenue_per_rep", q1_2024(), &[], &[]),
            &fake,
        );
        assert_eq!(row.inputs, inputs([("won_amount", "90000"), ("reps", "4")]));
        assert_eq!(row.value, Value::Defined(d("22500")));
    }
}
