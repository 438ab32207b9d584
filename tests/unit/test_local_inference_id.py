"""The local plane refuses an InferenceId as SageMaker does (1-64 characters, \\A\\S[\\p{Print}]*\\z)."""

from __future__ import annotations

import pytest

from headrace.local.sagemaker.fleets import HostingError
from headrace.local.sagemaker.inference_id import check_inference_id


@pytest.mark.parametrize("value", ["a", "x" * 64, "order 17/row:0", "~!@#$%^&*()", "a "])
def test_an_inference_id_of_printable_ascii_is_accepted(value: str) -> None:
    check_inference_id(value)


@pytest.mark.parametrize(
    ("value", "constraint"),
    [
        ("", "length greater than or equal to 1"),
        ("x" * 65, "length less than or equal to 64"),
        (" leading", "regular expression pattern"),
        ("tab\there", "regular expression pattern"),
        ("caf\u00e9", "regular expression pattern"),
    ],
)
def test_an_inference_id_sagemaker_refuses_names_the_constraint(value: str, constraint: str) -> None:
    with pytest.raises(
        HostingError, match=f"at 'inferenceId' failed to satisfy constraint: Member must.*{constraint}"
    ):
        check_inference_id(value)
