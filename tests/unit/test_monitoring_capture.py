"""Data capture read back: the rows the model received, whatever shape the request had."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from headrace.monitoring.capture import capture_rows

FEATURES = ["tenure_months", "contract", "senior"]


def _record(data: str, encoding: str = "CSV", content_type: str = "text/csv") -> str:
    """One line as SageMaker's data capture writes it (the local plane writes the same shape)."""
    return json.dumps(
        {
            "captureData": {
                "endpointInput": {
                    "observedContentType": content_type,
                    "mode": "INPUT",
                    "data": data,
                    "encoding": encoding,
                },
                "endpointOutput": {
                    "observedContentType": "text/csv",
                    "mode": "OUTPUT",
                    "data": "0.42",
                    "encoding": "CSV",
                },
            },
            "eventMetadata": {"eventId": "e1", "inferenceTime": "2026-11-23T11:10:00.000Z"},
            "eventVersion": "0",
        }
    )


def _json_record(body: Any) -> str:
    return _record(json.dumps(body), encoding="JSON", content_type="application/json")


def _rows(lines: Sequence[bytes | str]) -> list[list[Any]]:
    columns = capture_rows(lines, FEATURES)
    return [list(row) for row in zip(*columns.values(), strict=True)]


def test_a_csv_record_gives_its_row_under_the_feature_names() -> None:
    columns = capture_rows([_record("12,one-year,true")], FEATURES)

    assert list(columns) == FEATURES
    assert [column.tolist() for column in columns.values()] == [["12"], ["one-year"], ["true"]]


def test_a_csv_batch_gives_one_row_per_line() -> None:
    lines = [_record("1,month-to-month,false\n2,two-year,true\n"), _record("3,one-year,false")]

    assert _rows(lines) == [
        ["1", "month-to-month", "false"],
        ["2", "two-year", "true"],
        ["3", "one-year", "false"],
    ]


def test_captured_lines_may_arrive_as_bytes() -> None:
    assert _rows([_record("5,two-year,true").encode()]) == [["5", "two-year", "true"]]


def test_json_instances_as_lists_are_rows_in_feature_order() -> None:
    line = _json_record({"instances": [[7, "one-year", True], [8, "two-year", False]]})

    assert _rows([line]) == [[7, "one-year", True], [8, "two-year", False]]


def test_json_instances_as_objects_are_read_by_feature_name() -> None:
    line = _json_record(
        {"instances": [{"senior": False, "contract": "one-year", "tenure_months": 9, "extra": "ignored"}]}
    )

    assert _rows([line]) == [[9, "one-year", False]]


def test_a_json_object_missing_a_feature_gives_a_missing_value() -> None:
    line = _json_record({"instances": [{"tenure_months": 9, "contract": "one-year"}]})

    assert _rows([line]) == [[9, "one-year", None]]


def test_a_single_json_object_is_one_row() -> None:
    line = _json_record({"tenure_months": 4, "contract": "month-to-month", "senior": True})

    assert _rows([line]) == [[4, "month-to-month", True]]


def test_a_single_json_list_is_one_row() -> None:
    assert _rows([_json_record([4, "month-to-month", True])]) == [[4, "month-to-month", True]]


def test_a_base64_record_of_csv_is_decoded() -> None:
    data = base64.b64encode(b"6,two-year,false\n7,one-year,true").decode()
    line = _record(data, encoding="BASE64", content_type="text/csv")

    assert _rows([line]) == [["6", "two-year", "false"], ["7", "one-year", "true"]]


def test_a_base64_record_of_json_is_decoded_as_json() -> None:
    data = base64.b64encode(json.dumps({"instances": [[3, "one-year", False]]}).encode()).decode()
    line = _record(data, encoding="BASE64", content_type="application/json; charset=utf-8")

    assert _rows([line]) == [[3, "one-year", False]]


def test_malformed_lines_are_skipped() -> None:
    lines = [
        "not json at all",
        "",
        "   ",
        json.dumps({"eventVersion": "0"}),
        json.dumps(["captureData"]),
        json.dumps({"captureData": {"endpointOutput": {"data": "0.1", "encoding": "CSV"}}}),
        _record("{not json", encoding="JSON", content_type="application/json"),
        _record("1,one-year,true"),
    ]

    assert _rows(lines) == [["1", "one-year", "true"]]


def test_rows_of_the_wrong_width_are_skipped() -> None:
    lines = [
        _record("1,one-year\n2,two-year,true\n3,two-year,true,extra"),
        _json_record({"instances": [[4, "one-year"], [5, "one-year", False]]}),
    ]

    assert _rows(lines) == [["2", "two-year", "true"], [5, "one-year", False]]


def test_no_usable_line_gives_empty_feature_columns() -> None:
    columns = capture_rows(["garbage", _record("1,2")], FEATURES)

    assert list(columns) == FEATURES
    assert all(len(column) == 0 for column in columns.values())
