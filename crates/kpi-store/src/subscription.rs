//! How a subscription's MRR history is read (the same for every measure).
//!
//! - The starting MRR (`mrr_changes[0].mrr`) is in effect from `started_at`.
//! - The subscription ends at `ended_at`, or at its first later change to an MRR of 0,
//!   whichever is earlier. Changes at or after the end are ignored.
//! - Following the boundary rule of `kpi_core::Measure`, its state at `t` is the state
//!   after every event strictly before `t`: it is active at `t` when `started_at < t` and
//!   it has no end before `t`, and its MRR at `t` is that of its last change before `t`
//!   (the starting MRR if none).
//! - A subscription *pays from* `p` when `p` is the earliest of its steps (the start, then
//!   each change before its end) that sets an MRR above 0 and is before its end: its MRR
//!   is above 0 at every instant just after `p`. A customer *had paid MRR before* `t`
//!   when one of their subscriptions pays from a time strictly before `t`.
//! - Movements: a start is expansion when the customer had another subscription active
//!   at `started_at`; else reactivation when the customer had paid MRR before
//!   `started_at` (a returning customer); else new MRR (a customer who never paid; a free
//!   subscription of 0 before does not count). A later change up is expansion, down is
//!   contraction; the end loses the MRR in effect just before it (churned MRR). Each start
//!   is exactly one of the three, so for any window, MRR at end = MRR at start + new +
//!   expansion + reactivation − contraction − churned, exactly.
//! - A paying customer at `t` has an active subscription whose MRR at `t` is above 0.

use jiff::Timestamp;
use kpi_core::Decimal;

#[cfg(test)]
use crate::record::Subscription;
use crate::rows::SubscriptionRow;

/// When the subscription ends, if it does.
#[cfg(test)]
pub(crate) fn end(s: &Subscription) -> Option<Timestamp> {
    end_at(s.ended_at, s.mrr_changes.iter().map(|c| (c.at, c.mrr)))
}

/// When the subscription held as a row ends, if it does.
pub(crate) fn end_of(s: &SubscriptionRow) -> Option<Timestamp> {
    end_at(
        s.ended_at.get(),
        s.mrr_changes.iter().map(|(at, mrr)| (at.get(), *mrr)),
    )
}

/// The time the subscription held as a row pays from (see the module doc), if it ever
/// has an MRR above 0 in effect.
pub(crate) fn paid_from_of(s: &SubscriptionRow) -> Option<Timestamp> {
    levels_of(s, end_of(s))
        .find(|(_, mrr)| *mrr > Decimal::ZERO)
        .map(|(at, _)| at)
}

/// The MRR levels of the subscription held as a row, as (from when, MRR), in order: its
/// first MRR from its start, then each change, all before `end` (its end: [`end_of`]).
pub(crate) fn levels_of(
    s: &SubscriptionRow,
    end: Option<Timestamp>,
) -> impl Iterator<Item = (Timestamp, Decimal)> + '_ {
    std::iter::once((s.started_at.get(), s.mrr_changes[0].1))
        .chain(
            s.mrr_changes
                .iter()
                .skip(1)
                .map(|(at, mrr)| (at.get(), *mrr)),
        )
        .take_while(move |(at, _)| end.is_none_or(|e| *at < e))
}

/// The earlier of `ended_at` and the first change (after the starting MRR) to 0.
fn end_at(
    ended_at: Option<Timestamp>,
    mut changes: impl Iterator<Item = (Timestamp, Decimal)>,
) -> Option<Timestamp> {
    let zero = changes
        .by_ref()
        .skip(1)
        .find(|c| c.1.is_zero())
        .map(|c| c.0);
    match (ended_at, zero) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
