"""Ground-truth label files (headrace/quality/labels.py): every kind of bad file has its own rule and a reason
that says where and what; good files become the canonical `inference_id,row,label`, read back as arrays and
merged with the later file winning."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from headrace.config import ModelConfig
from headrace.ingest.problems import Problem, Rule
from headrace.quality.accepted import latest_labels, read_accepted
from headrace.quality.labels import (
    LABEL_FILE_MAX_BYTES,
    LabelSpec,
    accepted_key,
    check_label_upload,
    check_labels,
)


def _line(data: Any, key: str = "req-1", encoding: str | None = "CSV") -> str:
    truth: dict[str, Any] = {"data": data}
    if encoding is not None:
        truth["encoding"] = encoding
    return json.dumps({"groundTruthData": truth, "eventMetadata": {"eventId": key}, "eventVersion": "0"})


def _jsonl(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(scope="module")
def binary(example_model: ModelConfig) -> LabelSpec:
    return LabelSpec.of(example_model)


def _variant(model: ModelConfig, objective: str, target: dict[str, Any]) -> LabelSpec:
    raw = model.model_dump(by_alias=True)
    raw["trainer"]["objective"] = objective
    raw["schema"]["columns"] = [
        c if c["name"] != model.data.target else {"min": None, "max": None, **target, "name": c["name"]}
        for c in raw["schema"]["columns"]
    ]
    return LabelSpec.of(ModelConfig.model_validate(raw))


def _only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, [p.message for p in problems]
    return problems[0]


# --- one rule per kind of bad file -------------------------------------------------------------------


def test_an_empty_file_is_refused_as_empty(binary: LabelSpec) -> None:
    problem = _only(check_labels("labels.jsonl", b"", binary).problems)
    assert problem.rule is Rule.EMPTY
    assert "empty (0 bytes)" in problem.message


def test_a_file_that_is_not_utf8_is_refused_naming_the_byte_and_line(binary: LabelSpec) -> None:
    data = _jsonl(_line("1"), _line("0", key="cafe")).replace(b"cafe", b"caf\xe9")  # Latin-1, not UTF-8
    problem = _only(check_labels("labels.jsonl", data, binary).problems)
    assert problem.rule is Rule.ENCODING
    assert "0xE9, on line 2" in problem.message


def test_a_line_that_is_not_json_is_refused_naming_the_line(binary: LabelSpec) -> None:
    data = _jsonl(_line("1"), "{not json", _line("0", key="req-2"))
    problem = _only(check_labels("labels.jsonl", data, binary).problems)
    assert (problem.rule, problem.rows) == (Rule.NOT_JSON, [2])
    assert problem.message.startswith("line 2 is not JSON")


def test_a_record_without_an_event_id_is_refused_naming_the_field(binary: LabelSpec) -> None:
    record = json.dumps({"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {}})
    problem = _only(check_labels("labels.jsonl", _jsonl(_line("1"), record), binary).problems)
    assert problem.rule is Rule.MISSING_FIELD
    assert "line 2 lacks eventMetadata.eventId" in problem.message


def test_a_record_without_ground_truth_data_is_refused_naming_the_field(binary: LabelSpec) -> None:
    record = json.dumps({"eventMetadata": {"eventId": "req-1"}})
    problem = _only(check_labels("labels.jsonl", _jsonl(record), binary).problems)
    assert problem.rule is Rule.MISSING_FIELD
    assert "line 1 lacks groundTruthData.data" in problem.message


def test_an_unknown_encoding_is_refused_naming_the_encodings_sagemaker_has(binary: LabelSpec) -> None:
    problem = _only(check_labels("labels.jsonl", _jsonl(_line("1", encoding="XML")), binary).problems)
    assert problem.rule is Rule.LABEL_ENCODING
    assert 'encoding "XML"; expected one of CSV, JSON' in problem.message


def test_a_label_outside_the_binary_objective_is_refused_with_the_value(binary: LabelSpec) -> None:
    data = _jsonl(_line("1"), _line("2", key="req-2"), _line("yes", key="req-3"))
    problem = _only(check_labels("labels.jsonl", data, binary).problems)
    assert (problem.rule, problem.count, problem.rows, problem.values) == (
        Rule.LABEL,
        2,
        [2, 3],
        ["2", "yes"],
    )
    assert "line 2: label '2' (inference 'req-2') is not a valid label; expected 0 or 1" in problem.message


def test_a_regression_label_outside_the_targets_range_is_refused(example_model: ModelConfig) -> None:
    spec = _variant(example_model, "reg:squarederror", {"type": "float", "min": 0, "max": 10})
    data = b"inference_id,label\na,3.5\nb,11\nc,nan\n"
    problem = _only(check_labels("labels.csv", data, spec).problems)
    assert (problem.rule, problem.values) == (Rule.LABEL, ["11", "nan"])
    assert "(>= 0 and <= 10, the target's min/max)" in problem.message


def test_a_multiclass_label_that_is_no_known_class_is_refused(example_model: ModelConfig) -> None:
    spec = _variant(
        example_model, "multi:softprob", {"type": "category", "categories": ["low", "mid", "high"]}
    )
    problem = _only(check_labels("labels.csv", b"inference_id,label\na,mid\nb,huge\n", spec).problems)
    assert (problem.rule, problem.values) == (Rule.LABEL, ["huge"])
    assert "expected one of the target's classes low, mid, high" in problem.message


def test_a_record_with_no_label_is_refused_as_the_wrong_number_of_labels(binary: LabelSpec) -> None:
    data = _jsonl(_line("1"), _line("[]", key="req-2", encoding="JSON"))
    problem = _only(check_labels("labels.jsonl", data, binary).problems)
    assert problem.rule is Rule.LABEL_COUNT
    assert "line 2 (inference 'req-2') has no label" in problem.message


def test_a_csv_line_with_more_fields_than_its_header_is_refused(binary: LabelSpec) -> None:
    problem = _only(check_labels("labels.csv", b"inference_id,label\na,1\nb,0,1\n", binary).problems)
    assert (problem.rule, problem.rows) == (Rule.LABEL_COUNT, [3])
    assert "line 3 has 3 fields where the header has 2" in problem.message


def test_an_unknown_csv_column_is_refused_naming_it(binary: LabelSpec) -> None:
    problem = _only(check_labels("labels.csv", b"inference_id,label,score\na,1,0.3\n", binary).problems)
    assert problem.rule is Rule.UNEXPECTED_COLUMNS
    assert "unknown columns 'score'" in problem.message


def test_a_csv_without_its_label_column_is_refused_naming_it(binary: LabelSpec) -> None:
    problem = _only(check_labels("labels.csv", b"inference_id,row\na,0\n", binary).problems)
    assert problem.rule is Rule.MISSING_COLUMNS
    assert "lacks label" in problem.message


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("", "is empty"),
        ("x" * 65, "is 65 characters long"),
        (" padded", "starts with a space"),
        ("caf\u00e9", "outside printable ASCII"),  # Java's \p{Print} is ASCII: AWS refuses it
    ],
)
def test_an_inference_id_sagemaker_would_refuse_is_refused(binary: LabelSpec, key: str, why: str) -> None:
    problem = _only(check_labels("labels.jsonl", _jsonl(_line("1", key=key)), binary).problems)
    assert problem.rule is Rule.INFERENCE_ID
    assert why in problem.message and "1 to 64 printable ASCII characters" in problem.message


def test_the_same_inference_and_row_twice_in_one_file_is_refused(binary: LabelSpec) -> None:
    data = b"inference_id,row,label\na,0,1\na,1,0\na,0,0\n"
    problem = _only(check_labels("labels.csv", data, binary).problems)
    assert (problem.rule, problem.rows) == (Rule.DUPLICATE_LABEL, [4])
    assert "line 4 labels inference 'a' row 0 again (first on line 2)" in problem.message


def test_a_file_over_the_documented_cap_is_refused_before_it_is_read() -> None:
    problem = _only(check_label_upload("labels.jsonl", LABEL_FILE_MAX_BYTES + 1))
    assert problem.rule is Rule.SIZE
    assert "at most 32 MiB" in problem.message


def test_an_unsupported_extension_is_refused_naming_the_formats() -> None:
    problem = _only(check_label_upload("labels.xlsx", 10))
    assert problem.rule is Rule.FORMAT
    assert "'.xlsx'; expected .jsonl or .json" in problem.message


def test_a_row_that_is_not_a_row_number_is_refused(binary: LabelSpec) -> None:
    problem = _only(check_labels("labels.csv", b"inference_id,row,label\na,-1,1\n", binary).problems)
    assert problem.rule is Rule.LABEL_ROW
    assert "row '-1' of inference 'a' is not a row number" in problem.message


def test_a_csv_with_a_header_and_no_labels_is_refused(binary: LabelSpec) -> None:
    problem = _only(check_labels("labels.csv", b"inference_id,label\n", binary).problems)
    assert problem.rule is Rule.HEADER_ONLY


def test_every_problem_of_a_file_is_reported_each_under_its_rule(binary: LabelSpec) -> None:
    data = _jsonl("[1]", _line("7"), _line("1", encoding="XML"), "oops")
    rules = [p.rule for p in check_labels("labels.jsonl", data, binary).problems]
    assert rules == [Rule.MISSING_FIELD, Rule.LABEL, Rule.LABEL_ENCODING, Rule.NOT_JSON]


# --- the canonical form -------------------------------------------------------------------------------


def test_sagemaker_lines_become_one_label_per_row_of_each_inference(binary: LabelSpec) -> None:
    data = _jsonl(_line("1"), _line("0,1, true", key="req-2"), _line("[1, 0]", key="req-3", encoding="JSON"))
    checked = check_labels("labels.jsonl", data, binary)
    assert checked.accepted and (checked.records, checked.labels, checked.inferences) == (3, 6, 3)
    assert checked.canonical() == (
        b"inference_id,row,label\nreq-1,0,1\nreq-2,0,0\nreq-2,1,1\nreq-2,2,1\nreq-3,0,1\nreq-3,1,0\n"
    )


def test_csv_columns_in_any_order_with_rows_become_the_canonical_form(binary: LabelSpec) -> None:
    checked = check_labels("labels.csv", b"label,row,inference_id\nfalse,1,a\nTRUE,0,a\n", binary)
    assert checked.canonical() == b"inference_id,row,label\na,1,0\na,0,1\n"


def test_class_labels_become_the_class_position_the_trainer_gives_them(example_model: ModelConfig) -> None:
    spec = _variant(
        example_model, "multi:softprob", {"type": "category", "categories": ["low", "mid", "high"]}
    )
    checked = check_labels("labels.csv", b"inference_id,label\na,high\nb, low\n", spec)
    assert checked.canonical() == b"inference_id,row,label\na,0,2\nb,0,0\n"


def test_a_binary_target_with_two_classes_takes_the_class_names(example_model: ModelConfig) -> None:
    spec = _variant(example_model, "binary:logistic", {"type": "category", "categories": ["stay", "leave"]})
    checked = check_labels("labels.csv", b"inference_id,label\na,leave\nb,stay\nc,1\n", spec)
    assert checked.canonical() == b"inference_id,row,label\na,0,1\nb,0,0\nc,0,1\n"


def test_regression_labels_keep_their_exact_value(example_model: ModelConfig) -> None:
    spec = _variant(example_model, "reg:squarederror", {"type": "float"})
    checked = check_labels("labels.csv", b"inference_id,label\na,0.1\nb,-2.5e3\n", spec)
    assert read_accepted(checked.canonical()).labels.tolist() == [0.1, -2500.0]


# --- reading accepted files back, and the cross-file rule ----------------------------------------------


def test_accepted_files_read_back_as_arrays_even_with_quoted_ids(binary: LabelSpec) -> None:
    data = _jsonl(_line("1", key='a,"b"'), _line("0,1", key="plain"))
    labels = read_accepted(check_labels("labels.jsonl", data, binary).canonical())
    assert labels.keys.tolist() == [b'a,"b"', b"plain", b"plain"]  # key_array: the join's form
    assert (labels.rows.dtype, labels.labels.dtype) == (np.int32, np.float64)
    assert labels.rows.tolist() == [0, 0, 1] and labels.labels.tolist() == [1.0, 0.0, 1.0]


def test_a_file_that_is_no_accepted_label_file_is_not_read_as_one() -> None:
    with pytest.raises(ValueError, match="not an accepted label file"):
        read_accepted(b"id,label\na,1\n")


def test_the_later_accepted_file_wins_for_the_same_inference_and_row() -> None:
    early = read_accepted(b"inference_id,row,label\na,0,1\nb,0,1\n")
    late = read_accepted(b"inference_id,row,label\na,0,0\nc,0,1\n")
    merged = latest_labels(
        [
            ("m/ground-truth/accepted/2026/11/24/x.csv", late),
            ("m/ground-truth/accepted/2026/11/23/x.csv", early),
        ]
    )
    assert dict(zip(merged.keys.tolist(), merged.labels.tolist(), strict=True)) == {
        b"a": 0.0,
        b"b": 1.0,
        b"c": 1.0,
    }


def test_accepted_keys_sort_in_arrival_order() -> None:
    first = accepted_key("churn", datetime(2026, 11, 23, 9, 5, 1, 7, tzinfo=UTC), "ab" * 32)
    later = accepted_key("churn", datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC), "00" * 32)
    assert first == "churn/ground-truth/accepted/2026/11/23/09/20261123T090501000007Z-abababababababab.csv"
    assert first < later
