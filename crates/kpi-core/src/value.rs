use rust_decimal::{Decimal, RoundingStrategy};

use crate::error::MetricError;

/// A metric's answer: an exact decimal, or undefined with the reason (a zero denominator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// The exact value.
    Defined(Decimal),
    /// The formula has no value here; the reason says why (`no deals closed in the window`).
    Undefined(String),
}

impl Value {
    /// The decimal, if defined.
    pub fn as_decimal(&self) -> Option<Decimal> {
        match self {
            Value::Defined(d) => Some(*d),
            Value::Undefined(_) => None,
        }
    }

    /// Rounds a defined value to `precision` places, half away from zero, trailing zeros
    /// removed (`30`, `12.5`).
    pub fn rounded(self, precision: u32) -> Value {
        match self {
            Value::Defined(d) => Value::Defined(round(d, precision)),
            undefined => undefined,
        }
    }
}

/// The one rounding rule of kpid: `precision` decimal places, half away from zero, trailing
/// zeros removed.
pub fn round(value: Decimal, precision: u32) -> Decimal {
    value
        .round_dp_with_strategy(precision, RoundingStrategy::MidpointAwayFromZero)
        .normalize()
}

/// Checks that `part`, which counts some of what `whole` counts, does not exceed it:
/// otherwise [`MetricError::InvalidInput`] on `part_name`, saying `why`
/// (`lost (3) cannot exceed at_start (2): only customers active at start can be lost`).
pub fn at_most(
    part_name: &str,
    part: Decimal,
    whole_name: &str,
    whole: Decimal,
    why: &str,
) -> Result<(), MetricError> {
    if part > whole {
        return Err(MetricError::InvalidInput {
            input: part_name.to_owned(),
            reason: format!("{part_name} ({part}) cannot exceed {whole_name} ({whole}): {why}"),
        });
    }
    Ok(())
}

/// `numerator / denominator`, or undefined with `reason` when the denominator is zero.
pub fn ratio(numerator: Decimal, denominator: Decimal, reason: &str) -> Result<Value, MetricError> {
    if denominator.is_zero() {
        return Ok(Value::Undefined(reason.to_owned()));
    }
    numerator
        .checked_div(denominator)
        .map(Value::Defined)
        .ok_or_else(|| MetricError::Overflow("division".into()))
}

/// `numerator / denominator × 100`, or undefined with `reason` when the denominator is zero.
pub fn percent(
    numerator: Decimal,
    denominator: Decimal,
    reason: &str,
) -> Result<Value, MetricError> {
    if denominator.is_zero() {
        return Ok(Value::Undefined(reason.to_owned()));
    }
    numerator
        .checked_mul(Decimal::ONE_HUNDRED)
        .and_then(|n| n.checked_div(denominator))
        .map(Value::Defined)
        .ok_or_else(|| MetricError::Overflow("percentage".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(round(d("2.345"), 2), d("2.35"));
        assert_eq!(round(d("-2.345"), 2), d("-2.35"));
        assert_eq!(round(d("2.344"), 2), d("2.34"));
        assert_eq!(round(d("30.000"), 2).to_string(), "30");
        assert_eq!(round(d("12.5"), 0), d("13"));
    }

    #[test]
    fn zero_denominator_is_undefined() {
        assert_eq!(
            ratio(d("1"), Decimal::ZERO, "no deals").unwrap(),
            Value::Undefined("no deals".into())
        );
        assert_eq!(
            percent(d("30"), d("100"), "x").unwrap(),
            Value::Defined(d("30"))
        );
    }

    #[test]
    fn a_part_cannot_exceed_its_whole() {
        assert!(at_most("won", d("3"), "closed", d("3"), "why").is_ok());
        assert_eq!(
            at_most("won", d("4"), "closed", d("3"), "it counts some of them"),
            Err(MetricError::InvalidInput {
                input: "won".into(),
                reason: "won (4) cannot exceed closed (3): it counts some of them".into(),
            })
        );
    }

    #[test]
    fn overflow_is_an_error() {
        assert!(matches!(
            percent(Decimal::MAX, d("0.5"), "x"),
            Err(MetricError::Overflow(_))
        ));
    }
}
