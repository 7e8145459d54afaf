//! Spend: by time, with sums per category and for campaigns; the measures it answers.

use std::sync::Arc;

use jiff::Timestamp;
use kpi_core::{Decimal, Dimension, Measure, MetricError, SpendCategories, Window};

use super::events::{rows_by_time, EventList};
use super::lookups::Lookups;
use super::part::{KindIndex, Part, ResolvedFilters, Selection};
use super::sums::DecimalSums;
use crate::record::RecordKind;
use crate::rows::{Slab, SpendRow};
use crate::symbols::{Sym, NONE};

/// The kinds the spend part reads: spend, and the campaigns whose channel it inherits when
/// it names none.
pub(crate) const READS: &[RecordKind] = &[RecordKind::Spend, RecordKind::Campaign];

/// Whether the spend part answers `measure`.
pub(crate) fn answers(measure: Measure) -> bool {
    matches!(measure, Measure::Spend(_) | Measure::CampaignSpend)
}

impl SpendRow {
    /// When the money was spent.
    pub(crate) fn at(&self) -> Timestamp {
        self.at.get()
    }

    /// Its amount if it is of category `c` (by index), else zero.
    pub(crate) fn amount_in(&self, c: usize) -> Decimal {
        if self.category.index() == c {
            self.amount
        } else {
            Decimal::ZERO
        }
    }

    /// Its amount if it was spent on a campaign, else zero.
    pub(crate) fn campaign_amount(&self) -> Decimal {
        if self.campaign != NONE {
            self.amount
        } else {
            Decimal::ZERO
        }
    }

    /// The symbol of its channel's name: its own, else its campaign's.
    pub(crate) fn channel(&self, lookups: &Lookups) -> Sym {
        self.channel.map_or_else(
            || lookups.channel(self.campaign),
            |c| lookups.channel_name(c),
        )
    }
}

/// Spend by time, with sums per category and for campaigns.
pub(crate) struct SpendIndex {
    pub(crate) at: EventList<u32>,
    pub(crate) by_category: Vec<DecimalSums>,
    pub(crate) campaign: DecimalSums,
}

impl KindIndex for SpendIndex {
    type Row = SpendRow;
    type Table = Slab<SpendRow>;
    type Context = Arc<Lookups>;

    fn record_slot(_: &Self::Table, position: u32) -> u32 {
        position
    }

    fn campaign(_: &Arc<Lookups>, x: &SpendRow) -> Sym {
        x.campaign
    }

    fn attr(lookups: &Arc<Lookups>, x: &SpendRow, d: Dimension) -> Sym {
        match d {
            Dimension::Campaign => x.campaign,
            Dimension::Channel => x.channel(lookups),
            _ => NONE,
        }
    }

    fn build(_: &Arc<Lookups>, rows: &Self::Table, subset: &[u32]) -> Self {
        let row = |r: &u32| rows.row(*r);
        let at = rows_by_time(subset, |r| Some(rows.row(r).at()));
        let by_category = (0..kpi_core::SpendCategories::NAMES.len())
            .map(|c| DecimalSums::new(at.items.iter().map(|r| row(r).amount_in(c))))
            .collect();
        let campaign = DecimalSums::new(at.items.iter().map(|r| row(r).campaign_amount()));
        SpendIndex {
            at,
            by_category,
            campaign,
        }
    }
}

/// The spend' value of `measure` (one [`answers`]) over `w` and the filters `f`.
pub(crate) fn measure(
    part: &Part<SpendIndex>,
    measure: Measure,
    w: &Window,
    f: &ResolvedFilters,
) -> Result<Decimal, MetricError> {
    Ok(match measure {
        Measure::Spend(_) | Measure::CampaignSpend => {
            let Some(s) = part.select(f)? else {
                return Ok(Decimal::ZERO);
            };
            let index = s.index;
            let r = index.at.range(w);
            match measure {
                Measure::Spend(categories) => spend_in(&s, categories, r)?,
                _ => s.sum(&index.at, r, &index.campaign, |e| {
                    s.row(e).campaign_amount()
                })?,
            }
        }
        _ => unreachable!("spend::measure is called with the measures spend answer only"),
    })
}

fn spend_in(
    s: &Selection<'_, SpendIndex>,
    categories: SpendCategories,
    r: std::ops::Range<usize>,
) -> Result<Decimal, MetricError> {
    if s.all() {
        let mut total = Some(Decimal::ZERO);
        for (c, sums) in s.index.by_category.iter().enumerate() {
            if categories.contains_index(c) {
                total = total.and_then(|t| {
                    let x = sums.range(r.clone(), |i| s.row(&s.index.at.items[i]).amount_in(c))?;
                    t.checked_add(x)
                });
            }
        }
        if let Some(t) = total {
            return Ok(t);
        }
    }
    s.sum_where(
        &s.index.at,
        r,
        |e| categories.contains_index(s.row(e).category.index()),
        |e| s.row(e).amount,
    )
}

crate::snapshot::snap_fields!(SpendIndex {
    at,
    by_category,
    campaign
});
super::image::imaged_as_written!(SpendIndex);

#[cfg(test)]
mod tests {
    use crate::index::tests::after_one_write;
    use crate::record::{Record, RecordKind};

    /// A spend's amount changed: the spend part is its base plus a delta, read in place,
    /// and every answer equals the reference's.
    #[test]
    fn a_spend_write_is_a_delta() {
        let (before, after) = after_one_write(RecordKind::Spend, |_, r| {
            let Record::Spend(s) = r else { return false };
            s.amount += kpi_core::Decimal::ONE;
            true
        });
        assert!(after.spend.layered_on(&before.spend));
        assert!(std::sync::Arc::ptr_eq(&after.deals, &before.deals));
    }
}
