//! How long a customer stays, as the lifetime metrics read it: a parameter when the caller
//! gives one, otherwise the mean tenure of the customers who churned before the window's end.

use kpi_core::{Decimal, Gather, Measure, MetricError};

/// The expected customer lifetime in years for input `input`: the decimal parameter `param`
/// when set, otherwise [`Measure::MeanChurnedTenureYears`] when at least one customer churned
/// before the window's end ([`Measure::CustomersChurnedBeforeEnd`] > 0), otherwise
/// [`MetricError::UndefinedInput`]: with no churned customer there is no tenure to average.
pub(crate) fn expected_lifetime_years(
    ctx: &Gather<'_>,
    input: &str,
    param: &str,
) -> Result<Decimal, MetricError> {
    if let Some(years) = ctx.params().decimal(param) {
        return Ok(years);
    }
    if ctx.measure(Measure::CustomersChurnedBeforeEnd)?.is_zero() {
        return Err(MetricError::UndefinedInput {
            input: input.to_owned(),
            reason: format!(
                "no customer has churned before the window's end; give the {param} parameter"
            ),
        });
    }
    ctx.measure(Measure::MeanChurnedTenureYears)
}

/// years(W) of the scope's window, or [`MetricError::UndefinedInput`] for `input` when the
/// window is empty (nothing can be spread over zero years).
pub(crate) fn window_years(ctx: &Gather<'_>, input: &str) -> Result<Decimal, MetricError> {
    let years = ctx.years();
    if years.is_zero() {
        return Err(MetricError::UndefinedInput {
            input: input.to_owned(),
            reason: "the window is empty (it lasts 0 years)".into(),
        });
    }
    Ok(years)
}
