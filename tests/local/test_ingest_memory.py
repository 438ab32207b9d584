"""Ingest holds a file of max_file_mb within its function's memory (issue 12, finding 4), measured the way
Lambda meters it: validation runs in a local Lambda sandbox with the MemorySize that synth gives the ingest
function (headrace/ingest/sizing.py), and the sandbox is killed if its resident set goes over.

To measure by hand: `python -c 'from headrace.datagen import generate; ...'` to write a churn CSV, then run
this module's HANDLER in a HandlerRuntime (as below) and read `max_memory_mb`."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from headrace.config import load_models
from headrace.datagen import generate
from headrace.ingest.sizing import FileTooLargeForLambda, ingest_memory_mb, memory_for_file
from headrace.local.lambda_runtime import FunctionSpec, HandlerRuntime

REPO = Path(__file__).resolve().parents[2]
HANDLER = """
from pathlib import Path
from headrace.config import load_models
from headrace.ingest.dataset import content_sha256, summarize
from headrace.ingest.validation import inspect

def handler(event, context):
    model = {m.name: m for m in load_models(Path(event["models"]))}["churn"]
    path = Path(event["path"])
    data = path.read_bytes()
    content_sha256(data)
    inspection = inspect(path.name, data, model.data)
    summarize(inspection.frame, model.data)
    return {"accepted": inspection.accepted, "rows": inspection.rows}
"""
ROWS = 400_000


def _zip(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", source)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def large_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = {m.name: m for m in load_models(REPO / "models")}["churn"]
    path = tmp_path_factory.mktemp("data") / "large.csv"
    generate(model, ROWS).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HandlerRuntime]:
    runtime = HandlerRuntime(tmp_path_factory.mktemp("code"), {})
    yield runtime
    runtime.close()


def _validate(runtime: HandlerRuntime, path: Path, memory_mb: int) -> tuple[object, bool, float]:
    spec = FunctionSpec(
        name=f"ingest-{memory_mb}",
        arn=f"arn:aws:lambda:us-east-1:123456789012:function:ingest-{memory_mb}",
        handler="handler.handler",
        code_sha256="ingest-memory",
        environment={},
        timeout_s=300,
        memory_mb=memory_mb,
    )
    result = runtime.invoke(spec, _zip(HANDLER), {"path": str(path), "models": str(REPO / "models")})
    return result.payload, result.errored, result.max_memory_mb


def test_a_large_file_is_validated_within_the_memory_synth_gives_ingest(
    runtime: HandlerRuntime, large_csv: Path
) -> None:
    file_mb = large_csv.stat().st_size / 2**20
    memory_mb = memory_for_file(file_mb)
    payload, errored, peak = _validate(runtime, large_csv, memory_mb)
    assert not errored, payload
    assert payload == {"accepted": True, "rows": ROWS}
    assert peak <= memory_mb


def test_the_same_file_in_too_little_memory_is_killed_as_lambda_would(
    runtime: HandlerRuntime, large_csv: Path
) -> None:
    # Lambda's least MemorySize: without pandas, this file fits in 256 MB (its peak is about 240 MB).
    payload, errored, _ = _validate(runtime, large_csv, 128)
    assert errored and isinstance(payload, dict)
    assert payload["errorType"] == "Runtime.OutOfMemory"


def test_the_example_models_files_get_enough_memory() -> None:
    models = load_models(REPO / "models")
    assert ingest_memory_mb(models) >= memory_for_file(max(m.data.max_file_mb for m in models)) > 1024


def test_synth_refuses_a_max_file_mb_no_function_can_hold() -> None:
    churn = {m.name: m for m in load_models(REPO / "models")}["churn"]
    huge = churn.model_copy(update={"data": churn.data.model_copy(update={"max_file_mb": 4000.0})})
    with pytest.raises(FileTooLargeForLambda, match=r"max_file_mb is 4000 MB.*needs about \d+ MB.*10240 MB"):
        ingest_memory_mb([huge])
