//! An example of a team's own KPI crate: `acme.weighted_pipeline`, the open pipeline weighted
//! by the probability of closing from each stage; and two metrics over measures the team
//! declares itself (`measures.rs`): `acme.meetings_per_won_deal` (activities) and
//! `acme.seats_per_won_deal` (a decimal deal attribute summed).
//!
//! Everything a custom metric needs comes from `kpi-core`: implement [`kpi_core::Metric`],
//! register it with [`kpi_core::register_metric!`], and link the crate into a kpid binary
//! (see `src/main.rs` and the README beside this file).

pub mod measures;
mod meetings_per_won_deal;
mod seats_per_won_deal;

pub use meetings_per_won_deal::MeetingsPerWonDeal;
pub use seats_per_won_deal::SeatsPerWonDeal;

use kpi_core::{
    Decimal, Dimension, Direction, Gather, InputKind, InputSpec, Inputs, Measure, Metric,
    MetricDescriptor, MetricError, ParamKind, ParamSpec, Params, Unit, Value,
};

/// `acme.weighted_pipeline`: Σ over stages of open deal amount × stage probability.
pub struct WeightedPipeline;

/// The stages this team's pipeline uses, each with the parameter that holds its probability.
const STAGES: [(&str, &str); 4] = [
    ("qualification", "p_qualification"),
    ("demo", "p_demo"),
    ("proposal", "p_proposal"),
    ("negotiation", "p_negotiation"),
];

const fn probability(name: &'static str, stage: &'static str, default: &'static str) -> ParamSpec {
    ParamSpec {
        name,
        description: stage,
        default,
        kind: ParamKind::Decimal { min: "0", max: "1" },
    }
}

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "acme.weighted_pipeline",
    name: "Weighted pipeline",
    family: "acme",
    description: "Open deals at the window's end weighted by the probability of closing from \
                  their current stage. open_amount is the amount of deals created before the \
                  end and still open at it; weighted_amount sums each stage's open amount times \
                  that stage's probability parameter (stages not listed weigh 0). Each row also \
                  reports every stage's open amount as `open_amount.<stage>`.",
    formula: "weighted_amount = Σ open_amount(stage) × probability(stage)",
    unit: Unit::Currency,
    direction: Direction::HigherIsBetter,
    inputs: &[
        InputSpec::stored(
            "open_amount",
            "amount of deals open at the end",
            InputKind::NonNegative,
            Measure::OpenAmount,
        ),
        InputSpec::custom(
            "weighted_amount",
            "open amount weighted by stage probability",
            InputKind::NonNegative,
        ),
    ],
    params: &[
        probability(
            "p_qualification",
            "probability of closing from qualification",
            "0.1",
        ),
        probability("p_demo", "probability of closing from demo", "0.3"),
        probability("p_proposal", "probability of closing from proposal", "0.6"),
        probability(
            "p_negotiation",
            "probability of closing from negotiation",
            "0.8",
        ),
    ],
    dimensions: &[Dimension::Owner, Dimension::Campaign, Dimension::Channel],
    default_group_by: &[],
};

impl Metric for WeightedPipeline {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        let open = inputs.get("open_amount")?;
        let weighted = inputs.get("weighted_amount")?;
        if weighted > open {
            return Err(MetricError::InvalidInput {
                input: "weighted_amount".into(),
                reason: format!(
                    "{weighted} exceeds open_amount {open}: probabilities are at most 1"
                ),
            });
        }
        Ok(Value::Defined(weighted))
    }

    fn gather(&self, ctx: &Gather<'_>) -> Result<Inputs, MetricError> {
        let mut inputs = ctx.gather_declared(self.descriptor())?;
        if ctx.is_explicit("weighted_amount") {
            return Ok(inputs);
        }
        let mut weighted = Decimal::ZERO;
        for (stage, param) in STAGES {
            let amount = ctx.measure_where(Measure::OpenAmount, Dimension::Stage, stage)?;
            let p = ctx.params().require_decimal(param)?;
            weighted = amount
                .checked_mul(p)
                .and_then(|w| weighted.checked_add(w))
                .ok_or_else(|| MetricError::Overflow("weighted pipeline".into()))?;
            inputs.set(format!("open_amount.{stage}"), amount);
        }
        inputs.set("weighted_amount", weighted);
        Ok(inputs)
    }
}

kpi_core::register_metric!(WeightedPipeline);

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use kpi_core::{ComputeSpec, DataSource, Metric, Registry, Scope, Window};

    use super::*;

    /// Open amounts by current stage: qualification 10 000, demo 5 000, proposal 2 000,
    /// negotiation 1 000, and 500 in a stage this team does not weigh ("legal").
    struct OpenDeals;

    impl DataSource for OpenDeals {
        fn measure(&self, m: Measure, scope: &Scope) -> Result<Decimal, MetricError> {
            assert_eq!(m, Measure::OpenAmount);
            let by_stage = HashMap::from([
                ("qualification", 10_000),
                ("demo", 5_000),
                ("proposal", 2_000),
                ("negotiation", 1_000),
                ("legal", 500),
            ]);
            Ok(Decimal::from(match scope.filters.get(&Dimension::Stage) {
                Some(stage) => by_stage.get(stage.as_str()).copied().unwrap_or(0),
                None => by_stage.values().sum(),
            }))
        }

        fn group_values(
            &self,
            _: Dimension,
            _: &Scope,
            _: &[Measure],
        ) -> Result<Vec<String>, MetricError> {
            Ok(Vec::new())
        }
    }

    fn window() -> Window {
        Window::new(
            "2024-01-01T00:00:00Z".parse().unwrap(),
            "2024-02-01T00:00:00Z".parse().unwrap(),
        )
        .unwrap()
    }

    fn registry() -> Registry {
        Registry::from_metrics([&WeightedPipeline as &'static dyn Metric]).unwrap()
    }

    #[test]
    fn weighs_open_deals_by_stage() {
        let rows = registry()
            .compute(
                &ComputeSpec::new("acme.weighted_pipeline", Some(window())),
                Some(&OpenDeals),
            )
            .unwrap();
        // 10 000 × 0.1 + 5 000 × 0.3 + 2 000 × 0.6 + 1 000 × 0.8 = 1 000 + 1 500 + 1 200 + 800
        assert_eq!(rows[0].value, Value::Defined(Decimal::from(4_500)));
        let inputs = &rows[0].inputs;
        assert_eq!(inputs.get("open_amount").unwrap(), Decimal::from(18_500));
        assert_eq!(
            inputs.get("open_amount.demo").unwrap(),
            Decimal::from(5_000)
        );
    }

    #[test]
    fn probabilities_are_parameters() {
        let mut spec = ComputeSpec::new("acme.weighted_pipeline", Some(window()));
        spec.params = BTreeMap::from([
            ("p_qualification".to_owned(), "0".to_owned()),
            ("p_negotiation".to_owned(), "1".to_owned()),
        ]);
        let rows = registry().compute(&spec, Some(&OpenDeals)).unwrap();
        // 0 + 1 500 + 1 200 + 1 000
        assert_eq!(rows[0].value, Value::Defined(Decimal::from(3_700)));
        spec.params = BTreeMap::from([("p_demo".to_owned(), "1.5".to_owned())]);
        assert!(registry().compute(&spec, Some(&OpenDeals)).is_err());
    }

    #[test]
    fn calculator_mode_checks_the_weights() {
        let ok = ComputeSpec::calculator(
            "acme.weighted_pipeline",
            [("open_amount", "1000"), ("weighted_amount", "400")],
        );
        let rows = registry().compute(&ok, None).unwrap();
        assert_eq!(rows[0].value, Value::Defined(Decimal::from(400)));
        let bad = ComputeSpec::calculator(
            "acme.weighted_pipeline",
            [("open_amount", "1000"), ("weighted_amount", "1400")],
        );
        assert!(registry().compute(&bad, None).is_err());
    }

    #[test]
    fn registered_at_link_time() {
        let registry = kpi_core::registry().unwrap();
        assert!(registry.get("acme.weighted_pipeline").is_some());
    }
}
