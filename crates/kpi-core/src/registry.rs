use std::collections::HashMap;
use std::sync::OnceLock;

use thiserror::Error;

use crate::custom_measure::CustomMeasure;
use crate::descriptor::{InputSource, ParamSpec};
use crate::measure::Measure;
use crate::Metric;

/// One metric's entry in the link-time registry; create it with
/// [`register_metric!`](crate::register_metric).
pub struct Registration(pub &'static dyn Metric);

inventory::collect!(Registration);

/// Why the registry could not be built: a programming error in a linked metric crate,
/// reported once at startup.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RegistryError {
    /// Two linked metrics have the same id.
    #[error("metric id `{0}` is registered twice; every metric id must be unique")]
    DuplicateId(&'static str),
    /// An id is not `family.name`, or its prefix is not its family.
    #[error("metric id `{id}` must be `{family}.<name>` (lowercase letters, digits, `_`)")]
    BadId {
        /// The offending id.
        id: &'static str,
        /// Its declared family.
        family: &'static str,
    },
    /// A metric names the same input twice.
    #[error("metric `{id}` declares input `{input}` twice")]
    DuplicateInput {
        /// The metric.
        id: &'static str,
        /// The repeated input.
        input: &'static str,
    },
    /// A derived metric uses a metric that is not registered.
    #[error("metric `{id}` uses metric `{uses}`, which is not registered")]
    MissingDependency {
        /// The derived metric.
        id: &'static str,
        /// The missing metric.
        uses: &'static str,
    },
    /// Two different measure declarations share a name.
    #[error(
        "measure `{0}` is declared twice, differently; every custom measure name must be unique"
    )]
    DuplicateMeasure(&'static str),
    /// A custom measure names what its records do not have.
    #[error("measure `{name}` cannot be answered: {reason}")]
    BadMeasure {
        /// The measure's name.
        name: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Every linked metric, sorted by id, looked up by id.
pub struct Registry {
    metrics: Vec<&'static dyn Metric>,
    by_id: HashMap<&'static str, usize>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.metrics.iter().map(|m| m.descriptor().id))
            .finish()
    }
}

fn valid_id(id: &str, family: &str) -> bool {
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    match id.split_once('.') {
        Some((fam, name)) => fam == family && part_ok(fam) && part_ok(name),
        None => false,
    }
}

/// Refuses `declared` when it cannot be answered or another declaration in `seen` has its
/// name; else adds it to `seen`.
fn check_custom_measure(
    seen: &mut HashMap<&'static str, &'static CustomMeasure>,
    declared: &'static CustomMeasure,
) -> Result<(), RegistryError> {
    declared
        .check()
        .map_err(|reason| RegistryError::BadMeasure {
            name: declared.name,
            reason,
        })?;
    match seen.insert(declared.name, declared) {
        Some(other) if !other.same_declaration(declared) => {
            Err(RegistryError::DuplicateMeasure(declared.name))
        }
        _ => Ok(()),
    }
}

impl Registry {
    /// Builds a registry from metrics, refusing duplicate ids, malformed ids, repeated input
    /// names, derived metrics whose dependency is missing, and custom measures read by
    /// their inputs that cannot be answered or that share a name with another declaration.
    pub fn from_metrics(
        metrics: impl IntoIterator<Item = &'static dyn Metric>,
    ) -> Result<Self, RegistryError> {
        let mut metrics: Vec<&'static dyn Metric> = metrics.into_iter().collect();
        metrics.sort_by_key(|m| m.descriptor().id);
        let mut by_id = HashMap::with_capacity(metrics.len());
        let mut custom = HashMap::new();
        for (i, m) in metrics.iter().enumerate() {
            let d = m.descriptor();
            if !valid_id(d.id, d.family) {
                return Err(RegistryError::BadId {
                    id: d.id,
                    family: d.family,
                });
            }
            if by_id.insert(d.id, i).is_some() {
                return Err(RegistryError::DuplicateId(d.id));
            }
            for input in d.inputs {
                if let InputSource::Stored(Measure::Custom(declared)) = input.source {
                    check_custom_measure(&mut custom, declared)?;
                }
            }
            for (j, input) in d.inputs.iter().enumerate() {
                if d.inputs[..j].iter().any(|x| x.name == input.name) {
                    return Err(RegistryError::DuplicateInput {
                        id: d.id,
                        input: input.name,
                    });
                }
            }
        }
        for m in &metrics {
            let d = m.descriptor();
            for uses in m.uses_metrics() {
                if !by_id.contains_key(uses) {
                    return Err(RegistryError::MissingDependency { id: d.id, uses });
                }
            }
        }
        Ok(Self { metrics, by_id })
    }

    /// The metric with this id.
    pub fn get(&self, id: &str) -> Option<&'static dyn Metric> {
        self.by_id.get(id).map(|&i| self.metrics[i])
    }

    /// The spec of param `name` accepted by a metric `metric` uses (directly or through
    /// further derived metrics), if any: such a param may be given on `metric`'s requests.
    pub fn dependency_param(&self, metric: &dyn Metric, name: &str) -> Option<&'static ParamSpec> {
        let mut queue = metric.uses_metrics();
        let mut seen: Vec<&'static str> = Vec::new();
        while let Some(id) = queue.pop() {
            if seen.contains(&id) {
                continue;
            }
            seen.push(id);
            let Some(dep) = self.get(id) else { continue };
            if let Some(spec) = dep.descriptor().param(name) {
                return Some(spec);
            }
            queue.extend(dep.uses_metrics());
        }
        None
    }

    /// Every metric, sorted by id.
    pub fn metrics(&self) -> impl Iterator<Item = &'static dyn Metric> + '_ {
        self.metrics.iter().copied()
    }

    /// Number of metrics.
    pub fn len(&self) -> usize {
        self.metrics.len()
    }

    /// Whether no metric is linked.
    pub fn is_empty(&self) -> bool {
        self.metrics.is_empty()
    }
}

/// The registry of every metric linked into this binary, built once. A duplicate id is an
/// error the binary reports at startup.
pub fn registry() -> Result<&'static Registry, RegistryError> {
    static REGISTRY: OnceLock<Result<Registry, RegistryError>> = OnceLock::new();
    REGISTRY
        .get_or_init(|| Registry::from_metrics(inventory::iter::<Registration>().map(|r| r.0)))
        .as_ref()
        .map_err(Clone::clone)
}
