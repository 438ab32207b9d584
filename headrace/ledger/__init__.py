"""The run ledger: one DynamoDB table, one partition per model, one pydantic model per kind of item.

keys.py          the key schema, `model#<model>` and each kind's sort-key prefix, `sort_time`, `plain`
datasets.py      DatasetVersion (what ingest accepts and training reads), dataset, rejection, misplaced items
runs.py          training runs, item by item as the steps write them
deployments.py   runs of the deploy workflow
checks.py        drift checks
labels.py        accepted ground-truth label files
quality.py       quality checks (live metrics against ground truth)
batches.py       batch scoring jobs (transform jobs)
decisions.py     retraining and idle-endpoint decisions
training_input.py  the training state machine's input, within Step Functions' size limit
ports.py         what each domain needs of the ledger, as Protocols
dynamo.py        DynamoLedger, the one adapter (boto3); memory.py the in-memory one tests use

Only this package knows key strings: everything else writes and reads typed items.

Each kind's module is imported when one of its names is first asked for (one pydantic model per kind: the
package whole is ~25 ms at cold start), so a function pays for the kinds its modules name, not for every
kind: its domain modules import theirs at module level, hence at init.
"""

from typing import TYPE_CHECKING

from headrace.lazy_exports import lazy_exports
from headrace.ledger.keys import PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE, Kind, plain, sort_time

if TYPE_CHECKING:
    from headrace.ledger.batches import BatchItem, BatchStatus
    from headrace.ledger.checks import DriftCheckItem
    from headrace.ledger.datasets import (
        CategoricalStatistics,
        ColumnStatistics,
        DatasetItem,
        DatasetVersion,
        FileFormat,
        MisplacedItem,
        NumericStatistics,
        RejectionItem,
    )
    from headrace.ledger.decisions import IdleDecision, RetrainDecision
    from headrace.ledger.deployments import DeploymentItem
    from headrace.ledger.dynamo import DynamoLedger
    from headrace.ledger.item import LedgerItem
    from headrace.ledger.labels import LabelFileItem
    from headrace.ledger.memory import MemoryLedger
    from headrace.ledger.ports import (
        DatasetLedger,
        DeploymentLedger,
        DriftLedger,
        IdleLedger,
        QualityLedger,
        RetrainLedger,
        RunLedger,
    )
    from headrace.ledger.quality import QualityCheckItem
    from headrace.ledger.runs import RunItem, RunStatus, StartedRun
    from headrace.ledger.training_input import EXECUTION_INPUT_MAX, TrainingInput, TrainingInputTooLarge

_LAZY = {
    "BatchItem": "batches",
    "BatchStatus": "batches",
    "DriftCheckItem": "checks",
    "CategoricalStatistics": "datasets",
    "ColumnStatistics": "datasets",
    "DatasetItem": "datasets",
    "DatasetVersion": "datasets",
    "FileFormat": "datasets",
    "MisplacedItem": "datasets",
    "NumericStatistics": "datasets",
    "RejectionItem": "datasets",
    "IdleDecision": "decisions",
    "RetrainDecision": "decisions",
    "DeploymentItem": "deployments",
    "DynamoLedger": "dynamo",
    "LedgerItem": "item",
    "LabelFileItem": "labels",
    "MemoryLedger": "memory",
    "DatasetLedger": "ports",
    "DeploymentLedger": "ports",
    "DriftLedger": "ports",
    "IdleLedger": "ports",
    "QualityLedger": "ports",
    "RetrainLedger": "ports",
    "RunLedger": "ports",
    "QualityCheckItem": "quality",
    "RunItem": "runs",
    "RunStatus": "runs",
    "StartedRun": "runs",
    "EXECUTION_INPUT_MAX": "training_input",
    "TrainingInput": "training_input",
    "TrainingInputTooLarge": "training_input",
}


__getattr__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "EXECUTION_INPUT_MAX",
    "PARTITION_KEY",
    "SORT_KEY",
    "TTL_ATTRIBUTE",
    "BatchItem",
    "BatchStatus",
    "CategoricalStatistics",
    "ColumnStatistics",
    "DatasetItem",
    "DatasetLedger",
    "DatasetVersion",
    "DeploymentItem",
    "DeploymentLedger",
    "DriftCheckItem",
    "DriftLedger",
    "DynamoLedger",
    "FileFormat",
    "IdleDecision",
    "IdleLedger",
    "Kind",
    "LabelFileItem",
    "LedgerItem",
    "MemoryLedger",
    "MisplacedItem",
    "NumericStatistics",
    "QualityCheckItem",
    "QualityLedger",
    "RejectionItem",
    "RetrainDecision",
    "RetrainLedger",
    "RunItem",
    "RunLedger",
    "RunStatus",
    "StartedRun",
    "TrainingInput",
    "TrainingInputTooLarge",
    "plain",
    "sort_time",
]
