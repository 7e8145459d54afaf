//! The name of a custom attribute (`region`, `plan`, `seats`…), checked once and held
//! inline so that a [`crate::Dimension`] naming one stays `Copy`.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

/// Longest attribute name, in bytes.
pub const MAX_ATTRIBUTE_NAME_BYTES: usize = 64;

/// A valid attribute name: 1 to 64 of `a-z`, `0-9` and `_`, starting with a letter
/// (`[a-z][a-z0-9_]{0,63}`), held inline (no allocation, `Copy`).
#[derive(Clone, Copy)]
pub struct AttributeName {
    len: u8,
    bytes: [u8; MAX_ATTRIBUTE_NAME_BYTES],
}

impl AttributeName {
    /// The empty name, which no attribute has: what a descriptor's `attr.*` and
    /// `customer.*` entries hold (every attribute, see [`crate::Dimension::ANY_ATTRIBUTE`]).
    pub const ANY: AttributeName = AttributeName {
        len: 0,
        bytes: [0; MAX_ATTRIBUTE_NAME_BYTES],
    };

    /// `name` if it is a valid attribute name, else why not.
    pub fn new(name: &str) -> Result<Self, String> {
        check_attribute_name(name)?;
        let mut bytes = [0; MAX_ATTRIBUTE_NAME_BYTES];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        Ok(Self {
            len: name.len() as u8,
            bytes,
        })
    }

    /// The name (empty for [`AttributeName::ANY`]).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).expect("checked ASCII")
    }

    /// Whether this is [`AttributeName::ANY`].
    pub fn is_any(&self) -> bool {
        self.len == 0
    }
}

/// Why `name` cannot name an attribute (`[a-z][a-z0-9_]{0,63}`), if it cannot. The one
/// place the rule lives.
pub fn check_attribute_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let starts_well = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_well = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !starts_well || !rest_well || name.len() > MAX_ATTRIBUTE_NAME_BYTES {
        return Err(format!(
            "`{}` is not an attribute name: names are 1 to 64 of a-z, 0-9 and _, starting with a letter",
            clip(name)
        ));
    }
    Ok(())
}

/// At most 64 bytes of an echoed name (on a character boundary).
fn clip(text: &str) -> &str {
    let mut end = text.len().min(MAX_ATTRIBUTE_NAME_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl PartialEq for AttributeName {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for AttributeName {}

impl Hash for AttributeName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialOrd for AttributeName {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for AttributeName {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl fmt::Debug for AttributeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for AttributeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_any() { "*" } else { self.as_str() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_pattern() {
        for good in ["a", "region", "plan_2", &format!("a{}", "b".repeat(63))] {
            assert_eq!(AttributeName::new(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "*",
            "Region",
            "2plan",
            "_x",
            "a-b",
            "a.b",
            "é",
            &"a".repeat(65),
        ] {
            assert!(AttributeName::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_compare_by_text() {
        let [a, b] = ["zz", "b"].map(|n| AttributeName::new(n).unwrap());
        assert!(b < a);
        assert_eq!(a, AttributeName::new("zz").unwrap());
        assert_eq!(AttributeName::ANY.to_string(), "*");
    }
}
