//! Sparse prefix sums (decimal and integer) kept every few events, and narrow decimal
//! columns: a range's sum without a pass over it, exact or not at all.

use std::ops::Range;

use kpi_core::{Decimal, MetricError};

/// Positions between two kept prefix sums of a [`DecimalSums`] or an [`IntegerSums`]: a range's
/// sum is the difference of two kept sums plus at most `2 × (SUM_STRIDE − 1)` values read
/// from the rows, so the sums cost a fraction of a byte per event instead of 8.
#[cfg(not(test))]
pub(super) const SUM_STRIDE: usize = 32;
/// Small under test, so short lists have kept sums and values on both sides.
#[cfg(test)]
pub(super) const SUM_STRIDE: usize = 4;

/// `r` cut at multiples of `stride`: the positions before the first whole stretch, the
/// kept sums bounding the whole stretches (`k` for position `k × stride`), the positions
/// after them.
fn cut(r: Range<usize>, stride: usize) -> [Range<usize>; 3] {
    let (first, last) = (r.start.div_ceil(stride), r.end / stride);
    if first > last {
        return [r, 0..0, 0..0];
    }
    [r.start..first * stride, first..last, last * stride..r.end]
}

/// The prefix sums of `values` kept at every `stride`-th position (the sum of the values
/// before it), including the end when it is one; `add` gives up (`None`) when a partial
/// sum would not be exact.
fn kept_sums<V, S: Copy>(
    values: impl Iterator<Item = V>,
    stride: usize,
    zero: S,
    add: impl Fn(S, V) -> Option<S>,
) -> Option<Vec<S>> {
    let mut p = Vec::with_capacity(values.size_hint().0 / stride + 1);
    let mut acc = zero;
    let mut n = 0;
    for v in values {
        if n % stride == 0 {
            p.push(acc);
        }
        acc = add(acc, v)?;
        n += 1;
    }
    if n % stride == 0 {
        p.push(acc);
    }
    Some(p)
}

/// `a + b` when exact: addition aligns to the larger scale, and a smaller result scale
/// means the sum was rounded to fit (adding zero returns the other side as it is).
fn exact_add(a: Decimal, b: Decimal) -> Option<Decimal> {
    if a.is_zero() || b.is_zero() {
        return Some(if a.is_zero() { b } else { a });
    }
    a.checked_add(b)
        .filter(|s| s.scale() >= a.scale().max(b.scale()))
}

/// The largest scale among `values` (0 for none).
fn max_scale(values: impl Iterator<Item = Decimal>) -> u32 {
    values.map(|v| v.scale()).max().unwrap_or(0)
}

/// `v` as an `i64` multiple of `10^-scale` (`scale` ≥ `v`'s), if it fits.
fn at_scale(v: Decimal, scale: u32) -> Option<i64> {
    let factor = 10i128.checked_pow(scale - v.scale())?;
    i64::try_from(v.mantissa().checked_mul(factor)?).ok()
}

/// Prefix sums of decimals, kept every [`SUM_STRIDE`] events (every event for a
/// [`Blocked`]'s sums): `i64` multiples of `10^-scale` (the largest scale among the
/// values) when every value and partial sum fits, which amounts usually do; else
/// decimals; else none, when a partial sum would not be exact: queries then add the
/// values one by one. Each form is exact.
pub(crate) struct DecimalSums {
    stride: usize,
    form: DecimalSumsForm,
}

/// How a [`DecimalSums`] keeps its sums.
enum DecimalSumsForm {
    /// `p[k]` × 10^-scale: the sum of the first `k × stride` values.
    Small { scale: u32, p: Vec<i64> },
    /// Decimal partial sums.
    Wide(Vec<Decimal>),
    /// No exact partial sums.
    Inexact,
}

impl DecimalSums {
    /// Prefix sums of `values` (read twice, never collected), kept every [`SUM_STRIDE`]:
    /// a range's sum reads the values of its ends ([`DecimalSums::range`]).
    pub(crate) fn new(values: impl Iterator<Item = Decimal> + Clone) -> Self {
        Self::every(SUM_STRIDE, values)
    }

    /// Prefix sums of `values` at every position: [`DecimalSums::range`] reads no value.
    pub(crate) fn dense(values: impl Iterator<Item = Decimal> + Clone) -> Self {
        Self::every(1, values)
    }

    fn every(stride: usize, values: impl Iterator<Item = Decimal> + Clone) -> Self {
        let scale = max_scale(values.clone());
        let small = || {
            kept_sums(values.clone(), stride, 0i64, |acc, v| {
                acc.checked_add(at_scale(v, scale)?)
            })
        };
        let form = match small() {
            Some(p) => DecimalSumsForm::Small { scale, p },
            None => match kept_sums(values, stride, Decimal::ZERO, exact_add) {
                Some(p) => DecimalSumsForm::Wide(p),
                None => DecimalSumsForm::Inexact,
            },
        };
        Self { stride, form }
    }

    /// The exact sum of values `r`, if known; `value(i)` is the `i`-th value (read for
    /// the positions between kept sums).
    pub(crate) fn range(
        &self,
        r: Range<usize>,
        value: impl Fn(usize) -> Decimal,
    ) -> Option<Decimal> {
        let [head, kept, tail] = cut(r, self.stride);
        let ends = head.chain(tail);
        match &self.form {
            DecimalSumsForm::Small { scale, p } => {
                let mut s = i128::from(p[kept.end]) - i128::from(p[kept.start]);
                for i in ends {
                    s += i128::from(at_scale(value(i), *scale)?);
                }
                Some(Decimal::from_i128_with_scale(s, *scale))
            }
            DecimalSumsForm::Wide(p) => {
                let mut s = exact_add(p[kept.end], -p[kept.start])?;
                for i in ends {
                    s = exact_add(s, value(i))?;
                }
                Some(s)
            }
            DecimalSumsForm::Inexact => None,
        }
    }

    /// The exact sum of the first `n` values, if known ([`DecimalSums::range`]).
    pub(crate) fn prefix(&self, n: usize, value: impl Fn(usize) -> Decimal) -> Option<Decimal> {
        self.range(0..n, value)
    }
}

/// A column of decimals: `i64` multiples of `10^-scale` (the largest scale among them)
/// when every value fits (8 bytes a value instead of 16), else decimals. Both exact.
pub(crate) enum DecimalColumn {
    /// `v[i]` × 10^-scale.
    Small { scale: u32, v: Vec<i64> },
    /// The decimals.
    Wide(Vec<Decimal>),
}

impl DecimalColumn {
    /// The column of `values` (read twice).
    pub(crate) fn new(values: impl Iterator<Item = Decimal> + Clone) -> Self {
        let scale = max_scale(values.clone());
        let small: Option<Vec<i64>> = values.clone().map(|v| at_scale(v, scale)).collect();
        match small {
            Some(v) => DecimalColumn::Small { scale, v },
            None => DecimalColumn::Wide(values.collect()),
        }
    }

    /// The value at `i`.
    pub(crate) fn get(&self, i: usize) -> Decimal {
        match self {
            DecimalColumn::Small { scale, v } => {
                Decimal::from_i128_with_scale(i128::from(v[i]), *scale)
            }
            DecimalColumn::Wide(v) => v[i],
        }
    }
}

/// Prefix sums of integers (nanoseconds, message counts), kept every [`SUM_STRIDE`]
/// events as `i128` (sums of durations outgrow `i64` nanoseconds within a few thousand
/// events); saturating.
pub(crate) struct IntegerSums {
    /// `p[k]`: the sum of the first `k × SUM_STRIDE` values.
    p: Vec<i128>,
}

impl IntegerSums {
    /// Prefix sums of `values`.
    pub(crate) fn new(values: impl Iterator<Item = i128>) -> Self {
        let p = kept_sums(values, SUM_STRIDE, 0i128, |acc, v| {
            Some(acc.saturating_add(v))
        })
        .expect("saturating sums always add");
        IntegerSums { p }
    }

    /// The sum of values `r`; `value(i)` is the `i`-th value (read for the positions
    /// between kept sums).
    pub(crate) fn range(&self, r: Range<usize>, value: impl Fn(usize) -> i128) -> i128 {
        let [head, kept, tail] = cut(r, SUM_STRIDE);
        head.chain(tail)
            .map(value)
            .fold(self.p[kept.end] - self.p[kept.start], i128::saturating_add)
    }
}

/// The overflow error of a sum of stored amounts.
pub(crate) fn overflow() -> MetricError {
    MetricError::Overflow("a sum of stored amounts".into())
}

/// Adds exactly or reports overflow.
pub(crate) fn add(acc: Decimal, x: Decimal) -> Result<Decimal, MetricError> {
    acc.checked_add(x).ok_or_else(overflow)
}

/// In the index image (`image.rs`): the stride, a tag, then the form's sums.
impl crate::snapshot::Snap for DecimalSums {
    fn put(&self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        self.stride.put(w)?;
        match &self.form {
            DecimalSumsForm::Small { scale, p } => {
                0u8.put(w)?;
                scale.put(w)?;
                p.put(w)
            }
            DecimalSumsForm::Wide(p) => {
                1u8.put(w)?;
                p.put(w)
            }
            DecimalSumsForm::Inexact => 2u8.put(w),
        }
    }
    fn get(r: &mut impl crate::snapshot::ContentSource) -> std::io::Result<Self> {
        use crate::snapshot::{invalid, Snap};
        let stride = usize::get(r)?;
        if stride != 1 && stride != SUM_STRIDE {
            return Err(invalid(format!("sums kept every {stride}")));
        }
        let form = match u8::get(r)? {
            0 => DecimalSumsForm::Small {
                scale: u32::get(r)?,
                p: Snap::get(r)?,
            },
            1 => DecimalSumsForm::Wide(Snap::get(r)?),
            2 => DecimalSumsForm::Inexact,
            tag => return Err(invalid(format!("bad sums form {tag}"))),
        };
        Ok(Self { stride, form })
    }
}

/// In the index image (`image.rs`): a tag, then the column.
impl crate::snapshot::Snap for DecimalColumn {
    fn put(&self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        match self {
            DecimalColumn::Small { scale, v } => {
                0u8.put(w)?;
                scale.put(w)?;
                v.put(w)
            }
            DecimalColumn::Wide(v) => {
                1u8.put(w)?;
                v.put(w)
            }
        }
    }
    fn get(r: &mut impl crate::snapshot::ContentSource) -> std::io::Result<Self> {
        use crate::snapshot::{invalid, Snap};
        match u8::get(r)? {
            0 => Ok(DecimalColumn::Small {
                scale: u32::get(r)?,
                v: Snap::get(r)?,
            }),
            1 => Ok(DecimalColumn::Wide(Snap::get(r)?)),
            tag => Err(invalid(format!("bad decimal column form {tag}"))),
        }
    }
}

crate::snapshot::snap_fields!(IntegerSums { p });

#[cfg(test)]
mod tests {
    use super::*;

    /// Every range of `values` summed by `sums` (reading `values` between kept sums).
    fn ranges(sums: &DecimalSums, values: &[Decimal]) -> Vec<Option<Decimal>> {
        let mut out = Vec::new();
        for start in 0..=values.len() {
            for end in start..=values.len() {
                out.push(sums.range(start..end, |i| {
                    assert!((start..end).contains(&i), "{i} read for {start}..{end}");
                    values[i]
                }));
            }
        }
        out
    }

    /// Every range's sum added one by one.
    fn passes(values: &[Decimal]) -> Vec<Option<Decimal>> {
        let mut out = Vec::new();
        for start in 0..=values.len() {
            for end in start..=values.len() {
                out.push(Some(values[start..end].iter().sum()));
            }
        }
        out
    }

    #[test]
    fn prefix_sums_give_up_rather_than_round() {
        let exact: Vec<Decimal> = (0..23)
            .map(|i| Decimal::new(i * 37 % 11 - 5, (i % 3) as u32))
            .collect();
        for sums in [
            DecimalSums::new(exact.iter().copied()),
            DecimalSums::dense(exact.iter().copied()),
        ] {
            assert!(matches!(sums.form, DecimalSumsForm::Small { scale: 2, .. }));
            assert_eq!(ranges(&sums, &exact), passes(&exact));
        }
        // Too wide for i64 at scale 2, still exact as decimals.
        let wide: Vec<Decimal> = (0..11)
            .map(|i| match i % 3 {
                0 => Decimal::new(i64::MAX, 0),
                1 => Decimal::new(-i64::MAX, 0),
                _ => Decimal::new(i, 2),
            })
            .collect();
        let sums = DecimalSums::new(wide.iter().copied());
        assert!(matches!(sums.form, DecimalSumsForm::Wide(_)));
        assert_eq!(ranges(&sums, &wide), passes(&wide));
        assert_eq!(sums.range(0..3, |i| wide[i]), Some(Decimal::new(2, 2)));
        // 10^28 + 0.5 needs a mantissa of 10^29 + 5, beyond 96 bits: it would be rounded.
        let big = Decimal::from_i128_with_scale(10i128.pow(28), 0);
        let inexact = [big, Decimal::new(5, 1)];
        let sums = DecimalSums::new(inexact.iter().copied());
        assert_eq!(sums.range(0..2, |i| inexact[i]), None);
        let overflow = [Decimal::MAX, Decimal::ONE];
        let sums = DecimalSums::new(overflow.iter().copied());
        assert_eq!(sums.prefix(2, |i| overflow[i]), None);
        // A range between kept sums whose values alone are not exact.
        let head = [Decimal::new(1, 1), big, Decimal::new(5, 1), -big];
        let sums = DecimalSums::new(head.iter().chain(&[Decimal::ZERO; 5]).copied());
        assert_eq!(sums.range(0..3, |i| head[i]), None);
    }

    #[test]
    fn decimal_columns_are_exact_in_both_forms() {
        let small = [
            Decimal::new(-5, 0),
            Decimal::new(125, 3),
            Decimal::new(i64::MAX / 10_000, 4),
        ];
        let col = DecimalColumn::new(small.iter().copied());
        assert!(matches!(col, DecimalColumn::Small { scale: 4, .. }));
        for (i, v) in small.iter().enumerate() {
            assert_eq!(col.get(i), *v);
        }
        let wide = [
            Decimal::new(1, 0),
            Decimal::new(i64::MAX, 0),
            Decimal::new(1, 1),
        ];
        let col = DecimalColumn::new(wide.iter().copied());
        assert!(matches!(col, DecimalColumn::Wide(_)));
        for (i, v) in wide.iter().enumerate() {
            assert_eq!(col.get(i), *v);
        }
    }

    #[test]
    fn integer_prefix_sums_are_exact() {
        let day = 86_400_000_000_000i128;
        // Durations of a few days, their totals beyond i64; one value beyond i64.
        let mut values: Vec<i128> = (0..300).map(|i| (i % 7 - 2) * day * 10).collect();
        values[130] = i128::from(i64::MAX) * 4;
        let sums = IntegerSums::new(values.iter().copied());
        for start in 0..=values.len() {
            for end in start..=values.len() {
                let read = |i: usize| {
                    assert!((start..end).contains(&i), "{i} read for {start}..{end}");
                    values[i]
                };
                assert_eq!(
                    sums.range(start..end, read),
                    values[start..end].iter().sum::<i128>(),
                    "{start}..{end}"
                );
            }
        }
    }
}
