//! `acme.meetings_per_won_deal`: how many meetings the team holds per deal it wins.

use kpi_core::{
    ratio, Dimension, Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor,
    MetricError, Params, Unit, Value,
};

use crate::measures::MEETINGS_HELD;

/// `acme.meetings_per_won_deal`: meetings / won deals.
pub struct MeetingsPerWonDeal;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "acme.meetings_per_won_deal",
    name: "Meetings per won deal",
    family: "acme",
    description: "Meetings held per deal won in the window. meetings counts activities of type \
                  meeting whose occurred_at is in the window (a team-declared measure); won \
                  counts deals with status won whose closed_at is in the window.",
    formula: "meetings / won",
    unit: Unit::Ratio,
    direction: Direction::LowerIsBetter,
    inputs: &[
        InputSpec::stored(
            "meetings",
            "meetings held in the window",
            InputKind::Count,
            Measure::Custom(&MEETINGS_HELD),
        ),
        InputSpec::stored(
            "won",
            "deals won, closed in the window",
            InputKind::Count,
            Measure::DealsWon,
        ),
    ],
    params: &[],
    // What both an activity and a deal carry.
    dimensions: &[Dimension::Owner, Dimension::ANY_CUSTOMER_ATTRIBUTE],
    default_group_by: &[],
};

impl Metric for MeetingsPerWonDeal {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        let meetings = inputs.get("meetings")?;
        let won = inputs.get("won")?;
        ratio(meetings, won, "no deals were won (won = 0)")
    }
}

kpi_core::register_metric!(MeetingsPerWonDeal);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::Decimal;

    fn evaluate(meetings: i64, won: i64) -> Value {
        let inputs = Inputs::new()
            .with("meetings", Decimal::from(meetings))
            .with("won", Decimal::from(won));
        MeetingsPerWonDeal
            .evaluate(&inputs, &Params::default())
            .unwrap()
    }

    #[test]
    fn worked_example_7_meetings_2_won_is_3_5() {
        assert_eq!(evaluate(7, 2), Value::Defined(Decimal::new(35, 1)));
    }

    #[test]
    fn no_won_deal_is_undefined() {
        assert!(matches!(evaluate(3, 0), Value::Undefined(_)));
    }
}
