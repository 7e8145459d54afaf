//! Tickets: by resolution and by first response (each built on first use), with the
//! waits summed; the measures they answer.

use std::sync::{Arc, OnceLock};

use jiff::Timestamp;
use kpi_core::{Decimal, Dimension, Measure, MetricError, Window};

use super::count;
use super::events::{rows_by_time, EventList};
use super::lookups::Lookups;
use super::part::{KindIndex, Part, ResolvedFilters};
use super::sums::IntegerSums;
use crate::record::RecordKind;
use crate::rows::{Slab, TicketRow};
use crate::symbols::{Sym, NONE};
use crate::units::{nanos_between, nanos_decimal};

/// The kinds the ticket part reads: tickets, and their customers (through the lookups
/// only).
pub(crate) const READS: &[RecordKind] = &[RecordKind::Ticket, RecordKind::Customer];

/// Whether the ticket part answers `measure`.
pub(crate) fn answers(measure: Measure) -> bool {
    matches!(
        measure,
        Measure::TicketsResolved
            | Measure::ResolutionHoursTotal
            | Measure::TicketsResponded
            | Measure::FirstResponseHoursTotal
    )
}

impl TicketRow {
    /// When it was resolved (`resolved`), else first responded to.
    pub(crate) fn until(&self, resolved: bool) -> Option<Timestamp> {
        if resolved {
            self.resolved_at.get()
        } else {
            self.first_response_at.get()
        }
    }

    /// The time from its opening to [`TicketRow::until`] (zero without it), in
    /// nanoseconds.
    pub(crate) fn wait_nanos(&self, resolved: bool) -> i128 {
        let opened = self.opened_at.get();
        nanos_between(opened, self.until(resolved).unwrap_or(opened))
    }
}

/// Tickets by one of their times (resolution or first response), with the time from
/// opening to it summed.
pub(crate) struct TicketTimes {
    pub(crate) ev: EventList<u32>,
    pub(crate) nanos: IntegerSums,
}

impl TicketTimes {
    /// The tickets among `subset` by resolution (`resolved`) or first response.
    fn build(rows: &Slab<TicketRow>, subset: &[u32], resolved: bool) -> Self {
        let ev = rows_by_time(subset, |r| rows.row(r).until(resolved));
        let nanos = IntegerSums::new(ev.items.iter().map(|r| rows.row(*r).wait_nanos(resolved)));
        TicketTimes { ev, nanos }
    }

    /// The tickets among `subset` by resolution.
    pub(crate) fn resolved(_: &Arc<Lookups>, rows: &Slab<TicketRow>, subset: &[u32]) -> Self {
        Self::build(rows, subset, true)
    }

    /// The tickets among `subset` by first response.
    pub(crate) fn responded(_: &Arc<Lookups>, rows: &Slab<TicketRow>, subset: &[u32]) -> Self {
        Self::build(rows, subset, false)
    }
}

/// Tickets by resolution and by first response, each built on first use (an agent's
/// partition is read for resolutions only).
pub(crate) struct TicketIndex {
    pub(crate) resolved: OnceLock<TicketTimes>,
    pub(crate) responded: OnceLock<TicketTimes>,
}

impl KindIndex for TicketIndex {
    type Row = TicketRow;
    type Table = Slab<TicketRow>;
    type Context = Arc<Lookups>;

    fn record_slot(_: &Self::Table, position: u32) -> u32 {
        position
    }

    fn customer_lookups(lookups: &Arc<Lookups>) -> Option<&Lookups> {
        Some(lookups)
    }

    fn customer(_: &Arc<Lookups>, t: &TicketRow) -> Sym {
        t.customer
    }

    fn attr(lookups: &Arc<Lookups>, t: &TicketRow, d: Dimension) -> Sym {
        match d {
            Dimension::Agent => t.agent,
            Dimension::Source | Dimension::Segment => lookups.customer_attr(t.customer, d),
            _ => NONE,
        }
    }

    fn build(_: &Arc<Lookups>, _: &Self::Table, _: &[u32]) -> Self {
        TicketIndex {
            resolved: OnceLock::new(),
            responded: OnceLock::new(),
        }
    }

    fn warm(&self, lookups: &Arc<Lookups>, rows: &Self::Table, subset: &[u32]) {
        self.resolved
            .get_or_init(|| TicketTimes::resolved(lookups, rows, subset));
        self.responded
            .get_or_init(|| TicketTimes::responded(lookups, rows, subset));
    }
}

/// The tickets' value of `measure` (one [`answers`]) over `w` and the filters `f`.
pub(crate) fn measure(
    part: &Part<TicketIndex>,
    measure: Measure,
    w: &Window,
    f: &ResolvedFilters,
) -> Result<Decimal, MetricError> {
    Ok(match measure {
        Measure::TicketsResolved
        | Measure::ResolutionHoursTotal
        | Measure::TicketsResponded
        | Measure::FirstResponseHoursTotal => {
            let Some(s) = part.select(f)? else {
                return Ok(Decimal::ZERO);
            };
            let index = s.index;
            let (times, resolved) = match measure {
                Measure::TicketsResolved | Measure::ResolutionHoursTotal => {
                    (s.lazy(&index.resolved, TicketTimes::resolved), true)
                }
                _ => (s.lazy(&index.responded, TicketTimes::responded), false),
            };
            let (ev, sums) = (&times.ev, &times.nanos);
            let r = ev.range(w);
            match measure {
                Measure::TicketsResolved | Measure::TicketsResponded => count(s.count(ev, r)),
                _ => {
                    let nanos = s.int_sum(ev, r, sums, |e| s.row(e).wait_nanos(resolved));
                    nanos_decimal(nanos)?
                }
            }
        }
        _ => unreachable!("tickets::measure is called with the measures tickets answer only"),
    })
}

crate::snapshot::snap_fields!(TicketTimes { ev, nanos });
crate::snapshot::snap_fields!(TicketIndex {
    resolved,
    responded
});
super::image::imaged_as_written!(TicketIndex);
