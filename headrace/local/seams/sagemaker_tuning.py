"""Where hyperparameter tuning jobs plug into moto's SageMaker (moto 5.2.5, pinned): moto records
CreateHyperParameterTuningJob and answers Describe/ListHyperParameterTuningJobs from its record, but runs
nothing, marks the job Completed at once with canned counters and a fake best training job, and has neither
ListTrainingJobsForHyperParameterTuningJob nor StopHyperParameterTuningJob. This seam starts the job's compute
(headrace/local/sagemaker/tuning.py), which keeps moto's record as SageMaker's control plane would, and adds
the two calls. The request checks (the API model, the strategies' rules) are in sagemaker_requests.py.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator
from typing import Any, Final

from moto.core.responses import ActionResult
from moto.sagemaker.exceptions import ResourceNotFound
from moto.sagemaker.models import SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse

from headrace.local.sagemaker.tuning import TuningCompute
from headrace.local.seams.sagemaker import MotoSageMakerRecords

# ListTrainingJobsForHyperParameterTuningJob: "The default value is 10" (MaxResults); SortBy "The default is
# Name"; SortOrder "The default is Ascending"; with FinalObjectiveMetricValue "any training jobs that did not
# return an objective metric are not listed"
# (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ListTrainingJobsForHyperParameterTuningJob.html).
DEFAULT_MAX_RESULTS: Final = 10
_SORT_KEYS: Final[dict[str, Callable[[dict[str, Any]], Any]]] = {
    "Name": lambda s: s["TrainingJobName"],
    "CreationTime": lambda s: s.get("CreationTime") or 0,
    "Status": lambda s: s["TrainingJobStatus"],
    "FinalObjectiveMetricValue": lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"],
}


class MotoTuningRecords(MotoSageMakerRecords):
    def tuning_job(self, name: str, account: str | None = None) -> Any:
        return self._holding("hyper_parameter_tuning_jobs", name, account).hyper_parameter_tuning_jobs[name]


def _not_found(name: str) -> ResourceNotFound:
    # moto's own words for DescribeHyperParameterTuningJob of an unknown job.
    return ResourceNotFound(message=f"Could not find hyper parameter tuning job '{name}'.")


def trial_page(
    summaries: list[dict[str, Any]], request: dict[str, Any]
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of ListTrainingJobsForHyperParameterTuningJob: filtered, sorted, cut at MaxResults."""
    found = [s for s in summaries if request.get("StatusEquals") in (None, s["TrainingJobStatus"])]
    sort_by = request.get("SortBy") or "Name"
    if sort_by == "FinalObjectiveMetricValue":
        found = [s for s in found if "FinalHyperParameterTuningJobObjectiveMetric" in s]
    found.sort(key=_SORT_KEYS[sort_by], reverse=request.get("SortOrder") == "Descending")
    start = int(request.get("NextToken") or 0)
    size = int(request.get("MaxResults") or DEFAULT_MAX_RESULTS)
    end = start + size
    return found[start:end], (str(end) if end < len(found) else None)


@contextlib.contextmanager
def tuning_installed(tuning: TuningCompute) -> Iterator[None]:
    original_create: Callable[..., str] = SageMakerModelBackend.create_hyper_parameter_tuning_job
    signature = inspect.signature(original_create)

    def create_hyper_parameter_tuning_job(self: SageMakerModelBackend, *args: Any, **kwargs: Any) -> str:
        name = signature.bind(self, *args, **kwargs).arguments["hyper_parameter_tuning_job_name"]
        arn = original_create(self, *args, **kwargs)
        tuning.start(name, account=self.account_id)
        return arn

    def list_training_jobs_for_hyper_parameter_tuning_job(self: SageMakerResponse) -> ActionResult:
        name = self._get_param("HyperParameterTuningJobName")
        jobs = self.sagemaker_backend.hyper_parameter_tuning_jobs
        if name not in jobs:
            raise _not_found(name)
        request = {
            key: self._get_param(key)
            for key in ("StatusEquals", "SortBy", "SortOrder", "NextToken", "MaxResults")
        }
        page, token = trial_page(list(getattr(jobs[name], "trial_summaries", None) or []), request)
        return ActionResult({"TrainingJobSummaries": page, "NextToken": token})

    def stop_hyper_parameter_tuning_job(self: SageMakerResponse) -> ActionResult:
        name = self._get_param("HyperParameterTuningJobName")
        if name not in self.sagemaker_backend.hyper_parameter_tuning_jobs:
            raise _not_found(name)
        tuning.stop(name, account=self.current_account)
        return ActionResult({})

    SageMakerModelBackend.create_hyper_parameter_tuning_job = create_hyper_parameter_tuning_job  # type: ignore[method-assign]
    SageMakerResponse.list_training_jobs_for_hyper_parameter_tuning_job = (  # type: ignore[attr-defined]
        list_training_jobs_for_hyper_parameter_tuning_job
    )
    SageMakerResponse.stop_hyper_parameter_tuning_job = stop_hyper_parameter_tuning_job  # type: ignore[attr-defined]
    try:
        yield
    finally:
        SageMakerModelBackend.create_hyper_parameter_tuning_job = original_create  # type: ignore[method-assign]
        del SageMakerResponse.list_training_jobs_for_hyper_parameter_tuning_job  # type: ignore[attr-defined]
        del SageMakerResponse.stop_hyper_parameter_tuning_job  # type: ignore[attr-defined]
