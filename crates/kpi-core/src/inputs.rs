use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::error::MetricError;

/// The named inputs of one formula evaluation, each an exact decimal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs(BTreeMap<String, Decimal>);

impl Inputs {
    /// No inputs.
    pub fn new() -> Self {
        Self::default()
    }

    /// The input `name`, or [`MetricError::MissingInput`].
    pub fn get(&self, name: &str) -> Result<Decimal, MetricError> {
        self.0
            .get(name)
            .copied()
            .ok_or_else(|| MetricError::MissingInput(name.to_owned()))
    }

    /// The input `name`, if present.
    pub fn try_get(&self, name: &str) -> Option<Decimal> {
        self.0.get(name).copied()
    }

    /// Sets input `name`.
    pub fn set(&mut self, name: impl Into<String>, value: Decimal) {
        self.0.insert(name.into(), value);
    }

    /// Builder form of [`Inputs::set`].
    pub fn with(mut self, name: impl Into<String>, value: Decimal) -> Self {
        self.set(name, value);
        self
    }

    /// Whether `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// The inputs by name, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Decimal)> {
        self.0.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// Number of inputs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Into<String>> FromIterator<(K, Decimal)> for Inputs {
    fn from_iter<T: IntoIterator<Item = (K, Decimal)>>(iter: T) -> Self {
        Self(iter.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
}
