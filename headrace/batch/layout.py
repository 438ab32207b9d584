"""Where a batch lives in the data bucket, under `<model>/batch/`:

incoming/[v<N>/]<file>         drops (CSV or Parquet); a `v<N>/` folder names the version to score with
input/<sha256>/input.csv       the validated rows as SageMaker reads them: no header, the features in the
                               model's order (the serving container's text/csv, containers/serve)
output/<job>/input.csv.out     SageMaker's output: the input file's name + ".out", one line per row
"""

from __future__ import annotations

import re

BATCH = "batch"
INCOMING = "incoming"
INPUT = "input"
OUTPUT = "output"
INPUT_FILE = "input.csv"
# SageMaker names each output object after its input object plus ".out"
# (https://docs.aws.amazon.com/sagemaker/latest/dg/batch-transform.html).
OUTPUT_SUFFIX = ".out"
VERSION_FOLDER = re.compile(r"^v([1-9][0-9]{0,5})$")


def batch_prefix(model: str) -> str:
    return f"{model}/{BATCH}"


def incoming_prefix(model: str) -> str:
    return f"{batch_prefix(model)}/{INCOMING}"


def input_prefix(model: str, sha256: str) -> str:
    """A folder per content: the transform job's S3Prefix input."""
    return f"{batch_prefix(model)}/{INPUT}/{sha256}/"


def input_keys(model: str, sha256: str, parts: int) -> list[str]:
    """One file for one instance; `parts` files when the job runs on several: SageMaker hands whole S3
    objects to instances, so one file would keep all but one of them idle."""
    if parts == 1:
        return [input_prefix(model, sha256) + INPUT_FILE]
    return [input_prefix(model, sha256) + f"part-{index:05d}.csv" for index in range(parts)]


def output_prefix(model: str, job_name: str) -> str:
    return f"{batch_prefix(model)}/{OUTPUT}/{job_name}/"


def asked_version(key: str) -> int | None:
    """`<model>/batch/incoming/v3/scores.csv` asks for version 3; a file directly in incoming/ for the
    serving version (None)."""
    segments = key.split("/")
    if len(segments) == 5:
        found = VERSION_FOLDER.match(segments[3])
        if found:
            return int(found.group(1))
    return None
