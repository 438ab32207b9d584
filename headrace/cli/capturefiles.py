"""Captured requests read from where `headrace data generate --labels-for-capture` is pointed: a capture file,
a folder of them (SageMaker writes `<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl`), or an S3 prefix."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .output import EXIT_UNREACHABLE, fail

# SageMaker's capture files are JSON lines named *.jsonl.
CAPTURE_SUFFIX = ".jsonl"


def capture_lines(source: str, s3: Callable[[], Any]) -> Iterator[bytes]:
    """Every line of every capture file under `source` (a path, or s3://bucket/prefix read with `s3()`), in
    key order; exits 2 naming the source when it holds no capture file."""
    if source.startswith("s3://"):
        yield from _s3_lines(source, s3())
        return
    path = Path(source)
    files = sorted(path.rglob(f"*{CAPTURE_SUFFIX}")) if path.is_dir() else [path] if path.is_file() else []
    if not files:
        fail(
            f"no capture files (*{CAPTURE_SUFFIX}) at '{source}'",
            "give a capture file, a folder of them, or s3://bucket/prefix of the endpoint's data capture",
        )
    for file in files:
        yield from file.read_bytes().splitlines()


def _s3_lines(source: str, client: Any) -> Iterator[bytes]:
    bucket, _, prefix = source.removeprefix("s3://").partition("/")
    try:
        keys = [
            item["Key"]
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])
            if item["Key"].endswith(CAPTURE_SUFFIX)
        ]
        if not keys:
            fail(
                f"no capture files (*{CAPTURE_SUFFIX}) under {source}",
                "the endpoint's DataCaptureConfig DestinationS3Uri, then <endpoint>/<variant>/",
            )
        for key in keys:
            yield from client.get_object(Bucket=bucket, Key=key)["Body"].read().splitlines()
    except (BotoCoreError, ClientError) as exc:
        fail(f"cannot read {source}: {exc}", code=EXIT_UNREACHABLE)
