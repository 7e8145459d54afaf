#!/usr/bin/env python3
"""Stores the deals of a CSV file in kpid, then prints sales.win_rate month by month.

    ./generate.sh                                   # once: venv + stubs in gen/
    .venv/bin/python win_rate_by_month.py --addr 127.0.0.1:50051

The CSV has one deal a line with the columns
id,owner,amount,created_at,closed_at,status,kind,stage: amounts are plain decimal
strings (sent as such, never through a float), times are RFC 3339 instants with an
offset, closed_at is empty for open deals, status is open/won/lost, kind is
new_business/upsell/cross_sell/renewal and stage is the last pipeline stage the deal
entered (sent as its one stage_history entry, entered at created_at).

Exits 1 on any RPC error or rejected record, 2 on a bad CSV or missing stubs.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "gen"))

try:
    import grpc
    from google.protobuf.timestamp_pb2 import Timestamp
    from kpi.v1 import metrics_pb2, metrics_pb2_grpc, records_pb2, records_pb2_grpc
except ImportError as e:  # pragma: no cover - depends on the environment
    sys.exit(
        f"cannot import the gRPC stubs ({e}); run {HERE / 'generate.sh'} and use "
        f"{HERE / '.venv/bin/python'}"
    )

METRIC_ID = "sales.win_rate"
COLUMNS = ["id", "owner", "amount", "created_at", "closed_at", "status", "kind", "stage"]
DECIMAL = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
STATUSES = {
    "open": records_pb2.DEAL_STATUS_OPEN,
    "won": records_pb2.DEAL_STATUS_WON,
    "lost": records_pb2.DEAL_STATUS_LOST,
}
KINDS = {
    "new_business": records_pb2.DEAL_KIND_NEW_BUSINESS,
    "upsell": records_pb2.DEAL_KIND_UPSELL,
    "cross_sell": records_pb2.DEAL_KIND_CROSS_SELL,
    "renewal": records_pb2.DEAL_KIND_RENEWAL,
}


class CsvError(Exception):
    """A line of the CSV that cannot become a Deal."""


def parse_instant(text: str, where: str) -> datetime:
    """Parses an RFC 3339 instant that carries an offset (`2024-01-31T23:59:59Z`)."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError as e:
        raise CsvError(f"{where}: `{text}` is not an RFC 3339 instant") from e
    if at.tzinfo is None:
        raise CsvError(f"{where}: `{text}` has no offset; write Z or +HH:MM")
    return at.astimezone(timezone.utc)


def timestamp(at: datetime) -> Timestamp:
    """The protobuf Timestamp of a timezone-aware datetime."""
    ts = Timestamp()
    ts.FromDatetime(at)
    return ts


def read_deals(path: Path) -> tuple[list[records_pb2.Record], list[datetime]]:
    """Reads the CSV into Deal records and every instant it mentions."""
    records: list[records_pb2.Record] = []
    instants: list[datetime] = []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != COLUMNS:
            raise CsvError(f"{path}: header must be {','.join(COLUMNS)}")
        for line, row in enumerate(reader, start=2):
            where = f"{path.name}:{line}"
            if not DECIMAL.match(row["amount"]):
                raise CsvError(f"{where}: amount `{row['amount']}` is not a plain decimal")
            if row["status"] not in STATUSES:
                raise CsvError(f"{where}: status `{row['status']}` is not one of {sorted(STATUSES)}")
            if row["kind"] not in KINDS:
                raise CsvError(f"{where}: kind `{row['kind']}` is not one of {sorted(KINDS)}")
            created = parse_instant(row["created_at"], f"{where} created_at")
            deal = records_pb2.Deal(
                id=row["id"],
                owner=row["owner"],
                amount=row["amount"],
                created_at=timestamp(created),
                status=STATUSES[row["status"]],
                kind=KINDS[row["kind"]],
            )
            instants.append(created)
            if row["closed_at"]:
                closed = parse_instant(row["closed_at"], f"{where} closed_at")
                deal.closed_at.CopyFrom(timestamp(closed))
                instants.append(closed)
            if row["stage"]:
                deal.stage_history.append(
                    records_pb2.StageEntry(stage=row["stage"], entered_at=timestamp(created))
                )
            records.append(records_pb2.Record(deal=deal))
    if not records:
        raise CsvError(f"{path}: no deals")
    return records, instants


def month_start(at: datetime) -> datetime:
    """The first instant (UTC) of the month of `at`."""
    return at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month_start(at: datetime) -> datetime:
    """The first instant (UTC) of the month after the month of `at`."""
    start = month_start(at)
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)


def rfc3339(at: datetime) -> str:
    """`2024-01-01T00:00:00Z`."""
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def main() -> int:
    """Runs the example; returns the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", default="127.0.0.1:50051", help="kpid's HOST:PORT")
    parser.add_argument("--csv", type=Path, default=HERE / "deals.csv", help="the deals")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per RPC")
    args = parser.parse_args()
    addr = args.addr.removeprefix("http://")

    try:
        records, instants = read_deals(args.csv)
    except (CsvError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    # The window covers every month the data touches: [first month, month after the last).
    start = month_start(min(instants))
    end = next_month_start(max(instants))

    with grpc.insecure_channel(addr) as channel:
        records_api = records_pb2_grpc.RecordsServiceStub(channel)
        metrics_api = metrics_pb2_grpc.MetricsServiceStub(channel)
        try:
            put = records_api.PutRecords(
                records_pb2.PutRecordsRequest(records=records), timeout=args.timeout
            )
            if put.rejected:
                for rejected in put.rejected:
                    deal_id = (
                        records[rejected.index].deal.id if rejected.index < len(records) else "?"
                    )
                    print(
                        f"error: record {rejected.index} ({deal_id}) rejected: {rejected.reason}",
                        file=sys.stderr,
                    )
                return 1
            answer = metrics_api.Compute(
                metrics_pb2.ComputeRequest(
                    metric_id=METRIC_ID,
                    start=timestamp(start),
                    end=timestamp(end),
                    granularity=metrics_pb2.GRANULARITY_MONTH,
                    time_zone="UTC",
                ),
                timeout=args.timeout,
            )
        except grpc.RpcError as e:
            print(f"error: {e.code().name}: {e.details()}", file=sys.stderr)
            return 1

    if not answer.rows:
        print(f"error: {METRIC_ID} came back with no rows", file=sys.stderr)
        return 1
    print(f"stored {put.accepted} deals from {args.csv.name}")
    print(f"{METRIC_ID} (%) by month, window [{rfc3339(start)}, {rfc3339(end)}) UTC")
    table = []
    for row in answer.rows:
        month = row.bucket_start.ToDatetime(tzinfo=timezone.utc).strftime("%Y-%m")
        value = row.value if row.value else f"undefined: {row.undefined_reason}"
        table.append((month, value, row.inputs.get("won", "?"), row.inputs.get("lost", "?")))
    width = max([len("value")] + [len(value) for _, value, _, _ in table])
    print(f"{'month':<7}  {'value':<{width}}  {'won':>4}  {'lost':>4}")
    for month, value, won, lost in table:
        print(f"{month:<7}  {value:<{width}}  {won:>4}  {lost:>4}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
