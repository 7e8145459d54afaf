//! The PostgreSQL schema's versions: the migrations, in order, and how a kpid applies them
//! at open (one transaction holding a lock, so replicas starting together migrate once; a
//! database newer than this binary is refused).

use postgres::Client;

use super::unavailable;
use crate::error::StoreError;

/// The migrations, in order: version `i + 1` is `MIGRATIONS[i]`.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: records and settings.
    r#"
    CREATE TABLE records (
        tenant text NOT NULL,
        kind smallint NOT NULL,
        id text COLLATE "C" NOT NULL,
        value bytea NOT NULL,
        PRIMARY KEY (tenant, kind, id)
    );
    CREATE TABLE settings (
        tenant text NOT NULL PRIMARY KEY,
        value bytea NOT NULL
    );
    "#,
    // 2: replicas. Values lose the row slot version 1 stored (format 0x02 → 0x01: each
    // process keeps its own slots), and the per-tenant sequence and change log.
    r#"
    UPDATE records SET value = '\x01'::bytea || substring(value FROM 6)
        WHERE get_byte(value, 0) = 2;
    CREATE TABLE tenant_sequences (
        tenant text NOT NULL PRIMARY KEY,
        sequence bigint NOT NULL
    );
    CREATE TABLE change_log (
        tenant text NOT NULL,
        sequence bigint NOT NULL,
        position integer NOT NULL,
        kind smallint NOT NULL,
        id text COLLATE "C" NOT NULL,
        value bytea,
        logged_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant, sequence, position)
    );
    "#,
    // 3: the change log holds one row per write, its changes as arrays in their order
    // (version 2's rows, one per change, are folded into them), stored uncompressed.
    r#"
    CREATE TABLE change_log_by_write (
        tenant text NOT NULL,
        sequence bigint NOT NULL,
        kinds smallint[] NOT NULL,
        ids text[] NOT NULL,
        contents bytea[] NOT NULL,
        logged_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant, sequence)
    );
    ALTER TABLE change_log_by_write
        ALTER ids SET STORAGE EXTERNAL,
        ALTER contents SET STORAGE EXTERNAL;
    INSERT INTO change_log_by_write (tenant, sequence, kinds, ids, contents, logged_at)
        SELECT tenant, sequence, array_agg(kind ORDER BY position),
               array_agg(id ORDER BY position), array_agg(value ORDER BY position),
               min(logged_at)
        FROM change_log GROUP BY tenant, sequence;
    DROP TABLE change_log;
    ALTER TABLE change_log_by_write RENAME TO change_log;
    ALTER INDEX change_log_by_write_pkey RENAME TO change_log_pkey;
    "#,
    // 4: the change log's ids and values compressed with lz4 where the server has it
    // (a server built without lz4, or older than PostgreSQL 14, keeps them uncompressed:
    // the log reads the same).
    r#"
    DO $$
    BEGIN
        ALTER TABLE change_log
            ALTER ids SET STORAGE EXTENDED,
            ALTER contents SET STORAGE EXTENDED,
            ALTER ids SET COMPRESSION lz4,
            ALTER contents SET COMPRESSION lz4;
    EXCEPTION WHEN feature_not_supported OR syntax_error THEN
        NULL;
    END
    $$;
    "#,
];

/// The schema version this binary writes.
pub(crate) const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// The key of the transaction advisory lock a kpid migrating the schema holds.
const MIGRATION_LOCK: i64 = 0x6b70_6964; // "kpid"

/// Brings the schema to [`SCHEMA_VERSION`] in one transaction, one kpid at a time; refuses a
/// newer database.
pub(super) fn migrate(c: &mut Client) -> Result<(), StoreError> {
    let mut tx = c.transaction().map_err(unavailable)?;
    // Replicas starting together over a new database would race to create the table.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(unavailable)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS kpid_migrations (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         );
         LOCK TABLE kpid_migrations IN EXCLUSIVE MODE;",
    )
    .map_err(unavailable)?;
    let current: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM kpid_migrations", &[])
        .map_err(unavailable)?
        .get(0);
    if current > SCHEMA_VERSION {
        return Err(StoreError::Unavailable(format!(
            "the PostgreSQL database has schema version {current}, newer than this kpid \
             knows ({SCHEMA_VERSION}): run a kpid at least as new as the one that wrote it"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = i as i32 + 1;
        tx.batch_execute(sql).map_err(unavailable)?;
        tx.execute(
            "INSERT INTO kpid_migrations (version) VALUES ($1)",
            &[&version],
        )
        .map_err(unavailable)?;
        tracing::info!(version, "PostgreSQL schema migrated");
    }
    tx.commit().map_err(unavailable)?;
    Ok(())
}
