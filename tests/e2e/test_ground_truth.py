"""Ground truth and production data arriving in S3 on the local plane (issue 16), the session's shared plane.

Through plain S3 uploads, the S3 event, EventBridge and the synthesized ingest function with the IAM its
template grants: every bad label file is quarantined with its reason (the original kept), good ones land in
accepted/ in canonical form, and a production CSV becomes a dataset version that starts no training run."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from headrace.datagen import generate
from headrace.deployment import DeploymentInfo
from headrace.ledger import DynamoLedger, LabelFileItem, RejectionItem
from headrace.local.plane_info import PlaneInfo
from headrace.waiting import wait_for

from .conftest import RunningPlane

pytestmark = pytest.mark.e2e

INCOMING = "churn/ground-truth/incoming"


def _line(data: Any, key: str = "req-1", encoding: str = "CSV") -> str:
    truth = {"data": data, "encoding": encoding}
    return json.dumps({"groundTruthData": truth, "eventMetadata": {"eventId": key}, "eventVersion": "0"})


def _jsonl(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


# name -> (content, the rule its reason.json must name)
BAD: dict[str, tuple[bytes, str]] = {
    "empty.jsonl": (b"", "empty"),
    "latin1.jsonl": (_jsonl(_line("1", key="cafe")).replace(b"cafe", b"caf\xe9"), "encoding"),
    "broken.jsonl": (_jsonl(_line("1"), "{oops"), "not_json"),
    "no-id.jsonl": (
        b'{"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {}}\n',
        "missing_field",
    ),
    "xml.jsonl": (_jsonl(_line("1", encoding="XML")), "label_encoding"),
    "bad-label.jsonl": (_jsonl(_line("7")), "label"),
    "no-label.jsonl": (_jsonl(_line("[]", encoding="JSON")), "label_count"),
    "extra-column.csv": (b"inference_id,label,score\na,1,0.5\n", "unexpected_columns"),
    "no-label-column.csv": (b"inference_id,row\na,0\n", "missing_columns"),
    "long-id.csv": (b"inference_id,label\n" + b"x" * 65 + b",1\n", "inference_id"),
    "twice.csv": (b"inference_id,label\na,1\na,0\n", "duplicate_label"),
    "labels.xlsx": (b"PK\x03\x04", "format"),
}
GOOD_JSONL = _jsonl(_line("1", key="req-1"), _line("0,1", key="req-2"))
GOOD_CSV = b"label,inference_id\nfalse,req-3\n1,req-4\n"
GOOD_KEYS = {f"{INCOMING}/good.jsonl", f"{INCOMING}/good.csv"}
T = TypeVar("T")


@dataclass(frozen=True)
class Arrived:
    info: PlaneInfo
    deployment: DeploymentInfo
    ledger: DynamoLedger
    s3: Any
    production_sha256: str


@pytest.fixture(scope="module")
def arrived(plane: RunningPlane) -> Arrived:
    """The session's plane (tests/e2e/conftest.py): every drop at once, then each test waits for its part."""
    clients = plane.clients
    production = generate(plane.models["churn"], 600, seed=11).to_csv(index=False).encode()
    drops = {f"{INCOMING}/{name}": body for name, (body, _) in BAD.items()}
    drops |= {f"{INCOMING}/good.jsonl": GOOD_JSONL, f"{INCOMING}/good.csv": GOOD_CSV}
    drops["churn/incoming/production/20261123T101532Z-q1.csv"] = production
    for key, body in drops.items():
        clients.s3.put_object(Bucket=plane.deployment.data_bucket, Key=key, Body=body)
    return Arrived(
        plane.info,
        plane.deployment,
        DynamoLedger(clients.client("dynamodb"), plane.deployment.ledger_table),
        clients.s3,
        hashlib.sha256(production).hexdigest(),
    )


def _rejections(arrived: Arrived) -> dict[str, RejectionItem]:
    return {r.key: r for r in arrived.ledger.everywhere(RejectionItem)}


def _all_of(found: dict[str, T], keys: set[str]) -> dict[str, T] | None:
    return found if keys <= set(found) else None


def _read(arrived: Arrived, key: str) -> bytes:
    body: bytes = arrived.s3.get_object(Bucket=arrived.deployment.data_bucket, Key=key)["Body"].read()
    return body


def test_every_bad_ground_truth_file_is_quarantined_with_its_reason_and_kept(arrived: Arrived) -> None:
    keys = {f"{INCOMING}/{name}" for name in BAD}
    found = wait_for(
        lambda: _all_of(_rejections(arrived), keys),
        f"{len(keys)} rejections",
        timeout_s=120,
    )
    for name, (body, rule) in BAD.items():
        rejection = found[f"{INCOMING}/{name}"]
        reason = json.loads(_read(arrived, rejection.reason_key))
        assert [p["rule"] for p in reason["problems"]] == [rule], name
        assert reason["problems"][0]["message"], name
        assert _read(arrived, rejection.quarantine_key) == body, name
        assert _read(arrived, f"{INCOMING}/{name}") == body, name  # the original stays


def test_good_ground_truth_files_are_accepted_in_canonical_form(arrived: Arrived) -> None:
    files = wait_for(
        lambda: _all_of({f.source_key: f for f in arrived.ledger.label_files("churn")}, GOOD_KEYS),
        "two accepted label files",
        timeout_s=120,
    )
    by_source = files
    assert _read(arrived, by_source[f"{INCOMING}/good.jsonl"].accepted_key) == (
        b"inference_id,row,label\nreq-1,0,1\nreq-2,0,0\nreq-2,1,1\n"
    )
    assert _read(arrived, by_source[f"{INCOMING}/good.csv"].accepted_key) == (
        b"inference_id,row,label\nreq-3,0,0\nreq-4,0,1\n"
    )
    assert all(
        isinstance(f, LabelFileItem) and "/ground-truth/accepted/" in f.accepted_key for f in files.values()
    )


def test_a_production_csv_becomes_a_dataset_version_without_a_training_run(arrived: Arrived) -> None:
    item = wait_for(
        lambda: arrived.ledger.dataset("churn", arrived.production_sha256),
        "the production dataset",
        timeout_s=120,
    )
    assert (item.source, item.execution_arn) == ("production", None)
    assert item.lineage_uri and item.lineage_uri.endswith(
        "/churn/monitoring/quality/20261123T101532Z-q1/lineage.json"
    )
    sfn = arrived.info.clients().client("stepfunctions")
    machine = arrived.deployment.model("churn").training_state_machine_arn
    # Other tests train churn on this plane: none of its executions is for the production dataset.
    names = [e["name"] for e in sfn.list_executions(stateMachineArn=machine)["executions"]]
    assert not [n for n in names if arrived.production_sha256[:12] in n]
