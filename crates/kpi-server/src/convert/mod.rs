//! Conversion between the `kpi.v1` protobuf messages and kpid's domain types, at the edge:
//! nothing past this module sees a proto type.

pub(crate) mod compute;
pub(crate) mod records;
pub(crate) mod settings;

use jiff::Timestamp;

const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the range of a valid
/// google.protobuf.Timestamp.
const PROTO_SECONDS: std::ops::RangeInclusive<i64> = -62_135_596_800..=253_402_300_799;

/// A protobuf timestamp as a jiff instant; the reason when it is not a valid Timestamp
/// (`nanos` outside 0…999 999 999, `seconds` outside the years 1 to 9999) or out of
/// jiff's range (which ends on 9999-12-30).
pub(crate) fn timestamp_from_proto(ts: &prost_types::Timestamp) -> Result<Timestamp, String> {
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return Err(format!(
            "nanos {} is out of range: a Timestamp's nanos lie in 0 to 999999999",
            ts.nanos
        ));
    }
    if !PROTO_SECONDS.contains(&ts.seconds) {
        return Err(format!(
            "seconds {} is out of range: a Timestamp lies in the years 1 to 9999",
            ts.seconds
        ));
    }
    let nanos = i128::from(ts.seconds) * NANOS_PER_SECOND + i128::from(ts.nanos);
    Timestamp::from_nanosecond(nanos).map_err(|_| {
        format!(
            "{}s {}ns is not a valid instant (years -9999 to 9999)",
            ts.seconds, ts.nanos
        )
    })
}

/// A jiff instant as a normalized protobuf timestamp (`0 ≤ nanos < 1e9`).
pub(crate) fn timestamp_to_proto(ts: Timestamp) -> prost_types::Timestamp {
    let nanos = ts.as_nanosecond();
    // jiff's range (years ±9999) fits i64 seconds; the remainder is below 1e9.
    let seconds = nanos.div_euclid(NANOS_PER_SECOND) as i64;
    let nanos = nanos.rem_euclid(NANOS_PER_SECOND) as i32;
    prost_types::Timestamp { seconds, nanos }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_before_and_after_the_epoch() {
        for text in [
            "2024-03-01T12:30:00.25Z",
            "1969-12-31T23:59:59.5Z",
            "1970-01-01T00:00:00Z",
        ] {
            let ts: Timestamp = text.parse().unwrap();
            let proto = timestamp_to_proto(ts);
            assert!((0..1_000_000_000).contains(&proto.nanos), "{proto:?}");
            assert_eq!(timestamp_from_proto(&proto).unwrap(), ts);
        }
        let before_epoch = timestamp_to_proto("1969-12-31T23:59:59.5Z".parse().unwrap());
        assert_eq!(before_epoch.seconds, -1);
        assert_eq!(before_epoch.nanos, 500_000_000);
    }

    #[test]
    fn out_of_range_timestamps_are_rejected() {
        let err = timestamp_from_proto(&prost_types::Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        })
        .unwrap_err();
        assert!(err.contains("years 1 to 9999"), "{err}");
        let at = |seconds, nanos| timestamp_from_proto(&prost_types::Timestamp { seconds, nanos });
        assert!(at(0, -1).unwrap_err().contains("nanos -1"));
        assert!(at(0, 1_000_000_000).unwrap_err().contains("nanos"));
        assert!(at(-62_135_596_801, 0)
            .unwrap_err()
            .contains("years 1 to 9999"));
        assert_eq!(
            at(-62_135_596_800, 0).unwrap().to_string(),
            "0001-01-01T00:00:00Z"
        );
        assert_eq!(at(0, 999_999_999).unwrap().subsec_nanosecond(), 999_999_999);
        // Valid for protobuf, past jiff's last instant.
        assert!(at(253_402_300_799, 0)
            .unwrap_err()
            .contains("not a valid instant"));
    }
}
