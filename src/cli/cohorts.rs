//! `kpid cohorts`: a cohort metric (`success.cohort_retention`,
//! `revenue.cohort_mrr_retention`) through `MetricsService.Compute`, printed as the
//! triangle: one line per cohort, one column per age (`Row.cohort_age`).

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use jiff::tz::TimeZone;
use kpi_proto::kpi::v1 as pb;
use kpi_proto::kpi::v1::metrics_service_client::MetricsServiceClient;

use super::compute::{self, Bucket, ComputeArgs};
use super::table::Table;
use super::{fail, key_value, print_status, OutputFormat, ServerAddr, EXIT_FAILURE};

/// `kpid cohorts`.
#[derive(Debug, Args)]
pub(crate) struct CohortsArgs {
    /// The cohort metric's id (`success.cohort_retention`, `revenue.cohort_mrr_retention`).
    #[arg(value_name = "METRIC")]
    metric: String,
    #[command(flatten)]
    server: ServerAddr,
    /// First instant of the window (RFC 3339, or a date read in --tz).
    #[arg(long, value_name = "TIME")]
    from: String,
    /// First instant after the window, written like --from.
    #[arg(long, value_name = "TIME")]
    to: String,
    /// The columns: one per bucket of this size after the cohort's period.
    #[arg(long, value_enum, default_value_t = Bucket::Month, value_name = "SIZE")]
    by: Bucket,
    /// The cohorts' period (param `cohort_granularity`).
    #[arg(long, value_enum, default_value_t = CohortPeriod::Month, value_name = "PERIOD")]
    cohort_by: CohortPeriod,
    /// IANA time zone buckets and cohorts are cut in; default: the tenant's.
    #[arg(long, value_name = "ZONE")]
    tz: Option<String>,
    /// Only records whose dimension has this value; repeatable.
    #[arg(long = "filter", value_name = "DIM=VALUE", value_parser = key_value)]
    filters: Vec<(String, String)>,
    /// A parameter of the metric (`precision=1`); repeatable.
    #[arg(long = "param", value_name = "K=V", value_parser = key_value)]
    params: Vec<(String, String)>,
    /// Output format: an aligned table or CSV (JSON: `kpid compute --format json`).
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
}

/// The period cohorts are cut by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CohortPeriod {
    /// Customers acquired in the same month.
    Month,
    /// … in the same (fiscal) quarter.
    Quarter,
    /// … in the same (fiscal) year.
    Year,
}

impl CohortPeriod {
    fn param(self) -> &'static str {
        match self {
            CohortPeriod::Month => "month",
            CohortPeriod::Quarter => "quarter",
            CohortPeriod::Year => "year",
        }
    }
}

impl CohortsArgs {
    /// The same request as `kpid compute`, grouped by cohort, by bucket.
    fn compute_args(&self) -> ComputeArgs {
        let mut params = self.params.clone();
        params.push(("cohort_granularity".into(), self.cohort_by.param().into()));
        ComputeArgs {
            metric: self.metric.clone(),
            server: self.server.clone(),
            from: Some(self.from.clone()),
            to: Some(self.to.clone()),
            by: Some(self.by),
            tz: self.tz.clone(),
            group_by: vec!["cohort".into()],
            filters: self.filters.clone(),
            params,
            inputs: Vec::new(),
            compare: None,
            format: self.format,
        }
    }
}

/// Runs `kpid cohorts`.
pub(crate) async fn run(args: CohortsArgs) -> ExitCode {
    let compute_args = args.compute_args();
    if let Err(message) = compute::request(&compute_args, &TimeZone::UTC) {
        return fail(message);
    }
    let channel = match compute_args.server.connect().await {
        Ok(channel) => channel,
        Err(message) => return fail(message),
    };
    let zone = match compute::zone(&compute_args, &channel).await {
        Ok(zone) => zone,
        Err(message) => return fail(message),
    };
    let request = match compute::request(&compute_args, &zone) {
        Ok(request) => request,
        Err(message) => return fail(message),
    };
    match MetricsServiceClient::new(channel)
        .max_decoding_message_size(usize::MAX)
        .compute(request)
        .await
    {
        Ok(answer) => {
            let table = triangle(&answer.into_inner().rows);
            match args.format {
                OutputFormat::Csv => print!("{}", table.csv()),
                _ => print!("{}", table.aligned()),
            }
            ExitCode::SUCCESS
        }
        Err(status) => {
            print_status(&format!("cohorts {}", args.metric), &status);
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// The rows as a triangle: a line per cohort (in label order), a column per age; an
/// undefined value reads `undefined`, a cell with no row stays empty.
fn triangle(rows: &[pb::Row]) -> Table {
    let mut cells: BTreeMap<&str, BTreeMap<i32, String>> = BTreeMap::new();
    let mut oldest = -1;
    for row in rows {
        let (Some(cohort), Some(age)) = (row.group.get("cohort"), row.cohort_age) else {
            continue;
        };
        oldest = oldest.max(age);
        let value = if row.value.is_empty() {
            "undefined".to_owned()
        } else {
            row.value.clone()
        };
        cells.entry(cohort.as_str()).or_default().insert(age, value);
    }
    let mut table =
        Table::new(std::iter::once("cohort".to_owned()).chain((0..=oldest).map(|a| a.to_string())));
    for (cohort, by_age) in cells {
        table.push(
            std::iter::once(cohort.to_owned())
                .chain((0..=oldest).map(|a| by_age.get(&a).cloned().unwrap_or_default()))
                .collect(),
        );
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cohort: &str, age: i32, value: &str) -> pb::Row {
        pb::Row {
            group: [("cohort".to_owned(), cohort.to_owned())].into(),
            cohort_age: Some(age),
            value: value.into(),
            ..Default::default()
        }
    }

    #[test]
    fn rows_become_a_triangle() {
        let rows = [
            row("2024-01", 0, "100"),
            row("2024-01", 1, "50"),
            row("2024-02", 0, "100"),
            row("2024-01", 2, "100"),
            row("2024-02", 1, "0"),
        ];
        assert_eq!(
            triangle(&rows).csv(),
            "cohort,0,1,2\n2024-01,100,50,100\n2024-02,100,0,\n"
        );
    }
}
