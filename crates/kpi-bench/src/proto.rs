//! Generated records in their wire form, as kpi-server converts stored records for
//! ListRecords (one conversion, attributes included).

use kpi_proto::kpi::v1 as pb;
use kpi_store::Record;

/// The wire form of a stored record.
pub(crate) fn record(record: &Record) -> pb::Record {
    kpi_server::record_to_proto(record.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_store::generate::{generate, DemoOptions};
    use pb::record::Record as Kind;

    #[test]
    fn every_generated_kind_converts_with_its_fields() {
        let records = generate(&DemoOptions {
            records: 3_000,
            attributes_and_activities: true,
            currencies: true,
            ..DemoOptions::default()
        });
        let mut kinds = std::collections::BTreeSet::new();
        for r in &records {
            let wire = record(r);
            let kind = wire.record.expect("a kind");
            match (&kind, r) {
                (Kind::Deal(w), Record::Deal(d)) => {
                    assert_eq!(w.amount, d.amount.to_string());
                    assert_eq!(w.stage_history.len(), d.stage_history.len());
                    assert_eq!(
                        w.closed_at.as_ref().map(|t| t.seconds),
                        d.closed_at.map(|t| t.as_second())
                    );
                }
                (Kind::Subscription(w), Record::Subscription(s)) => {
                    assert_eq!(w.mrr_changes.len(), s.mrr_changes.len());
                    assert_eq!(w.mrr_changes[0].mrr, s.mrr_changes[0].mrr.to_string());
                }
                (Kind::SurveyResponse(w), Record::SurveyResponse(s)) => {
                    assert_eq!(w.scale_max, s.scale_max);
                }
                (Kind::Customer(w), Record::Customer(c)) => {
                    // The open data model's attributes travel too.
                    assert_eq!(w.attributes.len(), c.attributes.len());
                    assert_eq!(w.attributes.len(), 3);
                }
                _ => {}
            }
            kinds.insert(r.kind().as_str());
        }
        assert_eq!(kinds.len(), kpi_store::RecordKind::ALL.len(), "{kinds:?}");
    }
}
