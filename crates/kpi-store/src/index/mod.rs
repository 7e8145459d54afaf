//! The query side: one tenant's records, flattened per unit (record kind, or deal stage
//! exits) into event lists sorted by each measure's time, with prefix sums.
//!
//! - A window is two binary searches; counts and sums over it come from prefix sums, so an
//!   unfiltered window measure costs O(log n).
//! - Point-in-time counts (customers active at t, MRR at t, paying customers at t, deals
//!   open at t, deals open at t in a given stage) are prefix counts and sums over sorted
//!   event lists (acquisitions minus churns, MRR movements, paying intervals, creations
//!   minus closes, stage stays begun minus stage stays ended).
//! - Distinct counts (reps, buyers, upsold customers) use, for each event, the position
//!   of the previous event with the same key: a key is new in a range when its previous
//!   event lies before it.
//! - A filter reads the index built (on first use) over the rows having that dimension
//!   value; further filters, and measures that compare two times of a record (leads
//!   converted before the end, customers acquired in W and active at its end), scan the
//!   window's slice.
//!
//! The index is immutable: the store builds a new one on the first read after a write,
//! sharing every part whose record kinds the writes did not change, and keeping the parts
//! whose own kind changed as their base plus a delta of the rows written since
//! ([`delta`]). A part sorts its event lists on first use.

mod activities;
mod blocked;
mod campaigns;
mod cohort;
mod custom;
mod customers;
mod deals;
#[cfg(test)]
mod declared;
mod delta;
mod dependents;
mod events;
mod leads;
mod lookups;
mod parallel;
mod part;
mod purchases;
mod quotas;
mod spend;
mod stages;
mod subscriptions;
mod sums;
mod surveys;
#[cfg(test)]
pub(crate) mod tests;
mod tickets;
mod times;
mod unconverted;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, OnceLock};

use jiff::Timestamp;
use kpi_core::{Decimal, Dimension, Measure, MetricError, Scope};

use crate::currency::UnconvertedAmounts;

use self::activities::ActivityIndex;
use self::campaigns::CampaignIndex;
use self::custom::CustomParts;
#[cfg(test)]
pub(crate) use self::custom::{deal_kind_name, status_name, survey_kind_name};
use self::customers::{CustomerContext, CustomerIndex};
use self::deals::DealIndex;
use self::delta::LayeredPart;
use self::dependents::{changed_through_lookups, nothing_inherited};
use self::leads::LeadIndex;
use self::lookups::Lookups;
use self::part::{Part, ResolvedFilters, Warm};
use self::purchases::PurchaseIndex;
use self::quotas::QuotaIndex;
use self::spend::SpendIndex;
use self::stages::{StageContext, StageParts};
use self::subscriptions::{SubscriptionClasses, SubscriptionContext, SubscriptionIndex};
use self::sums::add;
use self::surveys::SurveyIndex;
use self::tickets::TicketIndex;
use crate::dims::{channel_name, source_name, Unit};
use crate::long_work::GetOrBuild as _;
use crate::record::{Channel, RecordKind, Source};
use crate::rows::Rows;
use crate::symbols::{Interner, NONE};

/// Per record kind, a count of the writes that changed records of that kind.
pub(crate) type KindGenerations = [u64; RecordKind::ALL.len()];

/// A tenant's records, ready to answer measures. Each part is shared with the next index
/// when the kinds it reads did not change, and otherwise, where it can be, maintained
/// incrementally: its last base plus a delta of the rows written since ([`delta`]).
pub(crate) struct Index {
    syms: Interner,
    deals: Arc<LayeredPart<DealIndex>>,
    /// What the stage parts read.
    stage_context: StageContext,
    /// Stage exits and stays, listed on first use ([`Index::stages`]).
    stages: OnceLock<Arc<StageParts>>,
    quotas: Arc<LayeredPart<QuotaIndex>>,
    leads: Arc<LayeredPart<LeadIndex>>,
    customers: Arc<LayeredPart<CustomerIndex>>,
    spend: Arc<LayeredPart<SpendIndex>>,
    campaigns: Arc<LayeredPart<CampaignIndex>>,
    purchases: Arc<LayeredPart<PurchaseIndex>>,
    subscriptions: Arc<LayeredPart<SubscriptionIndex>>,
    tickets: Arc<LayeredPart<TicketIndex>>,
    surveys: Arc<LayeredPart<SurveyIndex>>,
    activities: Arc<LayeredPart<ActivityIndex>>,
    /// The parts of the measures KPI crates declare, made on first read.
    custom: CustomParts,
    /// What rows inherit from customers and campaigns, as of its build.
    lookups: Arc<Lookups>,
    /// What subscriptions are as a whole (new MRR, each customer's first).
    classes: Arc<SubscriptionClasses>,
    /// The write counts of the rows it was built from.
    built_from: KindGenerations,
    /// The amounts of those rows that could not be converted to the base currency.
    unconverted: UnconvertedAmounts,
    /// How many partitions it read from the index image (`image.rs`): a stop writes the
    /// image again only when it built more.
    partitions_from_image: std::sync::atomic::AtomicUsize,
}

/// What a part declares: the unit of its rows (whose dimensions filter it), the kinds of
/// records it reads (it is rebuilt when one of them changes), and which measures it
/// answers. Each is declared once, in the part's module; `declared.rs` checks them
/// against what the part really reads and carries.
pub(crate) struct PartDeclaration {
    pub(crate) unit: Unit,
    /// [`Index::build`] reads each module's `READS` itself; the tests read them here.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) reads: &'static [RecordKind],
    pub(crate) answers: fn(Measure) -> bool,
}

/// Calls `$each!` with every part read through [`Index::measure`]'s dispatch, as
/// `(module, unit)`: the module (`deals`, the field of [`Index`] holding the part too)
/// declares `READS`, `answers` and `measure`; the unit's dimensions filter it. The one list
/// of parts: the declarations, the dispatch, the group values and the background build
/// all read it, in this order (the background build's: the deals first).
macro_rules! with_parts {
    ($each:ident) => {
        $each!(
            (deals, Deal),
            (customers, Customer),
            (leads, Lead),
            (subscriptions, Subscription),
            (purchases, Purchase),
            (tickets, Ticket),
            (surveys, Survey),
            (spend, Spend),
            (campaigns, Campaign),
            (quotas, Quota),
            (activities, Activity)
        )
    };
}

// After `with_parts!`, which it reads.
pub(crate) mod image;

macro_rules! declarations {
    ($(($module:ident, $unit:ident)),*) => {
        &[
            $(PartDeclaration {
                unit: Unit::$unit,
                reads: $module::READS,
                answers: $module::answers,
            },)*
            PartDeclaration {
                unit: Unit::StageExit,
                reads: deals::READS,
                answers: stages::exits_answer,
            },
            PartDeclaration {
                unit: Unit::StageStay,
                reads: deals::READS,
                answers: stages::stays_answer,
            },
        ]
    };
}

/// Every part's declarations. The stage parts are kept, refit and rebuilt with the deal
/// part, reading what it reads; the stage stays answer the open deals in place of the deal
/// part when the filters name a stage.
pub(crate) const PARTS: &[PartDeclaration] = with_parts!(declarations);

/// The positions in [`PARTS`] of the parts that answer `measure`; `staged`: the filters
/// name a stage (the stage stays then answer the open deals in place of the deals).
/// A custom measure is answered by its own part, over the rows of its kind's part: that
/// part stands for it here.
fn readers(measure: Measure, staged: bool) -> impl Iterator<Item = usize> {
    let stays = staged && stages::stays_answer(measure);
    let custom = custom::unit_of(measure);
    PARTS
        .iter()
        .enumerate()
        .filter(move |(_, p)| match custom {
            Some(unit) => p.unit == unit,
            None => (p.answers)(measure) && (p.unit == Unit::StageStay) == stays,
        })
        .map(|(i, _)| i)
}

/// The units of the parts that answer `measures` (`staged`: the filters or groups name a
/// stage), for the reference's group values.
#[cfg(test)]
pub(crate) fn readers_of(measures: &[Measure], staged: bool) -> Vec<Unit> {
    measures
        .iter()
        .flat_map(|m| readers(*m, staged))
        .map(|p| PARTS[p].unit)
        .collect()
}

/// The dimensions that filter `measure`: those the rows of every part answering it carry
/// (directly, or through their deal, customer or campaign), and the stage for the open
/// deals; with [`Dimension::ANY_ATTRIBUTE`] (`attr.*`) and
/// [`Dimension::ANY_CUSTOMER_ATTRIBUTE`] (`customer.*`) when they carry every attribute
/// of their records or customers, and [`Dimension::Cohort`] when they all have a
/// customer. A filter on another dimension is refused by a part the measure reads.
pub fn filtering_dimensions(measure: Measure) -> Vec<Dimension> {
    Dimension::ALL
        .into_iter()
        .chain([
            Dimension::ANY_ATTRIBUTE,
            Dimension::ANY_CUSTOMER_ATTRIBUTE,
            Dimension::Cohort,
        ])
        .filter(|d| {
            let mut parts = readers(measure, *d == Dimension::Stage).peekable();
            parts.peek().is_some() && parts.all(|p| PARTS[p].unit.carries(*d))
        })
        .collect()
}

/// Rows from which building every part's index ahead of the queries, on two background
/// threads, is worth it ([`Index::large`]).
#[cfg(not(test))]
const WARM_ROWS: usize = 50_000;
/// Small under test, so the tests run the two-thread paths.
#[cfg(test)]
const WARM_ROWS: usize = 64;

fn count(n: usize) -> Decimal {
    Decimal::from(n as u64)
}

impl Index {
    /// Builds the index of a tenant's `rows`, whose kinds are at the write counts `kinds`.
    /// Parts of `prev` (an index of earlier rows) whose kinds have not changed since are
    /// shared; the others become their last base plus a delta of the rows written since,
    /// or reading records written since ([`LayeredPart::next`]): no write rebuilds a part.
    pub(crate) fn build(rows: &Rows, kinds: &KindGenerations, prev: Option<&Index>) -> Self {
        // The dimension values of the rows (with the names of sources and channels).
        let syms = rows.dims.clone();
        let name_sym = |name: &str| {
            syms.get(name)
                .expect("rows intern every source and channel")
        };
        let source_sym = Source::ALL.map(|s| name_sym(source_name(s)));
        let channel_sym = Channel::ALL.map(|c| name_sym(channel_name(c)));
        // Whether none of `deps` changed since `p` was built.
        let unchanged = |p: &Index, deps: &[RecordKind]| {
            deps.iter()
                .all(|k| p.built_from[*k as usize] == kinds[*k as usize])
        };
        // `prev` when none of `deps` changed since it was built.
        let reuse = |deps: &[RecordKind]| prev.filter(|p| unchanged(p, deps));

        // What rows inherit from customers and campaigns, shared by the parts built now;
        // kept while neither changed and no customer id was added (a part's rows hold only
        // customer ids its lookups know).
        let channels = || {
            let mut channels = vec![NONE; syms.names().len()];
            for c in rows.campaigns.iter() {
                channels[c.id as usize] = channel_sym[c.channel as usize];
            }
            channels
        };
        let lookups = match (reuse(&[RecordKind::Customer, RecordKind::Campaign]), prev) {
            (Some(p), _) if p.lookups.customer_ids() == rows.customer_ids.len() => {
                Arc::clone(&p.lookups)
            }
            (_, Some(p)) => Arc::new(p.lookups.next(
                Arc::clone(&rows.customers),
                Arc::clone(&rows.attributes[RecordKind::Customer as usize]),
                rows.customer_ids.len(),
                channels(),
            )),
            (_, None) => {
                let channels = channels();
                Arc::new(Lookups::new(
                    Arc::clone(&rows.customers),
                    Arc::clone(&rows.attributes[RecordKind::Customer as usize]),
                    rows.customer_ids.len(),
                    channels,
                    channel_sym,
                    source_sym,
                ))
            }
        };

        let custom = CustomParts::new(rows, &lookups, |reads| reuse(reads).map(|p| &p.custom));

        // What subscriptions are as a whole, kept while they do not change, else worked
        // out again for the customers whose subscriptions were written.
        let classes = match prev {
            Some(p) if unchanged(p, subscriptions::CLASSES_READ) => Arc::clone(&p.classes),
            Some(p) => Arc::new(p.classes.next(&rows.subscriptions)),
            None => Arc::new(SubscriptionClasses::of(&rows.subscriptions)),
        };

        // The part `$field` of `$module` (which declares `READS`) over today's rows
        // (`$now`, made only when needed): shared when none of its kinds changed, else the
        // previous part's base plus the delta of the rows written since and of those
        // `$inherited` lists given the base and the previous index's context (rows
        // reading other records changed since).
        macro_rules! layered {
            ($field:ident, $module:ident, $now:expr, $inherited:expr) => {
                match prev {
                    Some(p) if unchanged(p, $module::READS) => Arc::clone(&p.$field),
                    Some(p) => Arc::new(LayeredPart::next(&p.$field, $now, &$inherited)),
                    None => Arc::new(LayeredPart::built($now)),
                }
            };
        }
        // A part over the store's rows of `$kind` read through the lookups (its module
        // and field share a name).
        macro_rules! through_lookups {
            ($field:ident, $unit:ident, $kind:ident) => {
                layered!(
                    $field,
                    $field,
                    Part::new(
                        Unit::$unit,
                        Arc::clone(&rows.$field),
                        Arc::clone(&lookups),
                        &rows.attributes[RecordKind::$kind as usize],
                    ),
                    |base: &Part<_>, then: &Arc<Lookups>| changed_through_lookups(
                        base, then, &lookups
                    )
                )
            };
        }

        // Large tenants convert their rows on two threads: the deal side and the rest.
        let sales = || {
            let deals = through_lookups!(deals, Deal, Deal);
            // The stage parts are listed when first read, and maintained with the deals
            // (their base plus the delta of the deals written or reading records written).
            let stage_context = StageContext {
                deals: Arc::clone(&rows.deals),
                deal_attributes: Arc::clone(&rows.attributes[RecordKind::Deal as usize]),
                lookups: Arc::clone(&lookups),
            };
            let stages = match prev.and_then(|p| p.stages.get().map(|s| (p, s))) {
                Some((p, s)) if unchanged(p, deals::READS) => OnceLock::from(Arc::clone(s)),
                Some((_, s)) => OnceLock::from(Arc::new(s.next(&stage_context))),
                None => OnceLock::new(),
            };
            let quotas = layered!(
                quotas,
                quotas,
                Part::new(
                    Unit::Quota,
                    Arc::clone(&rows.quotas),
                    (),
                    &rows.attributes[RecordKind::Quota as usize],
                ),
                nothing_inherited
            );
            let leads = through_lookups!(leads, Lead, Lead);
            (deals, stage_context, stages, quotas, leads)
        };
        let rest = || {
            // Customers are read in place, with the first MRR of each through their
            // earliest subscription.
            let context = CustomerContext {
                lookups: Arc::clone(&lookups),
                subscriptions: Arc::clone(&rows.subscriptions),
                classes: Arc::clone(&classes),
            };
            let customers = layered!(
                customers,
                customers,
                Part::new(
                    Unit::Customer,
                    Arc::clone(&rows.customers),
                    context.clone(),
                    &rows.attributes[RecordKind::Customer as usize],
                ),
                |base: &Part<_>, then: &CustomerContext| {
                    customers::changed_through_context(base, then, &context)
                }
            );
            let spend = through_lookups!(spend, Spend, Spend);
            let campaigns = layered!(
                campaigns,
                campaigns,
                Part::new(
                    Unit::Campaign,
                    Arc::clone(&rows.campaigns),
                    Arc::clone(&lookups),
                    &rows.attributes[RecordKind::Campaign as usize],
                ),
                nothing_inherited
            );
            let purchases = through_lookups!(purchases, Purchase, Purchase);
            let tickets = through_lookups!(tickets, Ticket, Ticket);
            let surveys = through_lookups!(surveys, Survey, SurveyResponse);
            let activities = through_lookups!(activities, Activity, Activity);
            // Subscriptions are read in place, with what each one's start is: a write
            // changes the class of its customer's other subscriptions too.
            let context = SubscriptionContext {
                lookups: Arc::clone(&lookups),
                classes: Arc::clone(&classes),
            };
            let subscriptions = layered!(
                subscriptions,
                subscriptions,
                Part::new(
                    Unit::Subscription,
                    Arc::clone(&rows.subscriptions),
                    context.clone(),
                    &rows.attributes[RecordKind::Subscription as usize],
                ),
                |base: &Part<SubscriptionIndex>, then: &SubscriptionContext| {
                    let mut slots = changed_through_lookups(base, &then.lookups, &lookups);
                    slots.extend(classes.slots_changed_since(&then.classes));
                    slots
                }
            );
            (
                customers,
                spend,
                campaigns,
                purchases,
                subscriptions,
                tickets,
                surveys,
                activities,
            )
        };
        let (
            (deals, stage_context, stages, quotas, leads),
            (customers, spend, campaigns, purchases, subscriptions, tickets, surveys, activities),
        ) = if rows.len() >= WARM_ROWS {
            std::thread::scope(|scope| {
                let sales = scope.spawn(sales);
                let rest = rest();
                let sales = sales
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e));
                (sales, rest)
            })
        } else {
            (sales(), rest())
        };
        Index {
            deals,
            stage_context,
            stages,
            quotas,
            leads,
            customers,
            spend,
            campaigns,
            purchases,
            subscriptions,
            tickets,
            surveys,
            activities,
            custom,
            syms,
            lookups,
            classes,
            built_from: *kinds,
            unconverted: rows.unconverted.clone(),
            partitions_from_image: Default::default(),
        }
    }

    /// Whether the index is large enough to be worth [`Index::warm`]ing in the background.
    pub(crate) fn large(&self) -> bool {
        self.deals.len() + self.leads.len() + self.purchases.len() >= WARM_ROWS
    }

    /// The stage exits and stays, their entries listed now if they were not yet.
    fn stages(&self) -> &StageParts {
        self.stages.get_or_build(self.deals.len(), || {
            Arc::new(StageParts::list(&self.stage_context))
        })
    }

    /// Builds every part's index now, one after the other (each is otherwise built by the
    /// first query that reads it): run on a background thread, it leaves the other core to
    /// the queries, which wait only for the parts they read (a part both reach is built
    /// once). Stops between parts once `wanted` says the index is no longer worth it.
    pub(crate) fn warm(&self, wanted: &dyn Fn() -> bool) {
        // Not the stage exits and stays: they are read through a stage partition (the
        // dashboard's stage groups), and an index over all of them would only add memory.
        macro_rules! order {
            ($(($module:ident, $unit:ident)),*) => {
                [$(&*self.$module as &dyn Warm),*]
            };
        }
        let order = with_parts!(order);
        for p in order {
            if !wanted() {
                return;
            }
            p.warm();
        }
        // The stage parts list their dependents, and large deltas are folded too.
        if let Some(stages) = self.stages.get() {
            stages.exits.list_dependents();
            stages.exits.fold_if_large();
            if !wanted() {
                return;
            }
            stages.stays.list_dependents();
            stages.stays.fold_if_large();
        }
    }

    fn resolve(
        &self,
        filters: &BTreeMap<Dimension, String>,
    ) -> Result<ResolvedFilters, MetricError> {
        let mut resolved = ResolvedFilters::default();
        for (d, v) in filters {
            if *d == Dimension::Cohort {
                resolved.cohort = Some(cohort::window(v)?);
            } else {
                resolved.values.push((*d, self.syms.get(v)));
            }
        }
        Ok(resolved)
    }

    /// The value of `measure` over `scope`: the sum of the shares of the parts that
    /// answer it (one part, but for new-customer revenue: won deals and purchases).
    /// Undefined ([`MetricError::UndefinedMeasure`]) when it may read an amount that could
    /// not be converted to the base currency ([`unconverted`]).
    pub(crate) fn measure(&self, measure: Measure, scope: &Scope) -> Result<Decimal, MetricError> {
        let value = self.read(measure, scope)?;
        unconverted::check(&self.unconverted, measure, &scope.window, &self.syms)?;
        Ok(value)
    }

    fn read(&self, measure: Measure, scope: &Scope) -> Result<Decimal, MetricError> {
        let f = self.resolve(&scope.filters)?;
        let w = &scope.window;
        if let Measure::Custom(declared) = measure {
            let value = self.custom.measure(declared, w, &f, &self.syms)?;
            return Ok(value.normalize());
        }
        if scope.filters.contains_key(&Dimension::Stage) && stages::stays_answer(measure) {
            // An open deal is read through its current stage.
            let value = self.stages().stays.measure(measure, |stays| {
                stages::open_in_stage(stays, measure, w.end, &f)
            })?;
            return Ok(value.normalize());
        }
        // Distinct counts and means, each answered by one part, are read from its base
        // and delta by their own rules.
        let not_additive = match measure {
            Measure::Buyers | Measure::RepeatBuyers => {
                Some(purchases::buyers(&self.purchases, measure, w, &f)?)
            }
            Measure::ClosingReps | Measure::UpsoldCustomers => {
                Some(deals::distinct(&self.deals, measure, w, &f)?)
            }
            Measure::PayingCustomersAtEnd => {
                Some(subscriptions::paying_customers(&self.subscriptions, w, &f)?)
            }
            Measure::MeanChurnedTenureYears | Measure::NewCustomerMeanFirstMrr => {
                Some(customers::mean(&self.customers, measure, w, &f)?)
            }
            _ => None,
        };
        if let Some(value) = not_additive {
            return Ok(value.normalize());
        }
        let mut value = Decimal::ZERO;
        let mut answered = false;
        let mut share = |answers: bool, read: &dyn Fn() -> Result<Decimal, MetricError>| {
            if answers {
                value = add(value, read()?)?;
                answered = true;
            }
            Ok::<(), MetricError>(())
        };
        macro_rules! shares {
            ($(($module:ident, $unit:ident)),*) => {
                $(share($module::answers(measure), &|| {
                    self.$module.measure(measure, |part| $module::measure(part, measure, w, &f))
                })?;)*
            };
        }
        with_parts!(shares);
        share(stages::exits_answer(measure), &|| {
            self.stages()
                .exits
                .measure(measure, |exits| stages::measure(exits, measure, w, &f))
        })?;
        assert!(answered, "no part answers {measure:?}");
        if let Some(unit) = crate::units::duration_unit(measure) {
            // The parts summed whole nanoseconds; the one division.
            value = crate::units::in_unit(value, unit)?;
        }
        Ok(value.normalize())
    }

    /// The starts of the cohort periods (`period_of`) of the customers of the records
    /// the parts answering `measures` read (every part with customers when none) and
    /// matching the scope's filters, sorted ([`kpi_core::DataSource::cohort_periods`]).
    pub(crate) fn cohort_periods(
        &self,
        scope: &Scope,
        measures: &[Measure],
        period_of: cohort::PeriodOf<'_>,
    ) -> Result<BTreeSet<Timestamp>, MetricError> {
        let f = self.resolve(&scope.filters)?;
        cohort::periods(self, &f, measures, period_of)
    }

    /// The sorted distinct values of `dimension` among the records of the parts that
    /// answer `measures` and match the scope's filters (the window is ignored): a part
    /// that cannot carry the dimension or a filter is an error. With no measures, among
    /// every part carrying the dimension and the filters.
    pub(crate) fn group_values(
        &self,
        dimension: Dimension,
        scope: &Scope,
        measures: &[Measure],
    ) -> Result<Vec<String>, MetricError> {
        let f = self.resolve(&scope.filters)?;
        if dimension == Dimension::Cohort {
            return cohort::group_values(self, &f, measures);
        }
        let staged = dimension == Dimension::Stage || scope.filters.contains_key(&Dimension::Stage);
        let mut read = [false; PARTS.len()];
        for m in measures {
            for p in readers(*m, staged) {
                read[p] = true;
            }
        }
        if measures.is_empty() {
            for (p, declared) in PARTS.iter().enumerate() {
                read[p] = declared.unit.carries(dimension)
                    && scope.filters.keys().all(|d| declared.unit.carries(*d))
                    && (dimension == Dimension::Stage) == declared.unit.carries(Dimension::Stage);
            }
        }
        let mut syms = HashSet::new();
        let mut p = 0;
        macro_rules! values {
            ($(($module:ident, $unit:ident)),*) => {
                $(
                    if read[p] {
                        self.$module.values(dimension, &f, &mut syms)?;
                    }
                    p += 1;
                )*
            };
        }
        with_parts!(values);
        // The stage parts follow the others in `PARTS`.
        if read[p] {
            self.stages().exits.values(dimension, &f, &mut syms)?;
        }
        if read[p + 1] {
            self.stages().stays.values(dimension, &f, &mut syms)?;
        }
        let mut out: Vec<String> = syms
            .into_iter()
            .map(|s| self.syms.name(s).to_owned())
            .collect();
        out.sort();
        Ok(out)
    }
}
