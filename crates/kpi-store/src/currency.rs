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
//! converted when a row is written and again when the rates or the base currency change:
//! after a write of rates, only the amounts the new rates convert otherwise ([`Moved`]: of
//! a currency whose rates differ, at or after the first instant they differ), and only the
//! kinds whose rows changed are rebuilt.

use std::collections::{BTreeMap, HashMap, HashSet};
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

/// Which amounts a change of rates converts otherwise ([`Rates::moved_since`]).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Moved {
    /// Every amount naming a currency (the base currency changed).
    Every,
    /// Per currency, the amounts converted at or after the instant given: before it, the
    /// latest rate on or before any instant is the same (none: no amount moved).
    From(HashMap<Sym, Timestamp>),
}

impl Moved {
    /// Whether no amount moved.
    pub(crate) fn is_nothing(&self) -> bool {
        matches!(self, Moved::From(from) if from.is_empty())
    }

    /// Whether an amount in `currency` converted at `at` (the latest of a row's instants)
    /// may have moved.
    pub(crate) fn moves(&self, currency: Sym, at: Timestamp) -> bool {
        match self {
            Moved::Every => true,
            Moved::From(from) => from.get(&currency).is_some_and(|first| at >= *first),
        }
    }
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

    /// Which amounts these rates convert otherwise than `before` did: per currency, from
    /// the first position at which its two lists of rates differ (in time or in rate),
    /// the earlier of the two instants there; every amount when the base differs.
    pub(crate) fn moved_since(&self, before: &Rates) -> Moved {
        if self.base != before.base {
            return Moved::Every;
        }
        let currencies: HashSet<Sym> = self
            .by_currency
            .keys()
            .chain(before.by_currency.keys())
            .copied()
            .collect();
        let mut from = HashMap::new();
        for currency in currencies {
            let (now, then) = (self.rates_of(currency), before.rates_of(currency));
            let same = now.iter().zip(then).take_while(|(a, b)| a == b).count();
            let first = [now.get(same), then.get(same)]
                .into_iter()
                .flatten()
                .map(|(at, _)| *at)
                .min();
            if let Some(first) = first {
                from.insert(currency, first);
            }
        }
        Moved::From(from)
    }

    /// The rates of `currency`, sorted by effective time.
    fn rates_of(&self, currency: Sym) -> &[(Timestamp, Decimal)] {
        self.by_currency.get(&currency).map_or(&[], Vec::as_slice)
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
        let rows = [
            ("r1", gbp, "2024-01-01T00:00:00Z", "1.10"),
            ("r2", gbp, "2024-02-01T00:00:00Z", "1.20"),
            // Two rates at one instant: the greatest id wins.
            ("r4", gbp, "2024-03-01T00:00:00Z", "1.40"),
            ("r3", gbp, "2024-03-01T00:00:00Z", "1.30"),
        ];
        let rates = rates_from(eur, eur, &rows);
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
            rates_from(eur, usd, &rows).convert(d("1"), gbp, at("2025-01-01T00:00:00Z")),
            Err(Missing::Rate)
        );
        // Without a base, a currency cannot be converted.
        let no_base = rates_from(eur, NONE, &rows);
        assert_eq!(
            no_base.convert(d("1"), gbp, at("2025-01-01T00:00:00Z")),
            Err(Missing::Base)
        );
        assert_eq!(
            rates.convert(Decimal::MAX, gbp, at("2025-01-01T00:00:00Z")),
            Err(Missing::Overflow)
        );
    }

    /// The rates, with base `base`, of the rows `(id, currency, time, rate)` written
    /// towards `towards`.
    fn rates_from(towards: Sym, base: Sym, rows: &[(&str, Sym, &str, &str)]) -> Rates {
        let mut slab = Slab::default();
        for (slot, (id, currency, t, rate)) in rows.iter().enumerate() {
            slab.put(
                slot as u32,
                FxRateRow {
                    id: (*id).into(),
                    currency: *currency,
                    effective_at: PackedTime::new(at(t)),
                    rate: d(rate),
                    base: towards,
                },
            );
        }
        Rates::of(base, &slab)
    }

    /// A change of rates moves the amounts of the currencies whose rates differ, from the
    /// first instant they differ; a rate sent again (under any id) moves nothing.
    #[test]
    fn a_change_of_rates_moves_the_amounts_after_its_first_difference() {
        let (eur, gbp, usd) = (1, 2, 3);
        let before = [
            ("g1", gbp, "2024-01-01T00:00:00Z", "1.10"),
            ("g2", gbp, "2024-03-01T00:00:00Z", "1.20"),
            ("u1", usd, "2024-02-01T00:00:00Z", "0.90"),
        ];
        let then = rates_from(eur, eur, &before);
        let moved =
            |rows: &[(&str, Sym, &str, &str)]| rates_from(eur, eur, rows).moved_since(&then);
        // The same rate again, under another id: nothing moves.
        let mut again = before.to_vec();
        again.push(("g2-again", gbp, "2024-03-01T00:00:00Z", "1.20"));
        assert!(moved(&again).is_nothing());
        // A GBP rate from February: GBP amounts from February on.
        let mut february = before.to_vec();
        february.push(("g3", gbp, "2024-02-01T00:00:00Z", "1.15"));
        let m = moved(&february);
        assert_eq!(m, Moved::From([(gbp, at("2024-02-01T00:00:00Z"))].into()));
        assert!(!m.moves(gbp, at("2024-01-31T23:59:59Z")));
        assert!(
            m.moves(gbp, at("2024-02-01T00:00:00Z")) && m.moves(gbp, at("2025-01-01T00:00:00Z"))
        );
        assert!(!m.moves(usd, at("2025-01-01T00:00:00Z")));
        // The March rate changed: from March; USD's only rate deleted: every USD amount
        // from its time (earlier ones had no rate before either).
        let changed = [
            ("g1", gbp, "2024-01-01T00:00:00Z", "1.10"),
            ("g2", gbp, "2024-03-01T00:00:00Z", "1.25"),
        ];
        assert_eq!(
            moved(&changed),
            Moved::From(
                [
                    (gbp, at("2024-03-01T00:00:00Z")),
                    (usd, at("2024-02-01T00:00:00Z"))
                ]
                .into()
            )
        );
        // Another base: every amount.
        assert_eq!(
            rates_from(usd, usd, &before).moved_since(&then),
            Moved::Every
        );
        // Each moved set converts, at every instant, exactly where the two rates differ.
        let m = moved(&february);
        let now = rates_from(eur, eur, &february);
        for t in [
            "2023-12-01",
            "2024-01-15",
            "2024-02-01",
            "2024-02-15",
            "2024-04-01",
        ] {
            let t = at(&format!("{t}T00:00:00Z"));
            for c in [gbp, usd] {
                let differs = now.convert(d("100"), c, t) != then.convert(d("100"), c, t);
                assert!(!differs || m.moves(c, t), "{c} at {t}");
            }
        }
    }

    #[test]
    fn codes_are_iso_4217_and_uppercase() {
        assert!(is_iso_code("EUR") && is_iso_code("GBP") && is_iso_code("CHF"));
        assert!(!is_iso_code("eur") && !is_iso_code("ABC") && !is_iso_code("EURO"));
        assert!(!is_iso_code(""));
    }
}
