//! What rows inherit from their customer or campaign, looked up when read (rows keep the
//! key, not a copy), and what an index derives from it: sales by their customer's
//! acquisition, rebuilt when read through other lookups.

use std::sync::{Arc, Mutex, PoisonError, Weak};

use jiff::Timestamp;
use kpi_core::{Decimal, Dimension, Measure, Window};

use super::blocked::Blocked;
use crate::attribute_columns::AttributeColumns;
use crate::long_work;
use crate::record::{Channel, Source};
use crate::rows::{CustomerRow, Slab};
use crate::symbols::{Sym, NONE};

/// What rows inherit from their customer or campaign, looked up by symbol when read
/// (rows keep the key, not a copy; customers are read in the store's rows).
pub(crate) struct Lookups {
    /// By customer id symbol: the customer's slot among `customers` ([`NONE`]: not stored).
    slots: Vec<u32>,
    /// The store's customers.
    customers: Arc<Slab<CustomerRow>>,
    /// The customers' custom attributes.
    customer_attributes: Arc<AttributeColumns>,
    /// By the dimension symbol of a campaign id: the symbol of its channel's name.
    channels: Vec<Sym>,
    /// By channel: the symbol of its name.
    channel_names: [Sym; Channel::ALL.len()],
    /// By source: the symbol of its name.
    sources: [Sym; Source::ALL.len()],
}

impl Lookups {
    /// Lookups over the store's `customers` (of `ids` customer id symbols) and campaigns'
    /// channels (by id symbol); `channel_names` and `sources`: the symbols of the names.
    pub(crate) fn new(
        customers: Arc<Slab<CustomerRow>>,
        customer_attributes: Arc<AttributeColumns>,
        ids: usize,
        channels: Vec<Sym>,
        channel_names: [Sym; Channel::ALL.len()],
        sources: [Sym; Source::ALL.len()],
    ) -> Self {
        let mut slots = vec![NONE; ids];
        for (slot, c) in customers.slots() {
            slots[c.id as usize] = slot;
        }
        Self {
            slots,
            customers,
            customer_attributes,
            channels,
            channel_names,
            sources,
        }
    }

    /// Lookups over `customers`, a later state of these lookups' customers (now of `ids`
    /// customer id symbols), with their attributes and the campaigns' `channels`: the slots
    /// by customer id are these lookups', changed only where customers were written.
    pub(crate) fn next(
        &self,
        customers: Arc<Slab<CustomerRow>>,
        customer_attributes: Arc<AttributeColumns>,
        ids: usize,
        channels: Vec<Sym>,
    ) -> Self {
        let mut slots = self.slots.clone();
        slots.resize(ids, NONE);
        let written = customers.slots_changed_since(&self.customers);
        for slot in &written {
            if let Some(c) = self.customers.get(*slot) {
                if slots[c.id as usize] == *slot {
                    slots[c.id as usize] = NONE;
                }
            }
        }
        for slot in &written {
            if let Some(c) = customers.get(*slot) {
                slots[c.id as usize] = *slot;
            }
        }
        Self {
            slots,
            customers,
            customer_attributes,
            channels,
            channel_names: self.channel_names,
            sources: self.sources,
        }
    }

    /// The symbol of a channel's name.
    pub(crate) fn channel_name(&self, c: Channel) -> Sym {
        self.channel_names[c as usize]
    }

    /// The customer ids (by symbol) whose customer reads differently through these lookups
    /// than through `earlier` (lookups of an earlier state of the same rows): stored in one
    /// only, at another slot, with another row or other custom attributes. Only the slots
    /// written since are compared. A customer id no row had when `earlier` was made is left
    /// out: rows read through `earlier` cannot hold it.
    pub(crate) fn customers_changed_since(&self, earlier: &Lookups) -> Vec<Sym> {
        if std::ptr::eq(self, earlier) {
            return Vec::new();
        }
        let mut slots = self.customers.slots_changed_since(&earlier.customers);
        if !Arc::ptr_eq(&self.customer_attributes, &earlier.customer_attributes) {
            slots.extend(
                self.customer_attributes
                    .slots_changed_since(&earlier.customer_attributes),
            );
        }
        let mut ids: Vec<Sym> = slots
            .iter()
            .flat_map(|s| [earlier.customers.get(*s), self.customers.get(*s)])
            .flatten()
            .map(|c| c.id)
            .filter(|id| (*id as usize) < earlier.slots.len())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The campaign symbols whose channel differs between `earlier` (lookups of an earlier
    /// state of the same rows) and these.
    pub(crate) fn channels_changed_since(&self, earlier: &Lookups) -> Vec<Sym> {
        if std::ptr::eq(self, earlier) || self.channels == earlier.channels {
            return Vec::new();
        }
        (0..self.channels.len().max(earlier.channels.len()) as Sym)
            .filter(|c| self.channel(*c) != earlier.channel(*c))
            .collect()
    }

    /// How many customer ids there were when they were made: every customer id a row read
    /// through them holds is below it.
    pub(crate) fn customer_ids(&self) -> usize {
        self.slots.len()
    }

    /// The symbol of a source's name.
    pub(crate) fn source(&self, s: Source) -> Sym {
        self.sources[s as usize]
    }

    /// The slot of the customer with this id symbol, if stored.
    pub(crate) fn customer_slot(&self, id: Sym) -> Option<u32> {
        let slot = *self.slots.get(id as usize)?;
        (slot != NONE).then_some(slot)
    }

    /// The customer with this id symbol, if stored.
    pub(crate) fn customer(&self, id: Sym) -> Option<&CustomerRow> {
        self.customer_slot(id).map(|slot| self.customers.row(slot))
    }

    /// The customers' custom attributes (by their slots).
    pub(crate) fn customer_attributes(&self) -> &AttributeColumns {
        &self.customer_attributes
    }

    /// When the customer with this id symbol was acquired (`None`: no such customer), and
    /// whether they are marketing-sourced.
    pub(crate) fn acquisition(&self, id: Sym) -> (Option<Timestamp>, bool) {
        let c = self.customer(id);
        (
            c.map(CustomerRow::acquired),
            c.is_some_and(|c| c.source == Source::Marketing),
        )
    }

    /// The channel of the campaign with this symbol ([`NONE`]: no such campaign).
    pub(crate) fn channel(&self, campaign: Sym) -> Sym {
        self.channels
            .get(campaign as usize)
            .copied()
            .unwrap_or(NONE)
    }

    /// Whether the campaign with this symbol is an email campaign.
    pub(crate) fn is_email(&self, campaign: Sym) -> bool {
        self.channel(campaign) == self.channel_name(Channel::Email)
    }

    /// The owner, source or segment of a customer ([`NONE`] for other dimensions or no
    /// such customer).
    pub(crate) fn customer_attr(&self, id: Sym, d: Dimension) -> Sym {
        match (self.customer(id), d) {
            (Some(c), Dimension::Owner) => c.owner,
            (Some(c), Dimension::Source) => self.source(c.source),
            (Some(c), Dimension::Segment) => c.segment,
            _ => NONE,
        }
    }
}

/// What an index derives from its rows' customers (won deals or purchases by their
/// customer's acquisition): built on first use through some lookups, and built again if
/// read through other lookups.
pub(crate) struct ByCustomers<T> {
    cell: Mutex<Option<(Weak<Lookups>, Arc<T>)>>,
}

impl<T> Default for ByCustomers<T> {
    fn default() -> Self {
        Self {
            cell: Mutex::new(None),
        }
    }
}

impl<T> ByCustomers<T> {
    /// What `build` derives (from `rows` rows) through `lookups`, built now unless it was
    /// through these lookups.
    pub(crate) fn get(
        &self,
        lookups: &Arc<Lookups>,
        rows: usize,
        build: impl FnOnce() -> T,
    ) -> Arc<T> {
        let built = || self.cell.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(v) = Self::through(&built(), lookups) {
            return v;
        }
        long_work::run(rows, || {
            let mut cell = built();
            if let Some(v) = Self::through(&cell, lookups) {
                return v;
            }
            let v = Arc::new(build());
            *cell = Some((Arc::downgrade(lookups), Arc::clone(&v)));
            v
        })
    }

    /// What it holds if it was built through `lookups` (for the index image).
    pub(crate) fn built_through(&self, lookups: &Arc<Lookups>) -> Option<Arc<T>> {
        Self::through(
            &self.cell.lock().unwrap_or_else(PoisonError::into_inner),
            lookups,
        )
    }

    /// Holds `value`, built through `lookups` (read back from the index image).
    pub(crate) fn set_through(&self, lookups: &Arc<Lookups>, value: Arc<T>) {
        *self.cell.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((Arc::downgrade(lookups), value));
    }

    /// What `cell` holds if it was built through `lookups`.
    fn through(cell: &Option<(Weak<Lookups>, Arc<T>)>, lookups: &Arc<Lookups>) -> Option<Arc<T>> {
        let (of, v) = cell.as_ref()?;
        // The weak reference keeps the lookups' allocation, so its address is theirs.
        std::ptr::eq(of.as_ptr(), Arc::as_ptr(lookups)).then(|| Arc::clone(v))
    }
}

/// `n` sales (`sale(i)`: the customer and the amount of sale `i`) by their customer's
/// acquisition, summing every amount ([`ALL_AMOUNTS`]) and the amounts of
/// marketing-sourced customers ([`MARKETING_AMOUNTS`]).
pub(crate) fn by_acquisition(
    lookups: &Lookups,
    n: usize,
    sale: impl Fn(usize) -> (Sym, Decimal),
) -> Blocked {
    let acquisition = |i: usize| lookups.acquisition(sale(i).0);
    Blocked::new(
        n,
        |i| acquisition(i).0,
        &[&|i| sale(i).1, &|i| {
            if acquisition(i).1 {
                sale(i).1
            } else {
                Decimal::ZERO
            }
        }],
    )
}

/// The value column of a by-acquisition [`Blocked`] summing every amount.
pub(crate) const ALL_AMOUNTS: usize = 0;
/// The value column of a by-acquisition [`Blocked`] summing the amounts of
/// marketing-sourced customers.
pub(crate) const MARKETING_AMOUNTS: usize = 1;

/// Which sales are new-customer revenue ([`Measure::NewCustomerRevenue`] and
/// [`Measure::NewCustomerRevenueFromMarketing`], the won deals' and the purchases' shares
/// alike): those in the window of customers acquired in it (marketing-sourced ones only).
#[derive(Clone, Copy)]
pub(crate) struct NewCustomerSales {
    marketing_only: bool,
}

impl NewCustomerSales {
    /// The rule of `measure`, one of the two new-customer revenue measures.
    pub(crate) fn of(measure: Measure) -> Self {
        Self {
            marketing_only: measure == Measure::NewCustomerRevenueFromMarketing,
        }
    }

    /// The by-acquisition column summed.
    pub(crate) fn column(self) -> usize {
        if self.marketing_only {
            MARKETING_AMOUNTS
        } else {
            ALL_AMOUNTS
        }
    }

    /// An amount's value in that column (`marketing`: whether its customer is
    /// marketing-sourced).
    pub(crate) fn counted(self, amount: Decimal, marketing: bool) -> Decimal {
        if marketing || !self.marketing_only {
            amount
        } else {
            Decimal::ZERO
        }
    }

    /// Whether a sale in `w` of a customer acquired at `acquired` counts.
    pub(crate) fn counts(self, w: &Window, acquired: Option<Timestamp>, marketing: bool) -> bool {
        acquired.is_some_and(|a| w.contains(a)) && (marketing || !self.marketing_only)
    }

    /// The acquisition bounds of the customers counted: `[start, end)` of `w`.
    pub(crate) fn acquired_in(
        w: &Window,
    ) -> (Option<Option<Timestamp>>, Option<Option<Timestamp>>) {
        (Some(Some(w.start)), Some(Some(w.end)))
    }
}
