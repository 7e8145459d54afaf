//! Survey responses: per kind (NPS, CSAT, CES) by time, with scores summed and times per
//! (scale, score); the measures they answer.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::Timestamp;
use kpi_core::{Decimal, Dimension, Measure, MetricError, SurveyKind, Window};

use super::count;
use super::events::{rows_by_time, EventList};
use super::lookups::Lookups;
use super::part::{KindIndex, Part, ResolvedFilters};
use super::sums::DecimalSums;
use super::times::Times;
use crate::record::RecordKind;
use crate::rows::{Slab, SurveyRow};
use crate::symbols::{Sym, NONE};

/// The kinds the survey part reads: survey responses, and their customers (through the
/// lookups only).
pub(crate) const READS: &[RecordKind] = &[RecordKind::SurveyResponse, RecordKind::Customer];

/// Whether the survey part answers `measure`.
pub(crate) fn answers(measure: Measure) -> bool {
    matches!(
        measure,
        Measure::SurveyResponses { .. } | Measure::SurveyScoreTotal(_)
    )
}

/// Most (scale, score) groups counted group by group; beyond, responses are counted one
/// by one.
pub(crate) const MAX_SCORE_GROUPS: usize = 64;

/// Responses with one (scale_max, score): their times, sorted.
pub(crate) type ScoreGroup = ((u32, Decimal), Times);

/// The responses of one survey kind.
pub(crate) struct SurveyKindIndex {
    pub(crate) at: EventList<u32>,
    pub(crate) score: DecimalSums,
    /// Response times per (scale_max, score), when there are at most
    /// [`MAX_SCORE_GROUPS`] groups.
    pub(crate) groups: Option<Vec<ScoreGroup>>,
}

/// Survey responses per kind (NPS, CSAT, CES).
pub(crate) struct SurveyIndex {
    pub(crate) kinds: [SurveyKindIndex; 3],
}

/// Position of a survey kind in [`SurveyIndex::kinds`].
pub(crate) fn survey_slot(kind: SurveyKind) -> usize {
    match kind {
        SurveyKind::Nps => 0,
        SurveyKind::Csat => 1,
        SurveyKind::Ces => 2,
    }
}

impl KindIndex for SurveyIndex {
    type Row = SurveyRow;
    type Table = Slab<SurveyRow>;
    type Context = Arc<Lookups>;

    fn record_slot(_: &Self::Table, position: u32) -> u32 {
        position
    }

    fn customer_lookups(lookups: &Arc<Lookups>) -> Option<&Lookups> {
        Some(lookups)
    }

    fn customer(_: &Arc<Lookups>, s: &SurveyRow) -> Sym {
        s.customer
    }

    fn attr(lookups: &Arc<Lookups>, s: &SurveyRow, d: Dimension) -> Sym {
        match d {
            Dimension::Source | Dimension::Segment => lookups.customer_attr(s.customer, d),
            _ => NONE,
        }
    }

    fn build(_: &Arc<Lookups>, rows: &Self::Table, subset: &[u32]) -> Self {
        let kind = |k: SurveyKind| {
            let at = rows_by_time(subset, |r| {
                Some(rows.row(r).at.get()).filter(|_| rows.row(r).kind == k)
            });
            let mut groups: HashMap<(u32, Decimal), Vec<Timestamp>> = HashMap::new();
            let mut too_many = false;
            for (t, r) in at.times.iter().zip(&at.items) {
                let s = &rows.row(*r);
                let key = (s.scale_max, s.score.normalize());
                if !groups.contains_key(&key) && groups.len() == MAX_SCORE_GROUPS {
                    too_many = true;
                    break;
                }
                groups.entry(key).or_default().push(t);
            }
            SurveyKindIndex {
                score: DecimalSums::new(at.items.iter().map(|r| rows.row(*r).score)),
                groups: (!too_many).then(|| {
                    groups
                        .into_iter()
                        .map(|(key, times)| (key, Times::new(times)))
                        .collect()
                }),
                at,
            }
        };
        SurveyIndex {
            kinds: [
                kind(SurveyKind::Nps),
                kind(SurveyKind::Csat),
                kind(SurveyKind::Ces),
            ],
        }
    }
}

/// The survey responses' value of `measure` (one [`answers`]) over `w` and the filters `f`.
pub(crate) fn measure(
    part: &Part<SurveyIndex>,
    measure: Measure,
    w: &Window,
    f: &ResolvedFilters,
) -> Result<Decimal, MetricError> {
    Ok(match measure {
        Measure::SurveyResponses {
            kind,
            scale,
            min,
            max,
        } => {
            let Some(s) = part.select(f)? else {
                return Ok(Decimal::ZERO);
            };
            let k = &s.index.kinds[survey_slot(kind)];
            let (min, max) = (Decimal::from(min), Decimal::from(max));
            let fits = |sc: u32, score: Decimal| {
                (scale == 0 || sc == scale) && min <= score && score <= max
            };
            match &k.groups {
                Some(groups) if s.all() => count(
                    groups
                        .iter()
                        .filter(|((sc, score), _)| fits(*sc, *score))
                        .map(|(_, times)| {
                            let lo = times.before(w.start);
                            times.before(w.end).max(lo) - lo
                        })
                        .sum(),
                ),
                _ => count(s.count_where(&k.at, k.at.range(w), |e| {
                    let x = s.row(e);
                    fits(x.scale_max, x.score)
                })),
            }
        }
        Measure::SurveyScoreTotal(kind) => {
            let Some(s) = part.select(f)? else {
                return Ok(Decimal::ZERO);
            };
            let k = &s.index.kinds[survey_slot(kind)];
            s.sum(&k.at, k.at.range(w), &k.score, |e| s.row(e).score)?
        }
        _ => unreachable!(
            "surveys::measure is called with the measures survey responses answer only"
        ),
    })
}

crate::snapshot::snap_fields!(SurveyKindIndex { at, score, groups });

impl crate::snapshot::Snap for SurveyIndex {
    fn put(&self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        self.kinds.iter().try_for_each(|k| k.put(w))
    }
    fn get(r: &mut impl crate::snapshot::ContentSource) -> std::io::Result<Self> {
        use crate::snapshot::Snap;
        Ok(Self {
            kinds: [Snap::get(r)?, Snap::get(r)?, Snap::get(r)?],
        })
    }
}
super::image::imaged_as_written!(SurveyIndex);
