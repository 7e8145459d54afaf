//! How a store over PostgreSQL keeps up with a database that several kpid processes
//! (replicas) write. Each process places rows at slots of its own ([`RecordSlots`]: the
//! stored values carry none), and applies every write of a tenant's change log (`pg.rs`)
//! once, in the tenant's sequence order, through the row changes sled's writes make too
//! (`pending.rs` `RowChanges`), so the index follows incrementally (`index/delta.rs`): its
//! own writes as they commit (with any write of another process it had not applied yet,
//! read in the same transaction), the others' as the follower thread reads them.
//!
//! The follower listens on `kpid_changes` (a write notifies its tenant's name at commit)
//! and catches that tenant up from the sequence it applied. Every second, and after each
//! reconnection, it also compares every tenant's sequence with the database's, which
//! covers notifications lost while it was disconnected. A tenant whose entries were pruned
//! from the log before it read them is reloaded from `records`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError, Weak};
use std::time::{Duration, Instant};

use postgres::fallible_iterator::FallibleIterator;
use postgres::Client;

use super::backend::AnyBackend;
use super::pg::{self, Change, LoggedWrite, TenantState};
use super::{check_key, Inner, Store, Tenant, TenantRecords};
use crate::codec::{decode_record, split_key};
use crate::error::StoreError;
use crate::pending::RowChanges;
use crate::record::{Record, RecordKind};
#[cfg(test)]
use crate::rows::Rows;

/// How often the follower compares every tenant's sequence with the database's (and how
/// long it waits for a notification at most).
const POLL: Duration = Duration::from_secs(1);

/// Most writes one read of the change log brings.
const LOG_BATCH: u64 = 256;

/// Per kind, the slot of each record's row, by id: on PostgreSQL, where the stored values
/// carry no slot, an upsert learns from it the row it replaces and a delete the row it
/// frees. Empty on sled, whose values carry the slot.
#[derive(Default)]
pub(super) struct RecordSlots {
    by_kind: [HashMap<Box<str>, u32>; RecordKind::ALL.len()],
}

impl RecordSlots {
    /// Notes the record's row at `slot`; the slot it was at before.
    fn insert(&mut self, kind: RecordKind, id: &str, slot: u32) -> Option<u32> {
        let ids = &mut self.by_kind[kind as usize];
        match ids.get_mut(id) {
            Some(old) => Some(std::mem::replace(old, slot)),
            None => {
                ids.insert(id.into(), slot);
                None
            }
        }
    }

    /// Forgets the record; the slot its row was at.
    fn remove(&mut self, kind: RecordKind, id: &str) -> Option<u32> {
        self.by_kind[kind as usize].remove(id)
    }
}

impl TenantRecords {
    /// Places a record loaded from PostgreSQL at the next free slot of its kind.
    fn place(&mut self, record: &Record) -> Result<(), StoreError> {
        let slot = self.rows.allocate(record.kind());
        if self
            .slots
            .insert(record.kind(), record.id(), slot)
            .is_some()
        {
            return Err(StoreError::Corrupt(format!(
                "the {} record {} is stored twice",
                record.kind().as_str(),
                record.id()
            )));
        }
        self.rows.put(slot, record);
        Ok(())
    }
}

/// Adds stored records (sled-layout keys, values without a slot) to their tenants' rows.
pub(super) fn place_stored(
    tenants: &mut HashMap<String, TenantRecords>,
    entries: &[pg::KeyValue],
) -> Result<(), StoreError> {
    for (key, value) in entries {
        let (tenant, kind, id) = split_key(key)?;
        let record = decode_record(key, value)?;
        check_key(key, &record, kind, id)?;
        let records = match tenants.get_mut(tenant) {
            Some(records) => records,
            None => tenants.entry(tenant.to_owned()).or_default(),
        };
        records.place(&record)?;
    }
    Ok(())
}

impl Store {
    /// Applies the writes of `tenant` that follow the sequence its rows reached, in order,
    /// each once (those applied already are skipped). Whether the tenant reached the last
    /// one: `false` when a write is missing before it (the follower fills the gap).
    pub(super) fn apply_logged(&self, t: &Tenant, tenant: &str, writes: Vec<LoggedWrite>) -> bool {
        let mut records = t.records.write().unwrap_or_else(PoisonError::into_inner);
        for write in writes {
            if write.sequence <= t.applied() {
                continue;
            }
            if write.sequence != t.applied() + 1 {
                return false;
            }
            let records = &mut *records;
            let mut puts = Vec::new();
            let mut deletes = Vec::new();
            for change in write.changes {
                match change {
                    Change::Upsert(record) => {
                        let slot = records.rows.allocate(record.kind());
                        let replaced = records.slots.insert(record.kind(), record.id(), slot);
                        puts.push((record, slot, replaced));
                    }
                    Change::Delete(kind, id) => {
                        if let Some(slot) = records.slots.remove(kind, &id) {
                            deletes.push((kind, slot));
                        }
                    }
                    Change::Settings(settings) => {
                        // Amounts are converted to the base now in effect.
                        let converted = records.rows.set_base_currency(&settings.base_currency);
                        if !converted.is_empty() {
                            records.changed(converted);
                        }
                        self.inner
                            .settings
                            .write()
                            .unwrap_or_else(PoisonError::into_inner)
                            .insert(tenant.to_owned(), settings);
                    }
                }
            }
            // Each change took its own slot: the puts and the deletes touch distinct rows.
            let mut kinds = RowChanges::Put(puts).apply(&mut records.rows);
            kinds.extend(RowChanges::Delete(deletes).apply(&mut records.rows));
            t.set_sequence(records, write.sequence);
            if !kinds.is_empty() {
                records.changed(kinds);
            }
        }
        true
    }

    /// Applies a write this process just committed, after the writes it had not applied
    /// before it (read in the write's transaction).
    pub(super) fn apply_own(
        &self,
        t: &Tenant,
        tenant: &str,
        mut missed: Vec<LoggedWrite>,
        own: LoggedWrite,
    ) {
        let sequence = own.sequence;
        missed.push(own);
        if !self.apply_logged(t, tenant, missed) {
            tracing::warn!(
                tenant,
                sequence,
                "a write committed after a gap in the change log: the follower applies it"
            );
        }
    }

    /// Applies the change log of `tenant` through `target` (reloading the tenant from
    /// `records` when entries it needs were pruned).
    fn catch_up(&self, c: &mut Client, tenant: &str, target: u64) -> Result<(), StoreError> {
        let t = self.tenant_or_create(tenant);
        loop {
            let applied = t.applied();
            if applied >= target {
                return Ok(());
            }
            let writes = pg::read_log(c, tenant, applied, target.min(applied + LOG_BATCH))?;
            let complete = writes.first().is_some_and(|w| w.sequence == applied + 1);
            if !complete || !self.apply_logged(&t, tenant, writes) {
                tracing::warn!(
                    tenant,
                    applied,
                    "the change log no longer holds the writes this kpid needs: reloading the tenant"
                );
                self.reload(&t, tenant, pg::tenant_state(c, tenant)?)?;
            }
        }
    }

    /// Replaces a tenant's rows and settings with `state` (read in one snapshot), unless
    /// the tenant applied as far already.
    fn reload(&self, t: &Tenant, tenant: &str, state: TenantState) -> Result<(), StoreError> {
        let mut loaded = HashMap::new();
        place_stored(&mut loaded, &state.records)?;
        let fresh = loaded.remove(tenant).unwrap_or_default();
        let mut records = t.records.write().unwrap_or_else(PoisonError::into_inner);
        if state.sequence <= t.applied() {
            return Ok(());
        }
        let generation = records.generation;
        *records = TenantRecords {
            generation,
            ..fresh
        };
        t.set_sequence(&mut records, state.sequence);
        // Its amounts converted to the base of the settings read with them.
        let base = state
            .settings
            .as_ref()
            .map_or("", |s| s.base_currency.as_str());
        records.rows.set_base_currency(base);
        records.changed(RecordKind::ALL);
        let mut settings = self
            .inner
            .settings
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        match state.settings {
            Some(s) => settings.insert(tenant.to_owned(), s),
            None => settings.remove(tenant),
        };
        Ok(())
    }

    /// Starts the thread that follows the change log; it ends once the store is dropped.
    pub(super) fn follow(&self) {
        let store = Arc::downgrade(&self.inner);
        std::thread::Builder::new()
            .name("kpid-follower".into())
            .spawn(move || follow(store))
            .expect("spawn the change log follower");
    }
}

/// The follower thread: waits for notifications (holding no reference to the store), then
/// catches up the tenants named, and every [`POLL`] every tenant behind the database.
fn follow(store: Weak<Inner>) {
    let mut client: Option<Client> = None;
    let mut polled_at: Option<Instant> = None;
    let mut failures = 0u64;
    loop {
        let notified = match client.as_mut() {
            Some(c) => wait(c),
            None => Ok(HashSet::new()),
        };
        let Some(inner) = store.upgrade() else {
            return;
        };
        let store_now = Store { inner };
        let step = notified.and_then(|tenants| {
            if client.as_ref().is_none_or(Client::is_closed) {
                let AnyBackend::Postgres(postgres) = &store_now.inner.backend else {
                    unreachable!("only a PostgreSQL store follows a change log")
                };
                let mut c = postgres.database.connect()?;
                c.batch_execute(&format!("LISTEN {}", pg::CHANNEL))
                    .map_err(pg::unavailable)?;
                client = Some(c);
                polled_at = None;
            }
            let c = client.as_mut().expect("connected");
            for tenant in tenants {
                let target = pg::sequence_of(c, &tenant)?;
                store_now.catch_up(c, &tenant, target)?;
            }
            if polled_at.is_none_or(|at| at.elapsed() >= POLL) {
                for (tenant, target) in pg::sequences(c)? {
                    if store_now.sequence(&tenant) < target {
                        store_now.catch_up(c, &tenant, target)?;
                    }
                }
                polled_at = Some(Instant::now());
            }
            Ok(())
        });
        drop(store_now);
        match step {
            Ok(()) => failures = 0,
            Err(e) => {
                if failures.is_multiple_of(10) {
                    tracing::warn!(
                        reason = %e,
                        "following the PostgreSQL change log failed: retrying every second"
                    );
                }
                failures += 1;
                client = None;
                std::thread::sleep(POLL);
            }
        }
    }
}

/// The tenants notified within [`POLL`] (none when none was, or the connection closed).
fn wait(c: &mut Client) -> Result<HashSet<String>, StoreError> {
    let mut tenants = HashSet::new();
    let mut notifications = c.notifications();
    if let Some(n) = notifications
        .timeout_iter(POLL)
        .next()
        .map_err(pg::unavailable)?
    {
        tenants.insert(n.payload().to_owned());
    }
    let mut pending = notifications.iter();
    while let Some(n) = pending.next().map_err(pg::unavailable)? {
        tenants.insert(n.payload().to_owned());
    }
    Ok(tenants)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{generate, DemoOptions};
    use crate::settings::TenantSettings;
    use crate::RecordKey;

    /// Logged writes change a tenant's rows exactly as the same writes through sled do
    /// (the same rows at the same slots), each once and only in sequence order.
    #[test]
    fn logged_writes_apply_as_sled_writes_once_each_in_order() {
        let records = generate(&DemoOptions {
            records: 600,
            attributes_and_activities: true,
            ..Default::default()
        });
        let (first, second) = records.split_at(records.len() / 2);
        let deleted: Vec<RecordKey> = first
            .iter()
            .step_by(3)
            .map(|r| RecordKey {
                kind: r.kind(),
                id: r.id().to_owned(),
            })
            .collect();
        let settings = TenantSettings {
            fiscal_year_start_month: 4,
            ..TenantSettings::default()
        };
        let upserts = |records: &[Record]| records.iter().cloned().map(Change::Upsert).collect();
        let writes = [
            LoggedWrite {
                sequence: 1,
                changes: upserts(first),
            },
            LoggedWrite {
                sequence: 2,
                changes: upserts(second),
            },
            LoggedWrite {
                sequence: 3,
                changes: deleted
                    .iter()
                    .map(|k| Change::Delete(k.kind, k.id.clone()))
                    .collect(),
            },
            LoggedWrite {
                sequence: 4,
                changes: upserts(&first[..50]),
            },
            LoggedWrite {
                sequence: 5,
                changes: vec![Change::Settings(settings.clone())],
            },
        ];

        let sled = Store::temporary().unwrap();
        sled.put("t", first.to_vec()).unwrap();
        sled.put("t", second.to_vec()).unwrap();
        assert_eq!(sled.delete("t", &deleted).unwrap(), deleted.len() as u64);
        sled.put("t", first[..50].to_vec()).unwrap();

        let replica = Store::temporary().unwrap();
        let t = replica.tenant_or_create("t");
        // A write after a gap waits for the writes before it.
        assert!(!replica.apply_logged(&t, "t", vec![writes[2].clone()]));
        assert_eq!(replica.sequence("t"), 0);
        assert!(replica.apply_logged(&t, "t", writes[..2].to_vec()));
        assert_eq!(replica.sequence("t"), 2);
        // Writes applied already are skipped, whoever brings them again.
        assert!(replica.apply_logged(&t, "t", writes[..3].to_vec()));
        assert!(replica.apply_logged(&t, "t", writes[1..].to_vec()));
        assert_eq!(replica.sequence("t"), 5);
        assert!(replica.has_applied("t", 5));

        let differing = sled.with_rows("t", |expected| {
            replica.with_rows("t", |applied| {
                crate::snapshot::differing_kinds(expected, applied)
            })
        });
        assert!(differing.is_empty(), "{differing:?}");
        assert_eq!(
            replica.with_rows("t", Rows::len),
            records.len() - deleted.len()
                + deleted
                    .iter()
                    .filter(|k| first[..50]
                        .iter()
                        .any(|r| r.kind() == k.kind && r.id() == k.id))
                    .count()
        );
        assert_eq!(replica.settings("t"), settings);
    }
}
