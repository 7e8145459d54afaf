use thiserror::Error;

/// What the record store can fail with.
#[derive(Debug, Error)]
pub enum StoreError {
    /// sled failed (I/O, a full disk, a damaged file).
    #[error("storage: {0}")]
    Sled(#[from] sled::Error),
    /// A page token that this store did not hand out (or that was altered).
    #[error("invalid page token: {0}")]
    InvalidPageToken(String),
    /// A stored key or value that does not decode: the data directory is damaged or was
    /// written by an incompatible version.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// Writing the rows snapshot failed.
    #[error("writing the rows snapshot: {0}")]
    Snapshot(std::io::Error),
    /// A tenant name the store cannot hold.
    #[error("invalid tenant: {0}")]
    InvalidTenant(String),
}
