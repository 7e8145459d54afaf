//! kpid's record store: CRM records kept per tenant in sled or PostgreSQL (one backend
//! trait, `store/backend.rs`), and the in-memory query side the metrics read from.
//!
//! - [`Store`] validates ([`validate`]) and upserts records by (tenant, kind, id), durably;
//!   deletes and lists them; and hands out each tenant's records as a
//!   [`kpi_core::DataSource`] ([`TenantSource`]) that answers every [`kpi_core::Measure`]
//!   from memory.
//! - [`generate`] makes a deterministic, realistic CRM dataset for the demo and benchmarks.
//!
//! The sled key layout is documented in the `codec` module (and ARCHITECTURE.md).

mod attribute_columns;
pub mod attributes;
mod budget;
mod codec;
mod currency;
mod dims;
mod durable;
mod error;
pub mod generate;
mod index;
mod long_work;
mod pending;
pub mod record;
#[cfg(test)]
mod reference;
mod rows;
mod settings;
mod slab;
mod snapshot;
mod store;
mod subscription;
mod symbols;
mod units;
mod validate;

pub use budget::{estimate as query_state_estimate, BudgetStats};
pub use error::StoreError;
pub use index::filtering_dimensions;
pub use long_work::{with_long_work_runner, LongWorkRunner};
pub use record::*;
pub use settings::{SettingsChange, SettingsUpdate, TenantSettings};
pub use store::{postgres_records_row, WriteHealth};
pub use store::{
    OpenOptions, PreparedPut, PutOutcome, RecordKey, RecordPage, Rejected, Store, StoreStats,
    TenantSource, Unapplied, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE,
};
pub use validate::{validate, MAX_ID_BYTES};

/// The tenant used when a request names none.
pub const DEFAULT_TENANT: &str = "default";
