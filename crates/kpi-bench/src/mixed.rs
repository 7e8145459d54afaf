//! The mixed phase (issue 16): readers while writers write.
//!
//! 1. *quiet*: one reader runs single Computes back to back and another runs the dashboard
//!    (`BatchCompute` of every metric) back to back, with no writes, for `quiet`;
//! 2. *mixed*: the same readers for `mixed` while a writer sends batches of 1–50 records at
//!    a steady rate (`rate` records a second on average), every kind, deals the largest
//!    share: upserts of stored records (sent again unchanged, as a client re-sending an
//!    export does), new records (a stored record under a new id) and deletes of the new
//!    records; each call's acknowledgement is timed (a put or delete answers once durable);
//! 3. *read after write*: with nothing else running, `rounds` times for each kind, one
//!    record of that kind is written (a new one), and once acknowledged a Compute of a
//!    metric that reads that kind is timed.
//!
//! Every loop stops by itself: at its phase's end, and after at most `MAX_CALLS` calls.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _};
use kpi_proto::kpi::v1 as pb;
use kpi_store::{Record, RecordKind};
use serde::Serialize;

use crate::bench::{connect, dashboard_once, dashboard_request, window_compute, Clients, Target};
use crate::proto;
use crate::report::{ms, quantile, us};

/// Most calls one reader or the writer makes in one phase, whatever its duration.
const MAX_CALLS: usize = 1_000_000;

/// How each kind is weighted in the writer's records (deals the largest share), and the
/// metric a read after a write of that kind computes (one that reads the kind).
const KINDS: [(RecordKind, u32, &str); 12] = [
    (RecordKind::Deal, 30, "sales.win_rate"),
    (RecordKind::Lead, 12, "sales.lead_conversion_rate"),
    (RecordKind::Customer, 10, "success.churn_rate"),
    (RecordKind::Ticket, 10, "success.first_response_hours"),
    (RecordKind::Subscription, 8, "revenue.mrr"),
    (RecordKind::SurveyResponse, 8, "success.nps"),
    (RecordKind::Purchase, 6, "success.repeat_customer_rate"),
    (RecordKind::Activity, 6, "sales.activities"),
    (RecordKind::Spend, 5, "marketing.cac"),
    (RecordKind::Campaign, 3, "marketing.email_open_rate"),
    (RecordKind::Quota, 2, "sales.quota_attainment"),
    // A rate converts the amounts of its currency again: revenue reads the won deals'.
    (RecordKind::FxRate, 1, "sales.revenue"),
];

/// Stored records kept per kind as the writer's templates.
const TEMPLATES_PER_KIND: usize = 20_000;

/// How long and how hard the phase runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MixedPlan {
    /// Readers alone.
    pub(crate) quiet: Duration,
    /// Readers and the writer.
    pub(crate) mixed: Duration,
    /// The writer's average rate, records (put or deleted) a second.
    pub(crate) rate: f64,
    /// Writes and reads after them, per kind.
    pub(crate) rounds: usize,
}

/// What the phase measured.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct MixedResults {
    /// Seconds of the quiet and of the mixed part.
    pub(crate) quiet_s: f64,
    pub(crate) mixed_s: f64,
    /// Single Computes timed, quiet and mixed.
    pub(crate) quiet_computes: usize,
    pub(crate) mixed_computes: usize,
    /// Dashboards timed, quiet and mixed.
    pub(crate) quiet_dashboards: usize,
    pub(crate) mixed_dashboards: usize,
    /// Compute p50 with no writes (the dashboard reader running), in µs.
    pub(crate) quiet_compute_p50_us: f64,
    /// Compute p99 with no writes, in µs.
    pub(crate) quiet_compute_p99_us: f64,
    /// Compute p50 during writes, in µs.
    pub(crate) mixed_compute_p50_us: f64,
    /// Compute p99 during writes, in µs.
    pub(crate) mixed_compute_p99_us: f64,
    /// Dashboard p99 with no writes (the Compute reader running), in ms.
    pub(crate) quiet_dashboard_p99_ms: f64,
    /// Dashboard median during writes, in ms.
    pub(crate) mixed_dashboard_p50_ms: f64,
    /// Dashboard p99 during writes, in ms.
    pub(crate) mixed_dashboard_p99_ms: f64,
    /// Records the writer put or deleted, and in how many calls.
    pub(crate) records_written: usize,
    pub(crate) write_calls: usize,
    /// Of those records: upserts of stored ones, new ones, deletes.
    pub(crate) upserts: usize,
    pub(crate) inserts: usize,
    pub(crate) deletes: usize,
    /// The rate the writer achieved, records a second.
    pub(crate) write_records_per_s: f64,
    /// Acknowledged write (a put or delete of 1–50 records) p50 and p99, in ms.
    pub(crate) write_p50_ms: f64,
    pub(crate) write_p99_ms: f64,
    /// Per kind: p99 of a Compute issued right after an acknowledged single write of
    /// that kind, in ms.
    pub(crate) read_after_write_p99_ms_by_kind: BTreeMap<String, f64>,
    /// The largest of those.
    pub(crate) read_after_write_p99_ms: f64,
    /// p99 of those single writes' acknowledgements, in ms.
    pub(crate) single_write_p99_ms: f64,
}

/// A small deterministic generator (splitmix64): the writer's choices.
struct Choices(u64);

impl Choices {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A record with another id.
fn with_id(record: &Record, id: String) -> Record {
    let mut r = record.clone();
    match &mut r {
        Record::Customer(x) => x.id = id,
        Record::Lead(x) => x.id = id,
        Record::Deal(x) => x.id = id,
        Record::Subscription(x) => x.id = id,
        Record::Purchase(x) => x.id = id,
        Record::Spend(x) => x.id = id,
        Record::Campaign(x) => x.id = id,
        Record::Ticket(x) => x.id = id,
        Record::SurveyResponse(x) => x.id = id,
        Record::Quota(x) => x.id = id,
        Record::Activity(x) => x.id = id,
        Record::FxRate(x) => x.id = id,
    }
    r
}

/// The writer's stored records to copy, by kind (kinds the dataset lacks are left out).
struct Templates {
    /// (kind, weight, its records).
    kinds: Vec<(RecordKind, u32, Vec<Record>)>,
    total_weight: u32,
}

impl Templates {
    fn new(records: &[Record]) -> Templates {
        let mut by_kind: BTreeMap<RecordKind, Vec<Record>> = BTreeMap::new();
        for r in records {
            let v = by_kind.entry(r.kind()).or_default();
            if v.len() < TEMPLATES_PER_KIND {
                v.push(r.clone());
            }
        }
        let kinds: Vec<_> = KINDS
            .iter()
            .filter_map(|(k, w, _)| by_kind.remove(k).map(|v| (*k, *w, v)))
            .collect();
        let total_weight = kinds.iter().map(|(_, w, _)| w).sum();
        Templates {
            kinds,
            total_weight,
        }
    }

    /// A stored record, its kind drawn by weight.
    fn pick(&self, choices: &mut Choices) -> &Record {
        let mut w = choices.below(self.total_weight as usize) as u32;
        for (_, weight, records) in &self.kinds {
            if w < *weight {
                return &records[choices.below(records.len())];
            }
            w -= weight;
        }
        unreachable!("weights add up to the total")
    }
}

/// Runs single Computes back to back until `stop`: samples in µs.
async fn compute_loop(mut clients: Clients, stop: Arc<AtomicBool>) -> anyhow::Result<Vec<f64>> {
    let request = window_compute(crate::bench::COMPUTE_METRIC);
    let mut samples = Vec::new();
    while !stop.load(Ordering::Relaxed) && samples.len() < MAX_CALLS {
        let started = Instant::now();
        let answer = clients
            .metrics
            .compute(request.clone())
            .await
            .context("Compute")?
            .into_inner();
        samples.push(us(started.elapsed()));
        ensure!(
            answer.rows.len() == 12,
            "Compute answered {} rows",
            answer.rows.len()
        );
    }
    Ok(samples)
}

/// Runs the dashboard back to back until `stop`: samples in ms.
async fn dashboard_loop(
    mut clients: Clients,
    ids: Vec<String>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Vec<f64>> {
    let request = dashboard_request(&ids, pb::Comparison::Unspecified);
    let mut samples = Vec::new();
    while !stop.load(Ordering::Relaxed) && samples.len() < MAX_CALLS {
        samples.push(ms(dashboard_once(&mut clients, &request).await?.0));
    }
    Ok(samples)
}

/// What the writer did.
#[derive(Default)]
struct Written {
    /// Each call's time to its acknowledgement, in ms.
    acks_ms: Vec<f64>,
    records: usize,
    upserts: usize,
    inserts: usize,
    deletes: usize,
}

/// Writes at `rate` records a second until `stop`.
async fn writer(
    mut clients: Clients,
    templates: Arc<Templates>,
    rate: f64,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Written> {
    let mut choices = Choices(7);
    let mut written = Written::default();
    // New records not deleted yet: (kind, id).
    let mut added: Vec<(RecordKind, String)> = Vec::new();
    let mut next_id = 0u64;
    let started = tokio::time::Instant::now();
    let mut due = started;
    while !stop.load(Ordering::Relaxed) && written.acks_ms.len() < MAX_CALLS {
        tokio::time::sleep_until(due).await;
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let n = 1 + choices.below(50);
        let t = Instant::now();
        if choices.below(100) < 15 && added.len() >= n {
            // Deletes of records this writer added, oldest first.
            let keys: Vec<pb::RecordKey> = added
                .drain(..n)
                .map(|(kind, id)| pb::RecordKey {
                    kind: kind.as_str().into(),
                    id,
                })
                .collect();
            let answer = clients
                .records
                .delete_records(pb::DeleteRecordsRequest { keys })
                .await
                .context("DeleteRecords")?
                .into_inner();
            ensure!(
                answer.deleted == n as u64,
                "deleted {} of {n}",
                answer.deleted
            );
            written.deletes += n;
        } else {
            let mut batch = Vec::with_capacity(n);
            for _ in 0..n {
                let template = templates.pick(&mut choices);
                if choices.below(2) == 0 {
                    batch.push(proto::record(template));
                    written.upserts += 1;
                } else {
                    next_id += 1;
                    let id = format!("{}~mixed{next_id}", template.id());
                    added.push((template.kind(), id.clone()));
                    batch.push(proto::record(&with_id(template, id)));
                    written.inserts += 1;
                }
            }
            let answer = clients
                .records
                .put_records(pb::PutRecordsRequest { records: batch })
                .await
                .context("PutRecords")?
                .into_inner();
            ensure!(
                answer.rejected.is_empty(),
                "rejected: {:?}",
                answer.rejected.first()
            );
        }
        written.acks_ms.push(ms(t.elapsed()));
        written.records += n;
        due += Duration::from_secs_f64(n as f64 / rate);
    }
    Ok(written)
}

/// The readers for `length`, with the writer when `templates` is given.
async fn readers(
    target: &Target,
    ids: &[String],
    length: Duration,
    writes: Option<(Arc<Templates>, f64)>,
) -> anyhow::Result<(Vec<f64>, Vec<f64>, Option<Written>)> {
    let stop = Arc::new(AtomicBool::new(false));
    let computes = tokio::spawn(compute_loop(connect(target).await?, stop.clone()));
    let dashboards = tokio::spawn(dashboard_loop(
        connect(target).await?,
        ids.to_vec(),
        stop.clone(),
    ));
    let writer = match writes {
        Some((templates, rate)) => Some(tokio::spawn(writer(
            connect(target).await?,
            templates,
            rate,
            stop.clone(),
        ))),
        None => None,
    };
    tokio::time::sleep(length).await;
    stop.store(true, Ordering::Relaxed);
    let computes = computes.await??;
    let dashboards = dashboards.await??;
    let written = match writer {
        Some(w) => Some(w.await??),
        None => None,
    };
    Ok((computes, dashboards, written))
}

/// A single new record of each kind, then a Compute reading it, `rounds` times: per kind
/// the read times in ms, and every write's acknowledgement in ms.
async fn read_after_write(
    clients: &mut Clients,
    templates: &Templates,
    rounds: usize,
) -> anyhow::Result<(BTreeMap<String, Vec<f64>>, Vec<f64>)> {
    let mut reads: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut writes = Vec::new();
    for round in 0..rounds {
        for (kind, _, records) in &templates.kinds {
            let metric = KINDS
                .iter()
                .find(|(k, _, _)| k == kind)
                .map(|(_, _, m)| *m)
                .expect("every kind has a metric");
            let template = &records[round % records.len()];
            let record = with_id(template, format!("{}~raw{round}", template.id()));
            let t = Instant::now();
            let answer = clients
                .records
                .put_records(pb::PutRecordsRequest {
                    records: vec![proto::record(&record)],
                })
                .await
                .context("PutRecords")?
                .into_inner();
            writes.push(ms(t.elapsed()));
            ensure!(
                answer.accepted == 1,
                "a {} record was rejected",
                kind.as_str()
            );
            let t = Instant::now();
            let answer = clients
                .metrics
                .compute(window_compute(metric))
                .await
                .with_context(|| format!("Compute {metric}"))?
                .into_inner();
            reads
                .entry(kind.as_str().to_owned())
                .or_default()
                .push(ms(t.elapsed()));
            ensure!(!answer.rows.is_empty(), "{metric} answered no rows");
        }
    }
    Ok((reads, writes))
}

/// The whole phase on the kpid at `target`, whose dataset is `records`.
pub(crate) async fn run(
    target: &Target,
    ids: &[String],
    records: &[Record],
    plan: MixedPlan,
) -> anyhow::Result<MixedResults> {
    let templates = Arc::new(Templates::new(records));
    let mut res = MixedResults::default();

    crate::bench::say(format!("mixed phase: readers alone for {:?}", plan.quiet));
    let t = Instant::now();
    let (computes, dashboards, _) = readers(target, ids, plan.quiet, None).await?;
    res.quiet_s = t.elapsed().as_secs_f64();
    res.quiet_computes = computes.len();
    res.quiet_dashboards = dashboards.len();
    res.quiet_compute_p50_us = quantile(&computes, 0.5);
    res.quiet_compute_p99_us = quantile(&computes, 0.99);
    res.quiet_dashboard_p99_ms = quantile(&dashboards, 0.99);

    crate::bench::say(format!(
        "mixed phase: readers and a writer at {:.0} records/s for {:?}",
        plan.rate, plan.mixed
    ));
    let t = Instant::now();
    let (computes, dashboards, written) = readers(
        target,
        ids,
        plan.mixed,
        Some((templates.clone(), plan.rate)),
    )
    .await?;
    res.mixed_s = t.elapsed().as_secs_f64();
    let written = written.expect("the writer ran");
    res.mixed_computes = computes.len();
    res.mixed_dashboards = dashboards.len();
    res.mixed_compute_p50_us = quantile(&computes, 0.5);
    res.mixed_compute_p99_us = quantile(&computes, 0.99);
    res.mixed_dashboard_p50_ms = quantile(&dashboards, 0.5);
    res.mixed_dashboard_p99_ms = quantile(&dashboards, 0.99);
    res.records_written = written.records;
    res.write_calls = written.acks_ms.len();
    res.upserts = written.upserts;
    res.inserts = written.inserts;
    res.deletes = written.deletes;
    res.write_records_per_s = written.records as f64 / res.mixed_s;
    res.write_p50_ms = quantile(&written.acks_ms, 0.5);
    res.write_p99_ms = quantile(&written.acks_ms, 0.99);

    crate::bench::say(format!(
        "mixed phase: a read after a single write, {} per kind",
        plan.rounds
    ));
    let mut clients = connect(target).await?;
    let (reads, writes) = read_after_write(&mut clients, &templates, plan.rounds).await?;
    res.read_after_write_p99_ms_by_kind = reads
        .iter()
        .map(|(k, v)| (k.clone(), quantile(v, 0.99)))
        .collect();
    res.read_after_write_p99_ms = res
        .read_after_write_p99_ms_by_kind
        .values()
        .copied()
        .fold(0.0, f64::max);
    res.single_write_p99_ms = quantile(&writes, 0.99);
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_store::generate::{generate, DemoOptions};

    #[test]
    fn every_kind_is_written_and_deals_most() {
        let records = generate(&DemoOptions {
            records: 5_000,
            attributes_and_activities: true,
            currencies: true,
            ..DemoOptions::default()
        });
        let templates = Templates::new(&records);
        assert_eq!(templates.kinds.len(), RecordKind::ALL.len());
        let mut choices = Choices(1);
        let mut counts: BTreeMap<RecordKind, usize> = BTreeMap::new();
        for _ in 0..10_000 {
            *counts
                .entry(templates.pick(&mut choices).kind())
                .or_default() += 1;
        }
        assert_eq!(counts.len(), RecordKind::ALL.len());
        let deals = counts[&RecordKind::Deal];
        assert!(counts.values().all(|&c| c <= deals), "{counts:?}");
        let moved = with_id(&records[0], "other".into());
        assert_eq!(moved.id(), "other");
        assert_eq!(moved.kind(), records[0].kind());
    }
}
