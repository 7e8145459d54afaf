//! Renders the metric catalogue from the descriptors: the descriptors are the only source of
//! metric documentation (ListMetrics, the CLI table and `docs/metrics.md` all come from them).

use std::fmt::Write;

use crate::descriptor::{InputSource, ParamKind};
use crate::registry::Registry;

/// The whole catalogue as Markdown, one section per family and metric, sorted by id.
pub fn render_markdown(registry: &Registry) -> String {
    let mut out = String::from(
        "# kpid metric catalogue\n\n\
         Generated from the metric descriptors by `UPDATE_DOCS=1 cargo test --test docs`; \
         do not edit by hand.\n\n\
         Dimensions `attr.*` and `customer.*` stand for every custom attribute of the \
         records a metric counts (`attr.region`: the deal's for a win rate, the ticket's for \
         a resolution time) and of their customers (`customer.plan`). As a dimension value \
         an attribute is its text, its decimal normalized (`12.5`), `true` or `false`, or \
         its time in RFC 3339 (`2024-03-01T00:00:00Z`); a record without it has the value \
         `\"\"`, so the groups always add up to the ungrouped total, and the filter \
         `attr.region = \"\"` selects the records without a region.\n\n\
         Money inputs (amounts, MRR, spend, quotas) are in the tenant's base currency: an \
         amount sent in another currency is converted at the time of its own event with \
         the latest `fx_rate` on or before it (README, \"Currencies\"), so a row's inputs \
         are converted amounts. A value that would read an amount with no such rate is \
         undefined, its reason naming the currency and the date \
         (`no GBP rate on or before 2024-03-05`).\n",
    );
    let mut family = "";
    for metric in registry.metrics() {
        let d = metric.descriptor();
        if d.family != family {
            family = d.family;
            let _ = write!(out, "\n## {family}\n");
        }
        let _ = write!(
            out,
            "\n### `{}` — {}\n\n{}\n\n- formula: `{}`\n- unit: {}; {} is better\n",
            d.id,
            d.name,
            d.description,
            d.formula,
            d.unit.as_str(),
            d.direction.as_str()
        );
        if !d.inputs.is_empty() {
            out.push_str("- inputs:\n");
            for i in d.inputs {
                let from = match i.source {
                    InputSource::Stored(m) => format!("stored: {m:?}"),
                    InputSource::Metric(id) => format!("metric `{id}`"),
                    InputSource::Custom => "computed by the metric".to_owned(),
                };
                let _ = writeln!(out, "  - `{}`: {} ({from})", i.name, i.description);
            }
        }
        out.push_str("- params:\n");
        for p in d.all_params() {
            let default = if p.default.is_empty() {
                "unset"
            } else {
                p.default
            };
            let accepts = match p.kind {
                ParamKind::Decimal { min, max } => format!(
                    "decimal{}{}",
                    if min.is_empty() {
                        String::new()
                    } else {
                        format!(" ≥ {min}")
                    },
                    if max.is_empty() {
                        String::new()
                    } else {
                        format!(" ≤ {max}")
                    }
                ),
                ParamKind::Integer { min, max } => format!("integer {min}..={max}"),
                ParamKind::Choice(c) => format!("one of {}", c.join(", ")),
                ParamKind::Set(s) => format!("any of {} (comma-separated) or all", s.join(", ")),
            };
            let _ = writeln!(
                out,
                "  - `{}`: {} ({accepts}; default {default})",
                p.name, p.description
            );
        }
        if !d.dimensions.is_empty() {
            let dims: Vec<_> = d.dimensions.iter().map(|x| x.name()).collect();
            let _ = writeln!(out, "- dimensions: {}", dims.join(", "));
        }
        if !d.default_group_by.is_empty() {
            let dims: Vec<_> = d.default_group_by.iter().map(|x| x.name()).collect();
            let _ = writeln!(out, "- grouped by default by: {}", dims.join(", "));
        }
    }
    out
}
