//! One tenant's records in memory, compact: per kind a slab of rows holding only what the
//! query index reads, strings interned, and no record ids (except a subscription's, which
//! breaks ties). A record's row lives at a slot; the sled value carries the slot (see
//! `codec`), so an upsert or a delete learns the slot it replaces from the old value sled
//! hands back, and no id → slot map is kept.
//!
//! The query index reads the slabs themselves, not copies: each slab is behind an `Arc`
//! the index shares, and a write to a slab an index still holds copies it first (copy on
//! write), so an index never sees rows change under it.

use std::sync::Arc;

use jiff::Timestamp;
use kpi_core::{Decimal, SurveyKind};

use crate::attribute_columns::AttributeColumns;
use crate::currency::{Moved, Rates, Unconverted, UnconvertedAmounts};
use crate::dims::{channel_name, source_name};
use crate::record::{Channel, DealKind, DealStatus, Record, RecordKind, Source, SpendCategory};
pub(crate) use crate::slab::Slab;
use crate::symbols::{Interner, Sym, NONE};

/// A timestamp in 12 bytes instead of 16: seconds and nanoseconds, 4-byte aligned.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(C, packed(4))]
pub(crate) struct PackedTime {
    secs: i64,
    nanos: i32,
}

impl PackedTime {
    /// The compact form of `t`.
    pub(crate) fn new(t: Timestamp) -> Self {
        PackedTime {
            secs: t.as_second(),
            nanos: t.subsec_nanosecond(),
        }
    }

    /// The timestamp.
    pub(crate) fn get(self) -> Timestamp {
        let (secs, nanos) = (self.secs, self.nanos);
        Timestamp::new(secs, nanos).expect("stored from a timestamp")
    }
}

/// An optional timestamp in 12 bytes instead of 24 (none: nanoseconds no timestamp has).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct OptionalPackedTime(PackedTime);

impl OptionalPackedTime {
    const NONE: OptionalPackedTime = OptionalPackedTime(PackedTime {
        secs: 0,
        nanos: i32::MIN,
    });

    /// The compact form of `t`.
    pub(crate) fn new(t: Option<Timestamp>) -> Self {
        t.map_or(Self::NONE, |t| OptionalPackedTime(PackedTime::new(t)))
    }

    /// The timestamp, if any.
    pub(crate) fn get(self) -> Option<Timestamp> {
        let nanos = self.0.nanos;
        (nanos != i32::MIN).then(|| self.0.get())
    }
}

/// A customer.
#[derive(Clone, PartialEq)]
pub(crate) struct CustomerRow {
    pub(crate) id: Sym,
    pub(crate) acquired_at: PackedTime,
    pub(crate) churned_at: OptionalPackedTime,
    pub(crate) source: Source,
    pub(crate) campaign: Sym,
    pub(crate) segment: Sym,
    pub(crate) owner: Sym,
}

/// A lead.
#[derive(Clone, PartialEq)]
pub(crate) struct LeadRow {
    pub(crate) created_at: PackedTime,
    pub(crate) converted_at: OptionalPackedTime,
    pub(crate) source: Source,
    pub(crate) campaign: Sym,
}

/// A deal.
#[derive(Clone, PartialEq)]
pub(crate) struct DealRow {
    pub(crate) owner: Sym,
    pub(crate) amount: Decimal,
    pub(crate) created_at: PackedTime,
    pub(crate) closed_at: OptionalPackedTime,
    pub(crate) status: DealStatus,
    pub(crate) kind: DealKind,
    pub(crate) customer: Sym,
    pub(crate) campaign: Sym,
    /// Stage (interned) and when the deal entered it, in order.
    pub(crate) stages: Box<[(Sym, PackedTime)]>,
    /// The currency of its amount ([`NONE`]: the base); `amount` is converted.
    pub(crate) currency: Sym,
    /// The amount as sent, when it names a currency.
    pub(crate) original: Option<Box<Decimal>>,
}

/// A subscription.
#[derive(Clone, PartialEq)]
pub(crate) struct SubscriptionRow {
    /// Its id: two subscriptions of a customer starting together are ordered by it.
    pub(crate) id: Box<str>,
    pub(crate) customer: Sym,
    pub(crate) started_at: PackedTime,
    pub(crate) ended_at: OptionalPackedTime,
    /// Each change's MRR, converted at the change's time.
    pub(crate) mrr_changes: Box<[(PackedTime, Decimal)]>,
    pub(crate) renewal_due_at: OptionalPackedTime,
    pub(crate) renewed: Option<bool>,
    /// The currency of its MRR ([`NONE`]: the base).
    pub(crate) currency: Sym,
    /// Each change's MRR as sent, when it names a currency.
    pub(crate) original: Option<Box<[Decimal]>>,
}

/// A one-time purchase.
#[derive(Clone, PartialEq)]
pub(crate) struct PurchaseRow {
    pub(crate) customer: Sym,
    pub(crate) amount: Decimal,
    pub(crate) at: PackedTime,
    /// The currency of its amount ([`NONE`]: the base); `amount` is converted.
    pub(crate) currency: Sym,
    /// The amount as sent, when it names a currency.
    pub(crate) original: Option<Box<Decimal>>,
}

/// Money spent.
#[derive(Clone, PartialEq)]
pub(crate) struct SpendRow {
    pub(crate) at: PackedTime,
    pub(crate) amount: Decimal,
    pub(crate) category: SpendCategory,
    pub(crate) channel: Option<Channel>,
    pub(crate) campaign: Sym,
    /// The currency of its amount ([`NONE`]: the base); `amount` is converted.
    pub(crate) currency: Sym,
    /// The amount as sent, when it names a currency.
    pub(crate) original: Option<Box<Decimal>>,
}

/// A campaign.
#[derive(Clone, PartialEq)]
pub(crate) struct CampaignRow {
    /// Its id, interned as the value of the campaign dimension.
    pub(crate) id: Sym,
    pub(crate) channel: Channel,
    pub(crate) started_at: PackedTime,
    pub(crate) delivered: u64,
    pub(crate) opens: u64,
    pub(crate) clicks: u64,
}

/// A support ticket.
#[derive(Clone, PartialEq)]
pub(crate) struct TicketRow {
    pub(crate) customer: Sym,
    pub(crate) agent: Sym,
    pub(crate) opened_at: PackedTime,
    pub(crate) first_response_at: OptionalPackedTime,
    pub(crate) resolved_at: OptionalPackedTime,
}

/// A survey response.
#[derive(Clone, PartialEq)]
pub(crate) struct SurveyRow {
    pub(crate) customer: Sym,
    pub(crate) kind: SurveyKind,
    pub(crate) score: Decimal,
    pub(crate) scale_max: u32,
    pub(crate) at: PackedTime,
}

/// A quota.
#[derive(Clone, PartialEq)]
pub(crate) struct QuotaRow {
    pub(crate) owner: Sym,
    pub(crate) period_start: Timestamp,
    pub(crate) period_end: Timestamp,
    pub(crate) amount: Decimal,
    /// The currency of its amount ([`NONE`]: the base); `amount` is converted.
    pub(crate) currency: Sym,
    /// The amount as sent, when it names a currency.
    pub(crate) original: Option<Box<Decimal>>,
}

/// An exchange rate.
#[derive(Clone)]
pub(crate) struct FxRateRow {
    /// Its id: of two rates of a currency at one instant, the greatest id's wins.
    pub(crate) id: Box<str>,
    pub(crate) currency: Sym,
    pub(crate) effective_at: PackedTime,
    pub(crate) rate: Decimal,
    /// The base currency it is towards ([`NONE`]: none was set).
    pub(crate) base: Sym,
}

/// An activity.
#[derive(Clone, PartialEq)]
pub(crate) struct ActivityRow {
    pub(crate) activity_type: Sym,
    pub(crate) owner: Sym,
    pub(crate) customer: Sym,
    pub(crate) occurred_at: PackedTime,
    pub(crate) amount: Option<Decimal>,
}

/// What converts a row's amounts: the rows with amounts implement it.
pub(crate) trait Converted: Sized {
    /// The kind of the row's record.
    const KIND: RecordKind;
    /// Converts the row's amounts with `rates`; returns those that could not be (they keep
    /// their amount as sent, which nothing reports: every value reading them is undefined).
    fn convert(&mut self, rates: &Rates) -> Vec<Unconverted>;
    /// The row with its amounts converted, noting in `unconverted` (under `slot`) those
    /// that could not be.
    fn converted(mut self, rates: &Rates, unconverted: &mut UnconvertedAmounts, slot: u32) -> Self {
        let missing = self.convert(rates);
        unconverted.set(Self::KIND, slot, missing);
        self
    }
    /// Whether the row's amounts equal `other`'s.
    fn same_amounts(&self, other: &Self) -> bool;
    /// The latest instant one of its amounts is converted at (a change of rates before
    /// it may move the row's amounts; after it, none).
    fn last_converted_at(&self) -> Timestamp;
}

/// Which amounts [`Rows::convert_again`] converts again: ordered, the later the more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Reconvert {
    /// None: the rates did not change.
    Nothing,
    /// Those the rates written convert otherwise ([`Rates::moved_since`]).
    RatesWritten,
    /// Every amount naming a currency: the base changed, or the rows were loaded (their
    /// amounts converted with rates not known here).
    Every,
}

/// Converts one amount counted from `from` until `until`, converted at `at`.
fn convert_one(
    rates: &Rates,
    (currency, original): (Sym, Option<&Decimal>),
    amount: &mut Decimal,
    (at, from, until): (Timestamp, Timestamp, Option<Timestamp>),
) -> Vec<Unconverted> {
    let Some(original) = original else {
        return Vec::new();
    };
    match rates.convert(*original, currency, at) {
        Ok(v) => {
            *amount = v;
            Vec::new()
        }
        Err(missing) => {
            *amount = *original;
            vec![Unconverted {
                currency,
                missing,
                at,
                from,
                until,
                first: false,
            }]
        }
    }
}

/// The rows with one amount: how to read its time span.
macro_rules! converted_once {
    ($($row:ident ($kind:ident): |$r:ident| $span:expr;)*) => {$(
        impl Converted for $row {
            const KIND: RecordKind = RecordKind::$kind;
            fn convert(&mut self, rates: &Rates) -> Vec<Unconverted> {
                let $r = &*self;
                let span = $span;
                convert_one(
                    rates,
                    (self.currency, self.original.as_deref()),
                    &mut self.amount,
                    span,
                )
            }
            fn same_amounts(&self, other: &Self) -> bool {
                self.amount == other.amount
            }
            fn last_converted_at(&self) -> Timestamp {
                let $r = self;
                $span.0
            }
        }
    )*};
}

converted_once! {
    // A deal's amount is converted at its close when it closed, else at its creation.
    DealRow (Deal): |r| (
        r.closed_at.get().unwrap_or(r.created_at.get()),
        r.created_at.get(),
        r.closed_at.get(),
    );
    PurchaseRow (Purchase): |r| (r.at.get(), r.at.get(), Some(r.at.get()));
    SpendRow (Spend): |r| (r.at.get(), r.at.get(), Some(r.at.get()));
    // A quota is converted at its period's start.
    QuotaRow (Quota): |r| (r.period_start, r.period_start, Some(r.period_end));
}

/// Each MRR change is converted at its own time; it counts until the next change (or the
/// subscription's end).
impl Converted for SubscriptionRow {
    const KIND: RecordKind = RecordKind::Subscription;
    fn convert(&mut self, rates: &Rates) -> Vec<Unconverted> {
        let mut missing = Vec::new();
        if let Some(original) = self.original.as_deref() {
            let (started, ended) = (self.started_at.get(), self.ended_at.get());
            let times: Vec<Timestamp> = self.mrr_changes.iter().map(|(t, _)| t.get()).collect();
            for (k, ((_, mrr), sent)) in self.mrr_changes.iter_mut().zip(original).enumerate() {
                // Until the next change or the end, whichever comes first.
                let until = match (times.get(k + 1).copied(), ended) {
                    (Some(next), Some(end)) => Some(next.min(end)),
                    (next, end) => next.or(end),
                };
                // The first MRR counts from the start.
                let from = if k == 0 { started } else { times[k] };
                for mut m in convert_one(
                    rates,
                    (self.currency, Some(sent)),
                    mrr,
                    (times[k], from, until),
                ) {
                    m.first = k == 0;
                    missing.push(m);
                }
            }
        }
        missing
    }
    fn same_amounts(&self, other: &Self) -> bool {
        self.mrr_changes
            .iter()
            .zip(other.mrr_changes.iter())
            .all(|(a, b)| a.1 == b.1)
    }
    fn last_converted_at(&self) -> Timestamp {
        self.mrr_changes
            .iter()
            .map(|(t, _)| t.get())
            .max()
            .unwrap_or(Timestamp::MIN)
    }
}

/// Customer ids interned as symbols `0..len`. The texts are kept one after another in one
/// string (a few bytes an id) and found through a table of symbols by hash, instead of a
/// map from boxed strings (about 60 bytes an id, 55 MB at 10M records).
#[derive(Default)]
pub(crate) struct Ids {
    /// Every id's text, in symbol order.
    text: String,
    /// Where each id's text ends in `text`.
    ends: Vec<usize>,
    /// The symbols, by the hash of their text.
    table: hashbrown::HashTable<Sym>,
    hasher: hashbrown::DefaultHashBuilder,
}

impl Ids {
    fn text(&self, sym: Sym) -> &str {
        let i = sym as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }

    fn hash(&self, s: &str) -> u64 {
        std::hash::BuildHasher::hash_one(&self.hasher, s)
    }

    fn intern(&mut self, s: &str) -> Sym {
        let hash = self.hash(s);
        if let Some(sym) = self.table.find(hash, |sym| self.text(*sym) == s) {
            return *sym;
        }
        let sym = Sym::try_from(self.ends.len()).expect("fewer than 2^32 distinct ids");
        self.text.push_str(s);
        self.ends.push(self.text.len());
        let Self {
            table,
            text,
            ends,
            hasher,
        } = self;
        table.insert_unique(hash, sym, |sym| {
            let i = *sym as usize;
            let start = if i == 0 { 0 } else { ends[i - 1] };
            std::hash::BuildHasher::hash_one(&*hasher, &text[start..ends[i]])
        });
        sym
    }

    fn intern_opt(&mut self, s: Option<&str>) -> Sym {
        s.map_or(NONE, |s| self.intern(s))
    }

    /// Every id with its symbol.
    pub(crate) fn entries(&self) -> Vec<(&str, Sym)> {
        (0..self.len() as Sym).map(|s| (self.text(s), s)).collect()
    }

    /// The ids with their symbols (when loading), which must be `0..len`, each once, in
    /// any order; `None` if they are not.
    pub(crate) fn load(mut entries: Vec<(Box<str>, Sym)>) -> Option<Self> {
        entries.sort_unstable_by_key(|(_, sym)| *sym);
        // Sized once: no rehash or regrowth while millions of ids are interned.
        let mut ids = Ids {
            text: String::with_capacity(entries.iter().map(|(id, _)| id.len()).sum()),
            ends: Vec::with_capacity(entries.len()),
            table: hashbrown::HashTable::with_capacity(entries.len()),
            ..Ids::default()
        };
        for (i, (id, sym)) in entries.iter().enumerate() {
            if *sym as usize != i || ids.intern(id) != *sym {
                return None;
            }
        }
        Some(ids)
    }

    /// How many ids were interned (symbols are `0..len`).
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }
}

/// The symbol of the empty dimension value `""`: what a record without an attribute has
/// as `attr.<name>` (interned first by [`Rows::default`]).
pub(crate) const EMPTY: Sym = 0;

/// One tenant's rows, every kind.
pub(crate) struct Rows {
    /// Dimension values (owners, campaigns, segments, stages, agents, attribute values).
    pub(crate) dims: Interner,
    /// Per record kind (by `RecordKind as usize`), the records' custom attributes.
    pub(crate) attributes: [Arc<AttributeColumns>; RecordKind::ALL.len()],
    /// Customer ids.
    pub(crate) customer_ids: Ids,
    pub(crate) customers: Arc<Slab<CustomerRow>>,
    pub(crate) leads: Arc<Slab<LeadRow>>,
    pub(crate) deals: Arc<Slab<DealRow>>,
    pub(crate) subscriptions: Arc<Slab<SubscriptionRow>>,
    pub(crate) purchases: Arc<Slab<PurchaseRow>>,
    pub(crate) spend: Arc<Slab<SpendRow>>,
    pub(crate) campaigns: Arc<Slab<CampaignRow>>,
    pub(crate) tickets: Arc<Slab<TicketRow>>,
    pub(crate) surveys: Arc<Slab<SurveyRow>>,
    pub(crate) quotas: Arc<Slab<QuotaRow>>,
    pub(crate) activities: Arc<Slab<ActivityRow>>,
    pub(crate) fx_rates: Arc<Slab<FxRateRow>>,
    /// The base currency and the rates of `fx_rates`, which the amounts are converted with.
    rates: Rates,
    /// Which amounts to convert again at the next [`Rows::convert_again`].
    reconvert: Reconvert,
    /// The amounts that could not be converted.
    pub(crate) unconverted: UnconvertedAmounts,
    /// Per kind, the next slot never used (slots below it are used or free).
    next: [u32; RecordKind::ALL.len()],
}

/// Calls `$body` with `$slab` bound to the slab of `$kind` (`|s, mut|`: mutably, copying
/// the slab's list of chunks first if an index shares it).
macro_rules! with_slab {
    ($rows:expr, $kind:expr, |$slab:ident, mut| $body:expr) => {
        with_slab!(@match $rows, $kind, $slab, $body, mut)
    };
    ($rows:expr, $kind:expr, |$slab:ident| $body:expr) => {
        with_slab!(@match $rows, $kind, $slab, $body, ref)
    };
    (@get mut $slab:expr) => {
        Arc::make_mut(&mut $slab)
    };
    (@get ref $slab:expr) => {
        &*$slab
    };
    (@match $rows:expr, $kind:expr, $slab:ident, $body:expr, $how:tt) => {
        match $kind {
            RecordKind::Customer => {
                let $slab = with_slab!(@get $how $rows.customers);
                $body
            }
            RecordKind::Lead => {
                let $slab = with_slab!(@get $how $rows.leads);
                $body
            }
            RecordKind::Deal => {
                let $slab = with_slab!(@get $how $rows.deals);
                $body
            }
            RecordKind::Subscription => {
                let $slab = with_slab!(@get $how $rows.subscriptions);
                $body
            }
            RecordKind::Purchase => {
                let $slab = with_slab!(@get $how $rows.purchases);
                $body
            }
            RecordKind::Spend => {
                let $slab = with_slab!(@get $how $rows.spend);
                $body
            }
            RecordKind::Campaign => {
                let $slab = with_slab!(@get $how $rows.campaigns);
                $body
            }
            RecordKind::Ticket => {
                let $slab = with_slab!(@get $how $rows.tickets);
                $body
            }
            RecordKind::SurveyResponse => {
                let $slab = with_slab!(@get $how $rows.surveys);
                $body
            }
            RecordKind::Quota => {
                let $slab = with_slab!(@get $how $rows.quotas);
                $body
            }
            RecordKind::Activity => {
                let $slab = with_slab!(@get $how $rows.activities);
                $body
            }
            RecordKind::FxRate => {
                let $slab = with_slab!(@get $how $rows.fx_rates);
                $body
            }
        }
    };
}

impl Default for Rows {
    /// No rows; the empty value and the names of sources and channels interned first, so that their symbols
    /// never change (indexes built at different times share parts).
    fn default() -> Self {
        let mut dims = Interner::default();
        assert_eq!(dims.intern(""), EMPTY);
        for s in Source::ALL {
            dims.intern(source_name(s));
        }
        for c in Channel::ALL {
            dims.intern(channel_name(c));
        }
        Self {
            dims,
            attributes: Default::default(),
            customer_ids: Ids::default(),
            customers: Arc::default(),
            leads: Arc::default(),
            deals: Arc::default(),
            subscriptions: Arc::default(),
            purchases: Arc::default(),
            spend: Arc::default(),
            campaigns: Arc::default(),
            tickets: Arc::default(),
            surveys: Arc::default(),
            activities: Arc::default(),
            quotas: Arc::default(),
            fx_rates: Arc::default(),
            rates: Rates::default(),
            reconvert: Reconvert::Nothing,
            unconverted: UnconvertedAmounts::default(),
            next: [0; RecordKind::ALL.len()],
        }
    }
}

impl Rows {
    /// Rows of `records`, at slots `0..` in order (for tests and the reference).
    #[cfg(test)]
    pub(crate) fn of(records: impl IntoIterator<Item = Record>) -> Self {
        let mut rows = Rows::default();
        for r in records {
            let slot = rows.allocate(r.kind());
            rows.put(slot, &r);
        }
        rows
    }

    /// A slot for a new row of `kind`: a free one, else the next never used. It stays
    /// reserved until [`Rows::put`] fills it or [`Rows::release`] gives it back.
    pub(crate) fn allocate(&mut self, kind: RecordKind) -> u32 {
        let free = with_slab!(self, kind, |s, mut| s.reuse_free_slot());
        free.unwrap_or_else(|| {
            let n = &mut self.next[kind as usize];
            let slot = *n;
            *n = n.checked_add(1).expect("fewer than 2^32 records of a kind");
            slot
        })
    }

    /// Gives back a slot [`Rows::allocate`] reserved and nothing filled.
    pub(crate) fn release(&mut self, kind: RecordKind, slot: u32) {
        with_slab!(self, kind, |s, mut| if !s.occupied(slot) {
            s.mark_free(slot)
        })
    }

    /// Whether a row of `kind` is at `slot`.
    pub(crate) fn occupied(&self, kind: RecordKind, slot: u32) -> bool {
        with_slab!(self, kind, |s| s.occupied(slot))
    }

    /// Places `record`'s row at `slot` (replacing whatever is there).
    pub(crate) fn put(&mut self, slot: u32, record: &Record) {
        let next = &mut self.next[record.kind() as usize];
        *next = (*next).max(slot.saturating_add(1));
        Arc::make_mut(&mut self.attributes[record.kind() as usize]).put(
            slot,
            record.attributes(),
            &mut self.dims,
        );
        let d = &mut self.dims;
        let ids = &mut self.customer_ids;
        match record {
            Record::Customer(c) => Arc::make_mut(&mut self.customers).put(
                slot,
                CustomerRow {
                    id: ids.intern(&c.id),
                    acquired_at: PackedTime::new(c.acquired_at),
                    churned_at: OptionalPackedTime::new(c.churned_at),
                    source: c.source,
                    campaign: d.intern_opt(c.campaign_id.as_deref()),
                    segment: d.intern_opt(c.segment.as_deref()),
                    owner: d.intern_opt(c.owner.as_deref()),
                },
            ),
            Record::Lead(l) => Arc::make_mut(&mut self.leads).put(
                slot,
                LeadRow {
                    created_at: PackedTime::new(l.created_at),
                    converted_at: OptionalPackedTime::new(l.converted_at),
                    source: l.source,
                    campaign: d.intern_opt(l.campaign_id.as_deref()),
                },
            ),
            Record::Deal(x) => Arc::make_mut(&mut self.deals).put(
                slot,
                DealRow {
                    owner: d.intern(&x.owner),
                    amount: x.amount,
                    created_at: PackedTime::new(x.created_at),
                    closed_at: OptionalPackedTime::new(x.closed_at),
                    status: x.status,
                    kind: x.kind,
                    customer: ids.intern_opt(x.customer_id.as_deref()),
                    campaign: d.intern_opt(x.campaign_id.as_deref()),
                    stages: x
                        .stage_history
                        .iter()
                        .map(|e| (d.intern(&e.stage), PackedTime::new(e.entered_at)))
                        .collect(),
                    currency: d.intern_opt(x.currency.as_deref()),
                    original: x.currency.as_ref().map(|_| Box::new(x.amount)),
                }
                .converted(&self.rates, &mut self.unconverted, slot),
            ),
            Record::Subscription(s) => Arc::make_mut(&mut self.subscriptions).put(
                slot,
                SubscriptionRow {
                    id: s.id.as_str().into(),
                    customer: ids.intern(&s.customer_id),
                    started_at: PackedTime::new(s.started_at),
                    ended_at: OptionalPackedTime::new(s.ended_at),
                    mrr_changes: s
                        .mrr_changes
                        .iter()
                        .map(|c| (PackedTime::new(c.at), c.mrr))
                        .collect(),
                    renewal_due_at: OptionalPackedTime::new(s.renewal_due_at),
                    renewed: s.renewed,
                    currency: d.intern_opt(s.currency.as_deref()),
                    original: s
                        .currency
                        .as_ref()
                        .map(|_| s.mrr_changes.iter().map(|c| c.mrr).collect()),
                }
                .converted(&self.rates, &mut self.unconverted, slot),
            ),
            Record::Purchase(p) => Arc::make_mut(&mut self.purchases).put(
                slot,
                PurchaseRow {
                    customer: ids.intern(&p.customer_id),
                    amount: p.amount,
                    at: PackedTime::new(p.at),
                    currency: d.intern_opt(p.currency.as_deref()),
                    original: p.currency.as_ref().map(|_| Box::new(p.amount)),
                }
                .converted(&self.rates, &mut self.unconverted, slot),
            ),
            Record::Spend(s) => Arc::make_mut(&mut self.spend).put(
                slot,
                SpendRow {
                    at: PackedTime::new(s.at),
                    amount: s.amount,
                    category: s.category,
                    channel: s.channel,
                    campaign: d.intern_opt(s.campaign_id.as_deref()),
                    currency: d.intern_opt(s.currency.as_deref()),
                    original: s.currency.as_ref().map(|_| Box::new(s.amount)),
                }
                .converted(&self.rates, &mut self.unconverted, slot),
            ),
            Record::Campaign(c) => Arc::make_mut(&mut self.campaigns).put(
                slot,
                CampaignRow {
                    id: d.intern(&c.id),
                    channel: c.channel,
                    started_at: PackedTime::new(c.started_at),
                    delivered: c.delivered,
                    opens: c.opens,
                    clicks: c.clicks,
                },
            ),
            Record::Ticket(t) => Arc::make_mut(&mut self.tickets).put(
                slot,
                TicketRow {
                    customer: ids.intern_opt(t.customer_id.as_deref()),
                    agent: d.intern(&t.agent),
                    opened_at: PackedTime::new(t.opened_at),
                    first_response_at: OptionalPackedTime::new(t.first_response_at),
                    resolved_at: OptionalPackedTime::new(t.resolved_at),
                },
            ),
            Record::SurveyResponse(s) => Arc::make_mut(&mut self.surveys).put(
                slot,
                SurveyRow {
                    customer: ids.intern_opt(s.customer_id.as_deref()),
                    kind: s.kind,
                    score: s.score,
                    scale_max: s.scale_max,
                    at: PackedTime::new(s.at),
                },
            ),
            Record::Quota(q) => Arc::make_mut(&mut self.quotas).put(
                slot,
                QuotaRow {
                    owner: d.intern(&q.owner),
                    period_start: q.period_start,
                    period_end: q.period_end,
                    amount: q.amount,
                    currency: d.intern_opt(q.currency.as_deref()),
                    original: q.currency.as_ref().map(|_| Box::new(q.amount)),
                }
                .converted(&self.rates, &mut self.unconverted, slot),
            ),
            Record::Activity(a) => Arc::make_mut(&mut self.activities).put(
                slot,
                ActivityRow {
                    activity_type: d.intern(&a.activity_type),
                    owner: d.intern_opt(a.owner.as_deref()),
                    customer: ids.intern_opt(a.customer_id.as_deref()),
                    occurred_at: PackedTime::new(a.occurred_at),
                    amount: a.amount,
                },
            ),
            Record::FxRate(r) => {
                Arc::make_mut(&mut self.fx_rates).put(
                    slot,
                    FxRateRow {
                        id: r.id.as_str().into(),
                        currency: d.intern(&r.currency),
                        effective_at: PackedTime::new(r.effective_at),
                        rate: r.rate,
                        base: d.intern_opt(r.base.as_deref()),
                    },
                );
                self.rates_written();
            }
        }
    }

    /// Removes the row of `kind` at `slot` and frees the slot; whether there was one.
    pub(crate) fn remove(&mut self, kind: RecordKind, slot: u32) -> bool {
        let removed = with_slab!(self, kind, |s, mut| s.remove(slot));
        if removed {
            Arc::make_mut(&mut self.attributes[kind as usize]).remove(slot);
            self.unconverted.set(kind, slot, Vec::new());
            if kind == RecordKind::FxRate {
                self.rates_written();
            }
        }
        removed
    }

    /// Notes a write of rates: the next [`Rows::convert_again`] converts again what they
    /// move (unless it converts every amount anyway).
    fn rates_written(&mut self) {
        self.reconvert = self.reconvert.max(Reconvert::RatesWritten);
    }

    /// Sets the base currency (`""`: none) and converts every amount again when it or the
    /// rates changed since the amounts were converted; the kinds whose rows changed.
    pub(crate) fn set_base_currency(&mut self, code: &str) -> Vec<RecordKind> {
        let base = if code.is_empty() {
            NONE
        } else {
            self.dims.intern(code)
        };
        if base != self.rates.base {
            self.rates.base = base;
            self.reconvert = Reconvert::Every;
        }
        self.convert_again()
    }

    /// After a write of exchange rates (or a change of base, or a load): converts again the
    /// amounts the rates now convert otherwise ([`Rates::moved_since`]; every amount naming
    /// a currency after a change of base or a load), and returns the kinds whose rows
    /// changed (none when the rates did not change).
    pub(crate) fn convert_again(&mut self) -> Vec<RecordKind> {
        let reconvert = std::mem::replace(&mut self.reconvert, Reconvert::Nothing);
        if reconvert == Reconvert::Nothing {
            return Vec::new();
        }
        let rates = Rates::of(self.rates.base, &self.fx_rates);
        let moved = match reconvert {
            Reconvert::Every => Moved::Every,
            _ => rates.moved_since(&self.rates),
        };
        self.rates = rates;
        if moved.is_nothing() {
            return Vec::new();
        }
        let mut changed = Vec::new();
        macro_rules! again {
            ($($field:ident: $kind:ident),*) => {$(
                let before = self.unconverted.of(RecordKind::$kind);
                let again: Vec<(u32, _, Vec<Unconverted>)> = self
                    .$field
                    .slots()
                    .filter(|(_, row)| {
                        row.currency != NONE && moved.moves(row.currency, row.last_converted_at())
                    })
                    .filter_map(|(slot, row)| {
                        let mut new = row.clone();
                        let missing = new.convert(&self.rates);
                        let same = new.same_amounts(row)
                            && before.get(&slot).map_or(&[][..], Vec::as_slice) == missing;
                        (!same).then_some((slot, new, missing))
                    })
                    .collect();
                if !again.is_empty() {
                    changed.push(RecordKind::$kind);
                    let slab = Arc::make_mut(&mut self.$field);
                    for (slot, row, missing) in again {
                        slab.put(slot, row);
                        self.unconverted.set(RecordKind::$kind, slot, missing);
                    }
                }
            )*};
        }
        again!(
            deals: Deal,
            subscriptions: Subscription,
            purchases: Purchase,
            spend: Spend,
            quotas: Quota
        );
        changed
    }

    /// After loading rows at their slots: every hole below the highest slot is free, and
    /// the amounts are to be converted again with the rates loaded
    /// ([`Rows::set_base_currency`] does it, once the tenant's settings are known).
    pub(crate) fn loaded(&mut self) {
        self.reconvert = Reconvert::Every;
        for kind in RecordKind::ALL {
            let len = with_slab!(self, kind, |s, mut| {
                s.collect_free();
                s.slot_count() as u32
            });
            let next = &mut self.next[kind as usize];
            *next = (*next).max(len);
        }
    }

    /// How many records there are.
    pub(crate) fn len(&self) -> usize {
        RecordKind::ALL
            .into_iter()
            .map(|kind| with_slab!(self, kind, |s| s.len()))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_intern_once_and_load_back() {
        let mut ids = Ids::default();
        let names = ["cus-1", "cus-2", "", "cus-1x", "cüs-ü"];
        let syms: Vec<Sym> = names.iter().map(|n| ids.intern(n)).collect();
        assert_eq!(syms, vec![0, 1, 2, 3, 4]);
        for (n, s) in names.iter().zip(&syms) {
            assert_eq!(ids.intern(n), *s, "{n}");
        }
        assert_eq!(ids.len(), names.len());
        let mut entries: Vec<(Box<str>, Sym)> = ids
            .entries()
            .into_iter()
            .map(|(t, s)| (t.into(), s))
            .collect();
        entries.reverse();
        let mut loaded = Ids::load(entries.clone()).expect("symbols 0..n");
        for (n, s) in names.iter().zip(&syms) {
            assert_eq!(loaded.intern(n), *s, "{n}");
        }
        assert_eq!(loaded.intern("new"), 5);
        // A gap or a repeated symbol is refused.
        let mut gap = entries.clone();
        gap[0].1 = 9;
        assert!(Ids::load(gap).is_none());
        let mut twice = entries;
        twice[0].0 = twice[1].0.clone();
        assert!(Ids::load(twice).is_none());
    }

    #[test]
    fn compact_timestamps_round_trip() {
        let times = [
            Timestamp::MIN,
            Timestamp::MAX,
            Timestamp::UNIX_EPOCH,
            "1969-12-31T23:59:59.999999999Z".parse().unwrap(),
            "2024-02-29T12:00:00.000000001Z".parse().unwrap(),
            "9000-01-01T00:00:00Z".parse().unwrap(),
        ];
        for t in times {
            assert_eq!(PackedTime::new(t).get(), t);
            assert_eq!(OptionalPackedTime::new(Some(t)).get(), Some(t));
        }
        assert_eq!(OptionalPackedTime::new(None).get(), None);
        assert_eq!(std::mem::size_of::<PackedTime>(), 12);
        assert_eq!(std::mem::size_of::<OptionalPackedTime>(), 12);
    }
}
