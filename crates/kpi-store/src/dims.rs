//! Which dimensions each kind of record carries, and their values.
//!
//! - deal: owner, campaign, channel (its campaign's), source and segment (its customer's);
//!   a stage exit of a deal also carries stage (the exited stage), and so does a deal's
//!   stay in a stage (read by the open-deal measures: the deal's current stage)
//! - quota: owner
//! - lead: source, campaign, channel (via its campaign)
//! - customer: owner, source, campaign, channel (via its campaign), segment
//! - spend: campaign, channel (its own, else its campaign's)
//! - campaign: campaign (its id), channel
//! - purchase, subscription: owner, source, segment (via the customer)
//! - ticket: agent, source, segment (via the customer)
//! - survey response: source, segment (via the customer)
//! - activity: owner (who did it), activity_type, source and segment (via its customer)
//!
//! Every unit also carries its records' custom attributes (`attr.<name>`; a stage exit or
//! stay its deal's), and a unit whose rows have a customer (deals and their stage exits and
//! stays, customers themselves, purchases, subscriptions, tickets, survey responses,
//! activities) its customer's (`customer.<name>`); quotas, spend, campaigns and leads
//! have none.
//!
//! A filter on a dimension a kind does not carry is an error, never ignored; a record of a
//! kind that carries a built-in dimension but has no value for it matches no filter on it,
//! and one without an attribute has the attribute's value `""`.

#[cfg(test)]
use std::collections::HashMap;

use kpi_core::Dimension;

#[cfg(test)]
use crate::attributes::Attributes;
#[cfg(test)]
use crate::record::{
    Activity, Campaign, Customer, Deal, Lead, Purchase, Quota, Record, RecordKind, Spend,
    Subscription, SurveyResponse, Ticket,
};
use crate::record::{Channel, Source};
#[cfg(test)]
use crate::store::Canonical;

/// Number of dimensions.
pub(crate) const NDIMS: usize = Dimension::ALL.len();

/// Position of a built-in dimension in [`Dimension::ALL`].
pub(crate) fn dim_index(d: Dimension) -> usize {
    match d {
        Dimension::Owner => 0,
        Dimension::Source => 1,
        Dimension::Campaign => 2,
        Dimension::Channel => 3,
        Dimension::Segment => 4,
        Dimension::Stage => 5,
        Dimension::Agent => 6,
        Dimension::ActivityType => 7,
        Dimension::Attribute(_) | Dimension::CustomerAttribute(_) | Dimension::Cohort => {
            unreachable!("{d} is not a built-in dimension")
        }
    }
}

/// The lowercase name of a source, as filters and groups use it.
pub(crate) fn source_name(s: Source) -> &'static str {
    match s {
        Source::Marketing => "marketing",
        Source::Sales => "sales",
        Source::Referral => "referral",
        Source::Partner => "partner",
        Source::Other => "other",
    }
}

/// The lowercase name of a channel, as filters and groups use it.
pub(crate) fn channel_name(c: Channel) -> &'static str {
    match c {
        Channel::Email => "email",
        Channel::Paid => "paid",
        Channel::Social => "social",
        Channel::Event => "event",
        Channel::Other => "other",
    }
}

/// The kinds of rows the query side answers from: the record kinds, plus the stage exits
/// of deals and their stays in a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    Deal,
    StageExit,
    StageStay,
    Quota,
    Lead,
    Customer,
    Spend,
    Campaign,
    Purchase,
    Subscription,
    Ticket,
    Survey,
    Activity,
}

impl Unit {
    /// The dimensions rows of this unit carry.
    pub(crate) fn carried(self) -> &'static [Dimension] {
        use Dimension::*;
        match self {
            Unit::Deal => &[Owner, Source, Campaign, Channel, Segment],
            Unit::StageExit | Unit::StageStay => {
                &[Owner, Source, Campaign, Channel, Segment, Stage]
            }
            Unit::Quota => &[Owner],
            Unit::Lead => &[Source, Campaign, Channel],
            Unit::Customer => &[Owner, Source, Campaign, Channel, Segment],
            Unit::Spend => &[Campaign, Channel],
            Unit::Campaign => &[Campaign, Channel],
            Unit::Purchase | Unit::Subscription => &[Owner, Source, Segment],
            Unit::Ticket => &[Agent, Source, Segment],
            Unit::Survey => &[Source, Segment],
            Unit::Activity => &[Owner, ActivityType, Source, Segment],
        }
    }

    /// Whether rows of this unit have a customer, and so carry `customer.<name>`.
    pub(crate) fn has_customer(self) -> bool {
        match self {
            Unit::Deal
            | Unit::StageExit
            | Unit::StageStay
            | Unit::Customer
            | Unit::Purchase
            | Unit::Subscription
            | Unit::Ticket
            | Unit::Survey
            | Unit::Activity => true,
            Unit::Quota | Unit::Lead | Unit::Spend | Unit::Campaign => false,
        }
    }

    /// Whether rows of this unit carry `d`: a built-in dimension it lists in
    /// [`Unit::carried`], any attribute of its records, and any of its customer's when it
    /// has one.
    pub(crate) fn carries(self, d: Dimension) -> bool {
        match d {
            Dimension::Attribute(_) => true,
            Dimension::CustomerAttribute(_) | Dimension::Cohort => self.has_customer(),
            d => self.carried().contains(&d),
        }
    }

    /// What its rows are, in words (`deal`, `stage exit`…).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Unit::Deal => "deal",
            Unit::StageExit => "stage exit",
            Unit::StageStay => "stage stay",
            Unit::Quota => "quota",
            Unit::Lead => "lead",
            Unit::Customer => "customer",
            Unit::Spend => "spend",
            Unit::Campaign => "campaign",
            Unit::Purchase => "purchase",
            Unit::Subscription => "subscription",
            Unit::Ticket => "ticket",
            Unit::Survey => "survey response",
            Unit::Activity => "activity",
        }
    }
}

/// A record's dimension values (the reference's view): the built-in ones by
/// [`dim_index`], its own attributes, and its customer's.
#[cfg(test)]
pub(crate) struct DimValues<'a> {
    builtin: [Option<&'a str>; NDIMS],
    own: &'a Attributes,
    /// The attributes of its customer (`None`: none, or not stored).
    customer: Option<&'a Attributes>,
    /// When its customer was acquired (`None`: none, or not stored): the `cohort`.
    acquired: Option<jiff::Timestamp>,
}

#[cfg(test)]
impl DimValues<'_> {
    /// The value of `d` (one the record's unit carries): `None` for a built-in dimension
    /// it has no value of; an attribute it (or its customer) has not is `""`.
    pub(crate) fn value(&self, d: Dimension) -> Option<String> {
        let text = |a: Option<&Attributes>, name: kpi_core::AttributeName| {
            a.and_then(|a| a.get(name.as_str()))
                .map_or_else(String::new, |v| v.dimension_value())
        };
        match d {
            Dimension::Attribute(name) => Some(text(Some(self.own), name)),
            Dimension::CustomerAttribute(name) => Some(text(self.customer, name)),
            d => self.builtin[dim_index(d)].map(str::to_owned),
        }
    }

    /// Whether its customer was acquired in the window of a cohort filter's value (as the
    /// engine encodes it: `start/end`).
    pub(crate) fn in_cohort(&self, window: &str) -> bool {
        let w = kpi_core::cohort::decode(window).expect("a cohort window");
        self.acquired.is_some_and(|t| w.contains(t))
    }
}

/// Customers and campaigns by id, to resolve the dimensions records inherit from them
/// (the reference's view; the index does the same over rows).
#[cfg(test)]
pub(crate) struct RecordLookup<'a> {
    customers: HashMap<&'a str, &'a Customer>,
    campaigns: HashMap<&'a str, &'a Campaign>,
}

#[cfg(test)]
impl<'a> RecordLookup<'a> {
    /// Indexes the customers and campaigns of `records`.
    pub(crate) fn new(records: &'a Canonical) -> Self {
        let customers = records
            .of_kind(RecordKind::Customer)
            .filter_map(|r| match r {
                Record::Customer(c) => Some((c.id.as_str(), c)),
                _ => None,
            })
            .collect();
        let campaigns = records
            .of_kind(RecordKind::Campaign)
            .filter_map(|r| match r {
                Record::Campaign(c) => Some((c.id.as_str(), c)),
                _ => None,
            })
            .collect();
        Self {
            customers,
            campaigns,
        }
    }

    /// The customer with this id, if stored.
    pub(crate) fn customer(&self, id: Option<&str>) -> Option<&'a Customer> {
        id.and_then(|id| self.customers.get(id).copied())
    }

    /// The channel of the campaign with this id, if stored.
    pub(crate) fn campaign_channel(&self, id: Option<&str>) -> Option<Channel> {
        id.and_then(|id| self.campaigns.get(id).map(|c| c.channel))
    }

    /// Values of `own` attributes and of the customer with this id (if any), with the
    /// customer's owner, source and segment as built-in values.
    fn with_customer(&self, id: Option<&str>, own: &'a Attributes) -> DimValues<'a> {
        let mut v = DimValues {
            builtin: [None; NDIMS],
            own,
            customer: None,
            acquired: None,
        };
        if let Some(c) = self.customer(id) {
            v.acquired = Some(c.acquired_at);
            v.builtin[dim_index(Dimension::Owner)] = c.owner.as_deref();
            v.builtin[dim_index(Dimension::Source)] = Some(source_name(c.source));
            v.builtin[dim_index(Dimension::Segment)] = c.segment.as_deref();
            v.customer = Some(&c.attributes);
        }
        v
    }

    /// Values of a record without a customer.
    fn alone(own: &'a Attributes) -> DimValues<'a> {
        DimValues {
            builtin: [None; NDIMS],
            own,
            customer: None,
            acquired: None,
        }
    }

    /// A deal's dimensions (stage excluded: see [`RecordLookup::deal_stage`]).
    pub(crate) fn deal(&self, d: &'a Deal) -> DimValues<'a> {
        let mut v = self.with_customer(d.customer_id.as_deref(), &d.attributes);
        v.builtin[dim_index(Dimension::Owner)] = Some(d.owner.as_str());
        v.builtin[dim_index(Dimension::Campaign)] = d.campaign_id.as_deref();
        v.builtin[dim_index(Dimension::Channel)] = self
            .campaign_channel(d.campaign_id.as_deref())
            .map(channel_name);
        v
    }

    /// The dimensions of a deal's exit from, or stay in, `stage` (the index builds them
    /// from the deal's).
    pub(crate) fn deal_stage(&self, d: &'a Deal, stage: &'a str) -> DimValues<'a> {
        let mut v = self.deal(d);
        v.builtin[dim_index(Dimension::Stage)] = Some(stage);
        v
    }

    /// A quota's dimensions.
    pub(crate) fn quota(&self, q: &'a Quota) -> DimValues<'a> {
        let mut v = Self::alone(&q.attributes);
        v.builtin[dim_index(Dimension::Owner)] = Some(q.owner.as_str());
        v
    }

    /// A lead's dimensions.
    pub(crate) fn lead(&self, l: &'a Lead) -> DimValues<'a> {
        let mut v = Self::alone(&l.attributes);
        v.builtin[dim_index(Dimension::Source)] = Some(source_name(l.source));
        v.builtin[dim_index(Dimension::Campaign)] = l.campaign_id.as_deref();
        v.builtin[dim_index(Dimension::Channel)] = self
            .campaign_channel(l.campaign_id.as_deref())
            .map(channel_name);
        v
    }

    /// A customer's dimensions (its `customer.<name>` are its own attributes).
    pub(crate) fn customer_row(&self, c: &'a Customer) -> DimValues<'a> {
        let mut v = Self::alone(&c.attributes);
        v.customer = Some(&c.attributes);
        v.acquired = Some(c.acquired_at);
        v.builtin[dim_index(Dimension::Owner)] = c.owner.as_deref();
        v.builtin[dim_index(Dimension::Source)] = Some(source_name(c.source));
        v.builtin[dim_index(Dimension::Campaign)] = c.campaign_id.as_deref();
        v.builtin[dim_index(Dimension::Channel)] = self
            .campaign_channel(c.campaign_id.as_deref())
            .map(channel_name);
        v.builtin[dim_index(Dimension::Segment)] = c.segment.as_deref();
        v
    }

    /// A spend's dimensions.
    pub(crate) fn spend(&self, s: &'a Spend) -> DimValues<'a> {
        let mut v = Self::alone(&s.attributes);
        v.builtin[dim_index(Dimension::Campaign)] = s.campaign_id.as_deref();
        v.builtin[dim_index(Dimension::Channel)] = s
            .channel
            .or_else(|| self.campaign_channel(s.campaign_id.as_deref()))
            .map(channel_name);
        v
    }

    /// A campaign's dimensions.
    pub(crate) fn campaign(&self, c: &'a Campaign) -> DimValues<'a> {
        let mut v = Self::alone(&c.attributes);
        v.builtin[dim_index(Dimension::Campaign)] = Some(c.id.as_str());
        v.builtin[dim_index(Dimension::Channel)] = Some(channel_name(c.channel));
        v
    }

    /// A purchase's dimensions.
    pub(crate) fn purchase(&self, p: &'a Purchase) -> DimValues<'a> {
        self.with_customer(Some(p.customer_id.as_str()), &p.attributes)
    }

    /// A subscription's dimensions.
    pub(crate) fn subscription(&self, s: &'a Subscription) -> DimValues<'a> {
        self.with_customer(Some(s.customer_id.as_str()), &s.attributes)
    }

    /// A ticket's dimensions.
    pub(crate) fn ticket(&self, t: &'a Ticket) -> DimValues<'a> {
        let mut v = self.with_customer(t.customer_id.as_deref(), &t.attributes);
        v.builtin[dim_index(Dimension::Owner)] = None;
        v.builtin[dim_index(Dimension::Agent)] = Some(t.agent.as_str());
        v
    }

    /// A survey response's dimensions.
    pub(crate) fn survey(&self, s: &'a SurveyResponse) -> DimValues<'a> {
        let mut v = self.with_customer(s.customer_id.as_deref(), &s.attributes);
        v.builtin[dim_index(Dimension::Owner)] = None;
        v
    }

    /// An activity's dimensions: its own owner and type, its customer's source and
    /// segment.
    pub(crate) fn activity(&self, a: &'a Activity) -> DimValues<'a> {
        let mut v = self.with_customer(a.customer_id.as_deref(), &a.attributes);
        v.builtin[dim_index(Dimension::Owner)] = a.owner.as_deref();
        v.builtin[dim_index(Dimension::ActivityType)] = Some(a.activity_type.as_str());
        v
    }
}
