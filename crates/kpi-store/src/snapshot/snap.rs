//! Values in binary form: the [`Snap`] trait (a value written and read back), for integers,
//! decimals, timestamps, strings and the containers the rows snapshot and the index image
//! (`index/image.rs`) hold, with [`snap_fields!`] for structs; and [`ContentSource`], what
//! values are read from, every count bounded by the bytes left. The encodings are those the
//! snapshot's format names (little-endian integers, strings as length and UTF-8, …).

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::sync::Arc;

use jiff::Timestamp;
use kpi_core::Decimal;

use super::BlockReader;
use crate::rows::{OptionalPackedTime, PackedTime};

pub(crate) fn invalid(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.into())
}

/// A count read from the file: at most the bytes that remain (each thing counted takes at
/// least one).
pub(crate) fn get_count(r: &mut impl ContentSource, what: &str) -> io::Result<u32> {
    let n = u32::get(r)?;
    if u64::from(n) > r.remaining() {
        return Err(invalid(format!(
            "{n} {what}, with {} bytes left",
            r.remaining()
        )));
    }
    Ok(n)
}

/// What values are decoded from: the file's checked blocks ([`BlockReader`]), or the bytes
/// of one section read from them ahead, which a second thread decodes.
pub(crate) trait ContentSource: Read {
    /// At most how many content bytes follow.
    fn remaining(&self) -> u64;
}

impl ContentSource for BlockReader {
    fn remaining(&self) -> u64 {
        BlockReader::remaining(self)
    }
}

impl ContentSource for &[u8] {
    fn remaining(&self) -> u64 {
        self.len() as u64
    }
}

/// A value with a binary form (the rows snapshot's, and the index image's:
/// `index/image.rs`).
pub(crate) trait Snap: Sized {
    fn put(&self, w: &mut impl Write) -> io::Result<()>;
    fn get(r: &mut impl ContentSource) -> io::Result<Self>;
    /// Writes `values` one after the other (integers: as one run of bytes).
    fn put_many(values: &[Self], w: &mut impl Write) -> io::Result<()> {
        values.iter().try_for_each(|v| v.put(w))
    }
    /// Reads `n` values written by [`Snap::put_many`].
    fn get_many(r: &mut impl ContentSource, n: usize) -> io::Result<Vec<Self>> {
        let mut v = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            v.push(Self::get(r)?);
        }
        Ok(v)
    }
}

macro_rules! snap_int {
    ($($t:ty),*) => {$(
        impl Snap for $t {
            fn put(&self, w: &mut impl Write) -> io::Result<()> {
                w.write_all(&self.to_le_bytes())
            }
            fn get(r: &mut impl ContentSource) -> io::Result<Self> {
                let mut b = [0u8; std::mem::size_of::<$t>()];
                r.read_exact(&mut b)?;
                Ok(<$t>::from_le_bytes(b))
            }
            fn put_many(values: &[Self], w: &mut impl Write) -> io::Result<()> {
                const SIZE: usize = std::mem::size_of::<$t>();
                let mut bytes = Vec::with_capacity(values.len().min(1 << 16) * SIZE);
                for chunk in values.chunks(1 << 16) {
                    bytes.clear();
                    chunk.iter().for_each(|v| bytes.extend_from_slice(&v.to_le_bytes()));
                    w.write_all(&bytes)?;
                }
                Ok(())
            }
            fn get_many(r: &mut impl ContentSource, n: usize) -> io::Result<Vec<Self>> {
                const SIZE: usize = std::mem::size_of::<$t>();
                if (n as u64).saturating_mul(SIZE as u64) > r.remaining() {
                    return Err(invalid(format!("{n} values, with {} bytes left", r.remaining())));
                }
                let mut v = Vec::with_capacity(n);
                let mut bytes = vec![0u8; n.min(1 << 16) * SIZE];
                while v.len() < n {
                    let take = (n - v.len()).min(1 << 16);
                    let bytes = &mut bytes[..take * SIZE];
                    r.read_exact(bytes)?;
                    v.extend(bytes.chunks_exact(SIZE).map(|b| {
                        <$t>::from_le_bytes(b.try_into().expect("chunks of the size"))
                    }));
                }
                Ok(v)
            }
        }
    )*};
}
snap_int!(u8, u32, u64, i32, i64, i128);

impl Snap for bool {
    fn put(&self, w: &mut impl Write) -> io::Result<()> {
        u8::from(*self).put(w)
    }
    fn get(r: &mut impl ContentSource) -> io::Result<Self> {
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
    /// Only the bytes a decimal serializes to (no unused flag bits, a scale of at most 28).
    fn get(r: &mut impl ContentSource) -> io::Result<Self> {
        let mut b = [0u8; 16];
        r.read_exact(&mut b)?;
        let d = Decimal::deserialize(b);
        if d.serialize() != b {
            return Err(invalid("a decimal's bytes are not one a decimal writes"));
        }
        Ok(d)
    }
}

impl Snap for Timestamp {
    fn put(&self, w: &mut impl Write) -> io::Result<()> {
        self.as_second().put(w)?;
        self.subsec_nanosecond().put(w)
    }
    fn get(r: &mut impl ContentSource) -> io::Result<Self> {
        let (s, n) = (i64::get(r)?, i32::get(r)?);
        Timestamp::new(s, n).map_err(|e| invalid(e.to_string()))
    }
}

/// Written as the timestamp (the file's format does not depend on the row's layout).
impl Snap for PackedTime {
    fn put(&self, w: &mut impl Write) -> io::Result<()> {
        self.get().put(w)
    }
    fn get(r: &mut impl ContentSource) -> io::Result<Self> {
        Timestamp::get(r).map(PackedTime::new)
    }
}

/// Written as the optional timestamp.
impl Snap for OptionalPackedTime {
    fn put(&self, w: &mut impl Write) -> io::Result<()> {
        self.get().put(w)
    }
    fn get(r: &mut impl ContentSource) -> io::Result<Self> {
        Option::<Timestamp>::get(r).map(OptionalPackedTime::new)
    }
}

impl Snap for Box<str> {
    fn put(&self, w: &mut impl Write) -> io::Result<()> {
        let len = u32::try_from(self.len()).map_err(|_| invalid("string too long"))?;
        len.put(w)?;
        w.write_all(self.as_bytes())
    }
    fn get(r: &mut impl ContentSource) -> io::Result<Self> {
        let len = get_count(r, "bytes of a string")?;
        let mut b = vec![0u8; len as usize];
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
    fn get(r: &mut impl ContentSource) -> io::Result<Self> {
        Ok(if bool::get(r)? {
            Some(T::get(r)?)
        } else {
            None
        })
    }
}

impl<T: Snap> Snap for Box<T> {
    fn put(&self, w: &mut impl Write) -> io::Result<()> {
        (**self).put(w)
    }
    fn get(r: &mut impl ContentSource) -> io::Result<Self> {
        T::get(r).map(Box::new)
    }
}

impl<A: Snap, B: Snap> Snap for (A, B) {
    fn put(&self, w: &mut impl Write) -> io::Result<()> {
        self.0.put(w)?;
        self.1.put(w)
    }
    fn get(r: &mut impl ContentSource) -> io::Result<Self> {
        Ok((A::get(r)?, B::get(r)?))
    }
}

/// A long list (the index image's event lists and sums): its length, then its values
/// ([`Snap::put_many`]: integers as one run of bytes).
impl<T: Snap> Snap for Vec<T> {
    fn put(&self, w: &mut impl Write) -> io::Result<()> {
        (self.len() as u64).put(w)?;
        T::put_many(self, w)
    }
    fn get(r: &mut impl ContentSource) -> io::Result<Self> {
        let n = u64::get(r)?;
        if n > r.remaining() {
            return Err(invalid(format!(
                "{n} list items, with {} bytes left",
                r.remaining()
            )));
        }
        T::get_many(r, n as usize)
    }
}

impl Snap for usize {
    fn put(&self, w: &mut impl Write) -> io::Result<()> {
        (*self as u64).put(w)
    }
    fn get(r: &mut impl ContentSource) -> io::Result<Self> {
        usize::try_from(u64::get(r)?).map_err(|_| invalid("a size beyond this machine's"))
    }
}

/// Written as the optional value: built or not.
impl<T: Snap> Snap for std::sync::OnceLock<T> {
    fn put(&self, w: &mut impl Write) -> io::Result<()> {
        match self.get() {
            None => false.put(w),
            Some(v) => {
                true.put(w)?;
                v.put(w)
            }
        }
    }
    fn get(r: &mut impl ContentSource) -> io::Result<Self> {
        let cell = std::sync::OnceLock::new();
        if let Some(v) = Option::<T>::get(r)? {
            let _ = cell.set(v);
        }
        Ok(cell)
    }
}

impl<T: Snap> Snap for Arc<T> {
    fn put(&self, w: &mut impl Write) -> io::Result<()> {
        (**self).put(w)
    }
    fn get(r: &mut impl ContentSource) -> io::Result<Self> {
        T::get(r).map(Arc::new)
    }
}

impl<T> Snap for std::marker::PhantomData<T> {
    fn put(&self, _: &mut impl Write) -> io::Result<()> {
        Ok(())
    }
    fn get(_: &mut impl ContentSource) -> io::Result<Self> {
        Ok(std::marker::PhantomData)
    }
}

/// A map as its length and its entries, in no particular order.
impl<K: Snap + Eq + std::hash::Hash, V: Snap> Snap for std::collections::HashMap<K, V> {
    fn put(&self, w: &mut impl Write) -> io::Result<()> {
        (self.len() as u32).put(w)?;
        self.iter().try_for_each(|(k, v)| {
            k.put(w)?;
            v.put(w)
        })
    }
    fn get(r: &mut impl ContentSource) -> io::Result<Self> {
        let n = get_count(r, "map entries")?;
        let mut map = Self::with_capacity((n as usize).min(1 << 16));
        for _ in 0..n {
            let k = K::get(r)?;
            if map.insert(k, V::get(r)?).is_some() {
                return Err(invalid("a map's key twice"));
            }
        }
        Ok(map)
    }
}

impl<K: Snap + Eq + std::hash::Hash> Snap for HashSet<K> {
    fn put(&self, w: &mut impl Write) -> io::Result<()> {
        (self.len() as u32).put(w)?;
        self.iter().try_for_each(|k| k.put(w))
    }
    fn get(r: &mut impl ContentSource) -> io::Result<Self> {
        let n = get_count(r, "set members")?;
        let mut set = Self::with_capacity((n as usize).min(1 << 16));
        for _ in 0..n {
            if !set.insert(K::get(r)?) {
                return Err(invalid("a set's member twice"));
            }
        }
        Ok(set)
    }
}

/// A struct as its fields in order; the fields listed after `else` are not written and
/// start out as their default (what is built on first use, or bound to a context).
macro_rules! snap_fields {
    ($t:ty { $($field:ident),* $(,)? } $(else { $($default:ident),* })?) => {
        impl $crate::snapshot::Snap for $t {
            fn put(&self, w: &mut impl std::io::Write) -> std::io::Result<()> {
                $($crate::snapshot::Snap::put(&self.$field, w)?;)*
                Ok(())
            }
            fn get(r: &mut impl $crate::snapshot::ContentSource) -> std::io::Result<Self> {
                Ok(Self {
                    $($field: $crate::snapshot::Snap::get(r)?,)*
                    $($($default: Default::default(),)*)?
                })
            }
        }
    };
}
pub(crate) use snap_fields;

impl<T: Snap> Snap for Box<[T]> {
    fn put(&self, w: &mut impl Write) -> io::Result<()> {
        let len = u32::try_from(self.len()).map_err(|_| invalid("list too long"))?;
        len.put(w)?;
        self.iter().try_for_each(|x| x.put(w))
    }
    fn get(r: &mut impl ContentSource) -> io::Result<Self> {
        let n = get_count(r, "list items")?;
        // Lists are short (stages, MRR changes): room for a few, never sized by the file.
        let mut v = Vec::with_capacity((n as usize).min(8));
        for _ in 0..n {
            v.push(T::get(r)?);
        }
        Ok(v.into_boxed_slice())
    }
}
