"""How the local transform service cuts objects into mini-batches and joins the answers
(headrace/local/sagemaker/transform_records.py), and the CreateTransformJob rules it enforces."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import Any

import pytest

from headrace.local.sagemaker.transform_records import (
    MB,
    Plan,
    TransformFailed,
    assembled,
    assembled_body,
    mini_batches,
    object_chunks,
    output_key,
    payload,
    plan_of,
    records,
    request_bodies,
)
from headrace.local.seams.sagemaker_rules import transform_job


def job(**changes: Any) -> dict[str, Any]:
    described: dict[str, Any] = {
        "TransformInput": {"ContentType": "text/csv", "SplitType": "Line"},
        "TransformOutput": {"Accept": "text/csv", "AssembleWith": "Line"},
        "DataProcessing": {"InputFilter": "$", "JoinSource": "Input", "OutputFilter": "$"},
        "MaxPayloadInMB": 1,
        "MaxConcurrentTransforms": 2,
        "BatchStrategy": "MultiRecord",
    }
    return {**described, **changes}


def test_records_are_lines_across_chunk_boundaries_without_blank_lines_or_line_ends() -> None:
    chunks = [b"1,a\r\n2,", b"b\n\n  \n3,c", b"\n4,d"]
    assert list(records(chunks)) == [b"1,a", b"2,b", b"3,c", b"4,d"]


def test_multi_record_batches_fill_the_payload_with_whole_records_in_order() -> None:
    plan = plan_of(job(), {})
    lines = [f"{i:07d},{'x' * 100}".encode() for i in range(30_000)]
    batches = list(mini_batches(lines, plan))
    assert [r for b in batches for r in b] == lines
    assert all(len(payload(b)) <= MB for b in batches)
    # Full: the next record would not have fitted.
    assert all(len(payload(b)) + len(lines[0]) + 1 > MB for b in batches[:-1])
    assert len(batches) == 4


def test_single_record_sends_one_record_per_request() -> None:
    plan = plan_of(job(BatchStrategy="SingleRecord"), {})
    assert list(mini_batches([b"a", b"b", b"c"], plan)) == [[b"a"], [b"b"], [b"c"]]


def test_a_record_larger_than_the_payload_fails_the_job() -> None:
    plan = plan_of(job(), {})
    with pytest.raises(TransformFailed, match="larger than MaxPayloadInMB"):
        list(mini_batches([b"a", b"x" * MB], plan))


def test_max_payload_zero_puts_no_limit_on_a_request() -> None:
    plan = plan_of(job(MaxPayloadInMB=0), {})
    assert plan.max_payload is None
    assert len(list(mini_batches([b"x" * MB] * 3, plan))) == 1


def test_unset_settings_come_from_execution_parameters_then_sagemaker_s_defaults() -> None:
    unset = job(MaxPayloadInMB=None, MaxConcurrentTransforms=0, BatchStrategy=None)
    asked = plan_of(
        unset, {"MaxPayloadInMB": 2, "MaxConcurrentTransforms": 4, "BatchStrategy": "SINGLE_RECORD"}
    )
    assert (asked.max_payload, asked.concurrency, asked.single_record) == (2 * MB, 4, True)
    defaults = plan_of(unset, {})
    assert (defaults.max_payload, defaults.concurrency, defaults.single_record) == (6 * MB, 1, False)
    assert plan_of(job(), {"MaxPayloadInMB": 50}).max_payload == MB  # the job's own value wins


def test_join_source_input_appends_each_output_line_to_its_record() -> None:
    plan = plan_of(job(), {})
    joined = assembled([b"1,a", b"2,b"], b"0.25\n0.75\n", plan)
    assert joined == b"1,a,0.25\n2,b,0.75\n"


def test_a_container_answer_with_the_wrong_number_of_lines_fails_the_join() -> None:
    plan = plan_of(job(), {})
    with pytest.raises(TransformFailed, match="answered 1 line"):
        assembled([b"1,a", b"2,b"], b"0.25\n", plan)


def test_without_a_join_assemble_with_line_ends_every_output_record_with_a_newline() -> None:
    lines = plan_of(job(DataProcessing={}), {})
    assert assembled([b"1", b"2"], b"0.1\n0.2", lines) == b"0.1\n0.2\n"
    raw = plan_of(job(DataProcessing={}, TransformOutput={"AssembleWith": "None"}), {})
    assert assembled([b"1", b"2"], b"0.1\n0.2", raw) == b"0.1\n0.2"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"TransformInput": {"SplitType": "RecordIO"}}, "SplitType RecordIO"),
        ({"DataProcessing": {"InputFilter": "$[1:]"}}, "InputFilter"),
        ({"TransformInput": {"ContentType": "application/json"}}, "text/csv only"),
    ],
)
def test_what_the_local_plane_does_not_do_fails_the_job_with_a_reason(
    changes: dict[str, Any], reason: str
) -> None:
    with pytest.raises(TransformFailed, match=reason):
        plan_of(job(**changes), {})


@pytest.mark.parametrize(
    ("prefix", "key", "expected"),
    [
        ("churn/batch/input/abc/input.csv", "churn/batch/input/abc/input.csv", "out/job/input.csv.out"),
        ("churn/batch/input/abc/", "churn/batch/input/abc/input.csv", "out/job/input.csv.out"),
        ("churn/batch/input/", "churn/batch/input/abc/input.csv", "out/job/abc/input.csv.out"),
        ("churn/batch/in", "churn/batch/input/abc/input.csv", "out/job/input/abc/input.csv.out"),
    ],
)
def test_an_object_s_output_is_its_path_below_the_input_prefix_plus_out(
    prefix: str, key: str, expected: str
) -> None:
    assert output_key("out/job/", prefix, key) == expected


def test_plan_reads_content_type_accept_and_compression() -> None:
    plan = plan_of(
        job(TransformInput={"ContentType": "text/csv", "SplitType": "Line", "CompressionType": "Gzip"}), {}
    )
    assert plan == Plan(True, False, MB, 2, True, True, "text/csv", "text/csv", True)


@pytest.mark.parametrize(
    ("request_", "found"),
    [
        ({"ModelName": "m", "MaxPayloadInMB": 100}, []),
        ({"ModelName": "m", "MaxPayloadInMB": 101}, ["cannot be greater than 100 MB"]),
        ({"ModelName": "m", "MaxPayloadInMB": 6, "MaxConcurrentTransforms": 17}, ["cannot exceed 100 MB"]),
        ({"ModelName": "m", "MaxPayloadInMB": 6, "MaxConcurrentTransforms": 16}, []),
        ({"ModelName": "gone"}, ["Could not find model 'gone'"]),
    ],
)
def test_create_transform_job_rules(request_: dict[str, Any], found: list[str]) -> None:
    broken = transform_job(request_, lambda name: name == "m")
    assert len(broken) == len(found)
    assert all(want in got for want, got in zip(found, broken, strict=True))


def _by_record(chunks: list[bytes], plan: Plan) -> list[bytes]:
    return [payload(batch) for batch in mini_batches(records(chunks), plan)]


def _chunked(data: bytes, sizes: list[int]) -> list[bytes]:
    chunks, at = [], 0
    for size in sizes * (len(data) // sum(sizes) + 1):
        chunks.append(data[at : at + size])
        at += size
    return [c for c in chunks if c]


@pytest.mark.parametrize(
    "irregular",
    [
        b"",  # regular throughout: cut from the bytes
        b"7,z\r\n",  # a carriage return
        b"\n\n",  # a blank line
        b"   \n",  # a line of spaces only
        b"\t8,y\n",  # a record led by a tab (kept, as bytes.strip keeps it)
    ],
)
def test_requests_cut_from_the_bytes_are_the_record_by_record_requests(irregular: bytes) -> None:
    plan = plan_of(job(), {})  # 1 MB requests
    lines = b"".join(f"{i},{'x' * (i % 97)},{i * 0.5}\n".encode() for i in range(60_000))
    data = lines[: len(lines) // 2] + irregular + lines[len(lines) // 2 :] + b"9,last"
    for sizes in ([65_536], [1_000_003, 17], [len(data)]):
        chunks = _chunked(data, sizes)
        assert b"".join(chunks) == data
        assert list(request_bodies(chunks, plan)) == _by_record(chunks, plan)


def test_a_request_may_fill_max_payload_to_the_byte() -> None:
    plan = plan_of(job(), {})
    record = b"x" * (MB // 4 - 1)  # four of them, newlines included, are exactly 1 MB
    bodies = list(request_bodies([(record + b"\n") * 9], plan))
    assert [len(b) for b in bodies] == [MB, MB, MB // 4]
    assert bodies == _by_record([(record + b"\n") * 9], plan)


def test_a_record_larger_than_the_payload_fails_the_job_when_cut_from_the_bytes() -> None:
    plan = plan_of(job(), {})
    bodies = request_bodies([b"a\n" + b"x" * MB + b"\n"], plan)
    with pytest.raises(TransformFailed, match=f"a record of {MB + 1} bytes is larger than MaxPayloadInMB"):
        list(bodies)


def test_single_record_and_unlimited_requests_are_cut_record_by_record() -> None:
    data = [b"1,a\n2,b\n", b"\n3,c"]
    single = plan_of(job(BatchStrategy="SingleRecord"), {})
    assert list(request_bodies(data, single)) == [b"1,a\n", b"2,b\n", b"3,c\n"]
    unlimited = plan_of(job(MaxPayloadInMB=0), {})
    assert list(request_bodies(data, unlimited)) == [b"1,a\n2,b\n3,c\n"]


@pytest.mark.parametrize(
    "output", [{}, {"TransformOutput": {"AssembleWith": "None"}}, {"DataProcessing": {}}]
)
def test_a_request_body_s_answer_is_assembled_as_its_records_answer(output: dict[str, Any]) -> None:
    plan = plan_of(job(**output), {})
    body, answer = b"1,a\n2,b\n3,c\n", b"0.25\n0.5\n0.75\n\n"
    assert assembled_body(body, answer, plan) == assembled([b"1,a", b"2,b", b"3,c"], answer, plan)
    assert assembled_body(b"\n", b"", plan) == assembled([], b"", plan)


@pytest.mark.parametrize("lead", [b"\n", b"  \n", b"\tx\n"])
def test_an_irregular_line_right_after_a_full_request_is_cut_by_the_record_rules(lead: bytes) -> None:
    plan = plan_of(job(), {})
    full = (b"x" * (MB // 4 - 1) + b"\n") * 4  # exactly one request
    data = [full + lead + b"1,a\n" * 10]
    assert list(request_bodies(data, plan)) == _by_record(data, plan)


class _Body:
    """A streaming body as botocore hands it out: `iter_chunks(size)`."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def iter_chunks(self, size: int) -> Iterator[bytes]:
        yield from (self.data[at : at + size] for at in range(0, len(self.data), size))


def test_a_gzip_object_is_read_inflated_and_a_plain_one_as_it_is() -> None:
    data = b"".join(f"{i},{i * 0.25}\n".encode() for i in range(300_000))
    assert b"".join(object_chunks(_Body(gzip.compress(data)), gzipped=True)) == data
    assert b"".join(object_chunks(_Body(data), gzipped=False)) == data
