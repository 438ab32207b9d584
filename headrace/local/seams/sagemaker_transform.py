"""Where transform jobs plug into moto's SageMaker (moto 5.2.5, pinned): moto records CreateTransformJob
(and answers Describe/ListTransformJobs from its record) but runs nothing, marks the job Completed at once,
overwrites a job of the same name, and has no StopTransformJob. This seam starts the job's compute
(headrace/local/sagemaker/transform.py), refuses a reused name as SageMaker does, and stops jobs.
The request checks (the API model, a Model that exists, the payload limits) are in sagemaker_requests.py.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator
from typing import Any

from moto.core.responses import ActionResult
from moto.sagemaker.exceptions import ResourceInUseException, ResourceNotFound, ValidationError
from moto.sagemaker.models import FakeTransformJob, SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse

from headrace.local.sagemaker.transform import TransformCompute

# The states from which StopTransformJob has nothing to stop.
_ENDED = {"Completed", "Failed", "Stopped"}


@contextlib.contextmanager
def transform_installed(transform: TransformCompute) -> Iterator[None]:
    original_create: Callable[..., Any] = SageMakerModelBackend.create_transform_job
    signature = inspect.signature(original_create)

    def create_transform_job(self: SageMakerModelBackend, *args: Any, **kwargs: Any) -> Any:
        name = signature.bind(self, *args, **kwargs).arguments["transform_job_name"]
        if name in self.transform_jobs:
            # CreateTransformJob: "The name must be unique within an Amazon Web Services Region in an Amazon
            # Web Services account" (ResourceInUse, in SageMaker's words for a job name taken).
            arn = self.transform_jobs[name].arn
            raise ResourceInUseException(
                message="Job name must be unique within an AWS account and region, and a job with this name "
                f"already exists ({arn})"
            )
        created = original_create(self, *args, **kwargs)
        transform.start(name, account=self.account_id)
        return created

    def stop_transform_job(self: SageMakerResponse) -> ActionResult:
        name = self._get_param("TransformJobName")
        jobs = self.sagemaker_backend.transform_jobs
        if name not in jobs:
            arn = FakeTransformJob.arn_formatter(name, self.current_account, self.region)
            raise ResourceNotFound(message=f"Could not find transform job '{arn}'.")
        status = jobs[name].transform_job_status
        if status in _ENDED:
            raise ValidationError(
                message=f"The request was rejected because the transform job is in status {status}."
            )
        transform.stop(name, account=self.current_account)
        return ActionResult({})

    SageMakerModelBackend.create_transform_job = create_transform_job  # type: ignore[method-assign]
    SageMakerResponse.stop_transform_job = stop_transform_job  # type: ignore[attr-defined]
    try:
        yield
    finally:
        SageMakerModelBackend.create_transform_job = original_create  # type: ignore[method-assign]
        del SageMakerResponse.stop_transform_job  # type: ignore[attr-defined]
