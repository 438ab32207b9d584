"""Ingest on the local plane: wall time from a file landing in S3 to its training execution starting.

Reference, measured in the same run: the ingest domain's own work on the same bytes in this process
(sha256 + read + validate + statistics), i.e. what a Lambda would spend. The ratio is the local plane's
overhead (S3 over HTTP, event delivery, DynamoDB, Step Functions) on top of it.

    .venv/bin/python bench/ingest_local.py [--rows 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from headrace.config import load_models
from headrace.datagen import generate
from headrace.ingest.dataset import summarize
from headrace.ingest.validation import inspect
from headrace.local.control import start_detached, stop_detached
from headrace.naming import execution_name
from headrace.waiting import wait_for


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    model = next(m for m in load_models() if m.name == "churn")
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as work:
        info = start_detached(work_dir=Path(work))
        try:
            clients = info.clients()
            bucket = info.outputs["headrace-dev-data"]["DataBucketName"]
            machine = info.outputs["headrace-dev-pipeline"]["TrainingStateMachineChurn"]
            sfn = clients.client("stepfunctions")
            for fmt in ("csv", "parquet"):
                plane_s, domain_s = [], []
                for attempt in range(args.repeat):
                    frame = generate(model, args.rows, seed=1000 + attempt)
                    buffer = io.BytesIO()
                    frame.to_csv(buffer, index=False) if fmt == "csv" else frame.to_parquet(
                        buffer, index=False
                    )
                    body = buffer.getvalue()
                    started = time.perf_counter()
                    hashlib.sha256(body).hexdigest()
                    inspection = inspect(f"x.{fmt}", body, model.data)
                    summarize(inspection.frame, model.data) if inspection.frame is not None else None
                    domain_s.append(time.perf_counter() - started)
                    name = execution_name("churn", hashlib.sha256(body).hexdigest())
                    started = time.perf_counter()
                    clients.s3.put_object(
                        Bucket=bucket, Key=f"churn/incoming/bench-{attempt}.{fmt}", Body=body
                    )
                    wait_for(
                        lambda n=name: any(
                            e["name"] == n for e in sfn.list_executions(stateMachineArn=machine)["executions"]
                        ),
                        "the execution",
                        timeout_s=120,
                        interval_s=0.02,
                    )
                    plane_s.append(time.perf_counter() - started)
                results[fmt] = {
                    "rows": args.rows,
                    "bytes": len(body),
                    "drop_to_execution_s": statistics.median(plane_s),
                    "domain_only_s": statistics.median(domain_s),
                    "ratio": statistics.median(plane_s) / statistics.median(domain_s),
                }
        finally:
            stop_detached(Path(work))
    print(f"{'format':8} {'rows':>8} {'MB':>6} {'drop→execution':>15} {'domain only':>12} {'ratio':>6}")
    for fmt, r in results.items():
        print(
            f"{fmt:8} {r['rows']:>8,} {r['bytes'] / 1e6:>6.1f} {r['drop_to_execution_s']:>14.2f}s "
            f"{r['domain_only_s']:>11.2f}s {r['ratio']:>6.1f}"
        )
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "ingest_local.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
