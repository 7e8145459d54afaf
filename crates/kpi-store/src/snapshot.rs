//! The rows of every tenant in one file (`rows.snapshot` in the data directory), written
//! when kpid stops and read when it starts, so a restart does not decode every record.
//!
//! A snapshot is only read when it is the latest state: writing one ends by storing its
//! token (random, also in the file's header) in sled's `meta` tree, and the first write
//! after a snapshot was taken or loaded removes that token, durably, before it changes
//! anything. A crash therefore never leaves a stale snapshot that looks current; without a
//! current snapshot the store opens by scanning sled.
//!
//! A snapshot is also only read when it is intact. Its content is cut into blocks of at
//! most 1 MiB, each followed by the CRC-32 of every byte of the file before it, and the
//! reader checks a block's CRC before it decodes any byte of it; the file ends with an
//! empty block, whose CRC covers the whole file. So a damaged byte is found before the
//! decoder sees it, and even so every length, count and slot the decoder reads is bounded
//! (by the bytes left in the file, or by how many slots its rows may span) before anything
//! is allocated, and every symbol a row holds is checked against its table. A snapshot that
//! does not verify is an error, which the store logs before it scans sled instead.
//!
//! ```text
//! file    = "kpidrows" ‖ version u32 (5; 4 is still read) ‖ token u64 ‖ block* ‖ end
//! block   = length u32 (1..=2^20) ‖ content bytes ‖ crc u32
//! end     = length u32 (0) ‖ crc u32
//! content = tenants u32 ‖ tenant*                        (cut into blocks anywhere)
//! tenant  = name ‖ dimension values (count u32 ‖ str*) ‖ customer ids (count u32 ‖ (str ‖ u32)*)
//!           ‖ per record kind: length u64 (bytes of the rows that follow; not in version 4)
//!             ‖ live rows (count u32 ‖ (slot u32 ‖ row)*, slots ascending)
//!           ‖ per record kind: custom attributes
//! ```
//!
//! The lengths let two threads decode: a kind's rows of [`SECOND_THREAD_BYTES`] or more are
//! read as bytes (their blocks checked first, as always) and decoded by a second thread
//! while the first reads and decodes on; one such kind at a time, so the bytes held besides
//! the rows are at most one kind's.
//!
//! A crc is the CRC-32 (IEEE, `crc32fast`: about 10 GB/s with PCLMULQDQ) of every byte of
//! the file before it. Integers are little-endian; a string is its length (u32) and UTF-8
//! bytes; a decimal its 16-byte `rust_decimal` serialization; a timestamp its seconds (i64)
//! and nanoseconds (i32).

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

use kpi_core::SurveyKind;

use crate::attribute_columns::AttributeColumns;
use crate::attributes::check_name;
use crate::record::{Channel, DealKind, DealStatus, RecordKind, Source, SpendCategory};
use crate::rows::{
    ActivityRow, CampaignRow, CustomerRow, DealRow, FxRateRow, Ids, LeadRow, PurchaseRow, QuotaRow,
    Rows, Slab, SpendRow, SubscriptionRow, SurveyRow, TicketRow,
};
use crate::slab::AscendingSlab;
use crate::symbols::{Sym, NONE};

pub(crate) mod blocks;
mod snap;

pub(crate) use self::blocks::{BlockReader, BlockWriter};
pub(crate) use self::snap::{get_count, invalid, snap_fields, ContentSource, Snap};

const MAGIC: &[u8; 8] = b"kpidrows";
/// 2: checksummed blocks (version 1 files, without, are discarded: the store scans).
/// 3: each kind's custom attributes after the rows (version 2 files, without, are
/// discarded likewise).
/// 4: amounts with their currency and amount as sent, and the exchange rates (version 3
/// files, without, are discarded likewise).
/// 5: each kind's rows preceded by their length in bytes, so a second thread can decode a
/// large kind while the first reads on (version 4 files, without, are still read).
const VERSION: u32 = 5;
/// The oldest version still read.
const OLDEST_READ: u32 = 4;
/// Magic, version and token.
pub(crate) const HEADER: usize = 20;
/// A kind's rows of at least this many bytes are decoded by a second thread (one kind at a
/// time, so at most one such section is held as bytes besides the rows).
#[cfg(not(test))]
const SECOND_THREAD_BYTES: u64 = 4 << 20;
/// Small under test, so the tests' snapshots use the second thread.
#[cfg(test)]
const SECOND_THREAD_BYTES: u64 = 64;
/// Most content bytes in one block.
#[cfg(not(test))]
const BLOCK: usize = 1 << 20;
/// Small under test, so a small snapshot spans blocks.
#[cfg(test)]
const BLOCK: usize = 256;
/// A slab's slots may span at most this many per live row, plus [`SPARE_SLOTS`]: bounds
/// what a slot read from the file makes the reader allocate. Free slots are those of
/// deleted records not yet reused, so a kind with more than 15 of every 16 slots free (and
/// over a million of them) is read by scanning instead.
const SLOTS_PER_ROW: u64 = 16;
/// See [`SLOTS_PER_ROW`].
const SPARE_SLOTS: u64 = 1 << 20;
/// The file's name in the data directory.
pub(crate) const FILE: &str = "rows.snapshot";

/// Enums as their position in `ALL`.
macro_rules! snap_enum {
    ($($t:ty => $all:expr),* $(,)?) => {$(
        impl Snap for $t {
            fn put(&self, w: &mut impl Write) -> io::Result<()> {
                let i = $all.iter().position(|x| x == self).expect("every variant is listed");
                (i as u8).put(w)
            }
            fn get(r: &mut impl ContentSource) -> io::Result<Self> {
                let i = u8::get(r)? as usize;
                $all.get(i).copied().ok_or_else(|| invalid(format!("bad {} {i}", stringify!($t))))
            }
        }
    )*};
}
snap_enum!(
    Source => Source::ALL,
    Channel => Channel::ALL,
    DealStatus => [DealStatus::Open, DealStatus::Won, DealStatus::Lost],
    DealKind => [DealKind::NewBusiness, DealKind::Upsell, DealKind::CrossSell, DealKind::Renewal],
    SpendCategory => [
        SpendCategory::Advertising,
        SpendCategory::Salaries,
        SpendCategory::Commissions,
        SpendCategory::Overhead,
        SpendCategory::Tools,
        SpendCategory::Other,
    ],
    SurveyKind => [SurveyKind::Nps, SurveyKind::Csat, SurveyKind::Ces],
);

/// What a symbol in a row names.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ref {
    /// A dimension value (`Rows::dims`).
    Dim,
    /// A dimension value or [`NONE`].
    OptDim,
    /// A customer id (`Rows::customer_ids`).
    Id,
    /// A customer id or [`NONE`].
    OptId,
}

/// A row as symbols and other values: what the reader checks and `differing_kinds`
/// compares.
trait Refs {
    /// Each symbol with what it names, in a fixed order.
    fn refs(&self, f: &mut impl FnMut(Ref, Sym));
    /// Writes every field that is not a symbol.
    fn put_values(&self, w: &mut impl Write) -> io::Result<()>;
}

/// Structs field by field ([`snap_fields!`]: the symbols, then the other fields); `refs`
/// lists their symbols, `values` the other fields (every field is in one of them: the
/// struct literal `snap_fields!` writes names each).
macro_rules! snap_struct {
    ($($t:ident { refs: [$($s:ident: $k:ident),*], values: [$($v:ident),*] $(,)? })*) => {$(
        snap_fields!($t { $($s,)* $($v,)* });
        impl Refs for $t {
            fn refs(&self, f: &mut impl FnMut(Ref, Sym)) {
                $( f(Ref::$k, self.$s); )*
            }
            fn put_values(&self, w: &mut impl Write) -> io::Result<()> {
                $( self.$v.put(w)?; )*
                Ok(())
            }
        }
    )*};
}
snap_struct! {
    CustomerRow {
        refs: [id: Id, campaign: OptDim, segment: OptDim, owner: OptDim],
        values: [acquired_at, churned_at, source],
    }
    LeadRow { refs: [campaign: OptDim], values: [created_at, converted_at, source] }
    SubscriptionRow {
        refs: [customer: Id, currency: OptDim],
        values: [id, started_at, ended_at, mrr_changes, renewal_due_at, renewed, original],
    }
    PurchaseRow { refs: [customer: Id, currency: OptDim], values: [amount, at, original] }
    SpendRow {
        refs: [campaign: OptDim, currency: OptDim],
        values: [at, amount, category, channel, original],
    }
    CampaignRow { refs: [id: Dim], values: [channel, started_at, delivered, opens, clicks] }
    TicketRow {
        refs: [customer: OptId, agent: Dim],
        values: [opened_at, first_response_at, resolved_at],
    }
    SurveyRow { refs: [customer: OptId], values: [kind, score, scale_max, at] }
    QuotaRow {
        refs: [owner: Dim, currency: OptDim],
        values: [period_start, period_end, amount, original],
    }
    FxRateRow { refs: [currency: Dim, base: OptDim], values: [id, effective_at, rate] }
    ActivityRow {
        refs: [activity_type: Dim, owner: OptDim, customer: OptId],
        values: [occurred_at, amount],
    }
}

/// A deal's stages hold symbols too.
impl Snap for DealRow {
    fn put(&self, w: &mut impl Write) -> io::Result<()> {
        let DealRow {
            owner,
            customer,
            campaign,
            amount,
            created_at,
            closed_at,
            status,
            kind,
            stages,
            currency,
            original,
        } = self;
        owner.put(w)?;
        customer.put(w)?;
        campaign.put(w)?;
        currency.put(w)?;
        original.put(w)?;
        amount.put(w)?;
        created_at.put(w)?;
        closed_at.put(w)?;
        status.put(w)?;
        kind.put(w)?;
        stages.put(w)
    }
    fn get(r: &mut impl ContentSource) -> io::Result<Self> {
        Ok(DealRow {
            owner: Snap::get(r)?,
            customer: Snap::get(r)?,
            campaign: Snap::get(r)?,
            currency: Snap::get(r)?,
            original: Snap::get(r)?,
            amount: Snap::get(r)?,
            created_at: Snap::get(r)?,
            closed_at: Snap::get(r)?,
            status: Snap::get(r)?,
            kind: Snap::get(r)?,
            stages: Snap::get(r)?,
        })
    }
}

impl Refs for DealRow {
    fn refs(&self, f: &mut impl FnMut(Ref, Sym)) {
        f(Ref::Dim, self.owner);
        f(Ref::OptId, self.customer);
        f(Ref::OptDim, self.campaign);
        f(Ref::OptDim, self.currency);
        for (stage, _) in &*self.stages {
            f(Ref::Dim, *stage);
        }
    }
    fn put_values(&self, w: &mut impl Write) -> io::Result<()> {
        self.amount.put(w)?;
        self.original.put(w)?;
        self.created_at.put(w)?;
        self.closed_at.put(w)?;
        self.status.put(w)?;
        self.kind.put(w)?;
        (self.stages.len() as u64).put(w)?;
        self.stages.iter().try_for_each(|(_, at)| at.put(w))
    }
}

/// What the symbols of one tenant's rows name.
struct Tables<'a> {
    dims: &'a [String],
    /// Customer ids by symbol.
    ids: Vec<&'a str>,
}

impl<'a> Tables<'a> {
    fn of(rows: &'a Rows) -> Self {
        let ids = rows
            .customer_ids
            .entries()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        Self {
            dims: rows.dims.names(),
            ids,
        }
    }

    /// What `sym` names, `None` for [`NONE`]; `Err` when the table has no such symbol, or
    /// the row must name something and does not.
    fn name(&self, of: Ref, sym: Sym) -> Result<Option<&'a str>, ()> {
        let found = match of {
            Ref::Dim | Ref::OptDim => self.dims.get(sym as usize).map(String::as_str),
            Ref::Id | Ref::OptId => self.ids.get(sym as usize).copied(),
        };
        match found {
            Some(name) => Ok(Some(name)),
            None if sym == NONE && of.optional() => Ok(None),
            None => Err(()),
        }
    }
}

impl Ref {
    /// Whether the symbol may be [`NONE`].
    fn optional(self) -> bool {
        matches!(self, Ref::OptDim | Ref::OptId)
    }
}

/// Whether every symbol of `row` names something its tables hold, `dims` and `ids` their
/// sizes.
fn refs_hold<T: Refs>(row: &T, dims: usize, ids: usize) -> bool {
    let mut ok = true;
    row.refs(&mut |of, sym| {
        let len = match of {
            Ref::Dim | Ref::OptDim => dims,
            Ref::Id | Ref::OptId => ids,
        };
        ok &= (sym as usize) < len || (sym == NONE && of.optional());
    });
    ok
}

fn put_slab<T: Snap>(slab: &Slab<T>, w: &mut impl Write) -> io::Result<()> {
    u32::try_from(slab.len())
        .map_err(|_| invalid("too many rows"))?
        .put(w)?;
    slab.slots().try_for_each(|(slot, row)| {
        slot.put(w)?;
        row.put(w)
    })
}

/// Reads a slab's rows, `(dims, ids)` the sizes of the tenant's tables.
fn get_slab<T: Snap + Refs>(
    kind: RecordKind,
    (dims, ids): (usize, usize),
    r: &mut impl ContentSource,
) -> io::Result<Slab<T>> {
    let kind = kind.as_str();
    let n = get_count(r, &format!("{kind} rows"))?;
    let most = u64::from(n) * SLOTS_PER_ROW + SPARE_SLOTS;
    // `n` is bounded by the bytes left: the builder's first chunk is at most `CHUNK` rows.
    let mut slab = AscendingSlab::new(n as usize);
    for _ in 0..n {
        let slot = u32::get(r)?;
        // Slots ascend (so none comes twice).
        if (slot as usize) < slab.end() {
            return Err(invalid(format!(
                "{kind} slot {slot} follows slot {}",
                slab.end() - 1
            )));
        }
        if u64::from(slot) >= most {
            return Err(invalid(format!(
                "{kind} slot {slot}: {n} rows may not span more than {most} slots"
            )));
        }
        let row = T::get(r)?;
        if !refs_hold(&row, dims, ids) {
            return Err(invalid(format!(
                "the {kind} row at slot {slot} names a dimension value or customer id the tenant does not have"
            )));
        }
        slab.push(slot, row);
    }
    Ok(slab.finish())
}

/// Calls `$each!(kind, field)` for every record kind and its slab in `Rows`.
macro_rules! for_each_slab {
    ($each:ident) => {
        $each!(Customer, customers);
        $each!(Lead, leads);
        $each!(Deal, deals);
        $each!(Subscription, subscriptions);
        $each!(Purchase, purchases);
        $each!(Spend, spend);
        $each!(Campaign, campaigns);
        $each!(Ticket, tickets);
        $each!(SurveyResponse, surveys);
        $each!(Quota, quotas);
        $each!(Activity, activities);
        $each!(FxRate, fx_rates);
    };
}

/// Counts the bytes written to it (a kind's section length, before the section).
struct ByteCount(u64);

impl Write for ByteCount {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0 += data.len() as u64;
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes one tenant's rows; `sectioned` (version 5) puts each kind's length before it.
fn put_rows(rows: &Rows, sectioned: bool, w: &mut impl Write) -> io::Result<()> {
    let names = rows.dims.names();
    (names.len() as u32).put(w)?;
    names
        .iter()
        .try_for_each(|n| Box::<str>::from(n.as_str()).put(w))?;
    let ids = rows.customer_ids.entries();
    (ids.len() as u32).put(w)?;
    ids.iter().try_for_each(|(s, sym)| {
        Box::<str>::from(*s).put(w)?;
        sym.put(w)
    })?;
    macro_rules! put {
        ($kind:ident, $slab:ident) => {{
            if sectioned {
                let mut length = ByteCount(0);
                put_slab(&rows.$slab, &mut length)?;
                length.0.put(w)?;
            }
            put_slab(&rows.$slab, w)?
        }};
    }
    for_each_slab!(put);
    rows.attributes
        .iter()
        .try_for_each(|columns| put_attributes(columns, w))
}

/// Writes one kind's attributes: per column its name and its `(slot, value)` pairs.
fn put_attributes(columns: &AttributeColumns, w: &mut impl Write) -> io::Result<()> {
    let columns: Vec<(&str, Vec<(u32, Sym)>)> = columns
        .columns()
        .map(|(name, column)| (name, column.values().collect()))
        .collect();
    (columns.len() as u32).put(w)?;
    for (name, values) in columns {
        Box::<str>::from(name).put(w)?;
        (values.len() as u32).put(w)?;
        for (slot, value) in values {
            slot.put(w)?;
            value.put(w)?;
        }
    }
    Ok(())
}

/// Reads one kind's attributes into `rows`, checking each name, that each slot holds a
/// row and each value is a dimension value the tenant has.
fn get_attributes(rows: &mut Rows, kind: RecordKind, r: &mut BlockReader) -> io::Result<()> {
    let dims = rows.dims.names().len();
    let mut columns = AttributeColumns::default();
    for _ in 0..get_count(r, "attribute columns")? {
        let name = Box::<str>::get(r)?;
        check_name(&name).map_err(invalid)?;
        if columns.column(&name).is_some() {
            return Err(invalid(format!("attribute column {name:?} twice")));
        }
        for _ in 0..get_count(r, "attribute values")? {
            let (slot, value) = (u32::get(r)?, u32::get(r)?);
            if !rows.occupied(kind, slot) || value as usize >= dims {
                return Err(invalid(format!(
                    "attribute {name:?} of the {} at slot {slot}: no such row or value",
                    kind.as_str()
                )));
            }
            columns.set(&name, slot, value);
        }
    }
    rows.attributes[kind as usize] = Arc::new(columns);
    Ok(())
}

/// Puts a kind's rows decoded by the second thread in their place.
type Placed = Box<dyn FnOnce(&mut Rows) + Send>;

/// Reads every kind's rows, each preceded by its length (version 5): a large kind's bytes
/// are read (their blocks checked) and handed to a second thread to decode while this one
/// reads on, when that thread is idle; every other kind is decoded here. Either way the
/// rows must fill exactly the length the file gives.
fn get_sections(rows: &mut Rows, tables: (usize, usize), r: &mut BlockReader) -> io::Result<()> {
    std::thread::scope(|scope| {
        let mut second: Option<std::thread::ScopedJoinHandle<'_, io::Result<Placed>>> = None;
        let place = |handle: std::thread::ScopedJoinHandle<'_, io::Result<Placed>>,
                     rows: &mut Rows| {
            let placed = handle
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e))?;
            placed(rows);
            io::Result::Ok(())
        };
        let read = (|| {
            macro_rules! get {
                ($kind:ident, $slab:ident) => {{
                    let kind = RecordKind::$kind;
                    let length = u64::get(r)?;
                    if length > r.remaining() {
                        return Err(invalid(format!(
                            "{length} bytes of {} rows, with {} bytes left",
                            kind.as_str(),
                            r.remaining()
                        )));
                    }
                    let idle = second.as_ref().is_none_or(|h| h.is_finished());
                    if length >= SECOND_THREAD_BYTES && idle {
                        if let Some(handle) = second.take() {
                            place(handle, rows)?;
                        }
                        let mut bytes = vec![0; length as usize];
                        r.read_exact(&mut bytes)?;
                        second = Some(scope.spawn(move || {
                            let mut section = &bytes[..];
                            let slab = get_slab(kind, tables, &mut section)?;
                            if !section.is_empty() {
                                return Err(section_overrun(kind, length));
                            }
                            Ok(Box::new(move |rows: &mut Rows| rows.$slab = Arc::new(slab))
                                as Placed)
                        }));
                    } else {
                        let before = r.position();
                        rows.$slab = Arc::new(get_slab(kind, tables, r)?);
                        if r.position() - before != length {
                            return Err(section_overrun(kind, length));
                        }
                    }
                }};
            }
            for_each_slab!(get);
            Ok(())
        })();
        // The second thread's error first: its section is the earlier in the file.
        if let Some(handle) = second.take() {
            place(handle, rows)?;
        }
        read
    })
}

fn section_overrun(kind: RecordKind, length: u64) -> io::Error {
    invalid(format!(
        "the {} rows do not take the {length} bytes their section gives",
        kind.as_str()
    ))
}

fn get_rows(r: &mut BlockReader, sectioned: bool) -> io::Result<Rows> {
    let mut rows = Rows::default();
    for i in 0..get_count(r, "dimension values")? {
        let name = Box::<str>::get(r)?;
        // The first ones are interned already (sources and channels): the same, in order.
        if rows.dims.intern(&name) != i {
            return Err(invalid(format!(
                "dimension value {i} ({name:?}) is out of place"
            )));
        }
    }
    let mut ids = Vec::new();
    for _ in 0..get_count(r, "customer ids")? {
        ids.push((Box::<str>::get(r)?, u32::get(r)?));
    }
    rows.customer_ids =
        Ids::load(ids).ok_or_else(|| invalid("customer ids are not 0..n, each once"))?;
    let tables = (rows.dims.names().len(), rows.customer_ids.len());
    if sectioned {
        get_sections(&mut rows, tables, r)?;
    } else {
        macro_rules! get {
            ($kind:ident, $slab:ident) => {
                rows.$slab = Arc::new(get_slab(RecordKind::$kind, tables, r)?)
            };
        }
        for_each_slab!(get);
    }
    for kind in RecordKind::ALL {
        get_attributes(&mut rows, kind, r)?;
    }
    rows.loaded();
    Ok(rows)
}

/// Whether two slabs hold the same rows at the same slots, symbols compared by what they
/// name.
fn same_slab<T: Refs>(a: &Slab<T>, at: &Tables, b: &Slab<T>, bt: &Tables) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut va, mut vb) = (Vec::new(), Vec::new());
    let (mut ra, mut rb) = (Vec::new(), Vec::new());
    a.slots().zip(b.slots()).all(|((sa, x), (sb, y))| {
        va.clear();
        vb.clear();
        ra.clear();
        rb.clear();
        x.refs(&mut |of, sym| ra.push(at.name(of, sym)));
        y.refs(&mut |of, sym| rb.push(bt.name(of, sym)));
        sa == sb
            && x.put_values(&mut va).is_ok()
            && y.put_values(&mut vb).is_ok()
            && va == vb
            && ra == rb
            && ra.iter().all(Result::is_ok)
    })
}

/// The kinds whose rows differ between `a` and `b`, two readings of one tenant: the same
/// records at the same slots, whatever order their strings were interned in.
pub(crate) fn differing_kinds(a: &Rows, b: &Rows) -> Vec<RecordKind> {
    let (at, bt) = (Tables::of(a), Tables::of(b));
    let mut kinds = Vec::new();
    macro_rules! compare {
        ($kind:ident, $slab:ident) => {
            if !same_slab(&a.$slab, &at, &b.$slab, &bt) {
                kinds.push(RecordKind::$kind);
            }
        };
    }
    for_each_slab!(compare);
    for kind in RecordKind::ALL {
        let named = |rows: &Rows, tables: &Tables| {
            let mut values: Vec<(String, u32, Option<String>)> = Vec::new();
            for (name, column) in rows.attributes[kind as usize].columns() {
                for (slot, value) in column.values() {
                    let text = tables.dims.get(value as usize).cloned();
                    values.push((name.to_owned(), slot, text));
                }
            }
            values
        };
        if named(a, &at) != named(b, &bt) && !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    kinds
}

/// Writes the snapshot of `tenants` to `dir`, durably (a temporary file, fsync'd, renamed,
/// and the directory fsync'd).
pub(crate) fn write(dir: &Path, token: u64, tenants: &[(&str, &Rows)]) -> io::Result<()> {
    replace_durably(dir, FILE, |tmp| write_to(tmp, token, tenants, VERSION))
}

/// Replaces file `name` in `dir` by what `write` writes (and syncs) to the temporary path it
/// is given: renamed over `name` once written, then the directory synced; on an error (a
/// full disk, say) no partial file is left behind and `name` is as it was.
pub(crate) fn replace_durably(
    dir: &Path,
    name: &str,
    write: impl FnOnce(&Path) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let written = write(&tmp);
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return written;
    }
    std::fs::rename(&tmp, dir.join(name))?;
    File::open(dir)?.sync_all()
}

/// Writes a snapshot in format `version` (older than [`VERSION`] only under test).
fn write_to(tmp: &Path, token: u64, tenants: &[(&str, &Rows)], version: u32) -> io::Result<()> {
    let file = File::create(tmp)?;
    let mut header = Vec::with_capacity(HEADER);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&version.to_le_bytes());
    header.extend_from_slice(&token.to_le_bytes());
    let mut w = BlockWriter::new(&file, &header)?;
    (tenants.len() as u32).put(&mut w)?;
    for (name, rows) in tenants {
        Box::<str>::from(*name).put(&mut w)?;
        put_rows(rows, version >= 5, &mut w)?;
    }
    w.finish()?;
    file.sync_all()
}

/// Reads the snapshot in `dir`: `None` when there is none; an error, saying why, when it
/// does not verify (damaged, truncated, of another format version) or is not the one
/// `token` names.
pub(crate) fn read(dir: &Path, token: u64) -> io::Result<Option<Vec<(String, Rows)>>> {
    let file = match File::open(dir.join(FILE)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    read_from(Box::new(file), len, Some(token)).map(|(_, rows)| Some(rows))
}

/// The snapshot in `dir` read before sled's token is known (the store opens sled
/// meanwhile, on another thread): the token its header names and its rows, `None` when
/// there is none, or why it does not verify. [`Early::current`] then keeps it only if its
/// token is the one sled holds.
pub(crate) fn read_early(dir: &Path) -> Early {
    let started = std::time::Instant::now();
    let read = (|| {
        let file = match File::open(dir.join(FILE)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len();
        read_from(Box::new(file), len, None).map(Some)
    })();
    Early {
        read,
        elapsed: started.elapsed(),
    }
}

/// Every tenant's rows, as a snapshot holds them.
pub(crate) type TenantRows = Vec<(String, Rows)>;

/// A snapshot read by [`read_early`].
pub(crate) struct Early {
    /// The token its header names and its rows.
    read: io::Result<Option<(u64, TenantRows)>>,
    /// How long the read took.
    pub(crate) elapsed: std::time::Duration,
}

impl Early {
    /// Its rows if it is the snapshot `token` names (as [`read`] answers).
    pub(crate) fn current(self, token: u64) -> io::Result<Option<TenantRows>> {
        match self.read? {
            Some((t, rows)) if t == token => Ok(Some(rows)),
            Some(_) => Err(invalid(
                "not the current snapshot (its token is not the one sled holds)",
            )),
            None => Ok(None),
        }
    }
}

/// Reads a snapshot; with `token`, fails as soon as the header names another. Returns the
/// header's token and the rows.
fn read_from(file: Box<dyn Read>, len: u64, token: Option<u64>) -> io::Result<(u64, TenantRows)> {
    let (header, mut r) = BlockReader::start(file, len)?;
    if header[..8] != MAGIC[..] {
        return Err(invalid("not a rows snapshot (its first bytes are wrong)"));
    }
    let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    if !(OLDEST_READ..=VERSION).contains(&version) {
        return Err(invalid(format!(
            "format version {version}; this kpid reads versions {OLDEST_READ} to {VERSION}"
        )));
    }
    // The first block's checksum covers the header: the token is as written.
    r.next_block()?;
    let found = u64::from_le_bytes(header[12..].try_into().expect("8 bytes"));
    if token.is_some_and(|token| token != found) {
        return Err(invalid(
            "not the current snapshot (its token is not the one sled holds)",
        ));
    }
    let n = get_count(&mut r, "tenants")?;
    let mut tenants = Vec::new();
    let mut names = HashSet::new();
    for _ in 0..n {
        let name = String::from(Box::<str>::get(&mut r)?);
        if !names.insert(name.clone()) {
            return Err(invalid(format!("tenant {name:?} twice")));
        }
        tenants.push((name, get_rows(&mut r, version >= 5)?));
    }
    r.finish()?;
    Ok((found, tenants))
}

#[cfg(test)]
mod tests;
