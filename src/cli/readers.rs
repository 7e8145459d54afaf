//! Reading import files record by record: NDJSON ([`read_ndjson`]) and CSV ([`read_csv`]).
//!
//! A reader hands each record, each bad line and its progress to a [`Sink`] and goes on
//! after a bad line; it stops early only when the sink says so or the file cannot be read
//! at all (an I/O error, a CSV header naming an unknown column).

use std::io::{BufRead, Read};

use kpi_proto::kpi::v1 as pb;

use super::csv_columns::Columns;
use super::descriptors::RecordKind;
use super::messages::record;
use super::ndjson::parse_line;

/// Where a reader puts what it reads.
pub(crate) trait Sink {
    /// A record read from `line` (1-based); `false` asks the reader to stop.
    fn record(&mut self, line: u64, record: pb::Record) -> bool;
    /// A line that holds no valid record, and why.
    fn bad_line(&mut self, line: u64, reason: String);
    /// The reader has consumed `bytes` bytes of the file so far.
    fn progress(&mut self, bytes: u64);
}

/// Reads NDJSON: one record per line; blank lines are skipped. Fails only on I/O errors.
pub(crate) fn read_ndjson(mut input: impl BufRead, sink: &mut impl Sink) -> Result<(), String> {
    let mut buffer = Vec::new();
    let mut line_number = 0u64;
    let mut bytes = 0u64;
    loop {
        buffer.clear();
        let read = input
            .read_until(b'\n', &mut buffer)
            .map_err(|e| format!("read failed after line {line_number}: {e}"))?;
        if read == 0 {
            return Ok(());
        }
        line_number += 1;
        bytes += read as u64;
        let result = match std::str::from_utf8(&buffer) {
            Err(e) => Err(format!(
                "not UTF-8 (byte {} of the line)",
                e.valid_up_to() + 1
            )),
            Ok(text) if text.trim().is_empty() => continue,
            Ok(text) => parse_line(text.trim_end_matches(['\n', '\r'])),
        };
        let go_on = match result {
            Ok(record) => sink.record(line_number, record),
            Err(reason) => {
                sink.bad_line(line_number, reason);
                true
            }
        };
        sink.progress(bytes);
        if !go_on {
            return Ok(());
        }
    }
}

/// Reads a CSV file of one record kind: a header row of proto field names (snake_case
/// or lowerCamelCase) and map entries (`attr.region`, see [`Columns`]), then one record
/// per row; an empty cell means "not set". Fails on I/O errors and on a header that names
/// an unknown or repeated column.
pub(crate) fn read_csv(
    input: impl Read,
    kind: RecordKind,
    sink: &mut impl Sink,
) -> Result<(), String> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(input);
    let header = reader
        .headers()
        .map_err(|e| format!("cannot read the header row: {e}"))?
        .clone();
    let columns = Columns::from_header(&header, kind.message(), kind.name())?;
    let mut row = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut row) {
            Ok(false) => return Ok(()),
            Ok(true) => {
                let line = row.position().map_or(0, csv::Position::line);
                let go_on = match columns.message(&row).and_then(|m| record(&kind, m)) {
                    Ok(record) => sink.record(line, record),
                    Err(reason) => {
                        sink.bad_line(line, reason);
                        true
                    }
                };
                sink.progress(reader.position().byte());
                if !go_on {
                    return Ok(());
                }
            }
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                match e.kind() {
                    csv::ErrorKind::Io(io) => {
                        return Err(format!("read failed at line {line}: {io}"))
                    }
                    csv::ErrorKind::Utf8 { .. } => sink.bad_line(line, "not UTF-8".to_owned()),
                    _ => sink.bad_line(line, e.to_string()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::record::Record as Kind;

    fn kind(name: &str) -> RecordKind {
        RecordKind::named(name).unwrap()
    }

    #[derive(Default)]
    struct Collect {
        records: Vec<(u64, pb::Record)>,
        bad: Vec<(u64, String)>,
        bytes: u64,
        stop_after: Option<usize>,
    }

    impl Sink for Collect {
        fn record(&mut self, line: u64, record: pb::Record) -> bool {
            self.records.push((line, record));
            self.stop_after != Some(self.records.len())
        }
        fn bad_line(&mut self, line: u64, reason: String) {
            self.bad.push((line, reason));
        }
        fn progress(&mut self, bytes: u64) {
            self.bytes = bytes;
        }
    }

    #[test]
    fn ndjson_reports_bad_lines_and_goes_on() {
        let text = "{\"lead\": {\"id\": \"l1\", \"source\": \"marketing\"}}\r\n\n  \n{oops\n{\"lead\": {\"id\": \"l2\"}}";
        let mut sink = Collect::default();
        read_ndjson(text.as_bytes(), &mut sink).unwrap();
        let lines: Vec<u64> = sink.records.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [1, 5]);
        assert_eq!(sink.bad.len(), 1);
        assert_eq!(sink.bad[0].0, 4);
        assert!(
            sink.bad[0].1.starts_with("not valid JSON"),
            "{:?}",
            sink.bad
        );
        assert_eq!(sink.bytes, text.len() as u64);
    }

    #[test]
    fn ndjson_rejects_invalid_utf8_lines() {
        let mut bytes = b"{\"lead\": {\"id\": \"l1\"}}\n".to_vec();
        bytes.extend_from_slice(b"{\"lead\": {\"id\": \"\xff\"}}\n");
        let mut sink = Collect::default();
        read_ndjson(&bytes[..], &mut sink).unwrap();
        assert_eq!(sink.records.len(), 1);
        assert_eq!(
            sink.bad,
            [(2, "not UTF-8 (byte 18 of the line)".to_owned())]
        );
    }

    #[test]
    fn readers_stop_when_the_sink_says_so() {
        let text = "{\"lead\": {\"id\": \"l1\"}}\n{\"lead\": {\"id\": \"l2\"}}\n";
        let mut sink = Collect {
            stop_after: Some(1),
            ..Collect::default()
        };
        read_ndjson(text.as_bytes(), &mut sink).unwrap();
        assert_eq!(sink.records.len(), 1);

        let csv = "id\nl1\nl2\n";
        let mut sink = Collect {
            stop_after: Some(1),
            ..Collect::default()
        };
        read_csv(csv.as_bytes(), kind("lead"), &mut sink).unwrap();
        assert_eq!(sink.records.len(), 1);
    }

    #[test]
    fn csv_rows_become_records() {
        let text = "\u{feff}id,owner,amount,createdAt,closed_at,status,kind,customer_id,stage_history\n\
            d1,ann,1200.50,2024-01-05T10:00:00Z,2024-02-01T09:30:00Z,won,new_business,,demo@2024-01-10T00:00:00Z;proposal@2024-01-20T00:00:00Z\n\
            d2,bob,10,2024-01-05T10:00:00Z,,open,upsell\n\
            d3,bob,10,yesterday,,open,upsell,,\n\
            \"d4\",\"carl, jr\",\"7\",2024-01-05T10:00:00Z,,DEAL_STATUS_OPEN,DEAL_KIND_RENEWAL,c9,\n";
        let mut sink = Collect::default();
        read_csv(text.as_bytes(), kind("deal"), &mut sink).unwrap();
        assert_eq!(
            sink.bad,
            [
                (3, "7 fields, but the header has 9 columns".to_owned()),
                (
                    4,
                    "deal.created_at: `yesterday` is not an RFC 3339 time such as 2024-01-05T10:00:00Z"
                        .to_owned()
                ),
            ]
        );
        assert_eq!(sink.records.len(), 2);
        let (line, record) = &sink.records[0];
        assert_eq!(*line, 2);
        let Some(Kind::Deal(d1)) = &record.record else {
            panic!("{record:?}")
        };
        assert_eq!(d1.amount, "1200.50");
        assert_eq!(d1.status, pb::DealStatus::Won as i32);
        assert_eq!(d1.customer_id, None);
        assert_eq!(d1.stage_history.len(), 2);
        let (line, record) = &sink.records[1];
        assert_eq!(*line, 5);
        let Some(Kind::Deal(d4)) = &record.record else {
            panic!("{record:?}")
        };
        assert_eq!(d4.owner, "carl, jr");
        assert_eq!(d4.kind, pb::DealKind::Renewal as i32);
        assert_eq!(d4.customer_id.as_deref(), Some("c9"));
        assert_eq!(sink.bytes, text.len() as u64);
    }

    #[test]
    fn csv_headers_are_checked() {
        let mut sink = Collect::default();
        let err = read_csv("id,colour\nd1,red\n".as_bytes(), kind("deal"), &mut sink).unwrap_err();
        assert!(
            err.starts_with("line 1: unknown column `colour` for deal records (columns: amount,"),
            "{err}"
        );
        let err = read_csv(
            "id,createdAt,created_at\n".as_bytes(),
            kind("deal"),
            &mut sink,
        )
        .unwrap_err();
        assert_eq!(err, "line 1: column `created_at` is given twice");
        assert!(sink.records.is_empty() && sink.bad.is_empty());
    }
}
