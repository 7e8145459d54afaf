//! How a subscription's MRR history is read (the same for every measure).
//!
//! - The starting MRR (`mrr_changes[0].mrr`) is in effect from `started_at`.
//! - The subscription ends at `ended_at`, or at its first later change to an MRR of 0,
//!   whichever is earlier. Changes at or after the end are ignored.
//! - Following the boundary rule of `kpi_core::Measure`, its state at `t` is the state
//!   after every event strictly before `t`: it is active at `t` when `started_at < t` and
//!   it has no end before `t`, and its MRR at `t` is that of its last change before `t`
//!   (the starting MRR if none).
//! - Movements: starting is new MRR when the customer had no other subscription active at
//!   `started_at`, else expansion; a later change up is expansion, down is contraction;
//!   the end loses the MRR in effect just before it (churned MRR). So for any window,
//!   MRR at end = MRR at start + new + expansion − contraction − churned, exactly.
//! - A paying customer at `t` has an active subscription whose MRR at `t` is above 0.

use jiff::Timestamp;
use kpi_core::Decimal;

#[cfg(test)]
use crate::record::Subscription;
use crate::rows::SubRow;

/// When the subscription ends, if it does.
#[cfg(test)]
pub(crate) fn end(s: &Subscription) -> Option<Timestamp> {
    end_at(s.ended_at, s.mrr_changes.iter().map(|c| (c.at, c.mrr)))
}

/// When the subscription held as a row ends, if it does.
pub(crate) fn end_of(s: &SubRow) -> Option<Timestamp> {
    end_at(
        s.ended_at.get(),
        s.mrr_changes.iter().map(|(at, mrr)| (at.get(), *mrr)),
    )
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
