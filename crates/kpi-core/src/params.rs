use std::collections::BTreeMap;
use std::str::FromStr;

use rust_decimal::Decimal;

use crate::descriptor::{MetricDescriptor, ParamKind, ParamSpec};
use crate::error::{FieldViolation, MetricError};

/// A validated parameter value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ParamValue {
    /// A decimal parameter.
    Decimal(Decimal),
    /// A whole-number parameter.
    Integer(i64),
    /// One word from a choice.
    Choice(String),
    /// A subset of words (`all` expands to every word).
    Set(Vec<String>),
}

/// The validated parameters of one compute request, defaults filled in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(BTreeMap<String, ParamValue>);

impl Params {
    /// Validates `raw` against the descriptor's parameters (unknown names and bad values are
    /// violations) and fills in defaults.
    pub fn parse(
        descriptor: &MetricDescriptor,
        raw: &BTreeMap<String, String>,
    ) -> Result<Self, Vec<FieldViolation>> {
        let mut violations = Vec::new();
        for name in raw.keys() {
            if descriptor.param(name).is_none() {
                let known: Vec<_> = descriptor.all_params().map(|p| p.name).collect();
                violations.push(FieldViolation::new(
                    format!("params[{name}]"),
                    format!(
                        "unknown parameter for {}; it accepts: {}",
                        descriptor.id,
                        known.join(", ")
                    ),
                ));
            }
        }
        let mut values = BTreeMap::new();
        for spec in descriptor.all_params() {
            let text = raw
                .get(spec.name)
                .map(String::as_str)
                .unwrap_or(spec.default);
            if text.is_empty() {
                continue;
            }
            match parse_value(spec, text.trim()) {
                Ok(v) => {
                    values.insert(spec.name.to_owned(), v);
                }
                Err(reason) => violations.push(FieldViolation::new(
                    format!("params[{}]", spec.name),
                    reason,
                )),
            }
        }
        if violations.is_empty() {
            Ok(Self(values))
        } else {
            Err(violations)
        }
    }

    /// Builds params directly (for tests and derived metrics).
    pub fn from_values<K: Into<String>>(values: impl IntoIterator<Item = (K, ParamValue)>) -> Self {
        Self(values.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// The raw value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&ParamValue> {
        self.0.get(name)
    }

    /// A decimal parameter, if set.
    pub fn decimal(&self, name: &str) -> Option<Decimal> {
        match self.0.get(name)? {
            ParamValue::Decimal(d) => Some(*d),
            ParamValue::Integer(i) => Some(Decimal::from(*i)),
            _ => None,
        }
    }

    /// A decimal parameter that must be set (it has a default).
    pub fn require_decimal(&self, name: &str) -> Result<Decimal, MetricError> {
        self.decimal(name).ok_or_else(|| MetricError::InvalidParam {
            param: name.to_owned(),
            reason: "missing".into(),
        })
    }

    /// A whole-number parameter, if set.
    pub fn integer(&self, name: &str) -> Option<i64> {
        match self.0.get(name)? {
            ParamValue::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// A choice parameter, if set.
    pub fn choice(&self, name: &str) -> Option<&str> {
        match self.0.get(name)? {
            ParamValue::Choice(c) => Some(c),
            _ => None,
        }
    }

    /// A set parameter, if set.
    pub fn set(&self, name: &str) -> Option<&[String]> {
        match self.0.get(name)? {
            ParamValue::Set(s) => Some(s),
            _ => None,
        }
    }

    /// The `precision` parameter (default 2).
    pub fn precision(&self) -> u32 {
        self.integer("precision")
            .map_or(2, |p| p.clamp(0, 28) as u32)
    }

    /// The parameters by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ParamValue)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// Parses one parameter's text against its spec, returning the reason it is not acceptable.
pub(crate) fn parse_value(spec: &ParamSpec, text: &str) -> Result<ParamValue, String> {
    match spec.kind {
        ParamKind::Decimal { min, max } => {
            let value =
                Decimal::from_str(text).map_err(|_| format!("`{text}` is not a decimal number"))?;
            if !min.is_empty() && value < Decimal::from_str(min).expect("descriptor min") {
                return Err(format!("{value} is below the minimum {min}"));
            }
            if !max.is_empty() && value > Decimal::from_str(max).expect("descriptor max") {
                return Err(format!("{value} is above the maximum {max}"));
            }
            Ok(ParamValue::Decimal(value))
        }
        ParamKind::Integer { min, max } => {
            let value: i64 = text
                .parse()
                .map_err(|_| format!("`{text}` is not a whole number"))?;
            if value < min || value > max {
                return Err(format!("{value} is outside {min}..={max}"));
            }
            Ok(ParamValue::Integer(value))
        }
        ParamKind::Choice(choices) => choices
            .iter()
            .find(|c| **c == text)
            .map(|c| ParamValue::Choice((*c).to_owned()))
            .ok_or_else(|| format!("`{text}` is not one of {}", choices.join(", "))),
        ParamKind::Set(words) => {
            if text == "all" {
                return Ok(ParamValue::Set(
                    words.iter().map(|w| (*w).to_owned()).collect(),
                ));
            }
            let mut chosen = Vec::new();
            for part in text.split(',').map(str::trim) {
                match words.iter().find(|w| **w == part) {
                    Some(w) => {
                        if !chosen.iter().any(|c: &String| c == w) {
                            chosen.push((*w).to_owned());
                        }
                    }
                    None => {
                        return Err(format!(
                            "`{part}` is not one of {} (or `all`)",
                            words.join(", ")
                        ))
                    }
                }
            }
            Ok(ParamValue::Set(chosen))
        }
    }
}
