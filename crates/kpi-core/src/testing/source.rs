//! [`FakeSource`]: a [`DataSource`] answering measures from a map.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::IntoDecimal;
use crate::{DataSource, Decimal, Dimension, Measure, MetricError, Scope};

/// A [`DataSource`] answering each measure from a map, whatever the scope's window. A
/// measure missing from the map is a store error, so a test also proves which measures a
/// metric reads (and that an explicit input replaces its stored read).
///
/// It lists no group values unless given some with [`FakeSource::with_group`], whose scope
/// may answer measures of its own. It remembers every read with its scope
/// ([`FakeSource::reads`]).
#[derive(Debug, Default)]
pub struct FakeSource {
    measures: HashMap<Measure, Decimal>,
    groups: BTreeMap<Dimension, Vec<String>>,
    in_group: HashMap<(Measure, Dimension, String), Decimal>,
    reads: Mutex<Vec<(Measure, Scope)>>,
}

impl FakeSource {
    /// A source holding these measure values (for any scope).
    pub fn new<V: IntoDecimal>(measures: impl IntoIterator<Item = (Measure, V)>) -> Self {
        Self {
            measures: measures
                .into_iter()
                .map(|(m, v)| (m, v.into_decimal()))
                .collect(),
            ..Self::default()
        }
    }

    /// Builder form of [`FakeSource::insert`].
    pub fn with(mut self, measure: Measure, value: impl IntoDecimal) -> Self {
        self.insert(measure, value);
        self
    }

    /// Sets (or replaces) the value of `measure`.
    pub fn insert(&mut self, measure: Measure, value: impl IntoDecimal) {
        self.measures.insert(measure, value.into_decimal());
    }

    /// Adds the group `dimension = value` to the values [`DataSource::group_values`] lists
    /// (kept sorted). A scope filtered on that group answers `measures` from this list;
    /// measures not given here fall back to the source-wide values.
    pub fn with_group(
        mut self,
        dimension: Dimension,
        value: &str,
        measures: impl IntoIterator<Item = (Measure, Decimal)>,
    ) -> Self {
        let values = self.groups.entry(dimension).or_default();
        if !values.iter().any(|v| v == value) {
            values.push(value.to_owned());
            values.sort();
        }
        for (m, v) in measures {
            self.in_group.insert((m, dimension, value.to_owned()), v);
        }
        self
    }

    /// Every measure read so far, with its scope, in order.
    pub fn reads(&self) -> Vec<(Measure, Scope)> {
        self.reads.lock().expect("reads lock").clone()
    }
}

impl DataSource for FakeSource {
    fn measure(&self, measure: Measure, scope: &Scope) -> Result<Decimal, MetricError> {
        self.reads
            .lock()
            .expect("reads lock")
            .push((measure, scope.clone()));
        for (dimension, value) in &scope.filters {
            if let Some(v) = self.in_group.get(&(measure, *dimension, value.clone())) {
                return Ok(*v);
            }
        }
        self.measures
            .get(&measure)
            .copied()
            .ok_or_else(|| MetricError::Store(format!("the fake source holds no {measure:?}")))
    }

    fn group_values(
        &self,
        dimension: Dimension,
        _scope: &Scope,
        _measures: &[Measure],
    ) -> Result<Vec<String>, MetricError> {
        Ok(self.groups.get(&dimension).cloned().unwrap_or_default())
    }
}
