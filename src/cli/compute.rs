//! `kpid compute`: one metric through `MetricsService.Compute`, printed as a table, JSON
//! or CSV.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use jiff::civil;
use jiff::tz::TimeZone;
use kpi_proto::kpi::v1 as pb;
use kpi_proto::kpi::v1::metrics_service_client::MetricsServiceClient;
use kpi_proto::kpi::v1::tenant_service_client::TenantServiceClient;
use serde_json::{json, Value};

use super::table::Table;
use super::{
    fail, key_value, print_status, timestamp_proto, timestamp_text, Connection, OutputFormat,
    ServerAddr, EXIT_FAILURE,
};

/// `kpid compute`.
#[derive(Debug, Args)]
pub(crate) struct ComputeArgs {
    /// The metric's id (`sales.win_rate`; `kpid metrics` lists them).
    #[arg(value_name = "METRIC")]
    pub(super) metric: String,
    #[command(flatten)]
    pub(super) server: ServerAddr,
    /// First instant of the window: RFC 3339 (`2024-01-01T00:00:00Z`), or a date or
    /// date-time without offset (`2024-01-01`), read in --tz. Without --from and --to the
    /// metric is computed from --input values alone (calculator mode).
    #[arg(long, requires = "to", value_name = "TIME")]
    pub(super) from: Option<String>,
    /// First instant after the window, written like --from.
    #[arg(long, requires = "from", value_name = "TIME")]
    pub(super) to: Option<String>,
    /// One row per calendar bucket of this size.
    #[arg(long, value_enum, value_name = "SIZE")]
    pub(super) by: Option<Bucket>,
    /// IANA time zone the buckets and the dates in --from/--to are cut in; default: the
    /// tenant's time zone (TenantService settings, UTC unless set).
    #[arg(long, value_name = "ZONE")]
    pub(super) tz: Option<String>,
    /// Group by this dimension (owner, source, campaign, channel, segment, stage, agent);
    /// repeat for several; `none` for one row even where the metric groups by default.
    #[arg(long = "group", value_name = "DIM")]
    pub(super) group_by: Vec<String>,
    /// Only records whose dimension has this value; repeatable.
    #[arg(long = "filter", value_name = "DIM=VALUE", value_parser = key_value)]
    pub(super) filters: Vec<(String, String)>,
    /// A parameter of the metric (`scale=5`, `precision=4`); repeatable.
    #[arg(long = "param", value_name = "K=V", value_parser = key_value)]
    pub(super) params: Vec<(String, String)>,
    /// An explicit input, a decimal (`spend=10000`); replaces the stored value; repeatable.
    #[arg(long = "input", value_name = "K=V", value_parser = key_value)]
    pub(super) inputs: Vec<(String, String)>,
    /// Compare each row with the previous period (the bucket before, or the window before)
    /// or with the same dates a year earlier: adds the previous value, the change, the
    /// change in percent and the trend. Needs --from and --to.
    #[arg(long, value_enum, value_name = "PERIOD")]
    pub(super) compare: Option<CompareWith>,
    /// Output format: an aligned table, the JSON of the Compute response, or CSV.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub(super) format: OutputFormat,
}

/// The period each row is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CompareWith {
    /// The bucket (or window) just before.
    PreviousPeriod,
    /// The same dates one year earlier.
    PreviousYear,
}

impl CompareWith {
    fn comparison(self) -> pb::Comparison {
        match self {
            CompareWith::PreviousPeriod => pb::Comparison::PreviousPeriod,
            CompareWith::PreviousYear => pb::Comparison::PreviousYear,
        }
    }
}

/// A time-series bucket size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Bucket {
    /// One calendar day.
    Day,
    /// Seven days from the tenant's week start (Monday unless set).
    Week,
    /// One calendar month.
    Month,
    /// A quarter of the tenant's fiscal year (a calendar quarter unless set).
    Quarter,
    /// The tenant's fiscal year (the calendar year unless set).
    Year,
}

impl Bucket {
    fn granularity(self) -> pb::Granularity {
        match self {
            Bucket::Day => pb::Granularity::Day,
            Bucket::Week => pb::Granularity::Week,
            Bucket::Month => pb::Granularity::Month,
            Bucket::Quarter => pb::Granularity::Quarter,
            Bucket::Year => pb::Granularity::Year,
        }
    }

    /// How a bucket starting at `start` (local time) reads in a table.
    fn label(self, start: civil::DateTime) -> String {
        match self {
            Bucket::Day | Bucket::Week => start.date().to_string(),
            Bucket::Month => format!("{:04}-{:02}", start.year(), start.month()),
            Bucket::Quarter => format!("{:04}-Q{}", start.year(), (start.month() - 1) / 3 + 1),
            Bucket::Year => format!("{:04}", start.year()),
        }
    }
}

/// Runs `kpid compute`.
pub(crate) async fn run(args: ComputeArgs) -> ExitCode {
    // Bad flags are refused before any call.
    if let Err(message) = request(&args, &TimeZone::UTC) {
        return fail(message);
    }
    let channel = match args.server.connect().await {
        Ok(channel) => channel,
        Err(message) => return fail(message),
    };
    let zone = match zone(&args, &channel).await {
        Ok(zone) => zone,
        Err(message) => return fail(message),
    };
    let request = match request(&args, &zone) {
        Ok(request) => request,
        Err(message) => return fail(message),
    };
    let answer = match MetricsServiceClient::new(channel)
        .max_decoding_message_size(usize::MAX)
        .compute(request)
        .await
    {
        Ok(answer) => answer.into_inner(),
        Err(status) => {
            print_status(&format!("compute {}", args.metric), &status);
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let labels = Labels {
        bucket: args.by,
        zone,
    };
    print!("{}", render(&answer.rows, args.format, &labels));
    ExitCode::SUCCESS
}

/// The zone dates and buckets are read in: --tz, else the tenant's default time zone,
/// asked of the server only when a civil date or a bucket needs it (UTC otherwise).
pub(super) async fn zone(args: &ComputeArgs, channel: &Connection) -> Result<TimeZone, String> {
    if let Some(name) = &args.tz {
        return TimeZone::get(name).map_err(|e| format!("--tz: {e}"));
    }
    let civil_dates = [&args.from, &args.to]
        .into_iter()
        .flatten()
        .any(|text| text.parse::<jiff::Timestamp>().is_err());
    if !civil_dates && args.by.is_none() {
        return Ok(TimeZone::UTC);
    }
    let settings = TenantServiceClient::new(channel.clone())
        .get_settings(pb::GetSettingsRequest::default())
        .await
        .map_err(|status| {
            format!(
                "reading the tenant's time zone (give --tz to skip it): {}",
                status.message()
            )
        })?
        .into_inner()
        .settings
        .unwrap_or_default();
    match settings.time_zone.as_str() {
        "" => Ok(TimeZone::UTC),
        name => TimeZone::get(name).map_err(|e| format!("the tenant's time zone: {e}")),
    }
}

/// The Compute request the flags ask for; `default_zone` reads dates when --tz is not given.
pub(super) fn request(
    args: &ComputeArgs,
    default_zone: &TimeZone,
) -> Result<pb::ComputeRequest, String> {
    let zone = || match args.tz.as_deref() {
        None => Ok(default_zone.clone()),
        Some(name) => TimeZone::get(name).map_err(|e| format!("--tz: {e}")),
    };
    let start = args
        .from
        .as_deref()
        .map(|text| parse_instant(text, zone).map_err(|e| format!("--from: {e}")))
        .transpose()?;
    let end = args
        .to
        .as_deref()
        .map(|text| parse_instant(text, zone).map_err(|e| format!("--to: {e}")))
        .transpose()?;
    Ok(pb::ComputeRequest {
        metric_id: args.metric.clone(),
        start: start.map(timestamp_proto),
        end: end.map(timestamp_proto),
        granularity: args
            .by
            .map_or(pb::Granularity::Unspecified, Bucket::granularity) as i32,
        time_zone: args.tz.clone().unwrap_or_default(),
        group_by: args.group_by.clone(),
        filters: unique("--filter", &args.filters)?,
        params: unique("--param", &args.params)?,
        inputs: unique("--input", &args.inputs)?,
        compare: args
            .compare
            .map_or(pb::Comparison::Unspecified, CompareWith::comparison) as i32,
        min_sequence: 0,
    })
}

/// An instant from RFC 3339, or from a civil date or date-time read in the zone.
fn parse_instant(
    text: &str,
    zone: impl Fn() -> Result<TimeZone, String>,
) -> Result<jiff::Timestamp, String> {
    if let Ok(instant) = text.parse::<jiff::Timestamp>() {
        return Ok(instant);
    }
    let civil = text
        .parse::<civil::DateTime>()
        .or_else(|_| {
            text.parse::<civil::Date>()
                .map(|date| date.to_datetime(civil::Time::midnight()))
        })
        .map_err(|_| {
            format!(
                "`{text}` is not an RFC 3339 time (2024-01-01T00:00:00Z) or a date (2024-01-01)"
            )
        })?;
    civil
        .to_zoned(zone()?)
        .map(|zoned| zoned.timestamp())
        .map_err(|e| format!("`{text}`: {e}"))
}

/// `KEY=VALUE` flags as a map; a key given twice is an error.
fn unique(flag: &str, pairs: &[(String, String)]) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    for (key, value) in pairs {
        if map.insert(key.clone(), value.clone()).is_some() {
            return Err(format!("{flag} {key} is given twice"));
        }
    }
    Ok(map)
}

/// How bucket starts read in a table.
#[derive(Debug, Clone)]
struct Labels {
    bucket: Option<Bucket>,
    zone: TimeZone,
}

impl Labels {
    /// A row's bucket: quarters and years as the server names them in the tenant's fiscal
    /// calendar (`FY2025 Q1`), other buckets by their local start.
    fn row_bucket(&self, row: &pb::Row) -> String {
        let fiscal = matches!(self.bucket, Some(Bucket::Quarter | Bucket::Year));
        if fiscal && !row.bucket_label.is_empty() {
            return row.bucket_label.clone();
        }
        row.bucket_start
            .as_ref()
            .map(|b| self.bucket(b))
            .unwrap_or_default()
    }

    fn bucket(&self, start: &prost_types::Timestamp) -> String {
        let local = jiff::Timestamp::new(start.seconds, start.nanos)
            .ok()
            .map(|t| t.to_zoned(self.zone.clone()).datetime());
        match (self.bucket, local) {
            (Some(bucket), Some(local)) => bucket.label(local),
            _ => timestamp_text(start),
        }
    }
}

/// `k=v, k=v`.
fn pairs(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether the row was compared with a previous period (its previous value, or the reason
/// it is undefined, is set).
fn is_compared(row: &pb::Row) -> bool {
    !row.previous_value.is_empty() || !row.previous_undefined_reason.is_empty()
}

/// A value or `undefined (reason)`.
fn value_cell(value: &str, undefined_reason: &str) -> String {
    if value.is_empty() {
        format!("undefined ({undefined_reason})")
    } else {
        value.to_owned()
    }
}

/// A change with its sign (`+8.33`, `-100`, `0`), or `—` when there is none.
fn signed(change: &str, suffix: &str) -> String {
    match change {
        "" => "—".to_owned(),
        "0" => format!("0{suffix}"),
        c if c.starts_with('-') => format!("{c}{suffix}"),
        c => format!("+{c}{suffix}"),
    }
}

/// The table's change-in-percent cell: signed, or why it is undefined when both values are
/// defined (a previous value of 0); `—` when a value is undefined (its column says why).
fn change_pct_cell(row: &pb::Row) -> String {
    if row.change_pct.is_empty() && !row.change.is_empty() {
        format!("undefined ({})", row.change_pct_undefined_reason)
    } else {
        signed(&row.change_pct, "%")
    }
}

/// The trend in a word.
fn trend_word(trend: i32) -> &'static str {
    match pb::Trend::try_from(trend) {
        Ok(pb::Trend::Improved) => "improved",
        Ok(pb::Trend::Worsened) => "worsened",
        Ok(pb::Trend::Unchanged) => "unchanged",
        _ => "—",
    }
}

/// The rows in `format`; compared rows add the previous value, the change and the trend.
fn render(rows: &[pb::Row], format: OutputFormat, labels: &Labels) -> String {
    let compared = rows.iter().any(is_compared);
    match format {
        OutputFormat::Table => {
            if rows.is_empty() {
                return "(no rows: nothing matched, or every group's inputs were zero)\n"
                    .to_owned();
            }
            let with_bucket = rows.iter().any(|r| r.bucket_start.is_some());
            let with_group = rows.iter().any(|r| !r.group.is_empty());
            let mut header = Vec::new();
            if with_bucket {
                header.push("bucket");
            }
            if with_group {
                header.push("group");
            }
            header.push("value");
            if compared {
                header.extend(["previous", "change", "change %", "trend"]);
            }
            header.push("inputs");
            let mut table = Table::new(header);
            for row in rows {
                let mut cells = Vec::new();
                if with_bucket {
                    cells.push(labels.row_bucket(row));
                }
                if with_group {
                    cells.push(pairs(&row.group));
                }
                cells.push(value_cell(&row.value, &row.undefined_reason));
                if compared {
                    cells.push(value_cell(
                        &row.previous_value,
                        &row.previous_undefined_reason,
                    ));
                    cells.push(signed(&row.change, ""));
                    cells.push(change_pct_cell(row));
                    cells.push(trend_word(row.trend).to_owned());
                }
                cells.push(pairs(&row.inputs));
                table.push(cells);
            }
            table.aligned()
        }
        OutputFormat::Csv => {
            let dimensions: Vec<&String> = union(rows.iter().map(|r| &r.group));
            let inputs: Vec<&String> = union(rows.iter().map(|r| &r.inputs));
            let previous_inputs: Vec<&String> = union(rows.iter().map(|r| &r.previous_inputs));
            let mut header: Vec<String> = vec!["bucket_start".into()];
            header.extend(dimensions.iter().map(|d| d.to_string()));
            header.extend(["value".into(), "undefined_reason".into()]);
            if compared {
                header.extend(
                    [
                        "previous_value",
                        "previous_undefined_reason",
                        "change",
                        "change_pct",
                        "change_pct_undefined_reason",
                        "trend",
                    ]
                    .map(String::from),
                );
            }
            header.extend(inputs.iter().map(|i| i.to_string()));
            header.extend(previous_inputs.iter().map(|i| format!("previous.{i}")));
            let mut table = Table::new(header);
            for row in rows {
                let mut cells = vec![row
                    .bucket_start
                    .as_ref()
                    .map(timestamp_text)
                    .unwrap_or_default()];
                cells.extend(
                    dimensions
                        .iter()
                        .map(|d| row.group.get(*d).cloned().unwrap_or_default()),
                );
                cells.extend([row.value.clone(), row.undefined_reason.clone()]);
                if compared {
                    cells.extend([
                        row.previous_value.clone(),
                        row.previous_undefined_reason.clone(),
                        row.change.clone(),
                        row.change_pct.clone(),
                        row.change_pct_undefined_reason.clone(),
                        trend_name(row.trend),
                    ]);
                }
                cells.extend(
                    inputs
                        .iter()
                        .map(|i| row.inputs.get(*i).cloned().unwrap_or_default()),
                );
                cells.extend(
                    previous_inputs
                        .iter()
                        .map(|i| row.previous_inputs.get(*i).cloned().unwrap_or_default()),
                );
                table.push(cells);
            }
            table.csv()
        }
        OutputFormat::Json => {
            let rows: Vec<Value> = rows
                .iter()
                .map(|row| {
                    let mut object = json!({
                        "group": row.group,
                        "value": row.value,
                        "undefinedReason": row.undefined_reason,
                        "inputs": row.inputs,
                    });
                    if let Some(start) = &row.bucket_start {
                        object["bucketStart"] = Value::from(timestamp_text(start));
                    }
                    if compared {
                        object["previousValue"] = Value::from(row.previous_value.as_str());
                        object["previousUndefinedReason"] =
                            Value::from(row.previous_undefined_reason.as_str());
                        object["previousInputs"] = json!(row.previous_inputs);
                        object["change"] = Value::from(row.change.as_str());
                        object["changePct"] = Value::from(row.change_pct.as_str());
                        object["changePctUndefinedReason"] =
                            Value::from(row.change_pct_undefined_reason.as_str());
                        object["trend"] = Value::from(trend_name(row.trend));
                    }
                    object
                })
                .collect();
            format!("{:#}\n", json!({ "rows": rows }))
        }
    }
}

/// The trend's proto enum name (`TREND_IMPROVED`), as the proto3 JSON mapping writes it.
fn trend_name(trend: i32) -> String {
    pb::Trend::try_from(trend)
        .unwrap_or(pb::Trend::Unspecified)
        .as_str_name()
        .to_owned()
}

/// Every key of the maps, sorted.
fn union<'a>(maps: impl Iterator<Item = &'a BTreeMap<String, String>>) -> Vec<&'a String> {
    let mut keys: Vec<&String> = maps.flat_map(|m| m.keys()).collect();
    keys.sort();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: ComputeArgs,
    }

    fn parse(argv: &[&str]) -> Result<ComputeArgs, clap::Error> {
        Wrapper::try_parse_from(std::iter::once("compute").chain(argv.iter().copied()))
            .map(|w| w.args)
    }

    fn ts(text: &str) -> prost_types::Timestamp {
        timestamp_proto(text.parse().unwrap())
    }

    fn utc(bucket: Option<Bucket>) -> Labels {
        Labels {
            bucket,
            zone: TimeZone::UTC,
        }
    }

    #[test]
    fn calculator_mode_request() {
        let args = parse(&[
            "marketing.cac",
            "--input",
            "spend=10000",
            "--input",
            "new_customers=10",
        ])
        .unwrap();
        let request = request(&args, &TimeZone::UTC).unwrap();
        assert_eq!(request.metric_id, "marketing.cac");
        assert_eq!(request.start, None);
        assert_eq!(request.granularity, 0);
        assert_eq!(request.inputs["spend"], "10000");
        assert_eq!(request.inputs["new_customers"], "10");
    }

    #[test]
    fn window_request() {
        let args = parse(&[
            "sales.win_rate",
            "--from",
            "2024-01-01",
            "--to",
            "2024-04-01T00:00:00+02:00",
            "--by",
            "month",
            "--tz",
            "Europe/Paris",
            "--group",
            "owner",
            "--filter",
            "owner=ann",
            "--param",
            "precision=4",
        ])
        .unwrap();
        let request = request(&args, &TimeZone::UTC).unwrap();
        assert_eq!(request.start, Some(ts("2023-12-31T23:00:00Z")));
        assert_eq!(request.end, Some(ts("2024-03-31T22:00:00Z")));
        assert_eq!(request.granularity, pb::Granularity::Month as i32);
        assert_eq!(request.time_zone, "Europe/Paris");
        assert_eq!(request.group_by, ["owner"]);
        assert_eq!(request.filters["owner"], "ann");
        assert_eq!(request.params["precision"], "4");
    }

    #[test]
    fn dates_without_tz_are_read_in_the_tenants_zone() {
        let args = parse(&["m", "--from", "2024-01-01", "--to", "2024-07-01T00:00:00Z"]).unwrap();
        let paris = TimeZone::get("Europe/Paris").unwrap();
        let request = request(&args, &paris).unwrap();
        assert_eq!(request.start, Some(ts("2023-12-31T23:00:00Z")));
        assert_eq!(request.end, Some(ts("2024-07-01T00:00:00Z")));
        // The server applies the tenant's zone to the buckets itself.
        assert_eq!(request.time_zone, "");
    }

    #[test]
    fn bad_flags_are_refused_before_any_call() {
        assert!(
            parse(&["m", "--from", "2024-01-01"]).is_err(),
            "--from needs --to"
        );
        assert!(parse(&["m", "--input", "spend"]).is_err());
        let args = parse(&["m", "--input", "a=1", "--input", "a=2"]).unwrap();
        assert_eq!(
            request(&args, &TimeZone::UTC).unwrap_err(),
            "--input a is given twice"
        );
        let args = parse(&["m", "--from", "soon", "--to", "2024-01-01"]).unwrap();
        assert!(request(&args, &TimeZone::UTC)
            .unwrap_err()
            .starts_with("--from: `soon` is not an RFC 3339 time"));
        let args = parse(&[
            "m",
            "--from",
            "2024-01-01",
            "--to",
            "2024-02-01",
            "--tz",
            "Mars/Olympus",
        ])
        .unwrap();
        assert!(request(&args, &TimeZone::UTC)
            .unwrap_err()
            .starts_with("--from: --tz:"));
    }

    fn rows() -> Vec<pb::Row> {
        vec![
            pb::Row {
                bucket_start: Some(ts("2024-01-01T00:00:00Z")),
                group: [("owner".to_owned(), "ann".to_owned())].into(),
                value: "75".into(),
                undefined_reason: String::new(),
                inputs: [
                    ("lost".to_owned(), "1".to_owned()),
                    ("won".to_owned(), "3".to_owned()),
                ]
                .into(),
                ..Default::default()
            },
            pb::Row {
                bucket_start: Some(ts("2024-04-01T00:00:00Z")),
                group: [("owner".to_owned(), "bob".to_owned())].into(),
                value: String::new(),
                undefined_reason: "no deals were closed (won + lost = 0)".into(),
                inputs: [
                    ("lost".to_owned(), "0".to_owned()),
                    ("won".to_owned(), "0".to_owned()),
                ]
                .into(),
                ..Default::default()
            },
        ]
    }

    /// Win rates by month compared with the month before: 75 after 66.67; 100 after no
    /// deals at all; 0 after 0.
    fn compared_rows() -> Vec<pb::Row> {
        let won = |n: &str| [("won".to_owned(), n.to_owned())].into();
        vec![
            pb::Row {
                bucket_start: Some(ts("2024-03-01T00:00:00Z")),
                value: "75".into(),
                inputs: won("3"),
                previous_value: "66.67".into(),
                previous_inputs: won("2"),
                change: "8.33".into(),
                change_pct: "12.49".into(),
                trend: pb::Trend::Improved.into(),
                ..Default::default()
            },
            pb::Row {
                bucket_start: Some(ts("2024-04-01T00:00:00Z")),
                value: "100".into(),
                inputs: won("1"),
                previous_undefined_reason: "no deals".into(),
                previous_inputs: won("0"),
                change_pct_undefined_reason: "the previous value is undefined (no deals)".into(),
                ..Default::default()
            },
            pb::Row {
                bucket_start: Some(ts("2024-05-01T00:00:00Z")),
                value: "0".into(),
                inputs: won("0"),
                previous_value: "0".into(),
                previous_inputs: won("0"),
                change: "0".into(),
                change_pct_undefined_reason: "the previous value is 0".into(),
                trend: pb::Trend::Unchanged.into(),
                ..Default::default()
            },
        ]
    }

    #[test]
    fn compare_flag_sets_the_request_field() {
        let args = parse(&[
            "sales.win_rate",
            "--from",
            "2024-01-01",
            "--to",
            "2024-04-01",
            "--compare",
            "previous-year",
        ])
        .unwrap();
        assert_eq!(
            request(&args, &TimeZone::UTC).unwrap().compare,
            pb::Comparison::PreviousYear as i32
        );
        let args = parse(&["sales.win_rate", "--compare", "previous-period"]).unwrap();
        assert_eq!(
            request(&args, &TimeZone::UTC).unwrap().compare,
            pb::Comparison::PreviousPeriod as i32
        );
        let args = parse(&["sales.win_rate"]).unwrap();
        assert_eq!(request(&args, &TimeZone::UTC).unwrap().compare, 0);
        assert!(parse(&["m", "--compare", "last-week"]).is_err());
    }

    #[test]
    fn compared_table_shows_previous_change_and_trend() {
        assert_eq!(
            render(
                &compared_rows(),
                OutputFormat::Table,
                &utc(Some(Bucket::Month))
            ),
            "BUCKET   VALUE  PREVIOUS              CHANGE  CHANGE %                             TREND      INPUTS\n\
             2024-03  75     66.67                 +8.33   +12.49%                              improved   won=3\n\
             2024-04  100    undefined (no deals)  —       —                                    —          won=1\n\
             2024-05  0      0                     0       undefined (the previous value is 0)  unchanged  won=0\n"
        );
    }

    #[test]
    fn compared_csv_and_json_carry_every_comparison_field() {
        let csv = render(&compared_rows(), OutputFormat::Csv, &utc(None));
        let mut lines = csv.lines();
        assert_eq!(
            lines.next().unwrap(),
            "bucket_start,value,undefined_reason,previous_value,previous_undefined_reason,\
             change,change_pct,change_pct_undefined_reason,trend,won,previous.won"
        );
        assert_eq!(
            lines.next().unwrap(),
            "2024-03-01T00:00:00Z,75,,66.67,,8.33,12.49,,TREND_IMPROVED,3,2"
        );
        let text = render(&compared_rows(), OutputFormat::Json, &utc(None));
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["rows"][0]["previousValue"], "66.67");
        assert_eq!(value["rows"][0]["previousInputs"]["won"], "2");
        assert_eq!(value["rows"][0]["changePct"], "12.49");
        assert_eq!(value["rows"][0]["trend"], "TREND_IMPROVED");
        assert_eq!(value["rows"][1]["previousUndefinedReason"], "no deals");
        assert_eq!(value["rows"][1]["trend"], "TREND_UNSPECIFIED");
        // Without a comparison the rows keep their shape.
        let value: Value =
            serde_json::from_str(&render(&rows(), OutputFormat::Json, &utc(None))).unwrap();
        assert!(value["rows"][0].get("previousValue").is_none());
    }

    #[test]
    fn table_rows() {
        assert_eq!(
            render(&rows(), OutputFormat::Table, &utc(Some(Bucket::Quarter))),
            "BUCKET   GROUP      VALUE                                              INPUTS\n\
             2024-Q1  owner=ann  75                                                 lost=1, won=3\n\
             2024-Q2  owner=bob  undefined (no deals were closed (won + lost = 0))  lost=0, won=0\n"
        );
        let calculator = vec![pb::Row {
            value: "1000".into(),
            inputs: [("spend".to_owned(), "10000".to_owned())].into(),
            ..Default::default()
        }];
        assert_eq!(
            render(&calculator, OutputFormat::Table, &utc(None)),
            "VALUE  INPUTS\n1000   spend=10000\n"
        );
        assert!(render(&[], OutputFormat::Table, &utc(None)).starts_with("(no rows"));
    }

    #[test]
    fn bucket_labels_follow_the_size_and_zone() {
        let start = ts("2023-12-31T23:00:00Z");
        let paris = Labels {
            bucket: Some(Bucket::Month),
            zone: TimeZone::get("Europe/Paris").unwrap(),
        };
        assert_eq!(paris.bucket(&start), "2024-01");
        assert_eq!(utc(Some(Bucket::Day)).bucket(&start), "2023-12-31");
        assert_eq!(utc(Some(Bucket::Year)).bucket(&start), "2023");
        assert_eq!(utc(None).bucket(&start), "2023-12-31T23:00:00Z");
    }

    #[test]
    fn csv_rows_have_a_column_per_dimension_and_input() {
        assert_eq!(
            render(&rows(), OutputFormat::Csv, &utc(Some(Bucket::Quarter))),
            "bucket_start,owner,value,undefined_reason,lost,won\n\
             2024-01-01T00:00:00Z,ann,75,,1,3\n\
             2024-04-01T00:00:00Z,bob,,no deals were closed (won + lost = 0),0,0\n"
        );
    }

    #[test]
    fn json_rows_use_the_proto_field_names() {
        let text = render(&rows(), OutputFormat::Json, &utc(None));
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["rows"][0]["bucketStart"], "2024-01-01T00:00:00Z");
        assert_eq!(value["rows"][0]["value"], "75");
        assert_eq!(value["rows"][0]["inputs"]["won"], "3");
        assert_eq!(
            value["rows"][1]["undefinedReason"],
            "no deals were closed (won + lost = 0)"
        );
        let calculator = vec![pb::Row::default()];
        let value: Value =
            serde_json::from_str(&render(&calculator, OutputFormat::Json, &utc(None))).unwrap();
        assert!(value["rows"][0].get("bucketStart").is_none());
    }
}
