"""`make demo`: the loop on the local plane, step by step, with a live display.

Any step that does not happen fails the demo loudly, naming the step.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.live import Live
from rich.table import Table

from headrace.config import load_models
from headrace.datagen import generate
from headrace.deployment import DeploymentInfo, describe
from headrace.local.aws import Clients
from headrace.local.control import PlaneError, start_detached, stop_detached
from headrace.naming import Names, execution_name
from headrace.waiting import WaitTimeout, wait_for

from .output import console, table

WORK_DIR = Path(".headrace/demo")
MODEL = "churn"


@dataclass
class Step:
    title: str
    status: str = "pending"
    detail: str = ""
    seconds: float = 0.0


@dataclass
class Demo:
    rows: int
    steps: list[Step] = field(default_factory=list)
    _clients: Clients | None = None
    _deployment: DeploymentInfo | None = None
    facts: dict[str, Any] = field(default_factory=dict)

    def render(self) -> Table:
        icons = {
            "pending": "[dim]·[/]",
            "running": "[yellow]…[/]",
            "done": "[green]✓[/]",
            "failed": "[red]✗[/]",
        }
        view = Table(title="Headrace demo — local plane", title_justify="left", show_header=False, box=None)
        view.add_column(width=2)
        view.add_column()
        view.add_column(justify="right", style="dim")
        view.add_column(style="dim")
        for step in self.steps:
            seconds = f"{step.seconds:.1f}s" if step.status in ("done", "failed") else ""
            view.add_row(icons[step.status], step.title, seconds, step.detail)
        return view

    def run(self, live: Live, title: str, action: Callable[[], str]) -> None:
        step = Step(title, "running")
        self.steps.append(step)
        live.update(self.render())
        started = time.perf_counter()
        try:
            step.detail = action()
            step.status = "done"
        except Exception as exc:
            step.status, step.detail = "failed", str(exc).splitlines()[0][:120]
            raise DemoFailed(title, exc) from exc
        finally:
            step.seconds = time.perf_counter() - started
            live.update(self.render())

    @property
    def clients(self) -> Clients:
        if self._clients is None:
            raise RuntimeError("the local plane is not up")
        return self._clients

    @property
    def deployment(self) -> DeploymentInfo:
        if self._deployment is None:
            raise RuntimeError("the local plane is not up")
        return self._deployment

    # The steps.
    def start_plane(self) -> str:
        stop_detached(WORK_DIR)
        info = start_detached(work_dir=WORK_DIR)
        self._clients = Clients(info.endpoint)
        self._deployment = describe(self.clients.cloudformation, Names(info.stage), load_models())
        self.facts["endpoint"] = info.endpoint
        return f"{info.endpoint}, stacks provisioned from cdk synth"

    def drop_good_file(self) -> str:
        model = self.deployment.model(MODEL)
        frame = generate(next(m for m in load_models() if m.name == MODEL), self.rows, seed=int(time.time()))
        body = frame.to_csv(index=False).encode()
        key = f"{model.incoming_prefix}demo-{time.strftime('%Y%m%d-%H%M%S')}.csv"
        self.clients.s3.put_object(Bucket=model.data_bucket, Key=key, Body=body)
        self.facts.update(sha256=hashlib.sha256(body).hexdigest(), key=key, dropped_at=time.perf_counter())
        return f"{self.rows:,} rows → s3://{model.data_bucket}/{key}"

    def await_dataset(self) -> str:
        dynamodb = self.clients.client("dynamodb")
        sk = f"dataset#{self.facts['sha256']}"

        def recorded() -> dict[str, Any] | None:
            item = dynamodb.get_item(
                TableName=self.deployment.ledger_table, Key={"pk": {"S": f"model#{MODEL}"}, "sk": {"S": sk}}
            ).get("Item")
            return item if item else None

        item = wait_for(recorded, "the dataset version in the ledger", timeout_s=60)
        rows = item.get("rows", {}).get("N", "?")
        return f"validated, {rows} rows, version {self.facts['sha256'][:12]}"

    def await_execution(self) -> str:
        sfn = self.clients.client("stepfunctions")
        arn = self.deployment.model(MODEL).training_state_machine_arn
        name = execution_name(MODEL, self.facts["sha256"])
        execution_arn = arn.replace(":stateMachine:", ":execution:") + f":{name}"

        def started() -> dict[str, Any] | None:
            try:
                return dict(sfn.describe_execution(executionArn=execution_arn))
            except sfn.exceptions.ExecutionDoesNotExist:
                return None

        execution = wait_for(started, f"training execution {name}", timeout_s=60)
        self.facts["execution_arn"] = execution_arn
        seconds = time.perf_counter() - self.facts["dropped_at"]
        self.facts["ingest_seconds"] = seconds
        dataset = json.loads(execution["input"])["dataset"]
        return (
            f"{name} {execution['status']} (input: dataset {dataset['sha256'][:12]}), "
            f"{seconds:.1f}s after the drop"
        )

    def await_registered(self) -> str:
        sfn = self.clients.client("stepfunctions")

        def finished() -> dict[str, Any] | None:
            described = sfn.describe_execution(executionArn=self.facts["execution_arn"])
            return dict(described) if described["status"] != "RUNNING" else None

        execution = wait_for(finished, "the training run to finish", timeout_s=300, interval_s=0.3)
        if execution["status"] != "SUCCEEDED":
            raise RuntimeError(f"the training run ended {execution['status']}: {execution.get('cause', '')}")
        output = json.loads(execution["output"])
        registered, gate = output.get("registered"), output.get("gate", {})
        if not registered:
            raise RuntimeError(f"the gate rejected the first model: {gate.get('reasons')}")
        seconds = time.perf_counter() - self.facts["dropped_at"]
        metric = gate.get("metric", "auc")
        score = gate.get("candidate", {}).get(metric)
        return (
            f"v{registered['version']} {registered['approval_status']}, "
            f"{metric} {score:.3f} on held-out rows, {seconds:.1f}s after the drop"
        )

    def drop_bad_file(self) -> str:
        model = self.deployment.model(MODEL)
        frame = generate(next(m for m in load_models() if m.name == MODEL), 800, seed=3)
        frame.loc[5:40, "monthly_charges"] = -12.5
        frame.loc[60:70, "region"] = "atlantis"
        buffer = io.StringIO()
        frame.drop(columns=["support_calls"]).to_csv(buffer, index=False)
        key = f"{model.incoming_prefix}broken-export.csv"
        self.clients.s3.put_object(Bucket=model.data_bucket, Key=key, Body=buffer.getvalue().encode())
        prefix = model.quarantine_prefix

        def reason() -> dict[str, Any] | None:
            listed = (
                self.clients.s3.list_objects_v2(Bucket=model.data_bucket, Prefix=prefix)
                if self.clients
                else {}
            )
            keys = [o["Key"] for o in listed.get("Contents", []) if o["Key"].endswith("reason.json")]
            for reason_key in keys:
                doc = json.loads(
                    self.clients.s3.get_object(Bucket=model.data_bucket, Key=reason_key)["Body"].read()
                )
                if doc["source"]["key"] == key:
                    return dict(doc)
            return None

        doc = wait_for(reason, "the bad file's quarantine reason", timeout_s=60)
        self.facts["problems"] = doc["problems"]
        return f"quarantined with {len(doc['problems'])} problems; the original is kept"


class DemoFailed(RuntimeError):
    def __init__(self, step: str, cause: Exception) -> None:
        super().__init__(f"demo step '{step}' did not happen: {cause}")
        self.step = step


def run_demo(rows: int, keep: bool) -> int:
    demo = Demo(rows=rows)
    try:
        with Live(demo.render(), console=console, refresh_per_second=8) as live:
            demo.run(live, "Start the local plane (moto + cdk synth + provision)", demo.start_plane)
            demo.run(live, f"Generate {rows:,} rows of '{MODEL}' data and drop it in S3", demo.drop_good_file)
            demo.run(live, "Ingest: validate against the schema, version by content hash", demo.await_dataset)
            demo.run(live, "Training state machine started, exactly once", demo.await_execution)
            demo.run(
                live, "SageMaker training → evaluation vs champion → gate → registry", demo.await_registered
            )
            demo.run(live, "Drop a broken file: quarantined with a reason", demo.drop_bad_file)
    except (DemoFailed, PlaneError, WaitTimeout) as exc:
        console.print(f"[bold red]demo failed:[/] {exc}")
        if not keep:
            stop_detached(WORK_DIR)
        return 1
    problems = demo.facts.get("problems", [])
    console.print(
        table(
            "why the broken file was quarantined",
            ["rule", "column", "problem"],
            [(p["rule"], p.get("column") or "", p["message"]) for p in problems],
        )
    )
    console.print(
        f"\nIngest of {rows:,} rows: drop → execution started in "
        f"{demo.facts.get('ingest_seconds', 0):.1f}s.\n"
        "Keep exploring (the plane stays up with --keep):\n"
        '  eval "$(headrace local env --work-dir .headrace/demo)"   # point boto3 and the AWS CLI at it\n'
        "  aws s3 ls --recursive s3://<data bucket>/churn/          # see incoming/ and quarantine/\n"
        "  headrace status --json                                   # datasets, quarantine, executions"
    )
    if not keep:
        stop_detached(WORK_DIR)
    return 0
