//! `kpid import`: streams NDJSON and CSV files to `RecordsService.Ingest`.
//!
//! The files are read on a blocking thread, one after the other, and their records sent
//! in messages of `--batch-size` records over ONE Ingest stream. Lines that cannot be
//! parsed are reported at once (`file:line: reason`) and not sent; the records the server
//! rejects are reported when it answers, mapped back from their stream index to their
//! file and line. Nothing stops the import but an I/O or RPC failure.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kpi_proto::kpi::v1 as pb;
use kpi_proto::kpi::v1::records_service_client::RecordsServiceClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::descriptors::{kind_arg, RecordKind};
use super::readers::{read_csv, read_ndjson, Sink};
use super::{fail, print_status, ServerAddr, EXIT_FAILURE};

/// Exit code of `--fail-on-reject` when a record was rejected.
const EXIT_REJECTED: u8 = 2;

/// Messages read ahead of the RPC.
const QUEUE: usize = 4;

/// `kpid import`.
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    #[command(flatten)]
    server: ServerAddr,
    /// NDJSON files (`.ndjson`, `.jsonl`, `.json`: one proto-JSON kpi.v1.Record per line)
    /// and CSV files (`.csv`: one record kind per file, a header row of field names).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// File format of every FILE, instead of guessing it from the extension.
    #[arg(long, value_enum)]
    format: Option<InputFormat>,
    /// Record kind of every CSV file (`deal`, `survey_response`…), instead of taking it
    /// from the file name (`deals.csv`, `deal.csv`).
    #[arg(long, value_parser = kind_arg)]
    kind: Option<RecordKind>,
    /// Records per Ingest message.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    batch_size: u32,
    /// Exit with code 2 when any record was rejected (by the parser or the server).
    #[arg(long)]
    fail_on_reject: bool,
}

/// The format of an import file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum InputFormat {
    /// One proto-JSON kpi.v1.Record per line.
    Ndjson,
    /// A header row of field names, then one record per row.
    Csv,
}

impl InputFormat {
    /// The format a file name says (`.csv` → CSV; `.ndjson`, `.jsonl`, `.json` → NDJSON).
    fn of(path: &Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "csv" => Some(Self::Csv),
            "ndjson" | "jsonl" | "json" => Some(Self::Ndjson),
            _ => None,
        }
    }
}

/// Where a sent record came from.
#[derive(Debug, Clone, Copy)]
struct Origin {
    file: usize,
    line: u64,
}

/// Counts of one file.
#[derive(Debug, Default, Clone)]
struct FileTally {
    /// Records sent to the server.
    sent: u64,
    /// Lines rejected before sending.
    unparsed: u64,
    /// Records the server rejected.
    refused: u64,
    /// The file could not be read to its end.
    failed: bool,
}

/// What the reading thread hands back.
#[derive(Debug, Default)]
struct ReadOutcome {
    origins: Vec<Origin>,
    tallies: Vec<FileTally>,
}

/// Runs `kpid import`.
pub(crate) async fn run(args: ImportArgs) -> ExitCode {
    let channel = match args.server.connect().await {
        Ok(channel) => channel,
        Err(message) => return fail(message),
    };
    let mut client = RecordsServiceClient::new(channel)
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX);

    let total_bytes: u64 = args
        .files
        .iter()
        .filter_map(|path| std::fs::metadata(path).ok())
        .map(|m| m.len())
        .sum();
    let progress = progress_bar(total_bytes);

    let (sender, receiver) = mpsc::channel::<pb::IngestRequest>(QUEUE);
    let reading = {
        let files = args.files.clone();
        let progress = progress.clone();
        let plan = Plan {
            format: args.format,
            kind: args.kind,
            batch_size: args.batch_size as usize,
        };
        tokio::task::spawn_blocking(move || read_all(&files, &plan, &sender, &progress))
    };
    let answer = client.ingest(ReceiverStream::new(receiver)).await;
    let outcome = match reading.await {
        Ok(outcome) => outcome,
        Err(e) => {
            progress.finish_and_clear();
            return fail(format!("the file reader failed: {e}"));
        }
    };
    progress.finish_and_clear();
    let mut tallies = outcome.tallies;

    let answer = match answer {
        Ok(answer) => answer.into_inner(),
        Err(status) => {
            print_status("ingest", &status);
            eprintln!(
                "records sent before the failure may have been stored; importing the files again is safe (records are upserted by kind and id)"
            );
            return ExitCode::from(EXIT_FAILURE);
        }
    };

    let mut refused = answer.rejected;
    refused.sort_by_key(|r| r.index);
    for rejected in &refused {
        let origin = usize::try_from(rejected.index)
            .ok()
            .and_then(|i| outcome.origins.get(i));
        match origin {
            Some(origin) => {
                tallies[origin.file].refused += 1;
                eprintln!(
                    "{}:{}: {}",
                    args.files[origin.file].display(),
                    origin.line,
                    rejected.reason
                );
            }
            None => eprintln!("record #{}: {}", rejected.index, rejected.reason),
        }
    }

    for (path, tally) in args.files.iter().zip(&tallies) {
        let accepted = tally.sent.saturating_sub(tally.refused);
        let rejected = tally.unparsed + tally.refused;
        let unread = if tally.failed {
            " (not read to the end)"
        } else {
            ""
        };
        println!(
            "{}: {accepted} accepted, {rejected} rejected{unread}",
            path.display()
        );
    }
    let unparsed: u64 = tallies.iter().map(|t| t.unparsed).sum();
    let rejected = unparsed + refused.len() as u64;
    println!(
        "total: {} accepted, {rejected} rejected ({unparsed} not parsed, {} refused by the server)",
        answer.accepted,
        refused.len()
    );

    if tallies.iter().any(|t| t.failed) {
        ExitCode::from(EXIT_FAILURE)
    } else if args.fail_on_reject && rejected > 0 {
        ExitCode::from(EXIT_REJECTED)
    } else {
        ExitCode::SUCCESS
    }
}

/// A progress bar over the files' bytes on stderr, hidden when stderr is not a terminal.
fn progress_bar(total_bytes: u64) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(total_bytes), target);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
    ) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// How to read the files.
#[derive(Debug, Clone)]
struct Plan {
    format: Option<InputFormat>,
    kind: Option<RecordKind>,
    batch_size: usize,
}

/// Reads every file into Ingest messages on `sender`; runs on a blocking thread.
fn read_all(
    files: &[PathBuf],
    plan: &Plan,
    sender: &mpsc::Sender<pb::IngestRequest>,
    progress: &ProgressBar,
) -> ReadOutcome {
    let mut batcher = Batcher {
        sender,
        progress,
        batch: Vec::with_capacity(plan.batch_size),
        batch_size: plan.batch_size,
        origins: Vec::new(),
        tally: FileTally::default(),
        file: 0,
        path: PathBuf::new(),
        bytes_before: 0,
        sent: 0,
        closed: false,
    };
    let mut tallies = Vec::with_capacity(files.len());
    for (index, path) in files.iter().enumerate() {
        batcher.file = index;
        batcher.path = path.clone();
        batcher.tally = FileTally::default();
        if !batcher.closed {
            if let Err(reason) = read_file(path, plan, &mut batcher) {
                batcher.tally.failed = true;
                progress.suspend(|| eprintln!("error: {}: {reason}", path.display()));
            }
        }
        batcher.bytes_before += std::fs::metadata(path).map_or(0, |m| m.len());
        progress.set_position(batcher.bytes_before);
        tallies.push(std::mem::take(&mut batcher.tally));
    }
    batcher.flush();
    ReadOutcome {
        origins: batcher.origins,
        tallies,
    }
}

/// Reads one file with the reader its format calls for.
fn read_file(path: &Path, plan: &Plan, sink: &mut Batcher<'_>) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let format = plan.format.or_else(|| InputFormat::of(path)).ok_or_else(|| {
        "cannot tell the format from the file name: name it .ndjson, .jsonl or .csv, or pass --format"
            .to_owned()
    })?;
    let kind = match format {
        InputFormat::Csv => Some(plan.kind.clone().or_else(|| RecordKind::of_file(path)).ok_or_else(|| {
            "cannot tell the record kind from the file name: name it after the kind (deals.csv) or pass --kind"
                .to_owned()
        })?),
        InputFormat::Ndjson => None,
    };
    let input = std::io::BufReader::with_capacity(1 << 16, file);
    match kind {
        Some(kind) => read_csv(input, kind, sink),
        None => read_ndjson(input, sink),
    }
}

/// The [`Sink`] of the import: batches records into Ingest messages, remembers where each
/// came from, prints bad lines, moves the progress bar.
struct Batcher<'a> {
    sender: &'a mpsc::Sender<pb::IngestRequest>,
    progress: &'a ProgressBar,
    batch: Vec<pb::Record>,
    batch_size: usize,
    origins: Vec<Origin>,
    tally: FileTally,
    file: usize,
    path: PathBuf,
    /// Bytes of the files before this one.
    bytes_before: u64,
    /// Records sent so far, over every file.
    sent: u64,
    /// The RPC is gone: nothing more can be sent.
    closed: bool,
}

impl Batcher<'_> {
    /// Sends the current batch; `false` once the RPC is gone.
    fn flush(&mut self) -> bool {
        if self.closed {
            return false;
        }
        if self.batch.is_empty() {
            return true;
        }
        let records = std::mem::replace(&mut self.batch, Vec::with_capacity(self.batch_size));
        if self
            .sender
            .blocking_send(pb::IngestRequest { records })
            .is_err()
        {
            self.closed = true;
            return false;
        }
        self.progress
            .set_message(format!("{} records sent", self.sent));
        true
    }
}

impl Sink for Batcher<'_> {
    fn record(&mut self, line: u64, record: pb::Record) -> bool {
        self.origins.push(Origin {
            file: self.file,
            line,
        });
        self.batch.push(record);
        self.tally.sent += 1;
        self.sent += 1;
        if self.batch.len() >= self.batch_size {
            return self.flush();
        }
        true
    }

    fn bad_line(&mut self, line: u64, reason: String) {
        self.tally.unparsed += 1;
        let path = self.path.display();
        self.progress
            .suspend(|| eprintln!("{path}:{line}: {reason}"));
    }

    fn progress(&mut self, bytes: u64) {
        self.progress.set_position(self.bytes_before + bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_come_from_extensions() {
        assert_eq!(
            InputFormat::of(Path::new("a/deals.CSV")),
            Some(InputFormat::Csv)
        );
        assert_eq!(
            InputFormat::of(Path::new("x.ndjson")),
            Some(InputFormat::Ndjson)
        );
        assert_eq!(
            InputFormat::of(Path::new("x.jsonl")),
            Some(InputFormat::Ndjson)
        );
        assert_eq!(InputFormat::of(Path::new("x.txt")), None);
        assert_eq!(InputFormat::of(Path::new("deals")), None);
    }

    #[test]
    fn batches_are_sent_full_and_remember_their_lines() {
        let (sender, mut receiver) = mpsc::channel(16);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leads.csv");
        std::fs::write(
            &path,
            "id,source\nl1,marketing\nl2,nowhere\nl3,sales\nl4,\nl5,other\n",
        )
        .unwrap();
        let plan = Plan {
            format: None,
            kind: None,
            batch_size: 2,
        };
        let outcome = read_all(&[path], &plan, &sender, &ProgressBar::hidden());
        drop(sender);
        let mut sizes = Vec::new();
        while let Ok(message) = receiver.try_recv() {
            sizes.push(message.records.len());
        }
        assert_eq!(sizes, [2, 2]);
        let lines: Vec<u64> = outcome.origins.iter().map(|o| o.line).collect();
        assert_eq!(lines, [2, 4, 5, 6]);
        assert_eq!(outcome.tallies.len(), 1);
        assert_eq!(
            (outcome.tallies[0].sent, outcome.tallies[0].unparsed),
            (4, 1)
        );
        assert!(!outcome.tallies[0].failed);
    }

    #[test]
    fn unreadable_files_are_failures_and_the_rest_is_read() {
        let (sender, mut receiver) = mpsc::channel(16);
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("a.ndjson");
        std::fs::write(&good, "{\"lead\": {\"id\": \"l1\"}}\n").unwrap();
        let files = [
            dir.path().join("missing.ndjson"),
            dir.path().join("export.csv"),
            dir.path().join("notes.txt"),
            good,
        ];
        let plan = Plan {
            format: None,
            kind: None,
            batch_size: 500,
        };
        let outcome = read_all(&files, &plan, &sender, &ProgressBar::hidden());
        drop(sender);
        let failed: Vec<bool> = outcome.tallies.iter().map(|t| t.failed).collect();
        assert_eq!(failed, [true, true, true, false]);
        assert_eq!(receiver.try_recv().unwrap().records.len(), 1);
        assert_eq!(outcome.origins[0].file, 3);
    }

    #[test]
    fn reading_stops_when_the_rpc_is_gone() {
        let (sender, receiver) = mpsc::channel(1);
        drop(receiver);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.ndjson");
        std::fs::write(
            &path,
            "{\"lead\": {\"id\": \"l1\"}}\n{\"lead\": {\"id\": \"l2\"}}\n",
        )
        .unwrap();
        let plan = Plan {
            format: None,
            kind: None,
            batch_size: 1,
        };
        let outcome = read_all(&[path], &plan, &sender, &ProgressBar::hidden());
        assert_eq!(outcome.origins.len(), 1);
    }
}
