//! What each part declares ([`PARTS`]: the kinds it reads, the measures it answers)
//! checked against what it really does, on random datasets: a measure's answers change
//! only with the kinds its parts declare, and each declared kind changes some answer.

use jiff::Timestamp;
use kpi_core::{Dimension, Measure, Scope};

use super::tests::{all_measures, answerable, canonical, grid, grid_scopes, RandomTenant};
use super::{Index, KindGenerations, PARTS};
use crate::generate::Rng;
use crate::record::{Record, RecordKind};
use crate::rows::Rows;

/// The parts (positions in [`PARTS`]) that answer `measure` over `scope`.
fn readers(measure: Measure, scope: &Scope) -> Vec<usize> {
    super::readers(measure, scope.filters.contains_key(&Dimension::Stage)).collect()
}

/// The scopes of the reference tests, and a stage filter with each dimension a stage
/// entry inherits from its deal, customer or campaign.
fn scopes(grid: &[Timestamp]) -> Vec<Scope> {
    let mut scopes = grid_scopes(grid);
    let window = scopes[0].window;
    for stage in ["a", "b"] {
        for (d, v) in [
            (Dimension::Segment, "smb"),
            (Dimension::Source, "marketing"),
            (Dimension::Channel, "email"),
            (Dimension::Campaign, "k1"),
            (Dimension::Owner, "o2"),
        ] {
            scopes.push(Scope {
                window,
                filters: [(Dimension::Stage, stage.to_owned()), (d, v.to_owned())].into(),
            });
        }
    }
    scopes
}

fn index_of(records: Vec<Record>) -> Index {
    let records = canonical(records);
    Index::build(
        &Rows::of(records.records().cloned()),
        &KindGenerations::default(),
        None,
    )
}

#[test]
fn every_measure_is_answered_by_some_part() {
    for scope in scopes(&grid()) {
        for m in all_measures() {
            assert!(!readers(m, &scope).is_empty(), "{m:?} over {scope:?}");
        }
    }
}

/// Each kind's records replaced by those of another random dataset: a measure's answers
/// change only when a part answering it declares it reads that kind, and every kind a
/// part declares changes an answer of a measure it answers alone.
#[test]
fn parts_read_the_kinds_they_declare() {
    let grid = grid();
    let scopes = scopes(&grid);
    let measures = all_measures();
    // Per part and kind: whether replacing that kind changed an answer of the part alone.
    let mut changed = [[false; RecordKind::ALL.len()]; PARTS.len()];
    for seed in 0..12u64 {
        let tenant = |n: u64| {
            RandomTenant {
                rng: Rng(seed * 7919 + n),
                grid: grid.clone(),
            }
            .records()
        };
        let (a, b) = (tenant(1), tenant(2));
        let before = index_of(a.clone());
        for kind in RecordKind::ALL {
            let mixed = a
                .iter()
                .filter(|r| r.kind() != kind)
                .chain(b.iter().filter(|r| r.kind() == kind))
                .cloned()
                .collect();
            let after = index_of(mixed);
            for m in &measures {
                for scope in scopes.iter().filter(|s| answerable(*m, &s.filters)) {
                    if before.measure(*m, scope).unwrap() == after.measure(*m, scope).unwrap() {
                        continue;
                    }
                    let readers = readers(*m, scope);
                    assert!(
                        readers.iter().any(|p| PARTS[*p].reads.contains(&kind)),
                        "{m:?} over {scope:?} changed with the {kind:?} records, which no \
                         part answering it declares it reads"
                    );
                    if let [only] = readers[..] {
                        changed[only][kind as usize] = true;
                    }
                }
            }
        }
    }
    for (p, changed) in PARTS.iter().zip(changed) {
        for kind in p.reads {
            assert!(
                changed[*kind as usize],
                "the {:?} part declares it reads {kind:?}, but no answer of it changed with them",
                p.unit
            );
        }
    }
}

/// A part whose rows have a customer carries `customer.<name>`, read from the customers:
/// it must be rebuilt or refit when they change, so it declares it reads them.
#[test]
fn parts_with_a_customer_read_the_customers() {
    for p in PARTS {
        if p.unit.has_customer() {
            assert!(
                p.reads.contains(&RecordKind::Customer),
                "the {:?} part carries customer attributes but does not declare it reads customers",
                p.unit
            );
        }
    }
}
