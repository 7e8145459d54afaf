//! Measures a KPI crate declares ([`CustomMeasure`]): per declaration, a part over the rows
//! of its kind, holding the rows that meet its fixed filters sorted by its time, with the
//! prefix sums (or previous-customer positions) of its aggregate. A part is built on the
//! first read of its measure, then kept in the tenant's index and in the indexes after it
//! while the kinds it reads do not change. It is a [`Part`] like the built-in ones, so the
//! request's filters and groups (built-in dimensions, `attr.*`, `customer.*`) read
//! partitions built on first use, and a window is two binary searches.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use kpi_core::{
    Aggregate, CustomMeasure, Decimal, Dimension, EventTime, FixedFilter, Measure, MeasuredRecords,
    MetricError, SurveyKind, Window,
};

use super::activities::ActivityIndex;
use super::count;
use super::deals::DealIndex;
use super::events::{previous_same, rows_by_time, EventList};
use super::leads::LeadIndex;
use super::lookups::Lookups;
use super::part::{KindIndex, Part, ResolvedFilters, RowTable};
use super::purchases::PurchaseIndex;
use super::sums::DecimalSums;
use super::surveys::SurveyIndex;
use super::tickets::TicketIndex;
use crate::attribute_columns::{AttributeColumns, Column};
use crate::dims::Unit;
use crate::record::{DealKind, DealStatus, RecordKind};
use crate::rows::{ActivityRow, DealRow, LeadRow, PurchaseRow, Rows, SurveyRow, TicketRow};
use crate::symbols::{Interner, Sym, NONE};

/// A kind of rows a custom measure can read: what its declaration's fields mean on them.
pub(crate) trait MeasuredKind: KindIndex<Context = Arc<Lookups>> {
    /// The unit whose dimensions filter them.
    const UNIT: Unit;
    /// The kinds a part over them reads (the kind's own part's).
    const READS: &'static [RecordKind];
    /// The row's time `time` (one of `RECORDS.times()`), if it has it.
    fn time(row: &Self::Row, time: EventTime) -> Option<Timestamp>;
    /// The row's amount, zero without one (or for a kind without amounts).
    fn amount(_row: &Self::Row) -> Decimal {
        Decimal::ZERO
    }
    /// The row's status, if its kind has one.
    fn status(_row: &Self::Row) -> Option<&'static str> {
        None
    }
    /// Whether the row's type is `value` (never, for a kind without types).
    fn has_type(_row: &Self::Row, _names: &Interner, _value: &str) -> bool {
        false
    }
}

/// A deal status's name, as [`MeasuredRecords::statuses`] lists it.
pub(crate) fn status_name(status: DealStatus) -> &'static str {
    match status {
        DealStatus::Open => "open",
        DealStatus::Won => "won",
        DealStatus::Lost => "lost",
    }
}

/// A deal kind's name, as [`MeasuredRecords::types`] lists it.
pub(crate) fn deal_kind_name(kind: DealKind) -> &'static str {
    match kind {
        DealKind::NewBusiness => "new_business",
        DealKind::Upsell => "upsell",
        DealKind::CrossSell => "cross_sell",
        DealKind::Renewal => "renewal",
    }
}

/// A survey kind's name, as [`MeasuredRecords::types`] lists it.
pub(crate) fn survey_kind_name(kind: SurveyKind) -> &'static str {
    match kind {
        SurveyKind::Nps => "nps",
        SurveyKind::Csat => "csat",
        SurveyKind::Ces => "ces",
    }
}

impl MeasuredKind for DealIndex {
    const UNIT: Unit = Unit::Deal;
    const READS: &'static [RecordKind] = super::deals::READS;

    fn time(row: &DealRow, time: EventTime) -> Option<Timestamp> {
        match time {
            EventTime::Created => Some(row.created_at.get()),
            EventTime::Closed => row.closed_at.get(),
            _ => None,
        }
    }

    fn amount(row: &DealRow) -> Decimal {
        row.amount
    }

    fn status(row: &DealRow) -> Option<&'static str> {
        Some(status_name(row.status))
    }

    fn has_type(row: &DealRow, _: &Interner, value: &str) -> bool {
        deal_kind_name(row.kind) == value
    }
}

impl MeasuredKind for ActivityIndex {
    const UNIT: Unit = Unit::Activity;
    const READS: &'static [RecordKind] = super::activities::READS;

    fn time(row: &ActivityRow, time: EventTime) -> Option<Timestamp> {
        (time == EventTime::Occurred).then(|| row.occurred_at.get())
    }

    fn amount(row: &ActivityRow) -> Decimal {
        row.amount_or_zero()
    }

    fn has_type(row: &ActivityRow, names: &Interner, value: &str) -> bool {
        row.activity_type != NONE && names.name(row.activity_type) == value
    }
}

impl MeasuredKind for LeadIndex {
    const UNIT: Unit = Unit::Lead;
    const READS: &'static [RecordKind] = super::leads::READS;

    fn time(row: &LeadRow, time: EventTime) -> Option<Timestamp> {
        match time {
            EventTime::Created => Some(row.created_at.get()),
            EventTime::Converted => row.converted_at.get(),
            _ => None,
        }
    }
}

impl MeasuredKind for PurchaseIndex {
    const UNIT: Unit = Unit::Purchase;
    const READS: &'static [RecordKind] = super::purchases::READS;

    fn time(row: &PurchaseRow, time: EventTime) -> Option<Timestamp> {
        (time == EventTime::At).then(|| row.at.get())
    }

    fn amount(row: &PurchaseRow) -> Decimal {
        row.amount
    }
}

impl MeasuredKind for TicketIndex {
    const UNIT: Unit = Unit::Ticket;
    const READS: &'static [RecordKind] = super::tickets::READS;

    fn time(row: &TicketRow, time: EventTime) -> Option<Timestamp> {
        match time {
            EventTime::Opened => Some(row.opened_at.get()),
            EventTime::FirstResponse => row.first_response_at.get(),
            EventTime::Resolved => row.resolved_at.get(),
            _ => None,
        }
    }
}

impl MeasuredKind for SurveyIndex {
    const UNIT: Unit = Unit::Survey;
    const READS: &'static [RecordKind] = super::surveys::READS;

    fn time(row: &SurveyRow, time: EventTime) -> Option<Timestamp> {
        (time == EventTime::At).then(|| row.at.get())
    }

    fn has_type(row: &SurveyRow, _: &Interner, value: &str) -> bool {
        survey_kind_name(row.kind) == value
    }
}

/// What the index of one custom measure reads besides the rows.
pub(crate) struct CustomContext<K> {
    lookups: Arc<Lookups>,
    measure: &'static CustomMeasure,
    /// By slot: whether the record there meets the measure's fixed filters.
    admitted: Arc<Vec<bool>>,
    /// The summed attribute's column ([`Aggregate::SumAttribute`]; `None` otherwise, or
    /// when no record has it).
    summed: Option<Column>,
    /// By value symbol of the summed attribute: the decimal it reads as (read once per
    /// symbol, not per row and query).
    decimals: Arc<HashMap<Sym, Decimal>>,
    kind: PhantomData<fn() -> K>,
}

impl<K: MeasuredKind> CustomContext<K> {
    fn new(
        measure: &'static CustomMeasure,
        rows: &K::Table,
        own: &AttributeColumns,
        lookups: &Arc<Lookups>,
        names: &Interner,
    ) -> Self {
        let filter_columns: Vec<(Option<&Column>, Option<Sym>)> = measure
            .filters
            .iter()
            .filter_map(|f| match *f {
                FixedFilter::Attribute(name, value) => Some((own.column(name), names.get(value))),
                _ => None,
            })
            .collect();
        let slots = rows.positions().max().map_or(0, |s| s as usize + 1);
        let mut admitted = vec![false; slots];
        for slot in rows.positions() {
            let row = rows.row(slot);
            let own_filters = measure.filters.iter().all(|f| match *f {
                FixedFilter::Status(s) => K::status(row) == Some(s),
                FixedFilter::Type(t) => K::has_type(row, names, t),
                FixedFilter::Attribute(..) => true,
            });
            let attribute_filters = filter_columns.iter().all(|(column, value)| {
                matches!((column, value), (Some(c), Some(v)) if c.get(slot) == *v)
            });
            admitted[slot as usize] = own_filters && attribute_filters;
        }
        let summed = match measure.aggregate {
            Aggregate::SumAttribute(name) => own.column(name).cloned(),
            _ => None,
        };
        let decimals = summed
            .iter()
            .flat_map(|c| c.values())
            .filter_map(|(_, sym)| Some((sym, names.name(sym).parse::<Decimal>().ok()?)))
            .collect();
        Self {
            lookups: Arc::clone(lookups),
            measure,
            admitted: Arc::new(admitted),
            summed,
            decimals: Arc::new(decimals),
            kind: PhantomData,
        }
    }

    /// The value the measure adds for the row at `slot` (sums only).
    fn value(&self, rows: &K::Table, slot: u32) -> Decimal {
        match self.measure.aggregate {
            Aggregate::SumAmount => K::amount(rows.row(slot)),
            Aggregate::SumAttribute(_) => self
                .summed
                .as_ref()
                .and_then(|c| self.decimals.get(&c.get(K::record_slot(rows, slot))))
                .copied()
                .unwrap_or(Decimal::ZERO),
            Aggregate::Count | Aggregate::DistinctCustomers => Decimal::ZERO,
        }
    }
}

/// One custom measure's records by its time: their aggregate's prefix sums, or for
/// distinct customers each event's previous event of the same customer.
pub(crate) struct CustomIndex<K> {
    events: EventList<u32>,
    sums: DecimalSums,
    previous: Vec<u32>,
    kind: PhantomData<fn() -> K>,
}

impl<K: MeasuredKind> KindIndex for CustomIndex<K> {
    type Row = K::Row;
    type Table = K::Table;
    type Context = CustomContext<K>;

    fn build(context: &CustomContext<K>, rows: &K::Table, subset: &[u32]) -> Self {
        let aggregate = context.measure.aggregate;
        let counted: Vec<u32> = subset
            .iter()
            .copied()
            .filter(|r| context.admitted.get(*r as usize).copied().unwrap_or(false))
            .filter(|r| {
                aggregate != Aggregate::DistinctCustomers
                    || K::customer(&context.lookups, rows.row(*r)) != NONE
            })
            .collect();
        let events = rows_by_time(&counted, |r| K::time(rows.row(r), context.measure.time));
        let sums = match aggregate {
            Aggregate::SumAmount | Aggregate::SumAttribute(_) => {
                DecimalSums::new(events.items.iter().map(|r| context.value(rows, *r)))
            }
            Aggregate::Count | Aggregate::DistinctCustomers => DecimalSums::new(std::iter::empty()),
        };
        let previous = match aggregate {
            Aggregate::DistinctCustomers => {
                previous_same(&events, |r| K::customer(&context.lookups, rows.row(r)))
            }
            _ => Vec::new(),
        };
        Self {
            events,
            sums,
            previous,
            kind: PhantomData,
        }
    }

    fn attr(context: &CustomContext<K>, row: &K::Row, d: Dimension) -> Sym {
        K::attr(&context.lookups, row, d)
    }

    fn record_slot(rows: &K::Table, position: u32) -> u32 {
        K::record_slot(rows, position)
    }

    fn customer_lookups(context: &CustomContext<K>) -> Option<&Lookups> {
        K::customer_lookups(&context.lookups)
    }

    fn customer(context: &CustomContext<K>, row: &K::Row) -> Sym {
        K::customer(&context.lookups, row)
    }

    fn campaign(context: &CustomContext<K>, row: &K::Row) -> Sym {
        K::campaign(&context.lookups, row)
    }
}

/// The parts of the custom measures over one kind read so far, and what a new one is built
/// from.
struct KindParts<K: MeasuredKind> {
    rows: Arc<K::Table>,
    attributes: Arc<AttributeColumns>,
    lookups: Arc<Lookups>,
    built: Mutex<HashMap<&'static CustomMeasure, Arc<Part<CustomIndex<K>>>>>,
}

impl<K: MeasuredKind> KindParts<K> {
    fn new(
        rows: &Arc<K::Table>,
        attributes: &Arc<AttributeColumns>,
        lookups: &Arc<Lookups>,
        prev: Option<&KindParts<K>>,
    ) -> Self {
        let built = prev.map(|p| p.built.lock().expect("not poisoned").clone());
        Self {
            rows: Arc::clone(rows),
            attributes: Arc::clone(attributes),
            lookups: Arc::clone(lookups),
            built: Mutex::new(built.unwrap_or_default()),
        }
    }

    /// The part of `measure`, made now if it was not yet (its index is built on first use).
    fn part(&self, measure: &'static CustomMeasure, names: &Interner) -> Arc<Part<CustomIndex<K>>> {
        let mut built = self.built.lock().expect("not poisoned");
        let part = built.entry(measure).or_insert_with(|| {
            let context = CustomContext::<K>::new(
                measure,
                &self.rows,
                &self.attributes,
                &self.lookups,
                names,
            );
            Arc::new(Part::new(
                K::UNIT,
                Arc::clone(&self.rows),
                context,
                &self.attributes,
            ))
        });
        Arc::clone(part)
    }

    fn measure(
        &self,
        measure: &'static CustomMeasure,
        w: &Window,
        f: &ResolvedFilters,
        names: &Interner,
    ) -> Result<Decimal, MetricError> {
        let part = self.part(measure, names);
        let Some(s) = part.select(f)? else {
            return Ok(Decimal::ZERO);
        };
        let index = s.index;
        let r = index.events.range(w);
        Ok(match measure.aggregate {
            Aggregate::Count => count(s.count(&index.events, r)),
            Aggregate::SumAmount | Aggregate::SumAttribute(_) => {
                s.sum(&index.events, r, &index.sums, |e| {
                    s.context.value(s.rows, *e)
                })?
            }
            Aggregate::DistinctCustomers => {
                count(s.distinct(&index.events, r, &index.previous, |e| {
                    K::customer(&s.context.lookups, s.rows.row(*e))
                }))
            }
        })
    }
}

/// The custom measures' parts of one index, per kind they read.
pub(crate) struct CustomParts {
    deals: KindParts<DealIndex>,
    activities: KindParts<ActivityIndex>,
    leads: KindParts<LeadIndex>,
    purchases: KindParts<PurchaseIndex>,
    tickets: KindParts<TicketIndex>,
    surveys: KindParts<SurveyIndex>,
}

impl CustomParts {
    /// Nothing built yet over `rows`, but the parts of `reusable(reads)` (an earlier index,
    /// when none of the kinds `reads` changed since it was built).
    pub(crate) fn new<'a>(
        rows: &Rows,
        lookups: &Arc<Lookups>,
        reusable: impl Fn(&[RecordKind]) -> Option<&'a CustomParts>,
    ) -> Self {
        let attributes = |kind: RecordKind| &rows.attributes[kind as usize];
        CustomParts {
            deals: KindParts::new(
                &rows.deals,
                attributes(RecordKind::Deal),
                lookups,
                reusable(DealIndex::READS).map(|p| &p.deals),
            ),
            activities: KindParts::new(
                &rows.activities,
                attributes(RecordKind::Activity),
                lookups,
                reusable(ActivityIndex::READS).map(|p| &p.activities),
            ),
            leads: KindParts::new(
                &rows.leads,
                attributes(RecordKind::Lead),
                lookups,
                reusable(LeadIndex::READS).map(|p| &p.leads),
            ),
            purchases: KindParts::new(
                &rows.purchases,
                attributes(RecordKind::Purchase),
                lookups,
                reusable(PurchaseIndex::READS).map(|p| &p.purchases),
            ),
            tickets: KindParts::new(
                &rows.tickets,
                attributes(RecordKind::Ticket),
                lookups,
                reusable(TicketIndex::READS).map(|p| &p.tickets),
            ),
            surveys: KindParts::new(
                &rows.surveys,
                attributes(RecordKind::SurveyResponse),
                lookups,
                reusable(SurveyIndex::READS).map(|p| &p.surveys),
            ),
        }
    }

    /// The value of `measure` over `w` and the filters `f`.
    pub(crate) fn measure(
        &self,
        measure: &'static CustomMeasure,
        w: &Window,
        f: &ResolvedFilters,
        names: &Interner,
    ) -> Result<Decimal, MetricError> {
        match measure.records {
            MeasuredRecords::Deals => self.deals.measure(measure, w, f, names),
            MeasuredRecords::Activities => self.activities.measure(measure, w, f, names),
            MeasuredRecords::Leads => self.leads.measure(measure, w, f, names),
            MeasuredRecords::Purchases => self.purchases.measure(measure, w, f, names),
            MeasuredRecords::Tickets => self.tickets.measure(measure, w, f, names),
            MeasuredRecords::SurveyResponses => self.surveys.measure(measure, w, f, names),
        }
    }
}

/// The unit whose rows a custom measure reads (its dimensions filter it); `None` for a
/// built-in measure.
pub(crate) fn unit_of(measure: Measure) -> Option<Unit> {
    match measure {
        Measure::Custom(c) => Some(match c.records {
            MeasuredRecords::Deals => DealIndex::UNIT,
            MeasuredRecords::Activities => ActivityIndex::UNIT,
            MeasuredRecords::Leads => LeadIndex::UNIT,
            MeasuredRecords::Purchases => PurchaseIndex::UNIT,
            MeasuredRecords::Tickets => TicketIndex::UNIT,
            MeasuredRecords::SurveyResponses => SurveyIndex::UNIT,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_type_names_are_kpi_cores() {
        let statuses = [DealStatus::Open, DealStatus::Won, DealStatus::Lost].map(status_name);
        assert_eq!(&statuses[..], MeasuredRecords::Deals.statuses());
        let kinds = [
            DealKind::NewBusiness,
            DealKind::Upsell,
            DealKind::CrossSell,
            DealKind::Renewal,
        ]
        .map(deal_kind_name);
        assert_eq!(Some(&kinds[..]), MeasuredRecords::Deals.types());
        let surveys = [SurveyKind::Nps, SurveyKind::Csat, SurveyKind::Ces].map(survey_kind_name);
        assert_eq!(Some(&surveys[..]), MeasuredRecords::SurveyResponses.types());
    }
}
