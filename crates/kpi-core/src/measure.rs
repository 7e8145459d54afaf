//! Measures: the aggregates over stored records that metric inputs are read from.
//!
//! The boundary rule for point-in-time measures: the state "at t" is the state after every
//! event strictly before `t` — a customer is active at `t` when `acquired_at < t` and
//! (`churned_at` is null or `churned_at ≥ t`). Events at exactly `t` belong to the window
//! that starts at `t`, so for a window `W = [start, end)`:
//! `at_end = at_start − churned in W + acquired in W − (acquired and churned in W)`, and a
//! customer acquired at exactly `start` is "acquired in W", not "active at start".

use std::collections::{BTreeMap, BTreeSet};

use crate::custom_measure::CustomMeasure;
use crate::descriptor::Dimension;
use crate::error::MetricError;
use crate::window::Window;
use jiff::Timestamp;
use rust_decimal::Decimal;

/// Spend categories, as a set (bit `i` = `SpendCategories::NAMES[i]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpendCategories(pub u8);

impl SpendCategories {
    /// The category names, in bit order.
    pub const NAMES: [&'static str; 6] = [
        "advertising",
        "salaries",
        "commissions",
        "overhead",
        "tools",
        "other",
    ];
    /// Every category.
    pub const ALL: SpendCategories = SpendCategories(0b11_1111);

    /// The set of the named categories (unknown names are ignored).
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Self {
        let mut bits = 0u8;
        for n in names {
            if let Some(i) = Self::NAMES.iter().position(|c| *c == n.as_ref()) {
                bits |= 1 << i;
            }
        }
        SpendCategories(bits)
    }

    /// Whether category `index` (position in [`SpendCategories::NAMES`]) is in the set.
    pub fn contains_index(self, index: usize) -> bool {
        index < 8 && self.0 & (1 << index) != 0
    }
}

/// The kind of a survey response.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum SurveyKind {
    /// Net promoter score.
    Nps,
    /// Customer satisfaction.
    Csat,
    /// Customer effort score.
    Ces,
}

/// An aggregate over the stored records of one tenant, for one [`Scope`].
///
/// "in W" means `start ≤ t < end` for the scope's window. Durations are exact elapsed time
/// (a day is 86 400 s, an hour 3 600 s, a year 365 days). Dimension filters of the scope
/// restrict the records each measure reads; see each kind's dimensions in ARCHITECTURE.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Measure {
    // ---- deals ----
    /// Count of deals with status won and `closed_at` in W.
    DealsWon,
    /// Count of deals with status lost and `closed_at` in W.
    DealsLost,
    /// Sum of `amount` of won deals closed in W.
    WonAmount,
    /// Sum over won deals closed in W of `closed_at − created_at`, in days.
    WonCycleDaysTotal,
    /// Distinct owners of deals (won or lost) closed in W.
    ClosingReps,
    /// Count of deals created before end that are open at end (status open, or closed at or
    /// after end). With a `stage` filter or group: the deal's current stage at end (the last
    /// stage entered before end).
    DealsOpen,
    /// Sum of `amount` of the deals counted by [`Measure::DealsOpen`].
    OpenAmount,
    /// Stage exits in W: a deal exits a stage when it enters the next one or closes; both
    /// in W. Grouped by `stage`, the exited stage.
    StageExits,
    /// Sum over stage exits in W of the time spent in the stage, in days.
    StageDaysTotal,
    /// Distinct customers with a won `upsell` or `cross_sell` deal closed in W.
    UpsoldCustomers,
    /// Sum of `amount` of won deals closed in W that carry a campaign id.
    CampaignAttributedRevenue,
    /// Sum of `amount` of won deals closed in W whose campaign's channel is email.
    EmailAttributedRevenue,
    // ---- quotas ----
    /// Sum of quota amounts overlapping W, each prorated by the fraction of its period
    /// (in days) that lies in W.
    QuotaProrated,
    // ---- leads ----
    /// Count of leads created in W.
    LeadsCreated,
    /// Count of leads created in W with `converted_at < end`.
    LeadsConverted,
    // ---- customers ----
    /// Count of customers acquired in W.
    CustomersAcquired,
    /// Count of customers acquired in W whose source is marketing.
    CustomersAcquiredFromMarketing,
    /// Count of customers active at start (see the module's boundary rule).
    CustomersAtStart,
    /// Count of customers active at end.
    CustomersAtEnd,
    /// Count of customers active at start who churned in W.
    CustomersChurnedFromStart,
    /// Count of customers acquired in W and active at end.
    CustomersNewRetained,
    /// Count of customers active at any time in W (`acquired_at < end` and not churned
    /// before start).
    CustomersActiveInWindow,
    /// Mean tenure in years (`churned_at − acquired_at`, 365-day years) of customers who
    /// churned before end; 0 when none did.
    MeanChurnedTenureYears,
    /// Count of customers who churned before end (the tenure sample size).
    CustomersChurnedBeforeEnd,
    /// Won deal amounts and purchases in W of customers acquired in W.
    NewCustomerRevenue,
    /// [`Measure::NewCustomerRevenue`] restricted to customers whose source is marketing.
    NewCustomerRevenueFromMarketing,
    /// Mean first MRR (first `mrr_changes` entry of their earliest subscription) of
    /// customers acquired in W that have a subscription; 0 when none.
    NewCustomerMeanFirstMrr,
    // ---- spend & campaigns ----
    /// Sum of spend amounts in W in the given categories.
    Spend(SpendCategories),
    /// Sum of spend amounts in W that carry a campaign id.
    CampaignSpend,
    /// Count of email campaigns started in W.
    EmailCampaigns,
    /// Sum of `delivered` of email campaigns started in W.
    EmailDelivered,
    /// Sum of `opens` of email campaigns started in W.
    EmailOpens,
    /// Sum of `clicks` of email campaigns started in W.
    EmailClicks,
    // ---- purchases ----
    /// Sum of purchase amounts in W.
    PurchaseRevenue,
    /// Count of purchases in W.
    Purchases,
    /// Distinct customers with a purchase in W.
    Buyers,
    /// Distinct customers with two or more purchases in W.
    RepeatBuyers,
    // ---- subscriptions ----
    /// Count of subscriptions with `renewal_due_at` in W.
    RenewalsDue,
    /// Count of those with `renewed` true.
    Renewed,
    /// Sum of the MRR in effect at end of subscriptions active at end.
    MrrAtEnd,
    /// Sum of the MRR in effect at start of subscriptions active at start.
    MrrAtStart,
    /// Distinct customers with a subscription active at end.
    PayingCustomersAtEnd,
    /// First MRR of subscriptions started in W whose customer had no subscription active
    /// when it started and never had paid MRR before it (see
    /// [`Measure::ReactivationMrr`]): the first MRR of a customer who never paid.
    NewMrr,
    /// First MRR of subscriptions started in W whose customer had no subscription active
    /// when it started but had paid MRR before it: some other subscription of theirs had
    /// an MRR above 0 in effect from an instant strictly before this start (its start, or
    /// a change before its end, to an MRR above 0, at a time before this `started_at`).
    /// A returning customer, as ChartMogul's and Stripe's reactivation MRR.
    ReactivationMrr,
    /// Sum of MRR increases in W of existing subscriptions, plus the first MRR of
    /// subscriptions started in W by customers who already had one active.
    ExpansionMrr,
    /// Sum of MRR decreases in W that do not end the subscription (the new MRR is > 0).
    ContractionMrr,
    /// MRR in effect just before each subscription ended in W (by `ended_at`, or a change
    /// to 0).
    ChurnedMrr,
    // ---- tickets ----
    /// Count of tickets with `resolved_at` in W.
    TicketsResolved,
    /// Sum over them of `resolved_at − opened_at`, in hours.
    ResolutionHoursTotal,
    /// Count of tickets with `first_response_at` in W.
    TicketsResponded,
    /// Sum over them of `first_response_at − opened_at`, in hours.
    FirstResponseHoursTotal,
    // ---- surveys ----
    /// Count of survey responses of this kind in W whose `scale_max` is `scale`
    /// (0 = any scale), with `min ≤ score ≤ max` (bounds as whole numbers; `u32::MAX`
    /// for no upper bound).
    SurveyResponses {
        /// The survey kind.
        kind: SurveyKind,
        /// Required `scale_max`, or 0 for any.
        scale: u32,
        /// Lowest score counted.
        min: u32,
        /// Highest score counted.
        max: u32,
    },
    /// Sum of scores of survey responses of this kind in W.
    SurveyScoreTotal(SurveyKind),
    // ---- activities ----
    /// Count of activities with `occurred_at` in W.
    Activities,
    /// Sum of the amounts of activities in W (an activity without one adds nothing).
    ActivityAmount,
    // ---- declared by a KPI crate ----
    /// A measure a KPI crate declares ([`CustomMeasure`]): identified by its name.
    Custom(&'static CustomMeasure),
}

/// What one measure is computed over: a window and dimension constraints (the request's
/// filters plus the group the row is for).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    /// The window (a whole request window or one bucket).
    pub window: Window,
    /// Dimension = value constraints; a record must match all of them.
    pub filters: BTreeMap<Dimension, String>,
}

impl Scope {
    /// A scope over `window` with no constraints.
    pub fn new(window: Window) -> Self {
        Self {
            window,
            filters: BTreeMap::new(),
        }
    }
}

/// The stored side: answers measures for one tenant. Implemented by kpi-store.
pub trait DataSource: Sync {
    /// The value of `measure` over `scope`.
    fn measure(&self, measure: Measure, scope: &Scope) -> Result<Decimal, MetricError>;

    /// The distinct values `dimension` takes among the tenant's records that `measures`
    /// read (every record when `measures` is empty) and that match the scope's filters,
    /// sorted: the groups a grouped answer can have rows for (groups whose inputs are all
    /// zero are dropped by the engine). A record without an attribute has the value `""`.
    fn group_values(
        &self,
        dimension: Dimension,
        scope: &Scope,
        measures: &[Measure],
    ) -> Result<Vec<String>, MetricError>;

    /// The cohort periods of the customers of the tenant's records that `measures` read
    /// (every record with a customer when empty) and that match the scope's filters: the
    /// starts of the windows `period_of` puts their acquisition instants in, sorted. The
    /// default cuts every distinct instant [`DataSource::group_values`] lists for
    /// [`Dimension::Cohort`]; a store holding its rows sorted by acquisition cuts one
    /// instant a period.
    fn cohort_periods(
        &self,
        scope: &Scope,
        measures: &[Measure],
        period_of: &dyn Fn(Timestamp) -> Result<Window, MetricError>,
    ) -> Result<BTreeSet<Timestamp>, MetricError> {
        let mut periods = BTreeSet::new();
        for at in self.group_values(Dimension::Cohort, scope, measures)? {
            let at: Timestamp = at
                .parse()
                .map_err(|e| MetricError::Store(format!("acquisition instant `{at}`: {e}")))?;
            periods.insert(period_of(at)?.start);
        }
        Ok(periods)
    }
}
