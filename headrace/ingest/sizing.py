"""How much memory the ingest function needs to hold a file of `schema.max_file_mb`, and the refusal, at
synth, of a max_file_mb no Lambda function can hold.

Ingest reads, validates and summarizes a file as numpy columns, so its peak grows with the file. Measured
in-process (VmHWM above the interpreter once the handler is imported; the sandbox test is
tests/local/test_ingest_memory.py): a 72 MiB churn CSV peaked 264 MiB above the baseline, 3.7 times the
file, and a 234 MiB one 767 MiB, 3.3 times (pandas, before issue 15: 4.8 times both); files of many
one-character cells peak higher, 8.3 times for thirty one-digit columns (14.4 with pandas). The interpreter
with the handler imported holds about 60 MiB (140 with pandas). The function is sized from the largest
max_file_mb of the stage's models, with headroom, so that a valid file is never lost to Lambda killing the
function (issue 12, finding 4).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from headrace.config import ModelConfig

# Peak memory per MB of file: measured 3.3 to 3.7 for churn-like files, kept from the pandas days (4.8 then)
# for files with more, shorter columns, and because Lambda gives CPU in proportion to memory: the parse is
# Python's now (issue 15), two to three times pandas' time, and needs the CPU more than the memory.
PEAK_PER_FILE_MB = 5.2
# The Python runtime with boto3, Powertools and numpy imported (about 60 MB), the clients and the handler's
# own state; kept at what it was with pandas (140 MB) as headroom.
BASELINE_MB = 200
# The ingest function's memory when every model's files are small (CPU also scales with memory).
FLOOR_MB = 1024
# Lambda's MemorySize: 128 to 10,240 MB (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
LAMBDA_MAX_MEMORY_MB = 10_240
STEP_MB = 64


class FileTooLargeForLambda(ValueError):
    """A model accepts files larger than any Lambda function can validate."""


def memory_for_file(max_file_mb: float) -> int:
    """The memory (MB, a multiple of 64) that validating a file of `max_file_mb` needs at its peak."""
    needed = BASELINE_MB + PEAK_PER_FILE_MB * max_file_mb
    return int(math.ceil(needed / STEP_MB) * STEP_MB)


def ingest_memory_mb(models: Iterable[ModelConfig]) -> int:
    """The ingest function's MemorySize for these models; raises for a max_file_mb that cannot fit."""
    sized = FLOOR_MB
    for model in models:
        needed = memory_for_file(model.data.max_file_mb)
        if needed > LAMBDA_MAX_MEMORY_MB:
            raise FileTooLargeForLambda(
                f"model '{model.name}': schema.max_file_mb is {model.data.max_file_mb:g} MB, and "
                f"validating a file that large needs about {needed} MB of memory, more than the "
                f"{LAMBDA_MAX_MEMORY_MB} MB a Lambda function can have; "
                f"set schema.max_file_mb to at most {max_file_mb_within()} MB"
            )
        sized = max(sized, needed)
    return sized


def max_file_mb_within(memory_mb: int = LAMBDA_MAX_MEMORY_MB) -> int:
    """The largest max_file_mb a function of `memory_mb` holds."""
    return int((memory_mb - BASELINE_MB) / PEAK_PER_FILE_MB)
