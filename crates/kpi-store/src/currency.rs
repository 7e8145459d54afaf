//! Currencies: which codes are accepted, a tenant's exchange rates, and the conversion of
//! an amount to the tenant's base currency at the time of its own event.
//!
//! The rule, as ChartMogul documents it: an amount in currency `C` whose event is at `t` is
//! worth `amount × rate`, the rate being that of the latest `fx_rate` record of `C` effective
//! on or before `t` (equal times: the greatest id wins). An amount without a currency, or in
//! the base currency, is taken as it is and needs no rate. The product is exact: nothing is
//! rounded before the metric's own final rounding (rust_decimal keeps 28 decimal places;
//! a product with more is rounded there, half to even, the one place a conversion rounds).
//!
//! An amount that cannot be converted (no rate of its currency on or before its time, no
//! base currency set, or a product too large) is *unconverted*: its row counts it as 0
//! and lists it ([`Unconverted`]), and every value that may read it is undefined with a
//! reason naming the currency and the date (`index/unconverted.rs`).
//!
//! The rows hold converted amounts, so the index reads them as any other amount; they are
//! converted when a row is written and again when the rates or the base currency change
//! (only the rows with a currency, and only the kinds whose rows changed are rebuilt).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use jiff::Timestamp;
use kpi_core::Decimal;

use crate::record::RecordKind;
use crate::rows::{FxRateRow, Slab};
use crate::symbols::{Sym, NONE};

/// Whether `code` names an ISO 4217 currency: three uppercase letters the standard lists.
pub(crate) fn is_iso_code(code: &str) -> bool {
    code.len() == 3
        && code.bytes().all(|b| b.is_ascii_uppercase())
        && iso_currency::Currency::from_code(code).is_some()
}

/// Why a currency code is refused, for a rejection reason or a field violation.
pub(crate) fn code_problem(code: &str) -> String {
    format!("`{code}` is not an ISO 4217 currency code (three uppercase letters, e.g. EUR)")
}

/// A tenant's base currency and exchange rates, by currency symbol.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rates {
    /// The base currency's symbol ([`NONE`]: no base currency is set).
    pub(crate) base: Sym,
    /// Per currency, its rates sorted by effective time.
    by_currency: HashMap<Sym, Vec<(Timestamp, Decimal)>>,
}

/// Why an amount could not be converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Missing {
    /// The tenant has no base currency.
    Base,
    /// No rate of the currency is effective on or before the amount's time.
    Rate,
    /// The converted amount does not fit a decimal.
    Overflow,
}

impl Rates {
    /// The rates of `rows` (the tenant's `fx_rate` rows) towards base currency `base`
    /// (rates written towards another base are left out).
    pub(crate) fn of(base: Sym, rows: &Slab<FxRateRow>) -> Self {
        let mut listed: HashMap<Sym, Vec<(Timestamp, &str, Decimal)>> = HashMap::new();
        for r in rows.iter().filter(|r| r.base == base) {
            listed
                .entry(r.currency)
                .or_default()
                .push((r.effective_at.get(), &r.id, r.rate));
        }
        let by_currency = listed
            .into_iter()
            .map(|(currency, mut list)| {
                list.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
                // Of rates effective at one instant, the greatest id's (the last) wins.
                let mut kept: Vec<(Timestamp, Decimal)> = Vec::with_capacity(list.len());
                for (at, _, rate) in list {
                    match kept.last_mut() {
                        Some(last) if last.0 == at => last.1 = rate,
                        _ => kept.push((at, rate)),
                    }
                }
                (currency, kept)
            })
            .collect();
        Rates { base, by_currency }
    }

    /// `amount` in `currency` ([`NONE`]: the base) at instant `at`, in the base currency.
    pub(crate) fn convert(
        &self,
        amount: Decimal,
        currency: Sym,
        at: Timestamp,
    ) -> Result<Decimal, Missing> {
        // Nothing, in any currency, is nothing.
        if currency == NONE || currency == self.base || amount.is_zero() {
            return Ok(amount);
        }
        if self.base == NONE {
            return Err(Missing::Base);
        }
        let rates = self.by_currency.get(&currency).ok_or(Missing::Rate)?;
        let after = rates.partition_point(|(t, _)| *t <= at);
        let (_, rate) = after
            .checked_sub(1)
            .map(|i| rates[i])
            .ok_or(Missing::Rate)?;
        amount.checked_mul(rate).ok_or(Missing::Overflow)
    }
}

/// An amount that could not be converted, and when it is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unconverted {
    /// Its currency.
    pub(crate) currency: Sym,
    /// Why.
    pub(crate) missing: Missing,
    /// The instant it was to be converted at.
    pub(crate) at: Timestamp,
    /// From when the amount counts (a deal's creation, a quota's period start, an MRR
    /// level's change).
    pub(crate) from: Timestamp,
    /// Until when it counts (a deal's close, a quota's period end, an MRR level's next
    /// change or the subscription's end); none: still.
    pub(crate) until: Option<Timestamp>,
    /// Whether it is a subscription's first MRR.
    pub(crate) first: bool,
}

/// Per record kind, the unconverted amounts of each slot. Shared with the index that reads
/// the rows (copied on write, per kind): empty for a tenant whose amounts all convert.
#[derive(Debug, Clone, Default)]
pub(crate) struct UnconvertedAmounts {
    by_kind: [Arc<BTreeMap<u32, Vec<Unconverted>>>; RecordKind::ALL.len()],
}

impl UnconvertedAmounts {
    /// Replaces the unconverted amounts of `kind` at `slot`.
    pub(crate) fn set(&mut self, kind: RecordKind, slot: u32, amounts: Vec<Unconverted>) {
        let map = &self.by_kind[kind as usize];
        if amounts.is_empty() && !map.contains_key(&slot) {
            return;
        }
        let map = Arc::make_mut(&mut self.by_kind[kind as usize]);
        if amounts.is_empty() {
            map.remove(&slot);
        } else {
            map.insert(slot, amounts);
        }
    }

    /// The unconverted amounts of `kind`, by slot.
    pub(crate) fn of(&self, kind: RecordKind) -> &BTreeMap<u32, Vec<Unconverted>> {
        &self.by_kind[kind as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::PackedTime;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn the_latest_rate_on_or_before_the_time_converts() {
        let (eur, gbp, usd) = (1, 2, 3);
        let mut slab = Slab::default();
        let rows = [
            ("r1", gbp, "2024-01-01T00:00:00Z", "1.10"),
            ("r2", gbp, "2024-02-01T00:00:00Z", "1.20"),
            // Two rates at one instant: the greatest id wins.
            ("r4", gbp, "2024-03-01T00:00:00Z", "1.40"),
            ("r3", gbp, "2024-03-01T00:00:00Z", "1.30"),
        ];
        for (slot, (id, currency, t, rate)) in rows.into_iter().enumerate() {
            slab.put(
                slot as u32,
                FxRateRow {
                    id: id.into(),
                    currency,
                    effective_at: PackedTime::new(at(t)),
                    rate: d(rate),
                    base: eur,
                },
            );
        }
        let rates = Rates::of(eur, &slab);
        let c = |currency, t| rates.convert(d("100"), currency, at(t));
        assert_eq!(c(gbp, "2024-01-31T23:59:59Z"), Ok(d("110.00")));
        assert_eq!(c(gbp, "2024-02-01T00:00:00Z"), Ok(d("120.00")));
        assert_eq!(c(gbp, "2025-01-01T00:00:00Z"), Ok(d("140.00")));
        assert_eq!(c(gbp, "2023-12-31T23:59:59Z"), Err(Missing::Rate));
        assert_eq!(c(usd, "2024-06-01T00:00:00Z"), Err(Missing::Rate));
        // The base and no currency need no rate.
        assert_eq!(c(eur, "2000-01-01T00:00:00Z"), Ok(d("100")));
        assert_eq!(c(NONE, "2000-01-01T00:00:00Z"), Ok(d("100")));
        // Rates towards another base convert nothing.
        assert_eq!(
            Rates::of(usd, &slab).convert(d("1"), gbp, at("2025-01-01T00:00:00Z")),
            Err(Missing::Rate)
        );
        // Without a base, a currency cannot be converted.
        let no_base = Rates::of(NONE, &slab);
        assert_eq!(
            no_base.convert(d("1"), gbp, at("2025-01-01T00:00:00Z")),
            Err(Missing::Base)
        );
        assert_eq!(
            rates.convert(Decimal::MAX, gbp, at("2025-01-01T00:00:00Z")),
            Err(Missing::Overflow)
        );
    }

    #[test]
    fn codes_are_iso_4217_and_uppercase() {
        assert!(is_iso_code("EUR") && is_iso_code("GBP") && is_iso_code("CHF"));
        assert!(!is_iso_code("eur") && !is_iso_code("ABC") && !is_iso_code("EURO"));
        assert!(!is_iso_code(""));
    }
}
