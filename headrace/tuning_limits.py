"""SageMaker automatic model tuning's limits and fixed values, each with the page it comes from: the model
config (headrace/config.py, `trainer.tuning`) refuses what CreateHyperParameterTuningJob would, and the local
plane's SageMaker can answer from the same numbers.

Pure and standard-library only.
"""

from __future__ import annotations

from typing import Final, Literal

# HyperParameterTuningJobConfig.Strategy: "Valid Values: Bayesian | Random | Hyperband | Grid"
# (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_HyperParameterTuningJobConfig.html).
Strategy = Literal["Bayesian", "Random", "Hyperband", "Grid"]
# ScalingType: "Auto | Linear | Logarithmic | ReverseLogarithmic"
# (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ContinuousParameterRange.html).
SCALING_TYPES: Final = {
    "auto": "Auto",
    "linear": "Linear",
    "logarithmic": "Logarithmic",
    "reverse_logarithmic": "ReverseLogarithmic",
}

# Resource Limits for Automatic Model Tuning
# (https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-limits.html):
# "Number of hyperparameters that can be searched: 30", "Each categorical hyperparameter can have at most 30
# different values" (also CategoricalParameterRange.Values: "Maximum number of 30 items").
MAX_TUNED_HYPERPARAMETERS: Final = 30
MAX_CATEGORICAL_VALUES: Final = 30
# "Number of parallel training jobs per hyperparameter tuning job: 10, can be increased to 100": 100 is the
# most any account may ask for; above the default 10, the account needs a quota increase.
MAX_PARALLEL_TRAINING_JOBS: Final = 100
DEFAULT_PARALLEL_TRAINING_JOBS_QUOTA: Final = 10
# "Number of training jobs per hyperparameter tuning job: 750" for Bayesian, Hyperband and Grid (for Grid
# "either specified explicitly or inferred from the search space"); "[Random search] ... can be increased to
# 10000".
MAX_TRAINING_JOBS: Final[dict[str, int]] = {"Bayesian": 750, "Random": 10_000, "Hyperband": 750, "Grid": 750}
# "You can use up to 100 hyperparameters in total (static + tunable)", and SageMaker adds one of its own,
# _tuning_objective_metric (https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-define-ranges.html).
MAX_HYPERPARAMETERS: Final = 100
ADDED_BY_SAGEMAKER: Final = 1
# CategoricalParameterRange.Values: "Length Constraints: Maximum length of 256"
# (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CategoricalParameterRange.html).
MAX_VALUE_LENGTH: Final = 256
