//! A small kpid client: lists the metrics the server computes, then computes the win rate
//! in calculator mode (30 won, 70 lost → 30 %).
//!
//! ```sh
//! cargo run -- serve &                          # kpid on 127.0.0.1:50051
//! cargo run --example rust_client -- --addr http://127.0.0.1:50051
//! ```

use clap::Parser;
use kpi_proto::kpi::v1::metrics_service_client::MetricsServiceClient;
use kpi_proto::kpi::v1::{ComputeRequest, ListMetricsRequest};

/// Lists kpid's metrics and computes a win rate from explicit inputs.
#[derive(Debug, Parser)]
struct Args {
    /// kpid's address.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// Only list metrics of this family (sales, marketing, success, revenue).
    #[arg(long, default_value = "")]
    family: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let addr = if args.addr.contains("://") {
        args.addr
    } else {
        format!("http://{}", args.addr)
    };
    let mut client = MetricsServiceClient::connect(addr).await?;

    let catalogue = client
        .list_metrics(ListMetricsRequest {
            family: args.family,
        })
        .await?
        .into_inner();
    println!("{} metrics:", catalogue.metrics.len());
    for metric in &catalogue.metrics {
        println!(
            "  {:<34} {:<9} {}",
            metric.id,
            metric
                .unit()
                .as_str_name()
                .trim_start_matches("UNIT_")
                .to_lowercase(),
            metric.formula
        );
    }

    let answer = client
        .compute(ComputeRequest {
            metric_id: "sales.win_rate".into(),
            inputs: [("won".into(), "30".into()), ("lost".into(), "70".into())].into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    for row in answer.rows {
        let inputs: Vec<String> = row.inputs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if row.value.is_empty() {
            println!("sales.win_rate is undefined: {}", row.undefined_reason);
        } else {
            println!(
                "sales.win_rate = {} % (from {})",
                row.value,
                inputs.join(", ")
            );
        }
    }
    Ok(())
}
