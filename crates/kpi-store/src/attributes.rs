//! Custom attributes: the typed properties a client sets on any record (region, plan,
//! industry, seats…), as ChartMogul's custom attributes and HubSpot's custom properties.
//! A record's attributes are a map by name; an upsert replaces the whole map.

use std::collections::BTreeMap;

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Most attributes one record may carry.
pub const MAX_ATTRIBUTES: usize = 64;
/// Longest attribute name, in bytes.
pub use kpi_core::MAX_ATTRIBUTE_NAME_BYTES;
/// Longest text value, in bytes.
pub const MAX_ATTRIBUTE_TEXT_BYTES: usize = 256;

/// One attribute's value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AttributeValue {
    /// Text, 1 to [`MAX_ATTRIBUTE_TEXT_BYTES`] bytes.
    Text(String),
    /// An exact decimal.
    Decimal(Decimal),
    /// A yes/no flag.
    Flag(bool),
    /// A time (1970 to 9999, as every stored time).
    Time(Timestamp),
}

/// A record's attributes, by name (sorted, so equal maps compare and encode alike).
pub type Attributes = BTreeMap<String, AttributeValue>;

/// Why `name` cannot name an attribute (`[a-z][a-z0-9_]{0,63}`), if it cannot (the rule
/// is kpi-core's, which dimensions `attr.<name>` follow too).
pub fn check_name(name: &str) -> Result<(), String> {
    kpi_core::check_attribute_name(name)
}

/// Why `attributes` cannot be stored, if they cannot; the reason names the attribute
/// (`attributes[region]: …`). `earliest` is the earliest time a record may hold.
pub(crate) fn check(attributes: &Attributes, earliest: Timestamp) -> Result<(), String> {
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(format!(
            "attributes: {} attributes; a record carries at most {MAX_ATTRIBUTES}",
            attributes.len()
        ));
    }
    for (name, value) in attributes {
        check_name(name).map_err(|e| format!("attributes: {e}"))?;
        let field = format!("attributes[{name}]");
        match value {
            AttributeValue::Text(text) if text.is_empty() => {
                return Err(format!(
                    "{field}: empty text; leave the attribute out when it has no value"
                ))
            }
            AttributeValue::Text(text) if text.len() > MAX_ATTRIBUTE_TEXT_BYTES => {
                return Err(format!(
                    "{field}: text of {} bytes; at most {MAX_ATTRIBUTE_TEXT_BYTES}",
                    text.len()
                ))
            }
            AttributeValue::Text(text) if text.chars().any(char::is_control) => {
                return Err(format!("{field}: text holds a control character"))
            }
            AttributeValue::Time(t) if *t < earliest => {
                return Err(format!(
                    "{field}: {t} is before {earliest}; times must lie in the years 1970 to 9999"
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(name: &str, value: AttributeValue) -> Attributes {
        Attributes::from([(name.to_owned(), value)])
    }

    #[test]
    fn names_follow_the_pattern() {
        for good in ["a", "region", "plan_2", &format!("a{}", "b".repeat(63))] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "Region",
            "2plan",
            "_x",
            "a-b",
            "a.b",
            "é",
            &"a".repeat(65),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn values_are_bounded() {
        let earliest = Timestamp::UNIX_EPOCH;
        let text = |t: &str| one("region", AttributeValue::Text(t.into()));
        assert_eq!(check(&text("EMEA"), earliest), Ok(()));
        assert_eq!(check(&text(&"x".repeat(256)), earliest), Ok(()));
        let long = check(&text(&"x".repeat(257)), earliest).unwrap_err();
        assert!(
            long.starts_with("attributes[region]: text of 257 bytes"),
            "{long}"
        );
        assert!(check(&text(""), earliest).is_err());
        assert!(check(&text("a\nb"), earliest).is_err());
        let before = one(
            "renewal",
            AttributeValue::Time("1969-12-31T23:59:59Z".parse().unwrap()),
        );
        assert!(check(&before, earliest)
            .unwrap_err()
            .starts_with("attributes[renewal]"));
        let many: Attributes = (0..65)
            .map(|i| (format!("a{i}"), AttributeValue::Flag(true)))
            .collect();
        assert!(check(&many, earliest).unwrap_err().contains("at most 64"));
        let bad_name = one("Bad", AttributeValue::Flag(true));
        assert!(check(&bad_name, earliest).unwrap_err().contains("`Bad`"));
    }
}
