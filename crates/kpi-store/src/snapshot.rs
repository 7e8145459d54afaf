//! The rows of every tenant in one file (`rows.snapshot` in the data directory), written
//! when kpid stops and read when it starts, so a restart does not decode every record.
//!
//! A snapshot is only read when it is the latest state: writing one ends by storing its
//! token (random, also in the file's header) in sled's `meta` tree, and the first write
//! after a snapshot was taken or loaded removes that token, durably, before it changes
//! anything. A crash therefore never leaves a stale snapshot that looks current; without a
//! current snapshot the store opens by scanning sled.
//!
//! ```text
//! file   = "kpidrows" ‖ version u32 ‖ token u64 ‖ tenants u32 ‖ tenant*
//! tenant = name ‖ dimension values (count u32 ‖ str*) ‖ customer ids (count u32 ‖ (str ‖ u32)*)
//!          ‖ per record kind: live rows (count u32 ‖ (slot u32 ‖ row)*)
//! ```
//!
//! Integers are little-endian; a string is its length (u32) and UTF-8 bytes; a decimal its
//! 16-byte `rust_decimal` serialization; a timestamp its seconds (i64) and nanoseconds (i32).

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::sync::Arc;

use jiff::Timestamp;
use kpi_core::{Decimal, SurveyKind};

use crate::record::{Channel, DealKind, DealStatus, Source, SpendCategory};
use crate::rows::{
    CampaignRow, CustomerRow, DealRow, Ids, LeadRow, OptTs, PurchaseRow, QuotaRow, Rows, Slab,
    SpendRow, SubRow, SurveyRow, TicketRow, Ts,
};

const MAGIC: &[u8; 8] = b"kpidrows";
const VERSION: u32 = 1;
/// The file's name in the data directory.
pub(crate) const FILE: &str = "rows.snapshot";

fn invalid(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.into())
}

/// A value with a binary form.
trait Snap: Sized {
    fn put(&self, w: &mut impl Write) -> io::Result<()>;
    fn get(r: &mut impl Read) -> io::Result<Self>;
}

macro_rules! snap_int {
    ($($t:ty),*) => {$(
        impl Snap for $t {
            fn put(&self, w: &mut impl Write) -> io::Result<()> {
                w.write_all(&self.to_le_bytes())
            }
            fn get(r: &mut impl Read) -> io::Result<Self> {
                let mut b = [0u8; std::mem::size_of::<$t>()];
                r.read_exact(&mut b)?;
                Ok(<$t>::from_le_bytes(b))
            }
        }
    )*};
}
snap_int!(u8, u32, u64, i32, i64);

impl Snap for bool {
    fn put(&self, w: &mut impl Write) -> io::Result<()> {
        u8::from(*self).put(w)
    }
    fn get(r: &mut impl Read) -> io::Result<Self> {
        match u8::get(r)? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(invalid(format!("bad boolean {b}"))),
        }
    }
}

impl Snap for Decimal {
    fn put(&self, w: &mut impl Write) -> io::Result<()> {
        w.write_all(&self.serialize())
    }
    fn get(r: &mut impl Read) -> io::Result<Self> {
        let mut b = [0u8; 16];
        r.read_exact(&mut b)?;
        Ok(Decimal::deserialize(b))
    }
}

impl Snap for Timestamp {
    fn put(&self, w: &mut impl Write) -> io::Result<()> {
        self.as_second().put(w)?;
        self.subsec_nanosecond().put(w)
    }
    fn get(r: &mut impl Read) -> io::Result<Self> {
        let (s, n) = (i64::get(r)?, i32::get(r)?);
        Timestamp::new(s, n).map_err(|e| invalid(e.to_string()))
    }
}

/// Written as the timestamp (the file's format does not depend on the row's layout).
impl Snap for Ts {
    fn put(&self, w: &mut impl Write) -> io::Result<()> {
        self.get().put(w)
    }
    fn get(r: &mut impl Read) -> io::Result<Self> {
        Timestamp::get(r).map(Ts::new)
    }
}

/// Written as the optional timestamp.
impl Snap for OptTs {
    fn put(&self, w: &mut impl Write) -> io::Result<()> {
        self.get().put(w)
    }
    fn get(r: &mut impl Read) -> io::Result<Self> {
        Option::<Timestamp>::get(r).map(OptTs::new)
    }
}

impl Snap for Box<str> {
    fn put(&self, w: &mut impl Write) -> io::Result<()> {
        let len = u32::try_from(self.len()).map_err(|_| invalid("string too long"))?;
        len.put(w)?;
        w.write_all(self.as_bytes())
    }
    fn get(r: &mut impl Read) -> io::Result<Self> {
        let mut b = vec![0u8; u32::get(r)? as usize];
        r.read_exact(&mut b)?;
        String::from_utf8(b)
            .map(String::into_boxed_str)
            .map_err(|_| invalid("a string is not UTF-8"))
    }
}

impl<T: Snap> Snap for Option<T> {
    fn put(&self, w: &mut impl Write) -> io::Result<()> {
        match self {
            None => false.put(w),
            Some(v) => {
                true.put(w)?;
                v.put(w)
            }
        }
    }
    fn get(r: &mut impl Read) -> io::Result<Self> {
        Ok(if bool::get(r)? {
            Some(T::get(r)?)
        } else {
            None
        })
    }
}

impl<A: Snap, B: Snap> Snap for (A, B) {
    fn put(&self, w: &mut impl Write) -> io::Result<()> {
        self.0.put(w)?;
        self.1.put(w)
    }
    fn get(r: &mut impl Read) -> io::Result<Self> {
        Ok((A::get(r)?, B::get(r)?))
    }
}

impl<T: Snap> Snap for Box<[T]> {
    fn put(&self, w: &mut impl Write) -> io::Result<()> {
        let len = u32::try_from(self.len()).map_err(|_| invalid("list too long"))?;
        len.put(w)?;
        self.iter().try_for_each(|x| x.put(w))
    }
    fn get(r: &mut impl Read) -> io::Result<Self> {
        let n = u32::get(r)? as usize;
        let mut v = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            v.push(T::get(r)?);
        }
        Ok(v.into_boxed_slice())
    }
}

/// Enums as their position in `ALL`.
macro_rules! snap_enum {
    ($($t:ty => $all:expr),* $(,)?) => {$(
        impl Snap for $t {
            fn put(&self, w: &mut impl Write) -> io::Result<()> {
                let i = $all.iter().position(|x| x == self).expect("every variant is listed");
                (i as u8).put(w)
            }
            fn get(r: &mut impl Read) -> io::Result<Self> {
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

/// Structs field by field, in declaration order.
macro_rules! snap_struct {
    ($($t:ident { $($f:ident),* $(,)? })*) => {$(
        impl Snap for $t {
            fn put(&self, w: &mut impl Write) -> io::Result<()> {
                $( self.$f.put(w)?; )*
                Ok(())
            }
            fn get(r: &mut impl Read) -> io::Result<Self> {
                Ok($t { $( $f: Snap::get(r)?, )* })
            }
        }
    )*};
}
snap_struct! {
    CustomerRow { id, acquired_at, churned_at, source, campaign, segment, owner }
    LeadRow { created_at, converted_at, source, campaign }
    DealRow { owner, amount, created_at, closed_at, status, kind, customer, campaign, stages }
    SubRow { id, customer, started_at, ended_at, mrr_changes, renewal_due_at, renewed }
    PurchaseRow { customer, amount, at }
    SpendRow { at, amount, category, channel, campaign }
    CampaignRow { id, channel, started_at, delivered, opens, clicks }
    TicketRow { customer, agent, opened_at, first_response_at, resolved_at }
    SurveyRow { customer, kind, score, scale_max, at }
    QuotaRow { owner, period_start, period_end, amount }
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

fn get_slab<T: Snap + Clone>(slab: &mut Slab<T>, r: &mut impl Read) -> io::Result<()> {
    for _ in 0..u32::get(r)? {
        let slot = u32::get(r)?;
        let row = T::get(r)?;
        if !slab.insert(slot, row) {
            return Err(invalid(format!("slot {slot} twice")));
        }
    }
    Ok(())
}

fn put_rows(rows: &Rows, w: &mut impl Write) -> io::Result<()> {
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
    put_slab(&rows.customers, w)?;
    put_slab(&rows.leads, w)?;
    put_slab(&rows.deals, w)?;
    put_slab(&rows.subs, w)?;
    put_slab(&rows.purchases, w)?;
    put_slab(&rows.spend, w)?;
    put_slab(&rows.campaigns, w)?;
    put_slab(&rows.tickets, w)?;
    put_slab(&rows.surveys, w)?;
    put_slab(&rows.quotas, w)
}

fn get_rows(r: &mut impl Read) -> io::Result<Rows> {
    let mut rows = Rows::default();
    for _ in 0..u32::get(r)? {
        let name = Box::<str>::get(r)?;
        rows.dims.intern(&name);
    }
    let ids = (0..u32::get(r)?)
        .map(|_| Ok((Box::<str>::get(r)?, u32::get(r)?)))
        .collect::<io::Result<Vec<_>>>()?;
    rows.customer_ids =
        Ids::load(ids).ok_or_else(|| invalid("customer ids are not 0..n, each once"))?;
    get_slab(Arc::make_mut(&mut rows.customers), r)?;
    get_slab(Arc::make_mut(&mut rows.leads), r)?;
    get_slab(Arc::make_mut(&mut rows.deals), r)?;
    get_slab(Arc::make_mut(&mut rows.subs), r)?;
    get_slab(Arc::make_mut(&mut rows.purchases), r)?;
    get_slab(Arc::make_mut(&mut rows.spend), r)?;
    get_slab(Arc::make_mut(&mut rows.campaigns), r)?;
    get_slab(Arc::make_mut(&mut rows.tickets), r)?;
    get_slab(Arc::make_mut(&mut rows.surveys), r)?;
    get_slab(Arc::make_mut(&mut rows.quotas), r)?;
    rows.loaded();
    Ok(rows)
}

/// Writes the snapshot of `tenants` to `dir`, durably (a temporary file, fsync'd, renamed,
/// and the directory fsync'd).
pub(crate) fn write(dir: &Path, token: u64, tenants: &[(&str, &Rows)]) -> io::Result<()> {
    let tmp = dir.join(format!("{FILE}.tmp"));
    let written = write_to(&tmp, token, tenants);
    if written.is_err() {
        // A full disk, say: leave no partial file behind.
        let _ = std::fs::remove_file(&tmp);
        return written;
    }
    std::fs::rename(&tmp, dir.join(FILE))?;
    File::open(dir)?.sync_all()
}

fn write_to(tmp: &Path, token: u64, tenants: &[(&str, &Rows)]) -> io::Result<()> {
    {
        let file = File::create(tmp)?;
        let mut w = BufWriter::with_capacity(1 << 20, &file);
        w.write_all(MAGIC)?;
        VERSION.put(&mut w)?;
        token.put(&mut w)?;
        (tenants.len() as u32).put(&mut w)?;
        for (name, rows) in tenants {
            Box::<str>::from(*name).put(&mut w)?;
            put_rows(rows, &mut w)?;
        }
        w.flush()?;
        drop(w);
        file.sync_all()?;
    }
    Ok(())
}

/// Reads the snapshot in `dir` if it exists and carries `token`.
pub(crate) fn read(dir: &Path, token: u64) -> io::Result<Option<Vec<(String, Rows)>>> {
    let file = match File::open(dir.join(FILE)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic)?;
    if &magic != MAGIC || u32::get(&mut r)? != VERSION || u64::get(&mut r)? != token {
        return Ok(None);
    }
    let n = u32::get(&mut r)?;
    let mut tenants = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let name = Box::<str>::get(&mut r)?;
        tenants.push((name.into(), get_rows(&mut r)?));
    }
    Ok(Some(tenants))
}
