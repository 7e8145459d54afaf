//! `kpid metrics`: the metric catalogue from `MetricsService.ListMetrics`.

use std::process::ExitCode;

use clap::Args;
use kpi_proto::kpi::v1 as pb;
use kpi_proto::kpi::v1::metrics_service_client::MetricsServiceClient;
use serde_json::{json, Value};

use super::table::Table;
use super::{fail, print_status, OutputFormat, ServerAddr, EXIT_FAILURE};

/// `kpid metrics`.
#[derive(Debug, Args)]
pub(crate) struct MetricsArgs {
    #[command(flatten)]
    server: ServerAddr,
    /// Only the metrics of this family (`sales`, `marketing`, `success`, `revenue`…).
    #[arg(long)]
    family: Option<String>,
    /// Output format: an aligned table (id, unit, direction, formula), the JSON of the
    /// ListMetrics response, or CSV with every descriptor field.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
}

/// Runs `kpid metrics`.
pub(crate) async fn run(args: MetricsArgs) -> ExitCode {
    let channel = match args.server.connect().await {
        Ok(channel) => channel,
        Err(message) => return fail(message),
    };
    let request = pb::ListMetricsRequest {
        family: args.family.unwrap_or_default(),
    };
    let answer = match MetricsServiceClient::new(channel)
        .max_decoding_message_size(usize::MAX)
        .list_metrics(request)
        .await
    {
        Ok(answer) => answer.into_inner(),
        Err(status) => {
            print_status("list metrics", &status);
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    print!("{}", render(&answer.metrics, args.format));
    ExitCode::SUCCESS
}

/// The catalogue in `format`.
fn render(metrics: &[pb::MetricDescriptor], format: OutputFormat) -> String {
    match format {
        OutputFormat::Table => {
            let mut table = Table::new(["id", "unit", "direction", "formula"]);
            for m in metrics {
                table.push(vec![
                    m.id.clone(),
                    unit_name(m.unit),
                    direction_name(m.direction),
                    m.formula.clone(),
                ]);
            }
            table.aligned()
        }
        OutputFormat::Csv => {
            let mut table = Table::new([
                "id",
                "name",
                "family",
                "unit",
                "direction",
                "formula",
                "inputs",
                "params",
                "dimensions",
                "default_group_by",
                "description",
            ]);
            for m in metrics {
                table.push(vec![
                    m.id.clone(),
                    m.name.clone(),
                    m.family.clone(),
                    unit_name(m.unit),
                    direction_name(m.direction),
                    m.formula.clone(),
                    names(m.inputs.iter().map(|i| &i.name)),
                    names(m.params.iter().map(|p| &p.name)),
                    m.dimensions.join(";"),
                    m.default_group_by.join(";"),
                    m.description.clone(),
                ]);
            }
            table.csv()
        }
        OutputFormat::Json => {
            let document =
                json!({ "metrics": metrics.iter().map(descriptor_json).collect::<Vec<_>>() });
            format!("{document:#}\n")
        }
    }
}

fn names<'a>(names: impl Iterator<Item = &'a String>) -> String {
    names.map(String::as_str).collect::<Vec<_>>().join(";")
}

/// `UNIT_PERCENT` → `percent`.
fn unit_name(unit: i32) -> String {
    short_name(
        pb::Unit::try_from(unit).map(|u| u.as_str_name()),
        "UNIT_",
        unit,
    )
}

/// `DIRECTION_HIGHER_IS_BETTER` → `higher is better`.
fn direction_name(direction: i32) -> String {
    short_name(
        pb::Direction::try_from(direction).map(|d| d.as_str_name()),
        "DIRECTION_",
        direction,
    )
    .replace('_', " ")
}

fn short_name<E>(full: Result<&'static str, E>, prefix: &str, number: i32) -> String {
    match full {
        Ok(full) => full
            .strip_prefix(prefix)
            .unwrap_or(full)
            .to_ascii_lowercase(),
        Err(_) => number.to_string(),
    }
}

/// The full name of an enum value, or its number when this client does not know it.
fn enum_json<E>(full: Result<&'static str, E>, number: i32) -> Value {
    match full {
        Ok(name) => Value::from(name),
        Err(_) => Value::from(number),
    }
}

/// A descriptor in the proto3 JSON mapping, every field present.
fn descriptor_json(m: &pb::MetricDescriptor) -> Value {
    json!({
        "id": m.id,
        "name": m.name,
        "family": m.family,
        "description": m.description,
        "formula": m.formula,
        "unit": enum_json(pb::Unit::try_from(m.unit).map(|u| u.as_str_name()), m.unit),
        "direction": enum_json(pb::Direction::try_from(m.direction).map(|d| d.as_str_name()), m.direction),
        "inputs": m.inputs.iter().map(|i| json!({
            "name": i.name,
            "description": i.description,
            "kind": enum_json(pb::InputKind::try_from(i.kind).map(|k| k.as_str_name()), i.kind),
            "metricId": i.metric_id,
        })).collect::<Vec<_>>(),
        "params": m.params.iter().map(|p| json!({
            "name": p.name,
            "description": p.description,
            "defaultValue": p.default_value,
            "kind": enum_json(pb::ParamKind::try_from(p.kind).map(|k| k.as_str_name()), p.kind),
            "allowedValues": p.allowed_values,
            "min": p.min,
            "max": p.max,
        })).collect::<Vec<_>>(),
        "dimensions": m.dimensions,
        "defaultGroupBy": m.default_group_by,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn win_rate() -> pb::MetricDescriptor {
        pb::MetricDescriptor {
            id: "sales.win_rate".into(),
            name: "Win rate".into(),
            family: "sales".into(),
            description: "Share of closed deals that were won.".into(),
            formula: "won / (won + lost) × 100".into(),
            unit: pb::Unit::Percent as i32,
            direction: pb::Direction::HigherIsBetter as i32,
            inputs: vec![
                pb::InputDescriptor {
                    name: "won".into(),
                    kind: pb::InputKind::Count as i32,
                    ..Default::default()
                },
                pb::InputDescriptor {
                    name: "lost".into(),
                    kind: pb::InputKind::Count as i32,
                    ..Default::default()
                },
            ],
            params: vec![pb::ParamDescriptor {
                name: "precision".into(),
                default_value: "2".into(),
                kind: pb::ParamKind::Integer as i32,
                ..Default::default()
            }],
            dimensions: vec!["owner".into(), "campaign".into()],
            default_group_by: vec![],
        }
    }

    #[test]
    fn the_table_shows_id_unit_direction_and_formula() {
        assert_eq!(
            render(&[win_rate()], OutputFormat::Table),
            "ID              UNIT     DIRECTION         FORMULA\n\
             sales.win_rate  percent  higher is better  won / (won + lost) × 100\n"
        );
    }

    #[test]
    fn csv_carries_every_descriptor_field() {
        let text = render(&[win_rate()], OutputFormat::Csv);
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            "id,name,family,unit,direction,formula,inputs,params,dimensions,default_group_by,description"
        );
        assert_eq!(
            lines.next().unwrap(),
            "sales.win_rate,Win rate,sales,percent,higher is better,won / (won + lost) × 100,won;lost,precision,owner;campaign,,Share of closed deals that were won."
        );
    }

    #[test]
    fn json_is_the_proto_mapping() {
        let text = render(&[win_rate()], OutputFormat::Json);
        let value: Value = serde_json::from_str(&text).unwrap();
        let m = &value["metrics"][0];
        assert_eq!(m["id"], "sales.win_rate");
        assert_eq!(m["unit"], "UNIT_PERCENT");
        assert_eq!(m["direction"], "DIRECTION_HIGHER_IS_BETTER");
        assert_eq!(m["inputs"][1]["kind"], "INPUT_KIND_COUNT");
        assert_eq!(m["params"][0]["defaultValue"], "2");
        assert_eq!(m["dimensions"], json!(["owner", "campaign"]));
    }

    #[test]
    fn unknown_enum_numbers_print_as_numbers() {
        assert_eq!(unit_name(99), "99");
        assert_eq!(
            enum_json(pb::Unit::try_from(99).map(|u| u.as_str_name()), 99),
            json!(99)
        );
    }
}
