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

impl AttributeValue {
    /// The value as a dimension value (what `attr.<name>` groups and filters by): text as
    /// is, a decimal normalized (`12.5`, not `12.50`), a flag `true` or `false`, a time in
    /// RFC 3339 (`2024-03-01T00:00:00Z`).
    pub fn dimension_value(&self) -> String {
        match self {
            AttributeValue::Text(text) => text.clone(),
            AttributeValue::Decimal(d) => d.normalize().to_string(),
            AttributeValue::Flag(f) => f.to_string(),
            AttributeValue::Time(t) => t.to_string(),
        }
    }
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
    fn dimension_values_are_canonical() {
        let d = |t: &str| AttributeValue::Decimal(t.parse().unwrap()).dimension_value();
        assert_eq!(
            (d("12.50"), d("-0.0"), d("100")),
            ("12.5".into(), "0".into(), "100".into())
        );
        assert_eq!(AttributeValue::Flag(false).dimension_value(), "false");
        let t = AttributeValue::Time("2024-03-01T10:00:00.5+00:00".parse().unwrap());
        assert_eq!(t.dimension_value(), "2024-03-01T10:00:00.5Z");
        assert_eq!(
            AttributeValue::Text("EMEA".into()).dimension_value(),
            "EMEA"
        );
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
