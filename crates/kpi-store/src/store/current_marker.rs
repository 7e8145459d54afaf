//! The current-snapshot marker: a small file beside the rows snapshot that says, without
//! sled, that the snapshot is current and what every tenant's settings are, so that a
//! start answers queries from the snapshot while sled still opens (sled reads its whole
//! log first: seconds at 10M records).
//!
//! It is the same promise as the token in sled's `meta` tree, kept where it can be read
//! before sled: written after the snapshot and its token are committed (with the settings
//! in memory, which sled holds), and removed — durably, the directory fsync'd — before
//! anything that would make it false: the first record write after the snapshot, and every
//! settings change. It also holds the length and modification time of sled's log file
//! (`db`) as they were when it was written: every sled write appends to that file, so a
//! write the marker did not see — by a kpid of a release before the marker, which never
//! removes it — is caught before anything is read. A start that finds no marker, one that
//! does not verify (its own CRC-32) or one whose log no longer matches opens as before
//! (sled first, its token decides).

use std::fs::File;
use std::io::{self, Write as _};
use std::path::Path;

use crate::settings::{SettingsByTenant, TenantSettings};

/// The marker's file name, in the data directory.
pub(crate) const FILE: &str = "rows.snapshot.current";

const MAGIC: &[u8; 8] = b"KPIDCURR";
const VERSION: u32 = 1;

/// What a marker says: the token of the current snapshot, the settings sled holds, and
/// sled's log file as it was.
#[derive(Debug, PartialEq)]
pub(crate) struct Marker {
    pub(crate) token: u64,
    pub(crate) settings: SettingsByTenant,
    pub(crate) log: LogFile,
}

/// sled's log file (`db`) as `stat` sees it: its length and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogFile {
    len: u64,
    modified_nanos: u128,
}

impl LogFile {
    /// The log file of the sled database in `dir` now.
    pub(crate) fn of(dir: &Path) -> io::Result<LogFile> {
        let meta = std::fs::metadata(dir.join("db"))?;
        let modified_nanos = meta
            .modified()?
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Ok(LogFile {
            len: meta.len(),
            modified_nanos,
        })
    }
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the current-snapshot marker: {why}"),
    )
}

/// Writes the marker for `token` and `settings`, with sled's log file as it is now (a
/// temporary file, fsync'd, renamed, the directory fsync'd).
pub(crate) fn write(dir: &Path, token: u64, settings: &SettingsByTenant) -> io::Result<()> {
    let log = LogFile::of(dir)?;
    let mut bytes = Vec::new();
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    bytes.extend_from_slice(&token.to_le_bytes());
    bytes.extend_from_slice(&log.len.to_le_bytes());
    bytes.extend_from_slice(&log.modified_nanos.to_le_bytes());
    bytes.extend_from_slice(&(settings.len() as u32).to_le_bytes());
    let mut tenants: Vec<_> = settings.iter().collect();
    tenants.sort_by(|a, b| a.0.cmp(b.0));
    for (tenant, s) in tenants {
        for part in [tenant.as_bytes(), &s.encode()] {
            bytes.extend_from_slice(&(part.len() as u32).to_le_bytes());
            bytes.extend_from_slice(part);
        }
    }
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    crate::snapshot::replace_durably(dir, FILE, |tmp| {
        let mut file = File::create(tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()
    })
}

/// Removes the marker durably (the directory fsync'd when there was one).
pub(crate) fn remove(dir: &Path) -> io::Result<()> {
    match std::fs::remove_file(dir.join(FILE)) {
        Ok(()) => File::open(dir)?.sync_all(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// The marker in `dir`: `None` when there is none; an error when it does not verify.
pub(crate) fn read(dir: &Path) -> io::Result<Option<Marker>> {
    let bytes = match std::fs::read(dir.join(FILE)) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some((body, crc)) = bytes.split_last_chunk::<4>() else {
        return Err(invalid("truncated"));
    };
    if crc32fast::hash(body) != u32::from_le_bytes(*crc) {
        return Err(invalid("its checksum does not match"));
    }
    let mut rest = body;
    let mut take = |n: usize| -> io::Result<&[u8]> {
        if rest.len() < n {
            return Err(invalid("truncated"));
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    if take(8)? != MAGIC {
        return Err(invalid("its first bytes are wrong"));
    }
    let u32_of = |b: &[u8]| u32::from_le_bytes(b.try_into().expect("4 bytes"));
    if u32_of(take(4)?) != VERSION {
        return Err(invalid("another format version"));
    }
    let token = u64::from_le_bytes(take(8)?.try_into().expect("8 bytes"));
    let log = LogFile {
        len: u64::from_le_bytes(take(8)?.try_into().expect("8 bytes")),
        modified_nanos: u128::from_le_bytes(take(16)?.try_into().expect("16 bytes")),
    };
    let count = u32_of(take(4)?);
    let mut settings = SettingsByTenant::new();
    for _ in 0..count {
        let len = u32_of(take(4)?) as usize;
        let tenant = String::from_utf8(take(len)?.to_vec())
            .map_err(|_| invalid("a tenant name is not UTF-8"))?;
        let len = u32_of(take(4)?) as usize;
        let value = take(len)?;
        let s = TenantSettings::decode(&tenant, value).map_err(|e| invalid(&e.to_string()))?;
        settings.insert(tenant, s);
    }
    if !rest.is_empty() {
        return Err(invalid("bytes after its last tenant"));
    }
    Ok(Some(Marker {
        token,
        settings,
        log,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_read_removed_and_a_damaged_one_refused() {
        let dir = tempfile::tempdir().expect("a directory");
        assert_eq!(read(dir.path()).expect("no marker"), None);
        std::fs::write(dir.path().join("db"), b"a log").expect("a log file");
        let mut settings = SettingsByTenant::new();
        let acme = TenantSettings {
            base_currency: "EUR".into(),
            fiscal_year_start_month: 4,
            ..TenantSettings::default()
        };
        settings.insert("acme".into(), acme);
        settings.insert("b".into(), TenantSettings::default());
        write(dir.path(), 42, &settings).expect("written");
        let marker = read(dir.path()).expect("verifies").expect("a marker");
        assert_eq!(
            marker,
            Marker {
                token: 42,
                settings: settings.clone(),
                log: LogFile::of(dir.path()).expect("the log file"),
            }
        );
        // One byte changed anywhere: refused, never read as another token or setting.
        let path = dir.path().join(FILE);
        let good = std::fs::read(&path).expect("bytes");
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x10;
            std::fs::write(&path, &bad).expect("written");
            assert!(read(dir.path()).is_err(), "byte {i} changed");
        }
        std::fs::write(&path, &good[..good.len() - 1]).expect("written");
        assert!(read(dir.path()).is_err(), "truncated");
        remove(dir.path()).expect("removed");
        assert_eq!(read(dir.path()).expect("no marker"), None);
        remove(dir.path()).expect("removing none is fine");
    }
}
