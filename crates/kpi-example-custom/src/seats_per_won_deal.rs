//! `acme.seats_per_won_deal`: how many seats a won deal sells, on average.

use kpi_core::{
    ratio, Dimension, Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor,
    MetricError, Params, Unit, Value,
};

use crate::measures::SEATS_WON;

/// `acme.seats_per_won_deal`: seats sold on won deals / won deals.
pub struct SeatsPerWonDeal;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "acme.seats_per_won_deal",
    name: "Seats per won deal",
    family: "acme",
    description: "Seats sold per deal won in the window. seats sums the decimal attribute seats \
                  of deals with status won whose closed_at is in the window (a team-declared \
                  measure; a won deal without it adds 0 seats but counts as won); won counts \
                  those deals.",
    formula: "seats / won",
    unit: Unit::Ratio,
    direction: Direction::HigherIsBetter,
    inputs: &[
        InputSpec::stored(
            "seats",
            "seats of won deals closed in the window",
            InputKind::NonNegative,
            Measure::Custom(&SEATS_WON),
        ),
        InputSpec::stored(
            "won",
            "deals won, closed in the window",
            InputKind::Count,
            Measure::DealsWon,
        ),
    ],
    params: &[],
    dimensions: &[
        Dimension::Owner,
        Dimension::ANY_ATTRIBUTE,
        Dimension::ANY_CUSTOMER_ATTRIBUTE,
    ],
    default_group_by: &[],
};

impl Metric for SeatsPerWonDeal {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        let seats = inputs.get("seats")?;
        let won = inputs.get("won")?;
        ratio(seats, won, "no deals were won (won = 0)")
    }
}

kpi_core::register_metric!(SeatsPerWonDeal);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::Decimal;

    fn evaluate(seats: Decimal, won: i64) -> Value {
        let inputs = Inputs::new()
            .with("seats", seats)
            .with("won", Decimal::from(won));
        SeatsPerWonDeal
            .evaluate(&inputs, &Params::default())
            .unwrap()
    }

    #[test]
    fn worked_example_25_5_seats_3_won_is_8_5() {
        assert_eq!(
            evaluate(Decimal::new(255, 1), 3),
            Value::Defined(Decimal::new(85, 1))
        );
    }

    #[test]
    fn no_won_deal_is_undefined() {
        assert!(matches!(evaluate(Decimal::from(3), 0), Value::Undefined(_)));
    }
}
