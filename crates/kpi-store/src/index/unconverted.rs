//! Values that may read an amount that could not be converted to the base currency are
//! undefined, with a reason naming the currency and the date (`no GBP rate on or before
//! 2024-03-05`): never an error for the whole request, never a silent wrong number.
//!
//! Which amounts a measure may read is decided from each unconverted amount's times, per
//! measure (its records' event in the window, or the amount counting at the window's
//! edge); the scope's filters and group are not consulted, so a missing rate makes the
//! measure undefined in every group of the windows it falls in. An unconverted amount is
//! rare and temporary (send the rate), and the check costs nothing while there is none.

use kpi_core::{Aggregate, EventTime, Measure, MeasuredRecords, MetricError, Window};

use crate::currency::{Missing, Unconverted, UnconvertedAmounts};
use crate::record::RecordKind;
use crate::symbols::Interner;

/// When an unconverted amount of a kind is read by a measure over a window.
#[derive(Clone, Copy)]
enum Reads {
    /// The amount's conversion time is in the window (a won deal's close, a purchase, a
    /// spend).
    At,
    /// The deal is open at the window's end (created before it, not closed before it).
    OpenAtEnd,
    /// Its span overlaps the window (a quota's period; a deal's life for a declared measure).
    Overlapping,
    /// A declared measure's event: the deal's creation, or its close, in the window.
    Created,
    /// See [`Reads::Created`].
    Closed,
    /// An MRR level in effect at the window's end (`start`: at its start).
    MrrAtEdge {
        /// At the window's start rather than its end.
        start: bool,
    },
    /// An MRR level that begins or ends in the window (a movement reads both levels).
    MrrMoving,
    /// A subscription's first MRR, whenever it began (a customer acquired in the window
    /// may have started their first subscription at any time).
    FirstMrr,
}

/// The kinds whose amounts `measure` reads, and when.
fn reads(measure: Measure) -> &'static [(RecordKind, Reads)] {
    use RecordKind::{Deal, Purchase, Quota, Spend, Subscription};
    match measure {
        Measure::WonAmount
        | Measure::CampaignAttributedRevenue
        | Measure::EmailAttributedRevenue => &[(Deal, Reads::At)],
        Measure::OpenAmount => &[(Deal, Reads::OpenAtEnd)],
        Measure::NewCustomerRevenue | Measure::NewCustomerRevenueFromMarketing => {
            &[(Deal, Reads::At), (Purchase, Reads::At)]
        }
        Measure::QuotaProrated => &[(Quota, Reads::Overlapping)],
        Measure::Spend(_) | Measure::CampaignSpend => &[(Spend, Reads::At)],
        Measure::PurchaseRevenue => &[(Purchase, Reads::At)],
        Measure::MrrAtEnd => &[(Subscription, Reads::MrrAtEdge { start: false })],
        Measure::MrrAtStart => &[(Subscription, Reads::MrrAtEdge { start: true })],
        Measure::NewMrr
        | Measure::ReactivationMrr
        | Measure::ExpansionMrr
        | Measure::ContractionMrr
        | Measure::ChurnedMrr => &[(Subscription, Reads::MrrMoving)],
        Measure::NewCustomerMeanFirstMrr => &[(Subscription, Reads::FirstMrr)],
        // Declared sums of amounts: of deals by their creation or close, of purchases by
        // their time (activities' amounts name no currency).
        Measure::Custom(declared) if declared.aggregate == Aggregate::SumAmount => {
            match (declared.records, declared.time) {
                (MeasuredRecords::Deals, EventTime::Created) => &[(Deal, Reads::Created)],
                (MeasuredRecords::Deals, EventTime::Closed) => &[(Deal, Reads::Closed)],
                (MeasuredRecords::Deals, _) => &[(Deal, Reads::Overlapping)],
                (MeasuredRecords::Purchases, _) => &[(Purchase, Reads::At)],
                _ => &[],
            }
        }
        _ => &[],
    }
}

/// Whether a measure reading as `how` over `w` reads amount `a`.
fn is_read(a: &Unconverted, how: Reads, w: &Window) -> bool {
    let inside = |t| w.start <= t && t < w.end;
    let counts_at = |t| a.from < t && a.until.is_none_or(|u| u >= t);
    match how {
        Reads::At => inside(a.at),
        Reads::OpenAtEnd => counts_at(w.end),
        Reads::Overlapping => a.from < w.end && a.until.is_none_or(|u| u >= w.start),
        Reads::Created => inside(a.from),
        Reads::Closed => a.until.is_some_and(inside),
        Reads::MrrAtEdge { start } => counts_at(if start { w.start } else { w.end }),
        Reads::MrrMoving => inside(a.from) || a.until.is_some_and(inside),
        Reads::FirstMrr => a.first,
    }
}

/// `Ok` when `measure` over `window` reads no unconverted amount; else the reason its value
/// is undefined, naming the currency and date of the earliest it reads.
pub(crate) fn check(
    amounts: &UnconvertedAmounts,
    measure: Measure,
    window: &Window,
    names: &Interner,
) -> Result<(), MetricError> {
    let earliest = reads(measure)
        .iter()
        .flat_map(|(kind, how)| {
            amounts
                .of(*kind)
                .values()
                .flatten()
                .filter(move |a| is_read(a, *how, window))
        })
        .min_by_key(|a| a.at);
    let Some(a) = earliest else {
        return Ok(());
    };
    let currency = names.name(a.currency);
    let date = a.at.strftime("%Y-%m-%d");
    Err(MetricError::UndefinedMeasure(match a.missing {
        Missing::Rate => format!("no {currency} rate on or before {date}"),
        Missing::Base => format!(
            "no base currency is set to convert {currency} amounts (TenantService.UpdateSettings)"
        ),
        Missing::Overflow => format!("a {currency} amount of {date} is too large to convert"),
    }))
}
