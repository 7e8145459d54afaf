//! Packed event times: a sorted list of times in 4 bytes a time where they fit, searched
//! by binary search.

use jiff::Timestamp;

/// Times per stretch of a [`Times::Packed`] list.
#[cfg(not(test))]
pub(super) const TIME_STRIDE: usize = 64;
/// Small under test, so short lists span stretches.
#[cfg(test)]
pub(super) const TIME_STRIDE: usize = 4;

/// The units a packed time list may count in, coarsest first (seconds, milliseconds,
/// microseconds, nanoseconds).
const TIME_UNITS: [i64; 4] = [1_000_000_000, 1_000_000, 1_000, 1];

/// Sorted event times. Packed when every time fits `i64` nanoseconds since 1970 (the
/// years 1678 to 2261) and each stretch of [`TIME_STRIDE`] times spans fewer than 2^32
/// units (136 years of whole seconds, 49 days of milliseconds): 4 bytes a time instead
/// of 16. Else `i64` nanoseconds when every time fits; else timestamps. Each form exact.
pub(crate) enum Times {
    /// Time `i` is `base[i / TIME_STRIDE] + off[i] × unit` nanoseconds since 1970.
    Packed {
        unit: i64,
        base: Vec<i64>,
        off: Vec<u32>,
    },
    /// Nanoseconds since 1970-01-01T00:00:00Z.
    Nanos(Vec<i64>),
    /// Timestamps, when some time lies outside the range of `i64` nanoseconds.
    Full(Vec<Timestamp>),
}

impl Times {
    /// How many times there are.
    pub(crate) fn len(&self) -> usize {
        match self {
            Times::Packed { off, .. } => off.len(),
            Times::Nanos(nanos) => nanos.len(),
            Times::Full(times) => times.len(),
        }
    }

    /// Sorted `times`, narrow when every one fits.
    pub(crate) fn new(times: Vec<Timestamp>) -> Self {
        let nanos: Option<Vec<i64>> = times
            .iter()
            .map(|t| i64::try_from(t.as_nanosecond()).ok())
            .collect();
        match nanos {
            Some(n) => Self::nanos(n.len(), |i| n[i]),
            None => Times::Full(times),
        }
    }

    /// The `n` sorted times `time(i)` (nanoseconds since 1970), packed when they fit.
    pub(super) fn nanos(n: usize, time: impl Fn(usize) -> i64) -> Self {
        let mut unit = 0;
        for i in 0..n {
            while time(i) % TIME_UNITS[unit] != 0 {
                unit += 1;
            }
        }
        let unit = TIME_UNITS[unit];
        let mut base: Vec<i64> = Vec::with_capacity(n / TIME_STRIDE + 1);
        let mut off = Vec::with_capacity(n);
        for i in 0..n {
            let t = time(i);
            if i % TIME_STRIDE == 0 {
                base.push(t);
            }
            let steps = (i128::from(t) - i128::from(base[i / TIME_STRIDE])) / i128::from(unit);
            match u32::try_from(steps) {
                Ok(o) => off.push(o),
                Err(_) => return Times::Nanos((0..n).map(time).collect()),
            }
        }
        Times::Packed { unit, base, off }
    }

    /// How many times are strictly before `t`.
    pub(crate) fn before(&self, t: Timestamp) -> usize {
        let n = match self {
            Times::Full(v) => return v.partition_point(|x| *x < t),
            Times::Nanos(v) => v.len(),
            Times::Packed { off, .. } => off.len(),
        };
        let Ok(t) = i64::try_from(t.as_nanosecond()) else {
            // Beyond every stored time, or before every one.
            return if t.as_nanosecond() > 0 { n } else { 0 };
        };
        match self {
            Times::Packed { unit, base, off } => {
                // Stretches from `k` on start at or after `t`; every time of the ones
                // before `k - 1` precedes the start of `k - 1`, so precedes `t`.
                let k = base.partition_point(|b| *b < t);
                if k == 0 {
                    return 0;
                }
                let from = (k - 1) * TIME_STRIDE;
                let stretch = &off[from..off.len().min(from + TIME_STRIDE)];
                // base + o × unit < t  ⟺  o < ⌈(t − base) / unit⌉ (t − base > 0).
                let steps = (i128::from(t) - i128::from(base[k - 1]) + i128::from(*unit) - 1)
                    / i128::from(*unit);
                from + stretch.partition_point(|o| i128::from(*o) < steps)
            }
            Times::Nanos(v) => v.partition_point(|x| *x < t),
            Times::Full(_) => unreachable!("answered above"),
        }
    }

    /// The times, in order.
    pub(crate) fn iter(&self) -> Box<dyn Iterator<Item = Timestamp> + '_> {
        match self {
            Times::Packed { unit, base, off } => {
                let unit = *unit;
                Box::new(
                    off.iter().enumerate().map(move |(i, o)| {
                        from_nanos(base[i / TIME_STRIDE] + i64::from(*o) * unit)
                    }),
                )
            }
            Times::Nanos(v) => Box::new(v.iter().map(|n| from_nanos(*n))),
            Times::Full(v) => Box::new(v.iter().copied()),
        }
    }
}

/// The timestamp of `i64` nanoseconds stored from one.
pub(super) fn from_nanos(n: i64) -> Timestamp {
    Timestamp::from_nanosecond(i128::from(n)).expect("stored from a timestamp")
}

/// In the index image (`image.rs`): a tag, then the form's lists.
impl crate::snapshot::Snap for Times {
    fn put(&self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        match self {
            Times::Packed { unit, base, off } => {
                0u8.put(w)?;
                unit.put(w)?;
                base.put(w)?;
                off.put(w)
            }
            Times::Nanos(nanos) => {
                1u8.put(w)?;
                nanos.put(w)
            }
            Times::Full(times) => {
                2u8.put(w)?;
                times.put(w)
            }
        }
    }
    fn get(r: &mut impl crate::snapshot::ContentSource) -> std::io::Result<Self> {
        use crate::snapshot::{invalid, Snap};
        let times = match u8::get(r)? {
            0 => {
                let unit = i64::get(r)?;
                let (base, off): (Vec<i64>, Vec<u32>) = (Snap::get(r)?, Snap::get(r)?);
                if !TIME_UNITS.contains(&unit) || base.len() != off.len().div_ceil(TIME_STRIDE) {
                    return Err(invalid("packed times that do not fit together"));
                }
                Times::Packed { unit, base, off }
            }
            1 => Times::Nanos(Snap::get(r)?),
            2 => Times::Full(Snap::get(r)?),
            tag => return Err(invalid(format!("bad times form {tag}"))),
        };
        Ok(times)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::events::EventList;

    #[test]
    fn event_times_count_exactly_in_every_form() {
        let ts = |s: &str| -> Timestamp { s.parse().unwrap() };
        let at = |n: i128| Timestamp::from_nanosecond(n).unwrap();
        let base = ts("2024-01-01T00:00:00Z").as_nanosecond();
        let sec = 1_000_000_000i128;
        // Whole seconds (with ties, before and after 1970), milliseconds, nanoseconds
        // within 4 s per stretch, nanoseconds over years, beyond i64 nanoseconds.
        let seconds: Vec<Timestamp> = (0..23)
            .map(|i| at((i * 7 % 5 - 2) * sec * 86_400 * 400 + (i / 3) * sec))
            .collect();
        let millis: Vec<Timestamp> = (0..23).map(|i| at(base + (i % 9) * 1_000_000)).collect();
        let nanos: Vec<Timestamp> = (0..23).map(|i| at(base + (i % 7) * 3 + i)).collect();
        let years = [
            "2024-01-01T00:00:00Z",
            "2024-01-01T00:00:00.000000001Z",
            "1970-01-01T00:00:00Z",
            "2261-12-31T23:59:59Z",
        ]
        .map(ts)
        .to_vec();
        let far = [
            "2024-01-01T00:00:00Z",
            "9000-01-01T00:00:00Z",
            "1970-06-01T00:00:00Z",
        ]
        .map(ts)
        .to_vec();
        let extremes = [
            "1000-01-01T00:00:00Z",
            "1969-01-01T00:00:00Z",
            "2262-06-01T00:00:00Z",
            "9999-01-01T00:00:00Z",
        ]
        .map(ts);
        for (times, form) in [
            (seconds, "packed 1000000000"),
            (millis, "packed 1000000"),
            (nanos, "packed 1"),
            (years, "nanos"),
            (far, "full"),
        ] {
            let ev = EventList::collect(times.len(), times.iter().map(|t| (*t, ())));
            let got = match &ev.times {
                Times::Packed { unit, .. } => format!("packed {unit}"),
                Times::Nanos(_) => "nanos".into(),
                Times::Full(_) => "full".into(),
            };
            assert_eq!(got, form);
            let mut sorted = times.clone();
            sorted.sort();
            assert_eq!(ev.times.iter().collect::<Vec<_>>(), sorted);
            let near = sorted.iter().flat_map(|t| {
                let n = t.as_nanosecond();
                [n - 1, n, n + 1].map(|n| Timestamp::from_nanosecond(n).unwrap_or(*t))
            });
            for b in near.chain(extremes) {
                assert_eq!(
                    ev.before(b),
                    sorted.iter().filter(|t| **t < b).count(),
                    "{form}: {b}"
                );
            }
        }
    }
}
