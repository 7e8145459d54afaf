use std::fmt;
use std::str::FromStr;

use crate::attribute::AttributeName;
use crate::measure::Measure;

/// The unit a metric's value is expressed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// A plain count.
    Count,
    /// Money, in the currency the records use.
    Currency,
    /// A percentage (already multiplied by 100).
    Percent,
    /// A plain ratio.
    Ratio,
    /// Days (86 400 s each).
    Days,
    /// Hours.
    Hours,
    /// Months.
    Months,
    /// A score on the metric's own scale.
    Score,
}

impl Unit {
    /// The lowercase name used in docs and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "count",
            Unit::Currency => "currency",
            Unit::Percent => "percent",
            Unit::Ratio => "ratio",
            Unit::Days => "days",
            Unit::Hours => "hours",
            Unit::Months => "months",
            Unit::Score => "score",
        }
    }
}

/// Whether a higher or a lower value is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Higher values are better (win rate, MRR).
    HigherIsBetter,
    /// Lower values are better (CAC, churn).
    LowerIsBetter,
}

impl Direction {
    /// `higher` or `lower`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::HigherIsBetter => "higher",
            Direction::LowerIsBetter => "lower",
        }
    }
}

/// A dimension rows can be grouped by or filtered on: a built-in one, or a custom
/// attribute of the metric's own record (`attr.<name>`) or of its customer
/// (`customer.<name>`).
///
/// An attribute's value as a dimension value is text as is, a decimal in its normalized
/// canonical form (`12.5`, not `12.50`), a flag `true` or `false`, a time in RFC 3339
/// (`2024-03-01T00:00:00Z`); a record without the attribute has the empty value `""`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    /// The deal's or quota's owner (a sales rep); a customer's owner; who did an activity.
    Owner,
    /// The customer's or lead's source (marketing, sales, referral, partner, other).
    Source,
    /// The campaign id of a deal, lead, customer, spend or campaign.
    Campaign,
    /// The channel of a spend or campaign (email, paid, social, event, other).
    Channel,
    /// The customer's segment.
    Segment,
    /// A deal stage.
    Stage,
    /// The support agent of a ticket.
    Agent,
    /// The type of an activity (`call`, `meeting`, `demo`…).
    ActivityType,
    /// `attr.<name>`: a custom attribute of the record the metric counts (the deal for a
    /// win rate, the ticket for a resolution time).
    Attribute(AttributeName),
    /// `customer.<name>`: a custom attribute of that record's customer.
    CustomerAttribute(AttributeName),
    /// `cohort`: the period the record's customer was acquired in (param
    /// `cohort_granularity`; labels in [`crate::cohort`]). Not in [`Dimension::ALL`]: the
    /// engine resolves its values to acquisition windows before the store sees them.
    Cohort,
}

impl Dimension {
    /// Every built-in dimension, in declaration order.
    pub const ALL: [Dimension; 8] = [
        Dimension::Owner,
        Dimension::Source,
        Dimension::Campaign,
        Dimension::Channel,
        Dimension::Segment,
        Dimension::Stage,
        Dimension::Agent,
        Dimension::ActivityType,
    ];

    /// `attr.*` in a descriptor's dimensions: the metric can be grouped and filtered by
    /// every attribute of its own records.
    pub const ANY_ATTRIBUTE: Dimension = Dimension::Attribute(AttributeName::ANY);

    /// `customer.*` in a descriptor's dimensions: the metric can be grouped and filtered
    /// by every attribute of its records' customers.
    pub const ANY_CUSTOMER_ATTRIBUTE: Dimension = Dimension::CustomerAttribute(AttributeName::ANY);

    /// The name of a built-in dimension (`owner`, `source`…); `None` for an attribute
    /// (see [`Dimension`]'s `Display`: `attr.region`).
    pub fn builtin_name(self) -> Option<&'static str> {
        Some(match self {
            Dimension::Owner => "owner",
            Dimension::Source => "source",
            Dimension::Campaign => "campaign",
            Dimension::Channel => "channel",
            Dimension::Segment => "segment",
            Dimension::Stage => "stage",
            Dimension::Agent => "agent",
            Dimension::ActivityType => "activity_type",
            Dimension::Cohort => "cohort",
            Dimension::Attribute(_) | Dimension::CustomerAttribute(_) => return None,
        })
    }

    /// The name used in requests: `owner`, `attr.region`, `customer.plan` (a wildcard of a
    /// descriptor: `attr.*`).
    pub fn name(self) -> String {
        self.to_string()
    }

    /// The descriptor entry that offers this dimension: itself for a built-in one,
    /// [`Dimension::ANY_ATTRIBUTE`] or [`Dimension::ANY_CUSTOMER_ATTRIBUTE`] for an
    /// attribute.
    pub fn offered_as(self) -> Dimension {
        match self {
            Dimension::Attribute(_) => Dimension::ANY_ATTRIBUTE,
            Dimension::CustomerAttribute(_) => Dimension::ANY_CUSTOMER_ATTRIBUTE,
            d => d,
        }
    }
}

/// The prefix of an attribute of the metric's own record.
const ATTRIBUTE_PREFIX: &str = "attr.";
/// The prefix of an attribute of the record's customer.
const CUSTOMER_ATTRIBUTE_PREFIX: &str = "customer.";

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dimension::Attribute(name) => write!(f, "{ATTRIBUTE_PREFIX}{name}"),
            Dimension::CustomerAttribute(name) => write!(f, "{CUSTOMER_ATTRIBUTE_PREFIX}{name}"),
            d => f.write_str(d.builtin_name().expect("a built-in dimension")),
        }
    }
}

impl FromStr for Dimension {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(name) = s.strip_prefix(ATTRIBUTE_PREFIX) {
            return AttributeName::new(name).map(Dimension::Attribute);
        }
        if let Some(name) = s.strip_prefix(CUSTOMER_ATTRIBUTE_PREFIX) {
            return AttributeName::new(name).map(Dimension::CustomerAttribute);
        }
        Dimension::ALL
            .into_iter()
            .chain([Dimension::Cohort])
            .find(|d| d.builtin_name() == Some(s))
            .ok_or_else(|| {
                let names: Vec<String> = Dimension::ALL
                    .iter()
                    .chain([Dimension::Cohort].iter())
                    .map(|d| d.name())
                    .collect();
                format!(
                    "unknown dimension `{s}`; expected one of {}, attr.<name> or customer.<name>",
                    names.join(", ")
                )
            })
    }
}

/// What values an input accepts; checked before the formula runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// A whole number ≥ 0.
    Count,
    /// Any decimal ≥ 0 (amounts, durations, totals).
    NonNegative,
    /// Any decimal > 0 (a window's years or months).
    Positive,
    /// Any decimal (a value that may be negative, like a derived metric's answer).
    Any,
}

impl InputKind {
    /// Checks `value`, returning the reason it is not acceptable.
    pub fn check(self, value: rust_decimal::Decimal) -> Result<(), &'static str> {
        match self {
            InputKind::Count if value.is_sign_negative() && !value.is_zero() => {
                Err("must not be negative")
            }
            InputKind::Count if !value.fract().is_zero() => Err("must be a whole number"),
            InputKind::NonNegative if value.is_sign_negative() && !value.is_zero() => {
                Err("must not be negative")
            }
            InputKind::Positive if value <= rust_decimal::Decimal::ZERO => {
                Err("must be greater than zero")
            }
            _ => Ok(()),
        }
    }
}

/// Where an input's value comes from when the caller does not give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputSource {
    /// A measure over stored records, for the scope being computed.
    Stored(Measure),
    /// Another metric's (unrounded) value for the same scope: a derived metric.
    Metric(&'static str),
    /// The metric's own [`crate::Metric::gather`] computes it.
    Custom,
}

/// One named input of a metric's formula.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputSpec {
    /// The name callers use in calculator mode and answers report it under.
    pub name: &'static str,
    /// What it is, in a few words.
    pub description: &'static str,
    /// The values it accepts.
    pub kind: InputKind,
    /// Where it comes from when not given.
    pub source: InputSource,
}

impl InputSpec {
    /// An input read from a stored measure.
    pub const fn stored(
        name: &'static str,
        description: &'static str,
        kind: InputKind,
        measure: Measure,
    ) -> Self {
        Self {
            name,
            description,
            kind,
            source: InputSource::Stored(measure),
        }
    }

    /// An input that is another metric's value.
    pub const fn metric(
        name: &'static str,
        description: &'static str,
        metric_id: &'static str,
    ) -> Self {
        Self {
            name,
            description,
            kind: InputKind::Any,
            source: InputSource::Metric(metric_id),
        }
    }

    /// An input the metric's own `gather` computes.
    pub const fn custom(name: &'static str, description: &'static str, kind: InputKind) -> Self {
        Self {
            name,
            description,
            kind,
            source: InputSource::Custom,
        }
    }
}

/// What values a parameter accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// A decimal in `[min, max]` (as decimal strings; empty means unbounded).
    Decimal {
        /// Smallest accepted value, or "".
        min: &'static str,
        /// Largest accepted value, or "".
        max: &'static str,
    },
    /// A whole number in `[min, max]`.
    Integer {
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
    },
    /// One of the listed words.
    Choice(&'static [&'static str]),
    /// A comma-separated subset of the listed words, or `all`.
    Set(&'static [&'static str]),
}

/// One parameter of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamSpec {
    /// Its name in `params`.
    pub name: &'static str,
    /// What it changes.
    pub description: &'static str,
    /// The value used when the caller gives none; empty means "not set" (the metric then
    /// uses what the stored records say, as `lifespan_years` does).
    pub default: &'static str,
    /// The values it accepts.
    pub kind: ParamKind,
}

/// The `precision` parameter every metric accepts: decimal places of the answer.
pub const PRECISION_PARAM: ParamSpec = ParamSpec {
    name: "precision",
    description: "decimal places the answer is rounded to (half away from zero)",
    default: "2",
    kind: ParamKind::Integer { min: 0, max: 28 },
};

/// Everything a caller can know about a metric: its documentation and its contract.
#[derive(Debug, Clone, Copy)]
pub struct MetricDescriptor {
    /// Namespaced id, `family.name` (`sales.win_rate`).
    pub id: &'static str,
    /// Display name (`Win rate`).
    pub name: &'static str,
    /// The family, the part of the id before the dot.
    pub family: &'static str,
    /// What it measures and how it reads stored records.
    pub description: &'static str,
    /// The formula in words over the input names (`won / (won + lost) × 100`).
    pub formula: &'static str,
    /// The unit of the value.
    pub unit: Unit,
    /// Whether higher or lower is better.
    pub direction: Direction,
    /// The formula's inputs.
    pub inputs: &'static [InputSpec],
    /// The metric's own parameters (`precision` is implied for every metric).
    pub params: &'static [ParamSpec],
    /// Dimensions it can be grouped by and filtered on.
    pub dimensions: &'static [Dimension],
    /// Dimensions it is grouped by when the request names none.
    pub default_group_by: &'static [Dimension],
}

impl MetricDescriptor {
    /// The input named `name`.
    pub fn input(&self, name: &str) -> Option<&'static InputSpec> {
        self.inputs.iter().find(|i| i.name == name)
    }

    /// The parameter named `name`, including the implied `precision`.
    pub fn param(&self, name: &str) -> Option<&'static ParamSpec> {
        if name == PRECISION_PARAM.name {
            return Some(&PRECISION_PARAM);
        }
        self.params.iter().find(|p| p.name == name)
    }

    /// Whether the metric can be grouped and filtered by `dimension`: it lists it, or
    /// (an attribute) lists `attr.*` or `customer.*`.
    pub fn offers(&self, dimension: Dimension) -> bool {
        self.dimensions.contains(&dimension) || self.dimensions.contains(&dimension.offered_as())
    }

    /// Every parameter including the implied `precision`, in declaration order.
    pub fn all_params(&self) -> impl Iterator<Item = &'static ParamSpec> {
        self.params.iter().chain(std::iter::once(&PRECISION_PARAM))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimensions_parse_and_print_alike() {
        for name in ["owner", "activity_type", "attr.region", "customer.plan_2"] {
            let d: Dimension = name.parse().unwrap();
            assert_eq!(d.name(), name);
        }
        let region = AttributeName::new("region").unwrap();
        assert_eq!("attr.region".parse(), Ok(Dimension::Attribute(region)));
        assert_eq!(
            "customer.region".parse(),
            Ok(Dimension::CustomerAttribute(region))
        );
        assert_eq!(Dimension::ANY_ATTRIBUTE.name(), "attr.*");
        assert_eq!(Dimension::ANY_CUSTOMER_ATTRIBUTE.name(), "customer.*");
        for bad in [
            "attr.*",
            "attr.",
            "customer.Plan",
            "attr.a.b",
            "region",
            "Owner",
        ] {
            assert!(bad.parse::<Dimension>().is_err(), "{bad}");
        }
        let unknown = "region".parse::<Dimension>().unwrap_err();
        assert!(unknown.contains("attr.<name>"), "{unknown}");
    }

    #[test]
    fn a_descriptor_offering_attr_star_offers_every_attribute() {
        let offered = [Dimension::Owner, Dimension::ANY_ATTRIBUTE];
        let region = AttributeName::new("region").unwrap();
        let offers = |d: Dimension| offered.contains(&d) || offered.contains(&d.offered_as());
        assert!(offers(Dimension::Attribute(region)));
        assert!(!offers(Dimension::CustomerAttribute(region)));
        assert!(offers(Dimension::Owner) && !offers(Dimension::Source));
    }
}
