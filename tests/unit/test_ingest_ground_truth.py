"""Ground-truth files and production datasets through the ingest flow, with in-memory fakes: accepted copies
in canonical form recorded once per content, bad files quarantined as bad datasets are, production data
recorded as a dataset version without a training run."""

from __future__ import annotations

import hashlib
import json

from headrace.ingest import Outcome
from headrace.ledger import DatasetItem, LabelFileItem
from tests.unit import test_ingest_service
from tests.unit.test_ingest_service import BUCKET, World

# The ingest flow's fakes and a good churn file, as the dataset tests use them.
world = test_ingest_service.world
good = test_ingest_service.good

JSONL = (
    b'{"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "req-1"}, '
    b'"eventVersion": "0"}\n'
    b'{"groundTruthData": {"data": "0,1", "encoding": "CSV"}, "eventMetadata": {"eventId": "req-2"}, '
    b'"eventVersion": "0"}\n'
)
CANONICAL = b"inference_id,row,label\nreq-1,0,1\nreq-2,0,0\nreq-2,1,1\n"


def test_a_good_label_file_is_copied_in_canonical_form_and_recorded(world: World) -> None:
    result = world.drop("churn/ground-truth/incoming/monday.jsonl", JSONL)

    sha256 = hashlib.sha256(CANONICAL).hexdigest()
    assert (result.outcome, result.sha256) == (Outcome.ACCEPTED, sha256)
    assert result.accepted_key == (
        f"churn/ground-truth/accepted/2026/11/23/10/20261123T101532000000Z-{sha256[:16]}.csv"
    )
    assert world.store.objects[(BUCKET, result.accepted_key)] == CANONICAL
    [item] = world.ledger.of_kind(LabelFileItem, "churn")
    assert (item.source_key, item.records, item.labels, item.inferences) == (
        "churn/ground-truth/incoming/monday.jsonl",
        2,
        3,
        2,
    )
    assert world.runs.started == {} and world.metrics.counted == [("LabelFilesAccepted", "churn")]


def test_the_same_labels_as_csv_are_one_accepted_copy(world: World) -> None:
    first = world.drop("churn/ground-truth/incoming/monday.jsonl", JSONL)
    again = world.drop("churn/ground-truth/incoming/monday.csv", b"inference_id,row,label\n" + CANONICAL[23:])

    assert (first.outcome, again.outcome) == (Outcome.ACCEPTED, Outcome.DUPLICATE)
    assert again.accepted_key == first.accepted_key
    assert len(world.ledger.of_kind(LabelFileItem, "churn")) == 1
    assert [k for _, k in world.store.objects if "/accepted/" in k] == [first.accepted_key]


def test_a_bad_label_file_is_quarantined_with_its_reason_and_the_original_kept(world: World) -> None:
    bad = JSONL + b"not json\n"
    result = world.drop("churn/ground-truth/incoming/bad.jsonl", bad)

    assert result.outcome is Outcome.QUARANTINED and result.quarantine_key is not None
    assert result.quarantine_key.startswith("churn/quarantine/2026-11-23/")
    assert world.store.objects[(BUCKET, result.quarantine_key)] == bad
    assert world.store.objects[(BUCKET, "churn/ground-truth/incoming/bad.jsonl")] == bad
    reason_key = result.quarantine_key.rsplit("/", 1)[0] + "/reason.json"
    reason = json.loads(world.store.objects[(BUCKET, reason_key)])
    assert [p["rule"] for p in reason["problems"]] == ["not_json"]
    assert reason["problems"][0]["message"].startswith("line 3 is not JSON")
    assert world.ledger.of_kind(LabelFileItem, "churn") == []


def test_a_label_file_of_an_unsupported_format_is_quarantined_unread(world: World) -> None:
    result = world.drop("churn/ground-truth/incoming/labels.xlsx", b"PK\x03\x04")

    assert result.outcome is Outcome.QUARANTINED
    assert result.problems is not None and [p.rule.value for p in result.problems] == ["format"]
    assert world.store.reads == []


def test_a_production_dataset_is_a_version_with_lineage_and_starts_no_run(world: World, good: bytes) -> None:
    key = "churn/incoming/production/20261123T101532Z-q1.csv"
    result = world.drop(key, good)

    sha256 = hashlib.sha256(good).hexdigest()
    assert (result.outcome, result.sha256) == (Outcome.ACCEPTED, sha256)
    assert world.runs.started == {}
    item = world.ledger.dataset("churn", sha256)
    assert isinstance(item, DatasetItem) and item.execution_arn is None
    assert (item.source, item.status) == ("production", "accepted")
    assert item.lineage_uri == f"s3://{BUCKET}/churn/monitoring/quality/20261123T101532Z-q1/lineage.json"
    assert item.version().source == "production"
    assert world.store.objects[(BUCKET, f"churn/datasets/{sha256}/data.csv")] == good


def test_the_same_production_data_twice_is_one_version(world: World, good: bytes) -> None:
    world.drop("churn/incoming/production/a.csv", good)
    again = world.drop("churn/incoming/production/b.csv", good)

    assert again.outcome is Outcome.DUPLICATE and world.runs.started == {}


def test_uploads_keep_the_upload_source(world: World, good: bytes) -> None:
    result = world.drop("churn/incoming/customers.csv", good)

    item = world.ledger.dataset("churn", result.sha256 or "")
    assert item is not None and (item.source, item.lineage_uri) == ("upload", None)
