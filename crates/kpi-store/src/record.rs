//! The CRM records kpid holds, in domain terms (the server converts protobuf at its edge).
//! Times are UTC instants; money and scores are exact decimals.

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub use crate::attributes::{AttributeValue, Attributes};
pub use kpi_core::SurveyKind;

/// Where a customer or lead came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Source {
    /// Marketing-sourced.
    Marketing,
    /// Sourced by sales.
    Sales,
    /// A referral.
    Referral,
    /// A partner.
    Partner,
    /// Anything else.
    Other,
}

impl Source {
    /// Every source, in declaration order (`as usize` is the position).
    pub const ALL: [Source; 5] = [
        Source::Marketing,
        Source::Sales,
        Source::Referral,
        Source::Partner,
        Source::Other,
    ];
}

/// A deal's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DealStatus {
    /// Still open.
    Open,
    /// Closed won.
    Won,
    /// Closed lost.
    Lost,
}

/// What a deal sells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DealKind {
    /// A new customer.
    NewBusiness,
    /// More of the same to an existing customer.
    Upsell,
    /// Another product to an existing customer.
    CrossSell,
    /// A renewal.
    Renewal,
}

/// What money was spent on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SpendCategory {
    /// Advertising.
    Advertising,
    /// Salaries.
    Salaries,
    /// Commissions.
    Commissions,
    /// Overhead.
    Overhead,
    /// Tools.
    Tools,
    /// Anything else.
    Other,
}

impl SpendCategory {
    /// Position in [`kpi_core::SpendCategories::NAMES`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A marketing channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Channel {
    /// Email.
    Email,
    /// Paid ads.
    Paid,
    /// Social media.
    Social,
    /// Events.
    Event,
    /// Anything else.
    Other,
}

impl Channel {
    /// Every channel, in declaration order (`as usize` is the position).
    pub const ALL: [Channel; 5] = [
        Channel::Email,
        Channel::Paid,
        Channel::Social,
        Channel::Event,
        Channel::Other,
    ];
}

/// A customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    /// Id, unique per tenant and kind.
    pub id: String,
    /// When they became a customer.
    pub acquired_at: Timestamp,
    /// When they churned, if they did.
    pub churned_at: Option<Timestamp>,
    /// Where they came from.
    pub source: Source,
    /// The campaign that acquired them.
    pub campaign_id: Option<String>,
    /// Their segment (SMB, enterprise…).
    pub segment: Option<String>,
    /// Their account owner.
    pub owner: Option<String>,
    /// Custom attributes, by name (absent in values stored before they existed).
    #[serde(default)]
    pub attributes: Attributes,
}

/// A lead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lead {
    /// Id.
    pub id: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// Where it came from.
    pub source: Source,
    /// Its campaign.
    pub campaign_id: Option<String>,
    /// When it converted to a customer.
    pub converted_at: Option<Timestamp>,
    /// The customer it converted to.
    pub customer_id: Option<String>,
    /// Custom attributes, by name (absent in values stored before they existed).
    #[serde(default)]
    pub attributes: Attributes,
}

/// A deal stage entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageEntry {
    /// The stage's name.
    pub stage: String,
    /// When the deal entered it.
    pub entered_at: Timestamp,
}

/// A deal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deal {
    /// Id.
    pub id: String,
    /// The sales rep who owns it.
    pub owner: String,
    /// Its amount.
    pub amount: Decimal,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was closed (won or lost).
    pub closed_at: Option<Timestamp>,
    /// Open, won or lost.
    pub status: DealStatus,
    /// What it sells.
    pub kind: DealKind,
    /// The customer it is for.
    pub customer_id: Option<String>,
    /// The campaign it is attributed to.
    pub campaign_id: Option<String>,
    /// The stages it went through, in order.
    pub stage_history: Vec<StageEntry>,
    /// Custom attributes, by name (absent in values stored before they existed).
    #[serde(default)]
    pub attributes: Attributes,
    /// The currency of its amounts (ISO 4217); none: the tenant's base currency (absent in
    /// values stored before currencies existed).
    #[serde(default)]
    pub currency: Option<String>,
}

/// A change of a subscription's MRR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MrrChange {
    /// When it took effect.
    pub at: Timestamp,
    /// The MRR from then on (0 ends the subscription).
    pub mrr: Decimal,
}

/// A recurring subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// Id.
    pub id: String,
    /// The paying customer.
    pub customer_id: String,
    /// When it started.
    pub started_at: Timestamp,
    /// When it ended, if it did.
    pub ended_at: Option<Timestamp>,
    /// MRR changes, sorted by time; the first is the starting MRR.
    pub mrr_changes: Vec<MrrChange>,
    /// When its renewal is due.
    pub renewal_due_at: Option<Timestamp>,
    /// Whether it was renewed.
    pub renewed: Option<bool>,
    /// Custom attributes, by name (absent in values stored before they existed).
    #[serde(default)]
    pub attributes: Attributes,
    /// The currency of its amounts (ISO 4217); none: the tenant's base currency (absent in
    /// values stored before currencies existed).
    #[serde(default)]
    pub currency: Option<String>,
}

/// A one-time purchase (non-recurring revenue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purchase {
    /// Id.
    pub id: String,
    /// The buyer.
    pub customer_id: String,
    /// Its amount.
    pub amount: Decimal,
    /// When it happened.
    pub at: Timestamp,
    /// Custom attributes, by name (absent in values stored before they existed).
    #[serde(default)]
    pub attributes: Attributes,
    /// The currency of its amounts (ISO 4217); none: the tenant's base currency (absent in
    /// values stored before currencies existed).
    #[serde(default)]
    pub currency: Option<String>,
}

/// Money spent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spend {
    /// Id.
    pub id: String,
    /// When it was spent.
    pub at: Timestamp,
    /// How much.
    pub amount: Decimal,
    /// On what.
    pub category: SpendCategory,
    /// Through which channel.
    pub channel: Option<Channel>,
    /// For which campaign.
    pub campaign_id: Option<String>,
    /// Custom attributes, by name (absent in values stored before they existed).
    #[serde(default)]
    pub attributes: Attributes,
    /// The currency of its amounts (ISO 4217); none: the tenant's base currency (absent in
    /// values stored before currencies existed).
    #[serde(default)]
    pub currency: Option<String>,
}

/// A marketing campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Campaign {
    /// Id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its channel.
    pub channel: Channel,
    /// When it started.
    pub started_at: Timestamp,
    /// Messages delivered.
    pub delivered: u64,
    /// Messages opened.
    pub opens: u64,
    /// Links clicked.
    pub clicks: u64,
    /// Unsubscribes.
    pub unsubscribes: u64,
    /// Custom attributes, by name (absent in values stored before they existed).
    #[serde(default)]
    pub attributes: Attributes,
    /// The currency of its amounts (ISO 4217); none: the tenant's base currency (absent in
    /// values stored before currencies existed).
    #[serde(default)]
    pub currency: Option<String>,
}

/// A support ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// Id.
    pub id: String,
    /// The customer who opened it.
    pub customer_id: Option<String>,
    /// The agent handling it.
    pub agent: String,
    /// When it was opened.
    pub opened_at: Timestamp,
    /// When it was first answered.
    pub first_response_at: Option<Timestamp>,
    /// When it was resolved.
    pub resolved_at: Option<Timestamp>,
    /// Custom attributes, by name (absent in values stored before they existed).
    #[serde(default)]
    pub attributes: Attributes,
}

/// A survey answer (NPS, CSAT or CES).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurveyResponse {
    /// Id.
    pub id: String,
    /// The customer who answered.
    pub customer_id: Option<String>,
    /// Which survey.
    pub kind: SurveyKind,
    /// The score, `0 ≤ score ≤ scale_max`.
    pub score: Decimal,
    /// The top of the scale (10 for NPS, 5 for a 1–5 CSAT).
    pub scale_max: u32,
    /// When it was answered.
    pub at: Timestamp,
    /// Custom attributes, by name (absent in values stored before they existed).
    #[serde(default)]
    pub attributes: Attributes,
}

/// A sales quota.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    /// Id.
    pub id: String,
    /// The rep it is for.
    pub owner: String,
    /// First instant of its period.
    pub period_start: Timestamp,
    /// First instant after its period.
    pub period_end: Timestamp,
    /// The amount to sell in the period.
    pub amount: Decimal,
    /// Custom attributes, by name (absent in values stored before they existed).
    #[serde(default)]
    pub attributes: Attributes,
    /// The currency of its amounts (ISO 4217); none: the tenant's base currency (absent in
    /// values stored before currencies existed).
    #[serde(default)]
    pub currency: Option<String>,
}

/// An activity: a call, a meeting, an email, a demo… that a rep or agent did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    /// Id.
    pub id: String,
    /// What it was (`call`, `meeting`…), named as attributes are.
    pub activity_type: String,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// The customer it concerned.
    pub customer_id: Option<String>,
    /// The lead it concerned.
    pub lead_id: Option<String>,
    /// The deal it concerned.
    pub deal_id: Option<String>,
    /// Who did it.
    pub owner: Option<String>,
    /// An amount it carries.
    pub amount: Option<Decimal>,
    /// Custom attributes, by name.
    #[serde(default)]
    pub attributes: Attributes,
}

/// An exchange rate: the value of one unit of a currency in the tenant's base currency,
/// from an instant on (until the currency's next rate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FxRate {
    /// Id.
    pub id: String,
    /// The currency it values (ISO 4217).
    pub currency: String,
    /// From when it applies.
    pub effective_at: Timestamp,
    /// The value of one unit of `currency` in the base currency, > 0.
    pub rate: Decimal,
    /// Custom attributes, by name.
    #[serde(default)]
    pub attributes: Attributes,
    /// The base currency the rate is towards: the tenant's when it was written (the store
    /// sets it; none: no base was set). A rate towards another base than the tenant's
    /// current one converts nothing (after a change of base, rates are sent again).
    #[serde(default)]
    pub base: Option<String>,
}

/// The kind of a record: the `oneof record` field name in the proto.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RecordKind {
    /// `customer`
    Customer,
    /// `lead`
    Lead,
    /// `deal`
    Deal,
    /// `subscription`
    Subscription,
    /// `purchase`
    Purchase,
    /// `spend`
    Spend,
    /// `campaign`
    Campaign,
    /// `ticket`
    Ticket,
    /// `survey_response`
    SurveyResponse,
    /// `quota`
    Quota,
    /// `activity`
    Activity,
    /// `fx_rate`
    FxRate,
}

impl RecordKind {
    /// Every kind.
    pub const ALL: [RecordKind; 12] = [
        RecordKind::Customer,
        RecordKind::Lead,
        RecordKind::Deal,
        RecordKind::Subscription,
        RecordKind::Purchase,
        RecordKind::Spend,
        RecordKind::Campaign,
        RecordKind::Ticket,
        RecordKind::SurveyResponse,
        RecordKind::Quota,
        RecordKind::Activity,
        RecordKind::FxRate,
    ];

    /// The proto oneof field name (`survey_response`).
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Customer => "customer",
            RecordKind::Lead => "lead",
            RecordKind::Deal => "deal",
            RecordKind::Subscription => "subscription",
            RecordKind::Purchase => "purchase",
            RecordKind::Spend => "spend",
            RecordKind::Campaign => "campaign",
            RecordKind::Ticket => "ticket",
            RecordKind::SurveyResponse => "survey_response",
            RecordKind::Quota => "quota",
            RecordKind::Activity => "activity",
            RecordKind::FxRate => "fx_rate",
        }
    }

    /// Parses a kind from its proto oneof field name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One CRM record of any kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// A customer.
    Customer(Customer),
    /// A lead.
    Lead(Lead),
    /// A deal.
    Deal(Deal),
    /// A subscription.
    Subscription(Subscription),
    /// A purchase.
    Purchase(Purchase),
    /// Spend.
    Spend(Spend),
    /// A campaign.
    Campaign(Campaign),
    /// A ticket.
    Ticket(Ticket),
    /// A survey response.
    SurveyResponse(SurveyResponse),
    /// A quota.
    Quota(Quota),
    /// An activity.
    Activity(Activity),
    /// An exchange rate.
    FxRate(FxRate),
}

impl Record {
    /// The record's kind.
    pub fn kind(&self) -> RecordKind {
        match self {
            Record::Customer(_) => RecordKind::Customer,
            Record::Lead(_) => RecordKind::Lead,
            Record::Deal(_) => RecordKind::Deal,
            Record::Subscription(_) => RecordKind::Subscription,
            Record::Purchase(_) => RecordKind::Purchase,
            Record::Spend(_) => RecordKind::Spend,
            Record::Campaign(_) => RecordKind::Campaign,
            Record::Ticket(_) => RecordKind::Ticket,
            Record::SurveyResponse(_) => RecordKind::SurveyResponse,
            Record::Quota(_) => RecordKind::Quota,
            Record::Activity(_) => RecordKind::Activity,
            Record::FxRate(_) => RecordKind::FxRate,
        }
    }

    /// The record's custom attributes.
    pub fn attributes(&self) -> &Attributes {
        match self {
            Record::Customer(r) => &r.attributes,
            Record::Lead(r) => &r.attributes,
            Record::Deal(r) => &r.attributes,
            Record::Subscription(r) => &r.attributes,
            Record::Purchase(r) => &r.attributes,
            Record::Spend(r) => &r.attributes,
            Record::Campaign(r) => &r.attributes,
            Record::Ticket(r) => &r.attributes,
            Record::SurveyResponse(r) => &r.attributes,
            Record::Quota(r) => &r.attributes,
            Record::Activity(r) => &r.attributes,
            Record::FxRate(r) => &r.attributes,
        }
    }

    /// The record's id.
    pub fn id(&self) -> &str {
        match self {
            Record::Customer(r) => &r.id,
            Record::Lead(r) => &r.id,
            Record::Deal(r) => &r.id,
            Record::Subscription(r) => &r.id,
            Record::Purchase(r) => &r.id,
            Record::Spend(r) => &r.id,
            Record::Campaign(r) => &r.id,
            Record::Ticket(r) => &r.id,
            Record::SurveyResponse(r) => &r.id,
            Record::Quota(r) => &r.id,
            Record::Activity(r) => &r.id,
            Record::FxRate(r) => &r.id,
        }
    }
}

impl Record {
    /// The currency the record's amounts are in, when it names one (none: the base).
    pub fn currency(&self) -> Option<&str> {
        match self {
            Record::Deal(r) => r.currency.as_deref(),
            Record::Subscription(r) => r.currency.as_deref(),
            Record::Purchase(r) => r.currency.as_deref(),
            Record::Spend(r) => r.currency.as_deref(),
            Record::Campaign(r) => r.currency.as_deref(),
            Record::Quota(r) => r.currency.as_deref(),
            _ => None,
        }
    }
}
