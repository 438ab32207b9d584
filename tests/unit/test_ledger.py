"""The ledger's item models: each kind's key, and items read back as they were written."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from headrace.ledger import (
    DeploymentItem,
    DriftCheckItem,
    IdleDecision,
    LedgerItem,
    RejectionItem,
    RetrainDecision,
    RunItem,
    plain,
)
from headrace.ledger.datasets import MisplacedItem, upload_digest
from headrace.ledger.kinds import read_item, stored_item
from headrace.ledger.memory import MemoryLedger

NOW = datetime(2026, 11, 23, 10, 15, 32, tzinfo=UTC)

ITEMS: list[tuple[LedgerItem, str]] = [
    (
        RejectionItem(
            model="churn",
            sha256="ab" * 32,
            bucket="data",
            key="churn/incoming/x.csv",
            version_id=None,
            size_bytes=3,
            quarantine_key="q",
            reason_key="r",
            rules=["empty"],
            received_at="2026-11-23T10:15:32.000000Z",
            recorded_at="2026-11-23T10:15:32.000000Z",
        ),
        # The upload's digest makes the key unique per object (issue 14, finding 8).
        "rejection#2026-11-23T10:15:32.000000Z#abababababab#8a193534",
    ),
    (
        MisplacedItem(
            model="churn",
            bucket="data",
            key="churn/incomming/x.csv",
            version_id="v1",
            size_bytes=3,
            hint="did you mean churn/incoming/x.csv?",
            received_at="2026-11-23T10:15:32.000000Z",
            recorded_at="2026-11-23T10:15:32.000000Z",
        ),
        f"misplaced#2026-11-23T10:15:32.000000Z#{upload_digest('churn/incomming/x.csv', 'v1')}",
    ),
    (RunItem.approval("churn", "churn-job", "Approved"), "run#churn-job"),
    (DeploymentItem(model="churn", deployment_id="t#exec", status="serving", version=2), "deploy#t#exec"),
    (DriftCheckItem(model="churn", check_id="t#exec", until="u", status="stable"), "drift#t#exec"),
    (
        RetrainDecision(
            model="churn", alarm="a", episode="e", decision="skipped", reason="r", decided_at=NOW
        ),
        "retrain#2026-11-23T10:15:32.000000Z",
    ),
    (
        IdleDecision(model="churn", endpoint="e", decision="kept", reason="r", idle_hours=2, decided_at=NOW),
        "idle#2026-11-23T10:15:32.000000Z",
    ),
]


@pytest.mark.parametrize(
    ("item", "sk"), ITEMS, ids=lambda v: type(v).__name__ if isinstance(v, LedgerItem) else ""
)
def test_each_kind_sits_in_its_models_partition_under_its_prefix(item: LedgerItem, sk: str) -> None:
    assert item.table_key == {"pk": "model#churn", "sk": sk}


@pytest.mark.parametrize(
    ("item", "sk"), ITEMS, ids=lambda v: type(v).__name__ if isinstance(v, LedgerItem) else ""
)
def test_each_kind_reads_back_as_written(item: LedgerItem, sk: str) -> None:
    ledger = MemoryLedger()
    ledger.record(item)

    assert read_item(ledger.items[("model#churn", sk)]) == item


def test_a_record_of_another_writer_is_no_ledger_item() -> None:
    assert read_item({"pk": "idempotency#headrace-ingest#abc", "sk": "x", "status": "COMPLETED"}) is None


def test_checks_and_decisions_leave_out_what_they_lack() -> None:
    stored = stored_item(DriftCheckItem(model="churn", check_id="c", until="u", since=None, status="stable"))

    assert stored == {
        "pk": "model#churn",
        "sk": "drift#c",
        "kind": "drift",
        "check_id": "c",
        "until": "u",
        "status": "stable",
    }


def test_dynamodb_numbers_come_back_as_ints_and_floats() -> None:
    assert plain({"rows": Decimal("3"), "psi": [Decimal("0.25")]}) == {"rows": 3, "psi": [0.25]}
