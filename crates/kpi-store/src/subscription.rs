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

use crate::record::Subscription;

/// When the subscription ends, if it does.
pub(crate) fn end(s: &Subscription) -> Option<Timestamp> {
    let zero = s
        .mrr_changes
        .iter()
        .skip(1)
        .find(|c| c.mrr.is_zero())
        .map(|c| c.at);
    match (s.ended_at, zero) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
