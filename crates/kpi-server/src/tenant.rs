//! `kpi.v1.TenantService`: reads and changes the calling tenant's settings (base currency,
//! default time zone, fiscal year start month, week start) in the store.

use kpi_proto::kpi::v1 as pb;
use kpi_proto::kpi::v1::tenant_service_server::TenantService;
use kpi_store::Store;
use tonic::{Request, Response, Status};

use crate::auth::tenant_of;
use crate::convert::settings::{settings_to_proto, settings_update};
use crate::error::{invalid_argument, store_status};
use crate::rpc::blocking;
use crate::sequence::reached;

/// The TenantService handlers: GetSettings, UpdateSettings.
#[derive(Clone)]
pub struct TenantApi {
    store: Store,
}

impl std::fmt::Debug for TenantApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantApi").finish_non_exhaustive()
    }
}

impl TenantApi {
    /// Handlers over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

#[tonic::async_trait]
impl TenantService for TenantApi {
    async fn get_settings(
        &self,
        request: Request<pb::GetSettingsRequest>,
    ) -> Result<Response<pb::GetSettingsResponse>, Status> {
        let tenant = tenant_of(&request);
        reached(&self.store, tenant.as_str(), request.get_ref().min_sequence).await?;
        let settings = self.store.settings(tenant.as_str());
        Ok(Response::new(pb::GetSettingsResponse {
            settings: Some(settings_to_proto(settings)),
        }))
    }

    async fn update_settings(
        &self,
        request: Request<pb::UpdateSettingsRequest>,
    ) -> Result<Response<pb::UpdateSettingsResponse>, Status> {
        let tenant = tenant_of(&request);
        let update = settings_update(request.into_inner())
            .map_err(|violations| invalid_argument("invalid settings", &violations))?;
        let store = self.store.clone();
        let (settings, sequence) = blocking(move || {
            let settings = store.update_settings(tenant.as_str(), &update)?;
            Ok((settings, store.sequence(tenant.as_str())))
        })
        .await?
        .map_err(store_status)?;
        Ok(Response::new(pb::UpdateSettingsResponse {
            settings: Some(settings_to_proto(settings)),
            sequence,
        }))
    }
}
