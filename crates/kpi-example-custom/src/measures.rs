//! The measures this team declares: what kpid's index counts and sums for its metrics,
//! beside the built-in `Measure`s. A declaration names the records (kind and the time that
//! puts one in a window), what is aggregated and the fixed conditions; kpid answers it from
//! its index like a built-in measure (no change to kpi-core or kpi-store).

use kpi_core::{Aggregate, CustomMeasure, EventTime, FixedFilter, MeasuredRecords};

/// Meetings held: activities of type `meeting`, by `occurred_at`.
pub static MEETINGS_HELD: CustomMeasure = CustomMeasure {
    name: "acme.meetings_held",
    description: "activities of type meeting that occurred in the window",
    records: MeasuredRecords::Activities,
    time: EventTime::Occurred,
    aggregate: Aggregate::Count,
    filters: &[FixedFilter::Type("meeting")],
};

/// Seats sold: the decimal attribute `seats` summed over won deals, by `closed_at`.
pub static SEATS_WON: CustomMeasure = CustomMeasure {
    name: "acme.seats_won",
    description: "sum of attribute seats of won deals closed in the window (a deal without \
                  it adds nothing)",
    records: MeasuredRecords::Deals,
    time: EventTime::Closed,
    aggregate: Aggregate::SumAttribute("seats"),
    filters: &[FixedFilter::Status("won")],
};
