//! Arbitrary bytes → `kpi.v1.PutRecordsRequest` (prost) → the server's conversion and the
//! store's validation of every record, as PutRecords and Ingest do. Must never panic; a
//! valid record must survive the wire round trip unchanged.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(outcome) = kpi_server::fuzzing::records(data) {
        assert!(outcome.valid <= outcome.converted && outcome.converted <= outcome.records);
    }
});
