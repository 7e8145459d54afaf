//! Measures a KPI crate declares: which records (a kind and one of its times), what is
//! aggregated (a count, the amount, a decimal attribute, the distinct customers) and which
//! fixed conditions the records meet (status, type, attribute values). kpi-store answers
//! them from the same kind of index as the built-in measures; a crate only declares one:
//!
//! ```
//! use kpi_core::{Aggregate, CustomMeasure, EventTime, FixedFilter, Measure, MeasuredRecords};
//!
//! static SEATS_WON: CustomMeasure = CustomMeasure {
//!     name: "acme.seats_won",
//!     description: "sum of attribute `seats` of won deals closed in W",
//!     records: MeasuredRecords::Deals,
//!     time: EventTime::Closed,
//!     aggregate: Aggregate::SumAttribute("seats"),
//!     filters: &[FixedFilter::Status("won")],
//! };
//! let measure = Measure::Custom(&SEATS_WON);
//! assert_eq!(SEATS_WON.check(), Ok(()));
//! # let _ = measure;
//! ```

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};

use crate::attribute::check_attribute_name;

/// The kind of records a [`CustomMeasure`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MeasuredRecords {
    /// Deals.
    Deals,
    /// Activities (calls, meetings, emails, demos…).
    Activities,
    /// Leads.
    Leads,
    /// One-time purchases.
    Purchases,
    /// Support tickets.
    Tickets,
    /// Survey responses (NPS, CSAT, CES).
    SurveyResponses,
}

impl MeasuredRecords {
    /// The times its records have (what a measure over them can count by).
    pub const fn times(self) -> &'static [EventTime] {
        match self {
            MeasuredRecords::Deals => &[EventTime::Created, EventTime::Closed],
            MeasuredRecords::Activities => &[EventTime::Occurred],
            MeasuredRecords::Leads => &[EventTime::Created, EventTime::Converted],
            MeasuredRecords::Purchases | MeasuredRecords::SurveyResponses => &[EventTime::At],
            MeasuredRecords::Tickets => &[
                EventTime::Opened,
                EventTime::FirstResponse,
                EventTime::Resolved,
            ],
        }
    }

    /// Whether its records have an `amount` ([`Aggregate::SumAmount`]).
    pub const fn has_amount(self) -> bool {
        match self {
            MeasuredRecords::Deals | MeasuredRecords::Activities | MeasuredRecords::Purchases => {
                true
            }
            MeasuredRecords::Leads
            | MeasuredRecords::Tickets
            | MeasuredRecords::SurveyResponses => false,
        }
    }

    /// Whether its records have a customer ([`Aggregate::DistinctCustomers`]; leads have
    /// none).
    pub const fn has_customer(self) -> bool {
        !matches!(self, MeasuredRecords::Leads)
    }

    /// The statuses its records take ([`FixedFilter::Status`]); none for a kind without one.
    pub const fn statuses(self) -> &'static [&'static str] {
        match self {
            MeasuredRecords::Deals => &["open", "won", "lost"],
            MeasuredRecords::Activities
            | MeasuredRecords::Leads
            | MeasuredRecords::Purchases
            | MeasuredRecords::Tickets
            | MeasuredRecords::SurveyResponses => &[],
        }
    }

    /// The types its records take ([`FixedFilter::Type`]); `None`: any text (an activity's
    /// type is the tenant's own); empty: its records have no type.
    pub const fn types(self) -> Option<&'static [&'static str]> {
        match self {
            MeasuredRecords::Deals => Some(&["new_business", "upsell", "cross_sell", "renewal"]),
            MeasuredRecords::SurveyResponses => Some(&["nps", "csat", "ces"]),
            MeasuredRecords::Activities => None,
            MeasuredRecords::Leads | MeasuredRecords::Purchases | MeasuredRecords::Tickets => {
                Some(&[])
            }
        }
    }

    /// Its name in messages.
    pub const fn name(self) -> &'static str {
        match self {
            MeasuredRecords::Deals => "deals",
            MeasuredRecords::Activities => "activities",
            MeasuredRecords::Leads => "leads",
            MeasuredRecords::Purchases => "purchases",
            MeasuredRecords::Tickets => "tickets",
            MeasuredRecords::SurveyResponses => "survey responses",
        }
    }
}

/// The time of a record a [`CustomMeasure`] counts it at: the record is in the scope's
/// window `W` when this time is (`start ≤ t < end`); records without it are never counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventTime {
    /// `created_at` (deals).
    Created,
    /// `closed_at` (deals; open deals have none).
    Closed,
    /// `occurred_at` (activities).
    Occurred,
    /// `converted_at` (leads; those not converted have none).
    Converted,
    /// `at` (purchases, survey responses).
    At,
    /// `opened_at` (tickets).
    Opened,
    /// `first_response_at` (tickets not yet answered have none).
    FirstResponse,
    /// `resolved_at` (tickets not yet resolved have none).
    Resolved,
}

impl EventTime {
    /// The field's name.
    pub const fn name(self) -> &'static str {
        match self {
            EventTime::Created => "created_at",
            EventTime::Closed => "closed_at",
            EventTime::Occurred => "occurred_at",
            EventTime::Converted => "converted_at",
            EventTime::At => "at",
            EventTime::Opened => "opened_at",
            EventTime::FirstResponse => "first_response_at",
            EventTime::Resolved => "resolved_at",
        }
    }
}

/// What a [`CustomMeasure`] adds up over its records in W.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Aggregate {
    /// How many there are.
    Count,
    /// The sum of their `amount` (a record without one adds nothing).
    SumAmount,
    /// The sum of the named attribute's values that read as decimals (a decimal
    /// attribute, or text such as `"12.5"`); a record without it, or with a flag, a time or
    /// other text, adds nothing.
    SumAttribute(&'static str),
    /// How many distinct customers they have (records without a customer are not counted).
    DistinctCustomers,
}

/// A condition every record a [`CustomMeasure`] reads meets, whatever the request's filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FixedFilter {
    /// The record's status (deals: `open`, `won`, `lost`).
    Status(&'static str),
    /// The record's type (deals: `new_business`, `upsell`, `cross_sell`, `renewal`;
    /// activities: their `type`, e.g. `meeting`).
    Type(&'static str),
    /// The record's own attribute (`name`) has this value (as `attr.<name>` reads it).
    Attribute(&'static str, &'static str),
}

/// A measure a KPI crate declares (see the module doc). Two declarations are the same
/// measure when their names are: the name is the measure's identity (memo key, order,
/// hash), and the registry refuses two different declarations under one name.
#[derive(Debug)]
pub struct CustomMeasure {
    /// Unique, `family.name` like a metric id (e.g. `acme.meetings_held`).
    pub name: &'static str,
    /// What it is, in words (shown with the inputs that read it).
    pub description: &'static str,
    /// The records it reads.
    pub records: MeasuredRecords,
    /// The time that puts a record in a window.
    pub time: EventTime,
    /// What it adds up.
    pub aggregate: Aggregate,
    /// The conditions its records meet, all of them.
    pub filters: &'static [FixedFilter],
}

impl CustomMeasure {
    /// Refuses a declaration kpi-store could not answer: a time, status or type its
    /// records do not have, or a malformed attribute name.
    pub fn check(&self) -> Result<(), String> {
        let records = self.records;
        if !records.times().contains(&self.time) {
            return Err(format!("{} have no {}", records.name(), self.time.name()));
        }
        match self.aggregate {
            Aggregate::SumAttribute(name) => {
                check_attribute_name(name).map_err(|e| format!("aggregate: {e}"))?;
            }
            Aggregate::SumAmount if !records.has_amount() => {
                return Err(format!("{} have no amount", records.name()));
            }
            Aggregate::DistinctCustomers if !records.has_customer() => {
                return Err(format!("{} have no customer", records.name()));
            }
            _ => {}
        }
        for filter in self.filters {
            match *filter {
                FixedFilter::Type(_) if records.types() == Some(&[]) => {
                    return Err(format!("{} have no type", records.name()));
                }
                FixedFilter::Status(_) if records.statuses().is_empty() => {
                    return Err(format!("{} have no status", records.name()));
                }
                FixedFilter::Status(s) if !records.statuses().contains(&s) => {
                    return Err(format!(
                        "{} have no status `{s}` (they have: {:?})",
                        records.name(),
                        records.statuses()
                    ));
                }
                FixedFilter::Type(t) => {
                    if let Some(types) = records.types() {
                        if !types.contains(&t) {
                            return Err(format!(
                                "{} have no type `{t}` (they have: {types:?})",
                                records.name()
                            ));
                        }
                    }
                }
                FixedFilter::Attribute(name, _) => {
                    check_attribute_name(name).map_err(|e| format!("filter: {e}"))?;
                }
                FixedFilter::Status(_) => {}
            }
        }
        Ok(())
    }

    /// Whether `other` declares the same measure field for field.
    pub fn same_declaration(&self, other: &CustomMeasure) -> bool {
        (
            self.name,
            self.description,
            self.records,
            self.time,
            self.aggregate,
            self.filters,
        ) == (
            other.name,
            other.description,
            other.records,
            other.time,
            other.aggregate,
            other.filters,
        )
    }
}

impl PartialEq for CustomMeasure {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for CustomMeasure {}

impl Hash for CustomMeasure {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl PartialOrd for CustomMeasure {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for CustomMeasure {
    fn cmp(&self, other: &Self) -> Ordering {
        self.name.cmp(other.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn declared(
        records: MeasuredRecords,
        time: EventTime,
        aggregate: Aggregate,
        filters: &'static [FixedFilter],
    ) -> CustomMeasure {
        CustomMeasure {
            name: "acme.test",
            description: "",
            records,
            time,
            aggregate,
            filters,
        }
    }

    #[test]
    fn a_declaration_names_only_what_its_records_have() {
        use MeasuredRecords::*;
        let ok = declared(
            Deals,
            EventTime::Closed,
            Aggregate::Count,
            &[FixedFilter::Status("won")],
        );
        assert_eq!(ok.check(), Ok(()));
        let bad_time = declared(Activities, EventTime::Closed, Aggregate::Count, &[]);
        assert_eq!(bad_time.check(), Err("activities have no closed_at".into()));
        let bad_status = declared(
            Activities,
            EventTime::Occurred,
            Aggregate::Count,
            &[FixedFilter::Status("won")],
        );
        assert_eq!(bad_status.check(), Err("activities have no status".into()));
        let bad_deal_status = declared(
            Deals,
            EventTime::Closed,
            Aggregate::Count,
            &[FixedFilter::Status("closed")],
        );
        assert!(bad_deal_status
            .check()
            .unwrap_err()
            .contains("no status `closed`"));
        let bad_type = declared(
            Deals,
            EventTime::Created,
            Aggregate::Count,
            &[FixedFilter::Type("meeting")],
        );
        assert!(bad_type.check().unwrap_err().contains("no type `meeting`"));
        let any_type = declared(
            Activities,
            EventTime::Occurred,
            Aggregate::Count,
            &[FixedFilter::Type("meeting")],
        );
        assert_eq!(any_type.check(), Ok(()));
        let bad_attribute = declared(
            Deals,
            EventTime::Closed,
            Aggregate::SumAttribute("Seats"),
            &[],
        );
        assert!(bad_attribute.check().is_err());
        let untyped = declared(
            Tickets,
            EventTime::Resolved,
            Aggregate::Count,
            &[FixedFilter::Type("bug")],
        );
        assert_eq!(untyped.check(), Err("tickets have no type".into()));
        let no_amount = declared(Leads, EventTime::Converted, Aggregate::SumAmount, &[]);
        assert_eq!(no_amount.check(), Err("leads have no amount".into()));
        let no_customer = declared(Leads, EventTime::Created, Aggregate::DistinctCustomers, &[]);
        assert_eq!(no_customer.check(), Err("leads have no customer".into()));
        let nps_given = declared(
            SurveyResponses,
            EventTime::At,
            Aggregate::DistinctCustomers,
            &[FixedFilter::Type("nps")],
        );
        assert_eq!(nps_given.check(), Ok(()));
        let purchases = declared(Purchases, EventTime::At, Aggregate::SumAmount, &[]);
        assert_eq!(purchases.check(), Ok(()));
        // Every kind's times are its own: a time of one kind is refused on another.
        for records in [
            Deals,
            Activities,
            Leads,
            Purchases,
            Tickets,
            SurveyResponses,
        ] {
            for time in records.times() {
                assert_eq!(
                    declared(records, *time, Aggregate::Count, &[]).check(),
                    Ok(())
                );
            }
        }
        let wrong_kind_time = declared(Purchases, EventTime::Opened, Aggregate::Count, &[]);
        assert_eq!(
            wrong_kind_time.check(),
            Err("purchases have no opened_at".into())
        );
    }

    #[test]
    fn the_name_is_the_identity() {
        let a = declared(
            MeasuredRecords::Deals,
            EventTime::Closed,
            Aggregate::Count,
            &[],
        );
        let b = declared(
            MeasuredRecords::Deals,
            EventTime::Created,
            Aggregate::Count,
            &[],
        );
        assert_eq!(a, b);
        assert!(!a.same_declaration(&b));
        assert!(a.same_declaration(&a));
    }
}
