"""How SageMaker's transform service cuts an S3 object into `/invocations` requests and puts the answers
back together: pure, for transform.py. The rules, from CreateTransformJob's API reference
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTransformJob.html, API_TransformInput,
API_TransformOutput, API_DataProcessing):
- SplitType Line: a record is a line (its newline is not part of it; a blank line is no record). None: the
  whole object is one request.
- BatchStrategy MultiRecord: as many whole records per request as fit in MaxPayloadInMB; SingleRecord: one.
  MaxPayloadInMB "must be greater than, or equal to, the size of a single record"; 0 means no limit (the
  payload is streamed: "for cases where the payload might be arbitrarily large").
- AssembleWith Line: "add a newline character at the end of every transformed record"; None: concatenated.
- JoinSource Input, for CSV: "SageMaker takes each row as a JSON array and joins the transformed data with the
  input by appending each transformed row to the end of the input", so the container answers one line per
  record and each output line is the record, a comma, and that line.
Unset MaxPayloadInMB, MaxConcurrentTransforms and BatchStrategy come from the container's optional
`GET /execution-parameters`, else SageMaker's defaults (6 MB, 1)
(https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-batch-code.html).

`request_bodies` cuts MultiRecord requests straight out of the byte stream (one `rfind` per request) while the
input is regular (no carriage return, no blank or whitespace-led line); anywhere else it hands the rest to
`records` + `mini_batches`, the rules above spelt out per record. Both give the same requests: a greedy cut
restarts afresh at every request boundary (tests/unit/test_local_transform_records.py).
"""

from __future__ import annotations

import itertools
import posixpath
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

MB: Final = 1024 * 1024
READ_CHUNK: Final = MB
# MaxPayloadInMB: "The default value is 6 MB"; MaxConcurrentTransforms: "the default value is 1".
DEFAULT_PAYLOAD_MB: Final = 6
DEFAULT_CONCURRENCY: Final = 1
# BatchStrategy's default is not documented; it changes how many records a request holds, never the output.
DEFAULT_STRATEGY: Final = "MultiRecord"
# JSONPath filters the local plane applies: the whole record (DataProcessing's documented default).
WHOLE: Final = "$"


class TransformFailed(Exception):
    """Why a transform job fails: its FailureReason."""


@dataclass(frozen=True)
class Plan:
    """How one job's objects become requests and its answers an output object."""

    split_lines: bool
    single_record: bool
    max_payload: int | None  # bytes; None: no limit (MaxPayloadInMB 0)
    concurrency: int
    join_input: bool
    assemble_lines: bool
    content_type: str | None
    accept: str | None
    gzip: bool


def described(job: Any) -> dict[str, Any]:
    """What plan_of reads of a transform job's record, under DescribeTransformJob's names."""
    return {
        "TransformInput": job.transform_input,
        "TransformOutput": job.transform_output,
        "DataProcessing": job.data_processing,
        "MaxPayloadInMB": job.max_payload_in_mb,
        "MaxConcurrentTransforms": job.max_concurrent_transforms,
        "BatchStrategy": job.batch_strategy,
    }


def plan_of(job: dict[str, Any], execution_parameters: dict[str, Any]) -> Plan:
    """The job's plan from its DescribeTransformJob fields, unset ones from the container's
    /execution-parameters; TransformFailed for what the local plane does not do."""
    source = job.get("TransformInput") or {}
    output = job.get("TransformOutput") or {}
    processing = job.get("DataProcessing") or {}
    split = source.get("SplitType") or "None"
    if split not in ("None", "Line"):
        raise TransformFailed(f"SplitType {split} is not supported by the local plane (Line and None are)")
    for member in ("InputFilter", "OutputFilter"):
        if processing.get(member) not in (None, WHOLE):
            raise TransformFailed(
                f"DataProcessing.{member} {processing[member]!r} is not supported by the local plane "
                f"(only {WHOLE!r}, the whole record)"
            )
    content_type = source.get("ContentType")
    join = processing.get("JoinSource") == "Input"
    if join and content_type and "csv" not in content_type.lower():
        raise TransformFailed(f"JoinSource Input is supported locally for text/csv only, not {content_type}")
    payload_mb = _first(job.get("MaxPayloadInMB"), execution_parameters.get("MaxPayloadInMB"))
    payload_mb = DEFAULT_PAYLOAD_MB if payload_mb is None else int(payload_mb)
    concurrency = _first(
        job.get("MaxConcurrentTransforms") or None, execution_parameters.get("MaxConcurrentTransforms")
    )
    strategy = _first(job.get("BatchStrategy"), execution_parameters.get("BatchStrategy"))
    return Plan(
        split_lines=split == "Line",
        single_record=str(strategy or DEFAULT_STRATEGY) in ("SingleRecord", "SINGLE_RECORD"),
        max_payload=payload_mb * MB if payload_mb > 0 else None,
        concurrency=max(1, int(concurrency or DEFAULT_CONCURRENCY)),
        join_input=join,
        assemble_lines=output.get("AssembleWith") == "Line",
        content_type=content_type,
        accept=output.get("Accept"),
        gzip=source.get("CompressionType") == "Gzip",
    )


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def object_chunks(body: Any, gzipped: bool) -> Iterator[bytes]:
    """An S3 object's streaming body in chunks, inflated when its CompressionType is Gzip."""
    if not gzipped:
        yield from body.iter_chunks(READ_CHUNK)
        return
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    for chunk in body.iter_chunks(READ_CHUNK):
        yield inflate.decompress(chunk)
    yield inflate.flush()


def records(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The lines of a stream of chunks, without their line ends; blank lines are no records."""
    rest = b""
    for chunk in chunks:
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        yield from _kept(lines)
    yield from _kept([rest])


def _kept(lines: list[bytes]) -> list[bytes]:
    stripped = [line.rstrip(b"\r") for line in lines]
    return [line for line in stripped if line.strip()]


def mini_batches(lines: Iterable[bytes], plan: Plan) -> Iterator[list[bytes]]:
    """Whole records per request, in order: one each (SingleRecord), or as many as fit in the payload."""
    batch: list[bytes] = []
    size = 0
    limit = plan.max_payload
    for record in lines:
        length = len(record) + 1  # the newline that ends it in the request
        if limit is not None and length > limit:
            raise TransformFailed(
                f"a record of {length} bytes is larger than MaxPayloadInMB ({limit // MB} MB): "
                "MaxPayloadInMB must be greater than, or equal to, the size of a single record"
            )
        if batch and (plan.single_record or (limit is not None and size + length > limit)):
            yield batch
            batch, size = [], 0
        batch.append(record)
        size += length
    if batch:
        yield batch


def payload(batch: list[bytes]) -> bytes:
    """A mini-batch as one request body: its records, each ending with a newline."""
    return b"\n".join(batch) + b"\n"


# What makes a stretch of input irregular for the byte-level cut: a line end other than "\n", or a line that
# is empty or led by whitespace (it may be whitespace only, which is no record), as bytes.strip sees it.
_LINE_LEADS: Final = np.frombuffer(b"\n \t\x0b\x0c", dtype=np.uint8)


def _regular(stretch: bytes) -> bool:
    if not stretch or stretch[0] in _LINE_LEADS or b"\r" in stretch:
        return False
    data = np.frombuffer(stretch, dtype=np.uint8)
    # What follows each line end but the last (a newline search by numpy: 2 ms a request, where `in` with a
    # two-byte needle that starts with a newline takes 10-20 ms).
    leads = data[np.flatnonzero(data[:-1] == ord("\n")) + 1]
    return not bool(np.isin(leads, _LINE_LEADS).any())


def request_bodies(chunks: Iterable[bytes], plan: Plan) -> Iterator[bytes]:
    """The `/invocations` bodies of a Line-split object, in order: `payload(b) for b in
    mini_batches(records(chunks), plan)`, cut from the bytes themselves while they are regular."""
    stream = iter(chunks)
    limit = plan.max_payload
    if plan.single_record or limit is None:
        yield from (payload(batch) for batch in mini_batches(records(stream), plan))
        return
    pending = b""
    for chunk in stream:
        pending += chunk
        while len(pending) >= limit:
            # The last line end within the limit closes the request: the record after it does not fit.
            end = pending.rfind(b"\n", 0, limit)
            body = pending[: end + 1]
            if end < 0 or not _regular(body):
                yield from _record_by_record(pending, stream, plan)
                return
            yield body
            pending = pending[end + 1 :]
    if not pending:
        return
    body = pending if pending.endswith(b"\n") else pending + b"\n"
    if _regular(body):
        yield body
    else:
        yield from _record_by_record(pending, stream, plan)


def _record_by_record(pending: bytes, rest: Iterator[bytes], plan: Plan) -> Iterator[bytes]:
    """From a request boundary on, the rules record by record (the greedy cut starts afresh there)."""
    yield from (payload(batch) for batch in mini_batches(records(itertools.chain([pending], rest)), plan))


def assembled_body(body: bytes, answer: bytes, plan: Plan) -> bytes:
    """`assembled` for a request body made by `request_bodies` (its records are its lines)."""
    batch = body[:-1].split(b"\n") if plan.join_input and body != b"\n" else []  # b"\n": no record at all
    return assembled(batch, answer, plan)


def assembled(batch: list[bytes], answer: bytes, plan: Plan) -> bytes:
    """What one request adds to the output object."""
    if plan.join_input:
        outputs = answer.splitlines()
        while outputs and not outputs[-1].strip():
            outputs.pop()
        if len(outputs) != len(batch):
            raise TransformFailed(
                f"the container answered {len(outputs)} line(s) for a mini-batch of {len(batch)} record(s); "
                "JoinSource Input joins one output line to each input record"
            )
        # record + "," + output (+ "\n") per record, joined by C-level calls rather than a Python loop.
        joined = map(b",".join, zip(batch, outputs, strict=True))
        if not plan.assemble_lines:
            return b"".join(joined)
        return b"\n".join(joined) + b"\n" if batch else b""
    if plan.assemble_lines:
        return b"".join(line + b"\n" for line in answer.splitlines())
    return answer


def output_key(output_path: str, source_prefix: str, key: str) -> str:
    """Where an input object's output goes: the output prefix, the object's path below the directory of
    the input prefix, and ".out" (TransformOutput.S3OutputPath: "batch transform stores the transformed data
    with an .out suffix in a corresponding subfolder in the location in the output prefix")."""
    directory = posixpath.dirname(source_prefix) if not source_prefix.endswith("/") else source_prefix
    relative = key[len(directory) :].lstrip("/") if directory else key
    prefix = output_path.rstrip("/")
    return f"{prefix}/{relative}.out" if prefix else f"{relative}.out"
