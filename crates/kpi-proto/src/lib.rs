//! Rust code generated from kpid's public protobuf contract, package `kpi.v1`
//! (`proto/kpi/v1/*.proto`): messages, enums, tonic clients and servers.
//!
//! ```no_run
//! use kpi_proto::kpi::v1::metrics_service_client::MetricsServiceClient;
//! use kpi_proto::kpi::v1::ComputeRequest;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut client = MetricsServiceClient::connect("http://127.0.0.1:50051").await?;
//! let answer = client
//!     .compute(ComputeRequest {
//!         metric_id: "sales.win_rate".into(),
//!         inputs: [("won".into(), "30".into()), ("lost".into(), "70".into())].into(),
//!         ..Default::default()
//!     })
//!     .await?
//!     .into_inner();
//! assert_eq!(answer.rows[0].value, "30");
//! # Ok(())
//! # }
//! ```

/// The `kpi` protobuf packages.
pub mod kpi {
    /// Package `kpi.v1`: the metrics and records services and their messages.
    pub mod v1 {
        tonic::include_proto!("kpi.v1");
    }
}

/// The encoded `google.protobuf.FileDescriptorSet` of `kpi.v1` with its imports
/// (`google/protobuf/timestamp.proto`) and comments, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/kpi_v1_descriptor.bin"));

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    #[test]
    fn descriptor_set_holds_every_service_and_their_imports() {
        let set = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).unwrap();
        let names: Vec<_> = set.file.iter().map(|f| f.name()).collect();
        assert!(names.contains(&"kpi/v1/metrics.proto"), "{names:?}");
        assert!(names.contains(&"kpi/v1/records.proto"), "{names:?}");
        assert!(names.contains(&"kpi/v1/tenant.proto"), "{names:?}");
        assert!(
            names.contains(&"google/protobuf/timestamp.proto"),
            "{names:?}"
        );
        let services: Vec<_> = set
            .file
            .iter()
            .flat_map(|f| f.service.iter().map(|s| s.name()))
            .collect();
        assert_eq!(
            services,
            ["MetricsService", "RecordsService", "TenantService"]
        );
    }

    #[test]
    fn enum_values_carry_their_type_prefix() {
        use kpi::v1::{DealStatus, Granularity, Source};
        assert_eq!(DealStatus::Won.as_str_name(), "DEAL_STATUS_WON");
        assert_eq!(Source::Marketing.as_str_name(), "SOURCE_MARKETING");
        assert_eq!(Granularity::Month.as_str_name(), "GRANULARITY_MONTH");
        assert_eq!(Granularity::default(), Granularity::Unspecified);
    }
}
