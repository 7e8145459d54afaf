use thiserror::Error;

/// What the record store can fail with.
#[derive(Debug, Error)]
pub enum StoreError {
    /// sled failed (I/O, a damaged file).
    #[error("storage: {}", sled_text(.0))]
    Sled(#[from] sled::Error),
    /// The disk holding the store is full (or its quota is spent): the write changed
    /// nothing, and writes resume by themselves once space is freed.
    #[error(
        "the disk holding the record store is full: nothing of this call was stored; \
         writes resume by themselves once space is freed"
    )]
    StorageFull,
    /// The store cannot do this now, and says why: writes refused after a failed write,
    /// or a listing while a full disk keeps sled unreadable.
    #[error("{0}")]
    Unavailable(String),
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

/// sled's error in plain words: its I/O errors print as Rust debug output.
fn sled_text(error: &sled::Error) -> String {
    match error {
        sled::Error::Io(e) => crate::store::recovery::io_text(e),
        other => other.to_string(),
    }
}
