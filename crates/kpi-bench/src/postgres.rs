//! The run on the PostgreSQL backend (`--store postgres://…`): a database of the run's own,
//! the floor its ingest is compared with (the same rows `COPY`ed into a table of the shape
//! of `records`, in the same database), and the lag of a second replica behind the first
//! under a steady write load.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _};
use kpi_proto::kpi::v1 as pb;
use kpi_store::Record;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;
use postgres::{Client, NoTls};

use crate::bench::{connect, say, Target};
use crate::proto;
use crate::report::{ms, quantile};

/// A database created for one run on the server of an admin URL, dropped with this (so
/// runs never see each other's records).
pub(crate) struct RunDatabase {
    admin: String,
    name: String,
    /// Its URL: what kpid is given as `--store`.
    pub(crate) url: String,
}

impl RunDatabase {
    /// Creates `kpi_bench_PID_MILLIS` on the server of `admin` (`postgres://user@host:port/db`,
    /// `db` being any database the user may connect to).
    pub(crate) fn create(admin: &str) -> anyhow::Result<RunDatabase> {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis();
        let name = format!("kpi_bench_{}_{millis}", std::process::id());
        let (base, _) = admin
            .rsplit_once('/')
            .context("--store: a postgres://user@host:port/database URL")?;
        let url = format!("{base}/{name}");
        Client::connect(admin, NoTls)
            .and_then(|mut c| c.batch_execute(&format!("CREATE DATABASE {name}")))
            .with_context(|| format!("creating the database {name} on {base}"))?;
        say(format!("PostgreSQL: created the run's database {name}"));
        Ok(RunDatabase {
            admin: admin.to_owned(),
            name,
            url,
        })
    }
}

impl Drop for RunDatabase {
    fn drop(&mut self) {
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        match Client::connect(&self.admin, NoTls).and_then(|mut c| c.batch_execute(&statement)) {
            Ok(()) => say(format!("PostgreSQL: dropped {}", self.name)),
            Err(e) => say(format!("PostgreSQL: could not drop {}: {e}", self.name)),
        }
    }
}

/// The floor of the ingest: `records` (under `tenant`, as kpid stores them: the same kind
/// and value bytes) written with one binary `COPY` in one transaction into a new table of
/// the shape of `records` (`LIKE records INCLUDING ALL`: its columns, collation and primary
/// key), dropped afterwards. Timed from the `COPY` to the commit (the rows are encoded
/// before). Records per second and seconds.
pub(crate) fn copy_floor(
    url: &str,
    tenant: &str,
    records: &[Record],
) -> anyhow::Result<(f64, f64)> {
    let rows: Vec<(i16, &str, Vec<u8>)> = records
        .iter()
        .map(|r| {
            let (kind, value) = kpi_store::postgres_records_row(r);
            (kind, r.id(), value)
        })
        .collect();
    let mut client = Client::connect(url, NoTls).context("connecting for the COPY floor")?;
    client.batch_execute("CREATE TABLE records_copy_floor (LIKE records INCLUDING ALL)")?;
    let started = Instant::now();
    let mut tx = client.transaction()?;
    let sink = tx.copy_in("COPY records_copy_floor (tenant, kind, id, value) FROM STDIN BINARY")?;
    let mut writer =
        BinaryCopyInWriter::new(sink, &[Type::TEXT, Type::INT2, Type::TEXT, Type::BYTEA]);
    for (kind, id, value) in &rows {
        writer.write(&[&tenant, kind, id, value])?;
    }
    let copied = writer.finish()?;
    tx.commit()?;
    let secs = started.elapsed().as_secs_f64();
    ensure!(
        copied == rows.len() as u64,
        "COPY wrote {copied} of {} rows",
        rows.len()
    );
    client.batch_execute("DROP TABLE records_copy_floor")?;
    Ok((rows.len() as f64 / secs, secs))
}

/// How the replica lag is measured.
pub(crate) struct LagPlan {
    /// Writes made on replica A.
    pub(crate) writes: usize,
    /// Records in each write.
    pub(crate) records_per_write: usize,
    /// Time between the starts of two writes.
    pub(crate) interval: Duration,
}

/// Replica lag under a steady write load: every `interval`, a PutRecords of
/// `records_per_write` records (the dataset's first ones again, so nothing changes in
/// value) on replica `a`; from its acknowledgement, which carries the tenant's sequence, the
/// time until replica `b` answers a GetSettings with that `min_sequence` (it answers once it
/// has applied the write). Samples in ms.
pub(crate) async fn replica_lag(
    a: &Target,
    b: &Target,
    records: &[Record],
    plan: &LagPlan,
) -> anyhow::Result<Vec<f64>> {
    let mut on_a = connect(a).await?;
    let mut on_b = connect(b).await?;
    let batch: Vec<pb::Record> = records
        .iter()
        .take(plan.records_per_write)
        .map(proto::record)
        .collect();
    let mut lags = Vec::with_capacity(plan.writes);
    let mut tick = tokio::time::interval(plan.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for _ in 0..plan.writes {
        tick.tick().await;
        let written = on_a
            .records
            .put_records(pb::PutRecordsRequest {
                records: batch.clone(),
            })
            .await
            .context("PutRecords on replica A")?
            .into_inner();
        let acknowledged = Instant::now();
        ensure!(written.sequence > 0, "replica A answered no sequence");
        let mut request = tonic::Request::new(pb::GetSettingsRequest {
            min_sequence: written.sequence,
        });
        request.set_timeout(Duration::from_secs(10));
        on_b.tenant
            .get_settings(request)
            .await
            .with_context(|| format!("replica B reaching sequence {}", written.sequence))?;
        lags.push(ms(acknowledged.elapsed()));
    }
    Ok(lags)
}

/// p50 and p99 of lag samples, in ms.
pub(crate) fn lag_percentiles(lags: &[f64]) -> (f64, f64) {
    (quantile(lags, 0.5), quantile(lags, 0.99))
}
