//! The index against the reference reading ([`crate::reference`]): every measure and
//! every dimension's values, over random records whose times sit on a coarse grid (so
//! ties and window edges are everywhere) and over the demo dataset.

use std::collections::BTreeMap;

use jiff::Timestamp;
use kpi_core::{
    CustomMeasure, Decimal, Dimension, Measure, MetricError, Scope, SpendCategories, SurveyKind,
    Window,
};

use super::Index;
use crate::generate::{generate, DemoOptions, Rng};
use crate::record::*;
use crate::reference::Reference;
use crate::rows::Rows;
use crate::store::Canonical;
use crate::validate::validate;

mod random_tenant;

pub(crate) use self::random_tenant::RandomTenant;

/// Measures a KPI crate could declare: every aggregate, time and kind of fixed filter, an
/// attribute summed that reads as decimals (`tier`) and one that does not (`region`).
static CUSTOM_MEASURES: [CustomMeasure; 17] = {
    use kpi_core::Aggregate::*;
    use kpi_core::EventTime::*;
    use kpi_core::FixedFilter::*;
    use kpi_core::MeasuredRecords::*;
    const fn declared(
        name: &'static str,
        records: kpi_core::MeasuredRecords,
        time: kpi_core::EventTime,
        aggregate: kpi_core::Aggregate,
        filters: &'static [kpi_core::FixedFilter],
    ) -> CustomMeasure {
        CustomMeasure {
            name,
            description: "",
            records,
            time,
            aggregate,
            filters,
        }
    }
    [
        declared(
            "test.won_tier",
            Deals,
            Closed,
            SumAttribute("tier"),
            &[Status("won")],
        ),
        declared(
            "test.created_emea",
            Deals,
            Created,
            Count,
            &[Attribute("region", "EMEA")],
        ),
        declared(
            "test.won_upsell_amount",
            Deals,
            Closed,
            SumAmount,
            &[Type("upsell"), Status("won")],
        ),
        declared(
            "test.lost_customers",
            Deals,
            Closed,
            DistinctCustomers,
            &[Status("lost")],
        ),
        declared(
            "test.created_region_sum",
            Deals,
            Created,
            SumAttribute("region"),
            &[],
        ),
        declared(
            "test.meetings",
            Activities,
            Occurred,
            Count,
            &[Type("meeting")],
        ),
        declared(
            "test.vip_activity_customers",
            Activities,
            Occurred,
            DistinctCustomers,
            &[Attribute("vip", "true")],
        ),
        declared(
            "test.call_amount",
            Activities,
            Occurred,
            SumAmount,
            &[Type("call")],
        ),
        declared(
            "test.activity_tier",
            Activities,
            Occurred,
            SumAttribute("tier"),
            &[],
        ),
        declared("test.converted_leads", Leads, Converted, Count, &[]),
        declared("test.lead_tier", Leads, Created, SumAttribute("tier"), &[]),
        declared("test.purchase_amount", Purchases, At, SumAmount, &[]),
        declared("test.buyers", Purchases, At, DistinctCustomers, &[]),
        declared("test.resolved_tickets", Tickets, Resolved, Count, &[]),
        declared(
            "test.answered_customers",
            Tickets,
            FirstResponse,
            DistinctCustomers,
            &[],
        ),
        declared(
            "test.nps_responders",
            SurveyResponses,
            At,
            DistinctCustomers,
            &[Type("nps")],
        ),
        declared(
            "test.vip_csat",
            SurveyResponses,
            At,
            Count,
            &[Type("csat"), Attribute("vip", "true")],
        ),
    ]
};

pub(crate) fn all_measures() -> Vec<Measure> {
    use Measure::*;
    let mut v = vec![
        DealsWon,
        DealsLost,
        WonAmount,
        WonCycleDaysTotal,
        ClosingReps,
        DealsOpen,
        OpenAmount,
        StageExits,
        StageDaysTotal,
        UpsoldCustomers,
        CampaignAttributedRevenue,
        EmailAttributedRevenue,
        QuotaProrated,
        LeadsCreated,
        LeadsConverted,
        CustomersAcquired,
        CustomersAcquiredFromMarketing,
        CustomersAtStart,
        CustomersAtEnd,
        CustomersChurnedFromStart,
        CustomersNewRetained,
        CustomersActiveInWindow,
        MeanChurnedTenureYears,
        CustomersChurnedBeforeEnd,
        NewCustomerRevenue,
        NewCustomerRevenueFromMarketing,
        NewCustomerMeanFirstMrr,
        Spend(SpendCategories::ALL),
        Spend(SpendCategories::from_names(&["advertising"])),
        Spend(SpendCategories::from_names(&["salaries", "tools", "other"])),
        Spend(SpendCategories(0)),
        CampaignSpend,
        EmailCampaigns,
        EmailDelivered,
        EmailOpens,
        EmailClicks,
        PurchaseRevenue,
        Purchases,
        Buyers,
        RepeatBuyers,
        RenewalsDue,
        Renewed,
        MrrAtEnd,
        MrrAtStart,
        PayingCustomersAtEnd,
        NewMrr,
        ExpansionMrr,
        ReactivationMrr,
        ContractionMrr,
        ChurnedMrr,
        TicketsResolved,
        ResolutionHoursTotal,
        TicketsResponded,
        FirstResponseHoursTotal,
        SurveyScoreTotal(SurveyKind::Nps),
        SurveyScoreTotal(SurveyKind::Csat),
        SurveyScoreTotal(SurveyKind::Ces),
        Activities,
        ActivityAmount,
    ];
    for kind in [SurveyKind::Nps, SurveyKind::Csat, SurveyKind::Ces] {
        for (scale, min, max) in [
            (0, 0, u32::MAX),
            (10, 9, 10),
            (10, 0, 6),
            (5, 4, 5),
            (5, 1, 2),
            (7, 3, u32::MAX),
        ] {
            v.push(SurveyResponses {
                kind,
                scale,
                min,
                max,
            });
        }
    }
    v.extend(CUSTOM_MEASURES.iter().map(Custom));
    v
}

pub(crate) fn canonical(records: Vec<Record>) -> Canonical {
    let mut c = Canonical::default();
    for r in records {
        assert_eq!(validate(&r), Ok(()), "{r:?}");
        c.upsert(r);
    }
    c
}

/// Whether `measure` can be read under `filters`: every part answering it carries every
/// dimension filtered on (else the index refuses it).
pub(crate) fn answerable(measure: Measure, filters: &BTreeMap<Dimension, String>) -> bool {
    let carried = super::filtering_dimensions(measure);
    filters.keys().all(|d| carried.contains(&d.offered_as()))
}

/// The dimensions whose values the tests compare: the built-in ones and a few attributes
/// (one no record has).
pub(crate) fn grouping_dimensions() -> Vec<Dimension> {
    let mut dims = Dimension::ALL.to_vec();
    for name in ["region", "tier", "vip", "nothing"] {
        let name = kpi_core::AttributeName::new(name).unwrap();
        dims.push(Dimension::Attribute(name));
        dims.push(Dimension::CustomerAttribute(name));
    }
    dims
}

/// The measure sets whose group values the tests compare: one per part, and two parts.
fn grouped_measures() -> Vec<Vec<Measure>> {
    use Measure::*;
    let one = [
        DealsWon,
        StageExits,
        DealsOpen,
        QuotaProrated,
        LeadsCreated,
        CustomersAcquired,
        Spend(SpendCategories::ALL),
        EmailCampaigns,
        PurchaseRevenue,
        MrrAtEnd,
        TicketsResolved,
        SurveyScoreTotal(SurveyKind::Nps),
        Activities,
        NewCustomerRevenue,
    ];
    let mut sets: Vec<Vec<Measure>> = one.iter().map(|m| vec![*m]).collect();
    sets.push(vec![DealsWon, CustomersAcquired]);
    sets
}

/// What is compared with the reference: the index, or a store's source.
pub(crate) trait Answers {
    fn measure(&self, measure: Measure, scope: &Scope) -> Result<Decimal, MetricError>;
    fn group_values(
        &self,
        dimension: Dimension,
        scope: &Scope,
        measures: &[Measure],
    ) -> Result<Vec<String>, MetricError>;
    fn cohort_periods(
        &self,
        scope: &Scope,
        measures: &[Measure],
        period_of: &dyn Fn(Timestamp) -> Result<kpi_core::Window, MetricError>,
    ) -> Result<std::collections::BTreeSet<Timestamp>, MetricError>;
}

impl Answers for Index {
    fn measure(&self, measure: Measure, scope: &Scope) -> Result<Decimal, MetricError> {
        Index::measure(self, measure, scope)
    }

    fn group_values(
        &self,
        dimension: Dimension,
        scope: &Scope,
        measures: &[Measure],
    ) -> Result<Vec<String>, MetricError> {
        Index::group_values(self, dimension, scope, measures)
    }

    fn cohort_periods(
        &self,
        scope: &Scope,
        measures: &[Measure],
        period_of: &dyn Fn(Timestamp) -> Result<kpi_core::Window, MetricError>,
    ) -> Result<std::collections::BTreeSet<Timestamp>, MetricError> {
        Index::cohort_periods(self, scope, measures, period_of)
    }
}

impl<T: kpi_core::DataSource> Answers for T {
    fn measure(&self, measure: Measure, scope: &Scope) -> Result<Decimal, MetricError> {
        kpi_core::DataSource::measure(self, measure, scope)
    }

    fn group_values(
        &self,
        dimension: Dimension,
        scope: &Scope,
        measures: &[Measure],
    ) -> Result<Vec<String>, MetricError> {
        kpi_core::DataSource::group_values(self, dimension, scope, measures)
    }

    fn cohort_periods(
        &self,
        scope: &Scope,
        measures: &[Measure],
        period_of: &dyn Fn(Timestamp) -> Result<kpi_core::Window, MetricError>,
    ) -> Result<std::collections::BTreeSet<Timestamp>, MetricError> {
        kpi_core::DataSource::cohort_periods(self, scope, measures, period_of)
    }
}

/// Compares every measure and the values of every grouping dimension over `scopes` with
/// the reference over `records`; a measure or group its parts cannot filter must be
/// refused.
///
/// Amounts are compared converted to the records' base currency; a measure that reads an
/// amount without a rate ([`crate::reference::converted`]) must be undefined, never a
/// number (the index may be undefined where the reference finds no such amount read: it
/// does not consult the filters for them), and with every amount converted, never
/// undefined.
pub(crate) fn compare_with_reference(fast: &dyn Answers, records: &Canonical, scopes: &[Scope]) {
    let (converted, perturbed) = crate::reference::converted(records);
    let reference = Reference::new(&converted);
    let perturbed = perturbed.as_ref().map(Reference::new);
    let measures = all_measures();
    // Group values ignore the window: compared once per set of filters.
    let mut grouped_filters = Vec::new();
    for scope in scopes {
        for m in &measures {
            let answer = fast.measure(*m, scope);
            if answerable(*m, &scope.filters) {
                let expected = reference.measure(*m, scope).unwrap();
                let reads_unconverted = perturbed
                    .as_ref()
                    .is_some_and(|p| p.measure(*m, scope).unwrap() != expected);
                match answer {
                    Err(MetricError::UndefinedMeasure(reason)) => assert!(
                        perturbed.is_some(),
                        "{m:?} over {scope:?} undefined ({reason}) with every amount converted"
                    ),
                    answer => {
                        assert!(
                            !reads_unconverted,
                            "{m:?} over {scope:?} reads an amount without a rate: {answer:?}"
                        );
                        assert_eq!(answer.unwrap(), expected, "{m:?} over {scope:?}");
                    }
                }
            } else {
                assert!(
                    matches!(answer, Err(MetricError::UnsupportedDimension { .. })),
                    "{m:?} over {scope:?} answered {answer:?}"
                );
            }
        }
        if grouped_filters.contains(&scope.filters) {
            continue;
        }
        grouped_filters.push(scope.filters.clone());
        for dim in grouping_dimensions() {
            for set in grouped_measures() {
                let mut grouped = scope.filters.clone();
                grouped.insert(dim, String::new());
                let values = fast.group_values(dim, scope, &set);
                if set.iter().all(|m| answerable(*m, &grouped)) {
                    let expected = reference.group_values(dim, scope, &set);
                    if dim == Dimension::Cohort {
                        assert_eq!(
                            fast.cohort_periods(scope, &set, &thirteen_days).unwrap(),
                            periods_of(&expected),
                            "cohort periods for {set:?} over {scope:?}"
                        );
                    }
                    assert_eq!(
                        values.unwrap(),
                        expected,
                        "values of {dim} for {set:?} over {scope:?}"
                    );
                } else {
                    assert!(
                        values.is_err(),
                        "values of {dim} for {set:?} over {scope:?}"
                    );
                }
            }
        }
    }
}

/// A cohort period for the tests: the 13 days from the Unix epoch holding `t`, a length no
/// calendar period has, so cutting sorted instants cannot lean on months.
fn thirteen_days(t: Timestamp) -> Result<kpi_core::Window, MetricError> {
    const SECONDS: i64 = 13 * 86_400;
    let start = t.as_second().div_euclid(SECONDS) * SECONDS;
    let at = |s: i64| Timestamp::from_second(s).map_err(|e| MetricError::Store(e.to_string()));
    Ok(kpi_core::Window {
        start: at(start)?,
        end: at(start + SECONDS)?,
    })
}

/// The [`thirteen_days`] periods of acquisition instants listed as `cohort` values.
fn periods_of(instants: &[String]) -> std::collections::BTreeSet<Timestamp> {
    instants
        .iter()
        .map(|at| thirteen_days(at.parse().unwrap()).unwrap().start)
        .collect()
}

/// Compares every measure and every dimension's values over the given scopes.
fn compare(records: &Canonical, scopes: &[Scope]) {
    let mut rows = Rows::of(records.records().cloned());
    rows.set_base_currency(&records.base_currency);
    let index = Index::build(&rows, &super::KindGenerations::default(), None);
    compare_with_reference(&index, records, scopes);
}

fn filter_sets() -> Vec<BTreeMap<Dimension, String>> {
    let one = |d: Dimension, v: &str| BTreeMap::from([(d, v.to_owned())]);
    vec![
        BTreeMap::new(),
        one(Dimension::Owner, "o1"),
        one(Dimension::Source, "marketing"),
        one(Dimension::Source, "sales"),
        one(Dimension::Segment, "smb"),
        one(Dimension::Channel, "email"),
        one(Dimension::Campaign, "k1"),
        one(Dimension::Stage, "b"),
        one(Dimension::Agent, "a2"),
        one(Dimension::ActivityType, "call"),
        one(Dimension::Owner, "nobody"),
        BTreeMap::from([
            (Dimension::Owner, "o2".to_owned()),
            (Dimension::Segment, "ent".to_owned()),
        ]),
        BTreeMap::from([
            (Dimension::Source, "marketing".to_owned()),
            (Dimension::Channel, "email".to_owned()),
        ]),
        BTreeMap::from([
            (Dimension::Stage, "a".to_owned()),
            (Dimension::Owner, "o1".to_owned()),
        ]),
        one(attr("region"), "EMEA"),
        one(attr("region"), ""),
        one(attr("tier"), "2.5"),
        one(attr("nothing"), ""),
        one(attr("nothing"), "x"),
        one(customer_attr("region"), "AMER"),
        one(customer_attr("vip"), "true"),
        one(customer_attr("tier"), ""),
        BTreeMap::from([
            (Dimension::Owner, "o1".to_owned()),
            (customer_attr("region"), "EMEA".to_owned()),
            (attr("vip"), "false".to_owned()),
        ]),
        BTreeMap::from([
            (Dimension::Stage, "b".to_owned()),
            (attr("region"), "AMER".to_owned()),
        ]),
        // A cohort, as the engine hands it over: customers acquired at the grid's second
        // and third points (the fourth is its end, excluded).
        one(Dimension::Cohort, COHORT),
        BTreeMap::from([
            (Dimension::Cohort, COHORT.to_owned()),
            (Dimension::Source, "marketing".to_owned()),
        ]),
    ]
}

/// A cohort filter's value: the window `[2024-01-02, 2024-01-05T12:00)`.
const COHORT: &str = "2024-01-02T00:00:00Z/2024-01-05T12:00:00Z";

fn attr(name: &str) -> Dimension {
    Dimension::Attribute(kpi_core::AttributeName::new(name).unwrap())
}

fn customer_attr(name: &str) -> Dimension {
    Dimension::CustomerAttribute(kpi_core::AttributeName::new(name).unwrap())
}

#[test]
fn index_matches_the_reference_on_random_grids() {
    let grid = grid();
    for seed in 0..25u64 {
        let mut tenant = RandomTenant {
            rng: Rng(seed * 7919 + 1),
            grid: grid.clone(),
        };
        let mut records = tenant.records();
        // Most seeds in several currencies (the base EUR), some without a base.
        tenant.add_currencies(&mut records);
        let mut records = canonical(records);
        records.base_currency = if seed % 5 == 4 { "" } else { "EUR" }.into();
        let mut scopes = Vec::new();
        for (k, filters) in filter_sets().into_iter().enumerate() {
            // Windows between grid points (including empty ones) and one past both ends.
            for j in 0..3 {
                let a = tenant.rng.range(0, grid.len() as i64 - 1) as usize;
                let b = tenant.rng.range(a as i64, grid.len() as i64 - 1) as usize;
                let window = if (k + j) % 7 == 0 {
                    Window::new(
                        grid[0] - jiff::SignedDuration::from_hours(1),
                        grid[grid.len() - 1] + jiff::SignedDuration::from_hours(1),
                    )
                    .unwrap()
                } else {
                    Window::new(grid[a], grid[b]).unwrap()
                };
                scopes.push(Scope {
                    window,
                    filters: filters.clone(),
                });
            }
        }
        compare(&records, &scopes);
    }
}

/// For random subscription histories and random windows (on the grid, between grid
/// points, empty, and past both ends), with and without filters, the MRR at a window's
/// end is its MRR at start plus new, expansion and reactivation MRR minus contraction and
/// churned MRR, exactly, in the index and in the reference alike; and the random histories
/// do hold returning customers (reactivation MRR above 0 somewhere).
#[test]
fn mrr_at_end_is_mrr_at_start_plus_every_movement() {
    let grid = grid();
    let mut reactivations = 0;
    for seed in 0..200u64 {
        let mut tenant = RandomTenant {
            rng: Rng(seed * 104_729 + 3),
            grid: grid.clone(),
        };
        let records = canonical(tenant.records());
        let index = Index::build(
            &Rows::of(records.records().cloned()),
            &super::KindGenerations::default(),
            None,
        );
        let reference = Reference::new(&records);
        type Answers<'a> = &'a dyn Fn(Measure, &Scope) -> Decimal;
        let sources: [(&str, Answers); 2] = [
            ("index", &|m, s| index.measure(m, s).unwrap()),
            ("reference", &|m, s| reference.measure(m, s).unwrap()),
        ];
        for filters in [
            BTreeMap::new(),
            BTreeMap::from([(Dimension::Segment, "smb".to_owned())]),
        ] {
            for _ in 0..6 {
                // Offsets of −1, 0 or +1 hour around grid points: edges and in-betweens.
                let at = |tenant: &mut RandomTenant| {
                    let i = tenant.time();
                    let shift = tenant.rng.range(-1, 1);
                    grid[i] + jiff::SignedDuration::from_hours(shift)
                };
                let (a, b) = (at(&mut tenant), at(&mut tenant));
                let scope = Scope {
                    window: Window::new(a.min(b), a.max(b)).unwrap(),
                    filters: filters.clone(),
                };
                for (name, measure) in &sources {
                    let m = |x: Measure| measure(x, &scope);
                    let reactivation = m(Measure::ReactivationMrr);
                    if reactivation > Decimal::ZERO {
                        reactivations += 1;
                    }
                    assert_eq!(
                        m(Measure::MrrAtEnd),
                        m(Measure::MrrAtStart)
                            + m(Measure::NewMrr)
                            + m(Measure::ExpansionMrr)
                            + reactivation
                            - m(Measure::ContractionMrr)
                            - m(Measure::ChurnedMrr),
                        "{name}, seed {seed}, {scope:?}"
                    );
                }
            }
        }
    }
    assert!(reactivations > 0, "no random history returned a customer");
}

#[test]
fn index_matches_the_reference_on_demo_data() {
    let records = canonical(generate(&DemoOptions {
        seed: 7,
        records: 4000,
        attributes_and_activities: true,
        ..DemoOptions::default()
    }));
    let ts = |s: &str| -> Timestamp { s.parse().unwrap() };
    let windows = [
        ("2024-01-01T00:00:00Z", "2024-04-01T00:00:00Z"),
        ("2023-01-01T00:00:00Z", "2025-01-01T00:00:00Z"),
        ("2024-06-15T12:00:00Z", "2024-06-22T12:00:00Z"),
        ("2020-01-01T00:00:00Z", "2030-01-01T00:00:00Z"),
    ];
    let mut filters = filter_sets();
    filters.push(BTreeMap::from([(Dimension::Owner, "rep-002".to_owned())]));
    filters.push(BTreeMap::from([(
        Dimension::Campaign,
        "camp-0003".to_owned(),
    )]));
    filters.push(BTreeMap::from([(Dimension::Stage, "demo".to_owned())]));
    filters.push(BTreeMap::from([(Dimension::Agent, "agent-01".to_owned())]));
    filters.push(BTreeMap::from([
        (Dimension::Owner, "rep-001".to_owned()),
        (Dimension::Segment, "smb".to_owned()),
    ]));
    let mut scopes = Vec::new();
    for (a, b) in windows {
        for f in &filters {
            scopes.push(Scope {
                window: Window::new(ts(a), ts(b)).unwrap(),
                filters: f.clone(),
            });
        }
    }
    compare(&records, &scopes);
}

/// Times every 36 hours from 2024-01-01: the grid the randomized tests put records on.
pub(crate) fn grid() -> Vec<Timestamp> {
    let base: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
    (0..8)
        .map(|i| base + jiff::SignedDuration::from_hours(36 * i))
        .collect()
}

pub(crate) fn grid_scopes(grid: &[Timestamp]) -> Vec<Scope> {
    let mut scopes = Vec::new();
    for filters in filter_sets() {
        for (a, b) in [(0, grid.len() - 1), (2, 5)] {
            scopes.push(Scope {
                window: Window::new(grid[a], grid[b]).unwrap(),
                filters: filters.clone(),
            });
        }
    }
    scopes
}

/// A tenant's rows written record by record as the store writes them (a slot per
/// record, freed by a delete), with the write counts of each kind and the model the
/// reference reads.
pub(crate) struct WrittenRows {
    pub(crate) rows: Rows,
    pub(crate) kinds: super::KindGenerations,
    slots: std::collections::HashMap<(RecordKind, String), u32>,
    pub(crate) model: Canonical,
}

impl WrittenRows {
    fn new() -> Self {
        Self {
            rows: Rows::default(),
            kinds: super::KindGenerations::default(),
            slots: Default::default(),
            model: Canonical::default(),
        }
    }

    /// Inserts `record`, or replaces the record of its kind and id.
    fn put(&mut self, record: Record) {
        let key = (record.kind(), record.id().to_owned());
        let rows = &mut self.rows;
        let slot = *self
            .slots
            .entry(key)
            .or_insert_with(|| rows.allocate(record.kind()));
        rows.put(slot, &record);
        self.kinds[record.kind() as usize] += 1;
        self.model.upsert(record);
    }

    /// Sets the base currency, converting every amount to it.
    fn set_base_currency(&mut self, code: &str) {
        for k in self.rows.set_base_currency(code) {
            self.kinds[k as usize] += 1;
        }
        self.model.base_currency = code.into();
    }

    /// After writes, as the store applies them (`RowChanges::apply`): the amounts the
    /// rates written convert otherwise are converted again.
    fn convert_again(&mut self) {
        for k in self.rows.convert_again() {
            self.kinds[k as usize] += 1;
        }
    }

    /// Deletes the record of `kind` and `id`.
    pub(crate) fn delete(&mut self, kind: RecordKind, id: &str) {
        let slot = self.slots.remove(&(kind, id.to_owned())).expect("a record");
        assert!(self.rows.remove(kind, slot));
        self.kinds[kind as usize] += 1;
        assert!(self.model.remove(kind, id));
    }
}

/// Random tenants combined in [`writes_interleaved_with_reads_keep_every_answer_exact`].
const COPIES: u64 = 6;

/// `record` with its id suffixed by `copy` (its references to other records are kept).
fn renamed(mut record: Record, copy: u64) -> Record {
    let id = match &mut record {
        Record::Customer(r) => &mut r.id,
        Record::Lead(r) => &mut r.id,
        Record::Deal(r) => &mut r.id,
        Record::Subscription(r) => &mut r.id,
        Record::Purchase(r) => &mut r.id,
        Record::Spend(r) => &mut r.id,
        Record::Campaign(r) => &mut r.id,
        Record::Ticket(r) => &mut r.id,
        Record::SurveyResponse(r) => &mut r.id,
        Record::Quota(r) => &mut r.id,
        Record::Activity(r) => &mut r.id,
        Record::FxRate(r) => &mut r.id,
    };
    id.push_str(&format!("~{copy}"));
    // The customers and campaigns it reads are the same copy's, so that a later upsert of
    // one changes what rows of other kinds read.
    let suffix = |r: &mut String| r.push_str(&format!("~{copy}"));
    let optional = |r: &mut Option<String>| {
        if let Some(r) = r {
            r.push_str(&format!("~{copy}"));
        }
    };
    match &mut record {
        Record::Customer(r) => optional(&mut r.campaign_id),
        Record::Lead(r) => {
            optional(&mut r.campaign_id);
            optional(&mut r.customer_id);
        }
        Record::Deal(r) => {
            optional(&mut r.campaign_id);
            optional(&mut r.customer_id);
        }
        Record::Subscription(r) => suffix(&mut r.customer_id),
        Record::Purchase(r) => suffix(&mut r.customer_id),
        Record::Spend(r) => optional(&mut r.campaign_id),
        Record::Ticket(r) => optional(&mut r.customer_id),
        Record::SurveyResponse(r) => optional(&mut r.customer_id),
        Record::Activity(r) => {
            optional(&mut r.customer_id);
            optional(&mut r.deal_id);
        }
        Record::Campaign(_) | Record::Quota(_) | Record::FxRate(_) => {}
    }
    record
}

/// Writes of every kind — inserts, upserts and deletes, one record or a batch at a time —
/// interleaved with reads: each index is built from the one before (its parts shared, or
/// maintained as a base plus a delta of the rows written and of the rows reading a
/// customer or campaign written, and now and then folded by the background warm-up), and
/// after every write every measure, with filters, and every dimension's values equal the
/// reference's over the records written so far. Rows read the customers and campaigns of
/// their own copy, which later upserts change. From the second seed on, amounts are in
/// several currencies and rates are written too: each write of rates converts again only
/// the amounts they convert otherwise.
#[test]
fn writes_interleaved_with_reads_keep_every_answer_exact() {
    let grid = grid();
    let scopes = grid_scopes(&grid);
    for seed in 0..3u64 {
        let mut rng = Rng(seed * 7727 + 11);
        let mut written = WrittenRows::new();
        // Several random tenants' records under distinct ids, so each part spans many
        // chunks of rows (of 8 under test); then those of as many others under the same ids (upserts) and
        // others (inserts).
        let currencies = seed > 0;
        let copies = |seed: u64| -> Vec<Record> {
            (0..COPIES)
                .flat_map(|copy| {
                    let mut tenant = RandomTenant {
                        rng: Rng(seed * 31 + copy * 1009 + 7),
                        grid: grid.clone(),
                    };
                    let mut records = tenant.records();
                    if currencies {
                        tenant.add_currencies(&mut records);
                    }
                    records
                        .into_iter()
                        // One tenant's quotas only: prorating many quotas sums fractions
                        // whose last digit the index and the reference round apart.
                        .filter(move |r| copy == 0 || r.kind() != RecordKind::Quota)
                        .map(move |r| renamed(r, copy))
                })
                .collect()
        };
        let first = copies(seed);
        let mut later = copies(seed + 1000);
        if currencies {
            written.set_base_currency("EUR");
        }
        for r in first {
            assert_eq!(validate(&r), Ok(()), "{r:?}");
            written.put(r);
        }
        written.convert_again();
        let mut index = Index::build(&written.rows, &written.kinds, None);
        compare_with_reference(&index, &written.model, &scopes);
        for round in 0..14 {
            // A single record, a batch of one kind, or a batch of several kinds.
            let batch = match round % 3 {
                0 => 1,
                1 => rng.range(2, 6) as usize,
                _ => rng.range(6, 20) as usize,
            };
            let kind = RecordKind::ALL[rng.range(0, RecordKind::ALL.len() as i64 - 1) as usize];
            for _ in 0..batch {
                let kind = if round % 3 == 2 {
                    RecordKind::ALL[rng.range(0, RecordKind::ALL.len() as i64 - 1) as usize]
                } else {
                    kind
                };
                let existing: Vec<String> = written
                    .model
                    .of_kind(kind)
                    .map(|r| r.id().to_owned())
                    .collect();
                if !existing.is_empty() && rng.chance(30) {
                    let id = &existing[rng.range(0, existing.len() as i64 - 1) as usize];
                    written.delete(kind, id);
                } else if let Some(at) = later.iter().position(|r| r.kind() == kind) {
                    let r = later.swap_remove(at);
                    assert_eq!(validate(&r), Ok(()), "{r:?}");
                    written.put(r);
                }
            }
            written.convert_again();
            index = Index::build(&written.rows, &written.kinds, Some(&index));
            // Read before or after the background warm-up (which folds large deltas).
            if rng.chance(40) {
                index.warm(&|| true);
            }
            compare_with_reference(&index, &written.model, &scopes);
        }
    }
}

/// A random tenant's records in [`COPIES`] copies (each part spans many chunks), written.
pub(crate) fn copies_written(seed: u64) -> WrittenRows {
    let mut written = WrittenRows::new();
    for copy in 0..COPIES {
        let records = RandomTenant {
            rng: Rng(seed * 31 + copy * 1009 + 7),
            grid: grid(),
        }
        .records();
        for r in records {
            if copy == 0 || r.kind() != RecordKind::Quota {
                written.put(renamed(r, copy));
            }
        }
    }
    written
}

/// The index of a random tenant's records (read once, every part built), and the next one
/// after `change` rewrote the first stored record of `kind` that it changes (`change`,
/// given every record, returns whether it did); every answer of the next one equals the
/// reference's.
pub(crate) fn after_one_write(
    kind: RecordKind,
    change: impl Fn(&Canonical, &mut Record) -> bool,
) -> (Index, Index) {
    let mut written = copies_written(3);
    let before = Index::build(&written.rows, &written.kinds, None);
    let scopes = grid_scopes(&grid());
    compare_with_reference(&before, &written.model, &scopes);
    before.warm(&|| true);
    let record = written
        .model
        .of_kind(kind)
        .find_map(|r| {
            let mut r = r.clone();
            change(&written.model, &mut r).then_some(r)
        })
        .expect("a record to change");
    written.put(record);
    let after = Index::build(&written.rows, &written.kinds, Some(&before));
    compare_with_reference(&after, &written.model, &scopes);
    (before, after)
}
