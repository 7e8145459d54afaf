//! What the engine's test files share: `test.rate`, a win rate over stored won and lost
//! deals, grouped by owner.

use kpi_core::{
    percent, Dimension, Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor,
    MetricError, Params, Unit, Value,
};

/// `test.rate`: won / (won + lost) × 100.
pub(crate) struct Rate;

/// [`Rate`]'s descriptor.
pub(crate) static RATE: MetricDescriptor = MetricDescriptor {
    id: "test.rate",
    name: "Rate",
    family: "test",
    description: "won / (won + lost) × 100",
    formula: "won / (won + lost) × 100",
    unit: Unit::Percent,
    direction: Direction::HigherIsBetter,
    inputs: &[
        InputSpec::stored("won", "won deals", InputKind::Count, Measure::DealsWon),
        InputSpec::stored("lost", "lost deals", InputKind::Count, Measure::DealsLost),
    ],
    params: &[],
    dimensions: &[Dimension::Owner],
    default_group_by: &[],
};
impl Metric for Rate {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &RATE
    }
    fn evaluate(&self, i: &Inputs, _: &Params) -> Result<Value, MetricError> {
        let (won, lost) = (i.get("won")?, i.get("lost")?);
        percent(won, won + lost, "no deals closed")
    }
}
