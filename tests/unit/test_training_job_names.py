"""SageMaker training job names: valid, short enough, and the same for a retried execution."""

from __future__ import annotations

import hashlib
import re

import pytest

from headrace.naming import (
    TRAINING_JOB_NAME_MAX,
    TRAINING_JOB_NAME_PATTERN,
    Names,
    execution_name,
    training_job_name,
    training_job_name_glob,
)

SHA = hashlib.sha256(b"content").hexdigest()
LONGEST_MODEL = "a" + "b-" * 15 + "c"  # 32 characters, the longest name MODEL_NAME_PATTERN allows


@pytest.mark.parametrize("model", ["churn", "fraud-score", LONGEST_MODEL, "ab", "model-with-dash-at-24-x-y"])
def test_job_names_fit_sagemakers_length_and_pattern(model: str) -> None:
    name = training_job_name(model, SHA, execution_name(model, SHA))
    assert len(name) <= TRAINING_JOB_NAME_MAX
    assert re.fullmatch(TRAINING_JOB_NAME_PATTERN, name)


def test_a_job_name_is_model_sha_prefix_and_execution_digest() -> None:
    execution = execution_name("churn", SHA)
    suffix = hashlib.sha256(execution.encode()).hexdigest()[:8]
    assert training_job_name("churn", SHA, execution) == f"churn-{SHA[:12]}-{suffix}"


def test_the_same_execution_always_names_the_same_job() -> None:
    execution = execution_name("churn", SHA)
    assert training_job_name("churn", SHA, execution) == training_job_name("churn", SHA, execution)


def test_another_execution_of_the_same_data_names_another_job() -> None:
    first = training_job_name("churn", SHA, execution_name("churn", SHA))
    retrained = training_job_name("churn", SHA, execution_name("churn", SHA, attempt="retrain-1"))
    assert first != retrained


def test_a_truncated_model_name_never_ends_in_a_dash() -> None:
    model = "x" * 23 + "-" + "y" * 8  # the 24th character is '-'
    name = training_job_name(model, SHA, "exec")
    assert name.startswith("x" * 23 + "-" + SHA[:12])


def test_the_iam_glob_matches_the_models_job_names_only() -> None:
    glob = training_job_name_glob("churn")
    pattern = "^" + re.escape(glob).replace(r"\?", ".") + "$"
    assert re.fullmatch(pattern, training_job_name("churn", SHA, "exec"))
    assert not re.fullmatch(pattern, training_job_name("churn-eu", SHA, "exec"))


def test_the_model_package_group_is_named_for_stage_and_model() -> None:
    assert Names("dev").model_package_group("churn") == "headrace-dev-churn"
