"""The port to SageMaker's records: the jobs and endpoints moto keeps, which the local compute moves along.

The records are moto's own objects (a training job, an endpoint), updated in place as SageMaker's control
plane would update them; seams/sagemaker.py is the adapter that reaches them.
"""

from __future__ import annotations

from typing import Any, Protocol


class SageMakerRecords(Protocol):
    def training_job(self, name: str, account: str | None = None) -> Any:
        """The training job's record in `account` (None: whichever account holds the name); KeyError if
        there is none."""
        ...

    def endpoints(self) -> dict[str, Any]:
        """Every endpoint's record, by name."""
        ...

    def endpoint_config(self, name: str) -> dict[str, Any]:
        """DescribeEndpointConfig's answer (raises the API's error if there is no such config)."""
        ...

    def model_container(self, name: str) -> dict[str, Any]:
        """The model's primary container (Image, ModelDataUrl, Environment)."""
        ...
