"""`headrace runs` for tuned runs, read from the ledger as the training state machine wrote them: the list
says how many trials and which won, `runs trials` shows each, `runs compare RUN --best N` the top ones side
by side, `runs report` writes the HTML page; asking any of them about an untuned run says so and exits 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer
from typer.testing import CliRunner, Result

from headrace.cli.main import app
from headrace.cli.target import Target
from headrace.ledger import RunItem
from headrace.ledger.keys import PARTITION_KEY, SORT_KEY
from headrace.ledger.kinds import stored_item
from headrace.naming import Outputs

from .test_tuning_report import JOB, TUNING

TUNED = "churn-20261201T100000Z-tuned"
PLAIN = "churn-20261130T100000Z-plain"


class FakeDynamoDB:
    """The ledger table's query, answering with the items as DynamoDB stores them."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    def get_paginator(self, operation: str) -> FakeDynamoDB:
        assert operation == "query"
        return self

    def paginate(self, **query: Any) -> list[dict[str, Any]]:
        prefix = query["ExpressionAttributeValues"][":prefix"]["S"]
        partition = query["ExpressionAttributeValues"][":pk"]["S"]
        found = [i for i in self.items if i[PARTITION_KEY] == partition and i[SORT_KEY].startswith(prefix)]
        serialize = TypeSerializer().serialize
        return [{"Items": [{k: serialize(v) for k, v in item.items()} for item in found]}]


class FakeCloudFormation:
    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        outputs = {
            Outputs.DATA_BUCKET: "data",
            Outputs.LEDGER_TABLE: "ledger",
            Outputs.INGEST_FUNCTION: "ingest",
            Outputs.training_state_machine("churn"): "arn:aws:states:us-east-1:123456789012:stateMachine:t",
        }
        return {"Stacks": [{"Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()]}]}


def run_item(job: str, started: str, version: int, tuning: dict[str, Any] | None) -> dict[str, Any]:
    item = RunItem(
        model="churn",
        job_name=job,
        status="registered",
        started_at=started,
        version=version,
        metrics=json.dumps({"auc": 0.86}),
        gate=json.dumps({"metric": "auc"}),
        hyperparameters=json.dumps({"eta": "0.05", "max_depth": "4", "num_round": "60"}),
        tuning=json.dumps(tuning) if tuning else None,
    )
    return stored_item(item)


@pytest.fixture
def ledger(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeDynamoDB:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HEADRACE_MODELS_DIR", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    table = FakeDynamoDB(
        [
            run_item(TUNED, "2026-12-01T10:00:00.000000Z", 2, TUNING),
            run_item(PLAIN, "2026-11-30T10:00:00.000000Z", 1, None),
        ]
    )
    services = {"dynamodb": table, "cloudformation": FakeCloudFormation()}
    monkeypatch.setattr(Target, "client", lambda target, service: services[service])
    return table


def headrace(*args: str) -> Result:
    return CliRunner(env={"COLUMNS": "250"}).invoke(app, list(args))


def test_the_list_says_how_many_trials_a_tuned_run_had_and_which_won(ledger: FakeDynamoDB) -> None:
    done = headrace("runs", "churn")
    assert done.exit_code == 0, done.stderr
    lines = {line.split("│")[2].strip(): line for line in done.stdout.splitlines() if "│" in line}
    assert f"tuned: 6 trials, best {JOB}-004-00000004" in lines[TUNED]
    assert "tuned:" not in lines[PLAIN]


def test_a_list_with_no_tuned_run_has_no_tuning_column(ledger: FakeDynamoDB) -> None:
    ledger.items = [i for i in ledger.items if i["job_name"] == PLAIN]
    done = headrace("runs", "churn")
    assert done.exit_code == 0, done.stderr
    assert "tuning" not in done.stdout


def test_the_list_as_json_carries_the_tuning_document(ledger: FakeDynamoDB) -> None:
    done = headrace("runs", "churn", "--json")
    listed = {r["job_name"]: r for r in json.loads(done.stdout)}
    assert listed[TUNED]["tuning"] == TUNING
    assert listed[PLAIN]["tuning"] == {}


def test_trials_shows_every_trial_by_version_with_the_best_marked(ledger: FakeDynamoDB) -> None:
    done = headrace("runs", "trials", "v2", "--model", "churn")
    assert done.exit_code == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if JOB in line and "│" in line]
    assert len(rows) == 6
    best = [r for r in rows if r.rstrip("│ ").endswith("best")]
    assert len(best) == 1 and "004" in best[0] and "0.8600" in best[0]
    assert "best: " in done.stdout and "1 stopped early, 1 failed" in done.stdout


def test_trials_as_json_is_the_tuning_document(ledger: FakeDynamoDB) -> None:
    done = headrace("runs", "trials", TUNED, "--json")
    printed = json.loads(done.stdout)
    assert [t["name"] for t in printed["trials"]] == [t["name"] for t in TUNING["trials"]]
    assert printed["best"]["name"] == TUNING["best"]["name"]


def test_trials_of_an_untuned_run_exits_2_saying_it_was_not_tuned(ledger: FakeDynamoDB) -> None:
    done = headrace("runs", "trials", PLAIN)
    assert done.exit_code == 2
    assert f"run {PLAIN} of churn was not tuned" in done.stderr


def test_compare_best_shows_the_top_trials_by_the_objective(ledger: FakeDynamoDB) -> None:
    done = headrace("runs", "compare", TUNED, "--best", "3", "--json")
    assert done.exit_code == 0, done.stderr
    printed = json.loads(done.stdout)
    assert [t["objective"] for t in printed["trials"]] == [0.86, 0.84, 0.81]
    assert printed["objective"] == {"name": "validation:auc", "type": "Maximize"}
    table = headrace("runs", "compare", TUNED, "--best", "2")
    assert "hp.max_depth" in table.stdout and "Completed (best)" in table.stdout


def test_compare_of_two_runs_is_unchanged(ledger: FakeDynamoDB) -> None:
    done = headrace("runs", "compare", "v1", "v2", "--model", "churn", "--json")
    assert done.exit_code == 0, done.stderr
    printed = json.loads(done.stdout)
    assert (printed["a"]["job_name"], printed["b"]["job_name"]) == (PLAIN, TUNED)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        ((TUNED,), "compare needs two runs, or one tuned run with --best N"),
        ((TUNED, PLAIN, "--best", "3"), "--best compares the trials of one run; give one run"),
        ((PLAIN, "--best", "3"), f"run {PLAIN} of churn was not tuned"),
        (("nosuch", "--best", "3"), "no single run matches 'nosuch'"),
    ],
)
def test_compare_asked_the_wrong_way_exits_2_saying_why(
    ledger: FakeDynamoDB, args: tuple[str, ...], said: str
) -> None:
    done = headrace("runs", "compare", *args)
    assert done.exit_code == 2
    assert said in done.stderr


def test_report_writes_one_html_page_with_the_plot_and_every_trial(
    ledger: FakeDynamoDB, tmp_path: Path
) -> None:
    out = tmp_path / "tuning.html"
    done = headrace("runs", "report", "v2", "--model", "churn", "--out", str(out))
    assert done.exit_code == 0, done.stderr
    page = out.read_text()
    assert page.startswith("<!doctype html>") and page.count("<svg") == 1
    assert all(t["name"] in page for t in TUNING["trials"])
    assert "<script" not in page


def test_report_to_a_folder_that_does_not_exist_exits_2_naming_it(
    ledger: FakeDynamoDB, tmp_path: Path
) -> None:
    out = tmp_path / "missing" / "tuning.html"
    done = headrace("runs", "report", TUNED, "--out", str(out))
    assert done.exit_code == 2
    assert f"cannot write the report to {out}" in done.stderr


def test_the_help_says_which_way_trials_are_compared() -> None:
    done = headrace("runs", "compare", "--help")
    assert "--best" in done.stdout and "named by rank" in done.stdout
