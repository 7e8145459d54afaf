//! How records are laid out in sled (sled 0.34).
//!
//! One tree, `records`, holds every record of every tenant:
//!
//! ```text
//! key   = tenant (UTF-8, 1..=256 bytes, no control character, so no 0x00)
//!         ‖ 0x00
//!         ‖ kind (1 byte: 0x01 customer, 0x02 lead, 0x03 deal, 0x04 subscription,
//!                 0x05 purchase, 0x06 spend, 0x07 campaign, 0x08 ticket,
//!                 0x09 survey_response, 0x0A quota)
//!         ‖ id (UTF-8, 1..=256 bytes)
//! value = format version (1 byte, 0x02)
//!         ‖ slot (u32, little-endian): where the record's row lives in memory
//!         ‖ the `Record` as MessagePack (rmp-serde: structs as arrays, enum variants by
//!           name, decimals and timestamps as strings)
//! ```
//!
//! Version 0x01 (the first release) is the same without the slot; opening a store
//! rewrites such values as version 0x02. The PostgreSQL backend stores version 0x01 values:
//! there each process places rows at slots of its own (`store/replica.rs`).
//!
//! Keys sort by tenant, then kind, then id bytes: one tenant's records, or one kind of
//! them, are a contiguous key range (`tenant ‖ 0x00` and `tenant ‖ 0x00 ‖ kind` are
//! prefixes), which is what `list` pages through. Because a tenant holds no 0x00, no
//! tenant's prefix is a prefix of another tenant's keys. Upserting a record overwrites its
//! key (sled hands back the old value, whose slot is freed); deleting removes it. Writes
//! are committed (flushed and fsync'd) before the call returns. Page tokens are the hex of `kind ‖ id` of the last
//! record returned.

use crate::error::StoreError;
use crate::record::{Record, RecordKind};

/// Longest tenant name, in bytes.
pub(crate) const MAX_TENANT_BYTES: usize = 256;

/// The version byte of values written by the first release (no slot).
const FORMAT_V1: u8 = 0x01;
/// The version byte of values with a slot.
const FORMAT_V2: u8 = 0x02;

/// The key byte of a record kind.
pub(crate) fn kind_byte(kind: RecordKind) -> u8 {
    match kind {
        RecordKind::Customer => 0x01,
        RecordKind::Lead => 0x02,
        RecordKind::Deal => 0x03,
        RecordKind::Subscription => 0x04,
        RecordKind::Purchase => 0x05,
        RecordKind::Spend => 0x06,
        RecordKind::Campaign => 0x07,
        RecordKind::Ticket => 0x08,
        RecordKind::SurveyResponse => 0x09,
        RecordKind::Quota => 0x0A,
        RecordKind::Activity => 0x0B,
        RecordKind::FxRate => 0x0C,
    }
}

/// The record kind of a key byte.
pub(crate) fn kind_of_byte(byte: u8) -> Option<RecordKind> {
    RecordKind::ALL.into_iter().find(|k| kind_byte(*k) == byte)
}

/// Checks a tenant name: 1..=256 bytes, no control characters (so no NUL).
pub(crate) fn check_tenant(tenant: &str) -> Result<(), StoreError> {
    if tenant.is_empty() {
        return Err(StoreError::InvalidTenant("the tenant name is empty".into()));
    }
    if tenant.len() > MAX_TENANT_BYTES {
        return Err(StoreError::InvalidTenant(format!(
            "the tenant name is {} bytes long; at most {MAX_TENANT_BYTES} are allowed",
            tenant.len()
        )));
    }
    if let Some(c) = tenant.chars().find(|c| c.is_control()) {
        return Err(StoreError::InvalidTenant(format!(
            "the tenant name contains the control character U+{:04X}",
            u32::from(c)
        )));
    }
    Ok(())
}

/// `tenant ‖ 0x00`: the prefix of every key of the tenant.
pub(crate) fn tenant_prefix(tenant: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(tenant.len() + 1);
    key.extend_from_slice(tenant.as_bytes());
    key.push(0);
    key
}

/// The key of one record.
pub(crate) fn record_key(tenant: &str, kind: RecordKind, id: &str) -> Vec<u8> {
    let mut key = tenant_prefix(tenant);
    key.reserve(1 + id.len());
    key.push(kind_byte(kind));
    key.extend_from_slice(id.as_bytes());
    key
}

/// Splits a stored key into tenant, kind and id.
pub(crate) fn split_key(key: &[u8]) -> Result<(&str, RecordKind, &str), StoreError> {
    let corrupt = |why: &str| StoreError::Corrupt(format!("key {}: {why}", hex(key)));
    let nul = key
        .iter()
        .position(|b| *b == 0)
        .ok_or_else(|| corrupt("no tenant separator"))?;
    let tenant = std::str::from_utf8(&key[..nul]).map_err(|_| corrupt("tenant is not UTF-8"))?;
    let kind_byte = *key.get(nul + 1).ok_or_else(|| corrupt("no kind byte"))?;
    let kind = kind_of_byte(kind_byte).ok_or_else(|| corrupt("unknown kind byte"))?;
    let id = std::str::from_utf8(&key[nul + 2..]).map_err(|_| corrupt("id is not UTF-8"))?;
    Ok((tenant, kind, id))
}

/// Serializes a record, with the slot of its row, as a stored value.
pub(crate) fn encode_record(record: &Record, slot: u32) -> Vec<u8> {
    let mut header = [FORMAT_V2, 0, 0, 0, 0];
    header[1..].copy_from_slice(&slot.to_le_bytes());
    encode_after(&header, record)
}

/// Serializes a record as a stored value without a slot (version 0x01: PostgreSQL's).
pub(crate) fn encode_record_without_slot(record: &Record) -> Vec<u8> {
    encode_after(&[FORMAT_V1], record)
}

/// `header` ‖ the record as MessagePack.
fn encode_after(header: &[u8], record: &Record) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(header);
    // Writing into a Vec cannot fail, and every record type serializes (no maps with
    // non-string keys, no unsupported types).
    rmp_serde::encode::write(&mut out, record).expect("records serialize to MessagePack");
    out
}

/// The slot a stored value carries (`None` for a version 0x01 value).
pub(crate) fn value_slot(key: &[u8], value: &[u8]) -> Result<Option<u32>, StoreError> {
    match value.split_first() {
        Some((&FORMAT_V1, _)) => Ok(None),
        Some((&FORMAT_V2, rest)) if rest.len() >= 4 => Ok(Some(u32::from_le_bytes(
            rest[..4].try_into().expect("4 bytes"),
        ))),
        _ => decode_record(key, value).map(|_| None),
    }
}

/// Decodes a stored value (`key` is for the error message).
pub(crate) fn decode_record(key: &[u8], value: &[u8]) -> Result<Record, StoreError> {
    let body = match value.split_first() {
        Some((&FORMAT_V1, body)) => body,
        Some((&FORMAT_V2, rest)) if rest.len() >= 4 => &rest[4..],
        Some((&FORMAT_V2, _)) => {
            return Err(StoreError::Corrupt(format!(
                "value of key {} is cut short",
                hex(key)
            )))
        }
        Some((version, _)) => {
            return Err(StoreError::Corrupt(format!(
                "value of key {} has unknown format version {version}",
                hex(key)
            )))
        }
        None => {
            return Err(StoreError::Corrupt(format!(
                "value of key {} is empty",
                hex(key)
            )))
        }
    };
    rmp_serde::from_slice(body)
        .map_err(|e| StoreError::Corrupt(format!("value of key {}: {e}", hex(key))))
}

/// The page token that resumes after the record `(kind, id)`.
pub(crate) fn token_after(kind: RecordKind, id: &str) -> String {
    let mut bytes = Vec::with_capacity(1 + id.len());
    bytes.push(kind_byte(kind));
    bytes.extend_from_slice(id.as_bytes());
    hex(&bytes)
}

/// Decodes a page token into `kind ‖ id` bytes (the key suffix after the tenant prefix).
pub(crate) fn parse_page_token(
    token: &str,
    kind_filter: Option<RecordKind>,
) -> Result<Vec<u8>, StoreError> {
    let invalid = |why: &str| StoreError::InvalidPageToken(format!("`{}` {why}", truncate(token)));
    let bytes = unhex(token).ok_or_else(|| invalid("is not a page token"))?;
    let (&kind, id) = bytes
        .split_first()
        .ok_or_else(|| invalid("is not a page token"))?;
    let kind = kind_of_byte(kind).ok_or_else(|| invalid("is not a page token"))?;
    if id.is_empty() || std::str::from_utf8(id).is_err() {
        return Err(invalid("is not a page token"));
    }
    if let Some(filter) = kind_filter {
        if filter != kind {
            return Err(invalid(&format!(
                "belongs to a listing of {} records, not {}",
                kind.as_str(),
                filter.as_str()
            )));
        }
    }
    Ok(bytes)
}

fn truncate(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s.to_owned()
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// Bytes of lowercase or uppercase hex, or `None` when `s` is not hex.
fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 == 1 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    s.as_bytes()
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_sort_by_tenant_kind_id() {
        let k = record_key("acme", RecordKind::Deal, "d-1");
        assert_eq!(k, b"acme\x00\x03d-1");
        assert_eq!(split_key(&k).unwrap(), ("acme", RecordKind::Deal, "d-1"));
        // "a" sorts before "ab" and its prefix "a\0" does not cover "ab"'s keys.
        let a = record_key("a", RecordKind::Quota, "zzz");
        let ab = record_key("ab", RecordKind::Customer, "a");
        assert!(a < ab);
        assert!(!ab.starts_with(&tenant_prefix("a")));
    }

    #[test]
    fn tenants_are_checked() {
        assert!(check_tenant("default").is_ok());
        assert!(check_tenant("").is_err());
        assert!(check_tenant("a\0b").is_err());
        assert!(check_tenant(&"x".repeat(257)).is_err());
    }

    #[test]
    fn page_tokens_round_trip_and_reject_garbage() {
        let t = token_after(RecordKind::Lead, "l-9");
        assert_eq!(parse_page_token(&t, None).unwrap(), b"\x02l-9");
        assert!(parse_page_token(&t, Some(RecordKind::Lead)).is_ok());
        assert!(matches!(
            parse_page_token(&t, Some(RecordKind::Deal)),
            Err(StoreError::InvalidPageToken(_))
        ));
        for bad in ["zz", "0", "02", "ff41", "not a token"] {
            assert!(
                matches!(
                    parse_page_token(bad, None),
                    Err(StoreError::InvalidPageToken(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn corrupt_values_are_reported() {
        assert!(matches!(
            decode_record(b"k", &[]),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            decode_record(b"k", &[9, 1, 2]),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            decode_record(b"k", &[1, 0xc1]),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            decode_record(b"k", &[2, 0, 0]),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn values_carry_their_slot_and_first_release_values_still_decode() {
        let r = Record::Quota(crate::record::Quota {
            currency: None,
            attributes: Default::default(),
            id: "q".into(),
            owner: "rep".into(),
            period_start: jiff::Timestamp::UNIX_EPOCH,
            period_end: jiff::Timestamp::from_second(86_400).unwrap(),
            amount: kpi_core::Decimal::ONE,
        });
        let v = encode_record(&r, 7);
        assert_eq!(value_slot(b"k", &v).unwrap(), Some(7));
        assert_eq!(decode_record(b"k", &v).unwrap(), r);
        let mut v1 = vec![FORMAT_V1];
        v1.extend_from_slice(&v[5..]);
        assert_eq!(value_slot(b"k", &v1).unwrap(), None);
        assert_eq!(decode_record(b"k", &v1).unwrap(), r);
    }
}
