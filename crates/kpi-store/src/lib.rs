//! kpid's record store: CRM records kept per tenant in sled, and the in-memory query side
//! the metrics read from.

pub mod record;

pub use record::*;
