//! The gRPC methods this server answers, read from the services' descriptor sets: what
//! the observability layer names an RPC by (service, method, streaming type).

use std::collections::HashMap;
use std::sync::Arc;

use prost::Message as _;

use crate::prometheus::MethodSeries;

/// How a method streams, as the `grpc_type` label of go-grpc-prometheus names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum RpcType {
    /// One request, one response.
    Unary,
    /// A request stream, one response.
    ClientStream,
    /// One request, a response stream.
    ServerStream,
    /// Streams both ways.
    BidiStream,
}

impl RpcType {
    fn new(client_streaming: bool, server_streaming: bool) -> Self {
        match (client_streaming, server_streaming) {
            (false, false) => Self::Unary,
            (true, false) => Self::ClientStream,
            (false, true) => Self::ServerStream,
            (true, true) => Self::BidiStream,
        }
    }

    /// The label value: `unary`, `client_stream`, `server_stream` or `bidi_stream`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Unary => "unary",
            Self::ClientStream => "client_stream",
            Self::ServerStream => "server_stream",
            Self::BidiStream => "bidi_stream",
        }
    }
}

/// One method: `/{service}/{method}`.
#[derive(Debug)]
pub(crate) struct RpcMethod {
    /// The fully qualified service, `kpi.v1.MetricsService`.
    pub(crate) service: String,
    /// The method, `Compute`.
    pub(crate) method: String,
    /// How it streams.
    pub(crate) rpc_type: RpcType,
    /// Its Prometheus series, once counted.
    pub(crate) series: MethodSeries,
}

/// Every method of the served services by request path. A path that names no served
/// method is [`MethodTable::UNKNOWN`], so a caller cannot mint label values.
#[derive(Debug)]
pub(crate) struct MethodTable {
    by_path: HashMap<String, Arc<RpcMethod>>,
    unknown: Arc<RpcMethod>,
}

impl MethodTable {
    /// The service and method label of a path that names no served method.
    pub(crate) const UNKNOWN: &'static str = "unknown";

    /// The methods of every service in the encoded `FileDescriptorSet`s.
    pub(crate) fn from_descriptor_sets(sets: &[&[u8]]) -> Result<Self, prost::DecodeError> {
        let mut by_path = HashMap::new();
        for set in sets {
            let set = prost_types::FileDescriptorSet::decode(*set)?;
            for file in set.file {
                let package = file.package.unwrap_or_default();
                for service in file.service {
                    let name = service.name.unwrap_or_default();
                    let service_name = if package.is_empty() {
                        name
                    } else {
                        format!("{package}.{name}")
                    };
                    for method in service.method {
                        let method_name = method.name.unwrap_or_default();
                        let info = RpcMethod {
                            service: service_name.clone(),
                            method: method_name.clone(),
                            rpc_type: RpcType::new(
                                method.client_streaming.unwrap_or(false),
                                method.server_streaming.unwrap_or(false),
                            ),
                            series: MethodSeries::default(),
                        };
                        by_path.insert(format!("/{service_name}/{method_name}"), Arc::new(info));
                    }
                }
            }
        }
        Ok(Self {
            by_path,
            unknown: Arc::new(RpcMethod {
                service: Self::UNKNOWN.to_owned(),
                method: Self::UNKNOWN.to_owned(),
                rpc_type: RpcType::Unary,
                series: MethodSeries::default(),
            }),
        })
    }

    /// The method a request path calls.
    pub(crate) fn lookup(&self, path: &str) -> Arc<RpcMethod> {
        self.by_path.get(path).unwrap_or(&self.unknown).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> MethodTable {
        MethodTable::from_descriptor_sets(&[
            kpi_proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        ])
        .unwrap()
    }

    #[test]
    fn methods_carry_their_service_and_streaming_type() {
        let table = table();
        let compute = table.lookup("/kpi.v1.MetricsService/Compute");
        assert_eq!(compute.service, "kpi.v1.MetricsService");
        assert_eq!(compute.method, "Compute");
        assert_eq!(compute.rpc_type, RpcType::Unary);
        assert_eq!(
            table.lookup("/kpi.v1.RecordsService/Ingest").rpc_type,
            RpcType::ClientStream
        );
        assert_eq!(
            table.lookup("/grpc.health.v1.Health/Watch").rpc_type,
            RpcType::ServerStream
        );
        assert_eq!(
            table
                .lookup("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
                .rpc_type,
            RpcType::BidiStream
        );
    }

    #[test]
    fn unknown_paths_share_one_label() {
        let table = table();
        for path in ["/kpi.v1.MetricsService/Nope", "/", "/x/y/z"] {
            let m = table.lookup(path);
            assert_eq!(
                (m.service.as_str(), m.method.as_str()),
                ("unknown", "unknown")
            );
        }
        assert_eq!(RpcType::BidiStream.as_str(), "bidi_stream");
        assert_eq!(RpcType::ClientStream.as_str(), "client_stream");
    }
}
